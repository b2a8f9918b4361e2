//! The output zip: sorted entries, a fixed timestamp, unix modes in the external
//! attributes, symlinks as unix symlink entries, so the same context gives the same bytes.

use std::io::{Cursor, Write};

use sha2::{Digest, Sha256};
use whim_core::source::{OutputEntry, OutputKind};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{Contents, PreparedContext};
use crate::Error;

fn zip_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidSource(format!("cannot add {path:?} to the context zip: {e}"))
}

/// Writes `entries` (sorted, parents first, as core returns them) with bytes from `contents`.
pub(super) fn zip(entries: Vec<OutputEntry>, contents: &mut dyn Contents) -> Result<PreparedContext, Error> {
    let base = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).last_modified_time(DateTime::default());
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let (mut files, mut uncompressed_bytes) = (0u64, 0u64);
    for entry in entries {
        let path = entry.path;
        match entry.kind {
            OutputKind::Dir { mode } => {
                writer.add_directory(format!("{path}/"), base.unix_permissions(mode)).map_err(|e| zip_error(&path, e))?
            }
            OutputKind::Symlink { target } => {
                files += 1;
                writer.add_symlink(path.as_str(), target, base.unix_permissions(0o777)).map_err(|e| zip_error(&path, e))?;
            }
            OutputKind::File { source, size, mode } => {
                let bytes = contents.read(&source, size)?;
                let options = base.unix_permissions(mode).large_file(size >= u64::from(u32::MAX));
                writer.start_file(path.as_str(), options).map_err(|e| zip_error(&path, e))?;
                writer.write_all(&bytes).map_err(|e| zip_error(&path, e))?;
                files += 1;
                uncompressed_bytes += size;
            }
        }
    }
    let zip = writer.finish().map_err(|e| zip_error("(end)", e))?.into_inner();
    let sha256_hex = Sha256::digest(&zip).iter().map(|b| format!("{b:02x}")).collect();
    Ok(PreparedContext { zip, files, uncompressed_bytes, sha256_hex })
}
