//! The VMs of the emulator and their lifecycle (reference §C.1): boot, suspend, resume,
//! terminate, and the maximum-duration timer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::vm::{Microvm, VmSpec, VmState};
use crate::config::{EmulatorConfig, UnrecordedTransition};
use crate::sandbox;

/// Why a lifecycle call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LifecycleError {
    /// The VM is TERMINATING or TERMINATED (recorded 400 message).
    #[error("The MicroVM {0} has been terminated and its state cannot be changed.")]
    Terminated(String),
    /// The VM is in a state the call does not apply to and the guess says refuse.
    #[error("The MicroVM {id} is in state {state}; this call is not valid in that state.")]
    WrongState {
        /// VM id.
        id: String,
        /// Current wire state.
        state: &'static str,
    },
}

#[derive(Debug, Default)]
struct Table {
    order: Vec<Arc<Microvm>>,
    by_id: HashMap<String, Arc<Microvm>>,
    by_host: HashMap<String, Arc<Microvm>>,
    by_client_token: HashMap<String, Arc<Microvm>>,
}

/// Every VM the emulator launched, with the lifecycle operations on them.
#[derive(Debug)]
pub(crate) struct Fleet {
    cfg: Arc<EmulatorConfig>,
    table: Mutex<Table>,
}

impl Fleet {
    /// An empty fleet.
    pub(crate) fn new(cfg: Arc<EmulatorConfig>) -> Arc<Self> {
        Arc::new(Self { cfg, table: Mutex::new(Table::default()) })
    }

    /// The VM an earlier RunMicrovm with this `clientToken` created (idempotent replay).
    pub(crate) fn replay(&self, client_token: &str) -> Option<Arc<Microvm>> {
        self.lock().by_client_token.get(client_token).cloned()
    }

    /// A new PENDING VM, not yet registered or booting (so its Run reply is always PENDING).
    pub(crate) fn create(&self, spec: VmSpec) -> Arc<Microvm> {
        Arc::new(Microvm::new(&self.cfg.region, spec))
    }

    /// Registers a VM from [`Fleet::create`], boots its sandbox in the background and arms its
    /// duration (and idle) timers.
    pub(crate) fn start(self: &Arc<Self>, vm: &Arc<Microvm>, client_token: Option<String>) {
        {
            let mut t = self.lock();
            t.order.push(vm.clone());
            t.by_id.insert(vm.id.clone(), vm.clone());
            t.by_host.insert(vm.endpoint_host.clone(), vm.clone());
            if let Some(token) = client_token {
                t.by_client_token.insert(token, vm.clone());
            }
        }
        tracing::info!(vm = %vm.id, image = %vm.spec.image_arn, "launching MicroVM");
        tokio::spawn(boot(self.clone(), vm.clone()));
        tokio::spawn(expire_after_max_duration(Arc::downgrade(self), Arc::downgrade(vm)));
        if vm.spec.idle_policy.is_some() {
            tokio::spawn(super::idle::watch(Arc::downgrade(self), Arc::downgrade(vm)));
        }
    }

    /// A VM by id (hidden once past the retention guess).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Microvm>> {
        self.lock().by_id.get(id).cloned().filter(|vm| self.retained(vm))
    }

    /// A VM by endpoint host (lower-case, no port).
    pub(crate) fn by_host(&self, host: &str) -> Option<Arc<Microvm>> {
        self.lock().by_host.get(host).cloned()
    }

    /// Every visible VM in launch order.
    pub(crate) fn list(&self) -> Vec<Arc<Microvm>> {
        let all = self.lock().order.clone();
        all.into_iter().filter(|vm| self.retained(vm)).collect()
    }

    /// The emulator configuration.
    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.cfg
    }

    /// SuspendMicrovm: RUNNING → SUSPENDING → SUSPENDED (the sandbox is frozen).
    pub(crate) fn suspend(self: &Arc<Self>, vm: &Arc<Microvm>) -> Result<(), LifecycleError> {
        match vm.transition(&[VmState::Running], VmState::Suspending) {
            Ok(_) => {
                tokio::spawn(freeze(self.cfg.guesses.suspending_dwell, vm.clone()));
                Ok(())
            }
            Err(state) if state.is_ending() => Err(LifecycleError::Terminated(vm.id.clone())),
            Err(state) => unrecorded(self.cfg.guesses.suspend_when_not_running, vm, state),
        }
    }

    /// ResumeMicrovm: SUSPENDED (or SUSPENDING) → RUNNING (the sandbox is thawed).
    pub(crate) async fn resume(&self, vm: &Arc<Microvm>) -> Result<(), LifecycleError> {
        let state = vm.state();
        if state.is_ending() {
            return Err(LifecycleError::Terminated(vm.id.clone()));
        }
        if !matches!(state, VmState::Suspended | VmState::Suspending) {
            return unrecorded(self.cfg.guesses.resume_when_not_suspended, vm, state);
        }
        let slot = vm.sandbox.lock().await;
        if let Some(sbx) = slot.as_ref()
            && let Err(e) = sbx.thaw().await
        {
            tracing::warn!(vm = %vm.id, "thaw failed: {e}");
        }
        match vm.transition(&[VmState::Suspended, VmState::Suspending], VmState::Running) {
            Err(found) if found.is_ending() => Err(LifecycleError::Terminated(vm.id.clone())),
            _ => Ok(()),
        }
    }

    /// TerminateMicrovm: → TERMINATING → TERMINATED with `reason`; idempotent.
    pub(crate) fn terminate(self: &Arc<Self>, vm: &Arc<Microvm>, reason: &str) {
        let live = [VmState::Pending, VmState::Running, VmState::Suspending, VmState::Suspended];
        if vm.transition(&live, VmState::Terminating).is_ok() {
            tracing::info!(vm = %vm.id, reason, "terminating MicroVM");
            tokio::spawn(kill(self.cfg.guesses.terminating_dwell, vm.clone(), reason.to_owned()));
        }
    }

    /// Terminates every VM and waits until no sandbox process is left.
    pub(crate) async fn shutdown(self: &Arc<Self>) {
        let all = self.lock().order.clone();
        for vm in &all {
            self.terminate(vm, "Success.");
        }
        for vm in all {
            vm.boot_finished().await;
            if let Some(sbx) = vm.sandbox.lock().await.take() {
                sbx.kill().await;
            }
            vm.finish("Success.".into());
        }
    }

    fn retained(&self, vm: &Microvm) -> bool {
        let Some(keep) = self.cfg.guesses.terminated_retention else { return true };
        let ended = vm.status().terminated_at;
        ended.is_none_or(|at| super::clock::epoch_now() - at <= keep.as_secs_f64())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn unrecorded(answer: UnrecordedTransition, vm: &Microvm, state: VmState) -> Result<(), LifecycleError> {
    match answer {
        UnrecordedTransition::Accept => Ok(()),
        UnrecordedTransition::Refuse => Err(LifecycleError::WrongState { id: vm.id.clone(), state: state.as_str() }),
    }
}

/// Boots the sandbox; RUNNING once both the boot and `pending_delay` are done.
async fn boot(fleet: Arc<Fleet>, vm: Arc<Microvm>) {
    if let Some(reason) = vm.spec.startup_failure.clone() {
        tokio::time::sleep(fleet.cfg.pending_delay.max(Duration::from_millis(20))).await;
        tracing::info!(vm = %vm.id, "MicroVM died at startup (fixture)");
        vm.finish(reason);
        vm.set_boot_done();
        return;
    }
    let mut sandbox_cfg = fleet.cfg.sandbox.clone();
    // The image's layers, ENV, WORKDIR and privilege; the network as the control plane decided.
    sandbox_cfg.set_image(&vm.spec.image_fs);
    sandbox_cfg.egress_none = vm.spec.egress_none;
    let (booted, ()) = tokio::join!(sandbox::Vm::boot(&sandbox_cfg, &vm.id), tokio::time::sleep(fleet.cfg.pending_delay));
    let mut slot = vm.sandbox.lock().await;
    match booted {
        Ok(sbx) if vm.state() == VmState::Pending => {
            *slot = Some(sbx);
            let _ = vm.transition(&[VmState::Pending], VmState::Running);
            tracing::info!(vm = %vm.id, "MicroVM running");
        }
        Ok(sbx) => sbx.kill().await,
        Err(e) => {
            tracing::warn!(vm = %vm.id, "sandbox boot failed: {e}");
            // Emulator-only wording: the service's startup-death reasons quote a run hook.
            vm.finish(format!("The MicroVM failed to start: {e}"));
        }
    }
    drop(slot);
    vm.set_boot_done();
}

/// Freezes the sandbox, then settles SUSPENDED unless a resume or terminate came first.
async fn freeze(dwell: Duration, vm: Arc<Microvm>) {
    {
        let slot = vm.sandbox.lock().await;
        if vm.state() != VmState::Suspending {
            return;
        }
        if let Some(sbx) = slot.as_ref()
            && let Err(e) = sbx.freeze().await
        {
            tracing::warn!(vm = %vm.id, "freeze failed: {e}");
        }
    }
    tokio::time::sleep(dwell).await;
    let _ = vm.transition(&[VmState::Suspending], VmState::Suspended);
}

/// Kills the sandbox (the whole process tree; the overlay goes with it), then TERMINATED.
async fn kill(dwell: Duration, vm: Arc<Microvm>, reason: String) {
    let sbx = vm.sandbox.lock().await.take();
    if let Some(sbx) = sbx {
        sbx.kill().await;
    }
    tokio::time::sleep(dwell).await;
    vm.finish(reason);
    tracing::info!(vm = %vm.id, "MicroVM terminated");
}

/// `maximumDurationInSeconds` counts from start, running and suspended alike.
async fn expire_after_max_duration(fleet: Weak<Fleet>, vm: Weak<Microvm>) {
    let secs = match vm.upgrade() {
        Some(vm) => u64::from(vm.spec.max_duration_secs),
        None => return,
    };
    tokio::time::sleep(Duration::from_secs(secs)).await;
    if let (Some(fleet), Some(vm)) = (fleet.upgrade(), vm.upgrade()) {
        let reason = fleet.cfg.guesses.max_duration_state_reason.clone();
        fleet.terminate(&vm, &reason);
    }
}
