//! `whim run`: launch, run, stream, propagate the code, always terminate.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;

use whim_tokio::{Error, LaunchOptions, Sandbox, Ttl};

use crate::cli::{Global, fail};
use crate::signals::Terminators;
use crate::{EXIT_INTERRUPTED, aws};

/// Runs `whim run`; returns the exit code.
pub async fn run(
    g: &Global,
    image: Option<String>,
    privileged: bool,
    ttl: Option<String>,
    timeout: Option<String>,
    cmd: Vec<std::ffi::OsString>,
) -> u8 {
    let mut sigs = match Terminators::install() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
    };
    let ttl = match ttl.as_deref().map(Ttl::parse).transpose() {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return fail(&e),
    };
    let timeout = match crate::vms::duration_opt("--timeout", timeout.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let mgr = match aws::manager(g).await {
        Ok(m) => m,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let image = match crate::images::image_to_launch(&mgr, image, privileged).await {
        Ok(i) => i,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let mut signal_code = None;
    let launched = mgr.launch_until(&image, LaunchOptions { ttl, ..Default::default() }, async {
        signal_code = Some(sigs.recv().await);
    });
    let mut sb = match launched.await {
        Ok(sb) => sb,
        Err(Error::Interrupted) => return signal_code.unwrap_or(EXIT_INTERRUPTED),
        Err(e) => return fail(&e),
    };
    tracing::debug!(vm = sb.id(), "launched");
    sb.set_exec_timeout(timeout);
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    let code = tokio::select! {
        r = exec(&mut sb, &argv) => r,
        code = sigs.recv() => code,
    };
    let id = sb.id().to_owned();
    if let Err(e) = sb.terminate().await {
        eprintln!("whim: could not terminate VM {id}: {e} (it stops by itself when its TTL runs out; `whim terminate {id}` stops it now)");
        if code == 0 {
            return crate::EXIT_WHIM_FAILED;
        }
    }
    code
}

/// Runs `argv` on `sb` with stdout as its output; the exit code, or whim's failure reported.
pub async fn exec(sb: &mut Sandbox, argv: &[&[u8]]) -> u8 {
    let mut out = tokio::io::stdout();
    exec_to(sb, argv, &mut out).await.unwrap_or_else(|e| failure_code(&e))
}

/// Runs `argv` on `sb`, streaming to `out` and forwarding stdin when it is not a terminal:
/// the command's exit code (141 when `out` closed early), or whim's error.
pub async fn exec_to(sb: &mut Sandbox, argv: &[&[u8]], out: &mut (impl tokio::io::AsyncWrite + Unpin)) -> Result<u8, Error> {
    let stdin = (!std::io::stdin().is_terminal()).then(tokio::io::stdin);
    match sb.exec_streaming(argv, stdin, out).await {
        Ok(status) => Ok(status.0),
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(141),
        Err(e) => Err(e),
    }
}

/// Reports a failed exec on stderr: 124 when its `--timeout` expired, else 125.
pub fn failure_code(e: &Error) -> u8 {
    match e {
        Error::CommandTimedOut(_) => {
            eprintln!("whim: {e}");
            EXIT_TIMED_OUT
        }
        _ => fail(e),
    }
}

/// `--timeout` expired (CLI.md).
pub const EXIT_TIMED_OUT: u8 = 124;
