//! Build-source input on arbitrary text: the `.dockerignore` matcher, the source parser and the
//! context normaliser. Invariants: no panic; an accepted https source is https; every kept
//! context entry is a clean relative path and the Dockerfile is at the root.
//! Input: a `.dockerignore`, a NUL, then one line per entry (`d:` dir, `l:` symlink `path>target`,
//! otherwise a file), each line also tried as a build source.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whim_core::dockerignore::IgnoreMatcher;
use whim_core::source::{ContextLimits, ContextNormaliser, InputEntry, InputKind, NormaliseOptions, OutputKind, Source};

fn entry(line: &str) -> InputEntry {
    let (kind, path) = match line.split_at_checked(2) {
        Some(("d:", p)) => (InputKind::Dir, p),
        Some(("l:", p)) => {
            let (path, target) = p.split_once('>').unwrap_or((p, ""));
            (InputKind::Symlink { target: target.to_owned() }, path)
        }
        _ => (InputKind::File { size: line.len() as u64, mode: 0o644 }, line),
    };
    InputEntry { path: path.to_owned(), kind }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (ignore, rest) = text.split_once('\0').unwrap_or((&text, ""));
    let lines: Vec<&str> = rest.lines().collect();
    if let Ok(m) = IgnoreMatcher::parse(ignore) {
        for l in &lines {
            let _ = m.is_excluded(l, l.ends_with('/'));
        }
    }
    for l in &lines {
        if let Ok(Source::Https { url }) = Source::parse(l) {
            assert!(url.starts_with("https://"), "{url}");
        }
    }
    let limits = ContextLimits { max_compressed_bytes: 1 << 20, max_uncompressed_bytes: 1 << 20, max_files: 64 };
    let options =
        NormaliseOptions { strip_wrapper: data.first().is_some_and(|b| b & 1 == 1), context_subdir: None, dockerfile: None, limits };
    let Ok(mut n) = ContextNormaliser::new(options) else { return };
    for l in &lines {
        if n.handle_entry(entry(l)).is_err() {
            return;
        }
    }
    let Ok(plan) = n.finish() else { return };
    let Ok(out) = plan.apply(Some(ignore)) else { return };
    assert!(out.iter().any(|e| e.path == "Dockerfile" && matches!(e.kind, OutputKind::File { .. })), "no Dockerfile at the root");
    for e in &out {
        assert!(!e.path.is_empty() && !e.path.starts_with('/'), "bad path {:?}", e.path);
        assert!(e.path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "bad path {:?}", e.path);
    }
});
