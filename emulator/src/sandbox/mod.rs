//! Local "MicroVMs": each VM is a tree of processes in fresh Linux namespaces whose shells are
//! bash on real ptys, isolated as far as the host allows.
//!
//! The multi-threaded server never forks. [`Vm::boot`] executes `helper_exe` [`HELPER_ARG`] (the
//! emulator binary itself, whose `main` calls [`run_helper_if_requested`] first); the single-threaded
//! helper builds a throwaway overlay root as real root, enters new user/mount/pid/uts/ipc/cgroup
//! (and, for egress none, net) namespaces, and becomes the VM's pid 1 ([`init`]), which serves
//! spawn requests over a SOCK_SEQPACKET pair and passes pty masters back with SCM_RIGHTS.
//! When the emulator goes away the socket closes and init kills the VM, so nothing outlives it.
//!
//! Modules: [`helper`] and [`rootfs`] run on the host side of the helper, [`init`], [`guest`] and
//! [`restrict`] inside the VM; [`nsvm`], [`control`], [`pty`] and [`cgroup`] in the emulator;
//! [`unisolated`] is the unsafe no-namespace fallback.

mod args;
mod cgfork;
mod cgroup;
mod control;
mod error;
mod exec;
mod guest;
mod helper;
mod init;
mod masklayer;
mod masks;
mod nsvm;
mod probe;
mod proto;
mod pty;
mod restrict;
mod rootfs;
mod step;
mod table;
mod unisolated;

use std::ffi::OsStr;
use std::path::PathBuf;

pub use cgroup::CGROUP_ENV;
pub use error::SandboxError;
pub(crate) use exec::ExecSpec;
pub use guest::SHELL_ENV;
pub use masks::default_mask_paths;
pub use probe::probe;
pub use pty::{KILLED_STATUS, Shell, ShellControl, ShellReader, ShellWriter};
pub use restrict::{DOCKER_DEFAULT_CAPS, docker_mask};
pub(crate) use step::{StepFs, StepOutcome, read_tail, run_step};

/// Name, under the VM's `/dev`, where a COPY step sees the build context (read-only).
pub(crate) const CONTEXT_DIR: &str = ".whim-build-context";

/// argv[1] that turns the emulator binary into the sandbox setup helper.
pub const HELPER_ARG: &str = "__whim-microvm-init";

/// How VMs are built.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Bottom lower dir of the overlay root, the image's base; "/" means the host root (only its
    /// root filesystem, not other mounts, shows through). Host masks apply to it.
    pub image_root: PathBuf,
    /// Image layers stacked above `image_root`, top first (empty for a bare base); see
    /// [`SandboxConfig::set_image`].
    pub layers: Vec<PathBuf>,
    /// Environment of the image, applied to every shell (over [`SHELL_ENV`]; `TERM` and `PS1`
    /// are kept).
    pub env: Vec<(String, String)>,
    /// Working directory of every shell (`/` when unset or missing).
    pub workdir: Option<String>,
    /// Namespaces, or the unsafe no-isolation fallback.
    pub isolation: Isolation,
    /// All capabilities inside the user namespace and no seccomp filter; otherwise Docker's
    /// default capabilities plus a filter against mounts and new namespaces.
    pub privileged: bool,
    /// A new network namespace with only `lo` (up); otherwise the host network is shared.
    pub egress_none: bool,
    /// Host paths hidden under empty tmpfs, on top of [`default_mask_paths`] (always applied).
    pub mask_paths: Vec<PathBuf>,
    /// Binary executed as `helper_exe __whim-microvm-init`; its main MUST call
    /// [`run_helper_if_requested`] before starting any thread.
    pub helper_exe: PathBuf,
    /// Where per-VM scratch dirs are made (e.g. /tmp/whim-emulator-<pid>-<n>).
    pub state_dir: PathBuf,
}

/// How strongly a VM is separated from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// User, mount, pid, uts, ipc and cgroup namespaces, an overlay root, masks (needs root).
    Namespaces,
    /// No isolation at all: bash on a host pty with a temp HOME. Unsafe; for hosts where
    /// [`probe`] fails.
    Unisolated,
}

impl SandboxConfig {
    /// Host root as image, namespaces, restricted, network shared, default masks, this binary as
    /// the helper, scratch under the temp dir.
    pub fn default_for_host() -> Self {
        SandboxConfig {
            image_root: "/".into(),
            layers: Vec::new(),
            env: Vec::new(),
            workdir: None,
            isolation: Isolation::Namespaces,
            privileged: false,
            egress_none: false,
            mask_paths: default_mask_paths(),
            helper_exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            // One directory per config: emulators in one process (tests) never share S3 data,
            // built images or VM scratch, and one's shutdown never removes another's.
            state_dir: std::env::temp_dir().join(format!("whim-emulator-{}-{}", std::process::id(), next_instance())),
        }
    }
}

impl SandboxConfig {
    /// Makes VMs boot from `image`: its layers (the last one becomes `image_root`), environment
    /// and working directory, all capabilities when it is privileged, and a loopback-only
    /// network when it has no internet egress.
    pub fn set_image(&mut self, image: &crate::build::ImageFs) {
        let mut layers = image.layers.clone();
        if let Some(base) = layers.pop() {
            self.image_root = base;
        }
        self.layers = layers;
        self.env = image.env.clone();
        self.workdir = image.workdir.clone();
        self.privileged = image.privileged;
        self.egress_none = image.egress_none;
    }
}

/// A process-wide counter for [`SandboxConfig::default_for_host`]'s state directories.
fn next_instance() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Runs the sandbox helper and exits if argv[1] is [`HELPER_ARG`]; otherwise returns at once.
/// Call it first thing in a non-async `main`, before any runtime or thread starts.
pub fn run_helper_if_requested() {
    if std::env::args_os().nth(1).as_deref() == Some(OsStr::new(HELPER_ARG)) {
        helper::main()
    }
}

/// One booted sandbox, the local stand-in for a MicroVM.
#[derive(Debug)]
pub struct Vm {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Ns(Box<nsvm::NsVm>),
    Host(unisolated::HostVm),
}

impl Vm {
    /// Boots a VM named `vm_id` (a single path component: letters, digits, `-`, `_`, `.`).
    pub async fn boot(cfg: &SandboxConfig, vm_id: &str) -> Result<Vm, SandboxError> {
        check_vm_id(vm_id)?;
        let inner = match cfg.isolation {
            Isolation::Namespaces => Inner::Ns(Box::new(nsvm::NsVm::boot(cfg, vm_id, None).await?)),
            Isolation::Unisolated => Inner::Host(unisolated::HostVm::boot(cfg, vm_id)?),
        };
        Ok(Vm { inner })
    }

    /// Starts a new interactive bash on a new pty inside this VM (any number per VM).
    pub async fn spawn_shell(&self) -> Result<Shell, SandboxError> {
        match &self.inner {
            Inner::Ns(vm) => vm.spawn_shell().await,
            Inner::Host(vm) => vm.spawn_shell().await,
        }
    }

    /// Suspends every process of the VM: cgroup v2 freezer, else v1, else SIGSTOP (with the
    /// artifact that bash reports its jobs as "Stopped").
    pub async fn freeze(&self) -> Result<(), SandboxError> {
        match &self.inner {
            Inner::Ns(vm) => vm.set_frozen(true).await,
            Inner::Host(vm) => vm.set_frozen(true),
        }
    }

    /// Resumes a frozen VM.
    pub async fn thaw(&self) -> Result<(), SandboxError> {
        match &self.inner {
            Inner::Ns(vm) => vm.set_frozen(false).await,
            Inner::Host(vm) => vm.set_frozen(false),
        }
    }

    /// Kills every process of the VM, waits for them, removes its cgroup and scratch dir.
    /// Idempotent; every shell's `wait_exit` then resolves (137 unless it had already exited).
    pub async fn kill(&self) {
        match &self.inner {
            Inner::Ns(vm) => vm.kill().await,
            Inner::Host(vm) => vm.kill(),
        }
    }

    /// Whether the VM is still running.
    pub fn is_alive(&self) -> bool {
        match &self.inner {
            Inner::Ns(vm) => vm.is_alive(),
            Inner::Host(vm) => vm.is_alive(),
        }
    }

    /// Host pid of the VM's pid 1; 0 for an unisolated VM, which has none (never signal it).
    pub fn init_host_pid(&self) -> i32 {
        match &self.inner {
            Inner::Ns(vm) => vm.init_host_pid(),
            Inner::Host(_) => 0,
        }
    }
}

impl Vm {
    /// The VM's cgroup directory on the host, when it has one (for diagnostics and tests).
    pub fn cgroup_dir(&self) -> Option<PathBuf> {
        match &self.inner {
            Inner::Ns(vm) => vm.cgroup_dir(),
            Inner::Host(_) => None,
        }
    }
}

fn check_vm_id(vm_id: &str) -> Result<(), SandboxError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if vm_id.is_empty() || vm_id.len() > 128 || vm_id.starts_with('.') || !vm_id.chars().all(ok_char) {
        return Err(SandboxError::Setup(format!(
            "invalid VM id {vm_id:?}: use 1-128 letters, digits, '-', '_' or '.', not starting with '.'"
        )));
    }
    Ok(())
}
