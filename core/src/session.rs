//! One shell WebSocket used for commands: [`ShellClient`] and [`PtyExec`] wired together.
//!
//! The adapter only moves frames: every received frame goes to [`ExecSession::handle_frame`],
//! every [`ExecSession::poll_transmit`] frame goes on the wire, and
//! [`ExecSession::poll_event`] says what the caller should see.

use std::collections::VecDeque;

use crate::exec::{Command, ExecError, ExecEvent, ExitStatus, Nonce, PtyExec, TIMED_OUT};
use crate::shell::{ClientEvent, CloseKind, Frame, ShellClient, ShellError};

/// A received WebSocket frame, as the adapter's library hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame.
    Binary(&'a [u8]),
    /// A close frame (`None` code when it had no payload) or, with `(None, "")`,
    /// the end of the transport.
    Close(Option<u16>, &'a str),
}

/// What the caller of an exec learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Command output, exact bytes.
    Output(Vec<u8>),
    /// The command ended with this status.
    Exited(ExitStatus),
    /// The session is ready for another command.
    Idle,
    /// The connection ended.
    Closed(CloseKind),
}

/// Why a command ended without its exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecInterrupted {
    /// The connection ended first.
    #[error("the connection ended before the command did: {0:?}")]
    Closed(CloseKind),
    /// The remote output broke the framing.
    #[error(transparent)]
    Framing(ExecError),
    /// The shell went idle without reporting a status.
    #[error("the remote shell reported no exit status")]
    NoStatus,
    /// The command's timeout expired: it and its process group were killed.
    #[error("the command timed out after {}s and was killed", .0.as_secs())]
    TimedOut(std::time::Duration),
}

/// Commands over one shell session.
#[derive(Debug)]
pub struct ExecSession {
    client: ShellClient,
    exec: PtyExec,
    events: VecDeque<SessionEvent>,
    error: Option<ExecError>,
    exited: Option<ExitStatus>,
    timeout: Option<std::time::Duration>,
}

impl ExecSession {
    /// A session that bootstraps as soon as `session_init` arrives. `cols`/`rows`
    /// is the pty size to set first (the service starts at 0x0).
    pub fn new(boot_nonce: Nonce, cols: u16, rows: u16) -> Result<Self, ShellError> {
        let mut client = ShellClient::new();
        client.resize(cols, rows)?;
        let mut s = Self { client, exec: PtyExec::new(boot_nonce), events: VecDeque::new(), error: None, exited: None, timeout: None };
        s.pump();
        Ok(s)
    }

    /// Feeds a received frame.
    pub fn handle_frame(&mut self, frame: Incoming<'_>) {
        crate::shell::feed(&mut self.client, frame);
        self.pump();
    }

    /// Starts a command; `nonce` MUST be fresh.
    pub fn start(&mut self, cmd: Command, nonce: Nonce) -> Result<(), ExecError> {
        let timeout = cmd.timeout();
        self.exec.start(cmd, nonce)?;
        self.timeout = timeout;
        self.pump();
        Ok(())
    }

    /// Standard input for the running command.
    pub fn write_stdin(&mut self, data: &[u8]) {
        self.exec.write_stdin(data);
        self.pump();
    }

    /// What one read(2) of the caller's input returned: data, or at EOF (empty) the end of
    /// standard input. After the end [`ExecSession::wants_stdin`] is false.
    pub fn feed_stdin(&mut self, read: &[u8]) {
        if read.is_empty() { self.close_stdin() } else { self.write_stdin(read) }
    }

    /// End of standard input.
    pub fn close_stdin(&mut self) {
        self.exec.close_stdin();
        self.pump();
    }

    /// True while the running command takes input.
    #[must_use]
    pub fn wants_stdin(&self) -> bool {
        self.exec.wants_stdin()
    }

    /// Closes the session from our side.
    pub fn close(&mut self) {
        self.client.close();
    }

    /// A framing error, once; the session is unusable afterwards.
    pub fn take_error(&mut self) -> Option<ExecError> {
        self.error.take()
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.client.poll_event() {
                progressed = true;
                match ev {
                    ClientEvent::Output(b) => {
                        if let Err(e) = self.exec.handle_pty_output(&b) {
                            self.error.get_or_insert(e);
                        }
                    }
                    ClientEvent::Closed(k) => self.events.push_back(SessionEvent::Closed(k)),
                    ClientEvent::SessionStarted { .. } => {}
                }
            }
            while let Some(ev) = self.exec.poll_event() {
                progressed = true;
                match ev {
                    ExecEvent::Transmit(b) => {
                        let _ = self.client.send_input(&b);
                    }
                    ExecEvent::Output(b) => self.events.push_back(SessionEvent::Output(b)),
                    ExecEvent::Exited(s) => self.events.push_back(SessionEvent::Exited(s)),
                    ExecEvent::Idle => self.events.push_back(SessionEvent::Idle),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.client.poll_transmit()
    }

    /// Next thing the caller should see.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Drains the events into what a driver acts on: the output to write, in order, and,
    /// once the command is over and the shell reads the next one, how it ended. Call after
    /// every input, instead of [`ExecSession::poll_event`].
    #[must_use]
    pub fn poll_progress(&mut self) -> (Vec<u8>, Option<Result<ExitStatus, ExecInterrupted>>) {
        let mut out = Vec::new();
        while let Some(ev) = self.events.pop_front() {
            match ev {
                SessionEvent::Output(b) => out.extend_from_slice(&b),
                SessionEvent::Exited(st) => self.exited = Some(st),
                SessionEvent::Idle => return (out, Some(self.ended())),
                SessionEvent::Closed(k) => return (out, Some(Err(ExecInterrupted::Closed(k)))),
            }
        }
        (out, self.error.take().map(|e| Err(ExecInterrupted::Framing(e))))
    }

    /// How the command that just finished ended.
    fn ended(&mut self) -> Result<ExitStatus, ExecInterrupted> {
        match (self.exited.take(), self.timeout.take()) {
            (None, _) => Err(ExecInterrupted::NoStatus),
            (Some(TIMED_OUT), Some(t)) => Err(ExecInterrupted::TimedOut(t)),
            (Some(status), _) => Ok(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Deframer;
    use std::time::Duration;

    #[test]
    fn bootstrap_waits_for_init_then_runs() {
        let (boot, n) = (Nonce([3; 16]), Nonce([4; 16]));
        let mut s = ExecSession::new(boot, 200, 50).unwrap();
        s.start(Command::new(vec![b"true".to_vec()], false).unwrap(), n).unwrap();
        assert_eq!(s.poll_transmit(), None, "nothing before session_init");
        s.handle_frame(Incoming::Text(r#"{"type":"session_init","session_id":"x"}"#));
        assert_eq!(s.poll_transmit(), Some(Frame::resize(200, 50).unwrap()));
        assert!(matches!(s.poll_transmit(), Some(Frame::Binary(b)) if b.starts_with(b" stty raw")));
        assert_eq!(s.poll_transmit(), None);
        let ready = format!("WHIM{}R", "03".repeat(16));
        s.handle_frame(Incoming::Binary(ready.as_bytes()));
        assert!(matches!(s.poll_transmit(), Some(Frame::Binary(b)) if b.ends_with(b"\n")));
        s.handle_frame(Incoming::Binary(&Deframer::encode(n, b"out", 5)));
        let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(ev, vec![SessionEvent::Output(b"out".to_vec()), SessionEvent::Exited(ExitStatus(5)), SessionEvent::Idle]);
        s.handle_frame(Incoming::Close(Some(1006), ""));
        assert!(matches!(s.poll_event(), Some(SessionEvent::Closed(CloseKind::Lost { .. }))));
    }

    #[test]
    fn progress_gives_output_then_the_end() {
        let (boot, n) = (Nonce([5; 16]), Nonce([6; 16]));
        let mut s = ExecSession::new(boot, 80, 24).unwrap();
        s.start(Command::new(vec![b"x".to_vec()], false).unwrap(), n).unwrap();
        s.handle_frame(Incoming::Text(r#"{"type":"session_init","session_id":"x"}"#));
        s.handle_frame(Incoming::Binary(format!("WHIM{}R", "05".repeat(16)).as_bytes()));
        let framed = Deframer::encode(n, b"a\nb", 3);
        let (head, tail) = framed.split_at(framed.len() - 3);
        s.handle_frame(Incoming::Binary(head));
        assert_eq!(s.poll_progress(), (b"a\nb".to_vec(), None));
        s.handle_frame(Incoming::Binary(tail));
        assert_eq!(s.poll_progress(), (Vec::new(), Some(Ok(ExitStatus(3)))));
        s.start(Command::new(vec![b"y".to_vec()], false).unwrap(), Nonce([7; 16])).unwrap();
        s.handle_frame(Incoming::Close(Some(1006), ""));
        let lost = CloseKind::Lost { code: Some(1006), reason: String::new() };
        assert_eq!(s.poll_progress(), (Vec::new(), Some(Err(ExecInterrupted::Closed(lost)))));
    }

    #[test]
    fn a_timed_out_command_is_reported_as_such() {
        let (boot, n) = (Nonce([8; 16]), Nonce([9; 16]));
        let mut s = ExecSession::new(boot, 80, 24).unwrap();
        let cmd = Command::new(vec![b"sleep".to_vec(), b"9".to_vec()], false).unwrap().with_timeout(Some(Duration::from_millis(1500)));
        assert_eq!(cmd.timeout(), Some(Duration::from_secs(2)), "rounded up to whole seconds");
        s.start(cmd, n).unwrap();
        s.handle_frame(Incoming::Text(r#"{"type":"session_init","session_id":"x"}"#));
        s.handle_frame(Incoming::Binary(format!("WHIM{}R", "08".repeat(16)).as_bytes()));
        let sent: Vec<u8> = std::iter::from_fn(|| s.poll_transmit())
            .filter_map(|f| match f {
                Frame::Binary(b) => Some(b),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(String::from_utf8_lossy(&sent).contains("timeout -k 2 2 $'sleep' $'9' 2>&3"), "{}", String::from_utf8_lossy(&sent));
        s.handle_frame(Incoming::Binary(&Deframer::encode(n, b"", 124)));
        assert_eq!(s.poll_progress(), (Vec::new(), Some(Err(ExecInterrupted::TimedOut(Duration::from_secs(2))))));
        s.start(Command::new(vec![b"sh".to_vec()], false).unwrap(), Nonce([10; 16])).unwrap();
        s.handle_frame(Incoming::Binary(&Deframer::encode(Nonce([10; 16]), b"", 124)));
        assert_eq!(s.poll_progress(), (Vec::new(), Some(Ok(ExitStatus(124)))), "124 without a timeout is the command's own");
    }
}
