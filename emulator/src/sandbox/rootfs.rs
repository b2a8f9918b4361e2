//! Builds a VM's throwaway root as real root, in the helper's private mount namespace.
//!
//! tmpfs scratch -> mask layer -> overlay(image layers, mask layer, image root) -> minimal /dev
//! -> fresh /tmp, /run, /var/tmp (VMs only).
//! Syscalls only: no mount(8).

use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::args::HelperArgs;
use super::masklayer;

/// Device nodes bind-mounted from the host; nothing else of the host `/dev` is reachable.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks of the VM's `/dev`.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

type Step = Result<(), String>;

/// Makes the merged root for `args` and returns its path (only valid in this mount namespace).
pub(crate) fn build(args: &HelperArgs) -> Result<PathBuf, String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount_flags("/", MsFlags::MS_REC | MsFlags::MS_PRIVATE)?;
    let base = args.state_dir.join(&args.vm_id);
    create_scratch(&base)?;
    tmpfs(&base, "mode=0700")?;
    let masks = base.join("masks");
    mkdir(&masks)?;
    masklayer::fill(&masks, &args.image_root, &args.masks)?;
    let root = overlay(&args.layers, [masks.as_path(), args.image_root.as_path()], args, &base)?;
    build_dev(&root)?;
    if let Some(context) = &args.context {
        let target = root.join("dev").join(super::CONTEXT_DIR);
        mkdir(&target)?;
        bind_readonly(context, &target)?;
    }
    if args.upper.is_none() {
        // A VM's scratch dirs are tmpfs; a build step's belong to the image (masklayer empties them).
        for (dir, mode) in [("tmp", "1777"), ("run", "0755"), ("var/tmp", "1777")] {
            if let Some(target) = existing_or_new_dir(&root, dir) {
                tmpfs(&target, &format!("mode={mode}"))?;
            }
        }
    }
    existing_or_new_dir(&root, "proc").ok_or("the image has no usable /proc directory")?;
    let sys = existing_or_new_dir(&root, "sys").ok_or("the image has no usable /sys directory")?;
    if !args.egress_none {
        // Without a new netns a userns may not mount sysfs, so share the host's, read-only.
        bind_readonly(Path::new("/sys"), &sys)?;
    }
    Ok(root)
}

/// mkdir -p that tolerates another VM's teardown removing the (empty) state dir meanwhile.
fn create_scratch(base: &Path) -> Step {
    let mut result = std::fs::create_dir_all(base);
    for _ in 0..3 {
        match &result {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => result = std::fs::create_dir_all(base),
            _ => break,
        }
    }
    result.map_err(|e| format!("create {}: {e}", base.display()))
}

/// Mounts the overlay on `base/root`: `layers` over `lower` under the build step's persistent
/// upper dir, or under a throwaway one on the scratch tmpfs.
///
/// overlayfs refuses a lower dir beneath another lower dir (ELOOP), and image layers usually
/// live beneath the host root: so with image layers, the base (mask layer over the image root)
/// is first mounted read-only on `base/lower`, and the layers are stacked on that mount.
fn overlay(layers: &[PathBuf], lower: [&Path; 2], args: &HelperArgs, base: &Path) -> Result<PathBuf, String> {
    let (upper, work, extra) = match (&args.upper, &args.work) {
        // index=off: the mask layer is a new tmpfs each step, so origins may not be verified.
        (Some(upper), Some(work)) => (upper.clone(), work.clone(), ",index=off"),
        _ => {
            mkdir(&base.join("upper"))?;
            mkdir(&base.join("work"))?;
            (base.join("upper"), base.join("work"), "")
        }
    };
    let mut lowers: Vec<PathBuf> = layers.to_vec();
    if layers.is_empty() {
        lowers.extend(lower.iter().map(|p| p.to_path_buf()));
    } else {
        let stacked = base.join("lower");
        mkdir(&stacked)?;
        mount_overlay(&stacked, &format!("lowerdir={}", lowerdir(&lower)?))?;
        lowers.push(stacked);
    }
    let lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    let root = base.join("root");
    mkdir(&root)?;
    mount_overlay(&root, &format!("lowerdir={},upperdir={},workdir={}{extra}", lowerdir(&lowers)?, escape(&upper)?, escape(&work)?))?;
    Ok(root)
}

fn lowerdir(lowers: &[&Path]) -> Result<String, String> {
    Ok(lowers.iter().map(|l| escape(l)).collect::<Result<Vec<_>, _>>()?.join(":"))
}

fn mount_overlay(target: &Path, opts: &str) -> Step {
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(opts))
        .map_err(|e| format!("mount overlay ({opts}) on {}: {e}", target.display()))
}

/// Overlay options are comma separated and lowerdir is colon separated: reject such paths.
fn escape(path: &Path) -> Result<&str, String> {
    let s = path.to_str().ok_or_else(|| format!("path {} is not UTF-8", path.display()))?;
    if s.contains([',', ':', '\\']) {
        return Err(format!("path {s:?} contains ',', ':' or '\\', which overlayfs options cannot carry"));
    }
    Ok(s)
}

fn build_dev(root: &Path) -> Step {
    let dev = root.join("dev");
    mkdir_p(&dev)?;
    mount(Some("tmpfs"), &dev, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("mode=0755,size=64k"))
        .map_err(|e| format!("mount tmpfs on {}: {e}", dev.display()))?;
    for name in DEVICES {
        let target = dev.join(name);
        touch(&target)?;
        bind(&Path::new("/dev").join(name), &target, MsFlags::empty())?;
    }
    mkdir(&dev.join("pts"))?;
    mkdir(&dev.join("shm"))?;
    tmpfs(&dev.join("shm"), "mode=1777")?;
    for (name, target) in DEV_LINKS {
        symlink(target, dev.join(name)).map_err(|e| format!("symlink /dev/{name}: {e}"))?;
    }
    Ok(())
}

/// `root` + `rel`, refusing to walk through symlinks (they would resolve against the host root).
pub(crate) fn safe_join(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for comp in rel.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::RootDir | Component::CurDir => continue,
            _ => return None,
        }
        if out.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return None;
        }
    }
    Some(out)
}

fn existing_or_new_dir(root: &Path, rel: &str) -> Option<PathBuf> {
    let target = safe_join(root, Path::new(rel))?;
    mkdir_p(&target).ok()?;
    target.is_dir().then_some(target)
}

fn tmpfs(target: &Path, opts: &str) -> Step {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(opts)).map_err(|e| format!("mount tmpfs ({opts}) on {}: {e}", target.display()))
}

fn bind(source: &Path, target: &Path, extra: MsFlags) -> Step {
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | extra, None::<&str>)
        .map_err(|e| format!("bind {} on {}: {e}", source.display(), target.display()))
}

fn bind_readonly(source: &Path, target: &Path) -> Step {
    bind(source, target, MsFlags::empty())?;
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    bind(source, target, ro)
}

fn mount_flags(target: &str, flags: MsFlags) -> Step {
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|e| format!("mount --make-private {target}: {e}"))
}

pub(crate) fn mkdir(path: &Path) -> Step {
    std::fs::create_dir(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

fn mkdir_p(path: &Path) -> Step {
    std::fs::create_dir_all(path).map_err(|e| format!("mkdir -p {}: {e}", path.display()))
}

pub(crate) fn touch(path: &Path) -> Step {
    let open = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(path);
    open.map(drop).map_err(|e| format!("create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_refuses_parent_components() {
        assert_eq!(safe_join(Path::new("/nonexistent-root"), Path::new("/a/b")), Some("/nonexistent-root/a/b".into()));
        assert_eq!(safe_join(Path::new("/nonexistent-root"), Path::new("/a/../b")), None);
    }

    #[test]
    fn escape_rejects_option_separators() {
        assert!(escape(Path::new("/tmp/a,b")).is_err());
        assert_eq!(escape(Path::new("/tmp/ab")), Ok("/tmp/ab"));
    }
}
