//! The delay between a VM turning RUNNING and its shell being attached (goal < 100 ms),
//! and launch-to-first-exec, over N launches against an in-process emulator.
//! Needs the `whim` binary as the sandbox helper: `cargo build --release -p whim` first.

use std::time::{Duration, Instant};

use whim_tokio::{LaunchOptions, Manager, ManagerOptions};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn helper() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("whim"))
        .find(|p| p.exists())
        .expect("build the whim binary first: cargo build --release -p whim")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut cfg = whim_emulator::EmulatorConfig::local_default();
    cfg.sandbox.helper_exe = helper();
    let emu = whim_emulator::Emulator::start(cfg).await.expect("emulator");
    let creds = aws_credential_types::Credentials::new(
        whim_emulator::LOCAL_ACCESS_KEY_ID,
        whim_emulator::LOCAL_SECRET_ACCESS_KEY,
        None,
        None,
        "bench",
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new(whim_emulator::LOCAL_REGION))
        .credentials_provider(creds)
        .endpoint_url(emu.endpoint_url())
        .load()
        .await;
    let mgr = Manager::new(&sdk, ManagerOptions { vm_endpoint_via: Some(emu.addr()) }).expect("manager");
    let (mut attach, mut running, mut first_exec) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut vm = mgr.launch("whim-default", LaunchOptions::default()).await.expect("launch");
        let t = vm.launch_timings().expect("timings");
        vm.exec(["true"]).await.expect("exec");
        first_exec.push(t0.elapsed());
        attach.push(t.running_to_attached);
        running.push(t.to_running);
        vm.terminate().await.expect("terminate");
    }
    println!("runs: {runs}");
    println!("RUNNING -> shell attached   median {:?}  max {:?}", median(attach.clone()), attach.iter().max().expect("runs"));
    println!("RunMicrovm -> RUNNING seen  median {:?}", median(running));
    println!("launch -> first exec done   median {:?}", median(first_exec));
    emu.shutdown().await;
}
