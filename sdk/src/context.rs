//! Build contexts: turns a parsed [`Source`] into the zip `whim build` uploads.
//!
//! Blocking, runtime-neutral code: a runtime crate calls [`prepare`] (or, for an `s3://`
//! object it fetched itself, [`prepare_archive`]) on a blocking thread. Every decision
//! about what the context holds is core's [`ContextNormaliser`]; this module reads local
//! trees (never following a symlink), downloads over HTTPS (redirects followed by hand,
//! https only, at most 5, secrets dropped when the host changes, the compressed cap enforced
//! while reading), opens zip and tar.gz archives, and writes the deterministic output zip.
//!
//! Header values, tokens and URL userinfo never appear in an error, a log line or a `Debug`.

use std::fmt;

use whim_core::source::{ContextError, ContextNormaliser, ContextPlan, GITHUB_API_BASE, NormaliseOptions, Source, github_archive_url};

use crate::{Error, Secret};

pub use whim_core::source::ContextLimits;

mod archive;
mod fetch;
mod local;
mod pack;

/// How a source is fetched and packaged. `Debug` shows no header value or token.
#[derive(Clone)]
pub struct ContextOptions {
    /// Re-root the context at this directory of the source (`--context-subdir`).
    pub context_subdir: Option<String>,
    /// Caps on the source.
    pub limits: ContextLimits,
    /// Headers sent with an `https://` download (only to its first host).
    pub https_headers: Vec<(String, Secret)>,
    /// Sent as `Authorization: Bearer …` to the GitHub API (only to its host).
    pub github_token: Option<Secret>,
    /// The GitHub API base, `https://api.github.com` by default.
    pub github_api_base: String,
    /// PEM certificates trusted as roots in addition to Mozilla's (a corporate CA).
    pub extra_root_certs_pem: Vec<Vec<u8>>,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            context_subdir: None,
            limits: ContextLimits::default(),
            https_headers: Vec::new(),
            github_token: None,
            github_api_base: GITHUB_API_BASE.to_owned(),
            extra_root_certs_pem: Vec::new(),
        }
    }
}

impl fmt::Debug for ContextOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &Secret)> = self.https_headers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        f.debug_struct("ContextOptions")
            .field("context_subdir", &self.context_subdir)
            .field("limits", &self.limits)
            .field("https_headers", &headers)
            .field("github_token", &self.github_token)
            .field("github_api_base", &self.github_api_base)
            .field("extra_root_certs_pem", &format_args!("{} PEM file(s)", self.extra_root_certs_pem.len()))
            .finish()
    }
}

/// A packaged build context, ready to upload.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedContext {
    /// The zip: `Dockerfile` at the root, sorted entries, fixed timestamps, unix modes kept.
    pub zip: Vec<u8>,
    /// Files and symlinks in it.
    pub files: u64,
    /// Sum of the file sizes.
    pub uncompressed_bytes: u64,
    /// SHA-256 of `zip`, lowercase hex.
    pub sha256_hex: String,
}

impl fmt::Debug for PreparedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedContext")
            .field("zip", &format_args!("{} bytes", self.zip.len()))
            .field("files", &self.files)
            .field("uncompressed_bytes", &self.uncompressed_bytes)
            .field("sha256_hex", &self.sha256_hex)
            .finish()
    }
}

/// Validates and packages `source` (blocking: reads files or downloads). An `s3://` source
/// is refused here: fetch the object with the AWS SDK and call [`prepare_archive`].
pub fn prepare(source: &Source, opts: &ContextOptions) -> Result<PreparedContext, Error> {
    tracing::debug!(source = %source, "preparing the build context");
    match source {
        Source::Local { path } => local::prepare(std::path::Path::new(path), opts),
        Source::Https { url } => {
            let bytes = fetch::download(url, &opts.https_headers, opts)?;
            archive::prepare_download(&bytes, opts)
        }
        Source::GitHub { owner, repo, reference } => {
            let url = github_archive_url(&opts.github_api_base, owner, repo, reference);
            let bytes = fetch::download(&url, &github_headers(opts), opts)?;
            archive::prepare_download(&bytes, opts)
        }
        Source::S3 { .. } => {
            Err(Error::InvalidSource("s3:// sources are fetched with the AWS SDK: pass the object's bytes to prepare_archive".into()))
        }
        _ => Err(Error::InvalidSource(format!("{source}: this kind of source is not supported here"))),
    }
}

/// Packages an archive already in memory (an `s3://` object): a zip, a tar.gz, or a raw
/// Dockerfile (a context of that one file). A wrapping top-level folder is stripped.
pub fn prepare_archive(bytes: &[u8], opts: &ContextOptions) -> Result<PreparedContext, Error> {
    archive::prepare_download(bytes, opts)
}

/// The headers of a GitHub API download; the token only as `Authorization`.
fn github_headers(opts: &ContextOptions) -> Vec<(String, Secret)> {
    let mut headers = vec![
        ("Accept".to_owned(), Secret::new("application/vnd.github+json".to_owned())),
        ("X-GitHub-Api-Version".to_owned(), Secret::new("2022-11-28".to_owned())),
    ];
    if let Some(token) = &opts.github_token {
        headers.push(("Authorization".to_owned(), Secret::new(format!("Bearer {}", token.expose()))));
    }
    headers
}

/// Where the bytes of the kept files come from.
trait Contents {
    /// The `size` bytes of input entry `source`.
    fn read(&mut self, source: &str, size: u64) -> Result<Vec<u8>, Error>;
}

/// Maps core's refusal to the error a caller can tell apart.
fn context_error(e: ContextError) -> Error {
    match e {
        ContextError::TooLarge { .. } | ContextError::TooManyFiles { .. } => Error::SourceTooLarge(e.to_string()),
        other => Error::InvalidSource(other.to_string()),
    }
}

/// The normaliser options shared by every kind of source.
fn normalise_options(opts: &ContextOptions, strip_wrapper: bool, dockerfile: Option<String>) -> NormaliseOptions {
    NormaliseOptions { strip_wrapper, context_subdir: opts.context_subdir.clone(), dockerfile, limits: opts.limits }
}

/// Finishes a fed normaliser: reads `.dockerignore`, applies it and writes the zip.
fn finish(normaliser: ContextNormaliser, contents: &mut dyn Contents) -> Result<PreparedContext, Error> {
    let plan: ContextPlan = normaliser.finish().map_err(context_error)?;
    let ignore = match plan.dockerignore_input() {
        Some((source, size)) => Some((source.to_owned(), contents.read(source, size)?)),
        None => None,
    };
    let text = match &ignore {
        Some((_, bytes)) => Some(std::str::from_utf8(bytes).map_err(|_| Error::InvalidSource(".dockerignore is not UTF-8 text".into()))?),
        None => None,
    };
    let entries = plan.apply(text).map_err(context_error)?;
    let mut contents = Remembered { inner: contents, saved: ignore };
    pack::zip(entries, &mut contents)
}

/// Serves the already-read `.dockerignore` again (an archive's contents may be read once).
struct Remembered<'a> {
    inner: &'a mut dyn Contents,
    saved: Option<(String, Vec<u8>)>,
}

impl Contents for Remembered<'_> {
    fn read(&mut self, source: &str, size: u64) -> Result<Vec<u8>, Error> {
        match self.saved.take_if(|(s, _)| s == source) {
            Some((_, bytes)) => Ok(bytes),
            None => self.inner.read(source, size),
        }
    }
}

#[cfg(test)]
mod tests;
