//! What can go wrong while planning or carrying out accounts and permissions
//! ([`AccountsError`], naming the path and the fix), and [`Changes`], the lines that report
//! what was changed.

use std::path::PathBuf;

use crate::host::HostError;
use crate::safefs::SafeFsError;
use crate::userdb::UserDbError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    UserDb(#[from] UserDbError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{} is a symlink; vmagent manages it as a directory and never follows links: remove the link", path.display())]
    Symlink { path: PathBuf },
    #[error("{} exists and is not a directory: move it away", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} should be owned by {user}:{group}, but that {what} does not exist", path.display())]
    MissingOwner {
        path: PathBuf,
        user: &'static str,
        group: &'static str,
        what: &'static str,
    },
    #[error(transparent)]
    SafeFs(#[from] SafeFsError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`ensure`] changed, one line per change.
pub type Changes = Vec<String>;
