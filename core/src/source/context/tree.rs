//! Whole-tree checks and rewrites of the normaliser: structure, wrapper, re-rooting,
//! symlink containment, implied parents.

use std::collections::VecDeque;

use super::{ContextError, InputKind, Stored, Tree};

/// Links followed while resolving one symlink, as the kernel allows.
const MAX_HOPS: usize = 40;
/// Components walked while resolving one symlink.
const MAX_COMPONENTS: usize = 4096;

/// The proper ancestors of `path`, nearest last (`a/b/c` gives `a`, `a/b`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Refuses entries below a file or a symlink (which would be written through it).
pub(super) fn check_parents(tree: &Tree) -> Result<(), ContextError> {
    for path in tree.keys() {
        for parent in ancestors(path) {
            if tree.get(parent).is_some_and(|s| !matches!(s.kind, InputKind::Dir)) {
                return Err(ContextError::UnderNonDirectory { path: path.clone(), parent: parent.to_owned() });
            }
        }
    }
    Ok(())
}

/// Drops one top-level directory when every entry lies under it (and something does).
pub(super) fn strip_wrapper(tree: Tree) -> Tree {
    let Some(first) = tree.keys().next().map(|k| top(k).to_owned()) else { return tree };
    let wraps = tree.iter().all(|(k, s)| top(k) == first && (k.len() > first.len() || matches!(s.kind, InputKind::Dir)));
    if !wraps || !tree.keys().any(|k| k.len() > first.len()) {
        return tree;
    }
    strip_prefix(tree, &first)
}

fn top(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Keeps the entries strictly under `prefix`, re-rooted there.
fn strip_prefix(tree: Tree, prefix: &str) -> Tree {
    let cut = prefix.len() + 1;
    tree.into_iter()
        .filter(|(k, _)| k.len() > cut && k.starts_with(prefix) && k.as_bytes()[prefix.len()] == b'/')
        .map(|(k, s)| (k[cut..].to_owned(), s))
        .collect()
}

/// Re-roots the tree at `subdir`, which must be a directory of it.
pub(super) fn reroot(tree: Tree, subdir: &str) -> Result<Tree, ContextError> {
    let not_dir = || ContextError::SubdirNotDirectory { subdir: subdir.to_owned() };
    for path in ancestors(subdir).chain([subdir]) {
        if tree.get(path).is_some_and(|s| !matches!(s.kind, InputKind::Dir)) {
            return Err(not_dir());
        }
    }
    let listed = tree.contains_key(subdir);
    let rerooted = strip_prefix(tree, subdir);
    if rerooted.is_empty() && !listed {
        return Err(ContextError::SubdirNotFound { subdir: subdir.to_owned() });
    }
    Ok(rerooted)
}

/// Refuses symlinks whose target, followed through the tree's own symlinks, leaves it.
pub(super) fn check_symlinks(tree: &Tree) -> Result<(), ContextError> {
    for (path, stored) in tree {
        if let InputKind::Symlink { target } = &stored.kind {
            resolve(tree, path, target)?;
        }
    }
    Ok(())
}

/// Walks `target` from the link's directory; a component that is a link in the tree is
/// replaced by that link's target. Missing components count as directories (conservative:
/// `..` after them still climbs).
fn resolve(tree: &Tree, link: &str, target: &str) -> Result<(), ContextError> {
    let escape = || ContextError::SymlinkEscape { path: link.to_owned(), target: target.to_owned() };
    let looped = || ContextError::SymlinkLoop { path: link.to_owned(), target: target.to_owned() };
    let mut at: Vec<&str> = link.split('/').collect();
    at.pop();
    let mut pending: VecDeque<&str> = split_target(target).ok_or_else(escape)?;
    let (mut hops, mut walked) = (0, 0);
    while let Some(component) = pending.pop_front() {
        walked += 1;
        if walked > MAX_COMPONENTS {
            return Err(looped());
        }
        match component {
            "" | "." => {}
            ".." => {
                at.pop().ok_or_else(escape)?;
            }
            name => {
                at.push(name);
                if let Some(InputKind::Symlink { target: next }) = tree.get(&at.join("/")).map(|s| &s.kind) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(looped());
                    }
                    at.pop();
                    let next = split_target(next).ok_or_else(escape)?;
                    next.into_iter().rev().for_each(|c| pending.push_front(c));
                }
            }
        }
    }
    Ok(())
}

/// A relative target's components; `None` for an absolute one.
fn split_target(target: &str) -> Option<VecDeque<&str>> {
    (!target.starts_with('/')).then(|| target.split('/').collect())
}

/// The tree with every missing parent directory added (mode 0o755).
pub(super) fn with_parents(mut tree: Tree) -> Tree {
    let missing: Vec<String> =
        tree.keys().flat_map(|k| ancestors(k).map(str::to_owned).collect::<Vec<_>>()).filter(|p| !tree.contains_key(p)).collect();
    for parent in missing {
        tree.entry(parent.clone()).or_insert(Stored { source: parent, kind: InputKind::Dir });
    }
    tree
}
