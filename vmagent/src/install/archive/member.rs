//! Reading an archive's entries: opening the gzip stream ([`open`]), each entry's path made
//! relative and checked ([`clean`]), what it is ([`Kind`]: file, directory or symlink; anything
//! else refused by [`classify`]), the permission bits a staged file keeps ([`FILE_MODE_MASK`]),
//! and the helpers that name a member in an error or as a system path.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

use super::error::ArchiveError;

/// The permission bits a staged file keeps of its member's mode.
pub const FILE_MODE_MASK: u32 = 0o755;

pub(super) fn open(archive: &Path) -> Result<tar::Archive<GzDecoder<File>>, ArchiveError> {
    let f = File::open(archive).map_err(|source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    })?;
    Ok(tar::Archive::new(GzDecoder::new(f)))
}

/// A member path made relative and checked: `./bin/ctr` → `bin/ctr`.
pub(super) fn clean(path: &Path) -> Result<PathBuf, &'static str> {
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

/// What an entry is, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// Permission bits already masked.
    File {
        mode: u32,
        size: u64,
    },
    Dir,
    Symlink(PathBuf),
}

pub(super) fn refuse(archive: &Path, member: &Path, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Unsafe {
        archive: archive.to_path_buf(),
        member: member.display().to_string(),
        reason: reason.into(),
    }
}

/// Classify one entry: `Ok(None)` for entries that carry no member (pax headers, `./`).
pub(super) fn classify<R: Read>(
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
pub(super) fn below(dir: &str, member: &Path) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        member
            .to_str()
            .expect("member names are checked to be UTF-8")
    )
}
