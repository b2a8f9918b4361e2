//! The local backend: find the background emulator, start one when none answers,
//! and the `whim emulator` commands.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::EmulatorCmd;

/// What `whim emulator serve` records for `--local` clients.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    url: String,
    pid: u32,
}

/// Where the state, lock and log files live.
fn state_dir() -> PathBuf {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = env("WHIM_STATE_DIR") {
        return d;
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        return d.join("whim");
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return d.join("whim");
    }
    match env("HOME") {
        Some(h) => h.join(".local/state/whim"),
        None => std::env::temp_dir().join(format!("whim-{}", nix::unistd::getuid())),
    }
}

fn state_file() -> PathBuf {
    state_dir().join("emulator.json")
}

/// One line for `whim version`.
pub fn describe() -> String {
    match read_state() {
        Some(s) => format!("{} (pid {})", s.url, s.pid),
        None => "not running; started on first use".into(),
    }
}

fn read_state() -> Option<State> {
    let text = std::fs::read_to_string(state_file()).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(path: &PathBuf, s: &State) -> anyhow::Result<()> {
    let dir = path.parent().context("state file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(s)?).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The URL of a running local emulator, starting one in the background if needed.
pub async fn ensure_running() -> anyhow::Result<String> {
    let dir = state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _lock = lock(dir.join("emulator.lock")).await?;
    if let Some(s) = read_state()
        && healthy(&s.url).await
    {
        return Ok(s.url);
    }
    start_background(&dir).await
}

async fn lock(path: PathBuf) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))
    })
    .await?
}

async fn start_background(dir: &std::path::Path) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the whim binary")?;
    let log_path = dir.join("emulator.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let _ = std::fs::remove_file(state_file());
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["emulator", "serve", "--state-file"]).arg(state_file());
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.env_remove("RUST_LOG");
    let mut child = cmd.spawn().context("cannot start the local emulator")?;
    for _ in 0..300 {
        if let Some(s) = read_state()
            && healthy(&s.url).await
        {
            tracing::debug!(url = %s.url, "started the local emulator");
            return Ok(s.url);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the local emulator exited ({status}):\n{}", tail.trim());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the local emulator did not answer within 6s; see {}", log_path.display())
}

/// Host:port of an http:// URL.
fn authority(url: &str) -> Option<&str> {
    url.strip_prefix("http://")?.split('/').next()
}

async fn request(url: &str, method: &str, path: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(authority(url)?)).await.ok()?.ok()?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", authority(url)?);
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn healthy(url: &str) -> bool {
    request(url, "GET", "/__whim/health").await.is_some_and(|r| r.starts_with("HTTP/1.1 200") && r.contains("whim-emulator"))
}

/// `whim emulator …`.
pub async fn emulator(cmd: EmulatorCmd) -> anyhow::Result<u8> {
    match cmd {
        EmulatorCmd::Serve { addr, unisolated, state_file: sf } => serve(addr, unisolated, sf).await,
        EmulatorCmd::Stop => stop().await,
        EmulatorCmd::Spawn { unisolated, cmd } => {
            let mut cfg = whim_emulator::sandbox::SandboxConfig::default_for_host();
            if unisolated {
                cfg.isolation = whim_emulator::sandbox::Isolation::Unisolated;
            }
            let argv: Vec<String> = cmd.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            Ok(whim_emulator::spawn_direct(&cfg, &argv).await?)
        }
    }
}

async fn serve(addr: std::net::SocketAddr, unisolated: bool, sf: Option<PathBuf>) -> anyhow::Result<u8> {
    let mut cfg = whim_emulator::EmulatorConfig::local_default();
    cfg.addr = addr;
    if unisolated {
        cfg.sandbox.isolation = whim_emulator::sandbox::Isolation::Unisolated;
    }
    let emu = whim_emulator::Emulator::start(cfg).await?;
    let url = emu.endpoint_url();
    let path = sf.unwrap_or_else(state_file);
    write_state(&path, &State { url: url.clone(), pid: std::process::id() })?;
    println!("whim-emulator listening on {url}");
    let mut sigs = crate::signals::Terminators::install()?;
    tokio::select! {
        () = emu.wait() => {}
        _ = sigs.recv() => {}
    }
    if read_state().is_some_and(|s| s.pid == std::process::id()) {
        let _ = std::fs::remove_file(&path);
    }
    emu.shutdown().await;
    Ok(0)
}

async fn stop() -> anyhow::Result<u8> {
    let Some(s) = read_state() else {
        eprintln!("whim: no local emulator is running");
        return Ok(0);
    };
    if request(&s.url, "POST", "/__whim/shutdown").await.is_none() {
        let _ = std::fs::remove_file(state_file());
        eprintln!("whim: the emulator at {} did not answer; removed its stale record", s.url);
        return Ok(0);
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(s.pid).unwrap_or(0));
    for _ in 0..250 {
        if nix::sys::signal::kill(pid, None).is_err() {
            let _ = std::fs::remove_file(state_file());
            eprintln!("whim: stopped the local emulator");
            return Ok(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the emulator (pid {}) did not stop within 5s", s.pid)
}
