//! [`Sandbox`]: one VM — run commands in it, attach a shell, terminate it.

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Stream, StreamExt, future};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use whim_core::exec::{Command, STDIN_CHUNK};
use whim_core::session::ExecSession;
use whim_core::shell::ShellClient;

use whim_sdk::transfer::{GetJob, Limits, PutJob};
use whim_sdk::{EXEC_COLS, EXEC_ROWS, ExitStatus, Output, ShellEnd, VmInfo, exec_events, nonce, shell_events};

use crate::ws::{self, Ws};
use crate::{Error, Manager};

/// One VM.
#[derive(Debug)]
pub struct Sandbox {
    mgr: Manager,
    vm: VmInfo,
    fresh: Option<Ws>,
    session: Option<(Ws, ExecSession)>,
    timeout: Option<std::time::Duration>,
}

/// What woke a drive loop.
enum Woke<M> {
    Ws(M),
    Read(std::io::Result<usize>),
    Size(Option<(u16, u16)>),
}

impl Sandbox {
    pub(crate) fn new(mgr: Manager, vm: VmInfo, fresh: Option<Ws>) -> Sandbox {
        Sandbox { mgr, vm, fresh, session: None, timeout: None }
    }

    async fn connection(&mut self) -> Result<Ws, Error> {
        if let Some(ws) = self.fresh.take() {
            return Ok(ws);
        }
        let (url, headers) = self.mgr.api.shell_target(self.vm.id(), self.vm.endpoint()).await?;
        ws::connect(&url, &headers, self.mgr.api.opts.vm_endpoint_via).await
    }

    /// Kills later commands, with their whole process group, once they ran for `timeout`;
    /// such a command ends with [`Error::CommandTimedOut`] (the VM and the session live on).
    pub fn set_exec_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.timeout = timeout;
    }

    /// Runs `argv` and collects its output.
    pub async fn exec<A: AsRef<[u8]>>(&mut self, argv: impl IntoIterator<Item = A>) -> Result<Output, Error> {
        let (argv, mut output): (Vec<A>, _) = (argv.into_iter().collect(), Vec::new());
        let status = self.exec_streaming(&argv, None::<futures_lite::io::Empty>, &mut output).await?;
        Ok(Output { output, status })
    }

    /// Runs `argv`, writing its output to `out` as it arrives and feeding it `stdin`
    /// (EOF propagated); without `stdin` the command reads `/dev/null`.
    pub async fn exec_streaming<A: AsRef<[u8]>>(
        &mut self,
        argv: &[A],
        mut stdin: Option<impl AsyncRead + Unpin>,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<ExitStatus, Error> {
        let cmd = Command::new(argv.iter().map(|a| a.as_ref().to_vec()).collect(), stdin.is_some())?.with_timeout(self.timeout);
        let (mut ws, mut s) = match self.session.take() {
            Some(open) => open,
            None => (self.connection().await?, ExecSession::new(nonce(), EXEC_COLS, EXEC_ROWS)?),
        };
        s.start(cmd, nonce())?;
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            ws::send_all(&mut ws, || s.poll_transmit()).await?;
            let (output, end) = exec_events(&mut s);
            if !output.is_empty() {
                out.write_all(&output).await?;
                out.flush().await?;
            }
            if let Some(end) = end {
                self.session = Some((ws, s));
                return end;
            }
            let reading = s.wants_stdin().then_some(()).and(stdin.as_mut());
            let read = async {
                match reading {
                    Some(r) => Woke::Read(r.read(&mut buf).await),
                    None => future::pending().await,
                }
            };
            match future::or(async { Woke::Ws(ws.next().await) }, read).await {
                Woke::Ws(msg) => ws::incoming(msg, |f| s.handle_frame(f)),
                Woke::Read(n) => s.feed_stdin(&buf[..n?]),
                Woke::Size(_) => {}
            }
        }
    }

    /// Attaches an interactive shell: `input` goes to the pty (its EOF detaches),
    /// pty output goes to `output`, each `(cols, rows)` from `sizes` resizes it.
    pub async fn shell(
        &mut self,
        mut input: impl AsyncRead + Unpin,
        mut output: impl AsyncWrite + Unpin,
        mut sizes: impl Stream<Item = (u16, u16)> + Unpin,
    ) -> Result<ShellEnd, Error> {
        let (mut ws, mut c, mut buf, mut sizes_open) = (self.connection().await?, ShellClient::new(), vec![0u8; 16 * 1024], true);
        loop {
            ws::send_all(&mut ws, || c.poll_transmit()).await?;
            let (shown, end) = shell_events(&mut c);
            if !shown.is_empty() {
                output.write_all(&shown).await?;
                output.flush().await?;
            }
            if let Some(end) = end {
                return end;
            }
            let size = async { if sizes_open { Woke::Size(sizes.next().await) } else { future::pending().await } };
            // A size change goes out before input typed after it; `or` polls its first future first.
            let woke = future::or(size, future::or(async { Woke::Ws(ws.next().await) }, async { Woke::Read(input.read(&mut buf).await) }));
            match woke.await {
                Woke::Ws(msg) => ws::incoming(msg, |f| whim_core::shell::feed(&mut c, f)),
                Woke::Read(Ok(0)) => {
                    c.close();
                    ws::send_all(&mut ws, || c.poll_transmit()).await?;
                    return Ok(ShellEnd::Detached);
                }
                Woke::Read(n) => c.send_input(&buf[..n?])?,
                Woke::Size(Some((cols, rows))) => drop(c.resize(cols, rows)),
                Woke::Size(None) => sizes_open = false,
            }
        }
    }

    /// Copies the local file or directory `local` into the VM's existing directory
    /// `remote_dir` as `remote_dir/<its last path element>` (`scp -r` semantics); returns
    /// the remote path. Checksummed; nothing appears remotely unless every byte arrived.
    pub async fn put(&mut self, local: &Path, remote_dir: &[u8], limits: Limits) -> Result<Vec<u8>, Error> {
        let (mut job, mut out) = (PutJob::new(local, remote_dir, limits)?, Vec::new());
        let r = self.exec_streaming(&job.receive_argv(), Some(Blocking(&mut job.packer)), &mut out).await;
        match job.received(r, &out) {
            Ok(commit) => job.committed(self.exec(commit).await),
            Err(e) => {
                let _ = self.exec(job.abort_argv()).await;
                Err(e)
            }
        }
    }

    /// Copies the VM's file or directory `remote` into the existing local directory
    /// `local_dir` as `local_dir/<its last path element>`; returns the local path. What the
    /// VM sends is guarded and extracted beside the destination, then renamed into place.
    pub async fn get(&mut self, remote: &[u8], local_dir: &Path, limits: Limits) -> Result<PathBuf, Error> {
        let (mut job, argv) = GetJob::new(remote, local_dir, limits)?;
        let r = self.exec_streaming(&argv, None::<futures_lite::io::Empty>, &mut Blocking(&mut job)).await;
        job.finish(r)
    }

    /// Terminates the VM (idempotent).
    pub async fn terminate(mut self) -> Result<(), Error> {
        self.close().await;
        self.mgr.terminate(self.vm.id()).await
    }

    /// Closes open connections without terminating the VM.
    pub async fn close(&mut self) {
        for mut ws in self.session.take().map(|(w, _)| w).into_iter().chain(self.fresh.take()) {
            let _ = ws.close(None).await;
        }
    }
}

impl std::ops::Deref for Sandbox {
    type Target = VmInfo;
    fn deref(&self) -> &VmInfo {
        &self.vm
    }
}

/// Plain file I/O (bounded pieces) as futures-io, for the copy jobs.
struct Blocking<T>(T);

impl<T: std::io::Read + Unpin> AsyncRead for Blocking<T> {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.0.read(buf))
    }
}

impl<T: std::io::Write + Unpin> AsyncWrite for Blocking<T> {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.0.write(buf))
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.0.flush())
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
