//! Checks, before any VM boots, that this host can run namespace sandboxes.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// What the Namespaces isolation needs, in the order the probe tries it.
const NAMESPACES: [(libc::c_int, &str); 7] = [
    (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
    (libc::CLONE_NEWNS, "CLONE_NEWNS"),
    (libc::CLONE_NEWPID, "CLONE_NEWPID"),
    (libc::CLONE_NEWUTS, "CLONE_NEWUTS"),
    (libc::CLONE_NEWIPC, "CLONE_NEWIPC"),
    (libc::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
    (libc::CLONE_NEWNET, "CLONE_NEWNET"),
];

const FALLBACK: &str = "start the emulator with --unisolated to run shells without isolation (unsafe)";

/// Ok when [`super::Isolation::Namespaces`] can work here; otherwise says exactly what is missing.
pub fn probe() -> Result<(), String> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "the namespace sandbox needs root (euid is {euid}): it mounts an overlay over the host root \
             and maps ids 1:1; run the emulator as root, or {FALLBACK}"
        ));
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.lines().any(|l| l.split_whitespace().last() == Some("overlay")) {
        return Err(format!("overlayfs is not available (no 'overlay' in /proc/filesystems): run `modprobe overlay`, or {FALLBACK}"));
    }
    try_namespaces(NAMESPACES.iter().fold(0, |all, (flag, _)| all | flag)).or_else(|_| explain_failure())
}

/// Retries namespace by namespace to name the one that fails.
fn explain_failure() -> Result<(), String> {
    let mut flags = 0;
    for (flag, name) in NAMESPACES {
        flags |= flag;
        if let Err(errno) = try_namespaces(flags) {
            return Err(format!("unshare({name}) failed: {errno} — {}; {FALLBACK}", hint(flag, errno)));
        }
    }
    Err(format!("mounting a tmpfs inside a new user+mount namespace failed; {FALLBACK}"))
}

fn hint(flag: libc::c_int, errno: nix::errno::Errno) -> &'static str {
    use nix::errno::Errno;
    match (flag, errno) {
        (libc::CLONE_NEWUSER, Errno::EPERM) => "user namespaces are disabled (or blocked by a seccomp profile, e.g. Docker's default)",
        (libc::CLONE_NEWUSER, Errno::ENOSPC) => "the user namespace limit is reached (sysctl user.max_user_namespaces)",
        (_, Errno::EINVAL) => "this kernel was built without that namespace type",
        (_, Errno::ENOSPC) => "the limit for that namespace type is reached (sysctl user.max_*_namespaces)",
        (_, Errno::EPERM) => "the namespace is blocked by a security policy",
        _ => "see unshare(2)",
    }
}

/// In a throwaway child: unshare `flags`, then (with a new mount ns) mount a tmpfs.
fn try_namespaces(flags: libc::c_int) -> Result<(), nix::errno::Errno> {
    let mut cmd = Command::new("/bin/true");
    // SAFETY: the closure only makes raw syscalls (async-signal-safe) in the forked child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let tmpfs = c"tmpfs".as_ptr();
            if flags & libc::CLONE_NEWNS != 0 && libc::mount(tmpfs, c"/".as_ptr(), tmpfs, 0, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Success needs no exec: leaving here looks like a successful exec to std.
            libc::_exit(0)
        });
    }
    match cmd.spawn().and_then(|mut c| c.wait()) {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(nix::errno::Errno::EIO),
        Err(e) => Err(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
    }
}
