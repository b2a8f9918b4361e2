//! `whim-emulator`: serve the local Lambda MicroVMs emulator, or run one command in one sandbox.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use whim_emulator::sandbox::{Isolation, SandboxConfig};
use whim_emulator::{Emulator, EmulatorConfig};

#[derive(Debug, Parser)]
#[command(name = "whim-emulator", version, about = "A local emulator of AWS Lambda MicroVMs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the control plane and VM endpoints until SIGINT/SIGTERM or POST /__whim/shutdown.
    Serve(ServeArgs),
    /// Boot one sandbox, run CMD in its shell, relay its output, exit with its code.
    Spawn(SpawnArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Run shells without namespaces (unsafe: they are plain host shells).
    #[arg(long)]
    unisolated: bool,
    /// Least time a VM stays PENDING, in milliseconds.
    #[arg(long)]
    pending_delay_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct SpawnArgs {
    /// Run the shell without namespaces (unsafe: a plain host shell).
    #[arg(long)]
    unisolated: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

fn main() -> ExitCode {
    whim_emulator::run_helper_if_requested();
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the tokio runtime: {e}")),
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)).map(|()| 0),
        Command::Spawn(args) => runtime.block_on(spawn(args)),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("whim-emulator: {e:#}");
    ExitCode::from(125)
}

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("whim_emulator=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = EmulatorConfig::local_default();
    cfg.addr = args.addr;
    if args.unisolated {
        cfg.sandbox.isolation = Isolation::Unisolated;
    }
    if let Some(ms) = args.pending_delay_ms {
        cfg.pending_delay = Duration::from_millis(ms);
    }
    let emulator = Emulator::start(cfg).await?;
    println!("whim-emulator listening on {}", emulator.endpoint_url());
    use std::io::Write as _;
    std::io::stdout().flush().context("cannot write to stdout")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = emulator.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: terminating every VM");
    emulator.shutdown().await;
    Ok(())
}

async fn spawn(args: SpawnArgs) -> anyhow::Result<i32> {
    let mut cfg = SandboxConfig::default_for_host();
    if args.unisolated {
        cfg.isolation = Isolation::Unisolated;
    }
    Ok(i32::from(whim_emulator::spawn_direct(&cfg, &args.cmd).await?))
}
