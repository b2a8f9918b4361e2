//! The async-io SDK plumbing against the in-process emulator, under async-std and under smol.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_lambdamicrovms::config::BehaviorVersion;
use aws_sdk_lambdamicrovms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use whim_emulator::{Emulator, EmulatorConfig};

/// A Lambda MicroVMs client on this crate's HTTP client and sleep.
fn sdk_client(sdk: &aws_types::SdkConfig) -> aws_sdk_lambdamicrovms::Client {
    let sleep = aws_smithy_async::rt::sleep::SharedAsyncSleep::new(whim_http_async_io::AsyncIoSleep);
    let conf = aws_sdk_lambdamicrovms::config::Builder::from(sdk).http_client(whim_http_async_io::AsyncIoHttpClient).sleep_impl(sleep);
    aws_sdk_lambdamicrovms::Client::from_conf(conf.build())
}

/// A hand-built SDK config with the emulator's fixed credentials, pointed at `url`.
fn sdk_config(url: &str) -> aws_types::SdkConfig {
    let creds = Credentials::new(whim_emulator::LOCAL_ACCESS_KEY_ID, whim_emulator::LOCAL_SECRET_ACCESS_KEY, None, None, "test");
    aws_types::SdkConfig::builder()
        .region(Region::new(whim_emulator::LOCAL_REGION))
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .endpoint_url(url)
        .behavior_version(BehaviorVersion::latest())
        .build()
}

/// The emulator served by the worker threads of a runtime the caller must keep alive.
fn emulator() -> (tokio::runtime::Runtime, Emulator) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let emulator = rt.block_on(Emulator::start(EmulatorConfig::local_default())).expect("the emulator starts");
    (rt, emulator)
}

/// Lists the managed images, then asks for a VM that does not exist (an error body and headers).
async fn list_and_miss(url: &str) {
    let client = sdk_client(&sdk_config(url));
    let images = client.list_managed_microvm_images().send().await.expect("list managed images");
    let arns: Vec<_> = images.items().iter().map(|i| i.image_arn()).collect();
    assert!(arns.iter().any(|a| a.ends_with(":microvm-image:al2023-1")), "{arns:?}");

    let missing = client.get_microvm().microvm_identifier("microvm-00000000-0000-0000-0000-000000000000").send().await;
    let err = missing.expect_err("no such VM");
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err:?}");
}

#[test]
fn calls_complete_under_async_std() {
    let (_rt, emulator) = emulator();
    async_std::task::block_on(list_and_miss(&emulator.endpoint_url()));
}

#[test]
fn calls_complete_under_smol() {
    let (_rt, emulator) = emulator();
    smol::block_on(list_and_miss(&emulator.endpoint_url()));
}

#[test]
fn https_to_a_closed_port_fails_fast() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = sdk_client(&sdk_config(&format!("https://127.0.0.1:{port}")));
    let start = Instant::now();
    let err = smol::block_on(client.list_managed_microvm_images().send()).expect_err("nothing listens there");
    let SdkError::DispatchFailure(failure) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(failure.is_io(), "{err:?}");
    // The default retries back off on async-io timers, then give up.
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
}

#[test]
fn https_to_a_plain_http_server_fails_with_a_tls_error() {
    let (_rt, emulator) = emulator();
    let url = emulator.endpoint_url().replace("http://", "https://");
    let client = sdk_client(&sdk_config(&url));
    let err = async_std::task::block_on(client.list_managed_microvm_images().send()).expect_err("no TLS there");
    let SdkError::DispatchFailure(failure) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(failure.is_io(), "{err:?}");
}

#[test]
fn a_silent_server_hits_the_read_timeout() {
    // Never accepted: the kernel completes the handshakes, nobody ever answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sdk = sdk_config(&format!("http://{}", listener.local_addr().unwrap())).into_builder();
    sdk.set_timeout_config(Some(TimeoutConfig::builder().read_timeout(Duration::from_millis(200)).build()));
    let client = sdk_client(&sdk.build());
    let start = Instant::now();
    let err = async_std::task::block_on(client.list_managed_microvm_images().send()).expect_err("no answer");
    let SdkError::DispatchFailure(failure) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(failure.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
}

#[test]
fn signed_headers_reach_the_wire_once_in_origin_form() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        tcp.write_all(reply).unwrap();
        String::from_utf8(head).unwrap()
    });
    let client = sdk_client(&sdk_config(&url));
    smol::block_on(client.list_managed_microvm_images().send()).expect("an empty listing");

    let head = server.join().unwrap();
    let target = head.split(' ').nth(1).unwrap();
    assert!(target.starts_with('/'), "not origin-form: {target}");
    let headers: Vec<(String, &str)> =
        head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(name, value)| (name.to_ascii_lowercase(), value.trim())).collect();
    let value = |name: &str| headers.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect::<Vec<_>>();
    let auth = value("authorization");
    let signed = auth[0].split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
    for name in signed.split(';') {
        assert_eq!(value(name).len(), 1, "signed header {name} must be sent exactly once");
    }
    assert_eq!(value("host"), [url.trim_start_matches("http://")]);
}
