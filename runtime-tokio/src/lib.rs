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
//! This crate is a thin driver: the protocol logic lives in `whim-core` and the service
//! calls in `whim-sdk`; here are the WebSocket, timers and the caller's streams.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod manager;
mod sandbox;
mod ws;

pub use manager::Manager;
pub use sandbox::Sandbox;
pub use whim_sdk::context::{ContextLimits, ContextOptions};
pub use whim_sdk::transfer::Limits;
pub use whim_sdk::{Bootstrap, BuildEvent, BuildOptions, BuiltImage, Egress, ImageEntry, Secret};
pub use whim_sdk::{EXEC_COLS, EXEC_ROWS, Error, ExitStatus, LaunchOptions, LaunchTimings, ManagerOptions, Output, ShellEnd, Ttl};
pub use whim_sdk::{GcFilter, GcReport, VmEntry};
