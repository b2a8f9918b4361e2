//! The command surface (CLI.md) and dispatch.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::{EXIT_WHIM_FAILED, aws, copy, images, local, preflight, run, term, vms};

/// Throwaway root shells in AWS Lambda MicroVMs.
#[derive(Debug, Parser)]
#[command(name = "whim", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub shell: ShellArgs,
}

/// Flags every command takes.
#[derive(Debug, Clone, ClapArgs)]
pub struct Global {
    /// AWS region.
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// AWS profile.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Talk to another Lambda MicroVMs endpoint (an emulator).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL_LAMBDA_MICROVMS")]
    pub endpoint_url: Option<String>,
    /// Use the local emulator (started in the background if none runs). No AWS account needed.
    #[arg(long, global = true, env = "WHIM_LOCAL", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true")]
    pub local: bool,
    /// More diagnostics on stderr (-v, -vv). Secrets never appear.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `whim shell` / bare `whim`.
#[derive(Debug, Clone, ClapArgs)]
pub struct ShellArgs {
    /// Image name or ARN.
    #[arg(long)]
    pub image: Option<String>,
    /// Launch the `whim-privileged` image (all OS capabilities, util-linux, iproute,
    /// e2fsprogs), built on first use.
    #[arg(long, conflicts_with = "image")]
    pub privileged: bool,
    /// Time to live: 90s, 25m, 2h (default 25m, at most 8h).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Keep the VM running after the shell ends.
    #[arg(long)]
    pub keep: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Launch a VM (or attach to VM ID) and open an interactive root shell. Ctrl-] detaches.
    Shell {
        /// An existing VM to open a new shell on (it is not terminated afterwards).
        id: Option<String>,
        #[command(flatten)]
        opts: ShellArgs,
    },
    /// Launch a VM, run CMD, stream its output, exit with its code, terminate the VM.
    Run {
        /// Image name or ARN.
        #[arg(long)]
        image: Option<String>,
        /// Launch the `whim-privileged` image (all OS capabilities, util-linux, iproute,
        /// e2fsprogs), built on first use.
        #[arg(long, conflicts_with = "image")]
        privileged: bool,
        /// Time to live: 90s, 25m, 2h (default 25m, at most 8h).
        #[arg(long)]
        ttl: Option<String>,
        /// Kill the command (its whole process group) after this long and exit 124.
        #[arg(long)]
        timeout: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true, num_args = 1..)]
        cmd: Vec<std::ffi::OsString>,
    },
    /// Start a VM and print its id; it runs until its TTL, `whim terminate` or `whim gc`.
    Launch {
        /// Image name or ARN.
        #[arg(long)]
        image: Option<String>,
        /// Time to live: 90s, 25m, 2h (default 25m, at most 8h).
        #[arg(long)]
        ttl: Option<String>,
        /// Print only the id.
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
        /// Print one JSON object: id, state, endpoint, image, ttl (seconds).
        #[arg(long)]
        json: bool,
    },
    /// Terminate VMs (an already terminated VM is not an error).
    Terminate {
        /// The VMs.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<String>,
    },
    /// Run CMD in an existing VM: output streamed, stdin forwarded, its exit code returned.
    Exec {
        /// The VM.
        id: String,
        /// Kill the command (its whole process group) after this long and exit 124.
        #[arg(long)]
        timeout: Option<String>,
        /// Print one JSON object {id, exit_code, output} (or {id, exit_code, error}) instead.
        #[arg(long)]
        json: bool,
        /// The command and its arguments.
        #[arg(last = true, required = true, num_args = 1..)]
        cmd: Vec<std::ffi::OsString>,
    },
    /// Copy a local file or directory into VM ID's directory REMOTE_DIR (as REMOTE_DIR/<name>).
    Put {
        /// The VM.
        id: String,
        /// The local file or directory.
        #[arg(value_name = "LOCAL")]
        source: PathBuf,
        /// An existing directory in the VM.
        remote_dir: std::ffi::OsString,
        #[command(flatten)]
        limits: CopyLimits,
    },
    /// Copy VM ID's file or directory REMOTE into the local directory LOCAL_DIR (as LOCAL_DIR/<name>).
    Get {
        /// The VM.
        id: String,
        /// The file or directory in the VM.
        remote: std::ffi::OsString,
        /// An existing local directory.
        local_dir: PathBuf,
        #[command(flatten)]
        limits: CopyLimits,
    },
    /// List your VMs (launched from your account's images) like `docker ps`.
    Ps {
        /// Print only the ids.
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
        /// Include terminated VMs.
        #[arg(short, long)]
        all: bool,
    },
    /// Terminate your VMs (launched from your account's images), after confirmation.
    Gc {
        /// Only VMs at least this old: 90s, 25m, 2h.
        #[arg(long)]
        older_than: Option<String>,
        /// Do not ask.
        #[arg(short, long)]
        yes: bool,
        /// List what would be terminated, terminate nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Suspend a VM (memory and disk are kept) and wait until it is SUSPENDED.
    Suspend {
        /// The VM.
        id: String,
    },
    /// Resume a suspended VM and wait until it is RUNNING.
    Resume {
        /// The VM.
        id: String,
    },
    /// Build a custom image from a directory, a Dockerfile, an archive, s3://, https:// or
    /// github.com/org/repo@ref, and cache it under NAME.
    #[command(after_help = concat!("Egress: ", "On AWS, leaving INTERNET_EGRESS out was measured NOT to block outbound traffic: `--egress none` removes the connector but VMs still reach the internet. For real isolation pass `--egress-connector ARN` (a VPC network connector in a VPC without an internet gateway or NAT). The local emulator does enforce `--egress none` (loopback only).", "\n\nGITHUB_TOKEN, when set, is sent to GitHub only as an Authorization header for github.com sources."))]
    Build(BuildArgs),
    /// List or delete your images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// One-time setup: the artifact bucket, the build role and the default image (instant when done).
    Init {
        /// The default image's name.
        #[arg(long)]
        image_name: Option<String>,
        /// Rebuild the default image even when it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check credentials, region and permissions without launching anything billable.
    PreflightCheck,
    /// Version, commit and the backend whim would talk to.
    Version,
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The local emulator of Lambda MicroVMs.
    Emulator {
        #[command(subcommand)]
        cmd: EmulatorCmd,
    },
}

/// `whim build`.
#[derive(Debug, Clone, ClapArgs)]
pub struct BuildArgs {
    /// A directory, a Dockerfile, a .zip/.tar.gz, s3://bucket/key, https://host/path (an
    /// archive or a raw Dockerfile), github.com/org/repo@ref or git+https://github.com/org/repo@ref.
    pub source: String,
    /// The image name (the cache key: a second build of NAME reuses it unless --force).
    #[arg(long)]
    pub name: String,
    /// `public` (the default) or `none` (see Egress below).
    #[arg(long, value_parser = ["public", "none"], conflicts_with = "egress_connector")]
    pub egress: Option<String>,
    /// Route the image's egress through this VPC network connector.
    #[arg(long, value_name = "ARN")]
    pub egress_connector: Option<String>,
    /// Give the image's VMs all OS capabilities.
    #[arg(long)]
    pub privileged: bool,
    /// Delete an existing image of that name and build again.
    #[arg(long)]
    pub force: bool,
    /// Build from this subdirectory of the source.
    #[arg(long, value_name = "PATH")]
    pub context_subdir: Option<String>,
    /// An HTTP header for https:// sources ('Name: value'); repeatable. Sent only to that host.
    #[arg(long, short = 'H')]
    pub header: Vec<String>,
    /// PEM certificates to trust for https:// sources, besides the usual roots.
    #[arg(long, env = "WHIM_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Print one JSON object {name, arn, source, cached, egress}.
    #[arg(long)]
    pub json: bool,
}

/// `whim image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// List your images.
    Ls {
        /// Print only the names.
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Delete images (names or ARNs) and wait until they are gone.
    Rm {
        /// The images.
        #[arg(required = true, num_args = 1..)]
        names: Vec<String>,
    },
}

/// Caps of `put` and `get` (the copy fails with a message when one is exceeded).
#[derive(Debug, Clone, ClapArgs)]
pub struct CopyLimits {
    /// Largest copy, compressed or not: bytes, or with a K, M, G or T suffix (powers of 1024).
    #[arg(long, default_value = "1G")]
    pub max_bytes: String,
    /// Most files, directories and links in one copy.
    #[arg(long, default_value_t = 10_000)]
    pub max_files: u64,
}

/// `whim emulator …`.
#[derive(Debug, Subcommand)]
pub enum EmulatorCmd {
    /// Run the emulator in the foreground.
    Serve {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
        /// Run shells without namespaces (UNSAFE: they are plain processes on this host).
        #[arg(long)]
        unisolated: bool,
        /// Where to record the address for `--local` clients.
        #[arg(long, hide = true)]
        state_file: Option<PathBuf>,
    },
    /// Stop the background emulator.
    Stop,
    /// Boot one sandbox directly and run CMD in it (no API, no WebSocket): a baseline.
    Spawn {
        /// Run without namespaces (UNSAFE).
        #[arg(long)]
        unisolated: bool,
        /// The command.
        #[arg(last = true, required = true, num_args = 1..)]
        cmd: Vec<std::ffi::OsString>,
    },
}

/// Runs the command; returns the process exit code.
pub async fn dispatch(args: Args) -> u8 {
    let g = args.global;
    let top = &args.shell;
    if args.command.is_some() && (top.image.is_some() || top.ttl.is_some() || top.keep || top.privileged) {
        eprintln!("whim: --image, --privileged, --ttl and --keep go after the command (for example `whim shell --keep`)");
        return 2;
    }
    let result = match args.command {
        None => term::shell(&g, None, args.shell).await,
        Some(Cmd::Shell { id, opts }) => term::shell(&g, id, opts).await,
        Some(Cmd::Run { image, privileged, ttl, timeout, cmd }) => return run::run(&g, image, privileged, ttl, timeout, cmd).await,
        Some(Cmd::Build(a)) => images::build(&g, a).await,
        Some(Cmd::Image { cmd }) => images::image(&g, cmd).await,
        Some(Cmd::Init { image_name, force }) => images::init(&g, image_name, force).await,
        Some(Cmd::PreflightCheck) => preflight::preflight(&g).await,
        Some(Cmd::Put { id, source, remote_dir, limits }) => return copy::put(&g, id, source, remote_dir, limits).await,
        Some(Cmd::Get { id, remote, local_dir, limits }) => return copy::get(&g, id, remote, local_dir, limits).await,
        Some(Cmd::Exec { id, timeout, json, cmd }) => return vms::exec(&g, id, timeout, json, cmd).await,
        Some(Cmd::Launch { image, ttl, quiet, json }) => vms::launch(&g, image, ttl, quiet, json).await,
        Some(Cmd::Terminate { ids }) => vms::terminate(&g, ids).await,
        Some(Cmd::Ps { quiet, json, all }) => vms::ps(&g, quiet, json, all).await,
        Some(Cmd::Gc { older_than, yes, dry_run }) => vms::gc(&g, older_than, yes, dry_run).await,
        Some(Cmd::Suspend { id }) => vms::power(&g, id, true).await,
        Some(Cmd::Resume { id }) => vms::power(&g, id, false).await,
        Some(Cmd::Version) => version(&g).await,
        Some(Cmd::Emulator { cmd }) => local::emulator(cmd).await,
        Some(Cmd::Completions { shell }) => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "whim", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("whim: {e:#}");
            if is_usage(&e) { 2 } else { 1 }
        }
    }
}

/// A bad value given on the command line: exit code 2, like clap's own usage errors (CLI.md).
fn is_usage(e: &anyhow::Error) -> bool {
    e.downcast_ref::<whim_core::image::ImageError>().is_some()
        || e.downcast_ref::<whim_core::source::SourceError>().is_some()
        || e.downcast_ref::<Usage>().is_some()
        || matches!(e.downcast_ref(), Some(whim_tokio::Error::InvalidOption(_)))
}

/// A malformed option value found by whim rather than clap.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

async fn version(g: &Global) -> anyhow::Result<u8> {
    println!("whim {} (commit {})", env!("CARGO_PKG_VERSION"), env!("WHIM_COMMIT"));
    println!("backend: {}", aws::describe_backend(g));
    Ok(0)
}

/// Prints a whim failure for `run`-like commands and returns 125.
pub fn fail(e: &dyn std::fmt::Display) -> u8 {
    eprintln!("whim: {e}");
    EXIT_WHIM_FAILED
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
