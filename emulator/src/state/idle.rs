//! The idle policy (reference §C.1): suspend after `maxIdleDurationSeconds` without inbound
//! endpoint requests, terminate after `suspendedDurationSeconds` spent idle-suspended.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::fleet::Fleet;
use super::vm::{IdlePolicy, Microvm, VmState};

/// How often a VM in a transient state is looked at again.
const RECHECK: Duration = Duration::from_millis(250);

/// Drives one VM's idle policy until the VM ends. Holds only weak references while sleeping.
pub(crate) async fn watch(fleet: Weak<Fleet>, vm: Weak<Microvm>) {
    loop {
        let (Some(fleet), Some(vm)) = (fleet.upgrade(), vm.upgrade()) else { return };
        let Some(policy) = vm.spec.idle_policy else { return };
        let Some(pause) = step(&fleet, &vm, policy) else { return };
        drop((fleet, vm));
        tokio::time::sleep(pause).await;
    }
}

/// Acts once; returns how long to sleep, or `None` when the VM ended.
fn step(fleet: &Arc<Fleet>, vm: &Arc<Microvm>, policy: IdlePolicy) -> Option<Duration> {
    let status = vm.status();
    let now = Instant::now();
    match status.state {
        VmState::Terminating | VmState::Terminated => None,
        VmState::Running => {
            let limit = secs(policy.max_idle_duration_seconds);
            let idle = now.saturating_duration_since(vm.last_activity());
            if idle < limit {
                return Some(limit - idle);
            }
            tracing::info!(vm = %vm.id, "idle for {idle:?}: suspending");
            if fleet.suspend(vm).is_ok() {
                vm.mark_idle_suspend();
            }
            Some(RECHECK)
        }
        VmState::Suspended => {
            let explicit_counts = fleet.config().guesses.suspended_window_applies_to_explicit_suspend;
            let since = status.suspended_since.filter(|_| status.idle_suspended || explicit_counts);
            let Some(since) = since else { return Some(RECHECK) };
            let window = secs(policy.suspended_duration_seconds);
            let spent = now.saturating_duration_since(since);
            if spent < window {
                return Some((window - spent).min(RECHECK * 4));
            }
            let reason = fleet.config().guesses.idle_termination_state_reason.clone();
            fleet.terminate(vm, &reason);
            None
        }
        VmState::Pending | VmState::Suspending => Some(RECHECK),
    }
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;
    use crate::state::vm::VmSpec;

    #[tokio::test]
    async fn idle_vm_is_suspended_then_terminated() {
        let fleet = Fleet::new(Arc::new(EmulatorConfig::local_default()));
        let policy = IdlePolicy { max_idle_duration_seconds: 60, suspended_duration_seconds: 0, auto_resume_enabled: false };
        let spec = VmSpec {
            image_arn: "arn:aws:lambda:us-east-1:123456789012:microvm-image:x".into(),
            image_version: "1.0".into(),
            image_fs: crate::build::ImageFs { layers: vec!["/".into()], ..Default::default() },
            egress_none: false,
            execution_role_arn: None,
            idle_policy: Some(policy),
            ingress: vec![],
            egress: vec![],
            max_duration_secs: 28_800,
            startup_failure: None,
        };
        let vm = fleet.create(spec);
        vm.transition(&[VmState::Pending], VmState::Running).expect("running");
        assert!(step(&fleet, &vm, policy).is_some_and(|d| d > Duration::from_secs(50)), "fresh VM is not idle");
        vm.set_last_activity(Instant::now() - Duration::from_secs(61));
        step(&fleet, &vm, policy);
        let state = vm.wait_for(Duration::from_secs(5), |s| s == VmState::Suspended).await;
        assert_eq!((state, vm.status().idle_suspended), (VmState::Suspended, true));
        assert_eq!(step(&fleet, &vm, policy), None, "the suspended window (0 s) is over");
        let state = vm.wait_for(Duration::from_secs(5), |s| s == VmState::Terminated).await;
        assert_eq!(state, VmState::Terminated);
    }
}
