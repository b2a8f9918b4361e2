//! A local emulator of AWS Lambda MicroVMs, so whim works and is tested without an AWS account.
//!
//! One loopback listener serves:
//! - the control plane at the service's real restJson1 paths (`/2025-09-09/…`), answering the
//!   official SDK with the recorded shapes, status codes, error types and explicit nulls;
//!   requests must carry a SigV4 `Authorization` header (its signature is not verified) and are
//!   routed by the credential scope's service;
//! - beside it, by that service: STS GetCallerIdentity, IAM roles and inline policies
//!   (awsQuery), and path-style S3 (s3s over s3s-fs under [`EmulatorConfig::state_dir`],
//!   signed with the local key pair), which holds the code artifacts images are built from;
//! - every VM's endpoint, routed by the `Host` header (`<uuid>.lambda-microvm.<region>.on.aws`),
//!   with token checks and the shell WebSocket protocol;
//! - `GET /__whim/health` and `POST /__whim/shutdown`.
//!
//! Each VM is a real bash on a real pty in Linux namespaces ([`sandbox`]). Behaviour the
//! recordings do not settle is a knob in [`Guesses`], each documented as a guess.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emulator = whim_emulator::Emulator::start(whim_emulator::EmulatorConfig::local_default()).await?;
//! println!("SDK endpoint_url: {}", emulator.endpoint_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

pub mod build;
pub mod sandbox;

mod api;
mod config;
mod endpoint;
mod server;
mod spawn;
mod state;

pub use config::{EmulatorConfig, Guesses, UnrecordedTransition};
pub use sandbox::run_helper_if_requested;
pub use server::{Emulator, StartError};
pub use spawn::spawn_direct;

/// Access key id `whim --local` signs with (the emulator does not verify signatures).
pub const LOCAL_ACCESS_KEY_ID: &str = "WHIMLOCALACCESSKEY";
/// Secret access key `whim --local` signs with.
pub const LOCAL_SECRET_ACCESS_KEY: &str = "whim-local-secret-not-a-secret";
/// Region of the local emulator.
pub const LOCAL_REGION: &str = "us-east-1";
