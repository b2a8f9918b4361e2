//! The local half of `put` and `get`: packing a local file or tree into a tar.gz stream,
//! and extracting what a VM sends beneath a directory, after core's
//! [`TarGuard`](whim_core::archive::TarGuard) passed it, without following any symlink.
//!
//! Both are plain blocking file I/O over bounded buffers; a runtime crate drives them
//! through the exec it already has ([`PutJob`], [`GetJob`]): the remote scripts, the
//! framing and every decision are core's ([`whim_core::transfer`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::{GzDecoder, GzEncoder};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};
use whim_core::archive::{ArchiveEvent, Entry, EntryKind, TarGuard};
use whim_core::exec::ExitStatus;
use whim_core::transfer::{self as core_transfer, GetDecoder, GetEvent};

pub use whim_core::archive::Limits;

use crate::Error;

/// Bytes read from a local file per step.
const CHUNK: usize = 256 * 1024;

fn local(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Local(format!("{}: {what}", path.display()))
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a local source is copied under: its last path element.
fn source_name(path: &Path) -> Result<Vec<u8>, Error> {
    let named = path.file_name().filter(|n| *n != OsStr::new(".") && *n != OsStr::new(".."));
    let name = match named {
        Some(n) => n.to_owned(),
        None => std::fs::canonicalize(path)
            .map_err(|e| local(path, e))?
            .file_name()
            .map(ToOwned::to_owned)
            .ok_or_else(|| local(path, "cannot copy the root directory: name a file or directory below it"))?,
    };
    Ok(name.as_bytes().to_vec())
}

/// One entry still to pack: where it is on disk and its name in the archive.
#[derive(Debug)]
struct Pending {
    disk: PathBuf,
    name: Vec<u8>,
}

/// A local file or tree as a tar.gz stream (GNU tar format), read in bounded pieces.
/// Permission bits are kept, setuid/setgid/sticky dropped; symlinks are stored as links.
#[derive(Debug)]
pub struct Packer {
    stack: Vec<Pending>,
    file: Option<(File, u64, PathBuf)>,
    pad: usize,
    enc: Option<GzEncoder<Vec<u8>>>,
    out: Vec<u8>,
    pos: usize,
    hasher: Sha256,
    limits: Limits,
    tar_bytes: u64,
    gz_bytes: u64,
    entries: u64,
    error: Option<Error>,
}

impl Packer {
    /// A packer of `path` (which must exist), named by its last path element.
    pub fn new(path: &Path, limits: Limits) -> Result<(Packer, Vec<u8>), Error> {
        std::fs::symlink_metadata(path).map_err(|e| local(path, e))?;
        let name = source_name(path)?;
        let stack = vec![Pending { disk: path.to_owned(), name: name.clone() }];
        let enc = Some(GzEncoder::new(Vec::with_capacity(CHUNK), Compression::fast()));
        let p = Packer {
            stack,
            file: None,
            pad: 0,
            enc,
            out: Vec::new(),
            pos: 0,
            hasher: Sha256::new(),
            limits,
            tar_bytes: 0,
            gz_bytes: 0,
            entries: 0,
            error: None,
        };
        Ok((p, name))
    }

    /// The sha256 (hex) of every byte read so far.
    #[must_use]
    pub fn sha256(&self) -> String {
        hex(self.hasher.clone().finalize())
    }

    /// The typed reason the last read failed, if it did.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    fn tar(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.tar_bytes += bytes.len() as u64;
        if self.tar_bytes > self.limits.uncompressed_bytes {
            return Err(Error::Local(format!(
                "the copy is larger than the {} byte limit (uncompressed); raise the limit to copy it",
                self.limits.uncompressed_bytes
            )));
        }
        self.enc.as_mut().map_or(Ok(()), |e| e.write_all(bytes)).map_err(Error::Io)
    }

    fn header(&mut self, name: &[u8], kind: tar::EntryType, mode: u32, size: u64, mtime: u64, link: Option<&[u8]>) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(Error::Local(format!("the copy has more than {} files; raise the limit to copy it", self.limits.entries)));
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.long(tar::EntryType::GNULongLink, link)?;
        }
        if name.len() > 100 {
            self.long(tar::EntryType::GNULongName, name)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o777);
        h.set_size(size);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        let old = h.as_old_mut();
        old.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        if let Some(link) = link {
            old.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        }
        h.set_cksum();
        self.tar(h.as_bytes())
    }

    fn long(&mut self, kind: tar::EntryType, value: &[u8]) -> Result<(), Error> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_size(value.len() as u64 + 1);
        h.set_mode(0o644);
        h.set_cksum();
        self.tar(h.as_bytes())?;
        let mut data = value.to_vec();
        data.push(0);
        data.resize(data.len().div_ceil(512) * 512, 0);
        self.tar(&data)
    }

    fn entry(&mut self, p: Pending) -> Result<(), Error> {
        let md = std::fs::symlink_metadata(&p.disk).map_err(|e| local(&p.disk, e))?;
        let (mode, mtime) = (md.permissions().mode(), u64::try_from(md.mtime()).unwrap_or(0));
        let ft = md.file_type();
        if ft.is_dir() {
            let mut name = p.name.clone();
            name.push(b'/');
            self.header(&name, tar::EntryType::Directory, mode, 0, mtime, None)?;
            let mut children: Vec<_> = std::fs::read_dir(&p.disk)
                .map_err(|e| local(&p.disk, e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| local(&p.disk, e))?;
            children.sort_unstable_by(|a, b| b.cmp(a));
            for c in children {
                let name = [&p.name[..], b"/", c.as_bytes()].concat();
                self.stack.push(Pending { disk: p.disk.join(&c), name });
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&p.disk).map_err(|e| local(&p.disk, e))?;
            self.header(&p.name, tar::EntryType::Symlink, mode, 0, mtime, Some(target.as_os_str().as_bytes()))?;
        } else if ft.is_file() {
            let f = File::open(&p.disk).map_err(|e| local(&p.disk, e))?;
            self.header(&p.name, tar::EntryType::Regular, mode, md.len(), mtime, None)?;
            self.pad = (512 - (md.len() % 512) as usize) % 512;
            if md.len() > 0 {
                self.file = Some((f, md.len(), p.disk));
            }
        } else {
            return Err(local(&p.disk, "is a device, FIFO or socket, which cannot be copied"));
        }
        Ok(())
    }

    /// Produces the next piece of compressed output into `self.out`; false at the end.
    fn produce(&mut self) -> Result<bool, Error> {
        if self.enc.is_none() {
            return Ok(false);
        }
        if let Some((f, left, path)) = &mut self.file {
            let mut buf = vec![0u8; CHUNK.min(usize::try_from(*left).unwrap_or(CHUNK))];
            let n = f.read(&mut buf).map_err(|e| local(path, e))?;
            if n == 0 {
                return Err(local(path, "shrank while it was being copied"));
            }
            *left -= n as u64;
            if *left == 0 {
                self.file = None;
                buf.truncate(n);
                buf.resize(n + self.pad, 0);
                self.tar(&buf)?;
            } else {
                self.tar(&buf[..n])?;
            }
        } else if let Some(p) = self.stack.pop() {
            self.entry(p)?;
        } else {
            self.tar(&[0; 1024])?;
            let enc = self.enc.take().ok_or_else(|| Error::Local("packing ended twice".into()))?;
            self.out = enc.finish().map_err(Error::Io)?;
            return self.counted();
        }
        if let Some(enc) = &mut self.enc {
            self.out = std::mem::take(enc.get_mut());
        }
        self.counted()
    }

    fn counted(&mut self) -> Result<bool, Error> {
        self.gz_bytes += self.out.len() as u64;
        if self.gz_bytes > self.limits.compressed_bytes {
            return Err(Error::Local(format!(
                "the copy is larger than the {} byte limit (compressed); raise the limit to copy it",
                self.limits.compressed_bytes
            )));
        }
        self.hasher.update(&self.out);
        Ok(true)
    }
}

impl Read for Packer {
    /// Fills `buf` as far as the stream goes (each read becomes one stdin chunk in the VM).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_some(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    }
}

impl Packer {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            match self.produce() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A `put` in progress: the packer to stream and the remote steps around it.
#[derive(Debug)]
pub struct PutJob {
    /// The local tree as tar.gz: the receive step's standard input.
    pub packer: Packer,
    name: Vec<u8>,
    dest: Vec<u8>,
    staging: String,
}

impl PutJob {
    /// Prepares copying `local` into the VM's directory `remote_dir`.
    pub fn new(local: &Path, remote_dir: &[u8], limits: Limits) -> Result<PutJob, Error> {
        if remote_dir.is_empty() {
            return Err(Error::InvalidOption("the remote destination directory is empty".into()));
        }
        let (packer, name) = Packer::new(local, limits)?;
        Ok(PutJob { packer, name, dest: remote_dir.to_vec(), staging: core_transfer::staging_name(crate::nonce()) })
    }

    /// The receive step (its standard input is [`PutJob::packer`]).
    #[must_use]
    pub fn receive_argv(&self) -> Vec<Vec<u8>> {
        core_transfer::put_receive_argv(&self.dest, &self.staging, &self.name)
    }

    /// Judges the receive step; on success the commit step to run next.
    pub fn received(&mut self, result: Result<ExitStatus, Error>, output: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        if let Some(e) = self.packer.take_error() {
            return Err(e);
        }
        let received = core_transfer::parse_receipt(output, result?)?;
        core_transfer::check_sums(&self.packer.sha256(), &received)?;
        Ok(core_transfer::put_commit_argv(&self.dest, &self.staging, &self.name))
    }

    /// Removes what a failed receive step staged (best effort).
    #[must_use]
    pub fn abort_argv(&self) -> Vec<Vec<u8>> {
        core_transfer::put_abort_argv(&self.dest, &self.staging)
    }

    /// Judges the commit step: the copy's remote path on success.
    pub fn committed(&self, result: Result<crate::Output, Error>) -> Result<Vec<u8>, Error> {
        let o = result?;
        core_transfer::parse_commit(&o.output, o.status)?;
        let mut path = self.dest.clone();
        if !path.ends_with(b"/") {
            path.push(b'/');
        }
        path.extend_from_slice(&self.name);
        Ok(path)
    }
}

/// Writes guarded entries beneath a root directory, resolving every path component with
/// `openat(O_NOFOLLOW)`: no symlink is ever followed, whatever the archive holds.
#[derive(Debug)]
struct Extractor {
    root: OwnedFd,
    name: Vec<u8>,
    file: Option<(File, u64, u32, Vec<u8>)>,
    dirs: Vec<(Vec<u8>, u32)>,
    top_seen: bool,
}

fn fs_err(path: &[u8], e: impl std::fmt::Display) -> Error {
    Error::Local(format!("extracting {}: {e}", String::from_utf8_lossy(path)))
}

impl Extractor {
    fn open_dir(&self, components: &[&[u8]], create: bool) -> Result<OwnedFd, Error> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::openat(&self.root, ".", flags, Mode::empty()).map_err(|e| fs_err(b".", e))?;
        for c in components {
            let next = match rustix::fs::openat(&fd, *c, flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    rustix::fs::mkdirat(&fd, *c, Mode::from_raw_mode(0o700)).map_err(|e| fs_err(c, e))?;
                    rustix::fs::openat(&fd, *c, flags, Mode::empty())
                }
                other => other,
            };
            fd = next.map_err(|e| fs_err(c, e))?;
        }
        Ok(fd)
    }

    fn entry(&mut self, e: &Entry) -> Result<(), Error> {
        let parts: Vec<&[u8]> = e.path.split(|&b| b == b'/').collect();
        if parts.first() != Some(&&self.name[..]) {
            return Err(Error::Archive(format!(
                "the VM sent `{}`, which is not inside `{}`",
                String::from_utf8_lossy(&e.path),
                String::from_utf8_lossy(&self.name)
            )));
        }
        self.top_seen = true;
        let (leaf, parents) = parts.split_last().ok_or_else(|| fs_err(&e.path, "empty path"))?;
        let dir = self.open_dir(parents, true)?;
        match &e.kind {
            EntryKind::Dir => {
                match rustix::fs::mkdirat(&dir, *leaf, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(err) => return Err(fs_err(&e.path, err)),
                }
                self.dirs.push((e.path.clone(), e.mode));
            }
            EntryKind::Symlink { target } => rustix::fs::symlinkat(target.as_slice(), &dir, *leaf).map_err(|err| fs_err(&e.path, err))?,
            EntryKind::File => {
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&dir, *leaf, flags, Mode::from_raw_mode(0o600)).map_err(|err| fs_err(&e.path, err))?;
                self.file = Some((File::from(fd), e.size, e.mode, e.path.clone()));
                self.end_file_if_done()?;
            }
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let Some((f, left, _, path)) = &mut self.file else { return Err(Error::Archive("file data outside a file".into())) };
        f.write_all(bytes).map_err(|e| fs_err(path, e))?;
        *left = left.saturating_sub(bytes.len() as u64);
        self.end_file_if_done()
    }

    fn end_file_if_done(&mut self) -> Result<(), Error> {
        if let Some((f, 0, mode, path)) = &self.file {
            rustix::fs::fchmod(f.as_fd(), Mode::from_raw_mode(*mode & 0o777)).map_err(|e| fs_err(path, e))?;
            self.file = None;
        }
        Ok(())
    }

    /// Gives directories their modes, deepest first (children were written meanwhile).
    fn finish(&mut self) -> Result<(), Error> {
        for (path, mode) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            let fd = self.open_dir(&parts, false)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777)).map_err(|e| fs_err(&path, e))?;
        }
        Ok(())
    }
}

/// Decompressed tar bytes into the guard, and what it passes into the extractor.
#[derive(Debug)]
struct Guarded {
    guard: TarGuard,
    extract: Extractor,
    ended: bool,
}

impl Guarded {
    fn drain(&mut self) -> Result<(), Error> {
        while let Some(ev) = self.guard.poll_event() {
            match ev {
                ArchiveEvent::Entry(e) => self.extract.entry(&e)?,
                ArchiveEvent::Data(d) => self.extract.data(&d)?,
                ArchiveEvent::End => self.ended = true,
            }
        }
        Ok(())
    }
}

/// Keeps the typed error of a failed write for the job to return.
#[derive(Debug)]
struct Sink {
    inner: Guarded,
    error: Option<Error>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.guard.handle_bytes(buf).map_err(|e| Error::Archive(e.to_string())).and_then(|()| self.inner.drain());
        match r {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let msg = e.to_string();
                self.error.get_or_insert(e);
                Err(io::Error::other(msg))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `get` in progress: the command's output is written into it as it arrives.
#[derive(Debug)]
pub struct GetJob {
    decoder: GetDecoder,
    hasher: Sha256,
    gz: GzDecoder<Sink>,
    error: Option<Error>,
    dest: PathBuf,
    staging: PathBuf,
    name: Vec<u8>,
    limits: Limits,
    compressed: u64,
}

impl GetJob {
    /// Prepares copying the VM's `remote` path into the existing local directory
    /// `local_dir`; returns the job and the command to run.
    pub fn new(remote: &[u8], local_dir: &Path, limits: Limits) -> Result<(GetJob, Vec<Vec<u8>>), Error> {
        Self::with_nonce(remote, local_dir, limits, crate::nonce())
    }

    fn with_nonce(remote: &[u8], local_dir: &Path, limits: Limits, nonce: whim_core::exec::Nonce) -> Result<(GetJob, Vec<Vec<u8>>), Error> {
        let (dir, name) = core_transfer::split_remote(remote)?;
        let md = std::fs::metadata(local_dir).map_err(|e| local(local_dir, e))?;
        if !md.is_dir() {
            return Err(local(local_dir, "is not a directory"));
        }
        let target = local_dir.join(OsStr::from_bytes(&name));
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(local(&target, "already exists as a directory: remove it or choose another destination"));
        }
        let staging = local_dir.join(format!(".whim-get-{}", hex(&nonce.0[..8])));
        std::fs::create_dir(&staging).map_err(|e| local(&staging, e))?;
        let root = rustix::fs::open(&staging, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| local(&staging, e))?;
        let extract = Extractor { root, name: name.clone(), file: None, dirs: Vec::new(), top_seen: false };
        let sink = Sink { inner: Guarded { guard: TarGuard::new(limits), extract, ended: false }, error: None };
        let argv = core_transfer::get_argv(&dir, &name, remote, nonce);
        let job = GetJob {
            decoder: GetDecoder::new(nonce),
            hasher: Sha256::new(),
            gz: GzDecoder::new(sink),
            error: None,
            dest: local_dir.to_owned(),
            staging,
            name,
            limits,
            compressed: 0,
        };
        Ok((job, argv))
    }

    fn take_output(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.decoder.handle_output(bytes);
        while let Some(GetEvent::Payload(p)) = self.decoder.poll_event() {
            self.hasher.update(&p);
            self.compressed += p.len() as u64;
            if self.compressed > self.limits.compressed_bytes {
                return Err(Error::Archive(format!(
                    "the copy is larger than the {} byte limit (compressed); raise the limit to copy it",
                    self.limits.compressed_bytes
                )));
            }
            if let Err(e) = self.gz.write_all(&p) {
                return Err(self
                    .gz
                    .get_mut()
                    .error
                    .take()
                    .unwrap_or_else(|| Error::Archive(format!("the archive from the VM is corrupt: {e}"))));
            }
        }
        Ok(())
    }

    /// Judges the whole copy once the command ended; on success the local path created.
    pub fn finish(mut self, result: Result<ExitStatus, Error>) -> Result<PathBuf, Error> {
        let r = self.conclude(result);
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
        r
    }

    fn conclude(&mut self, result: Result<ExitStatus, Error>) -> Result<PathBuf, Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let trailer = self.decoder.finish(result?)?;
        if let Err(e) = self.gz.try_finish() {
            return Err(self
                .gz
                .get_mut()
                .error
                .take()
                .unwrap_or_else(|| Error::Archive(format!("the archive from the VM is truncated or corrupt: {e}"))));
        }
        let sink = self.gz.get_mut();
        sink.inner.guard.handle_eof().map_err(|e| Error::Archive(e.to_string()))?;
        sink.inner.drain()?;
        if !sink.inner.ended || !sink.inner.extract.top_seen {
            return Err(Error::Archive("the VM sent an empty or unfinished archive; nothing was copied".into()));
        }
        sink.inner.extract.finish()?;
        let sent = trailer.sha256.unwrap_or_default();
        core_transfer::check_sums(&sent, &hex(self.hasher.clone().finalize()))?;
        let name = OsStr::from_bytes(&self.name);
        let target = self.dest.join(name);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(local(&target, "already exists as a directory: remove it or choose another destination"));
        }
        std::fs::rename(self.staging.join(name), &target).map_err(|e| local(&target, e))?;
        std::fs::remove_dir(&self.staging).map_err(|e| local(&self.staging, e))?;
        Ok(target)
    }
}

impl Write for GetJob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the copy already failed"));
        }
        match self.take_output(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(e);
                Err(io::Error::other(msg))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for GetJob {
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: whim_core::exec::Nonce = whim_core::exec::Nonce([5; 16]);

    /// One raw tar entry: names are written as given (no sanitising), as a hostile VM would.
    fn entry(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        let mut v = h.as_bytes().to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(512) * 512, 0);
        v
    }

    /// What the VM would print for a get of `top` that sends `tar` (gzipped), then the trailer.
    fn vm_output(tar: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(tar).unwrap();
        enc.write_all(&[0; 1024]).unwrap();
        let gz = enc.finish().unwrap();
        let sum = hex(Sha256::digest(&gz));
        [gz.as_slice(), format!("WHIMGET{}T{sum} 0\n", "05".repeat(16)).as_bytes()].concat()
    }

    fn get(tar: &[u8], dest: &Path) -> Result<PathBuf, Error> {
        let (mut job, _) = GetJob::with_nonce(b"/vm/top", dest, Limits::default(), N).unwrap();
        let out = vm_output(tar);
        for piece in out.chunks(100) {
            if job.write_all(piece).is_err() {
                break;
            }
        }
        job.finish(Ok(ExitStatus(0)))
    }

    #[test]
    fn hostile_archives_write_nothing_anywhere() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let outside = tempfile::tempdir().unwrap();
        let out_path = outside.path().as_os_str().as_bytes();
        let cases: Vec<Vec<u8>> = vec![
            [entry(b"top/", Directory, b"", b""), entry(b"top/link", Symlink, out_path, b""), entry(b"top/link/evil", Regular, b"", b"x")]
                .concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"top/../../x", Regular, b"", b"x")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"/tmp/abs-evil", Regular, b"", b"x")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"top/up", Symlink, b"../..", b"")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"top/l", Symlink, b".", b""), entry(b"top/m", Symlink, b"l/../..", b"")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"top/h", tar::EntryType::Link, b"/etc/passwd", b"")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"top/f", tar::EntryType::Fifo, b"", b"")].concat(),
            [entry(b"top/", Directory, b"", b""), entry(b"other/f", Regular, b"", b"x")].concat(),
            entry(b"top", Regular, b"", b"x")[..600].to_vec(),
        ];
        for (i, tar) in cases.iter().enumerate() {
            let dest = tempfile::tempdir().unwrap();
            let r = get(tar, dest.path());
            assert!(r.is_err(), "case {i} was accepted");
            assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "case {i} left something in the destination");
            assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "case {i} wrote outside");
        }
        assert!(!Path::new("/tmp/abs-evil").exists());
    }

    #[test]
    fn a_benign_tree_with_an_in_tree_symlink_is_extracted() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let dest = tempfile::tempdir().unwrap();
        let tar = [
            entry(b"top/", Directory, b"", b""),
            entry(b"top/d/", Directory, b"", b""),
            entry(b"top/d/f", Regular, b"", b"data"),
            entry(b"top/link", Symlink, b"d/f", b""),
        ]
        .concat();
        let path = get(&tar, dest.path()).unwrap();
        assert_eq!(path, dest.path().join("top"));
        assert_eq!(std::fs::read(path.join("link")).unwrap(), b"data");
        assert!(std::fs::symlink_metadata(path.join("link")).unwrap().is_symlink());
        let names: Vec<_> = std::fs::read_dir(dest.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["top"]);
    }

    #[test]
    fn a_corrupted_stream_is_refused() {
        let dest = tempfile::tempdir().unwrap();
        let mut out = vm_output(&entry(b"top", tar::EntryType::Regular, b"", b"x"));
        out[20] ^= 0xff;
        let (mut job, _) = GetJob::with_nonce(b"/vm/top", dest.path(), Limits::default(), N).unwrap();
        let _ = job.write_all(&out);
        assert!(job.finish(Ok(ExitStatus(0))).is_err());
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
    }

    #[test]
    fn packing_round_trips_through_the_guard() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let top = src.path().join("top");
        std::fs::create_dir_all(top.join("empty")).unwrap();
        std::fs::write(top.join("e"), b"").unwrap();
        std::fs::write(top.join("x"), vec![7u8; 700_000]).unwrap();
        std::fs::set_permissions(top.join("x"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("x", top.join("l")).unwrap();
        let (mut p, name) = Packer::new(&top, Limits::default()).unwrap();
        assert_eq!(name, b"top");
        let mut gz = Vec::new();
        p.read_to_end(&mut gz).unwrap();
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut tar = Vec::new();
        d.read_to_end(&mut tar).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let got = get(&tar[..tar.len() - 1024], dest.path()).unwrap();
        assert_eq!(std::fs::read(got.join("x")).unwrap(), vec![7u8; 700_000]);
        assert_eq!(std::fs::metadata(got.join("x")).unwrap().permissions().mode() & 0o7777, 0o755, "setuid dropped");
        assert_eq!(std::fs::read_link(got.join("l")).unwrap(), Path::new("x"));
        assert!(got.join("empty").is_dir());
        assert_eq!(std::fs::read(got.join("e")).unwrap(), b"");
    }
}
