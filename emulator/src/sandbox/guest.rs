//! Starting one interactive shell inside the VM; runs in the VM's init.
//!
//! The pty comes from the VM's own devpts, so `tty` says `/dev/pts/N` inside the VM.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::unistd::{ForkResult, Pid, fork};

use super::restrict::Policy;

/// The shell's whole environment (nothing leaks in from the emulator).
pub const SHELL_ENV: [&str; 6] = [
    "TERM=xterm",
    "HOME=/root",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PS1=λ $ ",
    "USER=root",
    "LANG=C.UTF-8",
];

/// The shell command: interactive bash without startup files.
const BASH: [&CStr; 4] = [c"/bin/bash", c"--noprofile", c"--norc", c"-i"];
/// Used when the image has no bash.
const SH: [&CStr; 2] = [c"/bin/sh", c"-i"];

/// The shells' environment: [`SHELL_ENV`] with the image's `KEY=VALUE` pairs applied (an image
/// may change anything but `TERM` and `PS1`, which the shell protocol relies on).
pub(crate) fn shell_env(image_env: &[String]) -> Vec<CString> {
    let mut env: Vec<String> = SHELL_ENV.iter().map(|kv| (*kv).to_owned()).collect();
    for kv in image_env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        if key == "TERM" || key == "PS1" || key.is_empty() {
            continue;
        }
        let prefix = format!("{key}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(slot) => slot.clone_from(kv),
            None => env.push(kv.clone()),
        }
    }
    env.into_iter().filter_map(|kv| CString::new(kv).ok()).collect()
}

/// Forks a shell on a new pty in `cwd` with `env`; returns its pid and the pty master.
pub(crate) fn spawn_shell(policy: Option<&Policy>, env: &[CString], cwd: &CStr) -> Result<(Pid, OwnedFd), String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(|e| format!("open /dev/ptmx: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let slave = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = CString::new(slave).map_err(|e| e.to_string())?;
    // SAFETY: init is single threaded; the child only makes syscalls and then execs.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => exec_shell(&slave, policy, env, cwd),
        Ok(ForkResult::Parent { child }) => Ok((child, master.into())),
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// In the forked child: new session, pty as controlling terminal and stdio, restrict, exec.
fn exec_shell(slave: &CStr, policy: Option<&Policy>, env: &[CString], cwd: &CStr) -> ! {
    reset_signals();
    let _ = nix::unistd::setsid();
    let tty = match nix::fcntl::open(slave, OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
        Ok(fd) => fd.into_raw_fd(),
        Err(e) => die(&format!("open {slave:?}: {e}")),
    };
    // SAFETY: plain descriptor syscalls on descriptors this process owns.
    unsafe {
        libc::ioctl(tty, libc::TIOCSCTTY, 0);
        for fd in 0..3 {
            libc::dup2(tty, fd);
        }
        libc::close_range(3, u32::MAX, 0);
        libc::umask(0o022);
    }
    if nix::unistd::chdir(cwd).is_err() {
        let _ = nix::unistd::chdir("/");
    }
    if let Some(Err(why)) = policy.map(Policy::apply) {
        die(&why);
    }
    let _ = nix::unistd::execve(BASH[0], &BASH, env);
    let _ = nix::unistd::execve(SH[0], &SH, env);
    die("cannot execute /bin/bash or /bin/sh in this image")
}

/// Restores default dispositions and an empty mask (Rust ignores SIGPIPE; init blocks SIGCHLD):
/// both would otherwise survive exec.
pub(crate) fn reset_signals() {
    // SAFETY: resetting dispositions and the mask has no memory-safety implications.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Reports a failure on the pty (the user sees it) and exits.
fn die(msg: &str) -> ! {
    let line = format!("whim: cannot start the shell: {msg}\r\n");
    // SAFETY: writing a buffer we own to stderr.
    unsafe { libc::write(std::io::stderr().as_raw_fd(), line.as_ptr().cast(), line.len()) };
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(127) }
}
