//! The emulator's end of one shell: a nonblocking pty master on tokio's reactor.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::SandboxError;

/// Exit status reported when a shell's VM died under it (128 + SIGKILL).
pub const KILLED_STATUS: i32 = 137;

/// One interactive shell: its pty master plus its exit status, once known.
#[derive(Debug)]
pub struct Shell {
    master: Arc<AsyncFd<OwnedFd>>,
    pid: i32,
    exit: watch::Receiver<Option<i32>>,
}

/// Reads the shell's output; end of stream (EIO on a pty master) when the shell side is gone.
#[derive(Debug)]
pub struct ShellReader {
    master: Arc<AsyncFd<OwnedFd>>,
}

/// Types into the shell.
#[derive(Debug)]
pub struct ShellWriter {
    master: Arc<AsyncFd<OwnedFd>>,
}

/// Resizes the shell's terminal and waits for the shell to exit.
#[derive(Debug)]
pub struct ShellControl {
    master: Arc<AsyncFd<OwnedFd>>,
    pid: i32,
    exit: watch::Receiver<Option<i32>>,
}

impl Shell {
    /// Wraps a pty master; `exit` receives the status when the shell ends.
    pub(crate) fn new(master: OwnedFd, pid: i32, exit: watch::Receiver<Option<i32>>) -> Result<Self, SandboxError> {
        let flags = fcntl(&master, FcntlArg::F_GETFL).map_err(|e| SandboxError::io("F_GETFL on the pty", e))?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&master, FcntlArg::F_SETFL(flags)).map_err(|e| SandboxError::io("set the pty nonblocking", e))?;
        // SAFETY: the OwnedFd is a valid descriptor that AsyncFd owns and never replaces.
        let master = unsafe { AsyncFd::register(master) }.map_err(|e| SandboxError::io("register the pty with tokio", e))?;
        Ok(Shell { master: Arc::new(master), pid, exit })
    }

    /// The shell's pid inside its VM (host pid in unisolated mode).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Splits into independently usable halves; the pty closes when all three are dropped
    /// (the shell then gets SIGHUP).
    pub fn split(self) -> (ShellReader, ShellWriter, ShellControl) {
        let control = ShellControl { master: self.master.clone(), pid: self.pid, exit: self.exit };
        (ShellReader { master: self.master.clone() }, ShellWriter { master: self.master }, control)
    }
}

impl ShellControl {
    /// Sets the terminal size (TIOCSWINSZ on the master); the shell gets SIGWINCH.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), SandboxError> {
        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        let rc = unsafe { libc::ioctl(self.master.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc != 0 {
            return Err(SandboxError::io("resize the pty (TIOCSWINSZ)", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The shell's pid inside its VM (host pid in unisolated mode).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Resolves when this shell exits: its exit code, 128 + signal, or 137 if the VM died.
    pub async fn wait_exit(&mut self) -> i32 {
        match self.exit.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or(KILLED_STATUS),
            Err(_) => KILLED_STATUS,
        }
    }
}

impl AsyncRead for ShellReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.master.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| sys_read(fd.get_ref(), unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The slave side is closed everywhere: that is the end of the stream.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ShellWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.master.poll_write_ready(cx))?;
            match guard.try_io(|fd| sys_write(fd.get_ref(), data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// A pty cannot be half-closed; shutting down is a no-op (drop all halves to hang up).
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn sys_read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a buffer we exclusively borrow, at most its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn sys_write(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: writing from a buffer we borrow, at most its length.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}
