//! `whim put` / `whim get` end to end: the real binary against an emulator on an ephemeral
//! port. Awkward names (case C7), loud failures that leave nothing behind (C9), a tree with
//! every kind of entry, escaping symlinks refused on the way out of the VM (C8), a 300 MiB
//! round trip and the size and entry caps.

mod common;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use common::{Env, show, text};
use sha2::{Digest, Sha256};

const C7: &str = "-rf my file $(touch pwned).txt";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn launch(env: &Env) -> String {
    let o = env.output(&["launch", "-q", "--ttl", "10m"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let id = text(&o).trim().to_owned();
    assert!(id.starts_with("microvm-"), "{}", show(&o));
    id
}

/// `whim ARGS…` run in the local directory `cwd`.
async fn whim_in(env: &Env, cwd: &Path, args: &[OsString]) -> Output {
    let mut c = env.whim(&[]);
    c.current_dir(cwd).args(args);
    tokio::task::spawn_blocking(move || c.output().expect("whim runs")).await.expect("join")
}

/// `whim put ID LOCAL REMOTE_DIR OPTS…` in `cwd`.
async fn put(env: &Env, cwd: &Path, id: &str, local: impl AsRef<OsStr>, remote: impl AsRef<OsStr>, opts: &[&str]) -> Output {
    let mut a: Vec<OsString> = vec!["put".into(), id.into(), local.as_ref().into(), remote.as_ref().into()];
    a.extend(opts.iter().map(OsString::from));
    whim_in(env, cwd, &a).await
}

/// `whim get ID REMOTE LOCAL_DIR OPTS…` in `cwd`.
async fn get(env: &Env, cwd: &Path, id: &str, remote: impl AsRef<OsStr>, local: impl AsRef<OsStr>, opts: &[&str]) -> Output {
    let mut a: Vec<OsString> = vec!["get".into(), id.into(), remote.as_ref().into(), local.as_ref().into()];
    a.extend(opts.iter().map(OsString::from));
    whim_in(env, cwd, &a).await
}

/// `whim exec ID -- sh -c SCRIPT sh ARGS…`.
async fn vm_sh_output(env: &Env, id: &str, script: &str, args: &[&OsStr]) -> Output {
    let mut a: Vec<OsString> = ["exec", id, "--", "sh", "-c", script, "sh"].into_iter().map(OsString::from).collect();
    a.extend(args.iter().map(|s| s.to_os_string()));
    whim_in(env, env.state.path(), &a).await
}

/// Like [`vm_sh_output`], asserting exit 0; returns the output.
async fn vm_sh(env: &Env, id: &str, script: &str, args: &[&OsStr]) -> String {
    let o = vm_sh_output(env, id, script, args).await;
    assert_eq!(o.status.code(), Some(0), "in the VM: {script}\n{}", show(&o));
    text(&o)
}

/// Every entry below the VM directory `dir` (recursive, sorted; `.whim-put-*` included).
async fn vm_listing(env: &Env, id: &str, dir: &str) -> Vec<String> {
    let out = vm_sh(env, id, r#"cd "$1" && find . -mindepth 1 | LC_ALL=C sort"#, &[OsStr::new(dir)]).await;
    out.lines().map(str::to_owned).collect()
}

/// The sha256 (hex) of a VM file, computed in the VM.
async fn vm_sha256(env: &Env, id: &str, path: &OsStr) -> String {
    let out = vm_sh(env, id, r#"sha256sum < "$1""#, &[path]).await;
    let sum = out.split_whitespace().next().unwrap_or_default().to_owned();
    assert_eq!(sum.len(), 64, "sha256sum in the VM: {out:?}");
    sum
}

/// Exit 0 and "whim: copied …" on stderr.
fn assert_copied(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: {}", show(o));
    assert!(stderr(o).contains("whim: copied "), "{what}: {}", show(o));
}

/// Exit 125 and one `whim: …` message that names every string of `names`.
fn assert_refused(o: &Output, what: &str, names: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(125), "{what} must fail with 125: {}", show(o));
    assert!(!err.contains("copied"), "{what}: a failure never says copied: {}", show(o));
    assert!(err.starts_with("whim: "), "{what}: {}", show(o));
    for n in names {
        assert!(err.contains(n), "{what}: the message must name {n:?}: {}", show(o));
    }
}

/// Every entry below `dir`, relative, sorted; symlinks are not followed.
fn listing(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(root).expect("below").to_owned());
            if fs::symlink_metadata(&p).expect("lstat").is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Link(PathBuf),
}

/// Names, kinds, permission bits, bytes and link targets of the tree at `root` (itself included as "").
fn manifest(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    for rel in std::iter::once(PathBuf::new()).chain(listing(root)) {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).expect("lstat");
        let mode = m.permissions().mode() & 0o7777;
        let node = if m.file_type().is_symlink() {
            Node::Link(fs::read_link(&p).expect("readlink"))
        } else if m.is_dir() {
            Node::Dir { mode }
        } else {
            assert!(m.is_file(), "{}: unexpected kind", p.display());
            Node::File { mode, bytes: fs::read(&p).expect("read") }
        };
        out.insert(rel, node);
    }
    out
}

fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).expect("open");
    let (mut h, mut buf) = (Sha256::new(), vec![0u8; 1 << 20]);
    loop {
        match f.read(&mut buf).expect("read") {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    hex(&h.finalize())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mkdir_mode(path: &Path, mode: u32) {
    fs::create_dir(path).expect("mkdir");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Why the refusal message of `o` is not clear, if it is not: one line, said once, and not
/// calling a well-formed archive that was refused "truncated or corrupt".
fn unclear(o: &Output, what: &str) -> Option<String> {
    let err = stderr(o);
    let clear = err.lines().count() == 1 && !err.contains("truncated or corrupt") && err.matches("refused what the VM sent").count() <= 1;
    (!clear).then(|| format!("{what}: {}", err.trim()))
}

/// A name no other run uses.
fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Case C7: names that are options, hold spaces, quotes, `$(…)`, newlines or non-UTF-8 bytes go
/// in and come back byte for byte under the same name, and nothing in them is executed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_awkward_names_round_trip() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let (cwd, src, back) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let names: Vec<OsString> = vec![
        C7.into(),
        "a'b\"c\\d`e $HOME;|&<>*?[x] {y,z} ~".into(),
        "new\nline\ttab".into(),
        "-".into(),
        "--help".into(),
        " lead and trail ".into(),
        OsString::from_vec(b"bytes \xff\xfe \x01.bin".to_vec()),
    ];
    for (i, name) in names.iter().enumerate() {
        let mut bytes = format!("file {i}: {name:?}\r\n").into_bytes();
        bytes.extend((0u8..=255).rev());
        write_mode(&src.path().join(name), &bytes, 0o644);

        let o = put(&env, cwd.path(), &id, src.path().join(name), "/tmp", &[]).await;
        assert_copied(&o, &format!("put {name:?}"));
        let mut remote = OsString::from("/tmp/");
        remote.push(name);
        assert_eq!(vm_sha256(&env, &id, &remote).await, hex(&Sha256::digest(&bytes)), "{name:?} in the VM");

        let o = get(&env, cwd.path(), &id, &remote, back.path(), &[]).await;
        assert_copied(&o, &format!("get {name:?}"));
        assert_eq!(fs::read(back.path().join(name)).expect("got back"), bytes, "{name:?}");
    }
    let want: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        v.sort();
        v
    };
    assert_eq!(listing(back.path()), want, "exactly the files, under their own names");
    assert_eq!(listing(cwd.path()), Vec::<PathBuf>::new(), "nothing written in whim's cwd");

    // The option-like name as whim's users write it: relative, with `./` on the way in and
    // after `--` on the way out, into and from the VM shell's working directory.
    let pwd = vm_sh(&env, &id, "pwd", &[]).await.trim().to_owned();
    let o = put(&env, src.path(), &id, format!("./{C7}"), &pwd, &[]).await;
    assert_copied(&o, "put ./C7 into the VM's cwd");
    let back2 = tempfile::tempdir().expect("tmp");
    let mut a: Vec<OsString> = ["get", &id, "--", C7].into_iter().map(OsString::from).collect();
    a.push(back2.path().into());
    let o = whim_in(&env, cwd.path(), &a).await;
    assert_copied(&o, "get -- C7 (relative to the VM's cwd)");
    assert_eq!(fs::read(back2.path().join(C7)).expect("got back"), fs::read(src.path().join(C7)).expect("src"));

    // Nothing was executed: no `pwned` anywhere reachable, here or in the VM.
    let (here, tmp) = (std::env::current_dir().expect("cwd"), std::env::temp_dir());
    for d in [cwd.path(), src.path(), back.path(), back2.path(), &here, &tmp] {
        assert!(!d.join("pwned").exists(), "{}/pwned exists", d.display());
    }
    let found = vm_sh(
        &env,
        &id,
        r#"for d in /tmp /root "$HOME" "$PWD" / "$1"; do [ -e "$d/pwned" ] && echo "$d/pwned"; done; true"#,
        &[OsStr::new(&pwd)],
    )
    .await;
    assert_eq!(found, "", "pwned files in the VM");
}

/// Case C9: every failing copy exits 125 with a message naming the path at fault, and
/// leaves nothing new in either destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_copy_failures_are_loud_and_leave_nothing() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let work = tempfile::tempdir().expect("tmp");
    let w = work.path();
    fs::write(w.join("f"), "local f\n").expect("write");
    fs::create_dir(w.join("tree")).expect("mkdir");
    fs::write(w.join("tree/in"), "in\n").expect("write");
    vm_sh(&env, &id, "mkdir /tmp/dest /tmp/dest/tree && echo x > /tmp/dest/afile && echo keep > /tmp/dest/tree/keep", &[]).await;
    let local_before = listing(w);
    let remote_before = vm_listing(&env, &id, "/tmp").await;

    let check_remote = async |what: &str| {
        assert_eq!(vm_listing(&env, &id, "/tmp").await, remote_before, "after {what}: the VM's /tmp changed");
        let left = vm_sh(&env, &id, "find / -xdev -maxdepth 3 -name '.whim-put-*' 2>/dev/null; true", &[]).await;
        assert_eq!(left, "", "after {what}: staging left in the VM");
        assert_eq!(vm_sh(&env, &id, "cat /tmp/dest/afile /tmp/dest/tree/keep", &[]).await, "x\nkeep\n", "after {what}");
    };

    let o = put(&env, w, &id, "./f", "/no/such/dir", &[]).await;
    assert_refused(&o, "put ./f /no/such/dir", &["/no/such/dir"]);
    assert_eq!(vm_sh(&env, &id, "[ -e /no ] && echo exists; true", &[]).await, "", "/no was created");
    check_remote("put into a missing directory").await;

    let o = put(&env, w, &id, "./f", "/tmp/dest/afile", &[]).await;
    assert_refused(&o, "put into a remote file", &["/tmp/dest/afile"]);
    check_remote("put into a remote file").await;

    let o = put(&env, w, &id, "./tree", "/tmp/dest", &[]).await;
    assert_refused(&o, "put of a directory over an existing directory", &["/tmp/dest/tree"]);
    check_remote("put of a directory over an existing directory").await;

    let o = put(&env, w, &id, "./missing", "/tmp/dest", &[]).await;
    assert_refused(&o, "put of a missing local path", &["missing"]);
    check_remote("put of a missing local path").await;
    assert_eq!(listing(w), local_before, "put changed the local side");

    // get of a missing remote path, into a missing and then an existing local directory.
    let o = get(&env, w, &id, "/no/such", "./x", &[]).await;
    let err = stderr(&o);
    assert_refused(&o, "get /no/such ./x (./x missing)", &[]);
    assert!(err.contains("/no/such") || err.contains("./x"), "the message names a missing path: {}", show(&o));
    assert_eq!(listing(w), local_before, "get created something");

    fs::create_dir(w.join("x")).expect("mkdir");
    let local_before = listing(w);
    let o = get(&env, w, &id, "/no/such", "./x", &[]).await;
    assert_refused(&o, "get /no/such ./x (./x exists)", &["/no/such"]);
    assert_eq!(listing(w), local_before, "get of a missing path wrote something");

    let o = get(&env, w, &id, "/tmp/dest/afile", "./nodir", &[]).await;
    assert_refused(&o, "get into a missing local directory", &["nodir"]);
    assert_eq!(listing(w), local_before, "get created its destination");

    let o = get(&env, w, &id, "/tmp/dest/afile", "./f", &[]).await;
    assert_refused(&o, "get into a local file", &["./f"]);
    assert_eq!(fs::read_to_string(w.join("f")).expect("f"), "local f\n");
    assert_eq!(listing(w), local_before, "get into a file wrote something");

    let o = get(&env, w, &id, "/tmp/dest/tree", "./x", &[]).await;
    assert_copied(&o, "get of a directory");
    let o = get(&env, w, &id, "/tmp/dest/tree", "./x", &[]).await;
    if o.status.code() != Some(0) {
        assert_refused(&o, "get of a directory over an existing one", &[]);
    }
    let mut want = local_before.clone();
    want.extend([PathBuf::from("x/tree"), PathBuf::from("x/tree/keep")]);
    want.sort();
    assert_eq!(listing(w), want, "a second get of the same tree leaves nothing else");
    check_remote("the gets").await;
}

/// A tree with every kind of entry goes in and comes back identical: names, kinds, permission
/// bits, bytes (all 256 values) and relative symlinks as symlinks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_round_trip_keeps_kinds_modes_bytes_and_links() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let (src, back) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let t = src.path().join("tree");
    mkdir_mode(&t, 0o755);
    let every: Vec<u8> = (0..=255u8).cycle().take(256 * 1031 + 77).collect();
    write_mode(&t.join("every-byte.bin"), &every, 0o644);
    write_mode(&t.join("empty"), b"", 0o644);
    mkdir_mode(&t.join("empty-dir"), 0o700);
    write_mode(&t.join("run.sh"), b"#!/bin/sh\necho ran\n", 0o750);
    write_mode(&t.join("private"), b"secret\n", 0o600);
    mkdir_mode(&t.join("nested"), 0o755);
    mkdir_mode(&t.join("nested/a"), 0o751);
    mkdir_mode(&t.join("nested/a/b"), 0o755);
    write_mode(&t.join("nested/a/b/deep.txt"), b"deep\n", 0o640);
    symlink("a/b/deep.txt", t.join("nested/link")).expect("symlink");
    symlink("../../every-byte.bin", t.join("nested/a/up")).expect("symlink");
    symlink("empty-dir", t.join("dirlink")).expect("symlink");
    let want = manifest(&t);

    let o = put(&env, src.path(), &id, &t, "/tmp", &[]).await;
    assert_copied(&o, "put tree");
    let o = get(&env, back.path(), &id, "/tmp/tree", back.path(), &[]).await;
    assert_copied(&o, "get tree");
    assert_eq!(manifest(&back.path().join("tree")), want);
    assert_eq!(listing(back.path()).len(), want.len(), "nothing but the tree comes back");

    // In the VM: the same kinds and modes, the symlinks are symlinks, the bytes are the same.
    let remote = vm_sh(&env, &id, r#"cd /tmp/tree && find . -printf '%y %m %p %l\n' | LC_ALL=C sort"#, &[]).await;
    let mut local: Vec<String> = want
        .iter()
        .map(|(p, n)| {
            let path = if p.as_os_str().is_empty() { ".".to_owned() } else { format!("./{}", p.display()) };
            match n {
                Node::File { mode, .. } => format!("f {mode:o} {path} "),
                Node::Dir { mode } => format!("d {mode:o} {path} "),
                Node::Link(to) => format!("l 777 {path} {}", to.display()),
            }
        })
        .collect();
    local.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(remote.lines().collect::<Vec<_>>(), local, "the tree in the VM");
    let links = vm_sh(&env, &id, "test -L /tmp/tree/nested/link && readlink /tmp/tree/nested/link && cat /tmp/tree/nested/link", &[]).await;
    assert_eq!(links, "a/b/deep.txt\ndeep\n");
    assert_eq!(vm_sha256(&env, &id, OsStr::new("/tmp/tree/every-byte.bin")).await, hex(&Sha256::digest(&every)));
    assert_eq!(vm_sh(&env, &id, "/tmp/tree/run.sh", &[]).await, "ran\n", "the executable bit works in the VM");
}

/// Case C8 on the way out of the VM: a tree whose symlinks point outside it is refused with a
/// clear message and nothing is written locally; in-tree relative symlinks still work. A
/// hostile VM (its `tar` replaced) sending `link -> /etc` then `link/evil`, or `..` entries,
/// is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_get_refuses_escaping_symlinks_and_writes_nothing() {
    let env = Env::start().await;
    let id = launch(&env).await;
    vm_sh(
        &env,
        &id,
        "set -e; mkdir -p /tmp/abs /tmp/rel/sub /tmp/ok/sub
         ln -s /etc /tmp/abs/link; echo a > /tmp/abs/file
         ln -s ../../.. /tmp/rel/sub/up; echo b > /tmp/rel/file
         echo c > /tmp/ok/sub/target; ln -s sub/target /tmp/ok/link; ln -s ../link /tmp/ok/sub/back",
        &[],
    )
    .await;

    let refused = async |remote: &str, what: &str, names: &[&str]| {
        let base = tempfile::tempdir().expect("tmp");
        let dest = base.path().join("dest");
        fs::create_dir(&dest).expect("mkdir");
        let o = get(&env, base.path(), &id, remote, &dest, &[]).await;
        assert_refused(&o, what, names);
        assert_eq!(listing(base.path()), vec![PathBuf::from("dest")], "{what}: something was written");
        unclear(&o, what)
    };
    // The safety checks fail at once; the wording of the messages is checked at the end.
    let mut unclear_messages = Vec::new();
    unclear_messages.extend(refused("/tmp/abs", "get of a tree with link -> /etc", &["abs/link", "/etc", "outside"]).await);
    unclear_messages.extend(refused("/tmp/rel", "get of a tree with up -> ../../..", &["rel/sub/up", "../../..", "outside"]).await);

    let dest = tempfile::tempdir().expect("tmp");
    let o = get(&env, dest.path(), &id, "/tmp/ok", dest.path(), &[]).await;
    assert_copied(&o, "get of in-tree relative symlinks");
    let ok = dest.path().join("ok");
    assert_eq!(fs::read_link(ok.join("link")).expect("link"), Path::new("sub/target"));
    assert_eq!(fs::read_link(ok.join("sub/back")).expect("link"), Path::new("../link"));
    assert_eq!(fs::read_to_string(ok.join("sub/back")).expect("through the links"), "c\n");

    // A hostile VM: only when the VM's root is really its own (an overlay), never on the host.
    let marker = tempfile::Builder::new().prefix("whim-c8-marker").tempdir_in("/tmp").expect("tmp");
    let seen = vm_sh(&env, &id, r#"[ -e "$1" ] && echo shared; true"#, &[marker.path().as_os_str()]).await;
    let probe = PathBuf::from("/usr/local/bin").join(unique("whim-c8-probe"));
    let isolated = seen.is_empty() && {
        vm_sh(&env, &id, r#"mkdir -p /usr/local/bin && : > "$1""#, &[probe.as_os_str()]).await;
        let leaked = probe.exists();
        let _ = fs::remove_file(&probe);
        !leaked
    };
    if !isolated {
        eprintln!("SKIPPED the hostile-tar half of c8: the VM shares this host's filesystem (unisolated emulator)");
        assert!(unclear_messages.is_empty(), "unclear refusals:\n{}", unclear_messages.join("\n"));
        return;
    }
    let evil = unique("whim-c8-evil");
    let real_tar = vm_sh(&env, &id, "command -v tar", &[]).await.trim().to_owned();
    vm_sh(
        &env,
        &id,
        r#"set -e; e=$1; real=$2
        mkdir -p /tmp/craft/hostile; cd /tmp/craft; ln -s /etc hostile/link; echo pwned > "$e"
        "$real" -cf /tmp/evil-through-link.tar --transform="s,^$e\$,./hostile/link/$e," ./hostile "$e"
        rm hostile/link; mkdir hostile/sub
        "$real" -cf /tmp/evil-dotdot-inside.tar -P --transform="s,^$e\$,./hostile/../../$e," ./hostile "$e"
        "$real" -cf /tmp/evil-dotdot-top.tar -P --transform="s,^$e\$,../../$e," ./hostile "$e"
        ln -s sub hostile/inside
        "$real" -cf /tmp/evil-through-inside.tar --transform="s,^$e\$,./hostile/inside/$e," ./hostile "$e"
        rm hostile/inside; ln -s ../../../.. hostile/sub/up
        "$real" -cf /tmp/evil-deep-link.tar --transform="s,^$e\$,./hostile/sub/up/$e," ./hostile "$e"
        printf '#!/bin/sh\nif [ -s /tmp/evil-which ]; then exec cat "$(cat /tmp/evil-which)"; fi\nexec %s "$@"\n' "$real" > /usr/local/bin/tar
        chmod 755 /usr/local/bin/tar; hash -r; [ "$(command -v tar)" = /usr/local/bin/tar ]"#,
        &[OsStr::new(&evil), OsStr::new(&real_tar)],
    )
    .await;
    for (tar, names) in [
        ("/tmp/evil-through-link.tar", &["hostile/link"][..]),
        ("/tmp/evil-dotdot-inside.tar", &[".."][..]),
        ("/tmp/evil-dotdot-top.tar", &[".."][..]),
        ("/tmp/evil-through-inside.tar", &["hostile/inside"][..]),
        ("/tmp/evil-deep-link.tar", &["hostile/sub/up"][..]),
    ] {
        vm_sh(&env, &id, r#"printf %s "$1" > /tmp/evil-which"#, &[OsStr::new(tar)]).await;
        let base = tempfile::tempdir().expect("tmp");
        let dest = base.path().join("a").join("dest");
        fs::create_dir_all(&dest).expect("mkdir");
        let o = get(&env, base.path(), &id, "/tmp/craft/hostile", &dest, &[]).await;
        assert_refused(&o, tar, names);
        assert_eq!(listing(base.path()), vec![PathBuf::from("a"), PathBuf::from("a/dest")], "{tar}: something was written");
        for p in [PathBuf::from("/etc").join(&evil), std::env::temp_dir().join(&evil), base.path().join(&evil)] {
            let there = p.exists();
            let _ = fs::remove_file(&p);
            assert!(!there, "{tar}: {} was written outside the destination", p.display());
        }
        unclear_messages.extend(unclear(&o, tar));
    }
    assert!(unclear_messages.is_empty(), "unclear refusals:\n{}", unclear_messages.join("\n"));
}

/// Fills `path` with `len` pseudo-random bytes (xorshift64, 1 MiB at a time); returns their sha256.
fn write_random(path: &Path, len: usize, mut seed: u64) -> String {
    let mut f = std::io::BufWriter::new(fs::File::create(path).expect("create"));
    let (mut h, mut buf, mut left) = (Sha256::new(), vec![0u8; 1 << 20], len);
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            w.copy_from_slice(&seed.to_le_bytes());
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).expect("write");
        h.update(&buf[..n]);
        left -= n;
    }
    f.flush().expect("flush");
    hex(&h.finalize())
}

/// 300 MiB of incompressible bytes in and out, byte-identical; a smaller `--max-bytes`
/// refuses it with a message about the limit and leaves nothing in the VM's destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_round_trip_300_mib_and_byte_cap() {
    const LEN: usize = 300 << 20;
    let env = Env::start().await;
    let id = launch(&env).await;
    let (src, back) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let file = src.path().join("big.bin");
    let t = Instant::now();
    let sum = write_random(&file, LEN - 13, 0x9e37_79b9_7f4a_7c15);
    eprintln!("generated {} bytes in {:.1?}", LEN - 13, t.elapsed());
    vm_sh(&env, &id, "mkdir /tmp/in /tmp/capped", &[]).await;

    let t = Instant::now();
    let o = put(&env, src.path(), &id, &file, "/tmp/capped", &["--max-bytes", "10M"]).await;
    assert_refused(&o, "put over --max-bytes 10M", &["limit", &(10u64 << 20).to_string()]);
    eprintln!("put refused by --max-bytes 10M in {:.1?}", t.elapsed());
    assert_eq!(vm_listing(&env, &id, "/tmp/capped").await, Vec::<String>::new(), "left in the VM after a refused put");

    let t = Instant::now();
    let o = put(&env, src.path(), &id, &file, "/tmp/in", &["--max-bytes", "2G"]).await;
    assert_copied(&o, "put 300 MiB");
    let put_time = t.elapsed();
    assert_eq!(vm_sha256(&env, &id, OsStr::new("/tmp/in/big.bin")).await, sum, "the VM's copy");

    let t = Instant::now();
    let o = get(&env, back.path(), &id, "/tmp/in/big.bin", back.path(), &["--max-bytes", "2G"]).await;
    assert_copied(&o, "get 300 MiB");
    let get_time = t.elapsed();
    assert_eq!(sha256_file(&back.path().join("big.bin")), sum, "the local copy");
    eprintln!("300 MiB: put {put_time:.1?}, get {get_time:.1?}, round trip {:.1?}", put_time + get_time);

    let capped = tempfile::tempdir().expect("tmp");
    let t = Instant::now();
    let o = get(&env, capped.path(), &id, "/tmp/in/big.bin", capped.path(), &["--max-bytes", "10M"]).await;
    assert_refused(&o, "get over --max-bytes 10M", &["limit", &(10u64 << 20).to_string()]);
    eprintln!("get refused by --max-bytes 10M in {:.1?}", t.elapsed());
    assert_eq!(listing(capped.path()), Vec::<PathBuf>::new(), "left locally after a refused get");
    assert_eq!(unclear(&o, "get --max-bytes 10M"), None, "the refusal message is not clear");
}

/// `--max-files` caps both directions with a message about the limit and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_files_caps_get_and_put() {
    let env = Env::start().await;
    let id = launch(&env).await;
    vm_sh(&env, &id, "mkdir -p /tmp/ten /tmp/dest && for i in 0 1 2 3 4 5 6 7 8 9; do echo $i > /tmp/ten/f$i; done", &[]).await;
    let local = tempfile::tempdir().expect("tmp");
    let o = get(&env, local.path(), &id, "/tmp/ten", local.path(), &["--max-files", "3"]).await;
    assert_refused(&o, "get --max-files 3 of 10 files", &["3"]);
    assert!(stderr(&o).contains("limit") || stderr(&o).contains("more than"), "a message about the limit: {}", show(&o));
    assert_eq!(listing(local.path()), Vec::<PathBuf>::new(), "left locally after a refused get");
    let get_refusal = unclear(&o, "get --max-files 3");

    let src = tempfile::tempdir().expect("tmp");
    fs::create_dir(src.path().join("ten")).expect("mkdir");
    for i in 0..10 {
        fs::write(src.path().join(format!("ten/f{i}")), format!("{i}\n")).expect("write");
    }
    let o = put(&env, src.path(), &id, "./ten", "/tmp/dest", &["--max-files", "3"]).await;
    assert_refused(&o, "put --max-files 3 of 10 files", &["3"]);
    assert_eq!(vm_listing(&env, &id, "/tmp/dest").await, Vec::<String>::new(), "left in the VM after a refused put");

    let o = get(&env, local.path(), &id, "/tmp/ten", local.path(), &["--max-files", "11"]).await;
    assert_copied(&o, "get of 10 files and their directory with --max-files 11");
    assert_eq!(listing(local.path()).len(), 11);
    let o = put(&env, src.path(), &id, "./ten", "/tmp/dest", &["--max-files", "11"]).await;
    assert_copied(&o, "put of 10 files and their directory with --max-files 11");
    assert_eq!(vm_listing(&env, &id, "/tmp/dest").await.len(), 11);
    assert_eq!(get_refusal, None, "the refusal message is not clear");
}
