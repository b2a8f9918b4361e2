//! fork() with the child born inside a cgroup v2 directory (clone3 + CLONE_INTO_CGROUP).
//!
//! Moving a running process into a cgroup waits for an RCU grace period (measured: ~0.6 ms
//! usually, ~10 ms for the first move after a quiet spell); placing a new child there at fork
//! costs ~0.1 ms. Falls back to fork() + writing `cgroup.procs` from the child.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid, fork};

/// Linux `CLONE_INTO_CGROUP` (5.7+).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Linux `struct clone_args`, version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks; the child starts in `cgroup_v2` when given. Every `cgroup.procs` in `join` (and the
/// v2 one, if clone3 was refused) is joined by the child before this returns in it.
///
/// # Safety
/// Same contract as `fork()`: the calling process must be single threaded.
pub(crate) unsafe fn fork_into(cgroup_v2: Option<&Path>, join: &[&Path]) -> Result<ForkResult, String> {
    let dir = cgroup_v2.and_then(|d| open(d, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok());
    // SAFETY: forwarded contract (single threaded).
    let (result, placed) = match dir.as_ref().map(|fd| unsafe { clone_into(fd) }) {
        Some(Ok(result)) => (result, true),
        // SAFETY: forwarded contract (single threaded).
        _ => (unsafe { fork() }.map_err(|e| format!("fork: {e}"))?, false),
    };
    if let ForkResult::Child = result {
        let v2_procs = cgroup_v2.filter(|_| !placed).map(|d| d.join("cgroup.procs"));
        for procs in v2_procs.iter().map(|p| p.as_path()).chain(join.iter().copied()) {
            std::fs::write(procs, std::process::id().to_string()).map_err(|e| format!("join cgroup {}: {e}", procs.display()))?;
        }
    }
    Ok(result)
}

/// Raw clone3 without CLONE_VM: fork semantics, placed in the cgroup `dir`.
///
/// # Safety
/// The calling process must be single threaded. glibc's fork bookkeeping is skipped: no atfork
/// handlers run and the child's cached TID stays the parent's, so the child must not rely on
/// pthread_kill/raise or error-checking mutexes (the helper's child only makes plain syscalls,
/// forks with glibc's fork, and exits).
unsafe fn clone_into(dir: &OwnedFd) -> nix::Result<ForkResult> {
    let mut args =
        CloneArgs { flags: CLONE_INTO_CGROUP, exit_signal: libc::SIGCHLD as u64, cgroup: dir.as_raw_fd() as u64, ..CloneArgs::default() };
    // SAFETY: clone3 reads `args` (size given); without CLONE_VM the child gets a copy of memory.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, size_of::<CloneArgs>()) };
    match rc {
        -1 => Err(nix::errno::Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent { child: Pid::from_raw(pid as i32) }),
    }
}
