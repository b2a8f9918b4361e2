//! [`Sandbox`]: one VM — run commands in it, attach a shell, terminate it.

use futures_util::Stream;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use whim_core::exec::{Command, ExitStatus, Nonce};
use whim_core::session::{ExecSession, SessionEvent};
use whim_core::shell::{ClientEvent, CloseKind, ShellClient};

use crate::ws::{self, Ws};
use crate::manager::LaunchTimings;
use crate::{Error, Manager};

/// The pty size commands run with (the service starts at 0x0).
pub const EXEC_COLS: u16 = 200;
/// See [`EXEC_COLS`].
pub const EXEC_ROWS: u16 = 50;

/// A command's collected output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// stdout and stderr, merged as the pty merges them, exact bytes.
    pub output: Vec<u8>,
    /// How it ended.
    pub status: ExitStatus,
}

/// How an interactive shell ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellEnd {
    /// The remote shell exited.
    Exited,
    /// The caller's input ended (the user detached).
    Detached,
}

/// One VM.
#[derive(Debug)]
pub struct Sandbox {
    mgr: Manager,
    id: String,
    endpoint: String,
    fresh: Option<Ws>,
    session: Option<(Ws, ExecSession)>,
    timings: Option<LaunchTimings>,
}

fn nonce() -> Nonce {
    Nonce(rand::random())
}

impl Sandbox {
    pub(crate) fn new(mgr: Manager, id: String, endpoint: String, fresh: Option<Ws>) -> Sandbox {
        Sandbox { mgr, id, endpoint, fresh, session: None, timings: None }
    }

    pub(crate) fn with_timings(mut self, t: LaunchTimings) -> Sandbox {
        self.timings = Some(t);
        self
    }

    /// Where the launch spent its time (for VMs this handle launched).
    #[must_use]
    pub fn launch_timings(&self) -> Option<LaunchTimings> {
        self.timings
    }

    /// The VM id (`microvm-…`).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The VM's endpoint host.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn connection(&mut self) -> Result<Ws, Error> {
        match self.fresh.take() {
            Some(ws) => Ok(ws),
            None => self.mgr.open_shell(&self.id, &self.endpoint).await,
        }
    }

    async fn exec_session(&mut self) -> Result<(Ws, ExecSession), Error> {
        match self.session.take() {
            Some(s) => Ok(s),
            None => Ok((self.connection().await?, ExecSession::new(nonce(), EXEC_COLS, EXEC_ROWS)?)),
        }
    }

    /// Runs `argv` and collects its output.
    pub async fn exec<I, A>(&mut self, argv: I) -> Result<Output, Error>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut output = Vec::new();
        let status = self.exec_streaming(argv, None::<tokio::io::Empty>, &mut output).await?;
        Ok(Output { output, status })
    }

    /// Runs `argv`, writing its output to `out` as it arrives and feeding it `stdin`
    /// (EOF propagated); without `stdin` the command reads `/dev/null`.
    pub async fn exec_streaming<I, A, R, W>(&mut self, argv: I, stdin: Option<R>, out: &mut W) -> Result<ExitStatus, Error>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let argv: Vec<Vec<u8>> = argv.into_iter().map(|a| a.as_ref().to_vec()).collect();
        let cmd = Command::new(argv, stdin.is_some())?;
        let (mut ws, mut s) = self.exec_session().await?;
        s.start(cmd, nonce())?;
        let status = drive_exec(&mut ws, &mut s, stdin, out).await?;
        self.session = Some((ws, s));
        Ok(status)
    }

    /// Attaches an interactive shell: `input` goes to the pty (its EOF detaches),
    /// pty output goes to `output`, each `(cols, rows)` from `sizes` resizes it.
    pub async fn shell<R, W, S>(&mut self, input: R, output: W, sizes: S) -> Result<ShellEnd, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
        S: Stream<Item = (u16, u16)> + Unpin,
    {
        let ws = self.connection().await?;
        drive_shell(ws, input, output, sizes).await
    }

    /// Terminates the VM (idempotent).
    pub async fn terminate(mut self) -> Result<(), Error> {
        self.close().await;
        self.mgr.terminate(&self.id).await
    }

    /// Closes open connections without terminating the VM.
    pub async fn close(&mut self) {
        if let Some((mut ws, _)) = self.session.take() {
            let _ = ws.close(None).await;
        }
        if let Some(mut ws) = self.fresh.take() {
            let _ = ws.close(None).await;
        }
    }
}

fn lost(kind: &CloseKind) -> Error {
    match kind {
        CloseKind::ShellExited => Error::ConnectionClosed("the remote shell exited before the command finished".into()),
        CloseKind::Lost { code, reason } => {
            Error::ConnectionClosed(format!("the connection was lost (close {}{})", code.map_or("none".into(), |c| c.to_string()), if reason.is_empty() { String::new() } else { format!(": {reason}") }))
        }
    }
}

async fn drive_exec<R, W>(ws: &mut Ws, s: &mut ExecSession, mut stdin: Option<R>, out: &mut W) -> Result<ExitStatus, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; whim_core::exec::STDIN_CHUNK];
    let mut status = None;
    loop {
        ws::send_all(ws, || s.poll_transmit()).await?;
        let mut wrote = false;
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::Output(b) => {
                    out.write_all(&b).await?;
                    wrote = true;
                }
                SessionEvent::Exited(st) => status = Some(st),
                SessionEvent::Idle => {
                    out.flush().await?;
                    return status.ok_or_else(|| Error::ConnectionClosed("no exit status".into()));
                }
                SessionEvent::Closed(k) => return Err(lost(&k)),
            }
        }
        if let Some(e) = s.take_error() {
            return Err(e.into());
        }
        if wrote {
            out.flush().await?;
        }
        let want_stdin = stdin.is_some() && s.wants_stdin();
        tokio::select! {
            msg = ws::recv(ws) => { ws::incoming(msg, |f| s.handle_frame(f)); }
            n = read_opt(&mut stdin, &mut buf), if want_stdin => match n? {
                0 => { s.close_stdin(); stdin = None; }
                n => s.write_stdin(&buf[..n]),
            },
        }
    }
}

async fn read_opt<R: AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => Ok(0),
    }
}

async fn drive_shell<R, W, S>(mut ws: Ws, mut input: R, mut output: W, mut sizes: S) -> Result<ShellEnd, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    S: Stream<Item = (u16, u16)> + Unpin,
{
    let mut c = ShellClient::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut sizes_open = true;
    loop {
        ws::send_all(&mut ws, || c.poll_transmit()).await?;
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::Output(b) => {
                    output.write_all(&b).await?;
                    output.flush().await?;
                }
                ClientEvent::Closed(CloseKind::ShellExited) => return Ok(ShellEnd::Exited),
                ClientEvent::Closed(k) => return Err(lost(&k)),
                ClientEvent::SessionStarted { .. } => {}
            }
        }
        tokio::select! {
            msg = ws::recv(&mut ws) => { ws::incoming(msg, |f| whim_core::shell::feed(&mut c, f)); }
            n = input.read(&mut buf) => match n? {
                0 => {
                    c.close();
                    ws::send_all(&mut ws, || c.poll_transmit()).await?;
                    return Ok(ShellEnd::Detached);
                }
                n => c.send_input(&buf[..n])?,
            },
            size = sizes.next(), if sizes_open => match size {
                Some((cols, rows)) => { let _ = c.resize(cols, rows); }
                None => sizes_open = false,
            },
        }
    }
}
