//! Each member's place, checked against the archive's other members and the disk below the
//! destination: no parent that is a link or a file, nothing on disk in the way, and every
//! symlink's target resolved (through members and links on disk, at most [`MAX_LINK_HOPS`]
//! hops) to a place inside the destination directory.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::error::ArchiveError;
use super::member::{Kind, below, refuse};

/// The most symlinks followed while resolving one link target (the kernel's limit too).
pub const MAX_LINK_HOPS: usize = 40;
use crate::safefs::{Kind as FsKind, Root, SafeFsError};

/// One step of a link target being resolved.
enum Step {
    Up,
    Name(OsString),
}

fn steps(target: &Path) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => out.push(Step::Up),
            Component::Normal(n) => out.push(Step::Name(n.to_os_string())),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// What the checks of an archive extracted whole below `base` need.
pub(super) struct Ctx<'a> {
    pub(super) archive: &'a Path,
    pub(super) fs: &'a Root,
    pub(super) base: &'a str,
    pub(super) seen: &'a BTreeMap<PathBuf, Kind>,
}

impl Ctx<'_> {
    fn refuse(&self, member: &Path, reason: impl Into<String>) -> ArchiveError {
        refuse(self.archive, member, reason)
    }

    /// No parent of `member` is a link or a file (in the archive or on disk); nothing on disk
    /// is in the way of it; a link stays inside `base`.
    pub(super) fn check_member(&self, member: &Path, kind: &Kind) -> Result<(), ArchiveError> {
        let comps: Vec<&OsStr> = member.iter().collect();
        for i in 1..comps.len() {
            let prefix: PathBuf = comps[..i].iter().collect();
            match self.seen.get(&prefix) {
                Some(Kind::Symlink(_)) => {
                    return Err(self.refuse(
                        member,
                        format!(
                            "its path goes through the symlink member {:?}",
                            prefix.display().to_string()
                        ),
                    ));
                }
                Some(Kind::File { .. }) => {
                    return Err(self.refuse(
                        member,
                        format!(
                            "its parent {:?} is a file in the archive",
                            prefix.display().to_string()
                        ),
                    ));
                }
                Some(Kind::Dir) | None => {}
            }
            let on_disk = below(self.base, &prefix);
            match self.fs.meta(&on_disk)? {
                None => {}
                Some(m) if m.kind == FsKind::Dir => {}
                Some(m) if m.kind == FsKind::Symlink => {
                    return Err(self.refuse(
                        member,
                        format!(
                            "its path goes through the symlink {} on disk",
                            self.fs.full(&on_disk).display()
                        ),
                    ));
                }
                Some(_) => {
                    return Err(self.refuse(
                        member,
                        format!(
                            "{} on disk is not a directory",
                            self.fs.full(&on_disk).display()
                        ),
                    ));
                }
            }
        }
        let at = below(self.base, member);
        let existing = self.fs.meta(&at)?.map(|m| m.kind);
        match kind {
            Kind::Dir if existing == Some(FsKind::Symlink) => Err(self.refuse(
                member,
                format!(
                    "{} on disk is a symlink, not a directory",
                    self.fs.full(&at).display()
                ),
            )),
            Kind::Dir if existing.is_some_and(|k| k != FsKind::Dir) => Err(self.refuse(
                member,
                format!(
                    "{} on disk is in the way (not a directory)",
                    self.fs.full(&at).display()
                ),
            )),
            Kind::File { .. } | Kind::Symlink(_) if existing == Some(FsKind::Dir) => Err(self
                .refuse(
                    member,
                    format!(
                        "the directory {} on disk is in the way",
                        self.fs.full(&at).display()
                    ),
                )),
            Kind::Symlink(target) => self.resolve(member, target),
            _ => Ok(()),
        }
    }

    /// Resolve the target of the link `member`, following links among the archive's members
    /// (as they will be) and on disk below `base` (where the archive has no member), and refuse
    /// it if it leaves `base` or needs more than [`MAX_LINK_HOPS`] links.
    fn resolve(&self, member: &Path, target: &Path) -> Result<(), ArchiveError> {
        let outside = || self.refuse(member, "it is a symlink pointing outside the destination");
        let mut cur: Vec<OsString> = member
            .parent()
            .map(|p| p.iter().map(OsStr::to_os_string).collect())
            .unwrap_or_default();
        // A stack: the next step is last.
        let mut todo = steps(target).ok_or_else(outside)?;
        todo.reverse();
        let mut hops = 0;
        while let Some(step) = todo.pop() {
            let name = match step {
                Step::Up => {
                    cur.pop().ok_or_else(outside)?;
                    continue;
                }
                Step::Name(n) => n,
            };
            let candidate: PathBuf = cur.iter().chain(std::iter::once(&name)).collect();
            let link = match self.seen.get(&candidate) {
                Some(Kind::Symlink(t)) => Some(t.clone()),
                Some(_) => None,
                None => self.disk_link(&candidate)?,
            };
            match link {
                Some(t) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(self.refuse(
                            member,
                            format!(
                                "it is a symlink whose target goes through more than {MAX_LINK_HOPS} links"
                            ),
                        ));
                    }
                    let mut more = steps(&t).ok_or_else(outside)?;
                    more.reverse();
                    todo.extend(more);
                }
                None => cur.push(name),
            }
        }
        Ok(())
    }

    /// The target of `<base>/<rel>` if it is a symlink on disk.
    fn disk_link(&self, rel: &Path) -> Result<Option<PathBuf>, ArchiveError> {
        if rel.to_str().is_none() {
            return Ok(None); // not a name any member has; nothing on disk we could check
        }
        let at = below(self.base, rel);
        if self.fs.meta(&at)?.map(|m| m.kind) != Some(FsKind::Symlink) {
            return Ok(None);
        }
        let (dir, name) = self.fs.parent_of(&at)?;
        let t = rustix::fs::readlinkat(dir.fd(), name, Vec::new()).map_err(|e| {
            ArchiveError::Fs(SafeFsError::Io {
                path: self.fs.full(&at).display().to_string(),
                source: e.into(),
            })
        })?;
        Ok(Some(PathBuf::from(OsString::from_vec(t.into_bytes()))))
    }
}
