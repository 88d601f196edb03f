//! Why an archive is refused or could not be installed: [`ArchiveError`], naming the archive,
//! the member and the fix.

use std::io;
use std::path::PathBuf;

use crate::host::HostError;
use crate::safefs::SafeFsError;

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
