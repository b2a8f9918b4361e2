//! The control plane driven by the official SDK (aws-sdk-lambdamicrovms) against an in-process
//! emulator, plus raw HTTP for what the SDK cannot show (unsigned requests, explicit nulls).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use aws_sdk_lambdamicrovms::Client;
use aws_sdk_lambdamicrovms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambdamicrovms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambdamicrovms::types::{MicrovmState, PortSpecification};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};

const IMAGE: &str = "arn:aws:lambda:us-east-1:123456789012:microvm-image:whim-default";
const MANAGED: &str = "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1";
const CONNECTOR: &str = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:";

async fn start() -> (Emulator, Client) {
    let mut cfg = EmulatorConfig::local_default();
    cfg.sandbox.helper_exe = env!("CARGO_BIN_EXE_whim-emulator").into();
    cfg.pending_delay = Duration::from_millis(100);
    let emulator = Emulator::start(cfg).await.expect("the emulator starts");
    let creds = Credentials::new(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, None, None, "test");
    let conf = aws_sdk_lambdamicrovms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(emulator.endpoint_url())
        .build();
    (emulator, Client::from_conf(conf))
}

/// HTTP status, error code and message of a failed SDK call.
fn failure<T: Debug, E: ProvideErrorMetadata + Debug>(result: Result<T, SdkError<E>>) -> (u16, String, String) {
    let err = result.expect_err("the call must fail");
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let service = err.as_service_error().unwrap_or_else(|| panic!("not a service error: {err:?}"));
    (status, service.code().unwrap_or_default().to_owned(), service.message().unwrap_or_default().to_owned())
}

async fn run(client: &Client) -> String {
    let out = client.run_microvm().image_identifier(IMAGE).send().await.expect("RunMicrovm");
    out.microvm_id().to_owned()
}

async fn wait_state(client: &Client, id: &str, want: MicrovmState) -> aws_sdk_lambdamicrovms::operation::get_microvm::GetMicrovmOutput {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let vm = client.get_microvm().microvm_identifier(id).send().await.expect("GetMicrovm");
        if *vm.state() == want {
            return vm;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} stuck in {:?}, wanted {want:?}", vm.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_get_terminate_with_recorded_defaults() {
    let (emulator, client) = start().await;
    let out = client.run_microvm().image_identifier(IMAGE).send().await.expect("RunMicrovm");
    assert_eq!(*out.state(), MicrovmState::Pending);
    assert!(out.microvm_id().starts_with("microvm-"));
    let host = out.endpoint();
    assert!(host.ends_with(".lambda-microvm.us-east-1.on.aws") && !host.contains(&out.microvm_id()[8..]), "{host}");
    assert_eq!(out.maximum_duration_in_seconds(), 28_800);
    assert_eq!(out.ingress_network_connectors(), [format!("{CONNECTOR}HTTP_INGRESS")]);
    assert_eq!(out.egress_network_connectors(), [format!("{CONNECTOR}INTERNET_EGRESS")]);
    assert_eq!((out.execution_role_arn(), out.idle_policy(), out.state_reason()), (None, None, None));
    assert_eq!(out.image_version(), "1.0");
    let id = out.microvm_id().to_owned();
    wait_state(&client, &id, MicrovmState::Running).await;
    client.terminate_microvm().microvm_identifier(&id).send().await.expect("TerminateMicrovm");
    let gone = wait_state(&client, &id, MicrovmState::Terminated).await;
    assert_eq!(gone.state_reason(), Some("Success."));
    assert!(gone.terminated_at().is_some());
    client.terminate_microvm().microvm_identifier(&id).send().await.expect("terminate twice is 200 {}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_paginates_with_encoded_cursors() {
    let (emulator, client) = start().await;
    let mut launched = BTreeSet::new();
    for _ in 0..3 {
        launched.insert(run(&client).await);
    }
    let mut seen = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client.list_microvms().max_results(1).set_next_token(token.clone()).send().await.expect("ListMicrovms");
        pages += 1;
        seen.extend(page.items().iter().map(|i| i.microvm_id().to_owned()));
        match page.next_token() {
            Some(t) if !t.is_empty() => {
                assert!(t.ends_with('='), "cursors carry '=' padding: {t}");
                token = Some(t.to_owned());
            }
            _ => break,
        }
    }
    assert_eq!((seen, pages), (launched.clone(), 3));
    let all: Vec<_> = client.list_microvms().max_results(2).into_paginator().items().send().collect::<Vec<_>>().await;
    let ids: BTreeSet<String> = all.into_iter().map(|i| i.expect("item").microvm_id().to_owned()).collect();
    assert_eq!(ids, launched);
    let (status, code, _) = failure(client.list_microvms().next_token("bogus").send().await);
    assert_eq!((status, code.as_str()), (400, "ValidationException"));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_resume_and_terminated_refusals() {
    let (emulator, client) = start().await;
    let id = run(&client).await;
    wait_state(&client, &id, MicrovmState::Running).await;
    client.suspend_microvm().microvm_identifier(&id).send().await.expect("SuspendMicrovm");
    wait_state(&client, &id, MicrovmState::Suspended).await;
    client.suspend_microvm().microvm_identifier(&id).send().await.expect("suspend again: 200 (m80 guess)");
    client.resume_microvm().microvm_identifier(&id).send().await.expect("ResumeMicrovm");
    assert_eq!(*wait_state(&client, &id, MicrovmState::Running).await.state(), MicrovmState::Running);
    client.terminate_microvm().microvm_identifier(&id).send().await.expect("TerminateMicrovm");
    wait_state(&client, &id, MicrovmState::Terminated).await;
    let want = format!("The MicroVM {id} has been terminated and its state cannot be changed.");
    let suspend = failure(client.suspend_microvm().microvm_identifier(&id).send().await);
    assert_eq!(suspend, (400, "ValidationException".into(), want.clone()));
    let resume = failure(client.resume_microvm().microvm_identifier(&id).send().await);
    assert_eq!(resume, (400, "ValidationException".into(), want));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn maximum_duration_terminates() {
    let (emulator, client) = start().await;
    let out = client.run_microvm().image_identifier(IMAGE).maximum_duration_in_seconds(2).send().await.expect("run");
    let id = out.microvm_id();
    wait_state(&client, id, MicrovmState::Running).await;
    let gone = wait_state(&client, id, MicrovmState::Terminated).await;
    assert_eq!(gone.state_reason(), Some("Success."));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_errors_have_the_recorded_messages() {
    let (emulator, client) = start().await;
    let vm = "microvm-00000000-0000-0000-0000-000000000000";
    let missing = "arn:aws:lambda:us-east-1:123456789012:microvm-image:nope";
    let nf = |m: String| (404, "ResourceNotFoundException".to_owned(), m);
    assert_eq!(failure(client.get_microvm().microvm_identifier(vm).send().await), nf(format!("MicroVM not found: {vm}")));
    let image = client.get_microvm_image().image_identifier(missing).send().await;
    assert_eq!(failure(image), nf(format!("MicroVMImage not found for MicroVMImageID: {missing}")));
    let version = client.get_microvm_image_version().image_identifier(missing).image_version("1.0").send().await;
    assert_eq!(failure(version), nf(format!("MicroVMImage not found for MicroVMImage: {missing}, Version: 1.0")));
    let run = client.run_microvm().image_identifier(missing).send().await;
    assert_eq!(failure(run), nf(format!("No active version found for MicroVM image {missing}")));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors() {
    let (emulator, client) = start().await;
    let bad = |m: &str| (400, "ValidationException".to_owned(), m.to_owned());
    let bare = client.run_microvm().image_identifier("whim-default").send().await;
    assert_eq!(failure(bare), bad("Malformed ARN - doesn't start with 'arn:'"));
    let bare_managed = client.list_managed_microvm_image_versions().image_identifier("al2023-1").send().await;
    assert_eq!(failure(bare_managed), bad("Invalid ARN format: al2023-1"));
    let payload = client.run_microvm().image_identifier(IMAGE).run_hook_payload("x".repeat(4097)).send().await;
    assert_eq!(
        failure(payload),
        bad(
            "1 validation error detected: Value at 'runHookPayload' failed to satisfy constraint: Member must have length less than or equal to 4096"
        )
    );
    for secs in [0, 28_801] {
        let (status, code, msg) = failure(client.run_microvm().image_identifier(IMAGE).maximum_duration_in_seconds(secs).send().await);
        assert_eq!((status, code.as_str()), (400, "ValidationException"));
        assert!(msg.contains("'maximumDurationInSeconds'"), "{msg}");
    }
    let id = run(&client).await;
    let shell = failure(client.create_microvm_shell_auth_token().microvm_identifier(&id).expiration_in_minutes(5).send().await);
    assert_eq!(shell, bad("Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM."));
    for minutes in [0, 61] {
        let r = client.create_microvm_auth_token().microvm_identifier(&id).expiration_in_minutes(minutes);
        let (status, code, _) = failure(r.allowed_ports(PortSpecification::Port(8080)).send().await);
        assert_eq!((status, code.as_str()), (400, "ValidationException"));
    }
    let all = client
        .run_microvm()
        .image_identifier(IMAGE)
        .ingress_network_connectors(format!("{CONNECTOR}ALL_INGRESS"))
        .ingress_network_connectors(format!("{CONNECTOR}SHELL_INGRESS"))
        .send()
        .await
        .expect("ALL_INGRESS + SHELL_INGRESS launches (the mint fails later)");
    let combined =
        failure(client.create_microvm_shell_auth_token().microvm_identifier(all.microvm_id()).expiration_in_minutes(5).send().await);
    assert_eq!(
        combined,
        bad("ALL_INGRESS cannot be combined with other ingress network connectors; use HTTP_INGRESS and/or SHELL_INGRESS instead")
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_present_at_start() {
    let (emulator, client) = start().await;
    let managed = client.list_managed_microvm_images().send().await.expect("ListManagedMicrovmImages");
    assert_eq!(managed.items().iter().map(|i| i.image_arn()).collect::<Vec<_>>(), [MANAGED]);
    let versions = client.list_managed_microvm_image_versions().image_identifier(MANAGED).send().await.expect("versions");
    assert_eq!(versions.items().iter().map(|v| v.image_version()).collect::<Vec<_>>(), ["1", "0"]);
    let images = client.list_microvm_images().send().await.expect("ListMicrovmImages");
    assert!(images.items().iter().any(|i| i.image_arn() == IMAGE));
    let image = client.get_microvm_image().image_identifier(IMAGE).send().await.expect("GetMicrovmImage");
    assert_eq!((image.name(), image.latest_active_image_version()), ("whim-default", Some("1.0")));
    let v = client.get_microvm_image_version().image_identifier(IMAGE).image_version("1.0").send().await.expect("version");
    assert_eq!(v.base_image_arn(), MANAGED);
    emulator.shutdown().await;
}

/// One raw HTTP/1.1 exchange: (status, head, body).
async fn raw(emulator: &Emulator, method: &str, path: &str, signed: bool) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await.expect("connect");
    let auth = if signed {
        "Authorization: AWS4-HMAC-SHA256 Credential=WHIMLOCALACCESSKEY/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00\r\n"
    } else {
        ""
    };
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n", emulator.addr());
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_requests_are_refused_and_shapes_carry_explicit_nulls() {
    let (emulator, client) = start().await;
    let (status, head, body) = raw(&emulator, "GET", "/2025-09-09/microvms", false).await;
    assert_eq!(status, 403);
    assert!(head.contains("x-amzn-errortype: missingauthenticationtokenexception"), "{head}");
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json"),
        serde_json::json!({"message": "Missing Authentication Token"})
    );
    let id = run(&client).await;
    let (status, head, body) = raw(&emulator, "GET", &format!("/2025-09-09/microvms/{id}"), true).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    let vm: serde_json::Value = serde_json::from_str(&body).expect("json");
    for member in ["terminationReasonCode", "executionRoleArn", "idlePolicy", "terminatedAt", "stateReason"] {
        assert_eq!(vm.get(member), Some(&serde_json::Value::Null), "{member} in {vm}");
    }
    let (status, _, body) = raw(&emulator, "GET", "/2026-04-04/network-connectors", true).await;
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("ListNetworkConnectors"), "{body}");
    let (status, _, body) = raw(&emulator, "GET", "/__whim/health", false).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"service\":\"whim-emulator\""), "{body}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_only_and_shutdown_route() {
    let mut cfg = EmulatorConfig::local_default();
    cfg.addr = "0.0.0.0:0".parse().expect("addr");
    let err = Emulator::start(cfg).await.expect_err("non-loopback is refused");
    assert!(err.to_string().contains("loopback"), "{err}");
    let (emulator, _client) = start().await;
    let (status, _, _) = raw(&emulator, "POST", "/__whim/shutdown", false).await;
    assert_eq!(status, 200);
    tokio::time::timeout(Duration::from_secs(5), emulator.wait()).await.expect("wait() returns after the shutdown route");
    emulator.shutdown().await;
}
