//! Archives in memory: zip and tar.gz (through core's tar guard), or a raw Dockerfile.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use flate2::read::MultiGzDecoder;
use whim_core::archive::{ArchiveEvent, EntryKind, Limits, TarGuard};
use whim_core::source::{ContextNormaliser, InputEntry, InputKind};
use zip::ZipArchive;

use super::{Contents, ContextOptions, PreparedContext, context_error, finish, normalise_options};
use crate::Error;

/// The longest symlink target read from a zip.
const LINK_MAX: u64 = 4096;
/// Tar headers and padding allowed on top of the file bytes.
const TAR_OVERHEAD: u64 = 64 << 20;
/// Unix file-type bits.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// What a download's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Zip,
    Gzip,
    Text,
    Unknown,
}

fn sniff(bytes: &[u8]) -> Format {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if !bytes.is_empty() && !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
        Format::Text
    } else {
        Format::Unknown
    }
}

/// Packages a download or S3 object: a zip, a tar.gz, or a raw Dockerfile.
pub(super) fn prepare_download(bytes: &[u8], opts: &ContextOptions) -> Result<PreparedContext, Error> {
    match sniff(bytes) {
        Format::Text => prepare_dockerfile(bytes, opts),
        Format::Unknown => Err(Error::InvalidSource("the download is neither a zip, a tar.gz nor a text Dockerfile".into())),
        _ => prepare_local_archive(bytes, opts),
    }
}

/// Packages a zip or tar.gz (a wrapping top-level folder is stripped).
pub(super) fn prepare_local_archive(bytes: &[u8], opts: &ContextOptions) -> Result<PreparedContext, Error> {
    let mut normaliser = ContextNormaliser::new(normalise_options(opts, true, None)).map_err(context_error)?;
    normaliser.handle_compressed(bytes.len() as u64).map_err(context_error)?;
    match sniff(bytes) {
        Format::Zip => {
            let mut contents = read_zip(bytes, &mut normaliser, opts)?;
            finish(normaliser, &mut contents)
        }
        Format::Gzip => {
            let mut contents = read_targz(bytes, &mut normaliser, opts)?;
            finish(normaliser, &mut contents)
        }
        _ => Err(Error::InvalidSource("the archive is neither a zip nor a gzip-compressed tar".into())),
    }
}

/// A single-file context: the text is the Dockerfile.
fn prepare_dockerfile(bytes: &[u8], opts: &ContextOptions) -> Result<PreparedContext, Error> {
    let mut normaliser = ContextNormaliser::new(normalise_options(opts, false, None)).map_err(context_error)?;
    normaliser.handle_compressed(bytes.len() as u64).map_err(context_error)?;
    let kind = InputKind::File { size: bytes.len() as u64, mode: 0o644 };
    normaliser.handle_entry(InputEntry { path: "Dockerfile".into(), kind }).map_err(context_error)?;
    let mut contents = Memory(HashMap::from([("Dockerfile".to_owned(), bytes.to_vec())]));
    finish(normaliser, &mut contents)
}

fn bad_zip(e: impl std::fmt::Display) -> Error {
    Error::InvalidSource(format!("the zip cannot be read: {e}"))
}

/// Feeds a zip's entries (metadata only; symlink targets are read, at most 4 KiB each).
fn read_zip<'a>(bytes: &'a [u8], normaliser: &mut ContextNormaliser, opts: &ContextOptions) -> Result<Zip<'a>, Error> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(bad_zip)?;
    if archive.has_duplicate_names() {
        return Err(Error::InvalidSource("the zip lists the same entry name twice: rebuild the archive".into()));
    }
    let max = opts.limits.max_files;
    if archive.len() as u64 > max.saturating_mul(2) {
        return Err(context_error(whim_core::source::ContextError::TooManyFiles { limit: max }));
    }
    for index in 0..archive.len() {
        let entry = zip_entry(&mut archive, index)?;
        normaliser.handle_entry(entry).map_err(context_error)?;
    }
    Ok(Zip(archive))
}

fn zip_entry(archive: &mut ZipArchive<Cursor<&[u8]>>, index: usize) -> Result<InputEntry, Error> {
    let file = archive.by_index_raw(index).map_err(bad_zip)?;
    let path = file.name().map_err(bad_zip)?.into_owned();
    if file.is_symlink() {
        let size = file.size();
        drop(file);
        if size > LINK_MAX {
            return Err(Error::InvalidSource(format!("zip symlink {path:?} has a target longer than {LINK_MAX} bytes")));
        }
        let target = read_exact(archive, index, &path, size)?;
        let target =
            String::from_utf8(target).map_err(|_| Error::InvalidSource(format!("zip symlink {path:?} has a target that is not UTF-8")))?;
        return Ok(InputEntry { path, kind: InputKind::Symlink { target } });
    }
    if file.is_dir() {
        return Ok(InputEntry { path, kind: InputKind::Dir });
    }
    let mode = file.unix_mode().unwrap_or(0);
    if mode & S_IFMT != 0 && mode & S_IFMT != S_IFREG {
        return Err(Error::InvalidSource(format!(
            "zip entry {path:?} is a special file: only files, directories and symlinks are allowed"
        )));
    }
    Ok(InputEntry { path, kind: InputKind::File { size: file.size(), mode } })
}

/// Decompresses entry `index`, which MUST hold exactly `size` bytes.
fn read_exact(archive: &mut ZipArchive<Cursor<&[u8]>>, index: usize, path: &str, size: u64) -> Result<Vec<u8>, Error> {
    let file = archive.by_index(index).map_err(|e| Error::InvalidSource(format!("zip entry {path:?} cannot be read: {e}")))?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 << 20));
    file.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::InvalidSource(format!("zip entry {path:?} is corrupt: {e}")))?;
    if bytes.len() as u64 != size {
        return Err(Error::InvalidSource(format!("zip entry {path:?} does not hold the size its header declares")));
    }
    Ok(bytes)
}

/// Reads kept files out of the zip by name.
struct Zip<'a>(ZipArchive<Cursor<&'a [u8]>>);

impl Contents for Zip<'_> {
    fn read(&mut self, source: &str, size: u64) -> Result<Vec<u8>, Error> {
        let index = self.0.index_for_name(source).ok_or_else(|| Error::InvalidSource(format!("zip entry {source:?} vanished")))?;
        read_exact(&mut self.0, index, source, size)
    }
}

/// Kept files of a tar.gz, decompressed once and held until packed.
struct Memory(HashMap<String, Vec<u8>>);

impl Contents for Memory {
    fn read(&mut self, source: &str, _size: u64) -> Result<Vec<u8>, Error> {
        self.0.remove(source).ok_or_else(|| Error::InvalidSource(format!("archive entry {source:?} vanished")))
    }
}

/// Streams a tar.gz through core's tar guard, feeding the normaliser and keeping file bytes.
fn read_targz(bytes: &[u8], normaliser: &mut ContextNormaliser, opts: &ContextOptions) -> Result<Memory, Error> {
    let l = opts.limits;
    let limits = Limits {
        compressed_bytes: l.max_compressed_bytes,
        uncompressed_bytes: l.max_uncompressed_bytes.saturating_add(TAR_OVERHEAD),
        entries: l.max_files.saturating_mul(2).saturating_add(1),
    };
    let mut tar = Tar { guard: TarGuard::new(limits), files: HashMap::new(), current: None, ended: false };
    tar.guard.handle_compressed(bytes.len() as u64).map_err(|e| tar_error(&e))?;
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = decoder.read(&mut buf).map_err(|e| Error::InvalidSource(format!("the tar.gz is not valid gzip: {e}")))?;
        if n == 0 {
            break;
        }
        tar.guard.handle_bytes(&buf[..n]).map_err(|e| tar_error(&e))?;
        tar.drain(normaliser)?;
    }
    tar.guard.handle_eof().map_err(|e| tar_error(&e))?;
    tar.drain(normaliser)?;
    if !tar.ended {
        return Err(Error::InvalidSource("the tar.gz ends before its end-of-archive marker".into()));
    }
    Ok(Memory(tar.files))
}

fn tar_error(e: &whim_core::archive::ArchiveError) -> Error {
    match e {
        whim_core::archive::ArchiveError::TooLarge { .. } => Error::SourceTooLarge(e.to_string()),
        _ => Error::InvalidSource(format!("the tar.gz was refused: {e}")),
    }
}

struct Tar {
    guard: TarGuard,
    files: HashMap<String, Vec<u8>>,
    current: Option<String>,
    ended: bool,
}

impl Tar {
    fn drain(&mut self, normaliser: &mut ContextNormaliser) -> Result<(), Error> {
        while let Some(event) = self.guard.poll_event() {
            match event {
                ArchiveEvent::Entry(e) => {
                    let path = utf8(e.path, "entry name")?;
                    let kind = match e.kind {
                        EntryKind::File => InputKind::File { size: e.size, mode: e.mode },
                        EntryKind::Dir => InputKind::Dir,
                        EntryKind::Symlink { target } => InputKind::Symlink { target: utf8(target, "symlink target")? },
                    };
                    let is_file = matches!(kind, InputKind::File { .. });
                    normaliser.handle_entry(InputEntry { path: path.clone(), kind }).map_err(context_error)?;
                    self.current = is_file.then(|| path.clone());
                    if is_file {
                        self.files.insert(path, Vec::new());
                    }
                }
                ArchiveEvent::Data(d) => {
                    if let Some(buf) = self.current.as_ref().and_then(|p| self.files.get_mut(p)) {
                        buf.extend_from_slice(&d);
                    }
                }
                ArchiveEvent::End => self.ended = true,
            }
        }
        Ok(())
    }
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes)
        .map_err(|e| Error::InvalidSource(format!("tar {what} {:?} is not UTF-8", String::from_utf8_lossy(e.as_bytes()))))
}
