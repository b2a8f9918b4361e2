//! Connecting the shell WebSocket on async-net (TLS by futures-rustls unless the peer is
//! loopback).

use std::net::SocketAddr;

use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncRead, AsyncWrite};
use whim_core::endpoint::{self, Secret};

use crate::Error;

/// A byte stream the WebSocket runs on: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// An open shell WebSocket.
pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

pub(crate) use whim_sdk::ws::{incoming, send_all};

/// Opens the shell WebSocket: token only in headers, TLS unless the peer is loopback.
pub(crate) async fn connect(url: &str, headers: &[(String, Secret)], via: Option<SocketAddr>) -> Result<Ws, Error> {
    let t = endpoint::transport(url, via)?;
    let req = whim_sdk::ws::request(url, headers)?;
    let host = req.uri().host().unwrap_or_default().to_owned();
    let tcp = match t.via {
        Some(addr) => TcpStream::connect(addr).await?,
        None => TcpStream::connect((host.as_str(), req.uri().port_u16().unwrap_or(443))).await?,
    };
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = if t.tls { Box::new(tls(host, tcp).await?) } else { Box::new(tcp) };
    let (ws, _) = async_tungstenite::client_async(req, io).await.map_err(|e| whim_sdk::ws::handshake_error(&e))?;
    Ok(ws)
}

async fn tls(host: String, tcp: TcpStream) -> Result<futures_rustls::client::TlsStream<TcpStream>, Error> {
    let name = futures_rustls::pki_types::ServerName::try_from(host).map_err(|e| Error::ConnectionClosed(format!("bad host name: {e}")))?;
    Ok(whim_http_async_io::TLS.connect(name, tcp).await?)
}
