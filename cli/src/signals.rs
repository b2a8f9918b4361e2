//! The signals that end a command: SIGINT, SIGTERM, SIGHUP.

use tokio::signal::unix::{SignalKind, signal};

/// Waits for the first terminating signal; returns the exit code it implies
/// (130 for SIGINT, 128+n otherwise).
pub struct Terminators {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Terminators {
    /// Installs the handlers (from now on these signals no longer kill the process).
    pub fn install() -> std::io::Result<Terminators> {
        Ok(Terminators {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next terminating signal's exit code.
    pub async fn recv(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
            _ = self.hup.recv() => 129,
        }
    }
}
