use proptest::prelude::*;

use super::*;

// ---- a raw tar writer, so tests can build what real tar tools refuse to ----

/// A ustar header with a valid checksum.
fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0001750\0");
    h[116..124].copy_from_slice(b"0001750\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14712345670\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    seal(&mut h);
    h
}

/// Recomputes the (unsigned) checksum.
fn seal(h: &mut [u8; BLOCK]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// One raw entry: header (plus 'L'/'K' records for long names) and padded data.
#[derive(Debug, Clone)]
struct Raw {
    name: Vec<u8>,
    typeflag: u8,
    link: Vec<u8>,
    data: Vec<u8>,
}

fn raw(name: &str, typeflag: u8, link: &str, data: &[u8]) -> Raw {
    Raw { name: name.into(), typeflag, link: link.into(), data: data.to_vec() }
}
fn file(name: &str, data: &[u8]) -> Raw {
    raw(name, b'0', "", data)
}
fn dir(name: &str) -> Raw {
    raw(name, b'5', "", b"")
}
fn symlink(name: &str, target: &str) -> Raw {
    raw(name, b'2', target, b"")
}

fn padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64) as usize, 0);
}

fn long_record(out: &mut Vec<u8>, typeflag: u8, value: &[u8]) {
    let mut v = value.to_vec();
    v.push(0);
    out.extend_from_slice(&header(b"././@LongLink", typeflag, v.len() as u64, b""));
    padded(out, &v);
}

fn write_raw(out: &mut Vec<u8>, e: &Raw) {
    let name = if e.name.len() > 100 {
        long_record(out, b'L', &e.name);
        &e.name[..100]
    } else {
        &e.name[..]
    };
    let link = if e.link.len() > 100 {
        long_record(out, b'K', &e.link);
        &e.link[..100]
    } else {
        &e.link[..]
    };
    out.extend_from_slice(&header(name, e.typeflag, e.data.len() as u64, link));
    padded(out, &e.data);
}

/// A PAX extended header carrying `records`.
fn pax(out: &mut Vec<u8>, typeflag: u8, records: &[(&str, &[u8])]) {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    out.extend_from_slice(&header(b"PaxHeaders/x", typeflag, body.len() as u64, b""));
    padded(out, &body);
}

fn archive(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    entries.iter().for_each(|e| write_raw(&mut out, e));
    end(out)
}

fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

// ---- driving the guard ----

/// Feeds `bytes` cut at `cuts`, then EOF; returns the events (Data coalesced) and the verdict.
fn run_with(limits: Limits, bytes: &[u8], cuts: &[usize]) -> (Vec<ArchiveEvent>, Result<(), ArchiveError>) {
    let mut g = TarGuard::new(limits);
    let mut events: Vec<ArchiveEvent> = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    let mut last = 0;
    let mut verdict = Ok(());
    for p in points {
        verdict = g.handle_bytes(&bytes[last..p]);
        drain(&mut g, &mut events);
        last = p;
        if verdict.is_err() {
            break;
        }
    }
    if verdict.is_ok() {
        verdict = g.handle_eof();
        drain(&mut g, &mut events);
    }
    (events, verdict)
}

fn drain(g: &mut TarGuard, events: &mut Vec<ArchiveEvent>) {
    while let Some(ev) = g.poll_event() {
        match (ev, events.last_mut()) {
            (ArchiveEvent::Data(d), Some(ArchiveEvent::Data(prev))) => prev.extend(d),
            (ev, _) => events.push(ev),
        }
    }
}

fn run(bytes: &[u8]) -> (Vec<ArchiveEvent>, Result<(), ArchiveError>) {
    run_with(Limits::default(), bytes, &[])
}

fn verdict(entries: &[Raw]) -> Result<(), ArchiveError> {
    let (events, v) = run(&archive(entries));
    assert_eq!(v.is_ok(), events.last() == Some(&ArchiveEvent::End), "End iff accepted: {events:?} {v:?}");
    v
}

fn entry(path: &str, kind: EntryKind, mode: u32, size: u64) -> ArchiveEvent {
    ArchiveEvent::Entry(Entry { path: path.into(), kind, mode, size, mtime: 0o14712345670 })
}

fn s(x: &str) -> String {
    x.to_owned()
}

// ---- what passes ----

#[test]
fn files_dirs_and_in_tree_symlinks_pass_with_exact_data() {
    let mut bytes = Vec::new();
    write_raw(&mut bytes, &dir("dir/"));
    let mut h = header(b"dir/file", b'0', 5, b"");
    h[100..108].copy_from_slice(b"0006755\0");
    seal(&mut h);
    bytes.extend_from_slice(&h);
    padded(&mut bytes, b"hello");
    write_raw(&mut bytes, &symlink("dir/link", "../top"));
    write_raw(&mut bytes, &file("top", &[7; 1000]));
    let (events, v) = run(&end(bytes));
    assert_eq!(v, Ok(()));
    assert_eq!(
        events,
        vec![
            entry("dir", EntryKind::Dir, 0o644, 0),
            entry("dir/file", EntryKind::File, 0o755, 5),
            ArchiveEvent::Data(b"hello".to_vec()),
            entry("dir/link", EntryKind::Symlink { target: b"../top".to_vec() }, 0o644, 0),
            entry("top", EntryKind::File, 0o644, 1000),
            ArchiveEvent::Data(vec![7; 1000]),
            ArchiveEvent::End,
        ]
    );
}

#[test]
fn paths_are_normalised_and_the_root_entry_is_skipped() {
    let (events, v) = run(&archive(&[dir("./"), dir("./a/"), file("./a/.//b", b""), dir(".")]));
    assert_eq!(v, Ok(()));
    assert_eq!(events, vec![entry("a", EntryKind::Dir, 0o644, 0), entry("a/b", EntryKind::File, 0o644, 0), ArchiveEvent::End]);
    assert!(matches!(verdict(&[file("./", b"x")]), Err(ArchiveError::BadHeader { .. })));
}

#[test]
fn an_explicit_directory_may_follow_its_contents() {
    assert_eq!(verdict(&[file("a/b/c", b"x"), dir("a/b/"), dir("a")]), Ok(()));
    assert_eq!(verdict(&[file("a/b", b"x"), file("a", b"")]), Err(ArchiveError::ReplacesDirectory { path: s("a") }));
    assert_eq!(verdict(&[file("a/b", b"x"), symlink("a", "b")]), Err(ArchiveError::ReplacesDirectory { path: s("a") }));
}

#[test]
fn symlinks_to_anything_inside_pass() {
    let ok = [
        dir("d"),
        dir("d/e"),
        symlink("d/e/up", "../.."),
        symlink("d/self", "."),
        symlink("d/later", "../x/y"),
        symlink("chain", "d/self/e/up/d"),
        symlink("dangling", "nowhere/../d"),
        file("x/y", b"1"),
    ];
    assert_eq!(verdict(&ok), Ok(()));
}

// ---- what is refused ----

#[test]
fn absolute_paths_are_refused() {
    assert_eq!(verdict(&[file("/etc/passwd", b"x")]), Err(ArchiveError::AbsolutePath { path: s("/etc/passwd") }));
    assert_eq!(verdict(&[dir("//")]), Err(ArchiveError::AbsolutePath { path: s("//") }));
}

#[test]
fn parent_components_are_refused() {
    for p in ["..", "../x", "a/../../x", "a/../b", "./.."] {
        assert_eq!(verdict(&[file(p, b"")]), Err(ArchiveError::ParentComponent { path: s(p) }), "{p}");
    }
}

#[test]
fn duplicates_are_refused() {
    assert_eq!(verdict(&[file("a", b"1"), file("./a", b"2")]), Err(ArchiveError::Duplicate { path: s("a") }));
    assert_eq!(verdict(&[dir("d/"), dir("d")]), Err(ArchiveError::Duplicate { path: s("d") }));
    assert_eq!(verdict(&[symlink("l", "a"), file("l", b"")]), Err(ArchiveError::Duplicate { path: s("l") }));
}

#[test]
fn hard_links_are_always_refused() {
    assert_eq!(verdict(&[file("a", b"1"), raw("b", b'1', "a", b"")]), Err(ArchiveError::HardLink { path: s("b"), target: s("a") }));
}

#[test]
fn devices_fifos_and_unknown_types_are_refused() {
    for (t, kind) in [(b'3', "character device"), (b'4', "block device"), (b'6', "FIFO")] {
        assert_eq!(verdict(&[raw("dev", t, "", b"")]), Err(ArchiveError::SpecialFile { path: s("dev"), kind }));
    }
    for t in [b'S', b'V', b'M', b'N', b'D', b'Z', b'9'] {
        assert_eq!(verdict(&[raw("odd", t, "", b"")]), Err(ArchiveError::Unsupported { path: s("odd"), typeflag: t }));
    }
    let mut bytes = Vec::new();
    pax(&mut bytes, b'x', &[("GNU.sparse.major", b"1")]);
    write_raw(&mut bytes, &file("sparse", b"map"));
    assert_eq!(run(&end(bytes)).1, Err(ArchiveError::Unsupported { path: s("sparse"), typeflag: b'S' }));
}

#[test]
fn escaping_symlinks_are_refused() {
    let esc = |p: &str, t: &str| Err(ArchiveError::SymlinkEscape { path: s(p), target: s(t) });
    assert_eq!(verdict(&[symlink("l", "/etc")]), esc("l", "/etc"));
    assert_eq!(verdict(&[symlink("l", "..")]), esc("l", ".."));
    assert_eq!(verdict(&[dir("d"), symlink("d/l", "../../x")]), esc("d/l", "../../x"));
    assert_eq!(verdict(&[symlink("l", "a/../..")]), esc("l", "a/../.."));
    // A chain: each link alone stays inside, followed together they climb out.
    assert_eq!(verdict(&[symlink("l", "."), symlink("m", "l/..")]), esc("m", "l/.."));
    assert_eq!(verdict(&[dir("d"), symlink("d/up", ".."), symlink("d/out", "up/d/up/..")]), esc("d/out", "up/d/up/.."));
}

#[test]
fn a_later_symlink_that_makes_an_earlier_one_escape_is_caught_before_end() {
    let (events, v) = run(&archive(&[symlink("s", "t/.."), symlink("t", ".")]));
    assert_eq!(v, Err(ArchiveError::SymlinkEscape { path: s("s"), target: s("t/..") }));
    assert_eq!(events.len(), 2, "both entries were reported, but never End: {events:?}");
}

#[test]
fn symlink_loops_are_refused() {
    assert_eq!(verdict(&[symlink("a", "b"), symlink("b", "a")]), Err(ArchiveError::SymlinkLoop { path: s("b"), target: s("a") }));
    assert_eq!(verdict(&[symlink("a", "a/x")]), Err(ArchiveError::SymlinkLoop { path: s("a"), target: s("a/x") }));
}

#[test]
fn writing_through_a_symlink_is_refused_even_inside() {
    assert_eq!(
        verdict(&[dir("sub"), symlink("link", "sub"), file("link/file", b"x")]),
        Err(ArchiveError::ThroughSymlink { path: s("link/file"), symlink: s("link") })
    );
    assert_eq!(
        verdict(&[dir("a"), symlink("a/l", "."), dir("a/l/b/")]),
        Err(ArchiveError::ThroughSymlink { path: s("a/l/b"), symlink: s("a/l") })
    );
}

#[test]
fn entries_under_a_file_are_refused() {
    assert_eq!(verdict(&[file("f", b"x"), file("f/g/h", b"")]), Err(ArchiveError::UnderNonDirectory { path: s("f/g/h"), parent: s("f") }));
}

#[test]
fn symlink_target_and_data_rules() {
    assert!(matches!(verdict(&[symlink("l", "")]), Err(ArchiveError::BadHeader { .. })));
    assert!(matches!(verdict(&[raw("d", b'5', "", b"data")]), Err(ArchiveError::BadHeader { .. })));
    assert!(matches!(verdict(&[raw("l", b'2', "x", b"data")]), Err(ArchiveError::BadHeader { .. })));
    let long = "a/".repeat(2048);
    assert!(matches!(verdict(&[symlink("l", &long)]), Err(ArchiveError::BadHeader { .. })));
}

// ---- formats ----

#[test]
fn long_names_prefix_and_pax_overrides() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(130));
    let long_target = format!("{}/{}", "d".repeat(120), "f".repeat(130));
    let mut bytes = archive(&[file(&long, b"abc"), symlink("l", &long_target)]);
    bytes.truncate(bytes.len() - 2 * BLOCK);
    // ustar prefix: "pre/fix" + "name".
    let mut h = header(b"name", b'0', 0, b"");
    h[345..352].copy_from_slice(b"pre/fix");
    seal(&mut h);
    bytes.extend_from_slice(&h);
    // PAX path/linkpath/size/mtime override the header's.
    pax(&mut bytes, b'g', &[("comment", b"ignored")]);
    pax(&mut bytes, b'x', &[("path", b"pax/\xffname"), ("mtime", b"1700000000.25"), ("size", b"4"), ("atime", b"1")]);
    bytes.extend_from_slice(&header(b"short", b'0', 999, b""));
    padded(&mut bytes, b"wxyz");
    pax(&mut bytes, b'x', &[("linkpath", b"../pax"), ("path", b"pax/link")]);
    write_raw(&mut bytes, &symlink("x", "y"));
    let (events, v) = run(&end(bytes));
    assert_eq!(v, Ok(()));
    let paths: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ArchiveEvent::Entry(e) => Some((e.path.clone(), e.kind.clone(), e.size, e.mtime)),
            _ => None,
        })
        .collect();
    let t = 0o14712345670;
    assert_eq!(
        paths,
        vec![
            (long.clone().into_bytes(), EntryKind::File, 3, t),
            (b"l".to_vec(), EntryKind::Symlink { target: long_target.into_bytes() }, 0, t),
            (b"pre/fix/name".to_vec(), EntryKind::File, 0, t),
            (b"pax/\xffname".to_vec(), EntryKind::File, 4, 1_700_000_000),
            (b"pax/link".to_vec(), EntryKind::Symlink { target: b"../pax".to_vec() }, 0, t),
        ]
    );
    assert!(events.contains(&ArchiveEvent::Data(b"wxyz".to_vec())));
}

#[test]
fn checksums_signed_or_unsigned_and_base256_numbers() {
    let mut h = header(b"caf\xe9", b'0', 0, b"");
    h[124] = 0x80;
    h[125..136].fill(0);
    h[135] = 3;
    h[136] = 0x80;
    h[137..148].fill(0);
    h[147] = 9;
    h[148..156].copy_from_slice(b"        ");
    let signed: i64 = h.iter().map(|&b| i64::from(b.cast_signed())).sum();
    h[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
    let mut bytes = h.to_vec();
    padded(&mut bytes, b"xyz");
    let (events, v) = run(&end(bytes));
    assert_eq!(v, Ok(()));
    assert_eq!(events[0], ArchiveEvent::Entry(Entry { path: b"caf\xe9".to_vec(), kind: EntryKind::File, mode: 0o644, size: 3, mtime: 9 }));
    let mut bad = archive(&[file("a", b"x")]);
    bad[0] ^= 1;
    assert!(matches!(run(&bad).1, Err(ArchiveError::BadHeader { reason: "checksum mismatch: not a tar header, or a corrupt one", .. })));
}

#[test]
fn v7_headers_and_slash_suffixed_files_are_read() {
    let mut h = header(b"old/", 0, 0, b"");
    h[257..265].fill(0);
    seal(&mut h);
    let mut bytes = h.to_vec();
    bytes.extend_from_slice(&header(b"old/f", 0, 0, b""));
    let (events, v) = run(&end(bytes));
    assert_eq!(v, Ok(()));
    assert_eq!(events, vec![entry("old", EntryKind::Dir, 0o644, 0), entry("old/f", EntryKind::File, 0o644, 0), ArchiveEvent::End]);
}

#[test]
fn malformed_metadata_is_refused() {
    let bad_pax = |body: &[u8]| {
        let mut b = header(b"p", b'x', body.len() as u64, b"").to_vec();
        padded(&mut b, body);
        write_raw(&mut b, &file("f", b""));
        run(&end(b)).1
    };
    for body in [&b"5 a=b"[..], b"99 a=b\n", b"x a=b\n", b"6 ab\n\n", b"6 a=b\n6 a=b"] {
        assert!(matches!(bad_pax(body), Err(ArchiveError::BadHeader { .. })), "{body:?}");
    }
    let mut big = header(b"L", b'L', METADATA_MAX + 1, b"").to_vec();
    big.resize(big.len() + 70_000, b'a');
    assert!(matches!(run(&big).1, Err(ArchiveError::BadHeader { reason: "a long-name or PAX record is larger than 64 KiB", .. })));
    let mut dangling = Vec::new();
    long_record(&mut dangling, b'L', b"name");
    assert!(matches!(run(&end(dangling)).1, Err(ArchiveError::BadHeader { .. })));
}

// ---- end of archive, caps, poisoning ----

#[test]
fn end_needs_two_zero_blocks_and_ignores_what_follows() {
    assert_eq!(run(b"").1, Err(ArchiveError::Truncated));
    let whole = archive(&[file("a", b"hello")]);
    assert_eq!(run(&whole[..whole.len() - BLOCK]).1, Err(ArchiveError::Truncated));
    assert_eq!(run(&whole[..700]).1, Err(ArchiveError::Truncated));
    let mut lone = whole[..whole.len() - 2 * BLOCK].to_vec();
    lone.resize(lone.len() + BLOCK, 0);
    lone.extend_from_slice(&archive(&[file("b", b"")]));
    assert!(matches!(run(&lone).1, Err(ArchiveError::BadHeader { reason: "a lone zero block in the middle of the archive", .. })));
    // GNU tar pads to 10240 bytes; anything after the marker is ignored.
    let mut padded_out = whole.clone();
    padded_out.resize(10240, 0);
    padded_out.extend_from_slice(b"trailing garbage");
    assert_eq!(run(&padded_out).1, Ok(()));
}

#[test]
fn caps_hold() {
    let bytes = archive(&[file("a", b"1"), file("b", b"2")]);
    let limits = |c, u, e| Limits { compressed_bytes: c, uncompressed_bytes: u, entries: e };
    assert_eq!(run_with(limits(1, bytes.len() as u64, 2), &bytes, &[]).1, Ok(()));
    assert_eq!(run_with(limits(1, bytes.len() as u64, 1), &bytes, &[]).1, Err(ArchiveError::TooManyEntries { limit: 1 }));
    let short = bytes.len() as u64 - 1;
    assert_eq!(run_with(limits(1, short, 2), &bytes, &[]).1, Err(ArchiveError::TooLarge { what: "uncompressed", limit: short }));
    // A declared size beyond the cap is refused at its header.
    let mut huge = header(b"big", b'0', 0, b"");
    huge[124..136].copy_from_slice(b"77777777777\0");
    seal(&mut huge);
    assert_eq!(run(&huge).1, Err(ArchiveError::TooLarge { what: "uncompressed", limit: 1 << 30 }));
    let mut g = TarGuard::new(limits(10, 100, 1));
    assert_eq!(g.handle_compressed(10), Ok(()));
    assert_eq!(g.handle_compressed(1), Err(ArchiveError::TooLarge { what: "compressed", limit: 10 }));
    assert_eq!(Limits::default(), limits(256 << 20, 1 << 30, 10_000));
}

#[test]
fn errors_are_sticky_and_nothing_new_is_reported() {
    let mut g = TarGuard::new(Limits::default());
    let bytes = archive(&[file("ok", b"x"), file("/abs", b"")]);
    let err = ArchiveError::AbsolutePath { path: s("/abs") };
    assert_eq!(g.handle_bytes(&bytes), Err(err.clone()));
    let mut events = Vec::new();
    drain(&mut g, &mut events);
    assert_eq!(events, vec![entry("ok", EntryKind::File, 0o644, 1), ArchiveEvent::Data(b"x".to_vec())]);
    assert_eq!(g.handle_bytes(&archive(&[file("more", b"")])), Err(err.clone()));
    assert_eq!(g.handle_compressed(1), Err(err.clone()));
    assert_eq!(g.handle_eof(), Err(err));
    assert_eq!(g.poll_event(), None);
}

#[test]
fn messages_name_the_path_and_escape_it() {
    let e = verdict(&[file("/etc/\x1b[31mred", b"")]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(r#""/etc/\u{1b}[31mred""#) && msg.contains("absolute"), "{msg}");
    let e = verdict(&[symlink("l", "../x")]).unwrap_err();
    assert_eq!(e.to_string(), r#"archive symlink "l" -> "../x" points outside the destination"#);
}

/// Archives GNU tar 1.34 made (the fuzz seeds): the plain ones pass, the hostile ones do not.
#[test]
fn gnu_tar_archives() {
    macro_rules! seed {
        ($name:literal) => {
            ($name, &include_bytes!(concat!("../../../fuzz/corpus/tar_guard/", $name))[..])
        };
    }
    let tree = run(seed!("gnu-tree.tar").1);
    assert_eq!(tree.1, Ok(()));
    let paths: Vec<String> =
        tree.0.iter().filter_map(|e| if let ArchiveEvent::Entry(e) = e { Some(show(&e.path)) } else { None }).collect();
    assert_eq!(paths, ["d", "d/file", "d/link", "d/sub", "d/sub/deep"]);
    assert!(tree.0.contains(&ArchiveEvent::Data(b"hello\n".to_vec())));
    for (name, bytes) in [
        seed!("gnu-longnames-pax.tar"),
        seed!("gnu-longnames.tar"),
        seed!("ustar-prefix.tar"),
        seed!("v7.tar"),
        seed!("gnu-default-blocking.tar"),
    ] {
        let (events, v) = run(bytes);
        assert_eq!(v, Ok(()), "{name}: {events:?}");
        assert!(events.len() > 2, "{name}");
    }
    let hostile = [
        (seed!("hostile-absolute.tar"), "AbsolutePath"),
        (seed!("hostile-dotdot.tar"), "ParentComponent"),
        (seed!("hostile-escape.tar"), "SymlinkEscape"),
        (seed!("hostile-fifo.tar"), "SpecialFile"),
        (seed!("hostile-hardlink.tar"), "HardLink"),
    ];
    for ((name, bytes), want) in hostile {
        let v = run(bytes).1.unwrap_err();
        assert!(format!("{v:?}").starts_with(want), "{name}: {v:?}");
    }
}

// ---- generated archives ----

/// A generated valid tree, in archive order.
#[derive(Debug, Clone)]
enum Item {
    Dir(String),
    File(String, Vec<u8>, u32, u64),
    Symlink(String, String),
}

impl Item {
    fn path(&self) -> &str {
        match self {
            Item::Dir(p) | Item::File(p, ..) | Item::Symlink(p, _) => p,
        }
    }
}

/// Builds a valid tree from choices: each item goes into an earlier directory; symlinks
/// point at an earlier item through `..` up to the root, so they stay inside.
fn tree_from(choices: &[(usize, u8, bool, Vec<u8>)]) -> Vec<Item> {
    let mut dirs = vec![String::new()];
    let mut items: Vec<Item> = Vec::new();
    for (i, (pick, kind, long, data)) in choices.iter().enumerate() {
        let parent = dirs[pick % dirs.len()].clone();
        let stem = if *long { format!("n{i}-{}", "x".repeat(90 + i % 40)) } else { format!("n{i}") };
        let path = if parent.is_empty() { stem } else { format!("{parent}/{stem}") };
        items.push(match kind % 4 {
            0 => {
                dirs.push(path.clone());
                Item::Dir(path)
            }
            1 if !items.is_empty() => {
                let target = items[pick % items.len()].path().to_owned();
                let up = "../".repeat(parent.matches('/').count() + usize::from(!parent.is_empty()));
                Item::Symlink(path, format!("{up}{target}"))
            }
            _ => Item::File(path, data.clone(), 0o600 + u32::from(*kind) % 0o200 * 8 % 0o200, u64::from(*kind) * 1_000_003),
        });
    }
    items
}

fn choices() -> impl Strategy<Value = Vec<(usize, u8, bool, Vec<u8>)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), prop::bool::weighted(0.2), prop::collection::vec(any::<u8>(), 0..1200)), 0..12)
}

/// Writes the tree with the `tar` crate: GNU or ustar headers, some paths in PAX records.
fn build_with_tar_crate(items: &[Item], gnu: bool, pax_every: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (i, item) in items.iter().enumerate() {
        let mut h = if gnu { tar::Header::new_gnu() } else { tar::Header::new_ustar() };
        h.set_mtime(1_600_000_000 + i as u64);
        h.set_mode(0o755);
        let mut path = item.path().to_owned();
        if pax_every > 0 && i % pax_every == 0 {
            b.append_pax_extensions([("path", path.as_bytes())]).unwrap();
            path = format!("ignored{i}");
        }
        match item {
            Item::Dir(_) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, &path, std::io::empty()).unwrap();
            }
            Item::File(_, data, mode, mtime) => {
                h.set_mode(*mode);
                h.set_mtime(*mtime);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &path, &data[..]).unwrap();
            }
            Item::Symlink(_, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// What the `tar` crate reads: (path, kind, mode, size, mtime, data).
fn read_with_tar_crate(bytes: &[u8]) -> Vec<(Entry, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink { target: e.link_name_bytes().unwrap().into_owned() },
            _ => EntryKind::File,
        };
        let path = e.path_bytes().strip_suffix(b"/").map_or_else(|| e.path_bytes().into_owned(), <[u8]>::to_vec);
        let h = e.header();
        let entry = Entry { path, kind, mode: h.mode().unwrap() & 0o777, size: e.size(), mtime: h.mtime().unwrap() };
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push((entry, data));
    }
    out
}

fn pair_up(events: &[ArchiveEvent]) -> Vec<(Entry, Vec<u8>)> {
    let mut out: Vec<(Entry, Vec<u8>)> = Vec::new();
    for ev in events {
        match ev {
            ArchiveEvent::Entry(e) => out.push((e.clone(), Vec::new())),
            ArchiveEvent::Data(d) => out.last_mut().unwrap().1.extend_from_slice(d),
            ArchiveEvent::End => {}
        }
    }
    out
}

/// One way to make an archive hostile.
#[derive(Debug, Clone, Copy)]
enum Evil {
    Absolute,
    DotDot,
    EscapingTarget,
    EscapingChain,
    LaterChain,
    ThroughSymlink,
    Duplicate,
    HardLink,
    Special(u8),
    TooManyEntries,
    TooLarge,
}

fn evil() -> impl Strategy<Value = Evil> {
    prop_oneof![
        Just(Evil::Absolute),
        Just(Evil::DotDot),
        Just(Evil::EscapingTarget),
        Just(Evil::EscapingChain),
        Just(Evil::LaterChain),
        Just(Evil::ThroughSymlink),
        Just(Evil::Duplicate),
        Just(Evil::HardLink),
        prop::sample::select(vec![b'3', b'4', b'6']).prop_map(Evil::Special),
        Just(Evil::TooManyEntries),
        Just(Evil::TooLarge),
    ]
}

/// A valid tree with one hostile thing spliced in at `at`; returns the bytes and the caps.
fn hostile(items: &[Item], evil: Evil, at: usize, depth: usize) -> (Vec<u8>, Limits) {
    let mut raws: Vec<Raw> = items
        .iter()
        .map(|it| match it {
            Item::Dir(p) => dir(p),
            Item::File(p, d, ..) => file(p, d),
            Item::Symlink(p, t) => symlink(p, t),
        })
        .collect();
    let base = "zz/".repeat(depth);
    let up = "../".repeat(depth + 1);
    let bad: Vec<Raw> = match evil {
        Evil::Absolute => vec![file(&format!("/{base}abs"), b"x")],
        Evil::DotDot => vec![file(&format!("{base}{up}dotdot"), b"x")],
        Evil::EscapingTarget => vec![symlink(&format!("{base}esc"), &format!("{up}x"))],
        Evil::EscapingChain => {
            vec![symlink(&format!("{base}l"), "."), symlink(&format!("{base}m"), &format!("l/{}", vec![".."; depth + 1].join("/")))]
        }
        Evil::LaterChain => vec![symlink(&format!("{base}s"), &format!("{}t/..", "../".repeat(depth))), symlink("t", ".")],
        Evil::ThroughSymlink => {
            vec![dir(&format!("{base}real")), symlink(&format!("{base}link"), "real"), file(&format!("{base}link/f"), b"")]
        }
        Evil::Duplicate => match raws.first() {
            Some(first) => vec![first.clone()],
            None => vec![file("dup", b""), file("./dup", b"")],
        },
        Evil::HardLink => vec![raw(&format!("{base}hard"), b'1', "x", b"")],
        Evil::Special(t) => vec![raw(&format!("{base}dev"), t, "", b"")],
        Evil::TooManyEntries | Evil::TooLarge => vec![file("one", b"1")],
    };
    let at = at % (raws.len() + 1);
    let at = if matches!(evil, Evil::Duplicate) { raws.len() } else { at };
    raws.splice(at..at, bad);
    let bytes = archive(&raws);
    let mut limits = Limits::default();
    match evil {
        Evil::TooManyEntries => limits.entries = raws.len() as u64 - 1,
        Evil::TooLarge => limits.uncompressed_bytes = bytes.len() as u64 - 1,
        _ => {}
    }
    (bytes, limits)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// (a) Any split gives the same events (Data coalesced) and verdict, for valid,
    /// hostile and corrupted archives alike.
    #[test]
    fn any_split_gives_the_same_result(
        c in choices(), e in evil(), at in any::<usize>(), depth in 0usize..3, which in 0u8..3,
        flip in any::<(usize, u8)>(), cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let (mut bytes, limits) = match which {
            0 => (build_with_tar_crate(&tree_from(&c), at % 2 == 0, at % 4), Limits::default()),
            _ => hostile(&tree_from(&c), e, at, depth),
        };
        if which == 2 {
            let i = flip.0 % bytes.len();
            bytes[i] ^= flip.1 | 1;
        }
        let whole = run_with(limits, &bytes, &[]);
        let single_bytes: Vec<usize> = (0..bytes.len()).step_by(97).collect();
        prop_assert_eq!(&run_with(limits, &bytes, &cuts), &whole);
        prop_assert_eq!(&run_with(limits, &bytes, &single_bytes), &whole);
    }

    /// (b) On valid archives the `tar` crate wrote, the guard agrees with its reader.
    #[test]
    fn agrees_with_the_tar_crate_on_valid_archives(c in choices(), gnu in any::<bool>(), pax_every in 0usize..4) {
        let items = tree_from(&c);
        let bytes = build_with_tar_crate(&items, gnu, pax_every);
        let (events, v) = run(&bytes);
        prop_assert_eq!(v, Ok(()));
        prop_assert_eq!(events.last(), Some(&ArchiveEvent::End));
        prop_assert_eq!(pair_up(&events), read_with_tar_crate(&bytes));
    }

    /// (c) Hostile archives are always refused, and never reach `End`.
    #[test]
    fn hostile_archives_are_refused(c in choices(), e in evil(), at in any::<usize>(), depth in 0usize..3, cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let (bytes, limits) = hostile(&tree_from(&c), e, at, depth);
        let (events, v) = run_with(limits, &bytes, &cuts);
        prop_assert!(v.is_err(), "{:?} accepted: {:?}", e, events);
        prop_assert!(!events.contains(&ArchiveEvent::End));
        for ev in &events {
            if let ArchiveEvent::Entry(en) = ev {
                prop_assert!(!en.path.starts_with(b"/") && !en.path.split(|&b| b == b'/').any(|p| p == b".." || p.is_empty() || p == b"."));
            }
        }
    }
}
