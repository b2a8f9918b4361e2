//! A VM in Linux namespaces: boots the helper, talks to the VM's init, freezes, kills.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::args::HelperArgs;
use super::cgroup::VmCgroup;
use super::control::{Control, Incoming};
use super::exec::ExecSpec;
use super::proto::{Report, Request};
use super::table::ShellTable;
use super::{HELPER_ARG, SandboxConfig, SandboxError, Shell, StepFs, masks};

/// How long the helper may take from exec to "init ready".
const BOOT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long init may take to answer a spawn request.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the process tree may take to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// One booted namespace sandbox.
#[derive(Debug)]
pub(crate) struct NsVm {
    scratch: PathBuf,
    cgroup: VmCgroup,
    ctl: Arc<Control>,
    table: Arc<ShellTable>,
    helper: Mutex<Option<Child>>,
    init_pid: i32,
    init_pidfd: Option<OwnedFd>,
    pump: JoinHandle<()>,
    next_id: AtomicU64,
    torn_down: tokio::sync::Mutex<bool>,
}

/// What a boot has created so far, so that a failed boot can be undone.
struct Booting {
    cgroup: VmCgroup,
    scratch: PathBuf,
    helper: Child,
}

impl NsVm {
    /// Starts the helper, sends it the plan and waits for the VM's init to be ready.
    pub(crate) async fn boot(cfg: &SandboxConfig, vm_id: &str, step: Option<&StepFs>) -> Result<Self, SandboxError> {
        let cgroup = VmCgroup::create(vm_id);
        let args = helper_args(cfg, vm_id, &cgroup, step);
        if args.encode().len() >= super::proto::MAX_PACKET {
            cgroup.remove().await;
            return Err(SandboxError::Setup("the VM's configuration (layers, environment) is larger than 64 KiB".into()));
        }
        let scratch = cfg.state_dir.join(vm_id);
        let (ctl, helper) = match spawn_helper(cfg) {
            Ok(pair) => pair,
            Err(e) => {
                cgroup.remove().await;
                return Err(e);
            }
        };
        let mut booting = Booting { cgroup, scratch, helper };
        match timeout(BOOT_TIMEOUT, handshake(&ctl, &args)).await {
            Ok(Ok(init_pid)) => Ok(Self::running(booting, ctl, init_pid)),
            Ok(Err(e)) => Err(booting.abort(e).await),
            Err(_) => Err(booting.abort(SandboxError::BootTimeout(BOOT_TIMEOUT)).await),
        }
    }

    fn running(booting: Booting, ctl: Control, init_pid: i32) -> Self {
        let ctl = Arc::new(ctl);
        let table = Arc::new(ShellTable::default());
        let pump = tokio::spawn(pump(ctl.clone(), table.clone()));
        NsVm {
            scratch: booting.scratch,
            cgroup: booting.cgroup,
            ctl,
            table,
            helper: Mutex::new(Some(booting.helper)),
            init_pid,
            init_pidfd: pidfd_open(init_pid),
            pump,
            next_id: AtomicU64::new(1),
            torn_down: tokio::sync::Mutex::new(false),
        }
    }

    /// Asks init for a new shell on a new pty.
    pub(crate) async fn spawn_shell(&self) -> Result<Shell, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (started, exit) = self.table.register(id).ok_or(SandboxError::Dead)?;
        self.ctl.send(&Request::Spawn(id)).await.map_err(|_| SandboxError::Dead)?;
        match timeout(SPAWN_TIMEOUT, started).await {
            Ok(Ok(Ok((pid, master)))) => Shell::new(master, pid, exit),
            Ok(Ok(Err(reason))) => Err(SandboxError::Spawn(reason)),
            Ok(Err(_)) => Err(SandboxError::Dead),
            Err(_) => Err(SandboxError::Spawn(format!("the VM's init did not answer within {SPAWN_TIMEOUT:?}"))),
        }
    }

    /// Starts `spec` without a terminal; returns its output pipe and exit status receiver.
    pub(crate) async fn exec(&self, spec: &ExecSpec) -> Result<(OwnedFd, watch::Receiver<Option<i32>>), SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let packet = spec.encode(id);
        if packet.len() >= super::proto::MAX_PACKET || spec.has_nul() {
            return Err(SandboxError::Spawn("the command is longer than 64 KiB or holds a NUL byte".into()));
        }
        let (started, exit) = self.table.register(id).ok_or(SandboxError::Dead)?;
        self.ctl.send_bytes(&packet).await.map_err(|_| SandboxError::Dead)?;
        match timeout(SPAWN_TIMEOUT, started).await {
            Ok(Ok(Ok((_pid, output)))) => Ok((output, exit)),
            Ok(Ok(Err(reason))) => Err(SandboxError::Spawn(reason)),
            Ok(Err(_)) => Err(SandboxError::Dead),
            Err(_) => Err(SandboxError::Spawn(format!("the VM's init did not answer within {SPAWN_TIMEOUT:?}"))),
        }
    }

    /// Freezes or thaws every process of the VM.
    pub(crate) async fn set_frozen(&self, frozen: bool) -> Result<(), SandboxError> {
        if !self.is_alive() {
            return Err(SandboxError::Dead);
        }
        let action = if frozen { "freeze" } else { "thaw" };
        if self.cgroup.kind.is_some() {
            return self.cgroup.set_frozen(frozen).await.map_err(|detail| SandboxError::Freeze { action, detail });
        }
        // Last resort: init SIGSTOPs every process of its pid namespace. bash may notice its
        // jobs stopping and report them as "Stopped" (a cgroup freezer is invisible).
        let req = if frozen { Request::StopAll } else { Request::ContAll };
        self.ctl.send(&req).await.map_err(|e| SandboxError::Freeze { action, detail: e.to_string() })
    }

    /// Kills the whole tree, waits for it, removes the cgroup and scratch dir. Idempotent.
    pub(crate) async fn kill(&self) {
        let mut torn_down = self.torn_down.lock().await;
        if *torn_down {
            return;
        }
        // Killing pid 1 kills its pid namespace; the helper processes then exit in order and
        // reap their children, so nothing lingers as a zombie.
        self.kill_init();
        let _ = self.cgroup.set_frozen(false).await;
        let helper = self.helper.lock().map(|mut h| h.take()).unwrap_or(None);
        if let Some(helper) = helper {
            reap(helper, &self.cgroup).await;
        }
        self.table.mark_dead();
        self.pump.abort();
        self.cgroup.remove().await;
        remove_scratch(&self.scratch);
        *torn_down = true;
    }

    /// Whether init is still serving.
    pub(crate) fn is_alive(&self) -> bool {
        !self.table.is_dead()
    }

    /// Host pid of the VM's pid 1.
    pub(crate) fn init_host_pid(&self) -> i32 {
        self.init_pid
    }

    /// The VM's cgroup directory, if it has one.
    pub(crate) fn cgroup_dir(&self) -> Option<PathBuf> {
        self.cgroup.kind.as_ref().map(|k| k.dir().to_path_buf())
    }

    fn kill_init(&self) {
        match &self.init_pidfd {
            // SAFETY: pidfd_send_signal on a pidfd we own; no siginfo.
            Some(fd) => unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32);
            },
            None if !self.table.is_dead() => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.init_pid), nix::sys::signal::Signal::SIGKILL);
            }
            None => {}
        }
    }
}

impl Drop for NsVm {
    /// Best effort without awaiting: SIGKILL everything now; a short-lived thread removes the
    /// cgroup and scratch dir once the processes are gone (works even if the runtime is
    /// shutting down). The helper itself is reaped by tokio (`kill_on_drop`).
    fn drop(&mut self) {
        self.pump.abort();
        if self.torn_down.try_lock().map(|done| *done).unwrap_or(true) {
            return;
        }
        self.kill_init();
        self.cgroup.kill_all();
        self.table.mark_dead();
        let (cgroup, scratch) = (self.cgroup.clone(), self.scratch.clone());
        let spawned = std::thread::Builder::new().name("whim-vm-cleanup".into()).spawn(move || {
            cgroup.remove_blocking();
            remove_scratch(&scratch);
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the VM cleanup thread: {e}");
        }
    }
}

impl Booting {
    /// Undoes a failed boot and returns `err` (with the helper's exit status when it had exited).
    async fn abort(&mut self, err: SandboxError) -> SandboxError {
        let early_exit = self.helper.try_wait().ok().flatten();
        self.cgroup.kill_all();
        let _ = self.helper.start_kill();
        let _ = timeout(KILL_TIMEOUT, self.helper.wait()).await;
        self.cgroup.remove().await;
        remove_scratch(&self.scratch);
        match (err, early_exit) {
            (SandboxError::Setup(why), Some(status)) => SandboxError::Setup(format!("{why} (helper {status})")),
            (err, _) => err,
        }
    }
}

fn helper_args(cfg: &SandboxConfig, vm_id: &str, cgroup: &VmCgroup, step: Option<&StepFs>) -> HelperArgs {
    let (cgroup_v2, cgroup_procs) = cgroup.placement();
    HelperArgs {
        vm_id: vm_id.to_owned(),
        image_root: cfg.image_root.clone(),
        layers: cfg.layers.clone(),
        upper: step.map(|s| s.upper.clone()),
        work: step.map(|s| s.work.clone()),
        context: step.and_then(|s| s.context.clone()),
        env: cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        workdir: cfg.workdir.clone(),
        state_dir: cfg.state_dir.clone(),
        cgroup_v2,
        cgroup_procs,
        privileged: cfg.privileged,
        egress_none: cfg.egress_none,
        masks: masks::with_defaults(&cfg.mask_paths),
    }
}

/// Execs the helper with the far end of a fresh SEQPACKET pair as its stdin.
fn spawn_helper(cfg: &SandboxConfig) -> Result<(Control, Child), SandboxError> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| SandboxError::io("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    let mut cmd = Command::new(&cfg.helper_exe);
    cmd.arg(HELPER_ARG).env_clear().stdin(Stdio::from(theirs)).stdout(Stdio::null()).kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| SandboxError::HelperSpawn { exe: cfg.helper_exe.clone(), source })?;
    // The Command holds our copy of the helper's end; it must close for EOF detection to work.
    drop(cmd);
    let ctl = Control::new(ours).map_err(|e| SandboxError::io("register the control socket with tokio", e))?;
    Ok((ctl, child))
}

/// Sends the plan; waits for init's host pid and its "ready".
async fn handshake(ctl: &Control, args: &HelperArgs) -> Result<i32, SandboxError> {
    ctl.send_bytes(&args.encode()).await.map_err(|e| SandboxError::io("send the helper its configuration", e))?;
    let (mut pid, mut ready) = (None, false);
    while pid.is_none() || !ready {
        match ctl.recv().await.map_err(|e| SandboxError::io("read the control socket", e))? {
            Incoming::Report(Report::InitPid(p), _) => pid = Some(p),
            Incoming::Report(Report::Ready, _) => ready = true,
            Incoming::Report(Report::Failed(why), _) => return Err(SandboxError::Setup(why)),
            Incoming::Closed => {
                let why = "the helper exited before the VM was ready (its stderr is the emulator's stderr)";
                return Err(SandboxError::Setup(why.into()));
            }
            other => return Err(SandboxError::Protocol(format!("{other:?}"))),
        }
    }
    Ok(pid.unwrap_or_default())
}

/// Routes init's reports to the shell table until the socket closes, then marks the VM dead.
async fn pump(ctl: Arc<Control>, table: Arc<ShellTable>) {
    loop {
        match ctl.recv().await {
            Ok(Incoming::Report(Report::Spawned { id, pid }, Some(fd))) => table.started(id, Ok((pid, fd))),
            Ok(Incoming::Report(Report::SpawnFailed { id, reason }, _)) => table.started(id, Err(reason)),
            Ok(Incoming::Report(Report::Exited { id, status }, _)) => table.exited(id, status),
            Ok(Incoming::Closed) | Err(_) => break,
            Ok(Incoming::Garbage(text)) => {
                tracing::warn!("ignoring an unparsable message from a VM's init: {text:?}")
            }
            Ok(other) => tracing::warn!("ignoring unexpected message from a VM's init: {other:?}"),
        }
    }
    table.mark_dead();
}

/// Waits for the helper to exit; if it hangs, kills the whole cgroup and the helper itself.
async fn reap(mut helper: Child, cgroup: &VmCgroup) {
    if timeout(KILL_TIMEOUT, helper.wait()).await.is_err() {
        tracing::warn!("a VM's helper did not exit after its init was killed; killing its cgroup");
        cgroup.kill_all();
        let _ = helper.start_kill();
        let _ = timeout(KILL_TIMEOUT, helper.wait()).await;
    }
}

/// Removes the per-VM scratch dir, and the state dir if that is now empty. On the host the
/// scratch dir is an empty mount point (the tmpfs lived in the helper's mount namespace), so
/// plain rmdir: never a recursive delete here.
fn remove_scratch(scratch: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir(scratch)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(dir = %scratch.display(), "scratch dir not removed: {e}");
    }
    if let Some(state_dir) = scratch.parent() {
        let _ = std::fs::remove_dir(state_dir);
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor that we take ownership of.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
