//! The re-executed setup helper (`<helper_exe> __whim-microvm-init`), single threaded.
//!
//! Process tree: helper (real root: mounts) -> namespaced child (born in the VM's cgroup) (new user/pid/... namespaces;
//! the helper writes its id maps) -> the VM's pid 1 ([`super::init`]). Both outer processes only wait
//! and pass the exit status on. The control socket arrives as stdin.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2, read, write};

use super::args::HelperArgs;
use super::proto::{self, Report};
use super::{cgfork, init, rootfs};

/// Identity map of every id: ns-root is host root, so host files keep their owners.
const ID_MAP: &str = "0 0 4294967295\n";

/// Runs the helper and exits with the VM's exit status; never returns.
pub(crate) fn main() -> ! {
    // SAFETY: the emulator hands the control socket over as stdin and nothing else uses fd 0.
    let ctl = unsafe { OwnedFd::from_raw_fd(0) };
    match prepare(&ctl) {
        Ok((args, root)) => std::process::exit(fork_namespaced(&args, &root, ctl)),
        Err(why) => {
            proto::report(ctl.as_fd(), &Report::Failed(why), None);
            std::process::exit(1)
        }
    }
}

/// Host-side setup as real root: read the plan, build the root.
fn prepare(ctl: &OwnedFd) -> Result<(HelperArgs, PathBuf), String> {
    ensure_single_threaded()?;
    let packet = proto::recv(ctl.as_fd()).map_err(|e| format!("read helper configuration: {e}"))?;
    let (bytes, _) = packet.ok_or("the emulator closed the control socket before sending a configuration")?;
    let args = HelperArgs::decode(&bytes)?;
    let root = rootfs::build(&args)?;
    Ok((args, root))
}

/// Forking is only sound here because nothing else runs in this process.
fn ensure_single_threaded() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("read /proc/self/status: {e}"))?;
    match status.lines().find_map(|l| l.strip_prefix("Threads:")).map(str::trim) {
        Some("1") => Ok(()),
        other => Err(format!(
            "the sandbox helper runs with {other:?} threads; call sandbox::run_helper_if_requested() \
             first thing in a non-async main(), before any runtime or thread starts"
        )),
    }
}

fn ns_flags(egress_none: bool) -> CloneFlags {
    let base = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if egress_none { base | CloneFlags::CLONE_NEWNET } else { base }
}

/// Forks the namespaced child, writes its id maps, then waits for it.
fn fork_namespaced(args: &HelperArgs, root: &Path, ctl: OwnedFd) -> i32 {
    let pipes = pipe2(nix::fcntl::OFlag::O_CLOEXEC).and_then(|a| Ok((a, pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)));
    let Ok(((ready_r, ready_w), (go_r, go_w))) = pipes else {
        proto::report(ctl.as_fd(), &Report::Failed("pipe2 failed".into()), None);
        return 1;
    };
    let join: Vec<&Path> = args.cgroup_procs.iter().map(PathBuf::as_path).collect();
    // SAFETY: single threaded (checked in prepare), so the child may run arbitrary code.
    match unsafe { cgfork::fork_into(args.cgroup_v2.as_deref(), &join) } {
        Err(why) => {
            proto::report(ctl.as_fd(), &Report::Failed(why), None);
            std::process::exit(1)
        }
        Ok(ForkResult::Child) => {
            drop((ready_r, go_w));
            std::process::exit(namespaced_child(args, root, ctl, ready_w, go_r))
        }
        Ok(ForkResult::Parent { child }) => {
            drop((ready_w, go_r));
            map_ids(child, &ctl, &ready_r, &go_w);
            drop((ctl, go_w));
            wait_status(child)
        }
    }
}

/// Waits for the child's "unshared", writes its id maps, and lets it go on.
/// A child that fails before "unshared" has already reported why.
fn map_ids(child: Pid, ctl: &OwnedFd, ready: &OwnedFd, go: &OwnedFd) {
    if read_byte(ready)
        && let Err(why) = write_id_maps(child).and_then(|()| send_byte(go))
    {
        proto::report(ctl.as_fd(), &Report::Failed(why), None);
        let _ = kill(child, Signal::SIGKILL);
    }
}

fn write_id_maps(child: Pid) -> Result<(), String> {
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, ID_MAP).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(())
}

/// The namespaced child: unshare, wait for the maps, fork pid 1, report its host pid, wait.
fn namespaced_child(args: &HelperArgs, root: &Path, ctl: OwnedFd, ready: OwnedFd, go: OwnedFd) -> i32 {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    let flags = ns_flags(args.egress_none);
    if let Err(e) = unshare(flags) {
        proto::report(ctl.as_fd(), &Report::Failed(format!("unshare({flags:?}): {e}")), None);
        return 1;
    }
    if send_byte(&ready).is_err() || !read_byte(&go) {
        return 1;
    }
    // SAFETY: still single threaded.
    match unsafe { fork() } {
        Err(e) => {
            proto::report(ctl.as_fd(), &Report::Failed(format!("fork pid 1: {e}")), None);
            1
        }
        Ok(ForkResult::Child) => init::main(args, root, ctl),
        Ok(ForkResult::Parent { child }) => {
            proto::report(ctl.as_fd(), &Report::InitPid(child.as_raw()), None);
            drop(ctl);
            wait_status(child)
        }
    }
}

fn send_byte(fd: &OwnedFd) -> Result<(), String> {
    write(fd, b"1").map(drop).map_err(|e| format!("handshake write: {e}"))
}

fn read_byte(fd: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    matches!(read(fd, &mut b), Ok(1))
}

/// Waits for `pid`; exit code, or 128 + signal.
pub(crate) fn wait_status(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 1,
        }
    }
}
