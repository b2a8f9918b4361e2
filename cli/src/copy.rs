//! `whim put` / `whim get`: copies through the library's checksummed tar.gz transfer.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use whim_tokio::Limits;

use crate::cli::{CopyLimits, Global, fail};
use crate::signals::Terminators;
use crate::{EXIT_INTERRUPTED, aws};

/// Parses `1024`, `64K`, `300M`, `2G`, `1T` (powers of 1024; `KiB`/`MB` spellings too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("`{s}` is not a size: write bytes, or a number with K, M, G or T (for example 300M)")),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size: write bytes, or a number with K, M, G or T (for example 300M)"))?;
    n.checked_mul(1 << shift).filter(|&v| v > 0).ok_or_else(|| format!("`{s}` is not a usable size"))
}

fn limits(l: &CopyLimits) -> Result<Limits, String> {
    let bytes = parse_size(&l.max_bytes).map_err(|e| format!("--max-bytes: {e}"))?;
    Ok(Limits { compressed_bytes: bytes, uncompressed_bytes: bytes, entries: l.max_files })
}

/// `whim put ID LOCAL REMOTE_DIR`.
pub async fn put(g: &Global, id: String, local: PathBuf, remote_dir: std::ffi::OsString, l: CopyLimits) -> u8 {
    copy(g, &id, &l, async |sb, limits| {
        let remote = sb.put(&local, remote_dir.as_bytes(), limits).await?;
        Ok(format!("copied {} to {id}:{}", local.display(), String::from_utf8_lossy(&remote)))
    })
    .await
}

/// `whim get ID REMOTE LOCAL_DIR`.
pub async fn get(g: &Global, id: String, remote: std::ffi::OsString, local_dir: PathBuf, l: CopyLimits) -> u8 {
    copy(g, &id, &l, async |sb, limits| {
        let path = sb.get(remote.as_bytes(), &local_dir, limits).await?;
        Ok(format!("copied {id}:{} to {}", remote.to_string_lossy(), path.display()))
    })
    .await
}

/// Attaches to VM `id` and runs one copy: 0 with a line on stderr, 125 with the reason,
/// 130/143/129 when a signal interrupted it (a partial `get` is removed on the way out).
async fn copy(
    g: &Global,
    id: &str,
    l: &CopyLimits,
    job: impl AsyncFnOnce(&mut whim_tokio::Sandbox, Limits) -> Result<String, whim_tokio::Error>,
) -> u8 {
    let limits = match limits(l) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let mut sigs = match Terminators::install() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot install signal handlers: {e}")),
    };
    let mgr = match aws::manager(g).await {
        Ok(m) => m,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let mut sb = match mgr.attach(id).await {
        Ok(sb) => sb,
        Err(e) => return fail(&e),
    };
    let r = tokio::select! {
        r = job(&mut sb, limits) => r,
        code = sigs.recv() => {
            eprintln!("whim: interrupted; nothing was copied");
            return if code == 0 { EXIT_INTERRUPTED } else { code };
        }
    };
    sb.close().await;
    match r {
        Ok(done) => {
            eprintln!("whim: {done}");
            0
        }
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("300M"), Ok(300 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1tb"), Ok(1 << 40));
        for bad in ["", "0", "x", "12Q", "-1", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
