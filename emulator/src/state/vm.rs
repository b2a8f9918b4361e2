//! One emulated MicroVM: its launch spec, its observable state and its sandbox.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::clock::epoch_now;
use crate::build::ImageFs;
use crate::sandbox;

/// MicrovmState (reference §A.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VmState {
    /// Booting.
    Pending,
    /// Serving.
    Running,
    /// Being frozen.
    Suspending,
    /// Frozen.
    Suspended,
    /// Being killed.
    Terminating,
    /// Gone.
    Terminated,
}

impl VmState {
    /// The wire value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VmState::Pending => "PENDING",
            VmState::Running => "RUNNING",
            VmState::Suspending => "SUSPENDING",
            VmState::Suspended => "SUSPENDED",
            VmState::Terminating => "TERMINATING",
            VmState::Terminated => "TERMINATED",
        }
    }

    /// TERMINATING or TERMINATED: no state change is possible any more.
    pub(crate) fn is_ending(self) -> bool {
        matches!(self, VmState::Terminating | VmState::Terminated)
    }
}

/// IdlePolicy (reference §A.5), echoed back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdlePolicy {
    /// Seconds without inbound endpoint requests before an automatic suspend (≥ 60).
    pub max_idle_duration_seconds: i64,
    /// Seconds an idle-suspended VM is kept before it is terminated (≥ 0).
    pub suspended_duration_seconds: i64,
    /// Whether an endpoint request resumes a suspended VM.
    pub auto_resume_enabled: bool,
}

/// What RunMicrovm asked for, after defaults.
#[derive(Debug, Clone)]
pub(crate) struct VmSpec {
    /// Image ARN.
    pub image_arn: String,
    /// Image version launched.
    pub image_version: String,
    /// What the VM boots from: the launched version's layers, ENV, WORKDIR, privilege.
    pub image_fs: ImageFs,
    /// The image's egress list lacks INTERNET_EGRESS and the guess enforces it: no network.
    pub egress_none: bool,
    /// Echoed `executionRoleArn`.
    pub execution_role_arn: Option<String>,
    /// Echoed `idlePolicy`.
    pub idle_policy: Option<IdlePolicy>,
    /// Ingress connector ARNs (default `[HTTP_INGRESS]`).
    pub ingress: Vec<String>,
    /// Egress connector ARNs (default `[INTERNET_EGRESS]`).
    pub egress: Vec<String>,
    /// Wall-clock cap, counted from start.
    pub max_duration_secs: u32,
    /// Test fixture: the VM dies while PENDING with this `stateReason`.
    pub startup_failure: Option<String>,
}

impl VmSpec {
    /// True when an ingress connector ARN ends in `:<kind>` (e.g. `SHELL_INGRESS`).
    pub(crate) fn has_ingress(&self, kind: &str) -> bool {
        self.ingress.iter().any(|arn| arn.rsplit(':').next() == Some(kind))
    }
}

/// The mutable, observable part of a VM.
#[derive(Debug, Clone)]
pub(crate) struct VmStatus {
    /// Current state.
    pub state: VmState,
    /// `stateReason` (null while healthy).
    pub state_reason: Option<String>,
    /// Epoch seconds once TERMINATED.
    pub terminated_at: Option<f64>,
    /// True when the current suspension was started by the idle policy.
    pub idle_suspended: bool,
    /// When the VM last became SUSPENDED.
    pub suspended_since: Option<Instant>,
}

/// One emulated MicroVM.
#[derive(Debug)]
pub(crate) struct Microvm {
    /// `microvm-<uuid>`.
    pub id: String,
    /// `<uuid>.lambda-microvm.<region>.on.aws`.
    pub endpoint_host: String,
    /// The launch request after defaults.
    pub spec: VmSpec,
    /// Epoch seconds of RunMicrovm.
    pub started_at: f64,
    /// The sandbox once booted; `None` before boot and after kill. Lifecycle steps lock it.
    pub sandbox: tokio::sync::Mutex<Option<sandbox::Vm>>,
    status: Mutex<VmStatus>,
    changes: watch::Sender<VmState>,
    boot_done: watch::Sender<bool>,
    last_activity: Mutex<Instant>,
    /// Bumped to drop every open shell connection abruptly (tests of lost connections).
    pub cut: watch::Sender<u64>,
}

impl Microvm {
    /// A new PENDING VM with fresh ids.
    pub(crate) fn new(region: &str, spec: VmSpec) -> Self {
        let status =
            VmStatus { state: VmState::Pending, state_reason: None, terminated_at: None, idle_suspended: false, suspended_since: None };
        Self {
            id: format!("microvm-{}", uuid::Uuid::new_v4()),
            endpoint_host: format!("{}.lambda-microvm.{region}.on.aws", uuid::Uuid::new_v4()),
            spec,
            started_at: epoch_now(),
            sandbox: tokio::sync::Mutex::new(None),
            status: Mutex::new(status),
            changes: watch::Sender::new(VmState::Pending),
            boot_done: watch::Sender::new(false),
            last_activity: Mutex::new(Instant::now()),
            cut: watch::Sender::new(0),
        }
    }

    /// A copy of the observable status.
    pub(crate) fn status(&self) -> VmStatus {
        self.lock().clone()
    }

    /// The current state.
    pub(crate) fn state(&self) -> VmState {
        self.lock().state
    }

    /// Moves to `to` if the current state is one of `from`; returns the state found.
    pub(crate) fn transition(&self, from: &[VmState], to: VmState) -> Result<VmState, VmState> {
        let mut status = self.lock();
        let found = status.state;
        if !from.contains(&found) {
            return Err(found);
        }
        status.state = to;
        status.suspended_since = (to == VmState::Suspended).then(Instant::now);
        if to == VmState::Running {
            status.idle_suspended = false;
        }
        drop(status);
        if to == VmState::Running {
            // The idle clock restarts whenever the VM (re)starts running.
            self.touch();
        }
        self.changes.send_replace(to);
        Ok(found)
    }

    /// Marks the current suspension as started by the idle policy.
    pub(crate) fn mark_idle_suspend(&self) {
        self.lock().idle_suspended = true;
    }

    /// Ends the VM: TERMINATED with `reason` and `terminatedAt` (once; later calls do nothing).
    pub(crate) fn finish(&self, reason: String) {
        let mut status = self.lock();
        if status.state == VmState::Terminated {
            return;
        }
        status.state = VmState::Terminated;
        status.state_reason = Some(reason);
        status.terminated_at = Some(epoch_now());
        drop(status);
        self.changes.send_replace(VmState::Terminated);
    }

    /// Waits until `done(state)` holds or `timeout` passes; returns the last state seen.
    pub(crate) async fn wait_for(&self, timeout: Duration, done: impl Fn(VmState) -> bool) -> VmState {
        let mut rx = self.changes.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|s| done(*s))).await;
        match waited {
            Ok(Ok(state)) => *state,
            _ => self.state(),
        }
    }

    /// Records that the boot task finished (successfully or not).
    pub(crate) fn set_boot_done(&self) {
        self.boot_done.send_replace(true);
    }

    /// Waits until the boot task finished.
    pub(crate) async fn boot_finished(&self) {
        let mut rx = self.boot_done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Records an inbound endpoint request (the idle timer's input).
    pub(crate) fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    /// Backdates the last inbound request (tests of the idle timer).
    #[cfg(test)]
    pub(crate) fn set_last_activity(&self, at: Instant) {
        *self.last_activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    /// When the last inbound endpoint request arrived.
    pub(crate) fn last_activity(&self) -> Instant {
        *self.last_activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VmStatus> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
