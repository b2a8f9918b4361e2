//! The errors a caller of any whim runtime crate can tell apart.

use aws_sdk_lambdamicrovms::error::ProvideErrorMetadata as _;
use whim_core::power::PowerError;
use whim_core::shell::{CloseKind, ShellError};
use whim_core::{endpoint::EndpointError, exec::ExecError, lifecycle::LaunchError, transfer::TransferError, ttl::DurationError};

/// Everything that can go wrong, typed so callers can react (and `whim` can pick an exit code).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option was invalid (bad TTL, empty command, …).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The image name or ARN matches no image.
    #[error("image `{0}` not found in this account and region: {hint}", hint = not_found_hint(.0))]
    ImageNotFound(String),
    /// The image exists but its build has not finished.
    #[error("image `{name}` is still being built ({state}): wait for its build to finish (`whim image ls` shows its state)")]
    ImageNotReady {
        /// The image name or ARN.
        name: String,
        /// Its wire state.
        state: String,
    },
    /// An image of that name exists, built otherwise than asked (source, egress or
    /// capabilities); images are cached by name, so it is neither reused nor replaced.
    #[error("image `{name}` exists with {has}, not {asked} as asked: rebuild it with --force, or build under another --name")]
    ImageDiffers {
        /// The image name.
        name: String,
        /// How it was built.
        has: String,
        /// What was asked for.
        asked: String,
    },
    /// The VM id names no VM.
    #[error("no such VM: {0}")]
    VmNotFound(String),
    /// The VM is terminated.
    #[error("VM {0} is terminated")]
    Terminated(String),
    /// The VM is suspended (or suspending): it takes no connections until resumed.
    #[error("VM {0} is suspended: `whim resume {0}` wakes it")]
    Suspended(String),
    /// The VM died before it ran.
    #[error(transparent)]
    ProvisionFailed(LaunchError),
    /// Launch or an operation took too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A command's timeout expired; it and its process group were killed (the VM lives on).
    #[error("the command timed out after {}s and was killed", .0.as_secs())]
    CommandTimedOut(std::time::Duration),
    /// The shell connection closed or failed.
    #[error("connection to the VM closed: {0}")]
    ConnectionClosed(String),
    /// A service call failed.
    #[error("{operation}: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The service's error code, if any.
        code: Option<String>,
        /// What it said.
        message: String,
    },
    /// Exec framing failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Shell protocol misuse.
    #[error(transparent)]
    Shell(#[from] ShellError),
    /// The endpoint cannot be used safely.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The caller interrupted the operation; any VM it started was terminated.
    #[error("interrupted")]
    Interrupted,
    /// A local file or directory of a copy cannot be used, or the copy exceeds a limit.
    #[error("{0}")]
    Local(String),
    /// The VM sent an archive that failed the guard or is corrupt; nothing was written.
    #[error("refused what the VM sent: {0}")]
    Archive(String),
    /// A copy failed on the VM's side or in transit.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A build source cannot be used (bad syntax, `http://`, credentials in a URL, a hostile
    /// archive, no Dockerfile, a download that failed). Nothing was uploaded.
    #[error("invalid build source: {0}")]
    InvalidSource(String),
    /// A build source exceeds a cap (compressed or uncompressed bytes, file count). Nothing was
    /// uploaded.
    #[error("build source too large: {0}")]
    SourceTooLarge(String),
    /// An image build failed; the message carries the builds' `stateReason`.
    #[error("image `{name}` failed to build: {reason}")]
    BuildFailed {
        /// The image name.
        name: String,
        /// What the service said (the builds' `stateReason`, reference §D.3).
        reason: String,
    },
    /// Local I/O (the caller's streams).
    #[error("local I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<DurationError> for Error {
    fn from(e: DurationError) -> Self {
        Error::InvalidOption(e.to_string())
    }
}

impl From<PowerError> for Error {
    fn from(e: PowerError) -> Self {
        match e {
            PowerError::Api { operation, message } => Error::Api { operation, code: None, message },
            PowerError::Ended { id, .. } => Error::Terminated(id),
            other => Error::Timeout(other.to_string()),
        }
    }
}

impl From<LaunchError> for Error {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::Timeout { .. } => Error::Timeout(e.to_string()),
            LaunchError::Endpoint(e) => Error::Endpoint(e),
            LaunchError::Api { operation, message } => Error::Api { operation, code: None, message },
            other => Error::ProvisionFailed(other),
        }
    }
}

/// Maps an SDK error to [`Error`], keeping the service's code and message.
pub fn api<E, R>(operation: &'static str, err: aws_sdk_lambdamicrovms::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_lambdamicrovms::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = match (err.message(), &err) {
        (Some(m), _) => m.to_owned(),
        (None, aws_sdk_lambdamicrovms::error::SdkError::ServiceError(_)) => {
            code.clone().unwrap_or_else(|| "the service refused without a message (region not enabled, or IAM denial)".into())
        }
        (None, other) => describe(other),
    };
    Error::Api { operation, code, message }
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl Error {
    /// The error for a shell connection that ended while a command was running.
    #[must_use]
    pub fn lost(kind: &CloseKind) -> Error {
        match kind {
            CloseKind::ShellExited => Error::ConnectionClosed("the remote shell exited before the command finished".into()),
            CloseKind::Lost { code, reason } => Error::ConnectionClosed(format!(
                "the connection was lost (close {}{})",
                code.map_or("none".into(), |c| c.to_string()),
                if reason.is_empty() { String::new() } else { format!(": {reason}") }
            )),
        }
    }

    /// Maps a service "not found" answer about VM `id` to [`Error::VmNotFound`].
    #[must_use]
    pub fn vm_not_found(self, id: &str) -> Error {
        match &self {
            Error::Api { code: Some(c), .. } if c == "ResourceNotFoundException" => Error::VmNotFound(id.to_owned()),
            _ => self,
        }
    }
}

/// What to do about a missing image: whim's own are made by `whim init` or on first use.
fn not_found_hint(name: &str) -> &'static str {
    if name == whim_core::image::DEFAULT_IMAGE {
        "`whim init` builds it"
    } else if name == whim_core::image::PRIVILEGED_IMAGE {
        "`whim run --privileged` builds it"
    } else {
        "pass the name or ARN of an image you built (`whim image ls` lists them)"
    }
}
