//! The image control plane driven by the official SDKs: artifacts uploaded with aws-sdk-s3,
//! images created, built, updated, listed and deleted with aws-sdk-lambdamicrovms.

use std::fmt::Debug;
use std::io::Write as _;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_lambdamicrovms::Client;
use aws_sdk_lambdamicrovms::config::{BehaviorVersion, Region};
use aws_sdk_lambdamicrovms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambdamicrovms::types::{CodeArtifact, MicrovmImageState, MicrovmImageVersionStatus, MicrovmState};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};

const BASE: &str = "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/whim-build";
const ARTIFACT: &str = "s3://art/code.zip";

struct Env {
    emulator: Emulator,
    lambda: Client,
}

async fn start() -> Env {
    let mut cfg = EmulatorConfig::local_default();
    cfg.sandbox.helper_exe = env!("CARGO_BIN_EXE_whim-emulator").into();
    cfg.state_dir = std::env::temp_dir().join(format!("whim-images-test-{}-{}", std::process::id(), nanos()));
    cfg.sandbox.state_dir = cfg.state_dir.clone();
    cfg.pending_delay = Duration::from_millis(50);
    let emulator = Emulator::start(cfg).await.expect("the emulator starts");
    let creds = Credentials::new(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, None, None, "test");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds.clone())
            .endpoint_url(emulator.endpoint_url())
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("art").send().await.expect("CreateBucket");
    let zip = artifact("FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nRUN true\n");
    s3.put_object().bucket("art").key("code.zip").body(zip.into()).send().await.expect("PutObject");
    let layered = "FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nENV WHIM_MARK=from-env\n\
                   RUN echo from-layer > /etc/whim-mark\nWORKDIR /srv/app\n";
    s3.put_object().bucket("art").key("layered.zip").body(artifact(layered).into()).send().await.expect("PutObject");
    let conf = aws_sdk_lambdamicrovms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(emulator.endpoint_url())
        .build();
    Env { emulator, lambda: Client::from_conf(conf) }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// A zip holding one `Dockerfile`.
fn artifact(dockerfile: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("Dockerfile", zip::write::SimpleFileOptions::default()).expect("entry");
    zip.write_all(dockerfile.as_bytes()).expect("write");
    zip.finish().expect("zip").into_inner()
}

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:microvm-image:{name}")
}

async fn create(
    client: &Client,
    name: &str,
    uri: &str,
) -> aws_sdk_lambdamicrovms::operation::create_microvm_image::CreateMicrovmImageOutput {
    let req = client.create_microvm_image().name(name).base_image_arn(BASE).build_role_arn(ROLE);
    req.code_artifact(CodeArtifact::Uri(uri.into())).send().await.expect("CreateMicrovmImage")
}

/// Polls GetMicrovmImage until `state` (builds take seconds).
async fn wait_image(client: &Client, arn: &str, state: MicrovmImageState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let image = client.get_microvm_image().image_identifier(arn).send().await.expect("GetMicrovmImage");
        if *image.state() == state {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{arn} stuck in {:?}, wanted {state:?}", image.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn failure<T: Debug, E: ProvideErrorMetadata + Debug>(result: Result<T, SdkError<E>>) -> (u16, String, String) {
    let err = result.expect_err("the call must fail");
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let service = err.as_service_error().unwrap_or_else(|| panic!("not a service error: {err:?}"));
    (status, service.code().unwrap_or_default().to_owned(), service.message().unwrap_or_default().to_owned())
}

/// One signed (unverified) raw request with a JSON body: (status, body).
async fn raw(emulator: &Emulator, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await.expect("connect");
    let auth = "Authorization: AWS4-HMAC-SHA256 Credential=WHIMLOCALACCESSKEY/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00";
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        emulator.addr(),
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn create_build_update_and_delete() {
    let env = start().await;
    let client = &env.lambda;
    let created = create(client, "app", ARTIFACT).await;
    assert_eq!((created.state(), created.image_version()), (&MicrovmImageState::Creating, "1.0"));
    assert_eq!(created.base_image_version(), Some("1.0"));
    assert_eq!(created.resources().first().map(|r| r.minimum_memory_in_mib()), Some(2048));
    let egress = created.egress_network_connectors();
    assert_eq!(egress, ["arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"]);
    let image = arn("app");
    wait_image(client, &image, MicrovmImageState::Created).await;

    let builds = client.list_microvm_image_builds().image_identifier(&image).image_version("1.0").send().await.expect("builds");
    let generations: Vec<_> = builds.items().iter().map(|b| (b.chipset_generation(), b.build_state().as_str())).collect();
    assert_eq!(generations, [("4", "SUCCESSFUL"), ("3", "SUCCESSFUL")]);
    let id = builds.items()[0].build_id();
    let build = client.get_microvm_image_build().image_identifier(&image).image_version("1.0").build_id(id).send().await.expect("build");
    assert!(build.snapshot_build().and_then(|s| s.code_install_size_in_bytes()).is_some_and(|n| n > 0));

    let dup = client.create_microvm_image().name("app").base_image_arn(BASE).build_role_arn(ROLE);
    let dup = failure(dup.code_artifact(CodeArtifact::Uri(ARTIFACT.into())).send().await);
    assert_eq!(dup, (400, "ValidationException".into(), "A MicroVM image with the name 'app' already exists in this account".into()));

    let vm = client.run_microvm().image_identifier(&image).send().await.expect("RunMicrovm");
    assert_eq!(vm.image_version(), "1.0");
    let (status, _, msg) = failure(client.delete_microvm_image().image_identifier(&image).send().await);
    assert_eq!((status, msg.as_str()), (400, "Cannot delete microvm image with running microvms."));

    let update = client.update_microvm_image().image_identifier(&image).base_image_arn(BASE).build_role_arn(ROLE);
    let update = update.code_artifact(CodeArtifact::Uri(ARTIFACT.into())).description("two").send().await.expect("Update");
    assert_eq!((update.state(), update.image_version()), (&MicrovmImageState::Updating, "2.0"));
    wait_image(client, &image, MicrovmImageState::Updated).await;
    let got = client.get_microvm_image().image_identifier(&image).send().await.expect("GetMicrovmImage");
    assert_eq!(got.latest_active_image_version(), Some("2.0"));

    let patch = client.update_microvm_image_version().image_identifier(&image).image_version("2.0");
    patch.status(MicrovmImageVersionStatus::Inactive).send().await.expect("INACTIVE");
    let got = client.get_microvm_image().image_identifier(&image).send().await.expect("GetMicrovmImage");
    assert_eq!(got.latest_active_image_version(), Some("1.0"), "an INACTIVE version is not launched");

    client.delete_microvm_image_version().image_identifier(&image).image_version("1.0").send().await.expect("delete 1.0");
    let (status, code, _) = failure(client.delete_microvm_image_version().image_identifier(&image).image_version("2.0").send().await);
    assert_eq!((status, code.as_str()), (409, "ConflictException"), "the last version goes only with the image");

    client.terminate_microvm().microvm_identifier(vm.microvm_id()).send().await.expect("terminate");
    wait_vm_terminated(client, vm.microvm_id()).await;
    let deleting = client.delete_microvm_image().image_identifier(&image).send().await.expect("DeleteMicrovmImage");
    assert_eq!(deleting.state(), &MicrovmImageState::Deleting);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.get_microvm_image().image_identifier(&image).send().await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the image never went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.emulator.shutdown().await;
}

async fn wait_vm_terminated(client: &Client, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while *client.get_microvm().microvm_identifier(id).send().await.expect("GetMicrovm").state() != MicrovmState::Terminated {
        assert!(tokio::time::Instant::now() < deadline, "{id} never terminated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_artifacts_fail_the_builds() {
    let env = start().await;
    let client = &env.lambda;
    for (name, uri, code) in [("nokey", "s3://art/none.zip", "S3_NO_SUCH_KEY"), ("nobucket", "s3://gone/code.zip", "S3_NO_SUCH_BUCKET")] {
        create(client, name, uri).await;
        let image = arn(name);
        wait_image(client, &image, MicrovmImageState::CreateFailed).await;
        let got = client.get_microvm_image().image_identifier(&image).send().await.expect("GetMicrovmImage");
        assert_eq!((got.latest_failed_image_version(), got.latest_active_image_version()), (Some("1.0"), None));
        let version = client.get_microvm_image_version().image_identifier(&image).image_version("1.0").send().await.expect("version");
        assert_eq!(version.state_reason(), None, "the reason lives on the builds");
        let builds = client.list_microvm_image_builds().image_identifier(&image).image_version("1.0").send().await.expect("builds");
        assert_eq!(builds.items().len(), 2);
        for b in builds.items() {
            assert_eq!(b.build_state().as_str(), "FAILED");
            assert!(b.state_reason().is_some_and(|r| r.starts_with(code) && r.contains(uri)), "{:?}", b.state_reason());
        }
    }
    env.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_idempotency_egress_and_name_filter() {
    let env = start().await;
    let (emulator, client) = (&env.emulator, &env.lambda);
    let (status, body) = raw(emulator, "POST", "/2025-09-09/microvm-images", r#"{"name":"m80-missing-required"}"#).await;
    let want = "3 validation errors detected: Value null at 'baseImageArn' failed to satisfy constraint: Member must not be null; \
                Value null at 'codeArtifact' failed to satisfy constraint: Member must not be null; \
                Value null at 'buildRoleArn' failed to satisfy constraint: Member must not be null";
    assert_eq!((status, body["message"].as_str()), (400, Some(want)));
    let bad = format!(r#"{{"name":"bad name!","baseImageArn":"{BASE}","buildRoleArn":"{ROLE}","codeArtifact":{{"uri":"{ARTIFACT}"}}}}"#);
    let (status, body) = raw(emulator, "POST", "/2025-09-09/microvm-images", &bad).await;
    let want = "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+";
    assert_eq!((status, body["message"].as_str()), (400, Some(want)));

    let with_token = |name: &str, description: &str| {
        let req = client.create_microvm_image().name(name).base_image_arn(BASE).build_role_arn(ROLE).description(description);
        req.code_artifact(CodeArtifact::Uri(ARTIFACT.into())).client_token("token-1").set_egress_network_connectors(Some(vec![]))
    };
    let first = with_token("quiet", "d").send().await.expect("create");
    assert!(first.egress_network_connectors().is_empty(), "an explicit empty egress list is kept");
    let again = with_token("quiet", "d").send().await.expect("replayed");
    assert_eq!((again.image_arn(), again.created_at()), (first.image_arn(), first.created_at()));
    let (status, code, _) = failure(with_token("quiet", "other").send().await);
    assert_eq!((status, code.as_str()), (400, "ValidationException"));
    wait_image(client, &arn("quiet"), MicrovmImageState::Created).await;

    for name in ["alpha-one", "beta", "alpha-two"] {
        create(client, name, ARTIFACT).await;
    }
    // whim-default, quiet, alpha-one, beta, alpha-two: maxResults applies before nameFilter.
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client.list_microvm_images().max_results(2).name_filter("alpha").set_next_token(next).send().await.expect("list");
        pages.push(page.items().iter().map(|i| i.name().to_owned()).collect::<Vec<_>>());
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(pages, [vec![], vec!["alpha-one".to_owned()], vec!["alpha-two".to_owned()]]);
    env.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vms_boot_from_the_built_version() {
    let env = start().await;
    create(&env.lambda, "layered", "s3://art/layered.zip").await;
    wait_image(&env.lambda, &arn("layered"), MicrovmImageState::Created).await;
    let line = "echo \"mark=$WHIM_MARK:$(cat /etc/whim-mark):$PWD\"";
    shell_until(&env, &arn("layered"), line, "mark=from-env:from-layer:/srv/app").await;

    // GUESS (Guesses::enforce_egress_none): an explicitly empty egress list means no network.
    let req = env.lambda.create_microvm_image().name("offline").base_image_arn(BASE).build_role_arn(ROLE);
    let req = req.code_artifact(CodeArtifact::Uri(ARTIFACT.into())).set_egress_network_connectors(Some(vec![]));
    req.send().await.expect("CreateMicrovmImage");
    wait_image(&env.lambda, &arn("offline"), MicrovmImageState::Created).await;
    shell_until(&env, &arn("offline"), "echo \"nics=$(ls /sys/class/net | tr '\\n' ' ')\"", "nics=lo ").await;
    env.emulator.shutdown().await;
}

/// Launches a VM of `image` with SHELL_INGRESS, types `line` into its shell and waits for `want`.
async fn shell_until(env: &Env, image: &str, line: &str, want: &str) {
    let connector = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS";
    let vm = env.lambda.run_microvm().image_identifier(image).ingress_network_connectors(connector).send().await.expect("RunMicrovm");
    let id = vm.microvm_id();
    let token = env.lambda.create_microvm_shell_auth_token().microvm_identifier(id).expiration_in_minutes(1).send().await;
    let token = token.expect("shell token").auth_token().get("X-aws-proxy-auth").expect("token").clone();
    let mut req = format!("ws://{}/", vm.endpoint()).into_client_request().expect("request");
    req.headers_mut().insert("X-aws-proxy-auth", token.parse().expect("header value"));
    let stream = tokio::net::TcpStream::connect(env.emulator.addr()).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await.expect("shell WebSocket");
    ws.send(Message::Binary(format!("{line}\r").into_bytes().into())).await.expect("send");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&out).contains(want) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for {want:?} in {:?}: {other:?}", String::from_utf8_lossy(&out)),
        }
    }
    env.lambda.terminate_microvm().microvm_identifier(id).send().await.expect("terminate");
}
