//! Hostile and oversized sources: each refused with the right error, nothing packaged.

use super::*;

/// A stored zip written byte by byte, so tests can hold what zip writers refuse (duplicates).
fn raw_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, body) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(body);
        let offset = out.len() as u32;
        let (n, len, sum) = (name.len() as u16, body.len() as u32, crc.sum());
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00");
        out.extend_from_slice(&[sum.to_le_bytes(), len.to_le_bytes(), len.to_le_bytes()].concat());
        out.extend_from_slice(&[n.to_le_bytes(), 0u16.to_le_bytes()].concat());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);
        central.extend_from_slice(b"PK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00");
        central.extend_from_slice(&[sum.to_le_bytes(), len.to_le_bytes(), len.to_le_bytes()].concat());
        central
            .extend_from_slice(&[n.to_le_bytes(), 0u16.to_le_bytes(), 0u16.to_le_bytes(), 0u16.to_le_bytes(), 0u16.to_le_bytes()].concat());
        central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (start, size, count) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&[count.to_le_bytes(), count.to_le_bytes()].concat());
    out.extend_from_slice(&[size.to_le_bytes(), start.to_le_bytes()].concat());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn refused(bytes: &[u8], o: &ContextOptions) -> String {
    match prepare_archive(bytes, o) {
        Err(Error::InvalidSource(m)) => m,
        other => panic!("expected InvalidSource, got {other:?}"),
    }
}

fn too_large(bytes: &[u8], o: &ContextOptions) -> String {
    match prepare_archive(bytes, o) {
        Err(Error::SourceTooLarge(m)) => m,
        other => panic!("expected SourceTooLarge, got {other:?}"),
    }
}

#[test]
fn hostile_zips_are_refused_naming_the_entry() {
    let df = f("Dockerfile", b"FROM x\n");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (make_zip(&[df.clone(), f("../evil", b"x")]), "\"../evil\" has a `..` component"),
        (make_zip(&[df.clone(), f("a/../../evil", b"x")]), "\"a/../../evil\" has a `..` component"),
        (make_zip(&[df.clone(), f("/etc/cron.d/x", b"x")]), "\"/etc/cron.d/x\" is an absolute path"),
        (make_zip(&[df.clone(), f("a", b"1"), f("./a", b"2")]), "\"a\" appears twice"),
        (raw_zip(&[("Dockerfile", b"FROM x\n"), ("a", b"1"), ("a", b"2")]), "same entry name twice"),
        (make_zip(&[df.clone(), Link("l", "/etc/passwd")]), "symlink \"l\" -> \"/etc/passwd\" points outside"),
        (make_zip(&[df.clone(), Dir("d/"), Link("d/l", "../../x")]), "symlink \"d/l\" -> \"../../x\" points outside"),
        (make_zip(&[df.clone(), Link("l", "."), f("l/x", b"x")]), "\"l/x\" is under \"l\", which is not a directory"),
        (make_zip(&[f("src/main.rs", b"x")]), "no \"Dockerfile\""),
        (make_zip(&[Dir("Dockerfile/")]), "not a regular file"),
    ];
    for (zip, want) in cases {
        let msg = refused(&zip, &opts());
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
    // the re-rooted context is the boundary: a link to a sibling of the subdir escapes it
    let zip = make_zip(&[f("app/Dockerfile", b"F"), f("secret", b"s"), Link("app/l", "../secret")]);
    let sub = ContextOptions { context_subdir: Some("app".into()), ..opts() };
    assert!(refused(&zip, &sub).contains("points outside"));
}

#[test]
fn hostile_tarballs_are_refused() {
    let escaping = make_targz(&[f("Dockerfile", b"F"), Link("l", "../../etc")]);
    assert!(refused(&escaping, &opts()).contains("points outside"));
    let none = make_targz(&[f("README", b"r")]);
    assert!(refused(&none, &opts()).contains("no \"Dockerfile\""));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"FROM not-a-tar\n").unwrap();
    assert!(refused(&gz.finish().unwrap(), &opts()).contains("tar"));
}

#[test]
fn caps_refuse_early_with_source_too_large() {
    let zip = make_zip(&[f("Dockerfile", b"FROM x\n"), f("a", &[b'a'; 4096]), f("b", b"b"), f("c", b"c")]);
    let limits =
        |c, u, n| ContextOptions { limits: ContextLimits { max_compressed_bytes: c, max_uncompressed_bytes: u, max_files: n }, ..opts() };
    assert!(too_large(&zip, &limits(100, 1 << 20, 100)).contains("compressed size limit of 100 bytes"));
    assert!(too_large(&zip, &limits(1 << 20, 1000, 100)).contains("uncompressed size limit of 1000 bytes"));
    assert!(too_large(&zip, &limits(1 << 20, 1 << 20, 3)).contains("more than 3 files"));
    let tgz = make_targz(&[f("Dockerfile", b"FROM x\n"), f("a", &[b'a'; 4096])]);
    assert!(too_large(&tgz, &limits(1 << 20, 1000, 100)).contains("limit of"));
    assert!(too_large(&tgz, &limits(10, 1 << 20, 100)).contains("limit of 10 bytes"));
    // a zip bomb: its declared size is refused before anything is inflated
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("Dockerfile", SimpleFileOptions::default()).unwrap();
    w.write_all(b"FROM x\n").unwrap();
    w.start_file("bomb", SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)).unwrap();
    w.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = w.finish().unwrap().into_inner();
    assert!(bomb.len() < 64 << 10);
    assert!(too_large(&bomb, &limits(1 << 20, 1 << 20, 100)).contains("uncompressed"));
    // local directories too
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[f("Dockerfile", b"F"), f("a", b"1"), f("b", b"2"), f("c", &[0; 2000])]);
    assert!(matches!(local(dir.path(), &limits(1 << 20, 1 << 20, 2)), Err(Error::SourceTooLarge(m)) if m.contains("more than 2")));
    assert!(matches!(local(dir.path(), &limits(1 << 20, 1000, 100)), Err(Error::SourceTooLarge(_))));
    let archive = dir.path().join("big.zip");
    std::fs::write(&archive, &zip).unwrap();
    assert!(matches!(local(&archive, &limits(100, 1 << 20, 100)), Err(Error::SourceTooLarge(_))));
}

#[test]
fn escaping_symlinks_in_a_local_dir_are_refused_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"secret").unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree, &[f("Dockerfile", b"F"), Link("abs", "/etc/passwd")]);
    let msg = match local(&tree, &opts()) {
        Err(Error::InvalidSource(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(msg.contains("\"abs\"") && msg.contains("points outside"), "{msg}");
    std::fs::remove_file(tree.join("abs")).unwrap();
    symlink("../outside", tree.join("rel")).unwrap();
    assert!(matches!(local(&tree, &opts()), Err(Error::InvalidSource(m)) if m.contains("\"rel\"")));
    // excluded by .dockerignore: not uploaded, so allowed
    std::fs::write(tree.join(".dockerignore"), b"rel\n").unwrap();
    let out = local(&tree, &opts()).unwrap();
    assert_eq!(names(&out.zip), [".dockerignore", "Dockerfile"]);
    assert!(!out.zip.windows(6).any(|w| w == b"secret"));
}
