//! whim from plain blocking code: throwaway root shells in AWS Lambda MicroVMs, with no
//! async runtime and no thread pool.
//!
//! ```no_run
//! # fn demo(sdk: aws_types::SdkConfig) -> Result<(), whim_blocking::Error> {
//! use whim_blocking::{LaunchOptions, Manager, ManagerOptions};
//! let mgr = Manager::new(&sdk, ManagerOptions::default())?;
//! let mut vm = mgr.launch("whim-default", LaunchOptions::default())?;
//! let out = vm.exec(["uname", "-a"])?;
//! print!("{}", String::from_utf8_lossy(&out.output));
//! vm.terminate()?;
//! # Ok(()) }
//! ```
//!
//! Every call completes on the calling thread: the AWS SDK runs on an HTTP client that
//! finishes each request inside the SDK's first poll (see [`block_on`] and
//! `whim-http-blocking`), and the shell
//! WebSocket is tungstenite over a `std::net::TcpStream` with read timeouts.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod manager;
mod sandbox;
mod ws;

pub use manager::Manager;
pub use sandbox::{Sandbox, ShellInput};
pub use whim_http_blocking::block_on;
pub use whim_sdk::context::{ContextLimits, ContextOptions};
pub use whim_sdk::transfer::Limits;
pub use whim_sdk::{Bootstrap, BuildEvent, BuildOptions, BuiltImage, Egress, ImageEntry, Secret};
pub use whim_sdk::{EXEC_COLS, EXEC_ROWS, Error, ExitStatus, LaunchOptions, LaunchTimings, ManagerOptions, Output, ShellEnd, Ttl, VmInfo};
pub use whim_sdk::{GcFilter, GcReport, VmEntry};

/// A Lambda MicroVMs client for `sdk` whose calls finish on the calling thread.
#[must_use]
pub fn sdk_client(sdk: &aws_types::SdkConfig) -> aws_sdk_lambdamicrovms::Client {
    use whim_http_blocking::{BlockingHttpClient, BlockingSleep};
    let sleep = aws_smithy_async::rt::sleep::SharedAsyncSleep::new(BlockingSleep);
    let conf = aws_sdk_lambdamicrovms::config::Builder::from(sdk).http_client(BlockingHttpClient::default()).sleep_impl(sleep);
    aws_sdk_lambdamicrovms::Client::from_conf(conf.build())
}
