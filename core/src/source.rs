//! Build sources: what a user may name as the thing to build, and the build context made of it.
//!
//! [`Source::parse`] reads the user's text: a local path (directory, Dockerfile or archive),
//! `s3://bucket/key`, `https://host/path` (a zip, a tar.gz or a raw Dockerfile),
//! `github.com/org/repo@ref` or `git+https://github.com/org/repo@ref`. It refuses `http://`,
//! credentials in a URL (they belong in a header) and every other scheme, without ever
//! echoing what it refused as credentials. [`github_archive_url`] lowers a GitHub source to
//! the API's zipball download.
//!
//! [`context`] turns the entries of a tree or archive into the build context: the sans-IO
//! normaliser that refuses hostile entries, re-roots, applies `.dockerignore` and the caps.

pub mod context;
mod url;

use std::fmt;

pub use context::{
    ContextError, ContextLimits, ContextNormaliser, ContextPlan, InputEntry, InputKind, NormaliseOptions, OutputEntry, OutputKind,
};

/// The GitHub API base used when the caller configures none.
pub const GITHUB_API_BASE: &str = "https://api.github.com";

/// The reference used when a GitHub source names none: the repository's default branch.
pub const DEFAULT_REFERENCE: &str = "HEAD";

/// A parsed build source. Its `Display` is safe for logs and JSON: it never contains
/// credentials (sources carrying them are refused at parse time) and shows an https URL
/// without its query string or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A local path: a directory, a Dockerfile, or a `.zip`/`.tar.gz` archive. Core cannot
    /// look, so the caller classifies it.
    Local {
        /// The path as given.
        path: String,
    },
    /// An object in S3, fetched by the caller with its AWS credentials.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key (never empty).
        key: String,
    },
    /// An `https://` download: a zip, a tar.gz or a raw Dockerfile.
    Https {
        /// The URL as given (validated: https, a host, no userinfo, no whitespace).
        url: String,
    },
    /// A GitHub repository at a reference, downloaded as the API's zipball.
    GitHub {
        /// The owner (user or organisation).
        owner: String,
        /// The repository name (a `.git` suffix is dropped).
        repo: String,
        /// Branch, tag or commit; [`DEFAULT_REFERENCE`] when none was given.
        reference: String,
    },
}

/// Why a build source was refused. No variant holds URL userinfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Nothing was given.
    #[error("the build source is empty: give a directory, a Dockerfile, an archive, s3://bucket/key, https://… or github.com/org/repo@ref")]
    Empty,
    /// An `http://` URL.
    #[error("http:// sources are refused because they can be altered in transit: use https://")]
    PlainHttp,
    /// A URL with `user:password@` before the host.
    #[error(
        "credentials in a URL are refused: pass them in a header instead (never put secrets in URLs, they end up in logs and shell history)"
    )]
    Userinfo,
    /// A scheme whim does not fetch.
    #[error("`{scheme}://` sources are not supported: use a local path, s3://, https:// or github.com/org/repo@ref")]
    UnknownScheme {
        /// The scheme (letters, digits, `+`, `-`, `.` only, or `?` when it had others).
        scheme: String,
    },
    /// An SSH-style `git@host:org/repo` source.
    #[error("SSH git sources (git@host:…) are not supported: use github.com/org/repo@ref")]
    SshGit,
    /// A malformed `s3://` source.
    #[error("bad S3 source: {0} (expected s3://bucket/key)")]
    BadS3(&'static str),
    /// A malformed `https://` URL.
    #[error("bad https source: {0}")]
    BadUrl(&'static str),
    /// A malformed GitHub source.
    #[error("bad GitHub source: {0} (expected github.com/org/repo@ref)")]
    BadGitHub(&'static str),
}

impl Source {
    /// Parses what a user typed as a build source.
    pub fn parse(text: &str) -> Result<Source, SourceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SourceError::Empty);
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            return parse_url(scheme, rest, text);
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "github.com/") {
            return parse_github(rest);
        }
        if url::looks_like_scp(text) {
            return Err(SourceError::SshGit);
        }
        Ok(Source::Local { path: text.to_owned() })
    }
}

/// Dispatches on a URL's scheme.
fn parse_url(scheme: &str, rest: &str, whole: &str) -> Result<Source, SourceError> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => url::parse_https(whole, rest),
        "http" => {
            url::refuse_userinfo(rest)?;
            Err(SourceError::PlainHttp)
        }
        "s3" => url::parse_s3(rest),
        "git+https" => {
            let (host, path) = url::split_authority(rest)?;
            if !host.eq_ignore_ascii_case("github.com") {
                return Err(SourceError::BadGitHub("only github.com repositories are supported"));
            }
            parse_github(path.strip_prefix('/').unwrap_or(path))
        }
        _ => {
            url::refuse_userinfo(rest)?;
            Err(SourceError::UnknownScheme { scheme: url::printable_scheme(scheme) })
        }
    }
}

/// Parses `org/repo[.git][@ref]`.
fn parse_github(rest: &str) -> Result<Source, SourceError> {
    let (path, reference) = match rest.split_once('@') {
        Some((p, r)) => (p, r),
        None => (rest, DEFAULT_REFERENCE),
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let (owner, repo) = path.split_once('/').ok_or(SourceError::BadGitHub("the repository is missing"))?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    url::check_owner(owner)?;
    url::check_repo(repo)?;
    url::check_reference(reference)?;
    Ok(Source::GitHub { owner: owner.to_owned(), repo: repo.to_owned(), reference: reference.to_owned() })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Local { path } => f.write_str(path),
            Source::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            Source::Https { url } => f.write_str(without_query(url)),
            Source::GitHub { owner, repo, reference } => write!(f, "github.com/{owner}/{repo}@{reference}"),
        }
    }
}

/// `url` without its query string and fragment: what may be shown of an https source
/// (presigned URLs carry their signature in the query).
#[must_use]
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The GitHub API URL that downloads `owner/repo` at `reference` as a zip
/// (`{api_base}/repos/{owner}/{repo}/zipball/{reference}`). The parts MUST come from a
/// [`Source::GitHub`], whose charset checks keep them from reshaping the URL.
#[must_use]
pub fn github_archive_url(api_base: &str, owner: &str, repo: &str, reference: &str) -> String {
    format!("{}/repos/{owner}/{repo}/zipball/{reference}", api_base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
