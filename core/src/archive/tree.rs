//! The tree the archive builds, as far as the guard needs it: what each path is, and where
//! every symlink resolves. Paths arrive normalised (see [`normalise`]).

use std::collections::BTreeMap;

use super::{ArchiveError, EntryKind, show};

/// Longest path accepted, in bytes (Linux's `PATH_MAX`).
pub(super) const PATH_MAX: usize = 4096;
/// Longest symlink target accepted (what `symlink(2)` can create).
pub(super) const TARGET_MAX: usize = PATH_MAX - 1;
/// Symlinks followed in one resolution, as the kernel allows.
const HOPS_MAX: u32 = 40;
/// Components walked in one resolution; bounds the final re-check's work.
const STEPS_MAX: usize = 4096;
/// Parent directories that appear only inside other entries' paths.
pub(super) const IMPLICIT_DIRS_MAX: usize = 65_536;

/// Turns a raw entry name into the relative, '/'-separated form with no empty, "." or ".."
/// component. An empty result means the archive root itself ("./").
pub(super) fn normalise(raw: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    if raw.first() == Some(&b'/') {
        return Err(ArchiveError::AbsolutePath { path: show(raw) });
    }
    if raw.contains(&0) {
        return Err(ArchiveError::BadHeader { path: show(raw), reason: "the path contains a NUL byte" });
    }
    let mut out = Vec::with_capacity(raw.len());
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(ArchiveError::ParentComponent { path: show(raw) }),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    if out.len() > PATH_MAX {
        return Err(ArchiveError::BadHeader { path: show(raw), reason: "the path is longer than 4096 bytes" });
    }
    Ok(out)
}

/// Checks a symlink target before it enters the tree.
pub(super) fn check_target(path: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
    let bad = |reason| Err(ArchiveError::BadHeader { path: show(path), reason });
    if target.is_empty() {
        return bad("the symlink has an empty target");
    }
    if target.contains(&0) {
        return bad("the symlink target contains a NUL byte");
    }
    if target.len() > TARGET_MAX {
        return bad("the symlink target is longer than 4095 bytes");
    }
    if target.first() == Some(&b'/') {
        return Err(ArchiveError::SymlinkEscape { path: show(path), target: show(target) });
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A directory only named as a parent of other entries (so far).
    ImplicitDir,
    Dir,
    File,
    Symlink(Vec<u8>),
}

#[derive(Debug)]
struct Node {
    parent: usize,
    name: Box<[u8]>,
    kind: Kind,
    children: BTreeMap<Box<[u8]>, usize>,
}

/// Every path the archive created so far. Node 0 is the root.
#[derive(Debug)]
pub(super) struct Tree {
    nodes: Vec<Node>,
    implicit: usize,
}

/// Why a symlink did not resolve inside the root.
enum Unresolved {
    Escape,
    Loop,
}

impl Tree {
    pub(super) fn new() -> Self {
        Self { nodes: vec![Node { parent: 0, name: Box::default(), kind: Kind::Dir, children: BTreeMap::new() }], implicit: 0 }
    }

    /// Adds a normalised, non-empty path; rejects duplicates and anything under an earlier
    /// symlink or file, and symlinks that do not resolve inside the root now.
    pub(super) fn insert(&mut self, path: &[u8], kind: &EntryKind) -> Result<(), ArchiveError> {
        let (dir, name) = memchr::memrchr(b'/', path).map_or((&[][..], path), |i| (&path[..i], &path[i + 1..]));
        let mut cur = 0;
        if !dir.is_empty() {
            for (end, part) in component_ends(dir) {
                cur = self.descend(cur, part, path, &dir[..end])?;
            }
        }
        let kind = match kind {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink { target } => Kind::Symlink(target.clone()),
        };
        match self.nodes[cur].children.get(name).copied() {
            None => {
                let id = self.add(cur, name, kind);
                self.check_symlink(id)
            }
            Some(id) if self.nodes[id].kind == Kind::ImplicitDir => match kind {
                Kind::Dir => {
                    self.nodes[id].kind = Kind::Dir;
                    self.implicit -= 1;
                    Ok(())
                }
                _ => Err(ArchiveError::ReplacesDirectory { path: show(path) }),
            },
            Some(_) => Err(ArchiveError::Duplicate { path: show(path) }),
        }
    }

    /// Steps from `cur` into its child `part` (a parent component of `path`), creating an
    /// implicit directory when absent.
    fn descend(&mut self, cur: usize, part: &[u8], path: &[u8], parent: &[u8]) -> Result<usize, ArchiveError> {
        let Some(id) = self.nodes[cur].children.get(part).copied() else {
            if self.implicit >= IMPLICIT_DIRS_MAX {
                return Err(ArchiveError::BadHeader { path: show(path), reason: "more than 65536 directories have no entry of their own" });
            }
            self.implicit += 1;
            return Ok(self.add(cur, part, Kind::ImplicitDir));
        };
        match self.nodes[id].kind {
            Kind::Symlink(_) => Err(ArchiveError::ThroughSymlink { path: show(path), symlink: show(parent) }),
            Kind::File => Err(ArchiveError::UnderNonDirectory { path: show(path), parent: show(parent) }),
            Kind::Dir | Kind::ImplicitDir => Ok(id),
        }
    }

    fn add(&mut self, parent: usize, name: &[u8], kind: Kind) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node { parent, name: name.into(), kind, children: BTreeMap::new() });
        self.nodes[parent].children.insert(name.into(), id);
        id
    }

    /// Re-resolves every symlink against the final tree: a later entry can change where an
    /// earlier symlink leads.
    pub(super) fn recheck(&self) -> Result<(), ArchiveError> {
        (0..self.nodes.len()).try_for_each(|id| self.check_symlink(id))
    }

    fn check_symlink(&self, id: usize) -> Result<(), ArchiveError> {
        let Kind::Symlink(target) = &self.nodes[id].kind else { return Ok(()) };
        self.resolve(id, target).map_err(|why| {
            let (path, target) = (show(&self.path_of(id)), show(target));
            match why {
                Unresolved::Escape => ArchiveError::SymlinkEscape { path, target },
                Unresolved::Loop => ArchiveError::SymlinkLoop { path, target },
            }
        })
    }

    /// Follows `target` from the link's directory component by component, through the
    /// archive's symlinks. Components the archive has not created are taken lexically.
    fn resolve(&self, link: usize, target: &[u8]) -> Result<(), Unresolved> {
        // Where we are: the chain below the root, `None` for a directory not in the archive.
        let mut stack: Vec<Option<usize>> = self.ancestors(self.nodes[link].parent).into_iter().map(Some).collect();
        let mut pending: Vec<&[u8]> = target.split(|&b| b == b'/').rev().collect();
        let (mut hops, mut steps) = (0, 0);
        while let Some(part) = pending.pop() {
            steps += 1;
            if steps > STEPS_MAX {
                return Err(Unresolved::Loop);
            }
            match part {
                b"" | b"." => {}
                b".." => {
                    stack.pop().ok_or(Unresolved::Escape)?;
                }
                _ => {
                    let here = stack.last().copied().unwrap_or(Some(0));
                    let child = here.and_then(|h| self.nodes[h].children.get(part).copied());
                    match child.map(|c| (c, &self.nodes[c].kind)) {
                        Some((_, Kind::Symlink(next))) => {
                            hops += 1;
                            if hops > HOPS_MAX {
                                return Err(Unresolved::Loop);
                            }
                            pending.extend(next.split(|&b| b == b'/').rev());
                        }
                        other => stack.push(other.map(|(c, _)| c)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The nodes from just below the root down to `id` (empty for the root).
    fn ancestors(&self, mut id: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        while id != 0 {
            chain.push(id);
            id = self.nodes[id].parent;
        }
        chain.reverse();
        chain
    }

    fn path_of(&self, id: usize) -> Vec<u8> {
        let names: Vec<&[u8]> = self.ancestors(id).into_iter().map(|n| &*self.nodes[n].name).collect();
        names.join(&b'/')
    }
}

/// Each component of a normalised path with the offset just past it.
fn component_ends(path: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    path.split(|&b| b == b'/').map(move |part| {
        start += part.len() + 1;
        (start - 1, part)
    })
}
