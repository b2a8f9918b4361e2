use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use zip::write::SimpleFileOptions;

use super::*;

mod hostile;
mod remote;
mod server;

// ---- fixtures ----

/// One thing to put in a test archive.
#[derive(Clone)]
enum Item {
    File(&'static str, &'static [u8], u32),
    Dir(&'static str),
    Link(&'static str, &'static str),
}
use Item::{Dir, File, Link};

fn f(path: &'static str, body: &'static [u8]) -> Item {
    File(path, body, 0o644)
}

/// A zip of `items`, names exactly as given.
fn make_zip(items: &[Item]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default();
    for item in items {
        match item {
            File(p, body, mode) => {
                w.start_file(*p, o.unix_permissions(*mode)).unwrap();
                w.write_all(body).unwrap();
            }
            Dir(p) => w.add_directory(*p, o).unwrap(),
            Link(p, t) => w.add_symlink(*p, *t, o).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// A tar.gz of `items`.
fn make_targz(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for item in items {
        let mut h = tar::Header::new_gnu();
        match item {
            File(p, body, mode) => {
                h.set_size(body.len() as u64);
                h.set_mode(*mode);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, p, *body).unwrap();
            }
            Dir(p) => {
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Writes `items` under `root`.
fn make_tree(root: &Path, items: &[Item]) {
    for item in items {
        match item {
            File(p, body, mode) => {
                let path = root.join(p);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, body).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            Dir(p) => std::fs::create_dir_all(root.join(p)).unwrap(),
            Link(p, t) => {
                std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
                symlink(t, root.join(p)).unwrap();
            }
        }
    }
}

/// What a zip holds: path -> (kind, unix mode, content or target).
#[derive(Debug, PartialEq, Eq)]
enum Got {
    File(u32, Vec<u8>),
    Dir(u32),
    Link(String),
}

fn unzip(bytes: &[u8]) -> BTreeMap<String, Got> {
    let mut a = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..a.len() {
        let mut e = a.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let mode = e.unix_mode().unwrap();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        let got = if e.is_symlink() {
            Got::Link(String::from_utf8(body).unwrap())
        } else if e.is_dir() {
            Got::Dir(mode & 0o7777)
        } else {
            Got::File(mode & 0o7777, body)
        };
        out.insert(name.trim_end_matches('/').to_owned(), got);
    }
    out
}

fn names(zip: &[u8]) -> Vec<String> {
    let a = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    a.file_names().map(|n| n.unwrap().trim_end_matches('/').to_owned()).collect()
}

fn local(path: &Path, opts: &ContextOptions) -> Result<PreparedContext, Error> {
    prepare(&Source::Local { path: path.to_str().unwrap().to_owned() }, opts)
}

fn opts() -> ContextOptions {
    ContextOptions::default()
}

fn project() -> Vec<Item> {
    vec![
        f("Dockerfile", b"FROM scratch\n"),
        f(".dockerignore", b"# build output\ntarget\n*.log\n!keep.log\n"),
        f("src/main.rs", b"fn main() {}\n"),
        File("run.sh", b"#!/bin/sh\n", 0o755),
        File("private.key", b"k", 0o600),
        f("target/big", b"0000"),
        f("x.log", b"log"),
        f("keep.log", b"kept"),
        Link("link", "src/main.rs"),
        Dir("empty"),
    ]
}

// ---- local sources ----

#[test]
fn a_local_directory_becomes_a_deterministic_zip() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &project());
    let first = local(dir.path(), &opts()).unwrap();
    let got = unzip(&first.zip);
    let want: BTreeMap<String, Got> = [
        (".dockerignore", Got::File(0o644, b"# build output\ntarget\n*.log\n!keep.log\n".to_vec())),
        ("Dockerfile", Got::File(0o644, b"FROM scratch\n".to_vec())),
        ("empty", Got::Dir(0o755)),
        ("keep.log", Got::File(0o644, b"kept".to_vec())),
        ("link", Got::Link("src/main.rs".into())),
        ("private.key", Got::File(0o600, b"k".to_vec())),
        ("run.sh", Got::File(0o755, b"#!/bin/sh\n".to_vec())),
        ("src", Got::Dir(0o755)),
        ("src/main.rs", Got::File(0o644, b"fn main() {}\n".to_vec())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(got, want);
    assert_eq!(names(&first.zip), got.keys().cloned().collect::<Vec<_>>(), "sorted order");
    assert_eq!((first.files, first.uncompressed_bytes), (7, 13 + 38 + 4 + 1 + 10 + 13));
    assert_eq!(first.sha256_hex.len(), 64);
    // the same tree, touched, gives the same bytes
    std::fs::write(dir.path().join("src/main.rs"), b"fn main() {}\n").unwrap();
    let second = local(dir.path(), &opts()).unwrap();
    assert_eq!(first, second);
    let debug = format!("{first:?}");
    assert!(debug.contains("bytes") && debug.len() < 300, "{debug}");
}

#[test]
fn a_local_dockerfile_uses_its_directory_as_context() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[f("build.Dockerfile", b"FROM a\n"), f("Dockerfile", b"FROM other\n"), f("app.txt", b"x")]);
    let out = local(&dir.path().join("build.Dockerfile"), &opts()).unwrap();
    let got = unzip(&out.zip);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["Dockerfile", "app.txt"]);
    assert_eq!(got["Dockerfile"], Got::File(0o644, b"FROM a\n".to_vec()));
    let plain = local(&dir.path().join("Dockerfile"), &opts()).unwrap();
    assert_eq!(unzip(&plain.zip)["Dockerfile"], Got::File(0o644, b"FROM other\n".to_vec()));
    let with_subdir = ContextOptions { context_subdir: Some("x".into()), ..opts() };
    assert!(matches!(local(&dir.path().join("Dockerfile"), &with_subdir), Err(Error::InvalidSource(m)) if m.contains("--context-subdir")));
    assert!(matches!(local(&dir.path().join("app.txt"), &opts()), Err(Error::InvalidSource(m)) if m.contains("neither")));
    assert!(matches!(local(&dir.path().join("missing"), &opts()), Err(Error::InvalidSource(_))));
}

#[test]
fn local_archives_are_unpacked_and_unwrapped() {
    let dir = tempfile::tempdir().unwrap();
    let items =
        [Dir("repo-abc/"), f("repo-abc/Dockerfile", b"FROM z\n"), File("repo-abc/bin/tool", b"t", 0o755), Link("repo-abc/l", "bin/tool")];
    std::fs::write(dir.path().join("src.zip"), make_zip(&items)).unwrap();
    std::fs::write(dir.path().join("src.tgz"), make_targz(&items)).unwrap();
    std::fs::write(dir.path().join("src.tar.gz"), make_targz(&items)).unwrap();
    let want = ["Dockerfile", "bin", "bin/tool", "l"];
    for name in ["src.zip", "src.tgz", "src.tar.gz"] {
        let out = local(&dir.path().join(name), &opts()).unwrap();
        let got = unzip(&out.zip);
        assert_eq!(got.keys().collect::<Vec<_>>(), want, "{name}");
        assert_eq!(got["bin/tool"], Got::File(0o755, b"t".to_vec()), "{name}");
        assert_eq!(got["l"], Got::Link("bin/tool".into()), "{name}");
    }
    std::fs::write(dir.path().join("fake.zip"), b"not a zip").unwrap();
    assert!(matches!(local(&dir.path().join("fake.zip"), &opts()), Err(Error::InvalidSource(_))));
}

#[test]
fn the_context_subdir_re_roots_dirs_and_archives() {
    let dir = tempfile::tempdir().unwrap();
    let items =
        [f("Dockerfile", b"root"), f("svc/Dockerfile", b"svc"), f("svc/.dockerignore", b"junk\n"), f("svc/junk", b"j"), f("svc/a", b"a")];
    make_tree(&dir.path().join("tree"), &items);
    std::fs::write(dir.path().join("a.zip"), make_zip(&items)).unwrap();
    let sub = ContextOptions { context_subdir: Some("svc".into()), ..opts() };
    for path in [dir.path().join("tree"), dir.path().join("a.zip")] {
        let got = unzip(&local(&path, &sub).unwrap().zip);
        assert_eq!(got.keys().collect::<Vec<_>>(), [".dockerignore", "Dockerfile", "a"], "{}", path.display());
        assert_eq!(got["Dockerfile"], Got::File(0o644, b"svc".to_vec()));
        let missing = ContextOptions { context_subdir: Some("nope".into()), ..opts() };
        assert!(matches!(local(&path, &missing), Err(Error::InvalidSource(m)) if m.contains("nope") && m.contains("--context-subdir")));
        let climbing = ContextOptions { context_subdir: Some("../x".into()), ..opts() };
        assert!(matches!(local(&path, &climbing), Err(Error::InvalidSource(m)) if m.contains("..")));
    }
    // a subdir reached through a symlink is refused
    symlink("svc", dir.path().join("tree/via")).unwrap();
    let via = ContextOptions { context_subdir: Some("via".into()), ..opts() };
    assert!(matches!(local(&dir.path().join("tree"), &via), Err(Error::InvalidSource(m)) if m.contains("not a directory")));
}

#[test]
fn dockerignore_prunes_the_walk_unless_something_is_re_included() {
    let dir = tempfile::tempdir().unwrap();
    let mut items = vec![f("Dockerfile", b"F"), f(".dockerignore", b"node_modules\n")];
    items.extend((0..30).map(|i| f(Box::leak(format!("node_modules/m{i}").into_boxed_str()), b"x")));
    make_tree(dir.path(), &items);
    let small = ContextOptions { limits: ContextLimits { max_files: 5, ..ContextLimits::default() }, ..opts() };
    let out = local(dir.path(), &small).unwrap();
    assert_eq!(names(&out.zip), [".dockerignore", "Dockerfile"]);
    std::fs::write(dir.path().join(".dockerignore"), b"node_modules\n!node_modules/m1\n").unwrap();
    let out = local(dir.path(), &opts()).unwrap();
    assert_eq!(names(&out.zip), [".dockerignore", "Dockerfile", "node_modules", "node_modules/m1"]);
    std::fs::write(dir.path().join(".dockerignore"), b"**/x\n").unwrap();
    assert!(matches!(local(dir.path(), &opts()), Err(Error::InvalidSource(m)) if m.contains("line 1") && m.contains("**")));
}

#[test]
fn prepare_archive_takes_s3_bytes_and_prepare_refuses_s3() {
    let zip = make_zip(&[f("w/Dockerfile", b"FROM s3\n")]);
    assert_eq!(names(&prepare_archive(&zip, &opts()).unwrap().zip), ["Dockerfile"]);
    let raw = prepare_archive(b"FROM text\n", &opts()).unwrap();
    assert_eq!(unzip(&raw.zip)["Dockerfile"], Got::File(0o644, b"FROM text\n".to_vec()));
    assert!(matches!(prepare_archive(&[0xff, 0x00, 0x01], &opts()), Err(Error::InvalidSource(_))));
    let s3 = Source::S3 { bucket: "b".into(), key: "k".into() };
    assert!(matches!(prepare(&s3, &opts()), Err(Error::InvalidSource(_))));
}

#[test]
fn options_debug_shows_no_secret() {
    let o = ContextOptions {
        https_headers: vec![("X-Api-Key".into(), Secret::new("hdr-s3cr3t".into()))],
        github_token: Some(Secret::new("ghp_t0ken".into())),
        extra_root_certs_pem: vec![b"-----BEGIN CERTIFICATE-----".to_vec()],
        ..opts()
    };
    let shown = format!("{o:?}");
    assert!(!shown.contains("hdr-s3cr3t") && !shown.contains("ghp_t0ken") && !shown.contains("BEGIN"), "{shown}");
    assert!(shown.contains("X-Api-Key") && shown.contains("<redacted>"), "{shown}");
}
