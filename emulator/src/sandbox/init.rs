//! The VM's pid 1: finishes the root (proc, devpts, sysfs, pivot_root), then serves the emulator.
//!
//! A poll loop over the control socket and a SIGCHLD signalfd: spawns shells on request, reaps every
//! child (it is pid 1), reports shell exits, and SIGKILLs the whole VM when the emulator goes away.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, chdir, pivot_root, sethostname};

use super::args::HelperArgs;
use super::exec::{self, ExecSpec};
use super::guest;
use super::proto::{self, Report, Request};
use super::restrict::Policy;

/// Becomes pid 1 of the VM; never returns.
pub(crate) fn main(args: &HelperArgs, root: &Path, ctl: OwnedFd) -> ! {
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    if let Err(why) = enter_root(args, root) {
        fail(&ctl, why)
    }
    Init::new(args, ctl).run()
}

fn fail(ctl: &OwnedFd, why: String) -> ! {
    proto::report(ctl.as_fd(), &Report::Failed(why), None);
    std::process::exit(1)
}

/// Mounts the VM's kernel filesystems and switches into the merged root.
fn enter_root(args: &HelperArgs, root: &Path) -> Result<(), String> {
    fn fail(what: &'static str) -> impl Fn(nix::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    // Inherited mounts are locked in the new userns; pivot_root needs a mount of our own.
    mount(Some(root), root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).map_err(fail("rbind root"))?;
    chdir(root).map_err(fail("chdir root"))?;
    let hard = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "proc", Some("proc"), hard, None::<&str>).map_err(fail("mount proc"))?;
    let pts_opts = "newinstance,ptmxmode=0666,mode=620,gid=5";
    mount(Some("devpts"), "dev/pts", Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some(pts_opts))
        .map_err(fail("mount devpts"))?;
    if args.egress_none {
        mount(Some("sysfs"), "sys", Some("sysfs"), hard | MsFlags::MS_RDONLY, None::<&str>).map_err(fail("mount sysfs"))?;
    }
    pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detach the old root"))?;
    chdir("/").map_err(fail("chdir /"))?;
    sethostname("localhost").map_err(fail("sethostname"))?;
    if args.egress_none {
        loopback_up()?;
    }
    detach_stdio()
}

/// Points init's stdout/stderr (the emulator's, until now) at the VM's /dev/null, so that a
/// privileged shell cannot reach the emulator's log through /proc/1/fd. Failures travel over
/// the control socket (fd 0, which /proc cannot reopen).
fn detach_stdio() -> Result<(), String> {
    let null = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| format!("open /dev/null: {e}"))?;
    // SAFETY: dup2 onto the standard descriptors of this single-threaded process.
    let ok = unsafe { libc::dup2(null.as_raw_fd(), 1) >= 0 && libc::dup2(null.as_raw_fd(), 2) >= 0 };
    if ok { Ok(()) } else { Err(format!("redirect stdio: {}", std::io::Error::last_os_error())) }
}

/// `ip link set lo up`, by ioctl.
fn loopback_up() -> Result<(), String> {
    let err = |what: &str| format!("bring lo up: {what}: {}", std::io::Error::last_os_error());
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq that we own; the fd is closed below.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(err("socket"));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let ok = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 && {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == 0
        };
        let result = if ok { Ok(()) } else { Err(err("ioctl")) };
        libc::close(sock);
        result
    }
}

/// The init server's state.
struct Init {
    ctl: OwnedFd,
    sigchld: SignalFd,
    /// Shell pid -> request id.
    shells: HashMap<Pid, u64>,
    policy: Option<Policy>,
    /// Environment of new shells (the image's applied).
    env: Vec<CString>,
    /// Working directory of new shells.
    cwd: CString,
}

impl Init {
    /// Prepares the server and tells the emulator it is ready (or why it is not, then exits).
    fn new(args: &HelperArgs, ctl: OwnedFd) -> Self {
        let policy = match args.privileged {
            true => None,
            false => Some(Policy::restricted().unwrap_or_else(|why| fail(&ctl, why))),
        };
        let sigchld = sigchld_fd().unwrap_or_else(|why| fail(&ctl, why));
        proto::report(ctl.as_fd(), &Report::Ready, None);
        let env = guest::shell_env(&args.env);
        let cwd = args.workdir.as_deref().and_then(|d| CString::new(d).ok()).unwrap_or_else(|| c"/".to_owned());
        Init { ctl, sigchld, shells: HashMap::new(), policy, env, cwd }
    }

    fn run(mut self) -> ! {
        loop {
            let (ctl_ready, child_ready) = match self.wait() {
                Ok(ready) => ready,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => shutdown(),
            };
            if child_ready {
                self.reap();
            }
            if ctl_ready {
                self.serve_one();
            }
        }
    }

    fn wait(&self) -> nix::Result<(bool, bool)> {
        let mut fds = [PollFd::new(self.ctl.as_fd(), PollFlags::POLLIN), PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::NONE)?;
        let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
        Ok((ready(&fds[0]), ready(&fds[1])))
    }

    /// Handles one request; the emulator being gone (EOF or error) ends the VM.
    fn serve_one(&mut self) {
        let packet = match proto::recv(self.ctl.as_fd()) {
            Ok(Some((bytes, _))) => bytes,
            Err(nix::errno::Errno::EINTR) => return,
            Ok(None) | Err(_) => shutdown(),
        };
        if let Some((id, spec)) = ExecSpec::decode(&packet) {
            return self.exec(id, &spec);
        }
        match Request::decode(&String::from_utf8_lossy(&packet)) {
            Some(Request::Spawn(id)) => self.spawn(id),
            Some(Request::StopAll) => drop(kill(Pid::from_raw(-1), Signal::SIGSTOP)),
            Some(Request::ContAll) => drop(kill(Pid::from_raw(-1), Signal::SIGCONT)),
            None => {} // Unknown requests are ignored; stderr goes nowhere by now.
        }
    }

    fn exec(&mut self, id: u64, spec: &ExecSpec) {
        match exec::spawn(spec, self.policy.as_ref()) {
            Ok((pid, output)) => {
                self.shells.insert(pid, id);
                let report = Report::Spawned { id, pid: pid.as_raw() };
                proto::report(self.ctl.as_fd(), &report, Some(output.as_fd()));
            }
            Err(reason) => proto::report(self.ctl.as_fd(), &Report::SpawnFailed { id, reason }, None),
        }
    }

    fn spawn(&mut self, id: u64) {
        match guest::spawn_shell(self.policy.as_ref(), &self.env, &self.cwd) {
            Ok((pid, master)) => {
                self.shells.insert(pid, id);
                let report = Report::Spawned { id, pid: pid.as_raw() };
                proto::report(self.ctl.as_fd(), &report, Some(master.as_fd()));
            }
            Err(reason) => proto::report(self.ctl.as_fd(), &Report::SpawnFailed { id, reason }, None),
        }
    }

    /// Reaps every exited child; shells are reported to the emulator.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigchld.read_signal() {}
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if let Some(id) = self.shells.remove(&pid) {
                proto::report(self.ctl.as_fd(), &Report::Exited { id, status }, None);
            }
        }
    }
}

/// Blocks SIGCHLD and returns a signalfd that reports it.
fn sigchld_fd() -> Result<SignalFd, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(|e| format!("block SIGCHLD: {e}"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| format!("signalfd: {e}"))
}

/// Kills every process of the VM and exits (the kernel would do the same when pid 1 dies).
fn shutdown() -> ! {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    std::process::exit(0)
}
