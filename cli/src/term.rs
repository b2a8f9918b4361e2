//! `whim shell`: the local terminal in raw mode, Ctrl-] to detach, sizes on SIGWINCH,
//! the terminal restored on every exit path.

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Context as _;
use futures_util::Stream;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::signal::unix::{SignalKind, signal};
use whim_tokio::{LaunchOptions, ShellEnd, Ttl};

use crate::aws;
use crate::cli::{Global, ShellArgs};
use crate::signals::Terminators;

/// The byte that detaches (Ctrl-]), as in telnet and docker.
pub const DETACH: u8 = 0x1d;

/// Runs `whim shell`; returns the exit code.
pub async fn shell(g: &Global, id: Option<String>, opts: ShellArgs) -> anyhow::Result<u8> {
    let mut sigs = Terminators::install()?;
    let ttl = opts.ttl.as_deref().map(Ttl::parse).transpose()?.unwrap_or_default();
    let mgr = aws::manager(g).await?;
    let launched = id.is_none();
    let mut sb = match id {
        Some(id) => mgr.attach(&id).await?,
        None => {
            let image = crate::images::image_to_launch(&mgr, opts.image, opts.privileged).await?;
            let mut code = None;
            let r = mgr.launch_until(&image, LaunchOptions { ttl, ..Default::default() }, async { code = Some(sigs.recv().await) }).await;
            match r {
                Err(whim_tokio::Error::Interrupted) => return Ok(code.unwrap_or(crate::EXIT_INTERRUPTED)),
                other => other?,
            }
        }
    };
    let vm = sb.id().to_owned();
    if std::io::stderr().is_terminal() {
        eprint!("whim: root shell on {vm} (Ctrl-] detaches)\r\n");
    }
    let end = {
        let _raw = RawMode::enable();
        let input = DetachReader { inner: tokio::io::stdin(), detached: false };
        tokio::select! {
            r = sb.shell(input, tokio::io::stdout(), sizes()?) => r.map(Some),
            code = sigs.recv() => { tracing::debug!(code, "signal"); Ok(None) }
        }
    };
    let keep = opts.keep || !launched;
    if keep {
        sb.close().await;
        if launched {
            eprintln!("whim: VM {vm} keeps running; `whim shell {vm}` opens a new shell, `whim terminate {vm}` stops it");
        }
    } else if let Err(e) = sb.terminate().await {
        eprintln!("whim: could not terminate VM {vm}: {e}");
    }
    match end.with_context(|| format!("shell on {vm}"))? {
        Some(ShellEnd::Exited) => Ok(0),
        Some(ShellEnd::Detached) if keep => {
            eprintln!("whim: detached from {vm}");
            Ok(0)
        }
        Some(ShellEnd::Detached) => {
            eprintln!("whim: detached; VM {vm} was terminated (`whim shell --keep` keeps it)");
            Ok(0)
        }
        None => Ok(crate::EXIT_INTERRUPTED),
    }
}

/// Raw mode on stdin while alive, when stdin is a terminal.
struct RawMode(bool);

impl RawMode {
    fn enable() -> RawMode {
        RawMode(std::io::stdin().is_terminal() && crossterm::terminal::enable_raw_mode().is_ok())
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.0 {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// The terminal's size now and after every SIGWINCH; 80x24 when unknown (never 0x0).
fn sizes() -> std::io::Result<impl Stream<Item = (u16, u16)> + Unpin> {
    let winch = signal(SignalKind::window_change())?;
    Ok(Box::pin(futures_util::stream::unfold((winch, true), |(mut w, first)| async move {
        if !first {
            w.recv().await?;
        }
        Some((current_size(), (w, false)))
    })))
}

fn current_size() -> (u16, u16) {
    match crossterm::terminal::size() {
        Ok((c, r)) if c > 0 && r > 0 => (c, r),
        _ => (80, 24),
    }
}

/// Passes input through until Ctrl-], then reports end of input.
struct DetachReader<R> {
    inner: R,
    detached: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for DetachReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.detached {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && let Some(i) = buf.filled()[before..].iter().position(|&b| b == DETACH)
        {
            buf.set_filled(before + i);
            self.detached = true;
        }
        r
    }
}
