//! Copying files into and out of a VM through the shell pty, as a tar.gz stream.
//!
//! Both directions are ordinary exec commands (the [`crate::exec`] framing carries bytes
//! exactly, in raw mode, both ways):
//!
//! * **put** runs [`put_receive_argv`] with the local tar.gz as its standard input: the
//!   remote side hashes what it received (sha256), extracts it into a staging directory
//!   inside the destination and prints the hash ([`parse_receipt`]). The client compares it
//!   with the hash of what it sent, then runs [`put_commit_argv`] (rename into place) or
//!   [`put_abort_argv`]. Nothing appears in the destination unless the bytes match.
//! * **get** runs [`get_argv`]: the remote prints the tar.gz stream, then a random
//!   marker, then a trailer with the stream's sha256, tar's status and its messages.
//!   [`GetDecoder`] splits the two in a stream cut anywhere; the client decompresses the
//!   payload, validates it with [`crate::archive::TarGuard`] and extracts it beside the
//!   destination before renaming it into place.
//!
//! Remote paths are passed as arguments, never spliced into the script, so they are
//! quoted exactly once by the exec framing whatever bytes they hold.

use std::collections::VecDeque;

use memchr::memmem::Finder;

use crate::exec::{ExitStatus, Nonce, partial_suffix};

/// Longest trailer accepted after a get's payload (tar's messages included).
pub const MAX_TRAILER: usize = 64 * 1024;

/// Prefix of the line a put's receive step prints on success.
const RECEIPT: &str = "whim-received ";

/// Why a copy failed, as the user should read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The remote path names nothing that can be copied by name (empty, `/`, `.`, `..`).
    #[error("cannot copy `{0}`: name a file or directory (not `/`, `.` or `..`)")]
    BadRemotePath(String),
    /// The remote side reported a failure, in its words.
    #[error("{0}")]
    Remote(String),
    /// The bytes received differ from the bytes sent.
    #[error("the copy was corrupted in transit (sha256 {sent} sent, {received} received); nothing was written")]
    ChecksumMismatch {
        /// Hash of what left.
        sent: String,
        /// Hash of what arrived.
        received: String,
    },
    /// The remote output did not follow the transfer framing.
    #[error("the VM answered the copy with something unexpected: {0}")]
    Protocol(String),
}

/// Splits a remote path into the directory to run tar in and the name to copy, as
/// `dirname`/`basename` do (trailing slashes ignored). `/`, `.`, `..` and empty are refused.
pub fn split_remote(path: &[u8]) -> Result<(Vec<u8>, Vec<u8>), TransferError> {
    let bad = || TransferError::BadRemotePath(String::from_utf8_lossy(path).into_owned());
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(end) => &path[..=end],
        None => return Err(bad()),
    };
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => {
            let dir = &trimmed[..i];
            let dir = if dir.iter().all(|&b| b == b'/') { &b"/"[..] } else { dir };
            (dir.to_vec(), trimmed[i + 1..].to_vec())
        }
        None => (b".".to_vec(), trimmed.to_vec()),
    };
    if base == b"." || base == b".." {
        return Err(bad());
    }
    Ok((dir, base))
}

fn argv(script: &str, args: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v = vec![b"bash".to_vec(), b"-c".to_vec(), script.as_bytes().to_vec(), b"whim".to_vec()];
    v.extend(args.iter().map(|a| a.to_vec()));
    v
}

/// Staging directory name inside a put's destination, from a fresh nonce.
#[must_use]
pub fn staging_name(nonce: Nonce) -> String {
    format!(".whim-put-{}", &nonce.hex()[..16])
}

/// The receive step of a put into `dest_dir` of an archive whose single top-level entry
/// is `name`. Standard input is the tar.gz stream.
#[must_use]
pub fn put_receive_argv(dest_dir: &[u8], staging: &str, name: &[u8]) -> Vec<Vec<u8>> {
    const SCRIPT: &str = r#"d=$1 s=$2 n=$3
fail() { printf '%s\n' "$1"; exit 2; }
[ -e "$d" ] || fail "$d: no such directory in the VM"
[ -d "$d" ] || fail "$d: not a directory in the VM"
if [ -d "$d/$n" ] && [ ! -L "$d/$n" ]; then fail "$d/$n already exists as a directory in the VM: remove it or choose another destination"; fi
u=$(mktemp -d) || fail "cannot create a temporary directory in the VM"
trap 'rm -rf -- "$u"' EXIT
mkdir -m 700 -- "$d/$s" 2>"$u/e" || fail "cannot write to $d in the VM: $(cat "$u/e")"
mkfifo "$u/f" && { sha256sum <"$u/f" >"$u/s" & }
tee "$u/f" | gzip -dc 2>>"$u/e" | tar -C "$d/$s" -xf - --no-same-owner 2>>"$u/e"
r=("${PIPESTATUS[@]}")
wait
if [ "${r[0]}${r[1]}${r[2]}" != 000 ]; then
  rm -rf -- "$d/$s"
  fail "extracting into $d in the VM failed: $(head -c 4000 "$u/e")"
fi
printf 'whim-received %s\n' "$(head -c 64 "$u/s")""#;
    argv(SCRIPT, &[dest_dir, staging.as_bytes(), name])
}

/// Reads the receive step's answer: the sha256 (hex) of what the VM received.
pub fn parse_receipt(output: &[u8], status: ExitStatus) -> Result<String, TransferError> {
    let text = String::from_utf8_lossy(output);
    if status.code() != 0 {
        return Err(TransferError::Remote(text.trim().to_owned()));
    }
    let sum = text.lines().find_map(|l| l.strip_prefix(RECEIPT)).map(str::trim);
    match sum {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(s.to_ascii_lowercase()),
        _ => Err(TransferError::Protocol(format!("no checksum in the answer `{}`", text.trim()))),
    }
}

/// Compares what was sent with what the VM says it received.
pub fn check_sums(sent: &str, received: &str) -> Result<(), TransferError> {
    if sent.eq_ignore_ascii_case(received) {
        Ok(())
    } else {
        Err(TransferError::ChecksumMismatch { sent: sent.to_owned(), received: received.to_owned() })
    }
}

/// Moves the staged entry into place (a file replaces a file; a directory is never merged).
#[must_use]
pub fn put_commit_argv(dest_dir: &[u8], staging: &str, name: &[u8]) -> Vec<Vec<u8>> {
    const SCRIPT: &str = r#"d=$1 s=$2 n=$3
if [ -d "$d/$n" ] && [ ! -L "$d/$n" ]; then
  rm -rf -- "$d/$s"; printf '%s\n' "$d/$n already exists as a directory in the VM: remove it or choose another destination"; exit 2
fi
if ! e=$(mv -f -T -- "$d/$s/$n" "$d/$n" 2>&1); then rm -rf -- "$d/$s"; printf 'moving into %s in the VM failed: %s\n' "$d" "$e"; exit 2; fi
rmdir -- "$d/$s""#;
    argv(SCRIPT, &[dest_dir, staging.as_bytes(), name])
}

/// Removes the staging directory of a put that failed.
#[must_use]
pub fn put_abort_argv(dest_dir: &[u8], staging: &str) -> Vec<Vec<u8>> {
    argv(r#"rm -rf -- "$1/$2""#, &[dest_dir, staging.as_bytes()])
}

/// Reads the commit step's answer.
pub fn parse_commit(output: &[u8], status: ExitStatus) -> Result<(), TransferError> {
    if status.code() == 0 { Ok(()) } else { Err(TransferError::Remote(String::from_utf8_lossy(output).trim().to_owned())) }
}

fn get_marker(nonce: Nonce) -> String {
    format!("WHIMGET{}T", nonce.hex())
}

/// The command that prints `name` (inside `dir`) as a tar.gz stream followed by the
/// trailer marked with `nonce` (which MUST be fresh). Its own scratch directory
/// (`.whim-get-*`, in `$TMPDIR`) is left out of the archive, so a get of `/tmp` works. `shown` is the path as the user
/// wrote it, for messages.
#[must_use]
pub fn get_argv(dir: &[u8], name: &[u8], shown: &[u8], nonce: Nonce) -> Vec<Vec<u8>> {
    const SCRIPT: &str = r#"d=$1 b=$2 p=$3 m=$4
fail() { printf '%s- 2\n%s' "$m" "$1"; exit 2; }
[ -e "$d/$b" ] || [ -L "$d/$b" ] || fail "$p: no such file or directory in the VM"
[ -r "$d/$b" ] || [ -L "$d/$b" ] || fail "$p: permission denied in the VM"
u=$(mktemp -d "${TMPDIR:-/tmp}/.whim-get-XXXXXXXX") || fail "cannot create a temporary directory in the VM"
trap 'rm -rf -- "$u"' EXIT
mkfifo "$u/f" && { sha256sum <"$u/f" >"$u/s" & }
tar -C "$d" -cf - --hard-dereference --exclude='.whim-get-*' -- "./$b" 2>"$u/e" | gzip -1 | tee "$u/f"
r=("${PIPESTATUS[@]}")
wait
c=0; [ "${r[0]}${r[1]}${r[2]}" = 000 ] || c=2
printf '%s%s %s\n' "$m" "$(head -c 64 "$u/s")" "$c"
head -c 4000 "$u/e"
exit $c"#;
    argv(SCRIPT, &[dir, name, shown, get_marker(nonce).as_bytes()])
}

/// What [`GetDecoder`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetEvent {
    /// tar.gz bytes, exact and in order.
    Payload(Vec<u8>),
}

/// The end of a get, from its trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetTrailer {
    /// sha256 (lower-case hex) of the payload as the VM sent it; `None` when it sent none.
    pub sha256: Option<String>,
}

/// A push parser of a get's output: the payload, then the marker and the trailer.
#[derive(Debug)]
pub struct GetDecoder {
    marker: Finder<'static>,
    held: Vec<u8>,
    trailer: Option<Vec<u8>>,
    events: VecDeque<GetEvent>,
    overflow: bool,
}

impl GetDecoder {
    /// A decoder for the stream of [`get_argv`] with the same `nonce`.
    #[must_use]
    pub fn new(nonce: Nonce) -> Self {
        let marker = Finder::new(get_marker(nonce).as_bytes()).into_owned();
        Self { marker, held: Vec::new(), trailer: None, events: VecDeque::new(), overflow: false }
    }

    /// Feeds command output, split anywhere.
    pub fn handle_output(&mut self, bytes: &[u8]) {
        if let Some(t) = &mut self.trailer {
            let room = MAX_TRAILER.saturating_sub(t.len());
            self.overflow |= bytes.len() > room;
            t.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return;
        }
        self.held.extend_from_slice(bytes);
        if let Some(i) = self.marker.find(&self.held) {
            let rest = self.held.split_off(i + self.marker.needle().len());
            self.held.truncate(i);
            let payload = std::mem::take(&mut self.held);
            self.push(payload);
            self.trailer = Some(Vec::new());
            self.handle_output(&rest);
            return;
        }
        let keep = partial_suffix(&self.held, self.marker.needle());
        let tail = self.held.split_off(self.held.len() - keep);
        let payload = std::mem::replace(&mut self.held, tail);
        self.push(payload);
    }

    fn push(&mut self, payload: Vec<u8>) {
        if !payload.is_empty() {
            self.events.push_back(GetEvent::Payload(payload));
        }
    }

    /// Next payload piece; drain after every [`GetDecoder::handle_output`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<GetEvent> {
        self.events.pop_front()
    }

    /// The command ended with `status`: the trailer's verdict.
    pub fn finish(&mut self, status: ExitStatus) -> Result<GetTrailer, TransferError> {
        let Some(t) = self.trailer.take() else {
            return Err(TransferError::Protocol(format!("the stream ended without its trailer (exit status {})", status.code())));
        };
        let text = String::from_utf8_lossy(&t);
        let (head, message) = text.split_once('\n').unwrap_or((&text, ""));
        let message = message.trim();
        let mut words = head.split(' ');
        let (sum, code) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        if status.code() != 0 || code != "0" {
            let said =
                if message.is_empty() { format!("the VM could not send it (exit status {})", status.code()) } else { message.to_owned() };
            return Err(TransferError::Remote(said));
        }
        if self.overflow {
            return Err(TransferError::Protocol("the trailer is too long".into()));
        }
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TransferError::Protocol(format!("bad checksum `{sum}` in the trailer")));
        }
        Ok(GetTrailer { sha256: Some(sum.to_ascii_lowercase()) })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const N: Nonce = Nonce([9; 16]);

    fn stream(payload: &[u8], trailer: &str) -> Vec<u8> {
        [payload, get_marker(N).as_bytes(), trailer.as_bytes()].concat()
    }

    fn decode(s: &[u8], cuts: &[usize], status: u8) -> (Vec<u8>, Result<GetTrailer, TransferError>) {
        let mut d = GetDecoder::new(N);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
        points.sort_unstable();
        points.push(s.len());
        let (mut last, mut out) = (0, Vec::new());
        for p in points {
            d.handle_output(&s[last..p]);
            while let Some(GetEvent::Payload(b)) = d.poll_event() {
                out.extend(b);
            }
            last = p;
        }
        (out, d.finish(ExitStatus(status)))
    }

    const SUM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn payload_then_trailer() {
        let s = stream(b"\x1f\x8b binary \0 WHIMGET", &format!("{SUM} 0\n"));
        let (out, t) = decode(&s, &[3, 30], 0);
        assert_eq!(out, b"\x1f\x8b binary \0 WHIMGET");
        assert_eq!(t, Ok(GetTrailer { sha256: Some(SUM.into()) }));
    }

    #[test]
    fn remote_failure_is_told_in_its_words() {
        let s = stream(b"", "- 2\n/no/such: no such file or directory in the VM");
        let (out, t) = decode(&s, &[], 2);
        assert!(out.is_empty());
        assert_eq!(t, Err(TransferError::Remote("/no/such: no such file or directory in the VM".into())));
    }

    #[test]
    fn a_stream_without_trailer_is_an_error() {
        let (out, t) = decode(b"partial", &[], 0);
        assert_eq!(out, b"partial");
        assert!(matches!(t, Err(TransferError::Protocol(_))));
    }

    #[test]
    fn remote_paths_split_like_dirname_and_basename() {
        let ok = |p: &[u8], d: &[u8], b: &[u8]| assert_eq!(split_remote(p), Ok((d.to_vec(), b.to_vec())), "{p:?}");
        ok(b"/etc/hosts", b"/etc", b"hosts");
        ok(b"/etc/", b"/", b"etc");
        ok(b"//x", b"/", b"x");
        ok(b"rel", b".", b"rel");
        ok(b"a/b/c//", b"a/b", b"c");
        ok(b"/tmp/-rf my file $(touch pwned).txt", b"/tmp", b"-rf my file $(touch pwned).txt");
        for bad in [&b""[..], b"/", b"//", b".", b"..", b"/tmp/..", b"a/."] {
            assert!(split_remote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn receipts() {
        assert_eq!(parse_receipt(format!("whim-received {SUM}\n").as_bytes(), ExitStatus(0)), Ok(SUM.into()));
        assert_eq!(
            parse_receipt(b"/x: no such directory in the VM\n", ExitStatus(2)),
            Err(TransferError::Remote("/x: no such directory in the VM".into()))
        );
        assert!(parse_receipt(b"", ExitStatus(0)).is_err());
        assert!(check_sums(SUM, SUM).is_ok());
        assert!(matches!(check_sums(SUM, &SUM.replace('0', "1")), Err(TransferError::ChecksumMismatch { .. })));
    }

    #[test]
    fn scripts_carry_paths_only_as_arguments() {
        let evil = b"$(touch pwned)'\"";
        for v in [put_receive_argv(evil, "s", evil), put_commit_argv(evil, "s", evil), get_argv(evil, evil, evil, N)] {
            assert!(!String::from_utf8_lossy(&v[2]).contains("pwned"));
            assert!(v[4..].iter().any(|a| a == evil));
        }
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_result(payload in proptest::collection::vec(any::<u8>(), 0..2000), cuts in proptest::collection::vec(any::<usize>(), 0..8), code in 0u8..3) {
            let s = stream(&payload, &format!("{SUM} {code}\nmsg"));
            let whole = decode(&s, &[], code);
            prop_assert_eq!(&whole.0, &payload);
            prop_assert_eq!(decode(&s, &cuts, code), whole);
        }

        #[test]
        fn marker_prefixes_in_the_payload_are_kept(n in 1usize..40, cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let m = get_marker(N);
            let payload = [m.as_bytes()[..n.min(m.len() - 1)].to_vec(), b"tail".to_vec()].concat();
            let s = stream(&payload, &format!("{SUM} 0\n"));
            prop_assert_eq!(decode(&s, &cuts, 0).0, payload);
        }
    }
}
