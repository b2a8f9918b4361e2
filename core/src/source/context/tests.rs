use proptest::prelude::*;

use super::*;
use crate::dockerignore::IgnoreError;

fn file(path: &str) -> InputEntry {
    InputEntry { path: path.into(), kind: InputKind::File { size: 1, mode: 0o644 } }
}

fn exe(path: &str) -> InputEntry {
    InputEntry { path: path.into(), kind: InputKind::File { size: 1, mode: 0o100_755 } }
}

fn dir(path: &str) -> InputEntry {
    InputEntry { path: path.into(), kind: InputKind::Dir }
}

fn link(path: &str, target: &str) -> InputEntry {
    InputEntry { path: path.into(), kind: InputKind::Symlink { target: target.into() } }
}

fn plan(options: NormaliseOptions, entries: Vec<InputEntry>) -> Result<ContextPlan, ContextError> {
    let mut n = ContextNormaliser::new(options)?;
    for e in entries {
        n.handle_entry(e)?;
    }
    n.finish()
}

fn run(options: NormaliseOptions, entries: Vec<InputEntry>, ignore: Option<&str>) -> Result<Vec<OutputEntry>, ContextError> {
    plan(options, entries)?.apply(ignore)
}

fn paths(out: &[OutputEntry]) -> Vec<&str> {
    out.iter().map(|e| e.path.as_str()).collect()
}

fn archive() -> NormaliseOptions {
    NormaliseOptions { strip_wrapper: true, ..NormaliseOptions::default() }
}

#[test]
fn a_plain_tree_is_kept_sorted_with_parents_and_modes() {
    let out =
        run(NormaliseOptions::default(), vec![file("src/b/c.rs"), exe("./run.sh"), file("Dockerfile"), dir("empty/"), dir("./")], None)
            .unwrap();
    assert_eq!(paths(&out), ["Dockerfile", "empty", "run.sh", "src", "src/b", "src/b/c.rs"]);
    assert_eq!(out[2].kind, OutputKind::File { source: "./run.sh".into(), size: 1, mode: 0o755 });
    assert_eq!(out[3].kind, OutputKind::Dir { mode: 0o755 });
    let zero =
        run(NormaliseOptions::default(), vec![InputEntry { path: "Dockerfile".into(), kind: InputKind::File { size: 3, mode: 0 } }], None)
            .unwrap();
    assert_eq!(zero[0].kind, OutputKind::File { source: "Dockerfile".into(), size: 3, mode: 0o644 });
}

#[test]
fn hostile_paths_are_refused_as_they_arrive() {
    let cases: Vec<(InputEntry, ContextError)> = vec![
        (file("/etc/passwd"), ContextError::AbsolutePath { path: "/etc/passwd".into() }),
        (file("../x"), ContextError::ParentComponent { path: "../x".into() }),
        (file("a/../../x"), ContextError::ParentComponent { path: "a/../../x".into() }),
        (file(""), ContextError::BadName { path: String::new() }),
        (file("./"), ContextError::BadName { path: "./".into() }),
        (dir(""), ContextError::BadName { path: String::new() }),
        (file("a\0b"), ContextError::BadName { path: "a\0b".into() }),
    ];
    for (entry, want) in cases {
        let mut n = ContextNormaliser::new(NormaliseOptions::default()).unwrap();
        assert_eq!(n.handle_entry(entry), Err(want));
    }
    let mut n = ContextNormaliser::new(NormaliseOptions::default()).unwrap();
    n.handle_entry(file("a/b")).unwrap();
    assert_eq!(n.handle_entry(file("./a//b")), Err(ContextError::Duplicate { path: "a/b".into() }));
    n.handle_entry(dir("d")).unwrap();
    assert_eq!(n.handle_entry(dir("d/")), Err(ContextError::Duplicate { path: "d".into() }));
}

#[test]
fn caps_are_checked_entry_by_entry() {
    let limits = ContextLimits { max_compressed_bytes: 10, max_uncompressed_bytes: 5, max_files: 2 };
    let options = NormaliseOptions { limits, ..NormaliseOptions::default() };
    let mut n = ContextNormaliser::new(options.clone()).unwrap();
    n.handle_compressed(10).unwrap();
    assert_eq!(n.handle_compressed(1), Err(ContextError::TooLarge { what: "compressed", limit: 10 }));
    let mut n = ContextNormaliser::new(options.clone()).unwrap();
    n.handle_entry(InputEntry { path: "a".into(), kind: InputKind::File { size: 5, mode: 0 } }).unwrap();
    assert_eq!(n.handle_entry(file("b")), Err(ContextError::TooLarge { what: "uncompressed", limit: 5 }));
    let mut n = ContextNormaliser::new(options.clone()).unwrap();
    n.handle_entry(link("a", "b")).unwrap();
    n.handle_entry(link("b", "c")).unwrap();
    assert_eq!(n.handle_entry(link("c", "d")), Err(ContextError::TooManyFiles { limit: 2 }));
    let mut n = ContextNormaliser::new(options).unwrap();
    n.handle_entry(dir("a")).unwrap();
    n.handle_entry(dir("b")).unwrap();
    assert_eq!(n.handle_entry(dir("c")), Err(ContextError::TooManyFiles { limit: 2 }));
    assert_eq!(
        ContextLimits::default(),
        ContextLimits { max_compressed_bytes: 256 << 20, max_uncompressed_bytes: 1 << 30, max_files: 10_000 }
    );
}

#[test]
fn entries_under_files_or_symlinks_are_refused() {
    let err = plan(NormaliseOptions::default(), vec![file("Dockerfile"), file("a"), file("a/b")]).unwrap_err();
    assert_eq!(err, ContextError::UnderNonDirectory { path: "a/b".into(), parent: "a".into() });
    let err = plan(NormaliseOptions::default(), vec![file("Dockerfile"), link("l", "d"), dir("d"), file("l/x")]).unwrap_err();
    assert_eq!(err, ContextError::UnderNonDirectory { path: "l/x".into(), parent: "l".into() });
}

#[test]
fn a_wrapping_folder_is_stripped_only_when_asked() {
    let entries = || vec![dir("org-repo-abc123/"), file("org-repo-abc123/Dockerfile"), file("org-repo-abc123/src/main.rs")];
    assert_eq!(paths(&run(archive(), entries(), None).unwrap()), ["Dockerfile", "src", "src/main.rs"]);
    assert_eq!(run(NormaliseOptions::default(), entries(), None), Err(ContextError::NoDockerfile { path: "Dockerfile".into() }));
    // no explicit directory entry: still a wrapper
    assert_eq!(paths(&run(archive(), vec![file("w/Dockerfile")], None).unwrap()), ["Dockerfile"]);
    // two top-level names, or a top-level file: nothing stripped
    let out = run(archive(), vec![file("Dockerfile"), file("a/x")], None).unwrap();
    assert_eq!(paths(&out), ["Dockerfile", "a", "a/x"]);
    assert_eq!(run(archive(), vec![file("Dockerfile")], None).map(|o| paths(&o).len()), Ok(1));
}

#[test]
fn the_context_subdir_re_roots() {
    let with = |subdir: &str| NormaliseOptions { context_subdir: Some(subdir.into()), ..archive() };
    let entries = || vec![file("w/Dockerfile"), file("w/app/Dockerfile"), exe("w/app/bin/x"), file("w/app/.dockerignore"), file("w/other")];
    for subdir in ["app", "./app/", "app//"] {
        let out = run(with(subdir), entries(), None).unwrap();
        assert_eq!(paths(&out), [".dockerignore", "Dockerfile", "bin", "bin/x"], "{subdir}");
    }
    assert_eq!(
        paths(&run(with("."), entries(), None).unwrap()),
        ["Dockerfile", "app", "app/.dockerignore", "app/Dockerfile", "app/bin", "app/bin/x", "other"]
    );
    assert_eq!(run(with("nope"), entries(), None), Err(ContextError::SubdirNotFound { subdir: "nope".into() }));
    assert_eq!(run(with("other"), entries(), None), Err(ContextError::SubdirNotDirectory { subdir: "other".into() }));
    assert_eq!(run(with("other/x"), entries(), None), Err(ContextError::SubdirNotDirectory { subdir: "other/x".into() }));
    for bad in ["/app", "../app", "app/../.."] {
        let err = ContextNormaliser::new(with(bad)).unwrap_err();
        assert_eq!(err, ContextError::BadOptionPath { what: "context subdirectory", path: bad.into() });
    }
    let only_dir = vec![file("Dockerfile"), dir("empty")];
    let err = run(NormaliseOptions { context_subdir: Some("empty".into()), ..NormaliseOptions::default() }, only_dir, None);
    assert_eq!(err, Err(ContextError::NoDockerfile { path: "Dockerfile".into() }));
}

#[test]
fn the_dockerfile_is_required_or_designated() {
    let none = run(NormaliseOptions::default(), vec![file("a")], None);
    assert_eq!(none, Err(ContextError::NoDockerfile { path: "Dockerfile".into() }));
    let as_dir = run(NormaliseOptions::default(), vec![file("Dockerfile/x")], None);
    assert_eq!(as_dir, Err(ContextError::DockerfileNotFile { path: "Dockerfile".into() }));
    let as_link = run(NormaliseOptions::default(), vec![file("a"), link("Dockerfile", "a")], None);
    assert_eq!(as_link, Err(ContextError::DockerfileNotFile { path: "Dockerfile".into() }));

    let designated = |p: &str| NormaliseOptions { dockerfile: Some(p.into()), ..NormaliseOptions::default() };
    let out = run(designated("build.Dockerfile"), vec![file("build.Dockerfile"), file("Dockerfile"), file("src")], None).unwrap();
    assert_eq!(paths(&out), ["Dockerfile", "src"]);
    assert_eq!(out[0].kind, OutputKind::File { source: "build.Dockerfile".into(), size: 1, mode: 0o644 });
    assert_eq!(run(designated("x"), vec![file("Dockerfile")], None), Err(ContextError::NoDockerfile { path: "x".into() }));
    assert_eq!(run(designated("d"), vec![dir("d")], None), Err(ContextError::DockerfileNotFile { path: "d".into() }));
    assert!(run(designated("Dockerfile"), vec![file("Dockerfile")], None).is_ok());
    assert_eq!(
        ContextNormaliser::new(designated("/etc/x")).unwrap_err(),
        ContextError::BadOptionPath { what: "Dockerfile path", path: "/etc/x".into() }
    );
}

#[test]
fn dockerignore_applies_at_the_final_root_but_keeps_the_dockerfile() {
    let options = NormaliseOptions { context_subdir: Some("app".into()), ..archive() };
    let entries = vec![
        file("w/app/Dockerfile"),
        file("w/app/.dockerignore"),
        file("w/app/secret.env"),
        file("w/app/target/big"),
        file("w/app/target/keep"),
        file("w/app/src/a.log"),
        file("w/.dockerignore"),
    ];
    let p = plan(options, entries).unwrap();
    assert_eq!(p.dockerignore_input(), Some(("w/app/.dockerignore", 1)));
    let out = p.apply(Some("# no secrets\n*.env\ntarget\n!target/keep\nDockerfile\n.dockerignore\n*.log\n")).unwrap();
    // `*.log` matches at the root only, as in docker
    assert_eq!(paths(&out), [".dockerignore", "Dockerfile", "src", "src/a.log", "target", "target/keep"]);
    // a directory rule
    let out = run(NormaliseOptions::default(), vec![file("Dockerfile"), file("out"), file("gen/x")], Some("out/\ngen/")).unwrap();
    assert_eq!(paths(&out), ["Dockerfile", "out"]);
    // an invalid file is an error naming the line
    let err = run(NormaliseOptions::default(), vec![file("Dockerfile")], Some("a\n**/b")).unwrap_err();
    assert_eq!(err, ContextError::Ignore(IgnoreError::DoubleStar { line: 2, text: "**/b".into() }));
    // a .dockerignore that is a directory is not read
    assert_eq!(plan(NormaliseOptions::default(), vec![file("Dockerfile"), dir(".dockerignore")]).unwrap().dockerignore_input(), None);
}

#[test]
fn symlinks_must_stay_inside_the_final_root() {
    let base = || vec![file("Dockerfile"), dir("d"), file("d/f")];
    let ok = [("l", "d/f"), ("d/l", "f"), ("d/l", "../Dockerfile"), ("d/l", "./f"), ("l", "d/../d/f"), ("l", "missing")];
    for (path, target) in ok {
        let mut entries = base();
        entries.push(link(path, target));
        assert!(run(NormaliseOptions::default(), entries, None).is_ok(), "{path} -> {target}");
    }
    let escaping = [("l", "/etc/passwd"), ("l", ".."), ("d/l", "../../x"), ("l", "missing/../../x"), ("l", "d/../..")];
    for (path, target) in escaping {
        let mut entries = base();
        entries.push(link(path, target));
        let err = run(NormaliseOptions::default(), entries, None).unwrap_err();
        assert_eq!(err, ContextError::SymlinkEscape { path: path.into(), target: target.into() });
    }
    // through another symlink: `up` is fine alone, `d/up/..` climbs out
    let entries = vec![file("Dockerfile"), dir("d"), link("d/up", ".."), link("l", "d/up/..")];
    assert_eq!(
        run(NormaliseOptions::default(), entries, None),
        Err(ContextError::SymlinkEscape { path: "l".into(), target: "d/up/..".into() })
    );
    // inside the archive but outside the re-rooted context
    let options = NormaliseOptions { context_subdir: Some("app".into()), ..NormaliseOptions::default() };
    let entries = vec![file("app/Dockerfile"), file("secret"), link("app/l", "../secret")];
    assert_eq!(run(options, entries, None), Err(ContextError::SymlinkEscape { path: "l".into(), target: "../secret".into() }));
    // a loop
    let entries = vec![file("Dockerfile"), link("a", "b"), link("b", "a")];
    assert_eq!(run(NormaliseOptions::default(), entries, None), Err(ContextError::SymlinkLoop { path: "a".into(), target: "b".into() }));
    // an ignored escaping symlink is not uploaded, so it does not matter
    let entries = vec![file("Dockerfile"), link("l", "/etc")];
    assert!(run(NormaliseOptions::default(), entries, Some("l")).is_ok());
}

#[test]
fn errors_say_what_to_do() {
    let msg = ContextError::NoDockerfile { path: "Dockerfile".into() }.to_string();
    assert!(msg.contains("--context-subdir"), "{msg}");
    let msg = ContextError::TooManyFiles { limit: 3 }.to_string();
    assert!(msg.contains(".dockerignore"), "{msg}");
}

fn tree_entry() -> impl Strategy<Value = InputEntry> {
    let name = prop::sample::select(vec!["a", "b", "c", "Dockerfile", ".dockerignore"]);
    let path = prop::collection::vec(name, 1..4).prop_map(|v| v.join("/"));
    let target = prop::sample::select(vec!["a", "../a", "b/c", "..", "/x", "Dockerfile"]).prop_map(str::to_owned);
    (path, 0..3u8, target, 0..0o1000u32).prop_map(|(path, k, target, mode)| match k {
        0 => InputEntry { path, kind: InputKind::File { size: u64::from(mode), mode } },
        1 => InputEntry { path, kind: InputKind::Dir },
        _ => InputEntry { path, kind: InputKind::Symlink { target } },
    })
}

proptest! {
    #[test]
    fn entry_order_does_not_change_the_result(
        entries in prop::collection::vec(tree_entry(), 0..12),
        seed in any::<u64>(),
        strip in any::<bool>(),
        ignore in prop::sample::select(vec![None, Some("a"), Some("*\n!b"), Some("b/")]),
    ) {
        let mut entries: Vec<InputEntry> = entries;
        entries.insert(0, file("w/Dockerfile"));
        let options = NormaliseOptions { strip_wrapper: strip, ..NormaliseOptions::default() };
        let first = run(options.clone(), entries.clone(), ignore);
        let mut shuffled = entries;
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let second = run(options, shuffled, ignore);
        // the first error found may differ with order; success and its output may not
        prop_assert_eq!(first.is_ok(), second.is_ok());
        if let (Ok(a), Ok(b)) = (&first, &second) {
            prop_assert_eq!(a, b);
            let mut sorted = paths(a);
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted, paths(a));
            for e in a {
                if let Some((parent, _)) = e.path.rsplit_once('/') {
                    let listed = a.iter().any(|p| p.path == parent && matches!(p.kind, OutputKind::Dir { .. }));
                    prop_assert!(listed, "parent {} of {} missing", parent, e.path);
                }
            }
        }
    }
}
