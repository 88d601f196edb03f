//! The second pass: [`stage`] reads a checked archive again, refusing any entry that is not
//! the one checked, and writes each selected member to a temp file (or link) beside its final
//! path, owned root:root with its mode masked by [`FILE_MODE_MASK`], through directories opened
//! without following a link. [`Staged::commit`] renames them into place; dropped, they are
//! removed.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::check::Checked;
use super::error::ArchiveError;
use super::member::{FILE_MODE_MASK, Kind, classify, open};
use crate::fsutil::TempFile;
use crate::host::Host;
use crate::safefs::{self, Dir, Root};

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
