use proptest::prelude::*;

use super::*;

/// A scripted service: the VM is PENDING for `pending_polls` GetMicrovm answers,
/// then reaches `then`; the shell endpoint refuses the first `refusals` connects.
#[derive(Debug, Clone)]
struct Service {
    run_fails: bool,
    pending_polls: u32,
    then: VmState,
    refusals: u32,
    latency_ms: u64,
}

#[derive(Debug, Default)]
struct Trace {
    gets: Vec<Duration>,
    terminated: bool,
    connects: u32,
}

fn snapshot(state: VmState) -> VmSnapshot {
    VmSnapshot { id: "microvm-1".into(), state, endpoint: "h.on.aws".into(), state_reason: Some("why".into()) }
}

fn spec(timeout_ms: u64) -> LaunchSpec {
    LaunchSpec {
        image_arn: "arn:aws:lambda:us-east-1:123456789012:microvm-image:x".into(),
        image_version: None,
        ttl: Ttl::default(),
        region: "us-east-1".into(),
        provision_timeout: Duration::from_millis(timeout_ms),
    }
}

fn simulate(svc: &Service, timeout_ms: u64) -> (Result<Launched, LaunchError>, Trace) {
    let mut now = Duration::ZERO;
    let lat = Duration::from_millis(svc.latency_ms);
    let mut l = Launch::new(now, spec(timeout_ms));
    let (mut t, mut polls, mut refusals) = (Trace::default(), 0, svc.refusals);
    for _ in 0..10_000 {
        while let Some(cmd) = l.poll_command() {
            now += lat;
            match cmd {
                LaunchCommand::RunMicrovm { ingress, max_duration_secs, .. } => {
                    assert_eq!(ingress.len(), 2);
                    assert_eq!(max_duration_secs, 1500);
                    let r = if svc.run_fails { Err("boom".into()) } else { Ok(snapshot(VmState::Pending)) };
                    l.handle_run(now, r);
                }
                LaunchCommand::GetMicrovm { .. } => {
                    t.gets.push(now);
                    polls += 1;
                    let st = if polls <= svc.pending_polls { VmState::Pending } else { svc.then.clone() };
                    l.handle_get(now, Ok(snapshot(st)));
                }
                LaunchCommand::MintShellToken { expiration_minutes, .. } => {
                    assert!((1..=60).contains(&expiration_minutes));
                    l.handle_token(now, Ok(vec![("X-aws-proxy-auth".into(), Secret::new("t".into()))]));
                }
                LaunchCommand::Connect { url, headers } => {
                    assert_eq!(url, "wss://h.on.aws/");
                    assert_eq!(headers.len(), 1);
                    t.connects += 1;
                    let r = if refusals > 0 {
                        refusals -= 1;
                        Err("1006".into())
                    } else {
                        Ok(())
                    };
                    l.handle_connect(now, r);
                }
                LaunchCommand::Terminate { .. } => t.terminated = true,
            }
        }
        if let Some(out) = l.poll_outcome() {
            return (out, t);
        }
        let wake = l.poll_timeout().expect("a waiting launch always has a timer");
        assert!(wake >= now, "timers never lie in the past");
        now = wake;
        l.handle_timeout(now);
    }
    panic!("launch did not finish");
}

#[test]
fn happy_path_polls_fast_then_attaches() {
    let svc = Service { run_fails: false, pending_polls: 3, then: VmState::Running, refusals: 0, latency_ms: 0 };
    let (out, t) = simulate(&svc, 60_000);
    assert_eq!(out, Ok(Launched { id: "microvm-1".into(), endpoint: "h.on.aws".into() }));
    assert_eq!(t.gets, [5, 15, 35, 75].map(Duration::from_millis));
    assert!(!t.terminated);
}

#[test]
fn dead_before_running_is_provision_failed_with_reason() {
    let svc = Service { run_fails: false, pending_polls: 1, then: VmState::Terminated, refusals: 0, latency_ms: 5 };
    let (out, t) = simulate(&svc, 60_000);
    assert_eq!(out, Err(LaunchError::ProvisionFailed { id: "microvm-1".into(), state: "TERMINATED".into(), reason: Some("why".into()) }));
    assert!(!t.terminated, "a terminated VM needs no terminate");
    assert!(out.unwrap_err().to_string().contains("(why)"));
}

#[test]
fn poll_delay_backs_off_to_a_second() {
    assert_eq!(poll_delay(0), Duration::from_millis(5));
    assert_eq!(poll_delay(3), Duration::from_millis(40));
    assert_eq!(poll_delay(30), Duration::from_secs(1));
}

fn state() -> impl Strategy<Value = VmState> {
    prop_oneof![
        Just(VmState::Running),
        Just(VmState::Suspended),
        Just(VmState::Suspending),
        Just(VmState::Terminating),
        Just(VmState::Terminated)
    ]
}

proptest! {
    /// Against a reference model: the outcome, the cleanup and the schedule.
    #[test]
    fn launch_matches_the_model(
        run_fails in proptest::bool::weighted(0.1),
        pending_polls in 0u32..40,
        then in state(),
        refusals in 0u32..6,
        latency_ms in 0u64..300,
        timeout_ms in 1u64..20_000,
    ) {
        let svc = Service { run_fails, pending_polls, then: then.clone(), refusals, latency_ms };
        let (out, t) = simulate(&svc, timeout_ms);
        // Schedule: the first poll comes within 5 ms of the Run answer, gaps never exceed 1 s + latency.
        for w in t.gets.windows(2) {
            prop_assert!(w[1] - w[0] <= Duration::from_millis(1000 + latency_ms));
        }
        match (&out, run_fails) {
            (Err(LaunchError::Api { operation: "RunMicrovm", .. }), true) => prop_assert!(!t.terminated),
            (_, true) => prop_assert!(false, "run failure must surface: {out:?}"),
            (Ok(_), false) => {
                prop_assert_eq!(&then, &VmState::Running);
                prop_assert_eq!(t.connects, refusals + 1);
                prop_assert!(!t.terminated);
            }
            (Err(LaunchError::ProvisionFailed { state, .. }), false) => {
                prop_assert_ne!(&then, &VmState::Running);
                prop_assert_eq!(state.as_str(), then.as_str());
                prop_assert_eq!(t.terminated, !then.is_final());
            }
            (Err(LaunchError::Timeout { .. } | LaunchError::Api { .. }), false) => {
                // Only when the deadline passed; then the VM is always cleaned up.
                prop_assert!(t.terminated);
                let total = latency_ms * (3 + u64::from(pending_polls) + u64::from(refusals)) + 1000 * 50;
                prop_assert!(timeout_ms < total);
            }
            (Err(e), false) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
