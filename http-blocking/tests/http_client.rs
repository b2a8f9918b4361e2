//! The blocking SDK plumbing: calls run on the test thread against the in-process emulator.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_lambdamicrovms::config::BehaviorVersion;
use aws_sdk_lambdamicrovms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use whim_emulator::{Emulator, EmulatorConfig};

/// A Lambda MicroVMs client on this crate's HTTP client and sleep.
fn sdk_client(sdk: &aws_types::SdkConfig) -> aws_sdk_lambdamicrovms::Client {
    let sleep = aws_smithy_async::rt::sleep::SharedAsyncSleep::new(whim_http_blocking::BlockingSleep);
    let conf =
        aws_sdk_lambdamicrovms::config::Builder::from(sdk).http_client(whim_http_blocking::BlockingHttpClient::default()).sleep_impl(sleep);
    aws_sdk_lambdamicrovms::Client::from_conf(conf.build())
}

use whim_http_blocking::block_on;

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

#[test]
fn calls_complete_on_the_calling_thread() {
    let (_rt, emulator) = emulator();
    let client = sdk_client(&sdk_config(&emulator.endpoint_url()));

    let images = block_on(client.list_managed_microvm_images().send()).expect("list managed images");
    let arns: Vec<_> = images.items().iter().map(|i| i.image_arn()).collect();
    assert!(arns.iter().any(|a| a.ends_with(":microvm-image:al2023-1")), "{arns:?}");

    let missing = block_on(client.get_microvm().microvm_identifier("microvm-00000000-0000-0000-0000-000000000000").send());
    let err = missing.expect_err("no such VM");
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err:?}");
}

#[test]
fn the_sdk_future_is_ready_on_its_first_poll() {
    let (_rt, emulator) = emulator();
    let client = sdk_client(&sdk_config(&emulator.endpoint_url()));
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..2 {
        // Twice: the first call also loads the credentials into the identity cache.
        let mut call = std::pin::pin!(client.list_managed_microvm_images().send());
        match call.as_mut().poll(&mut cx) {
            Poll::Ready(result) => assert!(!result.expect("list managed images").items().is_empty()),
            Poll::Pending => panic!("the SDK call did not complete in its first poll"),
        }
    }
}

#[test]
fn a_closed_port_fails_fast() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = sdk_client(&sdk_config(&format!("http://127.0.0.1:{port}")));
    let start = Instant::now();
    let err = block_on(client.list_managed_microvm_images().send()).expect_err("nothing listens there");
    let SdkError::DispatchFailure(failure) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(failure.is_io(), "{err:?}");
    // The default retries back off on this thread (well under a few seconds), then give up.
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sdk = sdk_config(&format!("http://{}", listener.local_addr().unwrap())).into_builder();
    sdk.set_timeout_config(Some(TimeoutConfig::builder().read_timeout(Duration::from_millis(300)).build()));
    sdk.set_retry_config(Some(RetryConfig::disabled()));
    let start = Instant::now();
    let err = block_on(sdk_client(&sdk.build()).list_managed_microvm_images().send()).expect_err("no answer");
    let SdkError::DispatchFailure(failure) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(failure.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    drop(listener);
}

#[test]
fn signed_headers_reach_the_wire_and_ureq_adds_none() {
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
    block_on(client.list_managed_microvm_images().send()).expect("an empty listing");

    let head = server.join().unwrap();
    let headers: Vec<(String, &str)> =
        head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(name, value)| (name.to_ascii_lowercase(), value.trim())).collect();
    let value = |name: &str| headers.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect::<Vec<_>>();
    let auth = value("authorization");
    let signed = auth[0].split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
    for name in signed.split(';') {
        assert_eq!(value(name).len(), 1, "signed header {name} must be sent exactly once");
    }
    assert!(signed.split(';').any(|n| n == "host"));
    let user_agent = value("user-agent");
    assert!(user_agent.len() == 1 && user_agent[0].starts_with("aws-sdk-rust"), "{user_agent:?}");
    assert!(value("accept").is_empty() && value("accept-encoding").is_empty(), "ureq added a header");
}
