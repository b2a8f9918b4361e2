//! whim on tokio: throwaway root shells in AWS Lambda MicroVMs.
//!
//! ```no_run
//! # async fn demo(sdk: aws_types::SdkConfig) -> Result<(), whim_tokio::Error> {
//! use whim_tokio::{LaunchOptions, Manager, ManagerOptions};
//! let mgr = Manager::new(&sdk, ManagerOptions::default())?;
//! let mut vm = mgr.launch("whim-default", LaunchOptions::default()).await?;
//! let out = vm.exec(["uname", "-a"]).await?;
//! print!("{}", String::from_utf8_lossy(&out.output));
//! vm.terminate().await?;
//! # Ok(()) }
//! ```
//!
//! This crate is a thin driver: the protocol logic lives in `whim-core`; here are the
//! AWS SDK calls, the WebSocket, timers and the caller's streams.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod manager;
mod sandbox;
mod ws;

pub use error::Error;
pub use manager::{LaunchOptions, LaunchTimings, Manager, ManagerOptions};
pub use sandbox::{EXEC_COLS, EXEC_ROWS, Output, Sandbox, ShellEnd};
pub use whim_core::exec::ExitStatus;
pub use whim_core::ttl::Ttl;
