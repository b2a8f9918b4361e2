//! The recorded Lambda MicroVMs cases against an in-process emulator.
//!
//! Asserted: every step of `20-managed-images`, every step of `80-errors-not-found` except
//! GetNetworkConnector (another service: must be unimplemented, not failed), and that no step
//! of any other case fails (unimplemented, out-of-scope and not-run steps are reported only).

use std::collections::BTreeMap;
use std::time::Duration;

use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};
use whim_tests::conformance::{Outcome, Runner, Target, load_cases, shared_dir};

const ACCOUNT: &str = "123456789012";

#[tokio::test(flavor = "multi_thread")]
async fn recorded_cases() {
    let shared = shared_dir().expect("shared reference directory");
    let cases = load_cases(&shared).expect("recorded cases load");
    let mut cfg = EmulatorConfig::local_default();
    cfg.account = ACCOUNT.into();
    cfg.pending_delay = Duration::from_millis(100);
    // The recorded cases never open a shell, so the VMs need no namespaces; unisolated VMs also
    // spare this crate a build dependency on the `whim-emulator` binary (the namespace helper).
    cfg.sandbox.isolation = whim_emulator::sandbox::Isolation::Unisolated;
    let emulator = Emulator::start(cfg).await.expect("the emulator starts");
    let target = Target {
        addr: emulator.addr(),
        region: "us-east-1".into(),
        access_key_id: LOCAL_ACCESS_KEY_ID.into(),
        secret_access_key: LOCAL_SECRET_ACCESS_KEY.into(),
    };
    let fallback = BTreeMap::from([
        ("imageArn".to_owned(), format!("arn:aws:lambda:us-east-1:{ACCOUNT}:microvm-image:whim-default")),
        ("imageName".to_owned(), "whim-default".to_owned()),
        ("imageVersion".to_owned(), "1.0".to_owned()),
    ]);
    let report = Runner::new(target, ACCOUNT, &shared).with_fallback_captures(fallback).run(&cases).await;
    emulator.shutdown().await;
    println!("{}", report.table());

    let managed: Vec<_> = report.case("managed-images").collect();
    assert_eq!(managed.len(), 2);
    assert!(managed.iter().all(|s| s.outcome == Outcome::Pass), "managed-images must pass:\n{}", report.table());
    for step in report.case("errors-not-found") {
        let want = if step.operation == "GetNetworkConnector" { Outcome::Unimplemented } else { Outcome::Pass };
        assert_eq!(step.outcome, want, "errors-not-found/{}: {}", step.step, step.detail);
    }
    let failures = report.failures();
    assert!(failures.is_empty(), "implemented steps failed:\n{}", report.table());
}
