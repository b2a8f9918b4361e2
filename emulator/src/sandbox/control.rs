//! The emulator's end of a VM's control socket, on tokio's reactor.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::proto::{self, Report, Request};

/// A nonblocking SOCK_SEQPACKET end, one packet per message.
#[derive(Debug)]
pub(crate) struct Control {
    sock: AsyncFd<OwnedFd>,
}

/// What arrived on the socket.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A report, with the passed fd if any.
    Report(Report, Option<OwnedFd>),
    /// A packet that does not parse.
    Garbage(String),
    /// The other side closed (every helper process and init are gone).
    Closed,
}

impl Control {
    /// Takes over `sock` (made nonblocking).
    pub(crate) fn new(sock: OwnedFd) -> io::Result<Self> {
        let flags = OFlag::from_bits_truncate(fcntl(&sock, FcntlArg::F_GETFL)?);
        fcntl(&sock, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: the OwnedFd is a valid descriptor that AsyncFd owns and never replaces.
        Ok(Control { sock: unsafe { AsyncFd::register(sock)? } })
    }

    /// Sends raw bytes as one packet.
    pub(crate) async fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        self.sock.async_io(Interest::WRITABLE, |s| Ok(proto::send(s.as_fd(), bytes, None)?)).await
    }

    /// Sends one request.
    pub(crate) async fn send(&self, req: &Request) -> io::Result<()> {
        self.send_bytes(req.encode().as_bytes()).await
    }

    /// Receives the next packet.
    pub(crate) async fn recv(&self) -> io::Result<Incoming> {
        let packet = self.sock.async_io(Interest::READABLE, |s| Ok(proto::recv(s.as_fd())?)).await?;
        let Some((bytes, fd)) = packet else {
            return Ok(Incoming::Closed);
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(match Report::decode(&text) {
            Some(report) => Incoming::Report(report, fd),
            None => Incoming::Garbage(text),
        })
    }
}
