//! RUN without isolation (`--unisolated` emulators only): `/bin/sh -c` on the host, as the
//! emulator's user, in a scratch dir under the build's directory. What it writes is not part
//! of the image (unisolated VMs have no image filesystem); it exists so that Dockerfiles with
//! harmless RUN steps still build there.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::sandbox::{ExecSpec, KILLED_STATUS, StepOutcome, read_tail};

/// Runs `spec` on the host in `<out_dir>/host-scratch`; its output is the pipe's tail.
pub(crate) async fn run(out_dir: &Path, spec: &ExecSpec, limit: Duration) -> Result<StepOutcome, String> {
    tracing::warn!(command = ?spec.argv, "UNISOLATED build: RUN executes directly on the host with the emulator's privileges");
    let scratch = out_dir.join("host-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    let mut child = command(spec, &scratch, write)?.spawn().map_err(|e| format!("start {}: {e}", spec.argv[0]))?;
    let pgid = child.id().map(|p| p as i32);
    let reader = tokio::task::spawn_blocking(move || read_tail(read));
    let waited = tokio::time::timeout(limit, child.wait()).await;
    // Kill what the step left running too (its whole process group), so the pipe closes.
    if let Some(pgid) = pgid {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
    }
    let (status, timed_out) = match waited {
        Ok(Ok(status)) => (exit_code(status), false),
        Ok(Err(e)) => return Err(format!("wait for the command: {e}")),
        Err(_) => (KILLED_STATUS, true),
    };
    let _ = child.wait().await;
    drop(child);
    let output = reader.await.unwrap_or_default();
    Ok(StepOutcome { status, output, timed_out })
}

fn command(spec: &ExecSpec, scratch: &Path, out: OwnedFd) -> Result<Command, String> {
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("dup the output pipe: {e}"));
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..]).env_clear().current_dir(scratch).process_group(0).kill_on_drop(true);
    for (k, v) in spec.env.iter().filter_map(|kv| kv.split_once('=')) {
        cmd.env(k, v);
    }
    if !spec.env.iter().any(|kv| kv.starts_with("HOME=")) {
        cmd.env("HOME", scratch);
    }
    cmd.stdin(Stdio::null()).stdout(dup(&out)?).stderr(out);
    Ok(cmd)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(KILLED_STATUS)
}
