//! The runtime crates stay thin drivers: each is at most a fifth of core's size, none
//! matches on protocol message kinds, and the non-tokio ones run without tokio's runtime.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of code outside tests: no blank lines, no comment lines, no `#[cfg(test)]` items.
fn code_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let (mut n, mut i) = (0, 0);
    while i < lines.len() {
        let l = lines[i].trim();
        if l.starts_with("#[cfg(test)]") {
            i += 1;
            if lines.get(i).is_some_and(|next| next.trim().ends_with(';')) {
                i += 1;
                continue;
            }
            let mut depth = 0i32;
            while i < lines.len() {
                depth += lines[i].matches('{').count() as i32 - lines[i].matches('}').count() as i32;
                i += 1;
                if depth <= 0 && lines[i - 1].contains('}') {
                    break;
                }
            }
            continue;
        }
        if !l.is_empty() && !l.starts_with("//") {
            n += 1;
        }
        i += 1;
    }
    n
}

fn crate_lines(dir: &str) -> usize {
    rust_files(&root().join(dir).join("src")).iter().map(|f| code_lines(&std::fs::read_to_string(f).expect("read"))).sum()
}

const RUNTIMES: [&str; 3] = ["runtime-tokio", "runtime-async-std", "runtime-blocking"];

#[test]
fn counting_skips_comments_blanks_and_tests() {
    let text = "//! doc\nfn a() {}\n\n// note\n#[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\nfn b() {}\n#[cfg(test)]\nmod more;\n";
    assert_eq!(code_lines(text), 2);
}

#[test]
fn each_runtime_crate_is_at_most_a_fifth_of_core() {
    let core = crate_lines("core");
    for rt in RUNTIMES {
        let n = crate_lines(rt);
        println!("{rt}: {n} lines of code; core: {core}");
        assert!(5 * n <= core, "{rt} has {n} lines of code, more than a fifth of core's {core}: move logic into core");
    }
}

#[test]
fn no_runtime_crate_matches_on_protocol_messages() {
    let kinds = ["SessionEvent::", "ClientEvent::", "ServerEvent::", "ExecEvent::", "DeframeEvent::", "Message::", "LaunchCommand::"];
    for rt in RUNTIMES {
        for file in rust_files(&root().join(rt).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read");
            for kind in kinds {
                assert!(!text.contains(kind), "{} names {kind}: protocol decisions belong in core", file.display());
            }
        }
    }
}

/// `cargo tree` of a crate's normal dependencies, features shown, inverted on `package`.
fn tree(krate: &str, package: &str) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["tree", "--offline", "-p", krate, "-e", "normal,features", "-i", package])
        .output()
        .expect("cargo tree runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn non_tokio_runtimes_use_tokio_at_most_for_sync_types_and_never_async_std() {
    for krate in ["whim-async-std", "whim-blocking"] {
        let t = tree(krate, "tokio");
        let features: Vec<&str> =
            t.lines().filter_map(|l| l.strip_prefix("├── tokio feature ").or_else(|| l.strip_prefix("└── tokio feature "))).collect();
        assert!(!features.is_empty(), "{krate}: cargo tree gave no tokio features:\n{t}");
        assert!(features.iter().all(|f| *f == "\"default\"" || *f == "\"sync\""), "{krate} enables tokio {features:?}");
        let a = tree(krate, "async-std");
        assert!(!a.contains("async-std v"), "{krate} depends on async-std outside dev-dependencies:\n{a}");
    }
}
