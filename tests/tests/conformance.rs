//! The recorded Lambda MicroVMs cases against an in-process emulator.
//!
//! The cases build their images from `s3://m80-conformance-123456789012-use2/code.zip`; the
//! test uploads that artifact (a Dockerfile `FROM` the AL2023 base plus `RUN true`) to the
//! emulator's S3 with aws-sdk-s3 first.
//!
//! Asserted: every in-scope step passes. Out of scope (recorded README): the Lambda Core
//! network-connector operations (must answer 501, unimplemented) and the guest-application
//! steps of `vm-endpoint` (reported out-of-scope by the runner).

use std::io::Write as _;
use std::time::Duration;

use aws_credential_types::Credentials;
use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};
use whim_tests::conformance::{Outcome, Runner, StepReport, Target, load_cases, shared_dir};

const ACCOUNT: &str = "123456789012";
const BUCKET: &str = "m80-conformance-123456789012-use2";
const DOCKERFILE: &str = "FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nRUN true\n";

#[tokio::test(flavor = "multi_thread")]
async fn recorded_cases() {
    let shared = shared_dir().expect("shared reference directory");
    let cases = load_cases(&shared).expect("recorded cases load");
    let state = tempfile::tempdir().expect("state dir");
    let mut cfg = EmulatorConfig::local_default();
    cfg.account = ACCOUNT.into();
    cfg.pending_delay = Duration::from_millis(100);
    cfg.state_dir = state.path().to_owned();
    cfg.sandbox.state_dir = state.path().to_owned();
    // The recorded ListMicrovmImages answer holds only the case's own image.
    cfg.seed_default_image = false;
    // The recorded cases never open a shell, so the VMs need no namespaces; unisolated VMs also
    // spare this crate a build dependency on the `whim-emulator` binary (the namespace helper).
    cfg.sandbox.isolation = whim_emulator::sandbox::Isolation::Unisolated;
    let emulator = Emulator::start(cfg).await.expect("the emulator starts");
    upload_artifact(&emulator).await;
    let target = Target {
        addr: emulator.addr(),
        region: "us-east-1".into(),
        access_key_id: LOCAL_ACCESS_KEY_ID.into(),
        secret_access_key: LOCAL_SECRET_ACCESS_KEY.into(),
    };
    let report = Runner::new(target, ACCOUNT, &shared).run(&cases).await;
    emulator.shutdown().await;
    println!("{}", report.table());

    assert!(report.case("images-lifecycle").count() >= 13, "the image lifecycle case ran");
    let wrong: Vec<&StepReport> = report.steps.iter().filter(|s| s.outcome != expected(s)).collect();
    assert!(wrong.is_empty(), "in-scope steps did not pass:\n{}", report.table());
}

/// Lambda Core (network connectors) is another service: unimplemented (the rest of its case
/// then does not run); guest application traffic is out of scope; everything else must pass.
fn expected(step: &StepReport) -> Outcome {
    match step.outcome {
        Outcome::OutOfScope if step.operation == "VmEndpoint" => Outcome::OutOfScope,
        Outcome::NotRun if step.case == "connectors" => Outcome::NotRun,
        _ if step.operation.contains("NetworkConnector") => Outcome::Unimplemented,
        _ => Outcome::Pass,
    }
}

/// `s3://m80-conformance-123456789012-use2/code.zip` through the official S3 client.
async fn upload_artifact(emulator: &Emulator) {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, None, None, "test"))
        .endpoint_url(emulator.endpoint_url())
        .force_path_style(true)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    s3.create_bucket().bucket(BUCKET).send().await.expect("CreateBucket");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("Dockerfile", zip::write::SimpleFileOptions::default()).expect("zip entry");
    zip.write_all(DOCKERFILE.as_bytes()).expect("zip write");
    let bytes = zip.finish().expect("zip").into_inner();
    s3.put_object().bucket(BUCKET).key("code.zip").body(bytes.into()).send().await.expect("PutObject");
}
