//! Safe tarball extraction, in two passes.
//!
//! [`check`](fn@check) reads an archive whole (to the end of its compressed stream, so a
//! corrupt or truncated archive fails here) and writes nothing. It refuses absolute paths, `..`, devices,
//! fifos, hard links and duplicate members; any member whose path goes through a symlink (a
//! member of the archive, or one already on disk below the destination); and any symlink whose
//! target, resolved against the archive's members and the disk, leaves the destination directory
//! or takes more than [`MAX_LINK_HOPS`] links. It also checks that every destination directory
//! is reached without a link on disk. Install checks every archive before it stages anything.
//!
//! [`stage`](fn@stage) then reads the archive again (refusing it if it no longer matches what
//! was checked) and writes each selected member to a temp file beside its final path, through
//! [`crate::safefs`]: directories are opened without following any link, so a link planted by a
//! service account is refused rather than written through. [`Staged::commit`] renames the temp
//! files into place, so a crash never leaves a half-written file at a final path.
//!
//! Staged files are owned root:root with the member's permission bits masked by
//! [`FILE_MODE_MASK`] (0755: no setuid, setgid or sticky bit, no write for group or others).
//! Member directories are created 0755 root:root; their modes in the archive are ignored.
//!
//! The parts: [`member`] (what one entry is: its cleaned path and kind), [`mod@check`] (the first
//! pass and the destination checks), `resolve` (each member's place against the archive and
//! the disk, and link targets resolved), and [`mod@stage`] (the second pass, temp files, and the
//! commit). This file holds the limits, the error and the checked archive handed between passes.

mod check;
mod member;
mod resolve;
mod stage;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::host::HostError;
use crate::safefs::SafeFsError;
use member::Kind;

pub use check::{check, check_dest, check_dir};
pub use stage::{Staged, StagedFile, stage, stage_file};

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

fn open(archive: &Path) -> Result<tar::Archive<GzDecoder<File>>, ArchiveError> {
    let f = File::open(archive).map_err(|source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        source,
    })?;
    Ok(tar::Archive::new(GzDecoder::new(f)))
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

#[cfg(test)]
mod tests;
