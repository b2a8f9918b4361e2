//! Host-side cgroup handling for one VM: create, freeze/thaw, kill, remove.
//!
//! Prefers cgroup v2 (`cgroup.freeze`, `cgroup.kill`), found from `/proc/self/mountinfo`; falls back
//! to the v1 freezer hierarchy; without either, [`VmCgroup::kind`] is `None` and callers use signals.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which cgroup mechanism a VM runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupKind {
    /// A cgroup v2 directory (freeze, kill, events).
    V2(PathBuf),
    /// A cgroup v1 freezer directory (freeze only).
    V1Freezer(PathBuf),
}

/// The cgroup of one VM, if one could be made.
#[derive(Debug, Clone)]
pub(crate) struct VmCgroup {
    /// The mechanism and directory, or `None` when no cgroup could be created.
    pub kind: Option<CgroupKind>,
}

/// Environment variable that picks the cgroup mechanism: `auto` (default: v2, else v1 freezer,
/// else none), `v2`, `v1`, or `none` (freeze by SIGSTOP, with bash's "Stopped" artifact).
pub const CGROUP_ENV: &str = "WHIM_SANDBOX_CGROUP";

/// How long freeze/thaw/removal may take before we give up.
const SETTLE: Duration = Duration::from_secs(5);

impl VmCgroup {
    /// Creates `<cgroup2>/whim/<vm_id>`, else `<freezer>/whim/<vm_id>`; best effort.
    /// [`CGROUP_ENV`] may force `v2`, `v1` or `none`.
    pub(crate) fn create(vm_id: &str) -> Self {
        let choice = std::env::var(CGROUP_ENV).unwrap_or_default();
        let (v2, v1) = match choice.as_str() {
            "" | "auto" => (true, true),
            "v2" => (true, false),
            "v1" => (false, true),
            "none" => (false, false),
            other => {
                tracing::warn!("ignoring {CGROUP_ENV}={other:?}: expected auto, v2, v1 or none");
                (true, true)
            }
        };
        let v2 = find_mount("cgroup2", None).filter(|_| v2).map(|m| CgroupKind::V2(m.join("whim").join(vm_id)));
        let v1 = find_mount("cgroup", Some("freezer")).filter(|_| v1).map(|m| CgroupKind::V1Freezer(m.join("whim").join(vm_id)));
        for kind in [v2, v1].into_iter().flatten() {
            match std::fs::create_dir_all(kind.dir()) {
                Ok(()) => return VmCgroup { kind: Some(kind) },
                Err(e) => tracing::debug!(dir = %kind.dir().display(), "cannot create cgroup: {e}"),
            }
        }
        tracing::warn!("no usable cgroup (v2 or v1 freezer): suspend falls back to SIGSTOP");
        VmCgroup { kind: None }
    }

    /// Where the helper puts the VM: a v2 directory to clone into, or v1 `cgroup.procs` files.
    pub(crate) fn placement(&self) -> (Option<PathBuf>, Vec<PathBuf>) {
        match &self.kind {
            Some(CgroupKind::V2(dir)) => (Some(dir.clone()), vec![]),
            Some(CgroupKind::V1Freezer(dir)) => (None, vec![dir.join("cgroup.procs")]),
            None => (None, vec![]),
        }
    }

    /// Freezes (or thaws) every process and waits until the kernel reports it done.
    pub(crate) async fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        match &self.kind {
            Some(CgroupKind::V2(dir)) => {
                write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                wait_for(&dir.join("cgroup.events"), |s| s.lines().any(|l| l == want)).await
            }
            Some(CgroupKind::V1Freezer(dir)) => {
                let want = if frozen { "FROZEN" } else { "THAWED" };
                write(&dir.join("freezer.state"), want)?;
                wait_for(&dir.join("freezer.state"), |s| s.trim() == want).await
            }
            None => Err("no cgroup".into()),
        }
    }

    /// Kills every process: `cgroup.kill` on v2; on v1 thaws so that SIGKILL can land.
    pub(crate) fn kill_all(&self) {
        match &self.kind {
            Some(CgroupKind::V2(dir)) => {
                let _ = write(&dir.join("cgroup.kill"), "1");
            }
            Some(CgroupKind::V1Freezer(dir)) => {
                let _ = write(&dir.join("freezer.state"), "THAWED");
            }
            None => {}
        }
    }

    /// Waits until the cgroup is empty, then removes its directory.
    pub(crate) async fn remove(&self) {
        let deadline = Instant::now() + SETTLE;
        while !self.try_remove(deadline) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// [`VmCgroup::remove`] for threads outside the runtime.
    pub(crate) fn remove_blocking(&self) {
        let deadline = Instant::now() + SETTLE;
        while !self.try_remove(deadline) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// One removal attempt; true when done or hopeless.
    fn try_remove(&self, deadline: Instant) -> bool {
        let Some(kind) = &self.kind else { return true };
        match std::fs::remove_dir(kind.dir()) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) if Instant::now() > deadline => {
                tracing::warn!(dir = %kind.dir().display(), "cgroup not removed: {e}");
                true
            }
            Err(_) => false,
        }
    }
}

impl CgroupKind {
    /// The cgroup directory.
    pub(crate) fn dir(&self) -> &Path {
        match self {
            CgroupKind::V2(d) | CgroupKind::V1Freezer(d) => d,
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value:?} to {}: {e}", path.display()))
}

async fn wait_for(path: &Path, done: impl Fn(&str) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        if done(&text) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not settle within {SETTLE:?}: {text:?}", path.display()));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Finds a mount point of `fstype` in `/proc/self/mountinfo`; with `option`, its super options
/// must contain that word (e.g. `freezer`).
pub(crate) fn find_mount(fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| parse_mountinfo_line(line, fstype, option))
}

fn parse_mountinfo_line(line: &str, fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let (left, right) = line.split_once(" - ")?;
    let mut right = right.split(' ');
    let (fs, _source, opts) = (right.next()?, right.next()?, right.next().unwrap_or(""));
    if fs != fstype || option.is_some_and(|o| !opts.split(',').any(|x| x == o)) {
        return None;
    }
    left.split(' ').nth(4).map(|p| PathBuf::from(unescape_octal(p)))
}

/// Undoes mountinfo's `\040`-style escapes.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (b[i], code) {
            (b'\\', Some(c)) => (out.push(c), i += 4),
            (c, _) => (out.push(c), i += 1),
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let v2 = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        let v1 = "37 31 0:34 / /sys/fs/cgroup/my\\040freezer rw - cgroup cgroup rw,freezer";
        assert_eq!(parse_mountinfo_line(v2, "cgroup2", None), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(parse_mountinfo_line(v1, "cgroup", Some("freezer")), Some("/sys/fs/cgroup/my freezer".into()));
        assert_eq!(parse_mountinfo_line(v1, "cgroup", Some("memory")), None);
    }
}
