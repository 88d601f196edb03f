//! The first pass: [`check`] reads an archive whole against its rule and the disk, writing
//! nothing, and hands back the [`Checked`] plan of where each selected member goes;
//! [`check_dir`] and [`check_dest`] check that a destination is reached without a link.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::error::ArchiveError;
use super::member::{Kind, below, classify, open, refuse};
use super::resolve::Ctx;
use crate::install::rules::TarRule;
use crate::safefs::{Kind as FsKind, Root, SafeFsError};

/// The most members one archive may have.
pub const MAX_MEMBERS: usize = 100_000;

/// One member of a checked archive, in archive order.
#[derive(Debug)]
pub(super) struct Planned {
    pub(super) member: PathBuf,
    pub(super) kind: Kind,
    /// Where it goes (a system path); `None`: not selected by the rule.
    pub(super) dest: Option<String>,
}

/// An archive that passed [`check`], with where each selected member goes.
#[derive(Debug)]
pub struct Checked {
    pub(super) archive: PathBuf,
    pub(super) members: Vec<Planned>,
    /// The bytes of the regular files it stages.
    pub bytes: u64,
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
