//! Local sources: a directory (walked without following symlinks), a Dockerfile (its parent
//! directory is the context) or a `.zip`/`.tar.gz`/`.tgz` archive.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use whim_core::dockerignore::IgnoreMatcher;
use whim_core::source::{ContextNormaliser, InputEntry, InputKind};

use super::{Contents, ContextOptions, PreparedContext, archive, context_error, finish, normalise_options};
use crate::Error;

/// The largest `.dockerignore` read while walking.
const IGNORE_MAX: u64 = 1 << 20;

fn invalid(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidSource(format!("{}: {what}", path.display()))
}

/// Packages the local source at `path`.
pub(super) fn prepare(path: &Path, opts: &ContextOptions) -> Result<PreparedContext, Error> {
    let meta = fs::metadata(path).map_err(|e| invalid(path, format!("{e}: give a directory, a Dockerfile or a .zip/.tar.gz archive")))?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if meta.is_dir() {
        return prepare_dir(path, None, opts);
    }
    if !meta.is_file() {
        return Err(invalid(path, "not a directory or a regular file"));
    }
    if [".zip", ".tar.gz", ".tgz"].iter().any(|ext| name.ends_with(ext)) {
        return prepare_archive_file(path, opts);
    }
    if is_dockerfile_name(&name) {
        if opts.context_subdir.is_some() {
            return Err(invalid(
                path,
                "--context-subdir applies to directories and archives: name the directory instead of the Dockerfile",
            ));
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let file = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| invalid(path, "the file name is not UTF-8"))?;
        return prepare_dir(dir, Some(file.to_owned()), opts);
    }
    Err(invalid(
        path,
        "is neither a directory, a Dockerfile (named like Dockerfile, Dockerfile.* or *.Dockerfile) nor a .zip/.tar.gz/.tgz archive",
    ))
}

fn is_dockerfile_name(lower: &str) -> bool {
    lower == "dockerfile" || lower == "containerfile" || lower.starts_with("dockerfile.") || lower.ends_with(".dockerfile")
}

/// Reads a local archive (up to the compressed cap) and packages it.
fn prepare_archive_file(path: &Path, opts: &ContextOptions) -> Result<PreparedContext, Error> {
    let limit = opts.limits.max_compressed_bytes;
    let file = fs::File::open(path).map_err(|e| invalid(path, e))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| invalid(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::SourceTooLarge(format!("{} is larger than the compressed size limit of {limit} bytes", path.display())));
    }
    archive::prepare_local_archive(&bytes, opts).map_err(|e| match e {
        Error::InvalidSource(m) => invalid(path, m),
        other => other,
    })
}

/// Walks `root` (at `--context-subdir` when given) and packages it; `dockerfile` names a file
/// in `root` to use as the Dockerfile.
fn prepare_dir(root: &Path, dockerfile: Option<String>, opts: &ContextOptions) -> Result<PreparedContext, Error> {
    let mut normaliser = ContextNormaliser::new(normalise_options(opts, false, dockerfile)).map_err(context_error)?;
    let subdir = opts.context_subdir.as_deref().unwrap_or("");
    let mut walker = Walker { root: root.to_owned(), normaliser: &mut normaliser, ignore: IgnoreMatcher::default() };
    if walker.enter_subdir(subdir)? {
        let start = if subdir.is_empty() { String::new() } else { format!("{}/", subdir.trim_end_matches('/')) };
        walker.ignore = read_ignore(&root.join(subdir))?;
        walker.walk(&start)?;
    }
    finish(normaliser, &mut LocalContents { root: root.to_owned() })
}

/// The walk-time `.dockerignore`, used to skip excluded directories unseen (core applies
/// the same file again to everything that was fed).
fn read_ignore(dir: &Path) -> Result<IgnoreMatcher, Error> {
    let path = dir.join(".dockerignore");
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() && m.len() <= IGNORE_MAX => {
            let text = fs::read_to_string(&path).map_err(|e| invalid(&path, e))?;
            IgnoreMatcher::parse(&text).map_err(|e| Error::InvalidSource(e.to_string()))
        }
        Ok(m) if m.is_file() => Err(invalid(&path, format!("larger than {IGNORE_MAX} bytes"))),
        _ => Ok(IgnoreMatcher::default()),
    }
}

struct Walker<'a> {
    root: PathBuf,
    normaliser: &'a mut ContextNormaliser,
    ignore: IgnoreMatcher,
}

impl Walker<'_> {
    /// Feeds the subdirectory's own components (so core can refuse a file or symlink on the
    /// way, or report it missing); whether it is a directory to walk.
    fn enter_subdir(&mut self, subdir: &str) -> Result<bool, Error> {
        let mut rel = String::new();
        for component in subdir.split('/').filter(|c| !c.is_empty() && *c != ".") {
            rel = if rel.is_empty() { component.to_owned() } else { format!("{rel}/{component}") };
            let Ok(meta) = fs::symlink_metadata(self.root.join(&rel)) else { return Ok(false) };
            let Some(kind) = self.kind(&rel, &meta)? else { return Ok(false) };
            let is_dir = kind == InputKind::Dir;
            self.normaliser.handle_entry(InputEntry { path: rel.clone(), kind }).map_err(context_error)?;
            if !is_dir {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Feeds everything below `prefix` (relative to the root, ending in '/' or empty),
    /// depth first, skipping what `.dockerignore` excludes when nothing can re-include it.
    fn walk(&mut self, prefix: &str) -> Result<(), Error> {
        let mut pending = vec![prefix.to_owned()];
        let context_start = prefix.len();
        while let Some(dir) = pending.pop() {
            let path = self.root.join(&dir);
            for item in fs::read_dir(&path).map_err(|e| invalid(&path, e))? {
                let item = item.map_err(|e| invalid(&path, e))?;
                let name = item.file_name();
                let name = name
                    .to_str()
                    .ok_or_else(|| invalid(&item.path(), "the name is not UTF-8: rename it or leave it out with .dockerignore"))?;
                let rel = format!("{dir}{name}");
                let meta = item.metadata().map_err(|e| invalid(&item.path(), e))?;
                let is_dir = meta.is_dir();
                if !self.ignore.has_negations()
                    && self.ignore.is_excluded(&rel[context_start..], is_dir)
                    && !always_kept(&rel[context_start..])
                {
                    continue;
                }
                let Some(kind) = self.kind(&rel, &meta)? else { continue };
                self.normaliser.handle_entry(InputEntry { path: rel.clone(), kind }).map_err(context_error)?;
                if is_dir {
                    pending.push(format!("{rel}/"));
                }
            }
        }
        Ok(())
    }

    /// What to feed for a path (never following it); `None` for sockets, FIFOs and devices,
    /// which a context cannot carry.
    fn kind(&self, rel: &str, meta: &fs::Metadata) -> Result<Option<InputKind>, Error> {
        let ft = meta.file_type();
        Ok(Some(if ft.is_dir() {
            InputKind::Dir
        } else if ft.is_file() {
            InputKind::File { size: meta.len(), mode: meta.mode() }
        } else if ft.is_symlink() {
            let path = self.root.join(rel);
            let target = fs::read_link(&path).map_err(|e| invalid(&path, e))?;
            let target = target.to_str().ok_or_else(|| invalid(&path, "the symlink target is not UTF-8"))?;
            InputKind::Symlink { target: target.to_owned() }
        } else {
            let what = if ft.is_fifo() {
                "FIFO"
            } else if ft.is_socket() {
                "socket"
            } else {
                "device"
            };
            tracing::warn!(path = %rel, what, "not in the build context: a context cannot carry special files");
            return Ok(None);
        }))
    }
}

fn always_kept(rel: &str) -> bool {
    rel == "Dockerfile" || rel == ".dockerignore"
}

/// Reads kept files from the tree, refusing one that became a symlink or changed size.
struct LocalContents {
    root: PathBuf,
}

impl Contents for LocalContents {
    fn read(&mut self, source: &str, size: u64) -> Result<Vec<u8>, Error> {
        let path = self.root.join(source);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = rustix::fs::open(&path, flags, Mode::empty()).map_err(|e| invalid(&path, e))?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 << 20));
        fs::File::from(fd).take(size.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| invalid(&path, e))?;
        if bytes.len() as u64 != size {
            return Err(invalid(&path, "the file changed while the context was being packaged: try again"));
        }
        Ok(bytes)
    }
}
