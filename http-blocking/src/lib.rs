//! An HTTP client and a sleep for the AWS SDK crates from plain blocking code (ureq, no
//! runtime, no thread pool). Nothing here knows whim: every SDK client takes them with
//! `.http_client(..)` and `.sleep_impl(..)`.
//!
//! HTTP runs inside `call` and sleeps park the thread, so an SDK future is ready on its first poll. Only connect/read timeouts are enforced
//! (by `ureq`); operation and attempt timeouts cannot interrupt a call that blocks.

use aws_smithy_async::rt::sleep::{AsyncSleep, Sleep};
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Largest response body read into memory.
const MAX_BODY: u64 = 64 << 20;

/// Connect and read timeouts, the settings a connector is built for.
type Timeouts = (Option<Duration>, Option<Duration>);

/// SDK HTTP client that runs each request synchronously with `ureq` inside `call`.
#[derive(Debug, Default)]
pub struct BlockingHttpClient {
    cached: Mutex<Option<(Timeouts, SharedHttpConnector)>>,
}

impl HttpClient for BlockingHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((k, connector)) if *k == key => connector.clone(),
            _ => cached.insert((key, SharedHttpConnector::new(BlockingConnector::new(key)))).1.clone(),
        }
    }
}

/// The connector behind [`BlockingHttpClient`]: one pooled `ureq::Agent` per timeout setting.
#[derive(Debug)]
pub struct BlockingConnector(ureq::Agent);

impl BlockingConnector {
    /// An agent that returns error statuses and redirects as responses and adds no headers.
    fn new((connect, read): Timeouts) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent("")
            .accept("")
            .accept_encoding("")
            .timeout_connect(connect)
            .timeout_recv_response(read)
            .timeout_per_read(read)
            .build();
        Self(ureq::Agent::new_with_config(config))
    }

    /// Sends the signed request exactly as built and reads the whole response.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
        let (parts, body) = request.into_parts();
        let bytes = body.bytes().ok_or_else(|| ConnectorError::user("streaming request body".into()))?;
        // `()` rather than an empty slice, so that ureq adds no `content-length: 0`.
        let sent = match bytes {
            [] => self.0.run(http::Request::from_parts(parts, ())),
            _ => self.0.run(http::Request::from_parts(parts, bytes)),
        };
        let (parts, body) = sent.map_err(connector_error)?.into_parts();
        let bytes = body.into_with_config().limit(MAX_BODY).read_to_vec().map_err(connector_error)?;
        HttpResponse::try_from(http::Response::from_parts(parts, SdkBody::from(bytes))).map_err(|e| ConnectorError::other(e.into(), None))
    }
}

impl HttpConnector for BlockingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::ready(self.send(request))
    }
}

/// Classifies a `ureq` failure for the SDK's retry logic.
fn connector_error(e: ureq::Error) -> ConnectorError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => ConnectorError::timeout(e.into()),
        E::Io(ref io) if io.kind() == std::io::ErrorKind::TimedOut => ConnectorError::timeout(e.into()),
        E::Io(_) | E::HostNotFound | E::ConnectionFailed | E::Protocol(_) | E::Tls(_) | E::Rustls(_) => ConnectorError::io(e.into()),
        _ => ConnectorError::other(e.into(), None),
    }
}

/// SDK sleep that parks the calling thread for the delay when the `Sleep` is first polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockingSleep;

impl AsyncSleep for BlockingSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        // Lazy: the SDK also makes sleeps as timeout arms (the identity-cache load timeout)
        // that are never polled when the guarded future is ready first.
        Sleep::new(async move { std::thread::sleep(duration) })
    }
}

/// Runs an SDK future to completion on this thread. With [`BlockingHttpClient`] and
/// [`BlockingSleep`] it is ready in its first poll; `futures_lite::future::block_on` only
/// parks the thread, it spawns nothing.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}
