//! Sending one step: SigV4-signed (aws-sigv4, service `lambda`) for the control plane, plain
//! with a `Host` header for a VM endpoint; hyper over a fresh loopback connection.

use std::net::SocketAddr;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Where and how a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The emulator's socket.
    pub addr: SocketAddr,
    /// SigV4 region.
    pub region: String,
    /// Access key id to sign with.
    pub access_key_id: String,
    /// Secret to sign with.
    pub secret_access_key: String,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// HTTP method.
    pub method: String,
    /// Path and query (already expanded).
    pub path: String,
    /// `Host` header; `None` for the control plane (the emulator address).
    pub host: Option<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<Vec<u8>>,
    /// SigV4-sign it (control plane) or not (VM endpoint).
    pub signed: bool,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `x-amzn-ErrorType`, if any.
    pub error_type_header: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// Sends `req` and reads the whole answer.
pub async fn send(target: &Target, req: &Outgoing) -> anyhow::Result<Answer> {
    let request = build(target, req)?;
    let stream = tokio::net::TcpStream::connect(target.addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let error_type_header = response.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok(Answer { status, error_type_header, body })
}

fn build(target: &Target, req: &Outgoing) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let host = req.host.clone().unwrap_or_else(|| target.addr.to_string());
    let body = req.body.clone().unwrap_or_default();
    let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.path.as_str()).header("host", &host);
    if req.body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut request = builder.body(Full::new(Bytes::from(body.clone())))?;
    if req.signed {
        sign_request(target, &host, &mut request, &body)?;
    }
    Ok(request)
}

/// SigV4 with the aws-sigv4 crate (service `lambda`), never by hand.
fn sign_request(target: &Target, host: &str, request: &mut http::Request<Full<Bytes>>, body: &[u8]) -> anyhow::Result<()> {
    let creds = Credentials::new(&target.access_key_id, &target.secret_access_key, None, None, "conformance");
    let identity: Identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let url = format!("http://{host}{}", request.uri());
    let headers: Vec<(String, String)> =
        request.headers().iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
