//! One shell WebSocket session (reference §E.4): `whim_core::shell::ShellServer` drives the
//! protocol; this file moves bytes between it, the pty and the socket.
//!
//! pty output goes out as soon as it is read (chunks of up to 64 KiB, no batching delay).
//! Client input is written to the pty without ever blocking pty reads (no deadlock when both
//! directions are full); input is only read from the socket while less than [`MAX_PENDING_INPUT`]
//! waits for the pty. When the shell exits the remaining output is flushed, then close 1000
//! `shell exited`; when the client goes away the pty is closed, which hangs the shell up.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use whim_core::shell::{Frame, ServerEvent, ShellServer};

use crate::sandbox::{Shell, ShellControl, ShellReader, ShellWriter};
use crate::state::vm::Microvm;

/// Largest pty read, and so the largest binary frame.
const READ_CHUNK: usize = 64 * 1024;
/// Input waiting for the pty beyond which the socket is not read.
const MAX_PENDING_INPUT: usize = 1024 * 1024;
/// After the shell exited: how long to wait for more pty output before closing.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// After the shell exited: the longest time spent relaying output of processes it left behind.
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// After sending the close frame: how long to wait for the client's.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type Tx = SplitSink<WebSocket, Message>;
type Rx = SplitStream<WebSocket>;

/// The session's moving parts.
struct Session {
    server: ShellServer,
    tx: Tx,
    rx: Rx,
    reader: ShellReader,
    writer: ShellWriter,
    control: ShellControl,
    pending: Vec<u8>,
    activity: Option<Arc<Microvm>>,
    cut: tokio::sync::watch::Receiver<u64>,
}

/// How the main loop ended.
enum End {
    ShellExited,
    PtyClosed,
    ClientGone,
    /// The connection is to be dropped without a close frame.
    Cut,
}

/// Serves one WebSocket as one new shell; `activity` is touched on traffic (idle timer).
pub(crate) async fn serve(socket: WebSocket, shell: Shell, activity: Option<Arc<Microvm>>, cut: tokio::sync::watch::Receiver<u64>) {
    let session_id = uuid::Uuid::new_v4().to_string();
    let (reader, writer, control) = shell.split();
    let (tx, rx) = socket.split();
    let server = ShellServer::new(&session_id);
    let mut s = Session { server, tx, rx, reader, writer, control, pending: Vec::new(), activity, cut };
    tracing::debug!(session = %session_id, "shell session opened");
    let end = s.run().await;
    match end {
        End::ClientGone => {
            tracing::debug!(session = %session_id, "client left: hanging up the shell");
            // Sends the close reply tungstenite queued, if the client is still there to read it.
            let _ = tokio::time::timeout(CLOSE_WAIT, s.tx.close()).await;
        }
        End::ShellExited | End::PtyClosed => s.finish().await,
        End::Cut => tracing::debug!(session = %session_id, "connection cut"),
    }
    // Dropping the session closes the pty master: the shell (if still there) gets SIGHUP.
}

impl Session {
    async fn run(&mut self) -> End {
        if self.flush().await.is_err() {
            return End::ClientGone;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let accept_input = self.pending.len() < MAX_PENDING_INPUT;
            let step = tokio::select! {
                read = self.reader.read(&mut buf) => self.on_pty(read, &buf).await,
                msg = self.rx.next(), if accept_input => self.on_client(msg).await,
                written = self.writer.write(&self.pending), if !self.pending.is_empty() => self.on_written(written),
                _ = self.control.wait_exit() => Some(End::ShellExited),
                _ = self.cut.changed() => Some(End::Cut),
            };
            if let Some(end) = step {
                return end;
            }
        }
    }

    async fn on_pty(&mut self, read: std::io::Result<usize>, buf: &[u8]) -> Option<End> {
        match read {
            Ok(0) | Err(_) => Some(End::PtyClosed),
            Ok(n) => {
                self.touch();
                self.server.handle_pty_output(&buf[..n]);
                self.flush().await.err()
            }
        }
    }

    async fn on_client(&mut self, msg: Option<Result<Message, axum::Error>>) -> Option<End> {
        self.touch();
        match msg {
            Some(Ok(Message::Binary(bytes))) => self.server.handle_binary(&bytes),
            Some(Ok(Message::Text(text))) => self.server.handle_text(text.as_str()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_)) | Err(_)) | None => self.server.handle_client_close(),
        }
        while let Some(event) = self.server.poll_event() {
            match event {
                ServerEvent::Input(bytes) => self.pending.extend_from_slice(&bytes),
                ServerEvent::Resize { cols, rows } => {
                    if let Err(e) = self.control.resize(cols, rows) {
                        tracing::debug!("resize to {cols}x{rows} failed: {e}");
                    }
                }
                ServerEvent::ClientGone => return Some(End::ClientGone),
            }
        }
        self.flush().await.err()
    }

    fn on_written(&mut self, written: std::io::Result<usize>) -> Option<End> {
        match written {
            Ok(n) => {
                self.pending.drain(..n);
                None
            }
            // The pty is gone; output reading will notice and end the session.
            Err(_) => {
                self.pending.clear();
                None
            }
        }
    }

    /// The shell ended: send what the pty still holds, then close 1000 `shell exited`.
    async fn finish(&mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        let deadline = tokio::time::Instant::now() + DRAIN_MAX;
        while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_QUIET, self.reader.read(&mut buf)).await {
            if n == 0 || tokio::time::Instant::now() > deadline {
                break;
            }
            self.server.handle_pty_output(&buf[..n]);
            if self.flush().await.is_err() {
                return;
            }
        }
        self.server.handle_shell_exit();
        if self.flush().await.is_err() {
            return;
        }
        let wait_close = async {
            while let Some(Ok(msg)) = self.rx.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, wait_close).await;
    }

    /// Sends every frame the protocol queued; `Err` when the client is gone.
    async fn flush(&mut self) -> Result<(), End> {
        let mut queued = false;
        while let Some(frame) = self.server.poll_transmit() {
            self.tx.feed(to_message(frame)).await.map_err(|_| End::ClientGone)?;
            queued = true;
        }
        if queued {
            self.tx.flush().await.map_err(|_| End::ClientGone)?;
        }
        Ok(())
    }

    fn touch(&self) {
        if let Some(vm) = &self.activity {
            vm.touch();
        }
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
    }
}
