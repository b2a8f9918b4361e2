//! Why an input cannot become a build context.

use crate::dockerignore::IgnoreError;

/// Why an input cannot become a build context. Paths are quoted with escapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// An absolute entry path.
    #[error("entry {path:?} is an absolute path: build sources must hold relative paths only")]
    AbsolutePath {
        /// The entry path.
        path: String,
    },
    /// An entry path with a `..` component.
    #[error("entry {path:?} has a `..` component: build sources must stay inside their root")]
    ParentComponent {
        /// The entry path.
        path: String,
    },
    /// An entry with an empty path, a NUL, or a file or link at the root itself.
    #[error("entry {path:?} has no usable name")]
    BadName {
        /// The entry path.
        path: String,
    },
    /// Two entries with the same normalised path.
    #[error("entry {path:?} appears twice in the build source")]
    Duplicate {
        /// The normalised path.
        path: String,
    },
    /// An entry below a file or a symlink.
    #[error("entry {path:?} is under {parent:?}, which is not a directory")]
    UnderNonDirectory {
        /// The entry path.
        path: String,
        /// The file or symlink on its way.
        parent: String,
    },
    /// A symlink that leaves the context root (absolute, or climbing above it).
    #[error("symlink {path:?} -> {target:?} points outside the build context: make it relative and inside, or replace it with the file")]
    SymlinkEscape {
        /// The symlink's path.
        path: String,
        /// Its target.
        target: String,
    },
    /// A symlink that does not resolve within 40 links.
    #[error("symlink {path:?} -> {target:?} loops")]
    SymlinkLoop {
        /// The symlink's path.
        path: String,
        /// Its target.
        target: String,
    },
    /// A byte cap was exceeded.
    #[error("the build source exceeds the {what} size limit of {limit} bytes: leave large files out with .dockerignore")]
    TooLarge {
        /// "compressed" or "uncompressed".
        what: &'static str,
        /// The cap.
        limit: u64,
    },
    /// The file cap was exceeded.
    #[error("the build source has more than {limit} files or directories: leave some out with .dockerignore")]
    TooManyFiles {
        /// The cap.
        limit: u64,
    },
    /// The context subdirectory (or the Dockerfile path) is absolute or has `..`.
    #[error("{what} {path:?} must be a relative path without `..`")]
    BadOptionPath {
        /// "context subdirectory" or "Dockerfile path".
        what: &'static str,
        /// The path as given.
        path: String,
    },
    /// The context subdirectory is not in the source.
    #[error("the context subdirectory {subdir:?} is not in the build source: check --context-subdir")]
    SubdirNotFound {
        /// The subdirectory.
        subdir: String,
    },
    /// The context subdirectory is a file or symlink (or lies under one).
    #[error("the context subdirectory {subdir:?} is not a directory")]
    SubdirNotDirectory {
        /// The subdirectory.
        subdir: String,
    },
    /// No Dockerfile at the context root (or at the designated path).
    #[error("no {path:?} in the build context: add a Dockerfile at its root, or point --context-subdir at the directory that has one")]
    NoDockerfile {
        /// The path looked for.
        path: String,
    },
    /// The Dockerfile is a directory or a symlink.
    #[error("{path:?} is not a regular file: the Dockerfile must be a plain file")]
    DockerfileNotFile {
        /// Its path in the context.
        path: String,
    },
    /// The context's `.dockerignore` is invalid.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
}
