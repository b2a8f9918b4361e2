//! The shell WebSocket on `std::net`: tungstenite's synchronous client, TLS unless the peer
//! is loopback, reads bounded by socket timeouts so one thread can also serve the caller.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::protocol::Message;
use tungstenite::stream::MaybeTlsStream;
use whim_core::endpoint::{self, Secret};
use whim_core::shell::Frame;

use crate::Error;

/// How long one wait for the socket lasts before the caller's input is looked at again.
pub(crate) const POLL: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An open shell WebSocket and a handle on its socket (for the timeouts).
#[derive(Debug)]
pub(crate) struct Ws {
    ws: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    tcp: TcpStream,
}

/// Opens the shell WebSocket: token only in headers, TLS unless the peer is loopback.
pub(crate) fn connect(url: &str, headers: &[(String, Secret)], via: Option<SocketAddr>) -> Result<Ws, Error> {
    let t = endpoint::transport(url, via)?;
    let req = whim_sdk::ws::request(url, headers)?;
    let addr = match t.via {
        Some(addr) => addr,
        None => {
            let host = req.uri().host().unwrap_or_default().to_owned();
            let port = req.uri().port_u16().unwrap_or(443);
            (host.as_str(), port).to_socket_addrs()?.next().ok_or_else(|| Error::ConnectionClosed(format!("cannot resolve {host}")))?
        }
    };
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    tcp.set_nodelay(true)?;
    let handle = tcp.try_clone()?;
    let r = if t.tls {
        tungstenite::client_tls_with_config(req, tcp, None, None).map(|(ws, _)| ws)
    } else {
        tungstenite::client::client_with_config(req, MaybeTlsStream::Plain(tcp), None).map(|(ws, _)| ws)
    };
    Ok(Ws { ws: r.map_err(whim_sdk::ws::blocking_handshake_error)?, tcp: handle })
}

impl Ws {
    /// Sends every frame `next` yields, then flushes.
    pub(crate) fn send_all(&mut self, mut next: impl FnMut() -> Option<Frame>) -> Result<(), Error> {
        self.tcp.set_nonblocking(false)?;
        while let Some(f) = next() {
            self.ws.write(whim_sdk::ws::to_message(f)).map_err(|e| Error::ConnectionClosed(e.to_string()))?;
        }
        self.ws.flush().map_err(|e| Error::ConnectionClosed(e.to_string()))
    }

    /// The next message: `None` when nothing came within `wait` (immediately when zero).
    pub(crate) fn recv(&mut self, wait: Duration) -> Option<Result<Message, tungstenite::Error>> {
        let timeout = Some(wait).filter(|w| !w.is_zero());
        if let Err(e) = self.tcp.set_nonblocking(timeout.is_none()).and_then(|()| self.tcp.set_read_timeout(timeout)) {
            return Some(Err(e.into()));
        }
        match self.ws.read() {
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
            other => Some(other),
        }
    }

    /// Sends a close frame (best effort; tungstenite flushes it).
    pub(crate) fn close(&mut self) {
        let _ = self.tcp.set_nonblocking(false);
        let _ = self.ws.close(None);
    }
}
