//! An HTTP client and a sleep for the AWS SDK crates on the async-io family (async-std, smol),
//! with no tokio runtime: async-net, futures-rustls (ring, webpki roots) and hyper's HTTP/1.1
//! connection API, one connection per request. Nothing here knows whim: every SDK client
//! (Lambda MicroVMs, S3, IAM, STS) takes them with `.http_client(..)` and `.sleep_impl(..)`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_io::Timer;
use async_net::TcpStream;
use aws_smithy_async::rt::sleep::{AsyncSleep, Sleep};
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite, future};
use futures_rustls::TlsConnector;
use futures_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring, pki_types::ServerName};
use futures_util::future::Either;
use http::{HeaderValue, Uri, header::HOST, uri::PathAndQuery};
use http_body_util::{BodyExt, Full};
use smol_hyper::rt::FuturesIo;

/// The TLS connector every connection shares (the shell WebSocket too): ring, the webpki roots, HTTP/1.1 over ALPN.
pub static TLS: LazyLock<TlsConnector> = LazyLock::new(|| {
    let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
});

/// An SDK HTTP client on async-net, rustls and hyper's HTTP/1.1, one connection per request.
#[derive(Clone, Debug, Default)]
pub struct AsyncIoHttpClient;

impl HttpClient for AsyncIoHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(AsyncIoConnector(settings.clone()))
    }
}

/// The connector [`AsyncIoHttpClient`] hands out: its settings carry the timeouts.
#[derive(Clone, Debug)]
pub struct AsyncIoConnector(HttpConnectorSettings);

impl HttpConnector for AsyncIoConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::new(send(request, self.0.clone()))
    }
}

/// Connects (TCP, then TLS for https) within the connect timeout and does one exchange within
/// the read timeout (which covers the whole response, body included).
async fn send(request: HttpRequest, settings: HttpConnectorSettings) -> Result<HttpResponse, ConnectorError> {
    let (mut parts, body) = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?.into_parts();
    let body = body.bytes().ok_or_else(|| ConnectorError::user("streaming request bodies are unsupported".into()))?;
    let body = Full::new(Bytes::copy_from_slice(body));
    let uri = std::mem::replace(&mut parts.uri, Uri::from(PathAndQuery::from_static("/")));
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(ConnectorError::user("the request URI has no host".into()));
    };
    let (tls, default_port) = match uri.scheme_str() {
        Some("https") => (true, 443),
        Some("http") => (false, 80),
        _ => return Err(ConnectorError::user("only http and https URIs are supported".into())),
    };
    let port = uri.port_u16().unwrap_or(default_port);
    if !parts.headers.contains_key(HOST) {
        // As SigV4 signs it: the port only when it is not the scheme's default.
        let value = if port == default_port { host } else { authority.as_str() };
        parts.headers.insert(HOST, HeaderValue::from_str(value).map_err(|e| ConnectorError::user(e.into()))?);
    }
    if let Some(origin) = uri.path_and_query() {
        parts.uri = Uri::from(origin.clone());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let io = within(settings.connect_timeout(), "connect", async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| ConnectorError::io(e.into()))?;
        tcp.set_nodelay(true).map_err(|e| ConnectorError::io(e.into()))?;
        if !tls {
            return Ok(Either::Left(tcp));
        }
        let name = ServerName::try_from(host.clone()).map_err(|e| ConnectorError::user(e.into()))?;
        Ok(Either::Right(TLS.connect(name, tcp).await.map_err(|e| ConnectorError::io(e.into()))?))
    })
    .await?;
    within(settings.read_timeout(), "read", exchange(io, http::Request::from_parts(parts, body))).await
}

/// One HTTP/1.1 request and its whole response on `io`, driving the connection in place.
async fn exchange<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<HttpResponse, ConnectorError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(FuturesIo::new(io)).await.map_err(hyper_error)?;
    let respond = async {
        let (parts, body) = sender.send_request(request).await.map_err(hyper_error)?.into_parts();
        let body = body.collect().await.map_err(hyper_error)?.to_bytes();
        HttpResponse::try_from(http::Response::from_parts(parts, SdkBody::from(body))).map_err(|e| ConnectorError::other(e.into(), None))
    };
    // The connection ending cleanly is not an answer: the response side decides.
    let drive = async {
        conn.await.map_err(hyper_error)?;
        future::pending().await
    };
    future::or(respond, drive).await
}

/// Races `work` against an optional deadline, which fails as a [`ConnectorError::timeout`].
async fn within<T>(
    limit: Option<Duration>,
    what: &str,
    work: impl Future<Output = Result<T, ConnectorError>>,
) -> Result<T, ConnectorError> {
    let Some(limit) = limit else { return work.await };
    let expire = async {
        Timer::after(limit).await;
        Err(ConnectorError::timeout(format!("{what} timed out after {limit:?}").into()))
    };
    future::or(work, expire).await
}

/// Bad responses and misuse are final; anything else (closed, incomplete, I/O) may be retried.
fn hyper_error(e: hyper::Error) -> ConnectorError {
    if e.is_parse() || e.is_user() { ConnectorError::other(e.into(), None) } else { ConnectorError::io(e.into()) }
}

/// The SDK's sleep (retry backoff, timeouts) on [`async_io::Timer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncIoSleep;

impl AsyncSleep for AsyncIoSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        Sleep::new(async move {
            Timer::after(duration).await;
        })
    }
}
