//! Launch a VM, run a command in it, terminate it: whim on tokio.
//! `cargo run -p whim-tokio --example tokio_launch_exec` (see the README for the emulator).

use whim_tokio::{LaunchOptions, Manager, ManagerOptions};

#[tokio::main]
async fn main() -> Result<(), whim_tokio::Error> {
    let (sdk, opts) = local();
    let mgr = Manager::new(&sdk, opts)?;
    let mut vm = mgr.launch("whim-default", LaunchOptions::default()).await?;
    let out = vm.exec(["sh", "-c", "echo hello from $(hostname); id -u; exit 3"]).await?;
    print!("{}: {}", vm.id(), String::from_utf8_lossy(&out.output));
    println!("exit status {}", out.status.code());
    vm.terminate().await
}

/// The local emulator from `AWS_ENDPOINT_URL_LAMBDA_MICROVMS` (e.g. `http://127.0.0.1:4566`, what
/// `whim emulator serve --addr 127.0.0.1:4566` listens on), with the fixed local credentials
/// it accepts. Against real AWS, build the config with aws-config instead.
fn local() -> (aws_types::SdkConfig, ManagerOptions) {
    let url = std::env::var("AWS_ENDPOINT_URL_LAMBDA_MICROVMS").expect("set AWS_ENDPOINT_URL_LAMBDA_MICROVMS to the emulator URL");
    let creds = aws_credential_types::Credentials::new("WHIMLOCALACCESSKEY", "whim-local-secret-not-a-secret", None, None, "example");
    let sdk = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .endpoint_url(&url)
        .behavior_version(aws_sdk_lambdamicrovms::config::BehaviorVersion::latest())
        .build();
    // The emulator serves every VM endpoint on its own address, routed by Host.
    let via = url.trim_start_matches("http://").parse().ok();
    (sdk, ManagerOptions { vm_endpoint_via: via })
}
