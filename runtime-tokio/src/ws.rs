//! Connecting the shell WebSocket on tokio (TLS unless the peer is loopback).

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use whim_core::endpoint::{self, Secret};

use crate::Error;

/// An open shell WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) use whim_sdk::ws::{incoming, send_all};

/// Opens the shell WebSocket: token only in headers, TLS unless the peer is loopback.
pub(crate) async fn connect(url: &str, headers: &[(String, Secret)], via: Option<SocketAddr>) -> Result<Ws, Error> {
    let t = endpoint::transport(url, via)?;
    let req = whim_sdk::ws::request(url, headers)?;
    let ws = match t.via {
        Some(addr) => {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await
        }
        None => tokio_tungstenite::connect_async_tls_with_config(req, None, true, None).await,
    };
    ws.map(|(ws, _)| ws).map_err(|e| whim_sdk::ws::handshake_error(&e))
}

/// Receives the next message.
pub(crate) async fn recv(ws: &mut Ws) -> Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>> {
    futures_util::StreamExt::next(ws).await
}
