//! The runtime crates' examples, run as the README shows them, against an emulator.

mod common;

use common::{Env, show};

fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let path = exe.ancestors().nth(2).expect("target dir").join("examples").join(name);
    assert!(path.exists(), "{} is not built: run the workspace's tests (`cargo test --workspace`)", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_example_launches_execs_and_terminates() {
    let env = Env::start().await;
    for name in ["tokio_launch_exec", "async_std_launch_exec", "smol_launch_exec", "blocking_launch_exec"] {
        let mut c = std::process::Command::new(example(name));
        c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", &env.url);
        let o = tokio::task::spawn_blocking(move || c.output().expect("example runs")).await.expect("join");
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
        assert!(text.contains("hello from") && text.contains("\n0\n") && text.ends_with("exit status 3\n"), "{name}: {text}");
    }
    let vms = env.wait_vms(5, |v| v.iter().all(|(_, s)| s == "TERMINATED")).await;
    assert_eq!(vms.len(), 4, "{vms:?}");
    assert!(vms.iter().all(|(_, s)| s == "TERMINATED"), "{vms:?}");
}
