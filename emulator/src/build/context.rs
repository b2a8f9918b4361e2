//! The build context: the code artifact (a zip) checked as hostile input and unpacked into a
//! fresh directory that only this build uses.
//!
//! Refused: unreadable or encrypted archives, absolute names, `..`, backslashes, duplicate
//! entries, entries beneath a file or symlink, symlinks that point outside the archive, more than
//! [`MAX_FILES`] entries or [`MAX_BYTES`] unpacked. Nothing is ever written through a symlink:
//! the names are all checked before anything is written, and symlinks are made last.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

/// Most entries an artifact may hold.
pub(crate) const MAX_FILES: usize = 10_000;
/// Most bytes an artifact may unpack to.
pub(crate) const MAX_BYTES: u64 = 1 << 30;
/// Largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 1 << 20;
/// Longest symlink target.
const MAX_LINK: u64 = 4096;

/// Why the artifact cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextError {
    /// Not a readable, acceptable zip (the text says what is wrong).
    Invalid(String),
    /// No regular file named `Dockerfile` at the archive's root.
    NoDockerfile,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// An entry that passed the name checks.
#[derive(Debug)]
struct Entry {
    index: usize,
    kind: Kind,
    mode: u32,
}

/// Unpacks `zip` into `dest` (created, must not exist) and returns the Dockerfile's text.
pub(crate) fn unpack(zip: &[u8], dest: &Path) -> Result<String, ContextError> {
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|e| invalid(format!("the code artifact is not a readable zip file: {e}")))?;
    if archive.len() > MAX_FILES {
        return Err(invalid(format!("the code artifact holds {} entries, more than the limit of {MAX_FILES}", archive.len())));
    }
    let entries = check_entries(&mut archive)?;
    match entries.get("Dockerfile") {
        Some(entry) if entry.kind == Kind::File => {}
        _ => return Err(ContextError::NoDockerfile),
    }
    fs::create_dir(dest).map_err(|e| invalid(format!("cannot create the build context directory: {e}")))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o700)).map_err(|e| invalid(format!("chmod the build context: {e}")))?;
    write_all(&mut archive, &entries, dest)?;
    let text = fs::read(dest.join("Dockerfile")).map_err(|e| invalid(format!("read the Dockerfile: {e}")))?;
    if text.len() as u64 > MAX_DOCKERFILE {
        return Err(invalid(format!("the Dockerfile is larger than {MAX_DOCKERFILE} bytes")));
    }
    String::from_utf8(text).map_err(|_| invalid("the Dockerfile is not UTF-8 text".into()))
}

fn invalid(why: String) -> ContextError {
    ContextError::Invalid(why)
}

/// Reads every entry's name and kind; rejects unsafe names and layouts.
fn check_entries(archive: &mut ZipArchive<Cursor<&[u8]>>) -> Result<BTreeMap<String, Entry>, ContextError> {
    let mut entries = BTreeMap::new();
    for index in 0..archive.len() {
        let file = archive.by_index(index).map_err(|e| invalid(format!("entry {index} of the code artifact is unreadable: {e}")))?;
        if file.encrypted() {
            return Err(invalid(format!("entry {index} of the code artifact is encrypted")));
        }
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        let key = normalize(&name)?;
        let kind = match (file.is_dir(), file.is_symlink()) {
            (true, _) => Kind::Dir,
            (false, true) => Kind::Symlink,
            (false, false) => Kind::File,
        };
        let mode = file.unix_mode().unwrap_or(if kind == Kind::Dir { 0o755 } else { 0o644 }) & 0o777;
        if key.is_empty() && kind == Kind::Dir {
            continue; // "./" names the root itself.
        }
        if key.is_empty() || entries.insert(key.clone(), Entry { index, kind, mode }).is_some() {
            return Err(invalid(format!("the code artifact has a duplicate or empty entry name {name:?}")));
        }
    }
    check_parents(&entries)?;
    Ok(entries)
}

/// `a/./b/` → `a/b`; absolute names, `..`, backslashes and NUL are refused.
fn normalize(name: &str) -> Result<String, ContextError> {
    if name.starts_with('/') || name.contains(['\\', '\0']) {
        return Err(invalid(format!("the code artifact has an unsafe entry name {name:?} (absolute, backslash or NUL)")));
    }
    let mut parts = Vec::new();
    for part in name.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return Err(invalid(format!("the code artifact has an entry name with '..': {name:?}")));
        }
        parts.push(part);
    }
    Ok(parts.join("/"))
}

/// Every proper prefix of an entry must be a directory (explicit or implied).
fn check_parents(entries: &BTreeMap<String, Entry>) -> Result<(), ContextError> {
    for key in entries.keys() {
        let mut prefix = key.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if let Some(entry) = entries.get(parent).filter(|e| e.kind != Kind::Dir) {
                let what = if entry.kind == Kind::Symlink { "symlink" } else { "file" };
                return Err(invalid(format!("the code artifact has {key:?} beneath the {what} {parent:?}")));
            }
            prefix = parent;
        }
    }
    Ok(())
}

/// Directories, then files, then symlinks; directory modes are applied last.
fn write_all(archive: &mut ZipArchive<Cursor<&[u8]>>, entries: &BTreeMap<String, Entry>, dest: &Path) -> Result<(), ContextError> {
    let mut budget = MAX_BYTES;
    for (key, entry) in entries {
        let path = dest.join(key);
        match entry.kind {
            Kind::Dir => mkdirs(&path)?,
            Kind::File => {
                mkdirs(path.parent().unwrap_or(dest))?;
                write_file(archive, entry, &path, &mut budget)?;
            }
            Kind::Symlink => {}
        }
    }
    for (key, entry) in entries.iter().filter(|(_, e)| e.kind == Kind::Symlink) {
        let path = dest.join(key);
        mkdirs(path.parent().unwrap_or(dest))?;
        let target = link_target(archive, entry, key)?;
        symlink(&target, &path).map_err(|e| invalid(format!("create the symlink {key:?}: {e}")))?;
    }
    for (key, entry) in entries.iter().rev().filter(|(_, e)| e.kind == Kind::Dir) {
        let mode = entry.mode | 0o700;
        fs::set_permissions(dest.join(key), fs::Permissions::from_mode(mode)).map_err(|e| invalid(format!("chmod {key:?}: {e}")))?;
    }
    Ok(())
}

fn mkdirs(path: &Path) -> Result<(), ContextError> {
    fs::create_dir_all(path).map_err(|e| invalid(format!("create the directory {}: {e}", path.display())))
}

/// Writes one file, counting its real (not declared) size against `budget`.
fn write_file(archive: &mut ZipArchive<Cursor<&[u8]>>, entry: &Entry, path: &Path, budget: &mut u64) -> Result<(), ContextError> {
    let name = path.display();
    let mut file = archive.by_index(entry.index).map_err(|e| invalid(format!("read {name}: {e}")))?;
    let mut out: File =
        OpenOptions::new().write(true).create_new(true).mode(entry.mode).open(path).map_err(|e| invalid(format!("create {name}: {e}")))?;
    let mut limited = (&mut file).take(*budget + 1);
    let copied = std::io::copy(&mut limited, &mut out).map_err(|e| invalid(format!("the code artifact's entry {name} is corrupt: {e}")))?;
    if copied > *budget {
        return Err(invalid(format!("the code artifact unpacks to more than {MAX_BYTES} bytes")));
    }
    *budget -= copied;
    out.flush().map_err(|e| invalid(format!("write {name}: {e}")))?;
    fs::set_permissions(path, fs::Permissions::from_mode(entry.mode)).map_err(|e| invalid(format!("chmod {name}: {e}")))
}

/// The symlink's target, refused when absolute or climbing out of the archive.
fn link_target(archive: &mut ZipArchive<Cursor<&[u8]>>, entry: &Entry, key: &str) -> Result<PathBuf, ContextError> {
    let mut file = archive.by_index(entry.index).map_err(|e| invalid(format!("read the symlink {key:?}: {e}")))?;
    let mut target = String::new();
    (&mut file).take(MAX_LINK).read_to_string(&mut target).map_err(|e| invalid(format!("read the symlink {key:?}: {e}")))?;
    let depth = key.matches('/').count() as i64;
    let mut level = depth;
    for part in target.split('/').filter(|p| !p.is_empty() && *p != ".") {
        level += if part == ".." { -1 } else { 1 };
        if level < 0 {
            break;
        }
    }
    if target.is_empty() || target.starts_with('/') || target.contains('\0') || level < 0 {
        return Err(invalid(format!("the code artifact's symlink {key:?} points outside the archive ({target:?})")));
    }
    Ok(PathBuf::from(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_names() {
        assert_eq!(normalize("./a//b/./c/"), Ok("a/b/c".into()));
        for bad in ["/etc/passwd", "a/../../b", "..", "a\\b", "a\0b"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
