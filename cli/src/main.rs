//! `whim`: throwaway root shells in AWS Lambda MicroVMs.

// `println!`/`eprintln!` panic when their stream is closed (`whim ps | head -1`, a closed
// stderr): these never do, so a closed pipe can never skip the code that terminates a VM.
// They shadow the std macros for every module below (textual scope).
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
macro_rules! eprint {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

mod aws;
mod cli;
mod config;
mod copy;
mod images;
mod local;
mod preflight;
mod progress;
mod run;
mod signals;
mod term;
mod vms;

use std::process::ExitCode;

use clap::Parser;

/// whim's own failure, for `run`/`exec`/`put`/`get` (CLI.md).
pub const EXIT_WHIM_FAILED: u8 = 125;
/// Interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    whim_emulator::run_helper_if_requested();
    let args = cli::Args::parse();
    init_logging(args.global.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("whim: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_WHIM_FAILED);
        }
    };
    let code = rt.block_on(cli::dispatch(args));
    // Pending reads of stdin live on blocking threads that never finish by themselves.
    rt.shutdown_timeout(std::time::Duration::from_millis(50));
    ExitCode::from(code)
}

/// Diagnostics on stderr. `-v` is debug for whim, `-vv` trace for everything;
/// `RUST_LOG` overrides. Two sources would print secrets at trace level, so they are
/// capped whatever `RUST_LOG` says: the `log` crate is not bridged (tungstenite logs raw
/// handshake requests through it), and the SDK's orchestrator, which traces every
/// operation's output with `Debug` (a shell token is a plain string in that output), is
/// held at debug.
fn init_logging(verbose: u8) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, filter::filter_fn};
    let default = match verbose {
        0 => "warn",
        1 => "warn,whim=debug,whim_tokio=debug,whim_core=debug,whim_emulator=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let no_secrets = filter_fn(|m| !(*m.level() == tracing::Level::TRACE && prints_outputs(m.target())));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(true).with_ansi(ansi);
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter).with_filter(no_secrets)).try_init();
}

/// Targets whose trace events carry whole service outputs.
fn prints_outputs(target: &str) -> bool {
    target.starts_with("aws_smithy_runtime::client::orchestrator")
}
