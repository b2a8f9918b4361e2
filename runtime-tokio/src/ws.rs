//! The shell WebSocket transport: connecting per core's transport rule and moving
//! frames between tungstenite and core's `ShellClient`.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, frame::coding::CloseCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use whim_core::endpoint::{self, Secret};
use whim_core::session::Incoming;
use whim_core::shell::{Frame, SUBPROTOCOL_MARKER};

use crate::Error;

/// An open shell WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the shell WebSocket: token only in headers, TLS unless the peer is loopback.
pub(crate) async fn connect(url: &str, headers: &[(String, Secret)], via: Option<SocketAddr>) -> Result<Ws, Error> {
    let t = endpoint::transport(url, via)?;
    let mut req = url.into_client_request().map_err(|e| Error::ConnectionClosed(format!("bad endpoint URL: {e}")))?;
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL_MARKER));
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::ConnectionClosed("the token map held an invalid header name".into()))?;
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| Error::ConnectionClosed("the token held invalid bytes".into()))?;
        v.set_sensitive(true);
        h.insert(name, v);
    }
    let ws = match t.via {
        Some(addr) => {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await.map(|(ws, _)| ws)
        }
        None => tokio_tungstenite::connect_async_tls_with_config(req, None, true, None).await.map(|(ws, _)| ws),
    };
    ws.map_err(|e| Error::ConnectionClosed(handshake_error(&e)))
}

/// Describes a handshake failure without echoing request headers.
fn handshake_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(resp) => format!("the endpoint refused the shell connection with HTTP {}", resp.status()),
        other => other.to_string(),
    }
}

/// Converts core's frame to a tungstenite message.
pub(crate) fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Binary(b) => Message::Binary(b.into()),
        Frame::Text(t) => Message::Text(t.into()),
        Frame::Close(code, reason) => Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })),
    }
}

/// Hands a received message (or the end of the stream) to `f` as core's [`Incoming`].
pub(crate) fn incoming<T>(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>, f: impl FnOnce(Incoming<'_>) -> T) -> Option<T> {
    match &msg {
        Some(Ok(Message::Binary(b))) => Some(f(Incoming::Binary(b))),
        Some(Ok(Message::Text(t))) => Some(f(Incoming::Text(t))),
        Some(Ok(Message::Close(Some(c)))) => Some(f(Incoming::Close(Some(c.code.into()), &c.reason))),
        Some(Ok(Message::Close(None))) | Some(Err(_)) | None => Some(f(Incoming::Close(None, ""))),
        Some(Ok(_)) => None,
    }
}

/// Sends queued frames from any core machine that has `poll_transmit`.
pub(crate) async fn send_all(ws: &mut Ws, mut next: impl FnMut() -> Option<Frame>) -> Result<(), Error> {
    let mut any = false;
    while let Some(f) = next() {
        ws.feed(to_message(f)).await.map_err(|e| Error::ConnectionClosed(e.to_string()))?;
        any = true;
    }
    if any {
        ws.flush().await.map_err(|e| Error::ConnectionClosed(e.to_string()))?;
    }
    Ok(())
}

/// Receives the next message.
pub(crate) async fn recv(ws: &mut Ws) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    ws.next().await
}
