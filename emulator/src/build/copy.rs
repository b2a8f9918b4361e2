//! COPY and ADD from the build context: sources are resolved (and globbed) on the host, then a
//! generated `/bin/sh` script copies them in a throwaway VM, where the image's own symlinks
//! (`/bin -> usr/bin`) resolve as they will in its VMs. The context is bound read-only at
//! `/dev/.whim-build-context` for that step only.

use std::io::Read;
use std::path::Path;

use super::BuildFailure;
use super::dockerfile::{Located, Step, exec_form};
use super::steps::{Builder, DEFAULT_PATH, check, failed, parse_mode};
use super::words::{word, words};
use crate::sandbox::{CONTEXT_DIR, ExecSpec, Isolation};

/// One source that matched: its path in the context (`""` for the root) and whether it is a dir.
type Source = (String, bool);

/// Runs one COPY (or ADD) instruction.
pub(crate) async fn copy(
    b: &mut Builder<'_>,
    at: &Located<Step>,
    add: bool,
    flags: &[(String, String)],
    args: &str,
) -> Result<(), BuildFailure> {
    let name = if add { "ADD" } else { "COPY" };
    if b.isolation() == Isolation::Unisolated {
        return Err(failed(at, format!("{name} needs the namespace sandbox; start the emulator without --unisolated")));
    }
    let vars = b.vars();
    let items = match exec_form(args) {
        Some(list) => list.iter().map(|s| word(s, &vars)).collect::<Result<Vec<_>, _>>(),
        None => words(args, &vars),
    }
    .map_err(|e| failed(at, e))?;
    let Some((dest_raw, sources)) = items.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(failed(at, format!("{name} needs at least one source and a destination")));
    };
    let mut matched = Vec::new();
    for src in sources {
        matched.extend(find_sources(b.context(), src, add).map_err(|e| failed(at, e))?);
    }
    let dir_dest = dest_raw.ends_with('/') || dest_raw == "." || dest_raw == "..";
    if matched.len() > 1 && !dir_dest {
        return Err(failed(at, "with more than one source the destination must be a directory ending in /"));
    }
    let owner = flag(flags, "chown").map(|v| word(v, &vars)).transpose().map_err(|e| failed(at, e))?;
    let mode = match flag(flags, "chmod") {
        Some(m) => Some(parse_mode(m).ok_or_else(|| failed(at, format!("--chmod={m} is not an octal mode")))?),
        None => None,
    };
    let plan = Plan { dest: b.resolve(dest_raw), dir_dest, owner: owner.filter(|o| !o.is_empty()), mode };
    let spec = ExecSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), plan.script(&matched)],
        env: vec![format!("PATH={DEFAULT_PATH}")],
        cwd: "/".into(),
        user: None,
    };
    let context = b.context().to_path_buf();
    let outcome = b.in_vm(at, &spec, Some(&context)).await?;
    check(at, &outcome, "failed: the copy exited with status")
}

fn flag<'f>(flags: &'f [(String, String)], name: &str) -> Option<&'f str> {
    flags.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The context paths `src` names (globs with `*` and `?` expanded); refuses URLs and (for
/// ADD) local archives, which ADD would unpack.
fn find_sources(context: &Path, src: &str, add: bool) -> Result<Vec<Source>, String> {
    if src.contains("://") || src.starts_with("git@") {
        return Err(format!(
            "{src} is a URL: the emulator's builder has no network access; download it with RUN or add the file to the code artifact"
        ));
    }
    let mut found = vec![String::new()];
    for part in clean(src) {
        found = found.into_iter().flat_map(|dir| matches(context, &dir, &part)).collect();
    }
    if found.is_empty() {
        return Err(format!("{src:?} was not found in the build context"));
    }
    found.sort();
    let mut out = Vec::new();
    for rel in found {
        let path = context.join(&rel);
        let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        if add && !is_dir && is_archive(&path) {
            return Err(format!(
                "ADD of the local archive {rel:?} is not supported by the emulator's builder (it would be unpacked); COPY it and unpack it with RUN tar"
            ));
        }
        out.push((rel, is_dir));
    }
    Ok(out)
}

/// Path components of `src` within the context (`..` stops at its root, as in docker).
fn clean(src: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p.to_owned()),
        }
    }
    parts
}

/// Entries of context dir `dir` that `pattern` names.
fn matches(context: &Path, dir: &str, pattern: &str) -> Vec<String> {
    let join = |name: &str| if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
    if !pattern.contains(['*', '?']) {
        let rel = join(pattern);
        return if context.join(&rel).symlink_metadata().is_ok() { vec![rel] } else { vec![] };
    }
    let Ok(entries) = std::fs::read_dir(context.join(dir)) else { return vec![] };
    let names = entries.flatten().filter_map(|e| e.file_name().into_string().ok());
    names.filter(|n| glob(pattern.as_bytes(), n.as_bytes())).map(|n| join(&n)).collect()
}

/// `*` (any run) and `?` (any one byte) matching of one path component.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// tar, or a compressed file docker's ADD would treat as a tar archive.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    let head = &head[..n];
    let magic: [&[u8]; 4] = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\0", b"\x28\xb5\x2f\xfd"];
    magic.iter().any(|m| head.starts_with(m)) || head.get(257..262) == Some(b"ustar")
}

/// Where and how the sources land.
struct Plan {
    dest: String,
    dir_dest: bool,
    owner: Option<String>,
    mode: Option<u32>,
}

impl Plan {
    /// The shell script that copies `sources` (paths relative to the context mount).
    fn script(&self, sources: &[Source]) -> String {
        let mut s = format!("set -e\nC=/dev/{CONTEXT_DIR}\n");
        for (rel, is_dir) in sources {
            let src = if rel.is_empty() { "\"$C\"".to_owned() } else { format!("\"$C\"/{}", quote(rel)) };
            match is_dir {
                true => self.copy_dir(&mut s, &src),
                false => self.copy_file(&mut s, &src, rel.rsplit('/').next().unwrap_or(rel)),
            }
        }
        s
    }

    fn copy_dir(&self, s: &mut String, src: &str) {
        let dest = quote(&self.dest);
        s.push_str(&format!("if [ ! -e {dest} ]; then mkdir -p -- {dest}; t={dest}; {}fi\n", self.fix("$t")));
        // The entries, not the directory itself: its mode and owner stay the destination's
        // (a new destination is 0755, as docker makes it); --chown/--chmod apply to each copy.
        s.push_str(&format!(
            "for e in {src}/* {src}/.[!.]* {src}/..?*; do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; cp -a --remove-destination -- \"$e\" {dest}/; t={dest}/\"${{e##*/}}\"; {}done\n",
            self.fix_tree("$t")
        ));
    }

    fn copy_file(&self, s: &mut String, src: &str, base: &str) {
        let (dest, base) = (quote(&self.dest), quote(base));
        match self.dir_dest {
            true => s.push_str(&format!("mkdir -p -- {dest}; t={dest}/{base}\n")),
            false => {
                s.push_str(&format!("if [ -d {dest} ]; then t={dest}/{base}; else mkdir -p -- \"$(dirname -- {dest})\"; t={dest}; fi\n"))
            }
        }
        s.push_str(&format!("cp -a --remove-destination -- {src} \"$t\"\n{}\n", self.fix("$t")));
    }

    /// chown/chmod of one path (never through a symlink).
    fn fix(&self, var: &str) -> String {
        let mut out = String::new();
        if let Some(owner) = &self.owner {
            out.push_str(&format!("chown -h -- {} \"{var}\"; ", quote(owner)));
        }
        if let Some(mode) = self.mode {
            out.push_str(&format!("[ -L \"{var}\" ] || chmod -- {mode:o} \"{var}\"; "));
        }
        out
    }

    /// chown/chmod of a copied tree.
    fn fix_tree(&self, var: &str) -> String {
        let mut out = String::new();
        if let Some(owner) = &self.owner {
            out.push_str(&format!("chown -R -h -- {} \"{var}\"; ", quote(owner)));
        }
        if let Some(mode) = self.mode {
            out.push_str(&format!("[ -L \"{var}\" ] || chmod -R -- {mode:o} \"{var}\"; "));
        }
        out
    }
}

/// `s` in single quotes for /bin/sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_one_component() {
        for (p, n, want) in
            [("*.txt", "a.txt", true), ("*.txt", "a.txt.bak", false), ("a?c", "abc", true), ("*", "", true), ("a*b*c", "aXbYc", true)]
        {
            assert_eq!(glob(p.as_bytes(), n.as_bytes()), want, "{p} {n}");
        }
    }

    #[test]
    fn cleans_paths_within_the_context() {
        assert_eq!(clean("./a/../../b/"), vec!["b".to_string()]);
        assert!(clean(".").is_empty());
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
