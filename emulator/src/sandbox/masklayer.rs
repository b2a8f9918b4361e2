//! The mask layer: an overlay lower dir, stacked right above the image root, that hides host
//! paths (homes, credentials, the checkout) and empties the scratch dirs of the host root.
//!
//! Hidden directories are opaque empty directories (`trusted.overlay.opaque=y`) and hidden
//! files are empty files, with the host's mode and owner. Unlike tmpfs mounts they belong to the
//! merged root: what a build step writes there lands in the image, and image layers above
//! the mask layer show through. Runs as real root in the helper (trusted xattrs need it).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::rootfs::{mkdir, safe_join, touch};

type Step = Result<(), String>;

/// Scratch dirs of the image root that start empty (their modes).
const SCRATCH: [(&str, u32); 3] = [("tmp", 0o1777), ("run", 0o755), ("var/tmp", 0o1777)];

/// Fills `layer` (an empty dir) with the masks for `image_root` and host paths `masks`.
pub(crate) fn fill(layer: &Path, image_root: &Path, masks: &[PathBuf]) -> Step {
    for (dir, mode) in SCRATCH {
        let rel = Path::new(dir);
        match safe_join(image_root, rel).map(|p| p.symlink_metadata()) {
            Some(Ok(meta)) if meta.is_dir() => hide(layer, image_root, rel, &meta)?,
            Some(Err(_)) => empty_dir(layer, image_root, rel, mode)?,
            _ => {} // A symlink (e.g. /var/tmp -> /tmp) or a file: leave it.
        }
    }
    let mut hidden: Vec<PathBuf> = Vec::new();
    let mut masks: Vec<PathBuf> = masks.iter().filter_map(|m| std::fs::canonicalize(m).ok()).collect();
    masks.sort();
    for host in masks {
        if host == Path::new("/") || hidden.iter().any(|d| host.starts_with(d)) {
            continue;
        }
        let rel = host.strip_prefix("/").unwrap_or(&host);
        let Some(meta) = safe_join(image_root, rel).and_then(|p| p.symlink_metadata().ok()) else {
            continue;
        };
        if meta.is_dir() || meta.is_file() {
            hide(layer, image_root, rel, &meta)?;
            hidden.push(host);
        }
    }
    Ok(())
}

/// Puts an opaque empty dir (or an empty file) at `rel` with `meta`'s mode and owner.
fn hide(layer: &Path, image_root: &Path, rel: &Path, meta: &std::fs::Metadata) -> Step {
    let target = parents(layer, image_root, rel)?;
    if target.symlink_metadata().is_ok() {
        return Ok(()); // Already hidden (a scratch dir that is also a mask).
    }
    if meta.is_dir() {
        mkdir(&target)?;
        opaque(&target)?;
    } else {
        touch(&target)?;
    }
    own(&target, meta.mode() & 0o7777, meta.uid(), meta.gid())
}

/// An opaque empty dir at `rel`, owned by root, where the image root has none.
fn empty_dir(layer: &Path, image_root: &Path, rel: &Path, mode: u32) -> Step {
    let target = parents(layer, image_root, rel)?;
    mkdir(&target)?;
    opaque(&target)?;
    own(&target, mode, 0, 0)
}

/// Creates `rel`'s parent dirs in `layer`, each with the image root's mode and owner (the
/// upper-most layer's attributes win in the merged dir); returns `layer/rel`.
fn parents(layer: &Path, image_root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut made = layer.to_path_buf();
    let mut source = PathBuf::new();
    let components: Vec<_> = rel.components().collect();
    for comp in components.iter().take(components.len().saturating_sub(1)) {
        made.push(comp);
        source.push(comp);
        if made.symlink_metadata().is_ok() {
            continue;
        }
        mkdir(&made)?;
        match safe_join(image_root, &source).and_then(|p| p.symlink_metadata().ok()) {
            Some(meta) => own(&made, meta.mode() & 0o7777, meta.uid(), meta.gid())?,
            None => own(&made, 0o755, 0, 0)?,
        }
    }
    Ok(layer.join(rel))
}

fn own(path: &Path, mode: u32, uid: u32, gid: u32) -> Step {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Marks a dir of an overlay layer opaque: nothing beneath it in lower layers shows through.
fn opaque(dir: &Path) -> Step {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| format!("path {} has a NUL byte", dir.display()))?;
    // SAFETY: NUL-terminated strings and a 1-byte value that outlive the call.
    let rc = unsafe { libc::setxattr(path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), c"y".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        return Err(format!("mark {} opaque (setxattr trusted.overlay.opaque): {}", dir.display(), std::io::Error::last_os_error()));
    }
    Ok(())
}
