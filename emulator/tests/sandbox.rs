//! End-to-end tests of the namespace sandbox: real VMs, real ptys, keystrokes in, bytes out.
//! They need root (as on the project's machines and CI).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whim_emulator::sandbox::{SandboxConfig, SandboxError, ShellControl, ShellReader, ShellWriter, Vm};

const PATIENCE: Duration = Duration::from_secs(15);

fn config() -> SandboxConfig {
    let mut cfg = SandboxConfig::default_for_host();
    cfg.helper_exe = env!("CARGO_BIN_EXE_whim-sandbox-helper").into();
    cfg.state_dir = std::env::temp_dir().join(format!("whim-sandbox-test-{}", std::process::id()));
    cfg
}

fn vm_id(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("t-{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn boot(cfg: &SandboxConfig, name: &str) -> Vm {
    Vm::boot(cfg, &vm_id(name)).await.unwrap_or_else(|e| panic!("boot {name}: {e}"))
}

/// A shell driven like a user at a terminal: everything it printed is kept in `seen`.
struct Term {
    reader: ShellReader,
    writer: ShellWriter,
    control: ShellControl,
    seen: Vec<u8>,
    commands: u32,
}

impl Term {
    async fn open(vm: &Vm) -> Term {
        let (reader, writer, control) = vm.spawn_shell().await.expect("spawn shell").split();
        let mut term = Term { reader, writer, control, seen: Vec::new(), commands: 0 };
        term.expect_after(0, "λ $").await;
        term
    }

    fn text(&self, from: usize) -> String {
        String::from_utf8_lossy(&self.seen[from..]).into_owned()
    }

    async fn type_keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).await.expect("type into the pty");
    }

    /// Reads more output; false on EOF or when `until` passes without output.
    async fn read_some(&mut self, until: Instant) -> bool {
        let mut buf = [0u8; 4096];
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                self.seen.extend_from_slice(&buf[..n]);
                true
            }
            _ => false,
        }
    }

    /// Waits until `needle` appears in the output after byte `from`; returns that output.
    async fn expect_after(&mut self, from: usize, needle: &str) -> String {
        let until = Instant::now() + PATIENCE;
        while !self.text(from).contains(needle) {
            if !self.read_some(until).await {
                panic!("did not see {needle:?}; transcript:\n{}", self.text(0));
            }
        }
        self.text(from)
    }

    /// Runs `cmd` and returns exactly what it printed (markers are split in the typed line so
    /// the terminal echo never matches them).
    async fn run(&mut self, cmd: &str) -> String {
        self.commands += 1;
        let n = self.commands;
        let from = self.seen.len();
        self.type_keys(&format!("echo __BE''GIN_{n}__; {cmd}; echo __EN''D_{n}__\n")).await;
        let (begin, end) = (format!("__BEGIN_{n}__\r\n"), format!("__END_{n}__"));
        let out = self.expect_after(from, &end).await;
        let start = out.find(&begin).map_or(0, |i| i + begin.len());
        out[start..out.find(&end).unwrap_or(out.len())].to_owned()
    }

    /// Runs `cmd` and returns its exit status, as printed by `echo $?`.
    async fn status_of(&mut self, cmd: &str) -> i32 {
        let out = self.run(&format!("{cmd} >/dev/null 2>&1; echo rc=$?")).await;
        let rc = out.rsplit("rc=").next().unwrap_or("").trim();
        rc.parse().unwrap_or_else(|_| panic!("no status in {out:?}"))
    }
}

#[tokio::test]
async fn shell_looks_like_the_real_one() {
    let cfg = config();
    let started = Instant::now();
    let vm = boot(&cfg, "basics").await;
    let (mut reader, writer, control) = vm.spawn_shell().await.expect("spawn").split();
    let mut first = [0u8; 1];
    reader.read_exact(&mut first).await.expect("first byte");
    let first_byte = started.elapsed();
    let mut term = Term { reader, writer, control, seen: first.to_vec(), commands: 0 };
    term.expect_after(0, "λ $").await;
    println!("boot -> first pty byte: {first_byte:?}; boot -> prompt: {:?}", started.elapsed());
    assert!(term.text(0).contains("\x1b[?2004h"), "bracketed paste is on: {:?}", term.text(0));
    assert_eq!(term.run("echo hi").await.trim(), "hi");
    assert_eq!(term.run("id -u").await.trim(), "0");
    assert_eq!(term.run("echo $TERM").await.trim(), "xterm");
    assert_eq!(term.run("stty size").await.trim(), "0 0");
    term.control.resize(100, 30).expect("resize");
    assert_eq!(term.run("stty size").await.trim(), "30 100");
    assert_eq!(term.run("tty").await.trim(), "/dev/pts/0");
    assert_eq!(term.run("hostname").await.trim(), "localhost");
    assert_eq!(term.run("echo $$").await.trim(), "2", "the first shell is pid 2, after init");
    vm.kill().await;
}

#[tokio::test]
async fn restricted_mode_blocks_mounts_and_namespaces() {
    let vm = boot(&config(), "restricted").await;
    let mut term = Term::open(&vm).await;
    assert_ne!(term.status_of("mount -t tmpfs x /mnt").await, 0);
    assert_ne!(term.status_of("unshare -U true").await, 0);
    assert_ne!(term.status_of("unshare -n true").await, 0);
    assert_ne!(term.status_of("unshare -Urmn true").await, 0);
    let status = term.run("grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status").await;
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status:?}");
    assert!(status.contains("CapBnd:\t00000000a80425fb"), "{status:?}");
    assert!(status.contains("Seccomp:\t2"), "{status:?}");
    assert_eq!(term.status_of("sh -c 'yes | head -n 1'").await, 0, "plain process creation still works");
    vm.kill().await;
}

#[tokio::test]
async fn privileged_mode_may_unshare_and_mount() {
    let mut cfg = config();
    cfg.privileged = true;
    let vm = boot(&cfg, "privileged").await;
    let mut term = Term::open(&vm).await;
    assert_eq!(term.status_of("unshare -U true").await, 0);
    assert_eq!(term.status_of("mount -t tmpfs x /mnt").await, 0);
    vm.kill().await;
}

#[tokio::test]
async fn writes_stay_inside_the_vm() {
    let marker = format!("/etc/whim-test-{}", std::process::id());
    let vm = boot(&config(), "overlay").await;
    let mut term = Term::open(&vm).await;
    term.run(&format!("echo x > {marker}")).await;
    assert_eq!(term.run(&format!("cat {marker}")).await.trim(), "x");
    assert!(!Path::new(&marker).exists(), "{marker} leaked to the host");
    vm.kill().await;
}

#[tokio::test]
async fn host_home_and_checkout_are_hidden() {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let marker = home.join(format!("whim-mask-marker-{}", std::process::id()));
    std::fs::write(&marker, "secret").expect("write marker");
    let vm = boot(&config(), "masks").await;
    let mut term = Term::open(&vm).await;
    let in_home = term.status_of(&format!("test -e {}", marker.display())).await;
    let checkout = std::env::current_dir().expect("cwd").join("Cargo.toml");
    let in_checkout = term.status_of(&format!("test -e {}", checkout.display())).await;
    let devices = term.run("ls /dev").await;
    std::fs::remove_file(&marker).expect("remove marker");
    assert_ne!(in_home, 0, "the host's {} is visible in the VM", marker.display());
    assert_ne!(in_checkout, 0, "the checkout {} is visible in the VM", checkout.display());
    assert!(!devices.contains("vda") && devices.contains("urandom"), "/dev: {devices:?}");
    vm.kill().await;
}

#[tokio::test]
async fn egress_none_has_only_loopback() {
    let mut cfg = config();
    cfg.egress_none = true;
    let vm = boot(&cfg, "egress").await;
    let mut term = Term::open(&vm).await;
    let dev = term.run("cat /proc/net/dev").await;
    let ifaces: Vec<&str> = dev.lines().filter_map(|l| l.split_once(':')).map(|(i, _)| i.trim()).collect();
    assert_eq!(ifaces, ["lo"], "{dev:?}");
    let flags = term.run("cat /sys/class/net/lo/flags").await;
    assert_eq!(u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).map(|f| f & 1), Ok(1), "lo is up: {flags:?}");
    vm.kill().await;
}

#[tokio::test]
async fn freeze_holds_output_until_thaw() {
    let vm = boot(&config(), "freeze").await;
    let mut term = Term::open(&vm).await;
    let from = term.seen.len();
    term.type_keys("sleep 0.3; echo af''ter\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    vm.freeze().await.expect("freeze");
    println!("freeze took {:?}", t.elapsed());
    let quiet_until = Instant::now() + Duration::from_millis(800);
    while term.read_some(quiet_until).await {}
    assert!(!term.text(from).contains("after"), "output while frozen: {:?}", term.text(from));
    let t = Instant::now();
    vm.thaw().await.expect("thaw");
    println!("thaw took {:?}", t.elapsed());
    term.expect_after(from, "after\r\n").await;
    term.run("true").await;
    assert!(!term.text(0).contains("Stopped"), "{:?}", term.text(0));
    vm.kill().await;
}

#[tokio::test]
async fn kill_leaves_nothing_behind() {
    let cfg = config();
    let id = vm_id("kill");
    let vm = Vm::boot(&cfg, &id).await.expect("boot");
    let mut term = Term::open(&vm).await;
    term.run("sleep 1000 & true").await;
    let init = vm.init_host_pid();
    let cgroup = vm.cgroup_dir();
    assert!(Path::new(&format!("/proc/{init}")).exists());
    vm.kill().await;
    assert!(!vm.is_alive());
    assert!(!Path::new(&format!("/proc/{init}")).exists(), "init {init} survived");
    if let Some(dir) = cgroup {
        assert!(!dir.exists(), "cgroup {} survived", dir.display());
    }
    assert!(!cfg.state_dir.join(&id).exists(), "scratch dir survived");
    assert_eq!(term.control.wait_exit().await, 137);
    vm.kill().await;
    assert!(matches!(vm.spawn_shell().await, Err(SandboxError::Dead)));
}

#[tokio::test]
async fn dropping_a_vm_kills_it() {
    let vm = boot(&config(), "drop").await;
    let init = vm.init_host_pid();
    drop(vm);
    let until = Instant::now() + PATIENCE;
    while Path::new(&format!("/proc/{init}")).exists() {
        assert!(Instant::now() < until, "init {init} outlived its Vm");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn shells_of_one_vm_share_files() {
    let vm = boot(&config(), "share").await;
    let mut a = Term::open(&vm).await;
    let mut b = Term::open(&vm).await;
    a.run("echo shared > /tmp/x").await;
    assert_eq!(b.run("cat /tmp/x").await.trim(), "shared");
    assert_eq!(b.run("tty").await.trim(), "/dev/pts/1");
    vm.kill().await;
}

#[tokio::test]
async fn wait_exit_reports_the_exit_code() {
    let vm = boot(&config(), "exit").await;
    let mut term = Term::open(&vm).await;
    term.type_keys("exit 7\n").await;
    let status = tokio::time::timeout(PATIENCE, term.control.wait_exit()).await.expect("shell exit");
    assert_eq!(status, 7);
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, term.reader.read_to_end(&mut rest)).await.expect("EOF").expect("read");
    assert!(vm.is_alive(), "the VM outlives its shells");
    vm.kill().await;
}

/// Prints boot timings (run with --nocapture): boot, spawn, first pty byte, over 20 sequential VMs.
#[tokio::test]
async fn boot_timing() {
    let cfg = config();
    let mut rows = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let vm = boot(&cfg, "timing").await;
        let booted = t0.elapsed();
        let (mut reader, _writer, _control) = vm.spawn_shell().await.expect("spawn").split();
        let spawned = t0.elapsed();
        reader.read_exact(&mut [0u8; 1]).await.expect("first byte");
        rows.push((booted, spawned, t0.elapsed()));
        vm.kill().await;
    }
    for (booted, spawned, first) in &rows {
        println!("boot {booted:?}  +spawn {spawned:?}  +first byte {first:?}");
    }
    let mut firsts: Vec<Duration> = rows.iter().map(|r| r.2).collect();
    firsts.sort();
    let mean = firsts.iter().sum::<Duration>() / firsts.len() as u32;
    println!(
        "boot -> first pty byte: mean {mean:?}, median {:?}, min {:?}, max {:?}",
        firsts[firsts.len() / 2],
        firsts[0],
        firsts[firsts.len() - 1]
    );
}

#[test]
fn probe_accepts_this_host() {
    assert_eq!(whim_emulator::sandbox::probe(), Ok(()));
}
