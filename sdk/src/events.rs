//! What core's session machines report, turned into "write these bytes" and "it ended",
//! so the runtime crates' loops never match on protocol events.

use whim_core::exec::ExitStatus;
use whim_core::session::{ExecSession, SessionEvent};
use whim_core::shell::{ClientEvent, CloseKind, ShellClient};

use crate::Error;

/// How an interactive shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellEnd {
    /// The remote shell exited.
    Exited,
    /// The caller's input ended (the user detached).
    Detached,
}

/// Drains an exec session: output to write (in order) and, once the command is over and
/// the shell idle again, its status or the error that ended it.
pub fn exec_events(
    s: &mut ExecSession,
    status: &mut Option<ExitStatus>,
) -> (Vec<u8>, Option<Result<ExitStatus, Error>>) {
    let mut out = Vec::new();
    while let Some(ev) = s.poll_event() {
        match ev {
            SessionEvent::Output(b) => out.extend_from_slice(&b),
            SessionEvent::Exited(st) => *status = Some(st),
            SessionEvent::Idle => {
                let end = status.take().ok_or_else(|| Error::ConnectionClosed("no exit status".into()));
                return (out, Some(end));
            }
            SessionEvent::Closed(k) => return (out, Some(Err(Error::lost(&k)))),
        }
    }
    if let Some(e) = s.take_error() {
        return (out, Some(Err(e.into())));
    }
    (out, None)
}

/// Drains an interactive shell client: pty output to show and, when the session is over,
/// how it ended.
pub fn shell_events(c: &mut ShellClient) -> (Vec<u8>, Option<Result<ShellEnd, Error>>) {
    let mut out = Vec::new();
    while let Some(ev) = c.poll_event() {
        match ev {
            ClientEvent::Output(b) => out.extend_from_slice(&b),
            ClientEvent::Closed(CloseKind::ShellExited) => return (out, Some(Ok(ShellEnd::Exited))),
            ClientEvent::Closed(k) => return (out, Some(Err(Error::lost(&k)))),
            ClientEvent::SessionStarted { .. } => {}
        }
    }
    (out, None)
}
