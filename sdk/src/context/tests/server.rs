//! A loopback HTTPS server for the download tests: a throwaway CA, one leaf certificate for
//! `127.0.0.1` and `localhost`, canned replies, and a record of every request's headers.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The test PKI: the CA to trust and the server's TLS config.
pub struct Pki {
    pub ca_pem: Vec<u8>,
    config: Arc<ServerConfig>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "whim test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Pki { ca_pem: ca_cert.pem().into_bytes(), config: Arc::new(config) }
    }
}

/// What the server answers to a request path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 302 to this Location.
    Redirect(String),
    /// This status with an empty body.
    Status(u16),
    /// 200 announcing a Content-Length of this many bytes (then closing early).
    Announce(u64),
}

/// One request as received: the path and the headers (names lowercased).
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A running server on 127.0.0.1 (its threads end with the test process).
pub struct Server {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn start(pki: &Pki, handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (config, record, handler): (_, _, Handler) = (pki.config.clone(), seen.clone(), Arc::new(handler));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, record, handler) = (config.clone(), record.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, config, &record, &handler));
            }
        });
        Server { port, seen }
    }

    /// `https://{host}:{port}{path}`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, config: Arc<ServerConfig>, record: &Mutex<Vec<Seen>>, handler: &Handler) {
    let Ok(conn) = ServerConnection::new(config) else { return };
    let mut tls = StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    drop(reader);
    record.lock().unwrap().push(Seen { path: path.clone(), headers });
    let (head, body) = match handler(&path) {
        Reply::Body(b) => (format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", b.len()), b),
        Reply::Redirect(to) => (format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n"), Vec::new()),
        Reply::Status(s) => (format!("HTTP/1.1 {s} Nope\r\nContent-Length: 0\r\n"), Vec::new()),
        Reply::Announce(n) => (format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n"), Vec::new()),
    };
    let _ = tls.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
    let _ = tls.write_all(&body);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
