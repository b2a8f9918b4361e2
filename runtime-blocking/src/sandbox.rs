//! [`Sandbox`]: one VM — run commands in it, attach a shell, terminate it.

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use std::path::{Path, PathBuf};
use whim_core::exec::{Command, STDIN_CHUNK};
use whim_core::session::ExecSession;
use whim_core::shell::ShellClient;

use whim_sdk::transfer::{GetJob, Limits, PutJob};
use whim_sdk::{EXEC_COLS, EXEC_ROWS, ExitStatus, Output, ShellEnd, VmInfo, exec_events, nonce, shell_events};

use crate::ws::{self, Ws};
use crate::{Error, Manager, block_on};

/// What the caller sends an interactive shell (dropping the sender detaches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellInput {
    /// Keystrokes / raw bytes for the pty.
    Bytes(Vec<u8>),
    /// A new terminal size: columns, rows.
    Resize(u16, u16),
}

/// One VM.
#[derive(Debug)]
pub struct Sandbox {
    mgr: Manager,
    vm: VmInfo,
    fresh: Option<Ws>,
    session: Option<(Ws, ExecSession)>,
    timeout: Option<std::time::Duration>,
}

impl Sandbox {
    pub(crate) fn new(mgr: Manager, vm: VmInfo, fresh: Option<Ws>) -> Sandbox {
        Sandbox { mgr, vm, fresh, session: None, timeout: None }
    }

    fn connection(&mut self) -> Result<Ws, Error> {
        if let Some(ws) = self.fresh.take() {
            return Ok(ws);
        }
        let (url, headers) = block_on(self.mgr.api.shell_target(self.vm.id(), self.vm.endpoint()))?;
        ws::connect(&url, &headers, self.mgr.api.opts.vm_endpoint_via)
    }

    /// Kills later commands, with their whole process group, once they ran for `timeout`;
    /// such a command ends with [`Error::CommandTimedOut`] (the VM and the session live on).
    pub fn set_exec_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.timeout = timeout;
    }

    /// Runs `argv` and collects its output.
    pub fn exec<A: AsRef<[u8]>>(&mut self, argv: impl IntoIterator<Item = A>) -> Result<Output, Error> {
        let (argv, mut output): (Vec<A>, _) = (argv.into_iter().collect(), Vec::new());
        let status = self.exec_streaming(&argv, None::<std::io::Empty>, &mut output)?;
        Ok(Output { output, status })
    }

    /// Runs `argv`, writing its output to `out` as it arrives and feeding it `stdin` (EOF
    /// propagated); without `stdin` the command reads `/dev/null`. `stdin` is read between
    /// socket reads on this thread: a `stdin` that blocks delays output until it returns.
    pub fn exec_streaming<A: AsRef<[u8]>>(
        &mut self,
        argv: &[A],
        mut stdin: Option<impl Read>,
        out: &mut impl Write,
    ) -> Result<ExitStatus, Error> {
        let cmd = Command::new(argv.iter().map(|a| a.as_ref().to_vec()).collect(), stdin.is_some())?.with_timeout(self.timeout);
        let (mut ws, mut s) = match self.session.take() {
            Some(open) => open,
            None => (self.connection()?, ExecSession::new(nonce(), EXEC_COLS, EXEC_ROWS)?),
        };
        s.start(cmd, nonce())?;
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            ws.send_all(|| s.poll_transmit())?;
            let (output, end) = exec_events(&mut s);
            out.write_all(&output)?;
            out.flush()?;
            if let Some(end) = end {
                self.session = Some((ws, s));
                return end;
            }
            let reading = s.wants_stdin().then_some(()).and(stdin.as_mut());
            let wait = if reading.is_some() { Duration::ZERO } else { ws::POLL };
            if let Some(msg) = ws.recv(wait) {
                whim_sdk::ws::incoming(Some(msg), |f| s.handle_frame(f));
            } else if let Some(r) = reading {
                let n = r.read(&mut buf)?;
                s.feed_stdin(&buf[..n]);
            }
        }
    }

    /// Attaches an interactive shell: [`ShellInput`]s from `input` go to the pty (the
    /// sender's drop detaches), pty output goes to `output`.
    pub fn shell(&mut self, input: &Receiver<ShellInput>, mut output: impl Write) -> Result<ShellEnd, Error> {
        let (mut ws, mut c) = (self.connection()?, ShellClient::new());
        loop {
            ws.send_all(|| c.poll_transmit())?;
            let (shown, end) = shell_events(&mut c);
            output.write_all(&shown)?;
            output.flush()?;
            if let Some(end) = end {
                return end;
            }
            loop {
                match input.try_recv() {
                    Ok(ShellInput::Bytes(b)) => c.send_input(&b)?,
                    Ok(ShellInput::Resize(cols, rows)) => drop(c.resize(cols, rows)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        c.close();
                        ws.send_all(|| c.poll_transmit())?;
                        return Ok(ShellEnd::Detached);
                    }
                }
            }
            if let Some(msg) = ws.recv(ws::POLL) {
                whim_sdk::ws::incoming(Some(msg), |f| whim_core::shell::feed(&mut c, f));
            }
        }
    }

    /// Copies the local file or directory `local` into the VM's existing directory
    /// `remote_dir` as `remote_dir/<its last path element>` (`scp -r` semantics); returns
    /// the remote path. Checksummed; nothing appears remotely unless every byte arrived.
    pub fn put(&mut self, local: &Path, remote_dir: &[u8], limits: Limits) -> Result<Vec<u8>, Error> {
        let (mut job, mut out) = (PutJob::new(local, remote_dir, limits)?, Vec::new());
        let r = self.exec_streaming(&job.receive_argv(), Some(&mut job.packer), &mut out);
        match job.received(r, &out) {
            Ok(commit) => job.committed(self.exec(commit)),
            Err(e) => {
                let _ = self.exec(job.abort_argv());
                Err(e)
            }
        }
    }

    /// Copies the VM's file or directory `remote` into the existing local directory
    /// `local_dir` as `local_dir/<its last path element>`; returns the local path. What the
    /// VM sends is guarded and extracted beside the destination, then renamed into place.
    pub fn get(&mut self, remote: &[u8], local_dir: &Path, limits: Limits) -> Result<PathBuf, Error> {
        let (mut job, argv) = GetJob::new(remote, local_dir, limits)?;
        let r = self.exec_streaming(&argv, None::<std::io::Empty>, &mut job);
        job.finish(r)
    }

    /// Terminates the VM (idempotent).
    pub fn terminate(mut self) -> Result<(), Error> {
        self.close();
        self.mgr.terminate(self.vm.id())
    }

    /// Closes open connections without terminating the VM.
    pub fn close(&mut self) {
        for mut ws in self.session.take().map(|(w, _)| w).into_iter().chain(self.fresh.take()) {
            ws.close();
        }
    }
}

impl std::ops::Deref for Sandbox {
    type Target = VmInfo;
    fn deref(&self) -> &VmInfo {
        &self.vm
    }
}
