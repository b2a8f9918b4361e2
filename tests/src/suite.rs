//! The runtime conformance suite, written once: every scenario runs against each runtime
//! crate (tokio, async-std's executor, smol's executor, blocking) through [`Runtime`], on an
//! in-process emulator with ephemeral loopback ports. `tests/tests/runtimes.rs` instantiates
//! it; a later feature adds its scenarios here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_lambdamicrovms::config::BehaviorVersion;
use aws_types::region::Region;
use sha2::{Digest, Sha256};
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

/// Instantiates every scenario for one runtime as `#[test]`s in a module; `$emu` makes
/// each test's own emulator.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $runtime:ty, $emu:expr) => {
        mod $module {
            use super::*;
            $crate::conformance_suite!(@tests $runtime, $emu; exit_codes, five_million_lines, random_bytes,
                stdin_with_eof, shell_resize_exit, ttl_expiry, provision_failure, connection_dropped_mid_exec);
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
