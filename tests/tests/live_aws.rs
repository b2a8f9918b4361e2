//! Live tests against the real service. Built with `--features integration`; they run
//! only when `WHIM_INTEGRATION=1`, with credentials from the standard chain and an image
//! named by `WHIM_IMAGE` (name or ARN); the build test makes a bucket, a role and an image
//! (removed after). Nobody on the project can run them offline.
#![cfg(feature = "integration")]

use whim_tokio::{LaunchOptions, Manager, ManagerOptions, Ttl};

fn enabled() -> bool {
    std::env::var("WHIM_INTEGRATION").is_ok_and(|v| v == "1")
}

#[tokio::test]
async fn launch_exec_terminate_on_aws() {
    if !enabled() {
        eprintln!("skipped: set WHIM_INTEGRATION=1 to run against AWS");
        return;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mgr = Manager::new(&sdk, ManagerOptions::default()).expect("region configured");
    let image = std::env::var("WHIM_IMAGE").unwrap_or_else(|_| "whim-default".into());
    let opts = LaunchOptions { ttl: Ttl::parse("10m").expect("ttl"), ..Default::default() };
    let mut vm = mgr.launch(&image, opts).await.expect("launch");
    let out = vm.exec(["sh", "-c", "printf 'a\\nb'; exit 3"]).await;
    let id = vm.id().to_owned();
    vm.terminate().await.expect("terminate");
    let out = out.expect("exec");
    assert_eq!(out.output, b"a\nb");
    assert_eq!(out.status.code(), 3);
    let state = mgr.get(&id).await.expect("get").state;
    assert!(state.is_final(), "{state:?}");
}

/// Bootstrap, build a small image, launch it, see the build's file, remove the image.
#[tokio::test]
async fn build_run_remove_on_aws() {
    if !enabled() {
        eprintln!("skipped: set WHIM_INTEGRATION=1 to run against AWS");
        return;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mgr = Manager::new(&sdk, ManagerOptions::default()).expect("region configured");
    let boot = mgr.bootstrap().await.expect("bucket and build role");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nRUN echo live > /built-file\n",
    )
    .expect("Dockerfile");
    let name = format!("whim-live-{}", std::process::id());
    let opts = whim_tokio::BuildOptions {
        name: name.clone(),
        artifact_bucket: boot.bucket,
        base_image_arn: None,
        build_role_arn: boot.build_role_arn,
        egress: whim_tokio::Egress::Public,
        privileged: false,
        force: false,
        any_content: false,
        context: whim_tokio::ContextOptions::default(),
        progress: None,
    };
    let built = mgr.build_from_source(dir.path().to_str().expect("utf-8"), &opts).await.expect("build");
    let mut vm =
        mgr.launch(&built.arn, LaunchOptions { ttl: Ttl::parse("10m").expect("ttl"), ..Default::default() }).await.expect("launch");
    let out = vm.exec(["cat", "/built-file"]).await;
    vm.terminate().await.expect("terminate");
    assert_eq!(out.expect("exec").output, b"live\n");
    mgr.remove_image(&name).await.expect("remove");
}
