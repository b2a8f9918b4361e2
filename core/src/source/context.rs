//! The build-context normaliser: decides, sans-IO, what a tree or archive uploads as context.
//!
//! Drive it: create a [`ContextNormaliser`] with [`NormaliseOptions`]; report compressed
//! input bytes with [`handle_compressed`](ContextNormaliser::handle_compressed) as they
//! arrive; feed every entry of the input, in any order, to
//! [`handle_entry`](ContextNormaliser::handle_entry) (each call checks the caps, so a
//! hostile archive is refused before it is all read); then
//! [`finish`](ContextNormaliser::finish). The [`ContextPlan`] it returns names the input
//! entry holding the context's `.dockerignore` ([`ContextPlan::dockerignore_input`]); read
//! it and pass its text to [`ContextPlan::apply`], which returns the kept entries, sorted.
//!
//! Refused: absolute paths, `..` components, empty and duplicate paths (after dropping `./`,
//! empty components and a trailing `/`), entries under a file or a symlink, and symlinks
//! whose target leaves the final context root. A root entry (`./`) is skipped. The
//! `Dockerfile` and `.dockerignore` are always kept, as docker keeps them.

use std::collections::BTreeMap;

use crate::dockerignore::IgnoreMatcher;

mod error;
mod tree;

pub use error::ContextError;

/// Caps on a build source; defaults 256 MiB compressed, 1 GiB uncompressed, 10,000 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    /// Bytes of the archive or download as it arrives (before decompression).
    pub max_compressed_bytes: u64,
    /// Sum of the file sizes.
    pub max_uncompressed_bytes: u64,
    /// Entries that are not directories; directories are capped at the same number.
    pub max_files: u64,
}

impl Default for ContextLimits {
    fn default() -> Self {
        Self { max_compressed_bytes: 256 << 20, max_uncompressed_bytes: 1 << 30, max_files: 10_000 }
    }
}

/// What an input entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// A regular file.
    File {
        /// Its size in bytes.
        size: u64,
        /// Its unix mode (permission bits are kept, the rest dropped; 0 means 0o644).
        mode: u32,
    },
    /// A directory.
    Dir,
    /// A symbolic link, kept as a link (never followed).
    Symlink {
        /// Its target as stored.
        target: String,
    },
}

/// One entry of the input tree or archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEntry {
    /// Its path as the input gives it ('/'-separated).
    pub path: String,
    /// What it is.
    pub kind: InputKind,
}

/// How to turn the input into a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormaliseOptions {
    /// Strip one wrapping top-level directory when every entry lies under it (forge
    /// archives such as `org-repo-abc123/…`). Archives: yes; local directories: no.
    pub strip_wrapper: bool,
    /// Re-root the context at this relative directory (after stripping the wrapper).
    pub context_subdir: Option<String>,
    /// A file (relative to the final root) to use as the Dockerfile: it is renamed to
    /// `Dockerfile` at the root, replacing any file of that name.
    pub dockerfile: Option<String>,
    /// The caps.
    pub limits: ContextLimits,
}

/// What an output entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// A regular file whose bytes are those of input entry `source`.
    File {
        /// The input path to read the bytes from, exactly as it was fed.
        source: String,
        /// Its size.
        size: u64,
        /// Permission bits (`& 0o777`).
        mode: u32,
    },
    /// A directory (listed or implied by a kept entry).
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A symlink whose target stays inside the context.
    Symlink {
        /// The target as stored.
        target: String,
    },
}

/// One entry of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputEntry {
    /// Its path in the context: relative, '/'-separated, normalised.
    pub path: String,
    /// What it is.
    pub kind: OutputKind,
}

/// The file that names the Dockerfile, and the ignore file, both always kept.
const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";

/// An input entry after normalisation, keyed by its normalised path.
type Tree = BTreeMap<String, Stored>;

/// What the normaliser keeps of an input entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    source: String,
    kind: InputKind,
}

/// The push normaliser: fed entries, refuses hostile ones early, then plans the context.
#[derive(Debug)]
pub struct ContextNormaliser {
    options: NormaliseOptions,
    subdir: Option<String>,
    dockerfile: Option<String>,
    tree: Tree,
    compressed: u64,
    uncompressed: u64,
    files: u64,
    dirs: u64,
}

impl ContextNormaliser {
    /// A normaliser; refuses an absolute or climbing subdirectory or Dockerfile path.
    pub fn new(options: NormaliseOptions) -> Result<Self, ContextError> {
        let subdir = option_path("context subdirectory", options.context_subdir.as_deref())?;
        let dockerfile = option_path("Dockerfile path", options.dockerfile.as_deref())?;
        Ok(Self { options, subdir, dockerfile, tree: Tree::new(), compressed: 0, uncompressed: 0, files: 0, dirs: 0 })
    }

    /// Call after: reading `n` more bytes of the compressed input. Refuses past the cap.
    pub fn handle_compressed(&mut self, n: u64) -> Result<(), ContextError> {
        self.compressed = self.compressed.saturating_add(n);
        let limit = self.options.limits.max_compressed_bytes;
        if self.compressed > limit { Err(ContextError::TooLarge { what: "compressed", limit }) } else { Ok(()) }
    }

    /// Call after: meeting an entry in the input. Refuses bad paths, duplicates and caps.
    pub fn handle_entry(&mut self, entry: InputEntry) -> Result<(), ContextError> {
        let Some(path) = normalise(&entry.path, matches!(entry.kind, InputKind::Dir))? else {
            return Ok(());
        };
        self.count(&entry.kind)?;
        if self.tree.contains_key(&path) {
            return Err(ContextError::Duplicate { path });
        }
        self.tree.insert(path, Stored { source: entry.path, kind: entry.kind });
        Ok(())
    }

    fn count(&mut self, kind: &InputKind) -> Result<(), ContextError> {
        let limits = self.options.limits;
        let counter = if matches!(kind, InputKind::Dir) { &mut self.dirs } else { &mut self.files };
        *counter += 1;
        if *counter > limits.max_files {
            return Err(ContextError::TooManyFiles { limit: limits.max_files });
        }
        if let InputKind::File { size, .. } = kind {
            self.uncompressed = self.uncompressed.saturating_add(*size);
            if self.uncompressed > limits.max_uncompressed_bytes {
                return Err(ContextError::TooLarge { what: "uncompressed", limit: limits.max_uncompressed_bytes });
            }
        }
        Ok(())
    }

    /// Call after: the last entry. Checks the structure, strips the wrapper, re-roots and
    /// places the Dockerfile.
    pub fn finish(self) -> Result<ContextPlan, ContextError> {
        tree::check_parents(&self.tree)?;
        let mut tree = self.tree;
        if self.options.strip_wrapper {
            tree = tree::strip_wrapper(tree);
        }
        if let Some(subdir) = &self.subdir {
            tree = tree::reroot(tree, subdir)?;
        }
        place_dockerfile(&mut tree, self.dockerfile.as_deref())?;
        Ok(ContextPlan { tree })
    }
}

/// The context's entries before `.dockerignore` is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPlan {
    tree: Tree,
}

impl ContextPlan {
    /// The input path and size of the context's `.dockerignore`, when it has one that is a
    /// file: the caller reads it and passes its text to [`apply`](Self::apply).
    #[must_use]
    pub fn dockerignore_input(&self) -> Option<(&str, u64)> {
        match self.tree.get(DOCKERIGNORE) {
            Some(Stored { source, kind: InputKind::File { size, .. } }) => Some((source.as_str(), *size)),
            _ => None,
        }
    }

    /// Applies the `.dockerignore` text (if any), checks the kept symlinks, and returns the
    /// kept entries sorted by path, with every parent directory listed before its children.
    pub fn apply(self, dockerignore: Option<&str>) -> Result<Vec<OutputEntry>, ContextError> {
        let matcher = dockerignore.map(IgnoreMatcher::parse).transpose()?.unwrap_or_default();
        let kept: Tree = self.tree.into_iter().filter(|(path, s)| keeps(&matcher, path, &s.kind)).collect();
        tree::check_symlinks(&kept)?;
        Ok(tree::with_parents(kept).into_iter().map(|(path, s)| OutputEntry { path, kind: output_kind(s) }).collect())
    }
}

fn keeps(matcher: &IgnoreMatcher, path: &str, kind: &InputKind) -> bool {
    path == DOCKERFILE || path == DOCKERIGNORE || !matcher.is_excluded(path, matches!(kind, InputKind::Dir))
}

fn output_kind(stored: Stored) -> OutputKind {
    match stored.kind {
        InputKind::File { size, mode } => {
            let mode = if mode & 0o777 == 0 { 0o644 } else { mode & 0o777 };
            OutputKind::File { source: stored.source, size, mode }
        }
        InputKind::Dir => OutputKind::Dir { mode: 0o755 },
        InputKind::Symlink { target } => OutputKind::Symlink { target },
    }
}

/// Renames the designated Dockerfile to `Dockerfile`, then requires a regular one.
fn place_dockerfile(tree: &mut Tree, designated: Option<&str>) -> Result<(), ContextError> {
    if let Some(path) = designated.filter(|p| *p != DOCKERFILE) {
        let stored = tree.get(path).ok_or_else(|| ContextError::NoDockerfile { path: path.to_owned() })?;
        if !matches!(stored.kind, InputKind::File { .. }) {
            return Err(ContextError::DockerfileNotFile { path: path.to_owned() });
        }
        let stored = tree.remove(path).unwrap_or_else(|| unreachable!("looked up above"));
        tree.insert(DOCKERFILE.to_owned(), stored);
    }
    if tree.keys().any(|k| k.starts_with("Dockerfile/")) {
        return Err(ContextError::DockerfileNotFile { path: DOCKERFILE.to_owned() });
    }
    match tree.get(DOCKERFILE).map(|s| &s.kind) {
        Some(InputKind::File { .. }) => Ok(()),
        Some(_) => Err(ContextError::DockerfileNotFile { path: DOCKERFILE.to_owned() }),
        None => Err(ContextError::NoDockerfile { path: DOCKERFILE.to_owned() }),
    }
}

/// Validates an option path; `None` when it names the root itself.
fn option_path(what: &'static str, path: Option<&str>) -> Result<Option<String>, ContextError> {
    let Some(raw) = path else { return Ok(None) };
    let bad = || ContextError::BadOptionPath { what, path: raw.to_owned() };
    if raw.starts_with('/') || raw.split('/').any(|c| c == "..") || raw.contains('\0') {
        return Err(bad());
    }
    Ok(Some(components(raw).join("/")).filter(|p| !p.is_empty()))
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

/// The normalised form of an entry path; `None` for the root directory itself.
fn normalise(raw: &str, is_dir: bool) -> Result<Option<String>, ContextError> {
    if raw.starts_with('/') {
        return Err(ContextError::AbsolutePath { path: raw.to_owned() });
    }
    if raw.split('/').any(|c| c == "..") {
        return Err(ContextError::ParentComponent { path: raw.to_owned() });
    }
    let path = components(raw).join("/");
    let root_dir = is_dir && !raw.is_empty();
    if raw.contains('\0') || (path.is_empty() && !root_dir) {
        return Err(ContextError::BadName { path: raw.to_owned() });
    }
    Ok(Some(path).filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests;
