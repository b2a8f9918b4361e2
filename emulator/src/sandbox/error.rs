//! The error type of the sandbox module.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while booting or driving a sandboxed VM.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SandboxError {
    /// The helper binary could not be started at all.
    #[error(
        "could not start the sandbox helper {exe}: {source}; set helper_exe to a binary whose main() \
         calls sandbox::run_helper_if_requested() first"
    )]
    HelperSpawn {
        /// The binary that was executed.
        exe: PathBuf,
        /// Why the exec failed.
        #[source]
        source: std::io::Error,
    },
    /// Namespace, mount or cgroup setup failed inside the helper; the text names the step.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// The helper did not report that the VM's init was ready in time.
    #[error(
        "the sandbox helper did not report ready within {0:?}; check that helper_exe calls \
         sandbox::run_helper_if_requested() first thing in main() and that the host is not overloaded"
    )]
    BootTimeout(Duration),
    /// The VM is not running any more (killed, or its init exited).
    #[error("the VM is not running (it was killed or its init exited); boot a new one")]
    Dead,
    /// The VM's init could not start a shell; the text says why.
    #[error("could not start a shell in the VM: {0}")]
    Spawn(String),
    /// The VM's init sent something this side does not understand.
    #[error("unexpected message from the VM's init: {0:?}; this is a bug in the sandbox module")]
    Protocol(String),
    /// Freezing or thawing the VM failed.
    #[error("could not {action} the VM: {detail}")]
    Freeze {
        /// "freeze" or "thaw".
        action: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A host-side system call failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation that failed.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Wraps an OS error with the operation it came from.
    pub(crate) fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        SandboxError::Io { what: what.into(), source: source.into() }
    }
}
