//! Control messages between the emulator and a VM's helper/init, one per SOCK_SEQPACKET packet.
//!
//! Text messages, space separated; a pty master travels as SCM_RIGHTS next to `spawned`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Largest packet either side sends (the helper configuration is the biggest one).
pub(crate) const MAX_PACKET: usize = 64 * 1024;

/// A request from the emulator to the VM's init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// Start a new interactive shell, tagged with this id.
    Spawn(u64),
    /// SIGSTOP every process of the VM (freeze fallback without cgroups).
    StopAll,
    /// SIGCONT every process of the VM.
    ContAll,
}

/// A report from the helper processes or the VM's init to the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// Host pid of the VM's pid 1 (sent by the helper's namespaced child).
    InitPid(i32),
    /// Init finished setup and serves requests.
    Ready,
    /// Setup failed; the VM will not come up.
    Failed(String),
    /// The shell `id` runs as `pid` (in the VM's pid namespace); its pty master is attached.
    Spawned { id: u64, pid: i32 },
    /// The shell `id` could not be started.
    SpawnFailed { id: u64, reason: String },
    /// The shell `id` exited: exit code, or 128 + signal number.
    Exited { id: u64, status: i32 },
}

impl Request {
    /// The wire form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Request::Spawn(id) => format!("spawn {id}"),
            Request::StopAll => "stop".into(),
            Request::ContAll => "cont".into(),
        }
    }

    /// Parses the wire form; `None` for anything unknown.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        match text.split_once(' ') {
            Some(("spawn", id)) => id.parse().ok().map(Request::Spawn),
            None if text == "stop" => Some(Request::StopAll),
            None if text == "cont" => Some(Request::ContAll),
            _ => None,
        }
    }
}

impl Report {
    /// The wire form.
    pub(crate) fn encode(&self) -> String {
        match self {
            Report::InitPid(pid) => format!("pid {pid}"),
            Report::Ready => "ready".into(),
            Report::Failed(why) => format!("failed {why}"),
            Report::Spawned { id, pid } => format!("spawned {id} {pid}"),
            Report::SpawnFailed { id, reason } => format!("spawnfail {id} {reason}"),
            Report::Exited { id, status } => format!("exited {id} {status}"),
        }
    }

    /// Parses the wire form; `None` for anything unknown.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        let two = || rest.split_once(' ').unwrap_or((rest, ""));
        Some(match verb {
            "pid" => Report::InitPid(rest.parse().ok()?),
            "ready" if rest.is_empty() => Report::Ready,
            "failed" => Report::Failed(rest.into()),
            "spawned" => Report::Spawned { id: two().0.parse().ok()?, pid: two().1.parse().ok()? },
            "spawnfail" => Report::SpawnFailed { id: two().0.parse().ok()?, reason: two().1.into() },
            "exited" => Report::Exited { id: two().0.parse().ok()?, status: two().1.parse().ok()? },
            _ => return None,
        })
    }
}

/// Sends one packet, optionally passing `pass` along with SCM_RIGHTS.
pub(crate) fn send(sock: BorrowedFd<'_>, bytes: &[u8], pass: Option<BorrowedFd<'_>>) -> nix::Result<()> {
    let iov = [IoSlice::new(bytes)];
    let fds: Vec<RawFd> = pass.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// Sends one report (helper and init side; failures are ignored because nobody is left to tell).
pub(crate) fn report(sock: BorrowedFd<'_>, report: &Report, pass: Option<BorrowedFd<'_>>) {
    let _ = send(sock, report.encode().as_bytes(), pass);
}

/// Receives one packet and at most one passed fd (close-on-exec); `None` at end of stream.
pub(crate) fn recv(sock: BorrowedFd<'_>) -> nix::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut passed = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel just installed these descriptors for us; nobody else owns them.
            passed.extend(fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let len = msg.bytes;
    if len == 0 {
        return Ok(None);
    }
    buf.truncate(len);
    Ok(Some((buf, passed.into_iter().next())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let all = [
            Report::InitPid(42),
            Report::Ready,
            Report::Failed("mount overlay: EINVAL".into()),
            Report::Spawned { id: 3, pid: 7 },
            Report::SpawnFailed { id: 4, reason: "no /dev/ptmx here".into() },
            Report::Exited { id: 5, status: 137 },
        ];
        for r in all {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode("spawned x 1"), None);
    }

    #[test]
    fn requests_round_trip() {
        for r in [Request::Spawn(9), Request::StopAll, Request::ContAll] {
            assert_eq!(Request::decode(&r.encode()), Some(r));
        }
        assert_eq!(Request::decode("spawn"), None);
    }
}
