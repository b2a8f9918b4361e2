//! whim on the async-io family: throwaway root shells in AWS Lambda MicroVMs from
//! async-std and smol programs alike, with no tokio runtime underneath.
//!
//! ```no_run
//! # async fn demo(sdk: aws_types::SdkConfig) -> Result<(), whim_async_std::Error> {
//! use whim_async_std::{LaunchOptions, Manager, ManagerOptions};
//! let mgr = Manager::new(&sdk, ManagerOptions::default())?;
//! let mut vm = mgr.launch("whim-default", LaunchOptions::default()).await?;
//! let out = vm.exec(["uname", "-a"]).await?;
//! print!("{}", String::from_utf8_lossy(&out.output));
//! vm.terminate().await?;
//! # Ok(()) }
//! ```
//!
//! The AWS SDK runs on an HTTP client built on async-net, futures-rustls and hyper's
//! connection API, with async-io timers; the shell WebSocket is async-tungstenite. Every
//! future here runs on any executor driven by async-io's reactor (async-std's and smol's).
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
pub use whim_sdk::{EXEC_COLS, EXEC_ROWS, Error, ExitStatus, LaunchOptions, LaunchTimings, ManagerOptions, Output, ShellEnd, Ttl, VmInfo};
pub use whim_sdk::{GcFilter, GcReport, VmEntry};

/// A Lambda MicroVMs client for `sdk` doing its HTTP and sleeping on async-io.
#[must_use]
pub fn sdk_client(sdk: &aws_types::SdkConfig) -> aws_sdk_lambdamicrovms::Client {
    use whim_http_async_io::{AsyncIoHttpClient, AsyncIoSleep};
    let sleep = aws_smithy_async::rt::sleep::SharedAsyncSleep::new(AsyncIoSleep);
    let conf = aws_sdk_lambdamicrovms::config::Builder::from(sdk).http_client(AsyncIoHttpClient).sleep_impl(sleep);
    aws_sdk_lambdamicrovms::Client::from_conf(conf.build())
}
