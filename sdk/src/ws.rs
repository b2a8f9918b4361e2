//! The shell WebSocket as every runtime's tungstenite flavour sees it: the upgrade request
//! (token only in headers, marked sensitive), and conversions between tungstenite messages
//! and core's frames.

use futures_util::{Sink, SinkExt as _};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::handshake::client::Request;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::{CloseFrame, Message, frame::coding::CloseCode};
use whim_core::endpoint::Secret;
use whim_core::session::Incoming;
use whim_core::shell::{Frame, SUBPROTOCOL_MARKER};

use crate::Error;

/// The upgrade request for `url` carrying every header of the token map.
pub fn request(url: &str, headers: &[(String, Secret)]) -> Result<Request, Error> {
    let mut req = url.into_client_request().map_err(|e| Error::ConnectionClosed(format!("bad endpoint URL: {e}")))?;
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL_MARKER));
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::ConnectionClosed("the token map held an invalid header name".into()))?;
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| Error::ConnectionClosed("the token held invalid bytes".into()))?;
        v.set_sensitive(true);
        h.insert(name, v);
    }
    Ok(req)
}

/// A handshake failure as an error that never echoes request headers.
#[must_use]
pub fn handshake_error(e: &tungstenite::Error) -> Error {
    Error::ConnectionClosed(match e {
        tungstenite::Error::Http(resp) => {
            format!("the endpoint refused the shell connection with HTTP {}", resp.status())
        }
        other => other.to_string(),
    })
}

/// A failed blocking handshake as an error (see [`handshake_error`]).
#[must_use]
pub fn blocking_handshake_error<S: std::io::Read + std::io::Write>(
    e: tungstenite::HandshakeError<tungstenite::ClientHandshake<S>>,
) -> Error {
    match e {
        tungstenite::HandshakeError::Failure(e) => handshake_error(&e),
        tungstenite::HandshakeError::Interrupted(_) => Error::ConnectionClosed("the shell handshake was interrupted".into()),
    }
}

/// Core's frame as a tungstenite message.
#[must_use]
pub fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Binary(b) => Message::Binary(b.into()),
        Frame::Text(t) => Message::Text(t.into()),
        Frame::Close(code, reason) => Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })),
    }
}

/// Hands a received message (`None`: the stream ended) to `f` as core's [`Incoming`];
/// pings and pongs are not handed on.
pub fn incoming(msg: Option<Result<Message, tungstenite::Error>>, f: impl FnOnce(Incoming<'_>)) {
    match &msg {
        Some(Ok(Message::Binary(b))) => f(Incoming::Binary(b)),
        Some(Ok(Message::Text(t))) => f(Incoming::Text(t)),
        Some(Ok(Message::Close(Some(c)))) => f(Incoming::Close(Some(c.code.into()), &c.reason)),
        Some(Ok(Message::Close(None)) | Err(_)) | None => f(Incoming::Close(None, "")),
        Some(Ok(_)) => {}
    }
}

/// Sends every frame `next` yields on an async WebSocket sink, then flushes.
pub async fn send_all<S>(ws: &mut S, mut next: impl FnMut() -> Option<Frame>) -> Result<(), Error>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
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
