//! Host paths a VM must not see when its root is an overlay over the host's `/`.

use std::path::{Path, PathBuf};

/// Host paths hidden from every VM by default: `$HOME`, `/root`, `$SUDO_USER`'s home, every
/// `~/.aws` and `~/.ssh` that exists, `/etc/ssh`, and the emulator's working directory plus its
/// git top-level (unless that is `/`). Only existing paths, canonicalized, without duplicates.
pub fn default_mask_paths() -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = vec!["/root".into()];
    homes.extend(std::env::var_os("HOME").map(PathBuf::from));
    homes.extend(sudo_user_home());
    homes.extend(std::fs::read_dir("/home").into_iter().flatten().flatten().map(|e| e.path()));
    let mut out: Vec<PathBuf> = homes.iter().filter(|h| h.as_os_str() != "/").cloned().collect();
    for home in &homes {
        out.extend([home.join(".aws"), home.join(".ssh")]);
    }
    out.push("/etc/ssh".into());
    if let Ok(cwd) = std::env::current_dir() {
        out.extend(git_toplevel(&cwd));
        out.push(cwd);
    }
    normalize(out)
}

/// [`default_mask_paths`] (computed once per process) plus `extra`, normalized.
pub(crate) fn with_defaults(extra: &[PathBuf]) -> Vec<PathBuf> {
    static DEFAULTS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    let mut all = DEFAULTS.get_or_init(default_mask_paths).clone();
    all.extend(extra.iter().cloned());
    normalize(all)
}

fn sudo_user_home() -> Option<PathBuf> {
    let name = std::env::var("SUDO_USER").ok()?;
    nix::unistd::User::from_name(&name).ok().flatten().map(|u| u.dir)
}

/// The nearest ancestor of `dir` (itself included) that holds `.git`.
fn git_toplevel(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

fn normalize(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = paths.into_iter().filter_map(|p| std::fs::canonicalize(p).ok()).filter(|p| p != Path::new("/")).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_never_mask_the_whole_root() {
        assert!(default_mask_paths().iter().all(|p| p != Path::new("/") && p.is_absolute()));
    }

    #[test]
    fn finds_the_git_toplevel_of_a_nested_dir() {
        let top = std::env::temp_dir().join(format!("whim-masks-{}", std::process::id()));
        let nested = top.join("a/b");
        std::fs::create_dir_all(&nested).and_then(|()| std::fs::create_dir_all(top.join(".git"))).expect("tmp");
        assert_eq!(git_toplevel(&nested), Some(top.clone()));
        std::fs::remove_dir_all(&top).expect("cleanup");
    }
}
