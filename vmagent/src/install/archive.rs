//! Safe tarball extraction, in two passes.
//!
//! [`check`] reads an archive whole (to the end of its compressed stream, so a corrupt or
//! truncated archive fails here) and writes nothing. It refuses absolute paths, `..`, devices,
//! fifos, hard links and duplicate members; any member whose path goes through a symlink (a
//! member of the archive, or one already on disk below the destination); and any symlink whose
//! target, resolved against the archive's members and the disk, leaves the destination directory
//! or takes more than [`MAX_LINK_HOPS`] links. It also checks that every destination directory
//! is reached without a link on disk. Install checks every archive before it stages anything.
//!
//! [`stage`] then reads the archive again (refusing it if it no longer matches what was
//! checked) and writes each selected member to a temp file beside its final path, through
//! [`crate::safefs`]: directories are opened without following any link, so a link planted by a
//! service account is refused rather than written through. [`Staged::commit`] renames the temp
//! files into place, so a crash never leaves a half-written file at a final path.
//!
//! Staged files are owned root:root with the member's permission bits masked by
//! [`FILE_MODE_MASK`] (0755: no setuid, setgid or sticky bit, no write for group or others).
//! Member directories are created 0755 root:root; their modes in the archive are ignored.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use super::rules::TarRule;
use crate::fsutil::TempFile;
use crate::host::{Host, HostError};
use crate::safefs::{self, Dir, Kind as FsKind, Root, SafeFsError};

/// The most members one archive may have.
pub const MAX_MEMBERS: usize = 100_000;
/// The most symlinks followed while resolving one link target (the kernel's limit too).
pub const MAX_LINK_HOPS: usize = 40;
/// The permission bits a staged file keeps of its member's mode.
pub const FILE_MODE_MASK: u32 = 0o755;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: cannot read the archive: {source}; nothing was installed", archive.display())]
    Read { archive: PathBuf, source: io::Error },
    #[error("{}: member {member:?} is refused: {reason}; the archive was not installed", archive.display())]
    Unsafe {
        archive: PathBuf,
        member: String,
        reason: String,
    },
    #[error("{}: member {member:?} is missing (the {key} rule needs it); is this the right archive for {key}?", archive.display())]
    Missing {
        archive: PathBuf,
        key: String,
        member: String,
    },
    #[error("{}: more than {max} members; refusing the archive", archive.display())]
    TooMany { archive: PathBuf, max: usize },
    #[error(
        "{}: the archive changed between its check and its extraction (at member {member:?}); run `vmagent fetch` and `vmagent install` again",
        archive.display()
    )]
    Changed { archive: PathBuf, member: String },
    #[error(
        "{}: a directory is in the way of the file install puts there; remove it and run again. Nothing was installed",
        path.display()
    )]
    InTheWay { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A file (or link) written to a temp name, waiting to be renamed into place.
#[derive(Debug)]
pub struct StagedFile {
    tmp: TempFile,
    /// The directory it is renamed in (opened without following links).
    dir: Dir,
    /// The final system path (`/usr/local/bin/ctr`).
    pub dest: String,
    /// The final path below the root, for messages.
    full: PathBuf,
}

/// Files staged from one or more sources; dropped without commit, they are removed.
#[derive(Debug, Default)]
pub struct Staged {
    pub files: Vec<StagedFile>,
}

impl Staged {
    /// Rename every staged file into place (relative to its open directory), then fsync the
    /// directories that changed. Returns the system paths put in place.
    pub fn commit(self) -> Result<Vec<String>, ArchiveError> {
        let mut done = Vec::new();
        let mut dirs: BTreeMap<String, Dir> = BTreeMap::new();
        for f in self.files {
            f.tmp
                .persist_synced()
                .map_err(|source| ArchiveError::Write {
                    path: f.full.clone(),
                    source,
                })?;
            dirs.entry(f.dir.path().to_string()).or_insert(f.dir);
            done.push(f.dest);
        }
        for d in dirs.values() {
            d.sync()?;
        }
        Ok(done)
    }
}

/// A member path made relative and checked: `./bin/ctr` → `bin/ctr`.
fn clean(path: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains \"..\""),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    Ok(out)
}

fn open(archive: &Path) -> Result<tar::Archive<GzDecoder<File>>, ArchiveError> {
    let f = File::open(archive).map_err(|source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    })?;
    Ok(tar::Archive::new(GzDecoder::new(f)))
}

/// What an entry is, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Permission bits already masked.
    File {
        mode: u32,
        size: u64,
    },
    Dir,
    Symlink(PathBuf),
}

/// One member of a checked archive, in archive order.
#[derive(Debug)]
struct Planned {
    member: PathBuf,
    kind: Kind,
    /// Where it goes (a system path); `None`: not selected by the rule.
    dest: Option<String>,
}

/// An archive that passed [`check`], with where each selected member goes.
#[derive(Debug)]
pub struct Checked {
    archive: PathBuf,
    members: Vec<Planned>,
    /// The bytes of the regular files it stages.
    pub bytes: u64,
}

fn refuse(archive: &Path, member: &Path, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Unsafe {
        archive: archive.to_path_buf(),
        member: member.display().to_string(),
        reason: reason.into(),
    }
}

/// Classify one entry: `Ok(None)` for entries that carry no member (pax headers, `./`).
fn classify<R: Read>(
    archive: &Path,
    entry: &tar::Entry<'_, R>,
) -> Result<Option<(PathBuf, Kind)>, ArchiveError> {
    let read_err = |source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let raw = entry.path().map_err(read_err)?.into_owned();
    let member = clean(&raw).map_err(|r| refuse(archive, &raw, r))?;
    let kind = match entry.header().entry_type() {
        EntryType::Regular | EntryType::Continuous => Kind::File {
            mode: entry.header().mode().map_err(read_err)? & FILE_MODE_MASK,
            size: entry.size(),
        },
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(read_err)?
                .filter(|t| !t.as_os_str().is_empty())
                .ok_or_else(|| refuse(archive, &raw, "it is a symlink without a target"))?
                .into_owned();
            Kind::Symlink(target)
        }
        EntryType::Link => return Err(refuse(archive, &raw, "hard links are not supported")),
        EntryType::Char | EntryType::Block => return Err(refuse(archive, &raw, "it is a device")),
        EntryType::Fifo => return Err(refuse(archive, &raw, "it is a fifo")),
        EntryType::XGlobalHeader | EntryType::XHeader => return Ok(None),
        _ => return Err(refuse(archive, &raw, "its entry type is not supported")),
    };
    if member.as_os_str().is_empty() {
        return match kind {
            Kind::Dir => Ok(None), // "./"
            _ => Err(refuse(archive, &raw, "it has no name")),
        };
    }
    if member.to_str().is_none() {
        return Err(refuse(archive, &raw, "its name is not UTF-8"));
    }
    Ok(Some((member, kind)))
}

/// `<dir>/<member>` as a system path.
fn below(dir: &str, member: &Path) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        member
            .to_str()
            .expect("member names are checked to be UTF-8")
    )
}

/// Read `archive` whole and check it against `rule` and the disk below `fs`, writing nothing.
pub fn check(
    archive: &Path,
    key: &str,
    rule: &TarRule,
    fs: &Root,
) -> Result<Checked, ArchiveError> {
    let read_err = |source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let mut members: Vec<Planned> = Vec::new();
    let mut seen: BTreeMap<PathBuf, Kind> = BTreeMap::new();
    let mut ar = open(archive)?;
    for entry in ar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let Some((member, kind)) = classify(archive, &entry)? else {
            continue;
        };
        if members.len() >= MAX_MEMBERS {
            return Err(ArchiveError::TooMany {
                archive: archive.to_path_buf(),
                max: MAX_MEMBERS,
            });
        }
        if seen.contains_key(&member) {
            return Err(refuse(archive, &member, "it appears twice in the archive"));
        }
        // Read the data, so a truncated archive fails now.
        io::copy(&mut entry, &mut io::sink()).map_err(read_err)?;
        seen.insert(member.clone(), kind.clone());
        members.push(Planned {
            member,
            kind,
            dest: None,
        });
    }
    // The rest of the compressed stream, so its checksum is verified too.
    io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(read_err)?;

    match rule.members {
        Some(list) => {
            for (m, d) in list {
                let Some(p) = members.iter_mut().find(|p| p.member == Path::new(m)) else {
                    return Err(ArchiveError::Missing {
                        archive: archive.to_path_buf(),
                        key: key.to_string(),
                        member: m.to_string(),
                    });
                };
                if !matches!(p.kind, Kind::File { .. }) {
                    return Err(refuse(
                        archive,
                        &p.member,
                        "the rule needs a regular file here",
                    ));
                }
                check_dest(fs, d)?;
                p.dest = Some(d.to_string());
            }
        }
        None => {
            check_dir(fs, rule.dir)?;
            let ctx = Ctx {
                archive,
                fs,
                base: rule.dir,
                seen: &seen,
            };
            for p in &mut members {
                ctx.check_member(&p.member, &p.kind)?;
                p.dest = Some(below(rule.dir, &p.member));
            }
        }
    }
    let bytes = members
        .iter()
        .filter(|p| p.dest.is_some())
        .map(|p| match p.kind {
            Kind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    Ok(Checked {
        archive: archive.to_path_buf(),
        members,
        bytes,
    })
}

/// Is the directory `dir` (or, if missing, its closest existing ancestor) reached from the root
/// without a link?
pub fn check_dir(fs: &Root, dir: &str) -> Result<(), SafeFsError> {
    let mut cur = Path::new(dir);
    loop {
        let s = cur.to_str().ok_or_else(|| SafeFsError::BadPath {
            path: dir.to_string(),
        })?;
        if fs.open_dir(s)?.is_some() {
            return Ok(());
        }
        match cur.parent() {
            Some(p) => cur = p,
            None => return Ok(()),
        }
    }
}

/// Can a file be put at `dest` (a system path): its directory reached without a link, and no
/// directory in its place?
pub fn check_dest(fs: &Root, dest: &str) -> Result<(), ArchiveError> {
    let parent = Path::new(dest)
        .parent()
        .and_then(|p| p.to_str())
        .ok_or_else(|| SafeFsError::BadPath { path: dest.into() })?;
    check_dir(fs, parent)?;
    if fs.meta(dest)?.is_some_and(|m| m.kind == FsKind::Dir) {
        return Err(ArchiveError::InTheWay {
            path: fs.full(dest),
        });
    }
    Ok(())
}

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
struct Ctx<'a> {
    archive: &'a Path,
    fs: &'a Root,
    base: &'a str,
    seen: &'a BTreeMap<PathBuf, Kind>,
}

impl Ctx<'_> {
    fn refuse(&self, member: &Path, reason: impl Into<String>) -> ArchiveError {
        refuse(self.archive, member, reason)
    }

    /// No parent of `member` is a link or a file (in the archive or on disk); nothing on disk
    /// is in the way of it; a link stays inside `base`.
    fn check_member(&self, member: &Path, kind: &Kind) -> Result<(), ArchiveError> {
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

/// Stage the selected members of a checked archive, reading it again: every entry must be the
/// one that was checked.
pub fn stage(checked: &Checked, fs: &Root, host: &dyn Host) -> Result<Staged, ArchiveError> {
    let archive = checked.archive.as_path();
    let read_err = |source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let changed = |member: &Path| ArchiveError::Changed {
        archive: archive.to_path_buf(),
        member: member.display().to_string(),
    };
    let mut staged = Staged::default();
    let mut planned = checked.members.iter();
    let mut ar = open(archive)?;
    for entry in ar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let Some((member, kind)) = classify(archive, &entry)? else {
            continue;
        };
        let p = planned.next().ok_or_else(|| changed(&member))?;
        if p.member != member || p.kind != kind {
            return Err(changed(&member));
        }
        let Some(dest) = &p.dest else {
            continue;
        };
        match kind {
            Kind::Dir => {
                fs.create_dir_all(dest)?;
            }
            Kind::File { mode, size } => {
                let f = stage_file(&mut entry, dest, mode, fs, host)?;
                let written = crate::safefs::meta_of(f.tmp.fd())
                    .map_err(|source| ArchiveError::Write {
                        path: f.full.clone(),
                        source,
                    })?
                    .size;
                if written != size {
                    return Err(changed(&member));
                }
                staged.files.push(f);
            }
            Kind::Symlink(target) => staged.files.push(stage_link(dest, &target, fs)?),
        }
    }
    if let Some(p) = planned.next() {
        return Err(changed(&p.member));
    }
    Ok(staged)
}

/// Copy `src` into a temp file beside `dest` (a system path; its directory opened, or created,
/// without following any link), owned root:root with `mode & FILE_MODE_MASK`, fsynced.
pub fn stage_file(
    src: &mut dyn Read,
    dest: &str,
    mode: u32,
    fs: &Root,
    host: &dyn Host,
) -> Result<StagedFile, ArchiveError> {
    let (dir, name) = fs.parent_of(dest)?;
    let full = fs.full(dest);
    let werr = |source| ArchiveError::Write {
        path: full.clone(),
        source,
    };
    let mut tmp = dir.create_temp(name)?;
    host.chown(fs.path(), tmp.fd(), tmp.path(), "root", "root")?;
    safefs::set_mode(tmp.fd(), mode & FILE_MODE_MASK).map_err(werr)?;
    io::copy(src, tmp.file()).map_err(werr)?;
    tmp.file().sync_all().map_err(werr)?;
    Ok(StagedFile {
        tmp,
        dir,
        dest: dest.to_string(),
        full,
    })
}

/// A symlink to `target` at a temp name beside `dest`, its directory opened without following
/// any link.
fn stage_link(dest: &str, target: &Path, fs: &Root) -> Result<StagedFile, ArchiveError> {
    let (dir, name) = fs.parent_of(dest)?;
    let full = fs.full(dest);
    let werr = |source| ArchiveError::Write {
        path: full.clone(),
        source,
    };
    let owned = dir.fd().try_clone_to_owned().map_err(werr)?;
    let tmp = TempFile::symlink_in(&owned, dir.path(), name, target).map_err(werr)?;
    Ok(StagedFile {
        tmp,
        dir,
        dest: dest.to_string(),
        full,
    })
}

#[cfg(test)]
#[path = "archive/tests.rs"]
mod tests;
