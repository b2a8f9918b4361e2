//! The per-VM endpoint: a WebSocket client (tokio-tungstenite) connects to the emulator's
//! socket and addresses a VM by `Host`, with a token minted through the official SDK.

use std::time::{Duration, Instant};

use aws_sdk_lambdamicrovms::Client;
use aws_sdk_lambdamicrovms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambdamicrovms::types::MicrovmState;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};

const IMAGE: &str = "arn:aws:lambda:us-east-1:123456789012:microvm-image:whim-default";
const CONNECTOR: &str = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:";
const UNKNOWN_HOST: &str = "00000000-0000-0000-0000-000000000000.lambda-microvm.us-east-1.on.aws";

type Ws = WebSocketStream<TcpStream>;

struct Fixture {
    emulator: Emulator,
    client: Client,
}

/// A launched VM: id, endpoint host, shell token.
struct ShellVm {
    id: String,
    host: String,
    token: String,
}

impl Fixture {
    async fn start(token_minute: Duration) -> Self {
        let mut cfg = EmulatorConfig::local_default();
        cfg.sandbox.helper_exe = env!("CARGO_BIN_EXE_whim-emulator").into();
        cfg.pending_delay = Duration::from_millis(50);
        cfg.token_minute = token_minute;
        let emulator = Emulator::start(cfg).await.expect("the emulator starts");
        let creds = Credentials::new(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, None, None, "test");
        let conf = aws_sdk_lambdamicrovms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(emulator.endpoint_url())
            .build();
        Self { emulator, client: Client::from_conf(conf) }
    }

    async fn shell_vm(&self) -> ShellVm {
        let run = self
            .client
            .run_microvm()
            .image_identifier(IMAGE)
            .ingress_network_connectors(format!("{CONNECTOR}HTTP_INGRESS"))
            .ingress_network_connectors(format!("{CONNECTOR}SHELL_INGRESS"))
            .send()
            .await
            .expect("RunMicrovm");
        let id = run.microvm_id().to_owned();
        let token = self.mint(&id).await;
        ShellVm { host: run.endpoint().to_owned(), id, token }
    }

    async fn mint(&self, id: &str) -> String {
        let out = self.client.create_microvm_shell_auth_token().microvm_identifier(id).expiration_in_minutes(1).send().await;
        out.expect("CreateMicrovmShellAuthToken").auth_token().get("X-aws-proxy-auth").expect("token").clone()
    }

    async fn wait_state(&self, id: &str, want: MicrovmState) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while *self.client.get_microvm().microvm_identifier(id).send().await.expect("GetMicrovm").state() != want {
            assert!(Instant::now() < deadline, "{id} never became {want:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// WebSocket upgrade to `ws://<host>/` over the emulator's socket.
    async fn connect(&self, host: &str, token: Option<&str>, subprotocols: Option<String>) -> Result<Ws, WsError> {
        let mut req = format!("ws://{host}/").into_client_request()?;
        if let Some(t) = token {
            req.headers_mut().insert("X-aws-proxy-auth", HeaderValue::from_str(t).expect("token is a header value"));
        }
        if let Some(p) = subprotocols {
            req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&p).expect("protocols"));
        }
        let stream = TcpStream::connect(self.emulator.addr()).await.expect("connect");
        let (ws, response) = tokio_tungstenite::client_async(req, stream).await?;
        assert!(response.headers().contains_key("x-amzn-requestid"));
        Ok(ws)
    }
}

/// Reads frames until the session_init text frame; returns its session id.
async fn session_init(ws: &mut Ws) -> String {
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("session_init in time");
    let Some(Ok(Message::Text(text))) = msg else { panic!("expected session_init, got {msg:?}") };
    let v: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
    assert_eq!(v["type"], "session_init");
    v["session_id"].as_str().expect("session_id").to_owned()
}

/// Collects pty output until it contains `needle`.
async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&out).contains(needle) {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await;
        match msg {
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            other => panic!("waiting for {needle:?} in {:?}: got {other:?}", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Status and body of a refused upgrade.
fn refusal(result: Result<Ws, WsError>) -> (u16, String) {
    match result {
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
        }
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| "an open WebSocket")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_session_echo_resize_and_exit() {
    let f = Fixture::start(Duration::from_secs(60)).await;
    let vm = f.shell_vm().await;
    let mut ws = f.connect(&vm.host, Some(&vm.token), None).await.expect("upgrade");
    assert!(!session_init(&mut ws).await.is_empty());
    ws.send(Message::Binary(b"echo hi$((6*7))\n".to_vec().into())).await.expect("send");
    read_until(&mut ws, "hi42\r\n").await;
    ws.send(Message::Text(r#"{"type":"resize","cols":100,"rows":30}"#.into())).await.expect("resize");
    ws.send(Message::Binary(b"stty size\n".to_vec().into())).await.expect("send");
    read_until(&mut ws, "30 100").await;
    ws.send(Message::Binary(b"exit\n".to_vec().into())).await.expect("send");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1000, "shell exited"));
                break;
            }
            Some(Ok(Message::Binary(_))) => {}
            other => panic!("expected close 1000, got {other:?}"),
        }
    }
    f.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subprotocol_auth_selects_the_marker() {
    let f = Fixture::start(Duration::from_secs(60)).await;
    let vm = f.shell_vm().await;
    let offer = format!("lambda-microvms, lambda-microvms.authentication.{}", vm.token);
    let mut ws = f.connect(&vm.host, None, Some(offer)).await.expect("subprotocol upgrade");
    session_init(&mut ws).await;
    ws.send(Message::Binary(b"tty; echo pid=$$.end$((1+1))\n".to_vec().into())).await.expect("send");
    let out = read_until(&mut ws, ".end2").await;
    assert!(out.contains("/dev/pts/"), "{out}");
    let pid = out.rsplit("pid=").next().and_then(|p| p.split('.').next()).expect("pid").to_owned();
    ws.close(None).await.expect("client close");
    let mut replied = false;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        replied |= matches!(msg, Ok(Message::Close(_)));
    }
    assert!(replied, "the server answers a client close with a close frame");
    let mut other = f.connect(&vm.host, Some(&vm.token), None).await.expect("second session");
    session_init(&mut other).await;
    let probe = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; echo hung-$((1+1))-up\n");
    other.send(Message::Binary(probe.into_bytes().into())).await.expect("send");
    read_until(&mut other, "hung-2-up").await;
    let marker_missing = format!("lambda-microvms.authentication.{}", vm.token);
    assert_eq!(refusal(f.connect(&vm.host, None, Some(marker_missing)).await).0, 403);
    f.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_follow_the_recorded_table() {
    let f = Fixture::start(Duration::from_secs(60)).await;
    let (a, b) = (f.shell_vm().await, f.shell_vm().await);
    f.wait_state(&a.id, MicrovmState::Running).await;
    let missing = (403, "Request missing authentication".to_owned());
    let failed = (403, "Token authentication failed".to_owned());
    assert_eq!(refusal(f.connect(&a.host, None, None).await), missing);
    assert_eq!(refusal(f.connect(&a.host, Some("not-a-token"), None).await), missing);
    assert_eq!(refusal(f.connect(&a.host, Some(&b.token), None).await), failed);
    assert_eq!(refusal(f.connect(UNKNOWN_HOST, Some(&a.token), None).await), failed);
    assert_eq!(plain_get(&f.emulator, &a.host, &a.token).await, (502, String::new()));
    f.client.suspend_microvm().microvm_identifier(&a.id).send().await.expect("suspend");
    f.wait_state(&a.id, MicrovmState::Suspended).await;
    assert_eq!(refusal(f.connect(&a.host, Some(&a.token), None).await), (502, String::new()));
    f.client.terminate_microvm().microvm_identifier(&a.id).send().await.expect("terminate");
    f.wait_state(&a.id, MicrovmState::Terminated).await;
    assert_eq!(refusal(f.connect(&a.host, Some(&a.token), None).await), (502, String::new()));
    f.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_are_refused() {
    let f = Fixture::start(Duration::from_millis(300)).await;
    let vm = f.shell_vm().await;
    f.wait_state(&vm.id, MicrovmState::Running).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(refusal(f.connect(&vm.host, Some(&vm.token), None).await).0, 403);
    let fresh = f.mint(&vm.id).await;
    let mut ws = f.connect(&vm.host, Some(&fresh), None).await.expect("a fresh token opens");
    session_init(&mut ws).await;
    f.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_million_lines_stream_quickly() {
    let f = Fixture::start(Duration::from_secs(60)).await;
    let vm = f.shell_vm().await;
    let mut ws = f.connect(&vm.host, Some(&vm.token), None).await.expect("upgrade");
    session_init(&mut ws).await;
    let started = Instant::now();
    ws.send(Message::Binary(b"seq 1 5000000; exit\n".to_vec().into())).await.expect("send");
    let (mut bytes, mut tail) = (0usize, Vec::new());
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("output in time") {
        match msg.expect("frame") {
            Message::Binary(b) => {
                bytes += b.len();
                tail.extend_from_slice(&b);
                let keep = tail.len().saturating_sub(64);
                tail.drain(..keep);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    assert!(String::from_utf8_lossy(&tail).contains("5000000\r\n"), "{:?}", String::from_utf8_lossy(&tail));
    assert!(bytes > 43_000_000, "{bytes} bytes");
    assert!(elapsed < Duration::from_secs(10), "5,000,000 lines took {elapsed:?}");
    eprintln!("5,000,000 lines ({bytes} bytes) in {elapsed:?}");
    f.emulator.shutdown().await;
}

/// A plain (non-upgrade) GET to a VM endpoint: (status, body).
async fn plain_get(emulator: &Emulator, host: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(emulator.addr()).await.expect("connect");
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-aws-proxy-auth: {token}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status"), body.to_owned())
}
