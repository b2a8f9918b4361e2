//! Running one command to completion in a VM without a terminal (build steps): the request's
//! wire form, and the init side that forks it with its output on a pipe.
//!
//! The command runs with the given argv, environment, working directory and user; stdin is
//! `/dev/null`, stdout and stderr share one pipe whose read end goes back to the emulator.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe2};

use super::guest::reset_signals;
use super::restrict::Policy;

/// Leading bytes of an exec request packet (text requests never start with a NUL field).
const MAGIC: &[u8] = b"exec\0";

/// One non-interactive command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExecSpec {
    /// Program and arguments (`argv[0]` is looked up in `PATH` when it has no `/`).
    pub argv: Vec<String>,
    /// The whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory (must exist).
    pub cwd: String,
    /// `user[:group]`, names or ids, resolved in the VM's `/etc/passwd` and `/etc/group`.
    pub user: Option<String>,
}

impl ExecSpec {
    /// The request packet for shell id `id`.
    pub(crate) fn encode(&self, id: u64) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut field = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        field(&id.to_string());
        field(&self.cwd);
        field(self.user.as_deref().unwrap_or(""));
        field(&self.argv.len().to_string());
        self.argv.iter().chain(&self.env).for_each(|s| field(s));
        out
    }

    /// Parses [`ExecSpec::encode`]'s packet; `None` when it is not one.
    pub(crate) fn decode(packet: &[u8]) -> Option<(u64, ExecSpec)> {
        let body = packet.strip_prefix(MAGIC)?;
        let mut fields = body.split(|b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned());
        let id = fields.next()?.parse().ok()?;
        let cwd = fields.next()?;
        let user = Some(fields.next()?).filter(|u| !u.is_empty());
        let argc: usize = fields.next()?.parse().ok()?;
        let mut rest: Vec<String> = fields.collect();
        rest.pop(); // The empty field after the final NUL.
        if argc == 0 || rest.len() < argc {
            return None;
        }
        let env = rest.split_off(argc);
        Some((id, ExecSpec { argv: rest, env, cwd, user }))
    }

    /// Whether any string holds a NUL (it could not be passed to execve).
    pub(crate) fn has_nul(&self) -> bool {
        self.argv.iter().chain(&self.env).chain([&self.cwd]).chain(&self.user).any(|s| s.contains('\0'))
    }
}

/// Forks `spec` (in the VM's init); returns its pid and the read end of its output pipe.
pub(crate) fn spawn(spec: &ExecSpec, policy: Option<&Policy>) -> Result<(Pid, OwnedFd), String> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    // SAFETY: init is single threaded, so the child may allocate before it execs.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(read);
            child(spec, policy, write)
        }
        Ok(ForkResult::Parent { child }) => Ok((child, read)),
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// In the forked child: stdio, restrictions, user, cwd, exec. Failures go to the pipe.
fn child(spec: &ExecSpec, policy: Option<&Policy>, out: OwnedFd) -> ! {
    reset_signals();
    let _ = nix::unistd::setsid();
    // SAFETY: plain descriptor syscalls on descriptors this process owns.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        libc::dup2(null, 0);
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(out.as_raw_fd(), 2);
        libc::close_range(3, u32::MAX, 0);
        libc::umask(0o022);
    }
    if let Some(Err(why)) = policy.map(Policy::apply) {
        die(&why);
    }
    let mut env = spec.env.clone();
    if let Some(user) = &spec.user {
        switch_user(user, &mut env).unwrap_or_else(|why| die(&why));
    }
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push("HOME=/root".into());
    }
    if let Err(e) = nix::unistd::chdir(spec.cwd.as_str()) {
        die(&format!("cannot enter the working directory {}: {e}", spec.cwd));
    }
    exec(&spec.argv, &env)
}

fn exec(argv: &[String], env: &[String]) -> ! {
    let cargs: Vec<CString> = argv.iter().filter_map(|a| CString::new(a.as_str()).ok()).collect();
    let cenv: Vec<CString> = env.iter().filter_map(|a| CString::new(a.as_str()).ok()).collect();
    let Some(program) = cargs.first() else { die("empty command") };
    // execvpe searches PATH of the *calling* process: put the command's PATH in place first.
    if let Some(path) = env.iter().find_map(|kv| kv.strip_prefix("PATH=")) {
        // SAFETY: single-threaded child about to exec.
        unsafe { std::env::set_var("PATH", path) };
    }
    let err = nix::unistd::execvpe(program, &cargs, &cenv).err();
    die(&format!("exec {}: {}", argv[0], err.map_or_else(String::new, |e| e.to_string())))
}

/// Resolves `user[:group]` in the VM's files, sets groups, gid and uid, and HOME if unset.
fn switch_user(spec: &str, env: &mut Vec<String>) -> Result<(), String> {
    let (user, group) = spec.split_once(':').map_or((spec, None), |(u, g)| (u, Some(g)));
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 6 && (f[0] == user || f[2] == user));
    let (uid, mut gid, home) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0), f[5].to_owned()),
        (None, Ok(uid)) => (uid, 0, "/".to_owned()),
        (None, Err(_)) => return Err(format!("unable to find user {user}: no matching entries in /etc/passwd")),
    };
    let groups_file = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let groups: Vec<Vec<&str>> = groups_file.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 4).collect();
    if let Some(group) = group {
        gid = match (groups.iter().find(|f| f[0] == group), group.parse::<u32>()) {
            (Some(f), _) => f[2].parse().unwrap_or(0),
            (None, Ok(gid)) => gid,
            (None, Err(_)) => return Err(format!("unable to find group {group}: no matching entries in /etc/group")),
        };
    }
    let name = entry.as_ref().map_or("", |f| f[0]);
    let mut extra: Vec<Gid> = vec![Gid::from_raw(gid)];
    let member = |f: &&Vec<&str>| !name.is_empty() && f[3].split(',').any(|m| m == name);
    extra.extend(groups.iter().filter(member).filter_map(|f| f[2].parse().ok()).map(Gid::from_raw));
    nix::unistd::setgroups(&extra).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setgid(Gid::from_raw(gid)).map_err(|e| format!("setgid {gid}: {e}"))?;
    nix::unistd::setuid(Uid::from_raw(uid)).map_err(|e| format!("setuid {uid}: {e}"))?;
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    Ok(())
}

/// Reports a failure on the output pipe and exits 127.
fn die(msg: &str) -> ! {
    let line = format!("whim: {msg}\n");
    // SAFETY: writing a buffer we own to stderr (the pipe), then _exit.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let spec = ExecSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), "echo 'a b'".into(), String::new()],
            env: vec!["PATH=/bin".into(), "A=".into()],
            cwd: "/app".into(),
            user: Some("app:staff".into()),
        };
        assert_eq!(ExecSpec::decode(&spec.encode(7)), Some((7, spec.clone())));
        let no_env = ExecSpec { env: vec![], user: None, ..spec };
        assert_eq!(ExecSpec::decode(&no_env.encode(1)), Some((1, no_env)));
        assert_eq!(ExecSpec::decode(b"spawn 1"), None);
    }
}
