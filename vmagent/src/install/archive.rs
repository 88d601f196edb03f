//! Safe tarball extraction. Every entry of an archive is checked before anything is written:
//! no absolute paths, no `..`, no device or fifo members, no hard links, and no symlink that
//! points outside the destination. Selected members are then staged into temp files beside their
//! final paths; [`Staged::commit`] renames them into place, so a crash never leaves a half-written
//! file, and nothing is touched until every archive has been read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use super::rules::TarRule;
use crate::fsutil::{self, TempFile};
use crate::host::{Host, HostError};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: cannot read the archive: {source}", archive.display())]
    Read { archive: PathBuf, source: io::Error },
    #[error("{}: member {member:?} is refused: {reason}; the archive was not installed", archive.display())]
    Unsafe {
        archive: PathBuf,
        member: String,
        reason: &'static str,
    },
    #[error("{}: member {member:?} is missing (the {key} rule needs it); is this the right archive for {key}?", archive.display())]
    Missing {
        archive: PathBuf,
        key: String,
        member: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A file written to a temp path, waiting to be renamed into place.
#[derive(Debug)]
pub struct StagedFile {
    tmp: TempFile,
    pub dest: PathBuf,
}

/// Files staged from one or more sources; dropped without commit, they are removed.
#[derive(Debug, Default)]
pub struct Staged {
    pub files: Vec<StagedFile>,
}

impl Staged {
    /// Rename every staged file into place, then fsync the directories that changed.
    pub fn commit(self) -> Result<Vec<PathBuf>, ArchiveError> {
        let mut done = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for f in self.files {
            f.tmp
                .persist_synced()
                .map_err(|source| ArchiveError::Write {
                    path: f.dest.clone(),
                    source,
                })?;
            if let Some(d) = f.dest.parent() {
                dirs.insert(d.to_path_buf());
            }
            done.push(f.dest);
        }
        for d in dirs {
            fsutil::fsync_dir(&d).map_err(|source| ArchiveError::Write { path: d, source })?;
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

/// Does a symlink at `member` (relative) pointing to `target` stay inside the archive root?
fn link_stays_inside(member: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = member.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn open(archive: &Path) -> Result<tar::Archive<GzDecoder<File>>, ArchiveError> {
    let f = File::open(archive).map_err(|source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    })?;
    Ok(tar::Archive::new(GzDecoder::new(f)))
}

/// What an entry is, once checked.
enum Kind {
    File(u32),
    Dir,
    Symlink(PathBuf),
}

/// Check every entry of `archive` (reading it whole) and stage the members `rule` selects below
/// `root`, owned root:root with the archive's permission bits (setuid/setgid/sticky dropped).
pub fn stage(
    archive: &Path,
    key: &str,
    rule: &TarRule,
    root: &Path,
    host: &dyn Host,
) -> Result<Staged, ArchiveError> {
    let read_err = |source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let refuse = |member: &Path, reason| ArchiveError::Unsafe {
        archive: archive.to_path_buf(),
        member: member.display().to_string(),
        reason,
    };
    let mut staged = Staged::default();
    let mut found = Vec::new();
    let mut ar = open(archive)?;
    for entry in ar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let member = clean(&raw).map_err(|r| refuse(&raw, r))?;
        let kind = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                Kind::File(entry.header().mode().map_err(read_err)? & 0o777)
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| refuse(&raw, "it is a symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&member, &target) {
                    return Err(refuse(
                        &raw,
                        "it is a symlink pointing outside the destination",
                    ));
                }
                Kind::Symlink(target)
            }
            EntryType::Link => return Err(refuse(&raw, "hard links are not supported")),
            EntryType::Char | EntryType::Block => return Err(refuse(&raw, "it is a device")),
            EntryType::Fifo => return Err(refuse(&raw, "it is a fifo")),
            EntryType::XGlobalHeader | EntryType::XHeader => continue,
            _ => return Err(refuse(&raw, "its entry type is not supported")),
        };
        if member.as_os_str().is_empty() {
            continue; // "./"
        }
        let dest = match rule.members {
            Some(list) => match list.iter().find(|(m, _)| Path::new(m) == member) {
                Some((m, d)) => {
                    if !matches!(kind, Kind::File(_)) {
                        return Err(refuse(&raw, "the rule needs a regular file here"));
                    }
                    found.push(*m);
                    fsutil::under_root(root, d)
                }
                None => {
                    // Not selected: checked above, then skipped.
                    io::copy(&mut entry, &mut io::sink()).map_err(read_err)?;
                    continue;
                }
            },
            None => fsutil::under_root(root, rule.dir).join(&member),
        };
        match kind {
            Kind::Dir => {
                std::fs::create_dir_all(&dest).map_err(|source| ArchiveError::Write {
                    path: dest.clone(),
                    source,
                })?;
            }
            Kind::File(mode) => {
                let f = stage_file(&mut entry, &dest, mode, root, host)?;
                staged.files.push(f);
            }
            Kind::Symlink(target) => {
                let parent = dest.parent().expect("member has a parent");
                let werr = |source| ArchiveError::Write {
                    path: dest.clone(),
                    source,
                };
                std::fs::create_dir_all(parent).map_err(werr)?;
                let tmp = TempFile::for_symlink(&dest, &target).map_err(werr)?;
                staged.files.push(StagedFile { tmp, dest });
            }
        }
    }
    if let Some(list) = rule.members
        && let Some((m, _)) = list.iter().find(|(m, _)| !found.contains(m))
    {
        return Err(ArchiveError::Missing {
            archive: archive.to_path_buf(),
            key: key.to_string(),
            member: m.to_string(),
        });
    }
    Ok(staged)
}

/// Copy `src` into a temp file beside `dest` with `mode`, owned root:root, fsynced.
pub fn stage_file(
    src: &mut dyn Read,
    dest: &Path,
    mode: u32,
    root: &Path,
    host: &dyn Host,
) -> Result<StagedFile, ArchiveError> {
    use std::os::unix::fs::PermissionsExt;
    let werr = |source| ArchiveError::Write {
        path: dest.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dest.parent().expect("destination has a parent")).map_err(werr)?;
    let mut tmp = TempFile::create_for(dest).map_err(werr)?;
    io::copy(src, tmp.file()).map_err(werr)?;
    tmp.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(werr)?;
    host.chown(root, tmp.fd(), tmp.path(), "root", "root")?;
    tmp.file().sync_all().map_err(werr)?;
    Ok(StagedFile {
        tmp,
        dest: dest.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_cleaned_or_refused() {
        assert_eq!(
            clean(Path::new("./bin/ctr")).unwrap(),
            PathBuf::from("bin/ctr")
        );
        assert!(clean(Path::new("/etc/passwd")).is_err());
        assert!(clean(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn symlink_targets_must_stay_inside() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("c")));
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("b"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("b"), Path::new("/usr/bin/x")));
    }
}
