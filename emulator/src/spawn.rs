//! `whim-emulator spawn`: one sandbox, one command, no control plane — the performance
//! baseline that `whim --local run -- true` is compared against.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::sandbox::{self, Isolation, SandboxConfig};

/// After the command exited: how long to wait for more output before giving up on the pty.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// After the command exited: the longest time spent relaying output of what it left behind.
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// The byte printed right before `exec`, so everything the shell printed earlier is skipped.
const START_MARK: u8 = 0x1e;

/// Boots one sandbox with `cfg`, runs `cmd` (argv, shell-quoted) as `exec` in its shell, relays
/// what it prints to stdout, kills the sandbox and returns the command's exit code (128 + signal
/// when killed). Probes the host first unless `cfg.isolation` is unisolated.
pub async fn spawn_direct(cfg: &SandboxConfig, cmd: &[String]) -> anyhow::Result<u8> {
    anyhow::ensure!(!cmd.is_empty(), "no command given: pass the command to run after --");
    if cfg.isolation != Isolation::Unisolated {
        let probed = tokio::task::spawn_blocking(sandbox::probe).await?;
        probed.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let vm = sandbox::Vm::boot(cfg, &format!("spawn-{}", std::process::id())).await?;
    let result = run_in(&vm, cmd).await;
    vm.kill().await;
    Ok(u8::try_from(result?).unwrap_or(u8::MAX))
}

/// Types `exec CMD` into a new shell of `vm` and relays what CMD prints.
async fn run_in(vm: &sandbox::Vm, cmd: &[String]) -> anyhow::Result<i32> {
    let (mut reader, mut writer, mut control) = vm.spawn_shell().await?.split();
    let quoted: Vec<String> = cmd.iter().map(|a| shell_quote(a)).collect();
    let line = format!("stty -echo -onlcr; printf '\\036'; exec {}\n", quoted.join(" "));
    writer.write_all(line.as_bytes()).await?;
    let mut out = tokio::io::stdout();
    let mut started = false;
    let mut buf = vec![0u8; 64 * 1024];
    let code = loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read? {
                0 => break control.wait_exit().await,
                n => relay(&buf[..n], &mut started, &mut out).await?,
            },
            code = control.wait_exit() => break code,
        }
    };
    let deadline = tokio::time::Instant::now() + DRAIN_MAX;
    while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_QUIET, reader.read(&mut buf)).await {
        if n == 0 || tokio::time::Instant::now() > deadline {
            break;
        }
        relay(&buf[..n], &mut started, &mut out).await?;
    }
    out.flush().await?;
    Ok(code)
}

/// Writes `chunk` to stdout, skipping everything up to and including the start mark.
async fn relay(chunk: &[u8], started: &mut bool, out: &mut tokio::io::Stdout) -> std::io::Result<()> {
    let chunk = if *started {
        chunk
    } else {
        match chunk.iter().position(|b| *b == START_MARK) {
            Some(p) => {
                *started = true;
                &chunk[p + 1..]
            }
            None => return Ok(()),
        }
    };
    out.write_all(chunk).await
}

/// `arg` as one POSIX shell word.
fn shell_quote(arg: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b);
    if !arg.is_empty() && arg.bytes().all(plain) { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}
