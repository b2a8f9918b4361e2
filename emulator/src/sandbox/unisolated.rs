//! The no-isolation fallback: each shell is bash on a host pty in its own session.
//!
//! UNSAFE by design: the shell is whatever user the emulator runs as, on the host's filesystem
//! and network. Kill and freeze signal every process of each shell's session; a process that
//! calls setsid() itself escapes them. Freeze is SIGSTOP, so bash may print "Stopped" for jobs.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

use super::guest::SHELL_ENV;
use super::table::ShellTable;
use super::{SandboxConfig, SandboxError, Shell};

/// A "VM" that is only a scratch HOME plus the sessions of its shells.
#[derive(Debug)]
pub(crate) struct HostVm {
    home: PathBuf,
    scratch: PathBuf,
    table: Arc<ShellTable>,
    sessions: Mutex<Vec<i32>>,
    next_id: AtomicU64,
}

impl HostVm {
    /// Makes the scratch HOME; loudly warns that nothing is isolated.
    pub(crate) fn boot(cfg: &SandboxConfig, vm_id: &str) -> Result<Self, SandboxError> {
        tracing::warn!(vm_id, "UNISOLATED sandbox: shells run directly on the host with the emulator's privileges");
        let scratch = cfg.state_dir.join(vm_id);
        let home = scratch.join("home");
        std::fs::create_dir_all(&home).map_err(|e| SandboxError::io(format!("create {}", home.display()), e))?;
        let table = Arc::new(ShellTable::default());
        Ok(HostVm { home, scratch, table, sessions: Mutex::new(Vec::new()), next_id: AtomicU64::new(1) })
    }

    /// Starts bash on a fresh host pty, as a session leader with that pty as controlling tty.
    pub(crate) async fn spawn_shell(&self) -> Result<Shell, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let exit = self.table.register_exit(id).ok_or(SandboxError::Dead)?;
        let (master, slave) = open_pty()?;
        let mut child = self.command(slave)?.spawn().map_err(|e| SandboxError::io("spawn /bin/bash", e))?;
        let pid = child.id().map_or(0, |p| p as i32);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
        let table = self.table.clone();
        tokio::spawn(async move {
            let status = child.wait().await.map(exit_code).unwrap_or(super::pty::KILLED_STATUS);
            table.exited(id, status);
        });
        Shell::new(master, pid, exit)
    }

    fn command(&self, slave: OwnedFd) -> Result<Command, SandboxError> {
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| SandboxError::io("dup the pty slave", e));
        let mut cmd = Command::new("/bin/bash");
        cmd.args(["--noprofile", "--norc", "-i"]).env_clear().current_dir(&self.home);
        for (key, value) in SHELL_ENV.iter().filter_map(|kv| kv.split_once('=')) {
            cmd.env(key, value);
        }
        cmd.env("HOME", &self.home).stdin(dup(&slave)?).stdout(dup(&slave)?).stderr(slave);
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// SIGSTOPs (or SIGCONTs) every process of every shell's session.
    pub(crate) fn set_frozen(&self, frozen: bool) -> Result<(), SandboxError> {
        if self.table.is_dead() {
            return Err(SandboxError::Dead);
        }
        self.signal_sessions(if frozen { Signal::SIGSTOP } else { Signal::SIGCONT });
        Ok(())
    }

    /// SIGKILLs every session and removes the scratch HOME. Idempotent.
    pub(crate) fn kill(&self) {
        self.signal_sessions(Signal::SIGKILL);
        self.table.mark_dead();
        if self.scratch.exists() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }

    /// Whether [`HostVm::kill`] has not run yet.
    pub(crate) fn is_alive(&self) -> bool {
        !self.table.is_dead()
    }

    fn signal_sessions(&self, sig: Signal) {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for pid in session_members(&sessions) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

impl Drop for HostVm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Opens a pty pair, both ends close-on-exec (the server is multi-threaded).
fn open_pty() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let pty = |what: &'static str| move |e: nix::Error| SandboxError::io(what, e);
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(pty("open /dev/ptmx"))?;
    grantpt(&master).map_err(pty("grantpt"))?;
    unlockpt(&master).map_err(pty("unlockpt"))?;
    let name = CString::new(ptsname_r(&master).map_err(pty("ptsname"))?).unwrap_or_default();
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let slave = nix::fcntl::open(name.as_c_str(), flags, nix::sys::stat::Mode::empty()).map_err(pty("open the pty slave"))?;
    Ok((master.into(), slave))
}

/// Host pids whose session id is one of `sessions`, from `/proc/*/stat`.
fn session_members(sessions: &[i32]) -> Vec<i32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let pids = entries.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|pid| session_of(*pid).is_some_and(|sid| sessions.contains(&sid))).collect()
}

fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state ppid pgrp session ...
    stat.rsplit_once(')')?.1.split_whitespace().nth(3)?.parse().ok()
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(super::pty::KILLED_STATUS)
}
