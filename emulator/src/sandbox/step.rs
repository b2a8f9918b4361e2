//! One build step in a throwaway VM: boot with a persistent upper dir, run one command to
//! completion without a terminal, keep the tail of its output, tear the VM down.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use super::exec::ExecSpec;
use super::nsvm::NsVm;
use super::pty::KILLED_STATUS;
use super::{SandboxConfig, SandboxError};

/// Output kept per step (the end of it).
const TAIL_BYTES: usize = 64 * 1024;

/// Where a build step's writes go.
#[derive(Debug, Clone)]
pub(crate) struct StepFs {
    /// The image's upper dir, kept across steps (whiteouts record deletions).
    pub upper: PathBuf,
    /// overlayfs' work dir for `upper`: same filesystem, empty, reused.
    pub work: PathBuf,
    /// The build context, bound read-only at `/dev/`[`super::CONTEXT_DIR`] (COPY steps).
    pub context: Option<PathBuf>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepOutcome {
    /// Exit code, or 128 + signal (137 when the step timed out and was killed).
    pub status: i32,
    /// The last [`TAIL_BYTES`] of its stdout and stderr, interleaved.
    pub output: Vec<u8>,
    /// Whether it ran past its timeout.
    pub timed_out: bool,
}

/// Boots a VM over `step`'s layers (namespaces only), runs `spec`, kills the VM.
pub(crate) async fn run_step(
    cfg: &SandboxConfig,
    vm_id: &str,
    step: &StepFs,
    spec: &ExecSpec,
    limit: Duration,
) -> Result<StepOutcome, SandboxError> {
    super::check_vm_id(vm_id)?;
    let vm = NsVm::boot(cfg, vm_id, Some(step)).await?;
    let outcome = run_in(&vm, spec, limit).await;
    vm.kill().await;
    let (status, timed_out, reader) = outcome?;
    let output = reader.await.unwrap_or_default();
    Ok(StepOutcome { status, output, timed_out })
}

type Reader = tokio::task::JoinHandle<Vec<u8>>;

async fn run_in(vm: &NsVm, spec: &ExecSpec, limit: Duration) -> Result<(i32, bool, Reader), SandboxError> {
    let (output, mut exit) = vm.exec(spec).await?;
    let reader = tokio::task::spawn_blocking(move || read_tail(output));
    let waited = tokio::time::timeout(limit, exit.wait_for(Option::is_some)).await;
    let (status, timed_out) = match waited {
        Ok(Ok(status)) => (status.unwrap_or(KILLED_STATUS), false),
        Ok(Err(_)) => (KILLED_STATUS, false),
        Err(_) => (KILLED_STATUS, true),
    };
    Ok((status, timed_out, reader))
}

/// Reads `fd` to its end (every writer gone: the VM is killed), keeping the last bytes.
pub(crate) fn read_tail(fd: OwnedFd) -> Vec<u8> {
    let mut file = std::fs::File::from(fd);
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * TAIL_BYTES {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return tail,
        }
    }
}
