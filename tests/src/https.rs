//! A loopback HTTPS server for build-source tests: a fresh self-signed certificate for
//! `127.0.0.1`/`localhost` (its PEM is what the client is told to trust), fixed routes, and a
//! record of every request's path and headers (to prove where a token was, and was not, sent).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (e.g. `Location`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// 200 with `body`.
    #[must_use]
    pub fn ok(body: Vec<u8>) -> Reply {
        Reply { status: 200, headers: Vec::new(), body }
    }

    /// 302 to `location`.
    #[must_use]
    pub fn redirect(location: &str) -> Reply {
        Reply { status: 302, headers: vec![("Location".into(), location.into())], body: Vec::new() }
    }
}

/// A request the server saw: path and lower-cased headers.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request target.
    pub path: String,
    /// Header name (lower case) to value.
    pub headers: BTreeMap<String, String>,
}

/// The running server.
#[derive(Debug)]
pub struct HttpsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate to trust, PEM.
    pub cert_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    /// Serves `routes` (path → reply; others 404) on 127.0.0.1 with a new certificate.
    pub async fn start(routes: BTreeMap<String, Reply>) -> HttpsServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).expect("test certificate");
        let cert_pem = cert.cert.pem();
        let chain = vec![cert.cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).expect("tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (routes, log) = (Arc::new(routes), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, routes, log) = (acceptor.clone(), routes.clone(), log.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_one(tls, &routes, &log).await;
                    }
                });
            }
        });
        HttpsServer { addr, cert_pem, seen, task }
    }

    /// `https://127.0.0.1:PORT{path}`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Every request so far.
    #[must_use]
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    routes: &BTreeMap<String, Reply>,
    log: &Mutex<Vec<Seen>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split(' ').nth(1)).unwrap_or("/").to_owned();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    if let Ok(mut l) = log.lock() {
        l.push(Seen { path: path.clone(), headers });
    }
    let reply = routes.get(&path).cloned().unwrap_or(Reply { status: 404, headers: Vec::new(), body: b"not found".to_vec() });
    let mut out = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", reply.status, reply.body.len());
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes()).await;
    let _ = s.write_all(&reply.body).await;
    let _ = s.shutdown().await;
}
