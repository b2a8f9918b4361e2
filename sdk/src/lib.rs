//! The runtime-neutral half of whim's runtime crates (`whim-tokio`, `whim-async-std`,
//! `whim-blocking`): the AWS SDK calls, the launch driver around core's machine, the
//! error type and the option types they all share.
//!
//! The SDK's futures run on any executor once the client has an HTTP client and a sleep
//! that fit it, so each runtime crate builds the [`aws_sdk_lambdamicrovms::Client`] its
//! own way and hands it to [`Api::new`]. What is left to a runtime crate is I/O: the shell
//! WebSocket, timers, the caller's streams, and the loops that move bytes between them and
//! core's machines. Credentials come from the caller's config, never from the environment.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod bootstrap;
mod build;
pub mod context;
mod error;
mod events;
mod fleet;
mod images;
mod launch;
pub mod transfer;
pub mod ws;

pub use api::{Api, ManagerOptions};
pub use bootstrap::Bootstrap;
pub use build::{BuildEvent, BuildOptions, BuiltImage, PrepareJob};
pub use error::{Error, api as api_error};
pub use events::{ShellEnd, exec_events, shell_events};
pub use fleet::{GcReport, unix_now};
pub use images::{ImageEntry, ImageSpec, VersionSettings};
pub use launch::{LaunchDriver, LaunchOptions, LaunchStep, LaunchTimings, VmInfo};
/// A value that never prints (`Debug` and `Display` show `<redacted>`): tokens, header values.
pub use whim_core::endpoint::Secret;
pub use whim_core::exec::ExitStatus;
pub use whim_core::fleet::{GcFilter, VmEntry};
pub use whim_core::image::Egress;
pub use whim_core::ttl::Ttl;

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

/// A fresh exec nonce from the thread's CSPRNG.
#[must_use]
pub fn nonce() -> whim_core::exec::Nonce {
    whim_core::exec::Nonce(rand::random())
}
