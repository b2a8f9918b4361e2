//! The tar guard: a push validator for tar streams coming out of a VM.
//!
//! [`TarGuard`] is fed decompressed tar bytes split anywhere and says, entry by entry, what
//! the archive would create, refusing anything that could write outside the destination or
//! create something other than plain files, directories and in-tree symlinks:
//!
//! - absolute paths and `..` components; duplicates; entries under an earlier symlink
//!   ("written through" it, even one pointing inside) or under an earlier regular file;
//! - symlinks with absolute targets, or relative ones that climb above the root when followed
//!   component by component through the archive's own symlinks (at most 40 hops, like the
//!   kernel); all symlinks are re-checked against the final tree before [`ArchiveEvent::End`],
//!   because a later symlink can change where an earlier one leads;
//! - hard links (the remote side archives with GNU tar `--hard-dereference`), devices, FIFOs,
//!   sparse files, volume headers and any unknown entry type;
//! - more than [`Limits`] allow: compressed bytes, uncompressed bytes, entries.
//!
//! Formats: ustar, GNU and v7 headers (checksum verified, signed or unsigned), base-256
//! numbers, the ustar prefix, GNU long names ('L') and link names ('K'), PAX headers ('x':
//! `path`, `linkpath`, `size`, `mtime`; 'g' is checked and ignored). Setuid, setgid and
//! sticky bits are stripped. An entry naming the root itself (GNU tar `-C dir .` writes
//! `./`) is a directory that already exists: it is skipped without an event.
//!
//! Drive it: the caller decompresses, reports each compressed chunk to
//! [`TarGuard::handle_compressed`], feeds the output to [`TarGuard::handle_bytes`], calls
//! [`TarGuard::handle_eof`] at the end of the stream, and drains [`TarGuard::poll_event`]
//! after every call. Nothing is final before [`ArchiveEvent::End`]: an archive can still be
//! refused after some entries were reported, so the caller extracts into a scratch place.
//! Memory stays bounded: file data streams through, and only one header plus its metadata
//! records (at most 64 KiB each) are held.

use std::collections::VecDeque;

mod header;
mod tree;

use header::{BLOCK, Header, Pax};
use tree::Tree;

/// Largest GNU long-name or PAX record accepted.
pub const METADATA_MAX: u64 = 64 * 1024;

/// Caps; defaults 256 MiB compressed, 1 GiB uncompressed, 10_000 entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Compressed bytes the caller reported through [`TarGuard::handle_compressed`].
    pub compressed_bytes: u64,
    /// Tar bytes fed, headers, padding and trailing zeros included.
    pub uncompressed_bytes: u64,
    /// [`ArchiveEvent::Entry`] events.
    pub entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { compressed_bytes: 256 << 20, uncompressed_bytes: 1 << 30, entries: 10_000 }
    }
}

/// What an entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its bytes follow as [`ArchiveEvent::Data`].
    File,
    /// A directory.
    Dir,
    /// A symlink whose relative target resolves inside the root.
    Symlink {
        /// The target as stored, raw bytes.
        target: Vec<u8>,
    },
}

/// One entry that passed every check so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, '/'-separated, normalised: no leading "./" or "/", no trailing "/", no empty, "." or ".." components. Raw bytes (never decoded).
    pub path: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky stripped (mode & 0o777).
    pub mode: u32,
    /// Data bytes that follow (0 for dirs and symlinks).
    pub size: u64,
    /// Modification time, seconds since the epoch (0 for times before it).
    pub mtime: u64,
}

/// What the guard reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveEvent {
    /// A new entry passed every check; its data (files) follows as `Data` events.
    Entry(Entry),
    /// File content, in order, exact (never more than the entry's size, padding removed).
    Data(Vec<u8>),
    /// The archive's end-of-archive marker was seen and the whole archive passed (including the final re-check of all symlinks). Nothing is final before this.
    End,
}

/// Why an archive was refused. Paths are decoded lossily for display; messages quote them
/// with escapes, so a hostile name cannot drive the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// An entry path starts with '/'.
    #[error("archive entry {path:?} is an absolute path: entries must be relative to the destination")]
    AbsolutePath {
        /// The entry path.
        path: String,
    },
    /// An entry path has a `..` component.
    #[error("archive entry {path:?} has a `..` component: entries must stay inside the destination")]
    ParentComponent {
        /// The entry path.
        path: String,
    },
    /// The same (normalised) path appears twice.
    #[error("archive entry {path:?} appears twice in the archive")]
    Duplicate {
        /// The entry path.
        path: String,
    },
    /// A file or symlink would replace a directory earlier entries were created in.
    #[error("archive entry {path:?} would replace a directory that earlier entries were created in")]
    ReplacesDirectory {
        /// The entry path.
        path: String,
    },
    /// A hard link: never accepted.
    #[error("archive entry {path:?} is a hard link to {target:?}: hard links are refused (archive with GNU tar --hard-dereference)")]
    HardLink {
        /// The entry path.
        path: String,
        /// What it links to.
        target: String,
    },
    /// A symlink whose target is absolute or climbs above the root.
    #[error("archive symlink {path:?} -> {target:?} points outside the destination")]
    SymlinkEscape {
        /// The symlink's path.
        path: String,
        /// Its target.
        target: String,
    },
    /// A symlink that does not resolve: more than 40 hops or 4096 components.
    #[error("archive symlink {path:?} -> {target:?} loops (more than 40 links or 4096 components to resolve)")]
    SymlinkLoop {
        /// The symlink's path.
        path: String,
        /// Its target.
        target: String,
    },
    /// An entry below an earlier symlink would be written through it.
    #[error("archive entry {path:?} would be written through the earlier symlink {symlink:?}")]
    ThroughSymlink {
        /// The entry path.
        path: String,
        /// The symlink on its way.
        symlink: String,
    },
    /// An entry below an earlier regular file.
    #[error("archive entry {path:?} is under {parent:?}, which is not a directory")]
    UnderNonDirectory {
        /// The entry path.
        path: String,
        /// The file on its way.
        parent: String,
    },
    /// A device node or FIFO.
    #[error("archive entry {path:?} is a {kind}: only files, directories and symlinks are allowed")]
    SpecialFile {
        /// The entry path.
        path: String,
        /// "character device", "block device" or "FIFO".
        kind: &'static str,
    },
    /// An entry type the guard does not accept (sparse, volume, multi-volume, unknown).
    #[error("archive entry {path:?} has the unsupported tar type {:?}", char::from(*typeflag))]
    Unsupported {
        /// The entry path.
        path: String,
        /// The header's typeflag byte.
        typeflag: u8,
    },
    /// A header or metadata record that is malformed or outside the guard's bounds.
    #[error("bad tar header (entry {path:?}): {reason}")]
    BadHeader {
        /// The entry path as far as known (may be empty).
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A byte cap was exceeded.
    #[error("the archive exceeds the {what} size limit of {limit} bytes")]
    TooLarge {
        /// "compressed" or "uncompressed".
        what: &'static str,
        /// The cap.
        limit: u64,
    },
    /// The entry cap was exceeded.
    #[error("the archive has more than {limit} entries")]
    TooManyEntries {
        /// The cap.
        limit: u64,
    },
    /// The stream ended before the end-of-archive marker.
    #[error("the archive ended before its end-of-archive marker: it is truncated or not a tar stream")]
    Truncated,
}

/// A path for display.
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Which metadata record is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    LongName,
    LongLink,
    Pax,
    GlobalPax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Filling `block`.
    Header,
    /// Streaming a file's bytes, then skipping `pad`.
    Data { left: u64, pad: u64 },
    /// Collecting a metadata record into `record`, then skipping `pad`.
    Record { kind: Record, left: u64, pad: u64 },
    /// Skipping block padding.
    Skip(u64),
    /// After the end-of-archive marker: bytes are counted and ignored.
    Ended,
}

/// Metadata records waiting for the entry they describe.
#[derive(Debug, Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Pax,
}

/// The push validator; see the module docs for the rules and the drive loop.
#[derive(Debug)]
pub struct TarGuard {
    limits: Limits,
    compressed: u64,
    uncompressed: u64,
    entries: u64,
    state: State,
    block: Vec<u8>,
    /// One zero block seen: the next must be zero too.
    zero_seen: bool,
    record: Vec<u8>,
    pending: Pending,
    pending_any: bool,
    tree: Tree,
    events: VecDeque<ArchiveEvent>,
    error: Option<ArchiveError>,
}

impl TarGuard {
    /// A guard for one archive.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            compressed: 0,
            uncompressed: 0,
            entries: 0,
            state: State::Header,
            block: Vec::with_capacity(BLOCK),
            zero_seen: false,
            record: Vec::new(),
            pending: Pending::default(),
            pending_any: false,
            tree: Tree::new(),
            events: VecDeque::new(),
            error: None,
        }
    }

    /// The caller decompresses; it reports each chunk of compressed bytes it read here so the compressed cap holds.
    pub fn handle_compressed(&mut self, n: u64) -> Result<(), ArchiveError> {
        self.poisoned()?;
        self.compressed = self.compressed.saturating_add(n);
        if self.compressed > self.limits.compressed_bytes {
            return Err(self.poison(ArchiveError::TooLarge { what: "compressed", limit: self.limits.compressed_bytes }));
        }
        Ok(())
    }

    /// Decompressed tar bytes, split anywhere.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.poisoned()?;
        // Bytes up to the cap are processed first, so the verdict and the events do not
        // depend on how the stream was split.
        let room = usize::try_from(self.limits.uncompressed_bytes - self.uncompressed).unwrap_or(usize::MAX);
        let take = &bytes[..bytes.len().min(room)];
        self.uncompressed += take.len() as u64;
        let mut input = take;
        while !input.is_empty() {
            match self.step(input) {
                Ok(used) => input = &input[used..],
                Err(e) => return Err(self.poison(e)),
            }
        }
        if take.len() < bytes.len() {
            return Err(self.poison(ArchiveError::TooLarge { what: "uncompressed", limit: self.limits.uncompressed_bytes }));
        }
        Ok(())
    }

    /// The stream ended: an error unless the end-of-archive marker was seen.
    pub fn handle_eof(&mut self) -> Result<(), ArchiveError> {
        self.poisoned()?;
        if self.state == State::Ended { Ok(()) } else { Err(self.poison(ArchiveError::Truncated)) }
    }

    /// Drain after every handle_*; `None` when nothing is pending.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ArchiveEvent> {
        self.events.pop_front()
    }

    fn poisoned(&self) -> Result<(), ArchiveError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    fn poison(&mut self, e: ArchiveError) -> ArchiveError {
        self.error = Some(e.clone());
        e
    }

    /// Consumes a prefix of `input` (never nothing); returns its length.
    fn step(&mut self, input: &[u8]) -> Result<usize, ArchiveError> {
        match self.state {
            State::Header => {
                let n = input.len().min(BLOCK - self.block.len());
                self.block.extend_from_slice(&input[..n]);
                if self.block.len() == BLOCK {
                    let block: [u8; BLOCK] = self.block[..].try_into().unwrap_or([0; BLOCK]);
                    self.block.clear();
                    self.on_block(&block)?;
                }
                Ok(n)
            }
            State::Data { left, pad } => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                self.events.push_back(ArchiveEvent::Data(input[..n].to_vec()));
                self.state = State::Data { left: left - n as u64, pad };
                self.after_payload();
                Ok(n)
            }
            State::Record { kind, left, pad } => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                self.record.extend_from_slice(&input[..n]);
                self.state = State::Record { kind, left: left - n as u64, pad };
                if left == n as u64 {
                    self.on_record(kind)?;
                    self.after_payload();
                }
                Ok(n)
            }
            State::Skip(left) => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                self.state = if left == n as u64 { State::Header } else { State::Skip(left - n as u64) };
                Ok(n)
            }
            State::Ended => Ok(input.len()),
        }
    }

    /// Moves past a payload whose bytes are all in: to its padding, or the next header.
    fn after_payload(&mut self) {
        match self.state {
            State::Data { left: 0, pad } | State::Record { left: 0, pad, .. } => {
                self.state = if pad == 0 { State::Header } else { State::Skip(pad) };
            }
            _ => {}
        }
    }

    fn on_block(&mut self, block: &[u8; BLOCK]) -> Result<(), ArchiveError> {
        if header::is_zero(block) {
            if self.zero_seen {
                self.finish()?;
            }
            self.zero_seen = true;
            return Ok(());
        }
        let bad = |reason| ArchiveError::BadHeader { path: show(&header::raw_name(block)), reason };
        if self.zero_seen {
            return Err(bad("a lone zero block in the middle of the archive"));
        }
        header::verify_checksum(block).map_err(bad)?;
        let h = header::parse(block).map_err(bad)?;
        let kind = match h.typeflag {
            b'L' => Record::LongName,
            b'K' => Record::LongLink,
            b'x' => Record::Pax,
            b'g' => Record::GlobalPax,
            _ => return self.on_entry(h),
        };
        if h.size > METADATA_MAX {
            return Err(bad("a long-name or PAX record is larger than 64 KiB"));
        }
        self.record.clear();
        self.state = State::Record { kind, left: h.size, pad: padding(h.size) };
        if h.size == 0 {
            self.on_record(kind)?;
            self.after_payload();
        }
        Ok(())
    }

    fn on_record(&mut self, kind: Record) -> Result<(), ArchiveError> {
        let bad = |reason| ArchiveError::BadHeader { path: String::new(), reason };
        let name = || {
            let r = &self.record;
            memchr::memchr(0, r).map_or(r.clone(), |i| r[..i].to_vec())
        };
        match kind {
            Record::LongName => self.pending.long_name = Some(name()),
            Record::LongLink => self.pending.long_link = Some(name()),
            Record::Pax => header::parse_pax(&self.record, Some(&mut self.pending.pax)).map_err(bad)?,
            Record::GlobalPax => return header::parse_pax(&self.record, None).map_err(bad),
        }
        self.pending_any = true;
        Ok(())
    }

    /// The end-of-archive marker: the final checks, then `End`.
    fn finish(&mut self) -> Result<(), ArchiveError> {
        if self.pending_any {
            return Err(ArchiveError::BadHeader { path: String::new(), reason: "a long-name or PAX record is not followed by an entry" });
        }
        self.tree.recheck()?;
        self.state = State::Ended;
        self.events.push_back(ArchiveEvent::End);
        Ok(())
    }

    fn on_entry(&mut self, h: Header) -> Result<(), ArchiveError> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_any = false;
        let raw = pending.pax.path.or(pending.long_name).unwrap_or(h.name);
        let link = pending.pax.linkpath.or(pending.long_link).unwrap_or(h.link);
        let size = pending.pax.size.unwrap_or(h.size);
        let mtime = pending.pax.mtime.unwrap_or(h.mtime);
        let special = |kind| Err(ArchiveError::SpecialFile { path: show(&raw), kind });
        let kind = match h.typeflag {
            b'0' | 0 | b'7' if raw.ends_with(b"/") && size == 0 => EntryKind::Dir,
            b'0' | 0 | b'7' if pending.pax.sparse => return Err(ArchiveError::Unsupported { path: show(&raw), typeflag: b'S' }),
            b'0' | 0 | b'7' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'2' => EntryKind::Symlink { target: link },
            b'1' => return Err(ArchiveError::HardLink { path: show(&raw), target: show(&link) }),
            b'3' => return special("character device"),
            b'4' => return special("block device"),
            b'6' => return special("FIFO"),
            t => return Err(ArchiveError::Unsupported { path: show(&raw), typeflag: t }),
        };
        let path = tree::normalise(&raw)?;
        if kind != EntryKind::File && size != 0 {
            return Err(ArchiveError::BadHeader { path: show(&raw), reason: "a directory or symlink entry carries data" });
        }
        if size > self.limits.uncompressed_bytes {
            return Err(ArchiveError::TooLarge { what: "uncompressed", limit: self.limits.uncompressed_bytes });
        }
        if path.is_empty() {
            return match kind {
                EntryKind::Dir => Ok(()),
                _ => Err(ArchiveError::BadHeader { path: show(&raw), reason: "a file or symlink names the archive root" }),
            };
        }
        if let EntryKind::Symlink { target } = &kind {
            tree::check_target(&path, target)?;
        }
        self.tree.insert(&path, &kind)?;
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(ArchiveError::TooManyEntries { limit: self.limits.entries });
        }
        self.events.push_back(ArchiveEvent::Entry(Entry { path, kind, mode: h.mode, size, mtime }));
        if size > 0 {
            self.state = State::Data { left: size, pad: padding(size) };
        }
        Ok(())
    }
}

/// Zero bytes after `size` bytes of payload, up to the next block.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests;
