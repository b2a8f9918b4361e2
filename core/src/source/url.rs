//! The URL checks behind [`Source::parse`](super::Source::parse). Errors never quote the
//! text they refuse, so userinfo cannot leak through them.

use super::{Source, SourceError};

/// Whether `text` has the SSH shape `user@host:path` (no '/' before the ':').
pub(super) fn looks_like_scp(text: &str) -> bool {
    let Some(colon) = text.find(':') else { return false };
    let head = &text[..colon];
    !head.contains('/') && head.find('@').is_some_and(|at| at > 0 && at + 1 < head.len())
}

/// Splits `host[:port]/path?query` after `scheme://` into the authority and the rest
/// (which starts with '/', '?' or '#', or is empty). Refuses userinfo.
pub(super) fn split_authority(rest: &str) -> Result<(&str, &str), SourceError> {
    refuse_userinfo(rest)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Ok(rest.split_at(end))
}

/// Refuses `user[:password]@` before the host.
pub(super) fn refuse_userinfo(rest: &str) -> Result<(), SourceError> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..end].contains('@') { Err(SourceError::Userinfo) } else { Ok(()) }
}

/// Parses an `https://` URL (`rest` is what follows the scheme).
pub(super) fn parse_https(whole: &str, rest: &str) -> Result<Source, SourceError> {
    let (authority, path) = split_authority(rest)?;
    if authority.is_empty() {
        return Err(SourceError::BadUrl("the host is missing: write https://host/path"));
    }
    check_authority(authority)?;
    if whole.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SourceError::BadUrl("the URL contains whitespace or control characters: percent-encode them"));
    }
    if path.is_empty() || path == "/" {
        return Err(SourceError::BadUrl("the URL has no path: name the archive or Dockerfile to download"));
    }
    // The scheme is case-insensitive; keep one spelling so later `https://` checks hold.
    Ok(Source::Https { url: format!("https://{rest}") })
}

/// A host name or IP literal with an optional port.
fn check_authority(authority: &str) -> Result<(), SourceError> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => (h, Some(p)),
        _ => (authority, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err()) {
        return Err(SourceError::BadUrl("the port is not a number from 0 to 65535"));
    }
    let ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
    };
    if ok { Ok(()) } else { Err(SourceError::BadUrl("the host has characters a host name cannot have")) }
}

/// Parses `bucket/key` after `s3://`.
pub(super) fn parse_s3(rest: &str) -> Result<Source, SourceError> {
    refuse_userinfo(rest)?;
    let (bucket, key) = rest.split_once('/').ok_or(SourceError::BadS3("the key is missing"))?;
    if bucket.is_empty() {
        return Err(SourceError::BadS3("the bucket is missing"));
    }
    if bucket.len() > 255 || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(SourceError::BadS3("the bucket name has characters a bucket cannot have"));
    }
    if key.is_empty() {
        return Err(SourceError::BadS3("the key is missing"));
    }
    if key.chars().any(char::is_control) {
        return Err(SourceError::BadS3("the key contains control characters"));
    }
    Ok(Source::S3 { bucket: bucket.to_owned(), key: key.to_owned() })
}

/// The scheme if it is made of scheme characters, else `?` (it is quoted in an error).
pub(super) fn printable_scheme(scheme: &str) -> String {
    let ok = !scheme.is_empty() && scheme.len() <= 32 && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if ok { scheme.to_ascii_lowercase() } else { "?".to_owned() }
}

/// A GitHub user or organisation: 1-39 letters, digits and inner `-`.
pub(super) fn check_owner(owner: &str) -> Result<(), SourceError> {
    let ok = (1..=39).contains(&owner.len()) && !owner.starts_with('-') && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok { Ok(()) } else { Err(SourceError::BadGitHub("the owner must be 1-39 letters, digits or `-`")) }
}

/// A repository name: 1-100 letters, digits, `-`, `_`, `.`; not `.` or `..`.
pub(super) fn check_repo(repo: &str) -> Result<(), SourceError> {
    let charset = repo.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if (1..=100).contains(&repo.len()) && charset && repo != "." && repo != ".." {
        Ok(())
    } else {
        Err(SourceError::BadGitHub("the repository name must be 1-100 letters, digits, `-`, `_` or `.`"))
    }
}

/// A branch, tag or commit: letters, digits, `-`, `_`, `.`, inner `/`; no `..`, `//`, or
/// leading `-`/`.`, so it cannot climb or reshape the download URL's path.
pub(super) fn check_reference(reference: &str) -> Result<(), SourceError> {
    let charset = reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    let shape = !reference.starts_with(['-', '.', '/']) && !reference.ends_with(['/', '.']);
    let parts = !reference.contains("..") && !reference.contains("//") && !reference.contains("/.");
    if (1..=255).contains(&reference.len()) && charset && shape && parts {
        Ok(())
    } else {
        Err(SourceError::BadGitHub("the ref after `@` must be a branch, tag or commit: letters, digits, `-`, `_`, `.` and inner `/`"))
    }
}
