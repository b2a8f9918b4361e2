//! The runtime conformance suite, written once: every scenario runs against each runtime
//! crate (tokio, async-std's executor, smol's executor, blocking) through [`Runtime`], on an
//! in-process emulator with ephemeral loopback ports. `tests/tests/runtimes.rs` instantiates
//! it; a later feature adds its scenarios here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_lambdamicrovms::config::BehaviorVersion;
use aws_types::region::Region;
use sha2::{Digest, Sha256};
use whim_sdk::transfer::Limits;
use whim_sdk::{Error, ShellEnd};

/// The image whose VMs die while PENDING, and the reason they give (the service's words
/// for a failed run hook, reference §C.1).
pub const BROKEN_IMAGE: &str = "whim-broken";
/// See [`BROKEN_IMAGE`].
pub const BROKEN_REASON: &str =
    "Run lifecycle hook returned HTTP status 400. Please check your hook endpoint and application logs for more details.";

/// One step of a scripted interactive shell.
#[derive(Debug, Clone)]
pub enum Step {
    /// Type these bytes.
    Input(&'static [u8]),
    /// Resize the terminal to (cols, rows).
    Resize(u16, u16),
    /// Wait.
    Sleep(Duration),
}

/// What a scenario needs from a runtime crate, in blocking form (async runtimes block on
/// their own executor inside).
pub trait Runtime: Sized {
    /// A VM handle of this runtime.
    type Vm;
    /// A manager on `sdk`, reaching VM endpoints through `via`.
    fn new(sdk: &aws_types::SdkConfig, via: SocketAddr) -> Self;
    /// Launches a VM from `image` with time to live `ttl`.
    fn launch(&self, image: &str, ttl: &str) -> Result<Self::Vm, Error>;
    /// The VM's id.
    fn id(vm: &Self::Vm) -> String;
    /// Runs `argv`, feeding `stdin` when given; returns output and exit code.
    fn exec(&self, vm: &mut Self::Vm, argv: &[&str], stdin: Option<Vec<u8>>) -> Result<(Vec<u8>, i32), Error>;
    /// Plays `steps` into an interactive shell (input stays open after them).
    fn shell(&self, vm: &mut Self::Vm, steps: Vec<Step>) -> (Vec<u8>, Result<ShellEnd, Error>);
    /// Terminates the VM.
    fn terminate(&self, vm: Self::Vm) -> Result<(), Error>;
    /// Launch, exec, terminate in one call (the library's `Manager::run`).
    fn run(&self, image: &str, argv: &[&str]) -> Result<(Vec<u8>, i32), Error>;
    /// Kills the VM's later commands after `timeout` (`Sandbox::set_exec_timeout`).
    fn set_exec_timeout(vm: &mut Self::Vm, timeout: Option<Duration>);
    /// The caller's VMs (`Manager::list`).
    fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error>;
    /// Terminates the caller's VMs at least `older_than` old (`Manager::gc`).
    fn gc(&self, older_than: Option<Duration>) -> Result<whim_sdk::GcReport, Error>;
    /// Suspends VM `id` and waits for SUSPENDED (`Manager::suspend`).
    fn suspend(&self, id: &str) -> Result<(), Error>;
    /// Resumes VM `id` and waits for RUNNING (`Manager::resume`).
    fn resume(&self, id: &str) -> Result<(), Error>;
    /// Copies local `path` into the VM's directory `remote_dir`; returns the remote path.
    fn put(&self, vm: &mut Self::Vm, path: &Path, remote_dir: &str, limits: Limits) -> Result<Vec<u8>, Error>;
    /// Copies the VM's `remote` into the local directory `dir`; returns the local path.
    fn get(&self, vm: &mut Self::Vm, remote: &str, dir: &Path, limits: Limits) -> Result<PathBuf, Error>;
    /// The artifact bucket and build role (`Manager::bootstrap`).
    fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error>;
    /// Builds an image (`Manager::build_from_source`).
    fn build(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error>;
    /// The caller's images (`Manager::list_images`).
    fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error>;
    /// Deletes an image (`Manager::remove_image`).
    fn remove_image(&self, name: &str) -> Result<(), Error>;
}

/// An emulator on its own tokio runtime, serving every runtime under test.
#[allow(missing_debug_implementations)]
pub struct Emu {
    rt: tokio::runtime::Runtime,
    emu: Option<whim_emulator::Emulator>,
}

impl Emu {
    /// Starts an emulator whose sandboxes re-execute `helper` (the `whim` binary).
    #[must_use]
    pub fn start(helper: PathBuf) -> Emu {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let mut cfg = whim_emulator::EmulatorConfig::local_default();
        cfg.sandbox.helper_exe = helper;
        cfg.startup_failures = vec![(BROKEN_IMAGE.into(), BROKEN_REASON.into())];
        let emu = rt.block_on(whim_emulator::Emulator::start(cfg)).expect("emulator starts");
        Emu { rt, emu: Some(emu) }
    }

    fn emu(&self) -> &whim_emulator::Emulator {
        self.emu.as_ref().expect("running")
    }

    /// An SDK config for the emulator, built by hand (no aws-config, no tokio needed).
    #[must_use]
    pub fn sdk(&self) -> aws_types::SdkConfig {
        let creds = Credentials::new(whim_emulator::LOCAL_ACCESS_KEY_ID, whim_emulator::LOCAL_SECRET_ACCESS_KEY, None, None, "suite");
        aws_types::SdkConfig::builder()
            .region(Region::new(whim_emulator::LOCAL_REGION))
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .endpoint_url(self.emu().endpoint_url())
            .behavior_version(BehaviorVersion::latest())
            .build()
    }

    /// A runtime's manager on this emulator.
    #[must_use]
    pub fn runtime<R: Runtime>(&self) -> R {
        R::new(&self.sdk(), self.emu().addr())
    }

    /// The state of VM `id` as the service reports it.
    #[must_use]
    pub fn state(&self, id: &str) -> String {
        let client = aws_sdk_lambdamicrovms::Client::new(&self.sdk());
        let out = self.rt.block_on(client.get_microvm().microvm_identifier(id).send()).expect("GetMicrovm");
        out.state().as_str().to_owned()
    }

    /// Waits until VM `id` is TERMINATED (at most `secs`); its last state.
    #[must_use]
    pub fn wait_terminated(&self, id: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.state(id);
            if s == "TERMINATED" || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every VM id with its state.
    #[must_use]
    pub fn vms(&self) -> Vec<(String, String)> {
        let client = aws_sdk_lambdamicrovms::Client::new(&self.sdk());
        let out = self.rt.block_on(client.list_microvms().send()).expect("ListMicrovms");
        out.items().iter().map(|i| (i.microvm_id().to_owned(), i.state().as_str().to_owned())).collect()
    }

    /// Drops VM `id`'s shell connections without a close frame.
    pub fn cut(&self, id: &str) -> bool {
        self.emu().cut_shell_connections(id)
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(emu) = self.emu.take() {
            self.rt.block_on(emu.shutdown());
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Launch; exit codes 0, 3 and a death by SIGKILL (137); terminate.
pub fn exit_codes<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    for (cmd, code) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137)] {
        let (_, got) = r.exec(&mut vm, &["sh", "-c", cmd], None).expect(cmd);
        assert_eq!(got, code, "{cmd}");
    }
    let (out, code) = r.exec(&mut vm, &["printf", "%s|", "it's", "a b", "$HOME"], None).expect("printf");
    assert_eq!((out.as_slice(), code), (&b"it's|a b|$HOME|"[..], 0));
    let id = R::id(&vm);
    r.terminate(vm).expect("terminate");
    assert_eq!(emu.wait_terminated(&id, 5), "TERMINATED");
}

/// 5,000,000 lines, every byte intact.
pub fn five_million_lines<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let (out, code) = r.exec(&mut vm, &["sh", "-c", "seq 1 5000000; exit 3"], None).expect("seq");
    let expected: Vec<u8> = (1..=5_000_000u32).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    assert_eq!(code, 3);
    assert!(out == expected, "output differs: {} bytes vs {}", out.len(), expected.len());
    r.terminate(vm).expect("terminate");
}

/// 1 MiB of random bytes, compared with the sha256 the VM computed.
pub fn random_bytes<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let script = "head -c 1048576 /dev/urandom > /tmp/r; cat /tmp/r; sha256sum /tmp/r";
    let (out, code) = r.exec(&mut vm, &["sh", "-c", script], None).expect("exec");
    assert_eq!((code, out.len()), (0, 1_048_576 + 64 + "  /tmp/r\n".len()));
    let (data, sum) = out.split_at(1_048_576);
    assert_eq!(String::from_utf8_lossy(&sum[..64]), sha256_hex(data));
    r.terminate(vm).expect("terminate");
}

/// Standard input arrives whole and its end is seen; empty input is an immediate EOF.
pub fn stdin_with_eof<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let (out, code) = r.exec(&mut vm, &["sha256sum"], Some(data.clone())).expect("sha256sum");
    assert_eq!(code, 0);
    assert!(String::from_utf8_lossy(&out).starts_with(&sha256_hex(&data)), "{}", String::from_utf8_lossy(&out));
    let (out, code) = r.exec(&mut vm, &["cat"], Some(Vec::new())).expect("cat");
    assert_eq!((out.as_slice(), code), (&b""[..], 0));
    let (out, _) = r.exec(&mut vm, &["wc", "-c"], Some(b"x".to_vec())).expect("wc");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "1");
    let (_, code) = r.exec(&mut vm, &["sh", "-c", "exit 4"], Some(vec![b'x'; 300_000])).expect("unread stdin");
    assert_eq!(code, 4, "a command that reads none of its input");
    let (out, code) = r.exec(&mut vm, &["echo", "next"], None).expect("the next command after unread input");
    assert_eq!((out.as_slice(), code), (&b"next\n"[..], 0), "unread input is never run as a command");
    r.terminate(vm).expect("terminate");
}

/// An interactive shell: the first size, a resize, then `exit` ends it.
pub fn shell_resize_exit<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let wait = Step::Sleep(Duration::from_millis(300));
    let steps = vec![
        Step::Resize(120, 40),
        Step::Input(b"stty size\n"),
        wait.clone(),
        Step::Resize(90, 20),
        wait,
        Step::Input(b"stty size; exit\n"),
    ];
    let (out, end) = r.shell(&mut vm, steps);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(end.expect("shell"), ShellEnd::Exited, "{text}");
    let (first, second) = (text.find("40 120").expect(&text), text.find("20 90").expect(&text));
    assert!(first < second, "{text}");
    r.terminate(vm).expect("terminate");
}

/// A VM whose TTL runs out ends the running command with a connection error and is
/// TERMINATED.
pub fn ttl_expiry<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "2s").expect("launch");
    let err = r.exec(&mut vm, &["sleep", "30"], None).expect_err("the VM ends under the command");
    assert!(matches!(err, Error::ConnectionClosed(_)), "{err:?}");
    assert_eq!(emu.wait_terminated(&R::id(&vm), 5), "TERMINATED");
}

/// A VM that dies while PENDING is "provision failed" with the service's reason.
pub fn provision_failure<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let err = r.launch(BROKEN_IMAGE, "5m").err().expect("launch fails");
    assert!(matches!(err, Error::ProvisionFailed(_)), "{err:?}");
    assert!(err.to_string().contains(BROKEN_REASON), "{err}");
}

/// The WebSocket dropped mid-exec: a typed error, and `run` terminates the VM anyway.
pub fn connection_dropped_mid_exec<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let before: Vec<String> = emu.vms().into_iter().map(|(id, _)| id).collect();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let fresh = emu.vms().into_iter().find(|(id, st)| st == "RUNNING" && !before.contains(id));
                if let Some((id, _)) = fresh {
                    std::thread::sleep(Duration::from_millis(500));
                    assert!(emu.cut(&id));
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        r.run("whim-default", &["sleep", "30"]).expect_err("the connection is lost")
    });
    assert!(matches!(err, Error::ConnectionClosed(_)), "{err:?}");
    let vm = emu.vms().into_iter().find(|(id, _)| !before.contains(id)).expect("the run's VM");
    assert!(vm.1 == "TERMINATING" || vm.1 == "TERMINATED", "run terminated the VM before returning: {}", vm.1);
    assert_eq!(emu.wait_terminated(&vm.0, 5), "TERMINATED");
}

/// A local tree with every kind of thing a copy must keep: a file holding every byte
/// value, an empty file, an empty directory, an in-tree symlink, an executable, a long
/// name and a name made to break shell quoting.
pub fn awkward_tree(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let top = root.join("tree");
    let long = "l".repeat(150);
    std::fs::create_dir_all(top.join("sub/empty-dir")).expect("mkdir");
    std::fs::create_dir_all(top.join(&long)).expect("mkdir");
    let every: Vec<u8> = (0..=255u8).cycle().take(256 * 40 + 7).collect();
    std::fs::write(top.join("sub/every-byte.bin"), &every).expect("write");
    std::fs::write(top.join("empty"), b"").expect("write");
    std::fs::write(top.join("-rf my file $(touch pwned).txt"), b"awkward\r\n").expect("write");
    std::fs::write(top.join(&long).join(&long), b"deep").expect("write");
    std::fs::write(top.join("run.sh"), b"#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(top.join("run.sh"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    std::os::unix::fs::symlink("../empty", top.join("sub/link")).expect("symlink");
    top
}

/// Every entry below `root`: relative path, kind, permission bits, content or link target.
pub fn tree_listing(root: &Path) -> Vec<(PathBuf, char, u32, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).expect("stat");
        let rel = p.strip_prefix(root).expect("below root").to_path_buf();
        let mode = md.permissions().mode() & 0o777;
        if md.is_symlink() {
            out.push((rel, 'l', 0, std::fs::read_link(&p).expect("readlink").as_os_str().as_bytes().to_vec()));
        } else if md.is_dir() {
            out.push((rel, 'd', mode, Vec::new()));
            stack.extend(std::fs::read_dir(&p).expect("readdir").map(|e| e.expect("entry").path()));
        } else {
            out.push((rel, 'f', mode, std::fs::read(&p).expect("read")));
        }
    }
    out.sort();
    out
}

/// put then get of an awkward tree gives the same names, bytes, modes and symlinks, and
/// runs nothing a name spells.
pub fn put_get_round_trip<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = awkward_tree(dir.path());
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let (out, code) = r.exec(&mut vm, &["mkdir", "-p", "/tmp/in"], None).expect("mkdir");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    let remote = r.put(&mut vm, &tree, "/tmp/in", Limits::default()).expect("put");
    assert_eq!(remote, b"/tmp/in/tree");
    let (out, code) = r.exec(&mut vm, &["sh", "-c", "cat '/tmp/in/tree/-rf my file $(touch pwned).txt'; ls -A /tmp/in; for d in . /root /tmp /tmp/in /tmp/in/tree; do test -e $d/pwned && echo PWNED $d; done; true"], None).expect("check");
    assert_eq!((String::from_utf8_lossy(&out).as_ref(), code), ("awkward\r\ntree\n", 0));
    let back = tempfile::tempdir().expect("tempdir");
    let local = r.get(&mut vm, "/tmp/in/tree/", back.path(), Limits::default()).expect("get");
    assert_eq!(local, back.path().join("tree"));
    assert_eq!(tree_listing(&local), tree_listing(&tree));
    let names: Vec<_> = std::fs::read_dir(back.path()).expect("ls").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(names, ["tree"], "nothing but the copy is left in the destination");
    let file = r.get(&mut vm, "/tmp/in/tree/sub/every-byte.bin", back.path(), Limits::default()).expect("get a file");
    assert_eq!(std::fs::read(file).expect("read"), std::fs::read(tree.join("sub/every-byte.bin")).expect("read"));
    r.terminate(vm).expect("terminate");
}

/// Missing paths on either side fail loudly, name the path, and copy nothing.
pub fn copy_failures_are_loud<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), b"x").expect("write");
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let msg = |e: Error| e.to_string();
    let e = msg(r.put(&mut vm, &dir.path().join("f"), "/no/such/dir", Limits::default()).expect_err("put into a missing dir"));
    assert!(e.contains("/no/such/dir"), "{e}");
    let e = msg(r.put(&mut vm, &dir.path().join("missing"), "/tmp", Limits::default()).expect_err("put of a missing file"));
    assert!(e.contains("missing"), "{e}");
    let e = msg(r.get(&mut vm, "/no/such", dir.path(), Limits::default()).expect_err("get of a missing path"));
    assert!(e.contains("/no/such"), "{e}");
    let e = msg(r.get(&mut vm, "/etc/hostname", &dir.path().join("x"), Limits::default()).expect_err("get into a missing dir"));
    assert!(e.contains("x"), "{e}");
    let tiny = Limits { compressed_bytes: 1 << 20, uncompressed_bytes: 1 << 20, entries: 100 };
    let (_, code) =
        r.exec(&mut vm, &["sh", "-c", "mkdir -p /tmp/big && head -c 3000000 /dev/urandom > /tmp/big/blob"], None).expect("blob");
    assert_eq!(code, 0);
    let e = msg(r.get(&mut vm, "/tmp/big", dir.path(), tiny).expect_err("over the cap"));
    assert!(e.contains("limit") || e.contains("large"), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(names, ["f"], "a failed get leaves nothing behind");
    let (out, _) = r.exec(&mut vm, &["sh", "-c", "ls -A /tmp | grep -c whim-put || true"], None).expect("ls");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "0");
    r.terminate(vm).expect("terminate");
}

/// A VM tree whose symlink points outside it is refused whole, and nothing is written.
pub fn get_refuses_escaping_symlink<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let (_, code) = r
        .exec(
            &mut vm,
            &["sh", "-c", "mkdir -p /tmp/h/d && ln -s /etc /tmp/h/link && ln -s ../../.. /tmp/h/d/up && echo x > /tmp/h/d/f"],
            None,
        )
        .expect("setup");
    assert_eq!(code, 0);
    let e = r.get(&mut vm, "/tmp/h", dir.path(), Limits::default()).expect_err("escaping symlink");
    assert!(matches!(e, Error::Archive(_)), "{e:?}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0, "nothing written");
    r.terminate(vm).expect("terminate");
}

/// `list` shows a launched VM with its image and TTL, and no longer after it was
/// terminated unless `all`.
pub fn list_owned_until_terminated<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let vm = r.launch("whim-default", "5m").expect("launch");
    let id = R::id(&vm);
    let listed = r.list(false).expect("list");
    let entry = listed.iter().find(|v| v.id == id).expect("the VM is listed");
    assert_eq!((entry.state.as_str(), entry.image_name()), ("RUNNING", "whim-default"));
    let left = entry.ttl_left(whim_sdk::unix_now()).expect("a TTL");
    assert!(left <= Duration::from_secs(300) && left > Duration::from_secs(240), "{left:?}");
    assert_eq!(listed.iter().filter(|v| v.id == id).count(), 1, "no duplicates");
    r.terminate(vm).expect("terminate");
    assert_eq!(emu.wait_terminated(&id, 5), "TERMINATED");
    assert!(!r.list(false).expect("list").iter().any(|v| v.id == id), "a terminated VM is not listed");
    let all = r.list(true).expect("list -a");
    assert!(all.iter().any(|v| v.id == id && v.state.as_str() == "TERMINATED"), "{all:?}");
}

/// `gc` with an age filter terminates only the older VM; without one, the rest.
pub fn gc_by_age<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let old = R::id(&r.launch("whim-default", "5m").expect("launch"));
    std::thread::sleep(Duration::from_millis(3100));
    let new = R::id(&r.launch("whim-default", "5m").expect("launch"));
    let report = r.gc(Some(Duration::from_secs(3))).expect("gc");
    let ids = |vms: &[whim_sdk::VmEntry]| vms.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    assert_eq!((ids(&report.terminated), report.failed.len()), (vec![old.clone()], 0));
    assert_eq!(emu.wait_terminated(&old, 5), "TERMINATED");
    assert_eq!(emu.state(&new), "RUNNING");
    let report = r.gc(None).expect("gc");
    assert_eq!(ids(&report.terminated), vec![new.clone()]);
    assert_eq!(emu.wait_terminated(&new, 5), "TERMINATED");
    assert!(r.gc(None).expect("gc").terminated.is_empty(), "nothing left");
}

/// Suspend, then resume, then exec works; a terminated VM refuses in the service's words.
pub fn suspend_resume_exec<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    let id = R::id(&vm);
    let (_, code) = r.exec(&mut vm, &["sh", "-c", "echo kept > /tmp/state"], None).expect("exec");
    assert_eq!(code, 0);
    r.suspend(&id).expect("suspend");
    assert_eq!(emu.state(&id), "SUSPENDED");
    r.resume(&id).expect("resume");
    assert_eq!(emu.state(&id), "RUNNING");
    let (out, code) = r.exec(&mut vm, &["cat", "/tmp/state"], None).expect("exec after resume");
    assert_eq!((out.as_slice(), code), (&b"kept\n"[..], 0));
    r.terminate(vm).expect("terminate");
    assert_eq!(emu.wait_terminated(&id, 5), "TERMINATED");
    let e = r.resume(&id).expect_err("resume a terminated VM");
    assert!(e.to_string().contains("has been terminated and its state cannot be changed"), "{e}");
    let e = r.suspend("microvm-00000000-0000-0000-0000-000000000000").expect_err("no such VM");
    assert!(matches!(e, Error::VmNotFound(_)), "{e:?}");
}

/// A command past its timeout is killed with its whole process group: the error says so
/// quickly, and no process of it is left.
pub fn exec_timeout_kills_group<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let mut vm = r.launch("whim-default", "5m").expect("launch");
    R::set_exec_timeout(&mut vm, Some(Duration::from_secs(1)));
    let started = Instant::now();
    let e = r.exec(&mut vm, &["sh", "-c", "sleep 4242 & sleep 4242"], None).expect_err("times out");
    assert!(matches!(e, Error::CommandTimedOut(d) if d == Duration::from_secs(1)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let (out, code) = r.exec(&mut vm, &["sh", "-c", "echo fast; exit 4"], None).expect("a quick command");
    assert_eq!((out.as_slice(), code), (&b"fast\n"[..], 4));
    R::set_exec_timeout(&mut vm, None);
    let scan = "{ for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done; } 2>/dev/null | grep -c '^sleep 4242' || true";
    let (out, _) = r.exec(&mut vm, &["sh", "-c", scan], None).expect("scan");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "0", "no sleep of the timed-out group is left");
    r.terminate(vm).expect("terminate");
}

/// Build options for the emulator's bootstrap, image `name`.
fn build_options(boot: &whim_sdk::Bootstrap, name: &str) -> whim_sdk::BuildOptions {
    whim_sdk::BuildOptions {
        name: name.to_owned(),
        artifact_bucket: boot.bucket.clone(),
        base_image_arn: None,
        build_role_arn: boot.build_role_arn.clone(),
        egress: whim_sdk::Egress::Public,
        privileged: false,
        force: false,
        any_content: false,
        context: whim_sdk::context::ContextOptions::default(),
        progress: None,
    }
}

/// A build context: a Dockerfile that writes `/built-file`, copies `app.sh` (executable) and
/// a `.dockerignore` that keeps `secret.txt` out.
fn build_context(root: &Path, marker: &str) -> PathBuf {
    let dir = root.join("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir ctx");
    let dockerfile = format!(
        "FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nENV GREETING={marker}\nRUN echo \"$GREETING\" > /built-file\nCOPY . /ctx/\n"
    );
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    std::fs::write(dir.join("app.sh"), "#!/bin/sh\necho app\n").expect("app.sh");
    std::fs::set_permissions(dir.join("app.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.join("secret.txt"), "do not ship").expect("secret");
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n").expect(".dockerignore");
    dir
}

/// Build from a local directory, launch the image and see the build's effects (RUN, COPY with
/// modes, .dockerignore); a second build of the same content is cached, of changed content
/// refused; `force` rebuilds; remove.
pub fn build_launch_cache_force_remove<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let tmp = tempfile::tempdir().expect("tmp");
    let ctx = build_context(tmp.path(), "first");
    let boot = r.bootstrap().expect("bootstrap");
    let mut opts = build_options(&boot, "suite-img");
    let built = r.build(ctx.to_str().expect("utf-8"), &opts).expect("build");
    assert!(!built.cached);
    assert_eq!(built.name, "suite-img");
    let mut vm = r.launch("suite-img", "5m").expect("launch the built image");
    let (out, code) =
        r.exec(&mut vm, &["sh", "-c", "cat /built-file; /ctx/app.sh; test -e /ctx/secret.txt && echo LEAKED; true"], None).expect("exec");
    assert_eq!((String::from_utf8_lossy(&out).replace('\r', ""), code), ("first\napp\n".to_owned(), 0));
    r.terminate(vm).expect("terminate");
    let again = r.build(ctx.to_str().expect("utf-8"), &opts).expect("cached build");
    assert!(again.cached, "a second build of the same content is reused");
    assert_eq!(again.arn, built.arn);
    std::fs::write(ctx.join("Dockerfile"), "FROM x\nRUN echo second > /built-file\n").expect("rewrite");
    let changed = r.build(ctx.to_str().expect("utf-8"), &opts);
    assert!(matches!(changed, Err(Error::ImageDiffers { .. })), "changed content is not silently reused: {changed:?}");
    opts.force = true;
    let forced = r.build(ctx.to_str().expect("utf-8"), &opts).expect("forced build");
    assert!(!forced.cached);
    let (out, _) = r.run("suite-img", &["cat", "/built-file"]).expect("run the rebuilt image");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "second");
    assert!(r.list_images().expect("list").iter().any(|i| i.name == "suite-img" && i.state == "CREATED"));
    r.remove_image("suite-img").expect("remove");
    assert!(r.list_images().expect("list").iter().all(|i| i.name != "suite-img"));
    assert!(matches!(r.remove_image("suite-img"), Err(Error::ImageNotFound(_))));
}

/// A failing RUN fails the build, and the builds' reason reaches the caller.
pub fn build_failure_reason<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("Dockerfile"), "FROM x\nRUN echo about to fail; exit 3\n").expect("Dockerfile");
    let boot = r.bootstrap().expect("bootstrap");
    match r.build(tmp.path().to_str().expect("utf-8"), &build_options(&boot, "suite-broken")) {
        Err(Error::BuildFailed { name, reason }) => {
            assert_eq!(name, "suite-broken");
            assert!(reason.contains("line 2") && reason.contains('3'), "the reason names the step and its status: {reason}");
        }
        other => panic!("expected BuildFailed, got {other:?}"),
    }
}

/// A hostile or unusable source is refused before anything is uploaded or created.
pub fn hostile_source_refused_before_upload<R: Runtime>(emu: &Emu) {
    let r: R = emu.runtime();
    let tmp = tempfile::tempdir().expect("tmp");
    let boot = r.bootstrap().expect("bootstrap");
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, "x").expect("outside");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    std::os::unix::fs::symlink(&outside, ctx.join("escape")).expect("symlink");
    for (source, why) in [
        (ctx.to_str().expect("utf-8").to_owned(), "an escaping symlink"),
        ("http://127.0.0.1:1/x.zip".to_owned(), "plain http"),
        ("https://user:pw@127.0.0.1:1/x.zip".to_owned(), "credentials in the URL"),
        (tmp.path().join("missing").to_str().expect("utf-8").to_owned(), "a missing path"),
    ] {
        let e = r.build(&source, &build_options(&boot, "suite-hostile")).expect_err(why);
        assert!(matches!(e, Error::InvalidSource(_)), "{why}: {e:?}");
        assert!(!e.to_string().contains("pw"), "{why}: the error shows no credentials: {e}");
    }
    // A directory whose zip would exceed the compressed cap (random bytes do not compress).
    let big = tmp.path().join("big");
    std::fs::create_dir(&big).expect("mkdir");
    std::fs::write(big.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect();
    std::fs::write(big.join("noise"), noise).expect("noise");
    let mut opts = build_options(&boot, "suite-hostile");
    opts.context.limits.max_compressed_bytes = 16 * 1024;
    let e = r.build(big.to_str().expect("utf-8"), &opts).expect_err("over the compressed cap");
    assert!(matches!(e, Error::SourceTooLarge(_)), "{e:?}");
    assert!(r.list_images().expect("list").iter().all(|i| i.name != "suite-hostile"), "nothing was created");
}

/// Instantiates every scenario for one runtime as `#[test]`s in a module; `$emu` makes
/// each test's own emulator.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $runtime:ty, $emu:expr) => {
        mod $module {
            use super::*;
            $crate::conformance_suite!(@tests $runtime, $emu; exit_codes, five_million_lines, random_bytes,
                stdin_with_eof, shell_resize_exit, ttl_expiry, provision_failure, connection_dropped_mid_exec,
                list_owned_until_terminated, gc_by_age, suspend_resume_exec, exec_timeout_kills_group, put_get_round_trip, copy_failures_are_loud, get_refuses_escaping_symlink,
                build_launch_cache_force_remove, build_failure_reason, hostile_source_refused_before_upload);
        }
    };
    (@tests $runtime:ty, $emu:expr; $($scenario:ident),*) => {
        $(
            #[test]
            fn $scenario() {
                $crate::suite::$scenario::<$runtime>(&$emu);
            }
        )*
    };
}
