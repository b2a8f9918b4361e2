//! The shell WebSocket protocol of Lambda MicroVMs (reference §E.4), both sides.
//!
//! The service speaks it on `wss://<endpoint>/` after a `SHELL_INGRESS` token:
//! the server sends one text frame `{"type":"session_init","session_id":…}` first;
//! afterwards binary frames carry raw pty bytes both ways; the client may send one
//! kind of text frame, `{"type":"resize","cols":…,"rows":…}`; any other client text
//! frame is typed into the shell as keystrokes; the server closes with 1000
//! `shell exited` when the shell ends, and everything else is a lost connection.
//!
//! [`ShellClient`] and [`ShellServer`] are push state machines: feed received frames
//! with `handle_*`, then drain `poll_transmit` (frames to send) and `poll_event`
//! (what happened) until both return `None`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Close code the service sends when the shell process ended.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close reason the service sends with [`CLOSE_NORMAL`] when the shell process ended.
pub const CLOSE_REASON_SHELL_EXITED: &str = "shell exited";
/// The WebSocket subprotocol marker the service expects first.
pub const SUBPROTOCOL_MARKER: &str = "lambda-microvms";
/// Prefix of the subprotocol that carries the auth token (browser form).
pub const SUBPROTOCOL_AUTH_PREFIX: &str = "lambda-microvms.authentication.";
/// Header that carries the auth token on the upgrade request (the form whim sends).
pub const AUTH_HEADER: &str = "X-aws-proxy-auth";

/// A frame to put on the wire. Text frames can only be made by [`Frame::resize`]
/// and by the server's session announcement, so a client cannot type JSON by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Raw pty bytes.
    Binary(Vec<u8>),
    /// A control message (resize from the client, session_init from the server).
    Text(String),
    /// A close frame with code and reason.
    Close(u16, String),
}

/// Errors of the shell protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A resize to zero columns or rows; the service would leave the pty unusable.
    #[error("terminal size {cols}x{rows} is invalid: both must be at least 1")]
    ZeroSize {
        /// Requested columns.
        cols: u16,
        /// Requested rows.
        rows: u16,
    },
    /// The session is closed; nothing more can be sent.
    #[error("the shell session is closed")]
    Closed,
}

/// How a shell session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseKind {
    /// The remote shell process exited (close 1000 `shell exited`).
    ShellExited,
    /// The connection was lost or refused (1006, any other code, or no close frame).
    Lost {
        /// The close code, if a close frame arrived.
        code: Option<u16>,
        /// The close reason, if any.
        reason: String,
    },
}

/// Classifies a close frame (or its absence) the way the service means it.
#[must_use]
pub fn classify_close(code: Option<u16>, reason: &str) -> CloseKind {
    if code == Some(CLOSE_NORMAL) && reason == CLOSE_REASON_SHELL_EXITED {
        CloseKind::ShellExited
    } else {
        CloseKind::Lost { code, reason: reason.to_owned() }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    SessionInit { session_id: String },
    Resize { cols: u16, rows: u16 },
}

impl Frame {
    /// The resize control frame; zero sizes are refused.
    pub fn resize(cols: u16, rows: u16) -> Result<Frame, ShellError> {
        if cols == 0 || rows == 0 {
            return Err(ShellError::ZeroSize { cols, rows });
        }
        Ok(Frame::Text(to_json(&Control::Resize { cols, rows })))
    }
}

fn to_json(c: &Control) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// What the client side learns from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server announced the session; input may flow.
    SessionStarted {
        /// The service's session id.
        session_id: String,
    },
    /// Bytes the pty produced.
    Output(Vec<u8>),
    /// The session ended.
    Closed(CloseKind),
}

/// The client side of one shell session.
#[derive(Debug, Default)]
pub struct ShellClient {
    started: bool,
    closed: bool,
    held: VecDeque<Frame>,
    transmit: VecDeque<Frame>,
    events: VecDeque<ClientEvent>,
}

impl ShellClient {
    /// A new session, waiting for `session_init`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// True once `session_init` arrived.
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// True once the session closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Queues keystrokes / raw bytes for the shell. Held until `session_init`.
    pub fn send_input(&mut self, bytes: &[u8]) -> Result<(), ShellError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.queue(Frame::Binary(bytes.to_vec()))
    }

    /// Queues a resize. Zero sizes are refused.
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<(), ShellError> {
        let frame = Frame::resize(cols, rows)?;
        self.queue(frame)
    }

    /// Queues a normal close (the local side is done).
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.held.clear();
            self.transmit.push_back(Frame::Close(CLOSE_NORMAL, String::new()));
        }
    }

    fn queue(&mut self, frame: Frame) -> Result<(), ShellError> {
        if self.closed {
            return Err(ShellError::Closed);
        }
        if self.started {
            self.transmit.push_back(frame);
        } else {
            self.held.push_back(frame);
        }
        Ok(())
    }

    /// Call after: a text frame arrived.
    pub fn handle_text(&mut self, text: &str) {
        match serde_json::from_str::<Control>(text) {
            Ok(Control::SessionInit { session_id }) if !self.started => {
                self.started = true;
                self.transmit.extend(self.held.drain(..));
                self.events.push_back(ClientEvent::SessionStarted { session_id });
            }
            // The service sends no other text frames; treat unknown ones as output.
            _ => self.handle_binary(text.as_bytes()),
        }
    }

    /// Call after: a binary frame arrived.
    pub fn handle_binary(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !self.closed {
            self.events.push_back(ClientEvent::Output(bytes.to_vec()));
        }
    }

    /// Call after: a close frame arrived (`code` None when it had no payload),
    /// or the transport ended without one (`handle_close(None, "")`).
    pub fn handle_close(&mut self, code: Option<u16>, reason: &str) {
        let was_closed = self.closed;
        self.closed = true;
        self.held.clear();
        if !was_closed || !self.events.iter().any(|e| matches!(e, ClientEvent::Closed(_))) {
            self.events.push_back(ClientEvent::Closed(classify_close(code, reason)));
        }
    }

    /// Next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// Next thing that happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Drains the events into what an interactive driver acts on: pty output to show and,
    /// when the session is over, `Ok` if the remote shell exited or why it was lost.
    #[must_use]
    pub fn poll_progress(&mut self) -> (Vec<u8>, Option<Result<(), CloseKind>>) {
        let mut out = Vec::new();
        while let Some(ev) = self.events.pop_front() {
            match ev {
                ClientEvent::Output(b) => out.extend_from_slice(&b),
                ClientEvent::Closed(CloseKind::ShellExited) => return (out, Some(Ok(()))),
                ClientEvent::Closed(k) => return (out, Some(Err(k))),
                ClientEvent::SessionStarted { .. } => {}
            }
        }
        (out, None)
    }
}

/// What the server side learns from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Bytes to write to the pty (binary frames, and text frames that are not a resize).
    Input(Vec<u8>),
    /// Apply this window size to the pty.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The client closed or went away; tear the shell down.
    ClientGone,
}

/// The server side of one shell session (the emulator's).
#[derive(Debug)]
pub struct ShellServer {
    transmit: VecDeque<Frame>,
    events: VecDeque<ServerEvent>,
    closed: bool,
}

impl ShellServer {
    /// A new session; the first frame to transmit is `session_init`.
    #[must_use]
    pub fn new(session_id: &str) -> Self {
        let init = Control::SessionInit { session_id: session_id.to_owned() };
        let transmit = VecDeque::from([Frame::Text(to_json(&init))]);
        Self { transmit, events: VecDeque::new(), closed: false }
    }

    /// Call after: a text frame arrived. A well-formed resize resizes; anything else
    /// is typed into the shell, as the service does.
    pub fn handle_text(&mut self, text: &str) {
        match serde_json::from_str::<Control>(text) {
            Ok(Control::Resize { cols, rows }) => self.events.push_back(ServerEvent::Resize { cols, rows }),
            _ => self.handle_binary(text.as_bytes()),
        }
    }

    /// Call after: a binary frame arrived.
    pub fn handle_binary(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !self.closed {
            self.events.push_back(ServerEvent::Input(bytes.to_vec()));
        }
    }

    /// Call after: the client sent a close frame or the transport ended.
    pub fn handle_client_close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(ServerEvent::ClientGone);
        }
    }

    /// Call after: the pty produced bytes.
    pub fn handle_pty_output(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !self.closed {
            self.transmit.push_back(Frame::Binary(bytes.to_vec()));
        }
    }

    /// Call after: the shell process exited. Queues close 1000 `shell exited`.
    pub fn handle_shell_exit(&mut self) {
        if !self.closed {
            self.closed = true;
            self.transmit.push_back(Frame::Close(CLOSE_NORMAL, CLOSE_REASON_SHELL_EXITED.to_owned()));
        }
    }

    /// Next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// Next thing that happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}

/// Feeds a received frame into a client (text, binary, or close / end of transport).
pub fn feed(client: &mut ShellClient, frame: crate::session::Incoming<'_>) {
    use crate::session::Incoming;
    match frame {
        Incoming::Text(t) => client.handle_text(t),
        Incoming::Binary(b) => client.handle_binary(b),
        Incoming::Close(code, reason) => client.handle_close(code, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_client(c: &mut ShellClient) -> (Vec<Frame>, Vec<ClientEvent>) {
        let tx = std::iter::from_fn(|| c.poll_transmit()).collect();
        let ev = std::iter::from_fn(|| c.poll_event()).collect();
        (tx, ev)
    }

    #[test]
    fn resize_is_the_recorded_json_and_refuses_zero() {
        assert_eq!(Frame::resize(100, 30).unwrap(), Frame::Text(r#"{"type":"resize","cols":100,"rows":30}"#.into()));
        assert_eq!(Frame::resize(0, 30), Err(ShellError::ZeroSize { cols: 0, rows: 30 }));
        assert_eq!(Frame::resize(80, 0), Err(ShellError::ZeroSize { cols: 80, rows: 0 }));
    }

    #[test]
    fn input_is_held_until_session_init() {
        let mut c = ShellClient::new();
        c.resize(80, 24).unwrap();
        c.send_input(b"ls\n").unwrap();
        assert_eq!(drain_client(&mut c).0, vec![]);
        c.handle_text(r#"{"type":"session_init","session_id":"abc"}"#);
        let (tx, ev) = drain_client(&mut c);
        assert_eq!(tx, vec![Frame::resize(80, 24).unwrap(), Frame::Binary(b"ls\n".to_vec())]);
        assert_eq!(ev, vec![ClientEvent::SessionStarted { session_id: "abc".into() }]);
    }

    #[test]
    fn progress_reports_exit_and_loss() {
        let mut c = ShellClient::new();
        c.handle_text(r#"{"type":"session_init","session_id":"s"}"#);
        c.handle_binary(b"hi");
        c.handle_close(Some(CLOSE_NORMAL), CLOSE_REASON_SHELL_EXITED);
        assert_eq!(c.poll_progress(), (b"hi".to_vec(), Some(Ok(()))));
        let mut c = ShellClient::new();
        c.handle_close(None, "");
        assert_eq!(c.poll_progress(), (Vec::new(), Some(Err(CloseKind::Lost { code: None, reason: String::new() }))));
    }

    #[test]
    fn close_classification() {
        assert_eq!(classify_close(Some(1000), "shell exited"), CloseKind::ShellExited);
        assert!(matches!(classify_close(Some(1006), ""), CloseKind::Lost { code: Some(1006), .. }));
        assert!(matches!(classify_close(Some(1000), "bye"), CloseKind::Lost { .. }));
        assert!(matches!(classify_close(None, ""), CloseKind::Lost { code: None, .. }));
    }

    #[test]
    fn server_announces_then_types_unknown_text() {
        let mut s = ShellServer::new("s-1");
        assert_eq!(s.poll_transmit(), Some(Frame::Text(r#"{"type":"session_init","session_id":"s-1"}"#.into())));
        s.handle_text(r#"{"type":"resize","cols":150,"rows":50}"#);
        s.handle_text(r#"{"type":"window_size","cols":1}"#);
        s.handle_text("not json");
        s.handle_binary(b"\x03");
        let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(
            ev,
            vec![
                ServerEvent::Resize { cols: 150, rows: 50 },
                ServerEvent::Input(br#"{"type":"window_size","cols":1}"#.to_vec()),
                ServerEvent::Input(b"not json".to_vec()),
                ServerEvent::Input(b"\x03".to_vec()),
            ]
        );
        s.handle_shell_exit();
        assert_eq!(s.poll_transmit(), Some(Frame::Close(1000, "shell exited".into())));
    }

    #[test]
    fn client_and_server_talk() {
        let mut s = ShellServer::new("x");
        let mut c = ShellClient::new();
        c.resize(10, 5).unwrap();
        c.send_input(b"hi").unwrap();
        while let Some(f) = s.poll_transmit() {
            if let Frame::Text(t) = f {
                c.handle_text(&t)
            }
        }
        while let Some(f) = c.poll_transmit() {
            match f {
                Frame::Text(t) => s.handle_text(&t),
                Frame::Binary(b) => s.handle_binary(&b),
                Frame::Close(..) => s.handle_client_close(),
            }
        }
        let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(ev, vec![ServerEvent::Resize { cols: 10, rows: 5 }, ServerEvent::Input(b"hi".to_vec())]);
    }
}

#[cfg(test)]
mod split_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// However the service splits pty bytes into frames, the client sees the same bytes.
        #[test]
        fn any_framing_gives_the_same_output(bytes in proptest::collection::vec(any::<u8>(), 0..300), cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
            let mut c = ShellClient::new();
            c.handle_text(r#"{"type":"session_init","session_id":"s"}"#);
            let mut points: Vec<usize> = cuts.iter().map(|x| x % (bytes.len() + 1)).collect();
            points.sort_unstable();
            points.push(bytes.len());
            let mut last = 0;
            for p in points {
                c.handle_binary(&bytes[last..p]);
                last = p;
            }
            c.handle_close(Some(1000), "shell exited");
            let mut out = Vec::new();
            let mut closed = None;
            while let Some(e) = c.poll_event() {
                match e {
                    ClientEvent::Output(b) => out.extend(b),
                    ClientEvent::Closed(k) => closed = Some(k),
                    ClientEvent::SessionStarted { .. } => {}
                }
            }
            prop_assert_eq!(out, bytes);
            prop_assert_eq!(closed, Some(CloseKind::ShellExited));
        }
    }
}
