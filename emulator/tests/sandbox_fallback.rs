//! Fallbacks and failure paths: boot errors, the unisolated tier, and the freeze fallbacks forced
//! with `WHIM_SANDBOX_CGROUP` (in their own test binary, because the variable is process-wide):
//! the cgroup v1 freezer, and SIGSTOP when there is no cgroup.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whim_emulator::sandbox::{CGROUP_ENV, Isolation, SandboxConfig, SandboxError, ShellReader, Vm};

const PATIENCE: Duration = Duration::from_secs(15);

fn config() -> SandboxConfig {
    let mut cfg = SandboxConfig::default_for_host();
    cfg.helper_exe = env!("CARGO_BIN_EXE_whim-sandbox-helper").into();
    cfg.state_dir = std::env::temp_dir().join(format!("whim-sandbox-fallback-{}", std::process::id()));
    cfg
}

/// Reads until `needle` shows up in `seen[from..]` or `until` passes; true if it showed up.
async fn read_until(reader: &mut ShellReader, seen: &mut Vec<u8>, from: usize, needle: &str, until: Instant) -> bool {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen[from..]).contains(needle) {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    true
}

/// Boots a VM with the current mechanism; checks that a frozen VM prints nothing and a thawed
/// one carries on; returns the whole transcript.
async fn freeze_round_trip(name: &str) -> (Vm, String) {
    let vm = Vm::boot(&config(), &format!("fb-{name}-{}", std::process::id())).await.expect("boot");
    let (mut reader, mut writer, _control) = vm.spawn_shell().await.expect("spawn").split();
    let mut seen = Vec::new();
    assert!(read_until(&mut reader, &mut seen, 0, "λ $", Instant::now() + PATIENCE).await);
    let from = seen.len();
    writer.write_all(b"sleep 0.3; echo af''ter\n").await.expect("type");
    tokio::time::sleep(Duration::from_millis(50)).await;
    vm.freeze().await.expect("freeze");
    let quiet = Instant::now() + Duration::from_millis(800);
    assert!(!read_until(&mut reader, &mut seen, from, "after\r\n", quiet).await, "output while frozen");
    vm.thaw().await.expect("thaw");
    let shown = read_until(&mut reader, &mut seen, from, "after\r\n", Instant::now() + PATIENCE).await;
    let transcript = String::from_utf8_lossy(&seen).into_owned();
    assert!(shown, "no output after thaw: {transcript:?}");
    (vm, transcript)
}

#[tokio::test]
async fn freeze_falls_back_to_v1_then_to_sigstop() {
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var(CGROUP_ENV, "v1") };
    let (vm, transcript) = freeze_round_trip("v1").await;
    let dir = vm.cgroup_dir().expect("a v1 freezer cgroup");
    assert!(dir.components().any(|c| c.as_os_str() == "freezer"), "{}", dir.display());
    assert!(!transcript.contains("Stopped"), "the v1 freezer is invisible: {transcript:?}");
    vm.kill().await;
    assert!(!dir.exists(), "v1 cgroup {} survived", dir.display());

    // SAFETY: as above.
    unsafe { std::env::set_var(CGROUP_ENV, "none") };
    let (vm, transcript) = freeze_round_trip("sigstop").await;
    assert_eq!(vm.cgroup_dir(), None);
    println!("SIGSTOP fallback transcript (bash may report the job as Stopped): {transcript:?}");
    let init = vm.init_host_pid();
    vm.kill().await;
    assert!(!std::path::Path::new(&format!("/proc/{init}")).exists(), "init survived");
}

#[tokio::test]
async fn unisolated_shell_still_works() {
    let mut cfg = config();
    cfg.isolation = Isolation::Unisolated;
    let vm = Vm::boot(&cfg, &format!("fb-unisolated-{}", std::process::id())).await.expect("boot");
    assert_eq!(vm.init_host_pid(), 0);
    let (mut reader, mut writer, mut control) = vm.spawn_shell().await.expect("spawn").split();
    let (mut seen, until) = (Vec::new(), Instant::now() + PATIENCE);
    assert!(read_until(&mut reader, &mut seen, 0, "λ $", until).await);
    writer.write_all(b"echo \"[$TERM] [$PS1]\"\n").await.expect("type");
    assert!(read_until(&mut reader, &mut seen, 0, "[xterm] [λ $ ]", until).await);
    writer.write_all(b"exit 3\n").await.expect("type");
    assert_eq!(tokio::time::timeout(PATIENCE, control.wait_exit()).await, Ok(3));
    vm.kill().await;
    assert!(!vm.is_alive());
}

#[tokio::test]
async fn bad_image_root_fails_boot_cleanly() {
    let mut cfg = config();
    cfg.image_root = "/nonexistent-whim-image".into();
    let err = Vm::boot(&cfg, &format!("fb-badimage-{}", std::process::id())).await.expect_err("boot must fail");
    assert!(matches!(err, SandboxError::Setup(ref why) if why.contains("overlay")), "{err}");
    cfg.image_root = "/".into();
    cfg.helper_exe = "/nonexistent-whim-helper".into();
    let err = Vm::boot(&cfg, &format!("fb-badhelper-{}", std::process::id())).await.expect_err("boot must fail");
    assert!(matches!(err, SandboxError::HelperSpawn { .. }), "{err}");
}
