//! Core's session progress as the runtime crates' results.

use whim_core::exec::ExitStatus;
use whim_core::session::{ExecInterrupted, ExecSession};
use whim_core::shell::ShellClient;

use crate::Error;

/// How an interactive shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellEnd {
    /// The remote shell exited.
    Exited,
    /// The caller's input ended (the user detached).
    Detached,
}

/// [`ExecSession::poll_progress`] with the end as whim's result.
pub fn exec_events(s: &mut ExecSession) -> (Vec<u8>, Option<Result<ExitStatus, Error>>) {
    let (out, end) = s.poll_progress();
    let end = end.map(|r| {
        r.map_err(|e| match e {
            ExecInterrupted::Closed(k) => Error::lost(&k),
            ExecInterrupted::Framing(e) => e.into(),
            ExecInterrupted::TimedOut(after) => Error::CommandTimedOut(after),
            other => Error::ConnectionClosed(other.to_string()),
        })
    });
    (out, end)
}

/// [`ShellClient::poll_progress`] with the end as whim's result.
pub fn shell_events(c: &mut ShellClient) -> (Vec<u8>, Option<Result<ShellEnd, Error>>) {
    let (out, end) = c.poll_progress();
    (out, end.map(|r| r.map(|()| ShellEnd::Exited).map_err(|k| Error::lost(&k))))
}
