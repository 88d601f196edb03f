//! Users, groups, directories and modes every service relies on (upstream's permissions.sh).
//! [`spec`] is the table, a pure function of the node kind. [`plan`] lists what converging a root
//! to it changes (the exact account commands included); [`carry_out`] makes those changes
//! through the [`Host`] and reports them, so a second run reports nothing. `vmagent plan/apply`
//! take these steps as part of their plan; [`ensure`] (install) plans and carries out at once.
//!
//! Paths are never followed through symlinks: a managed directory that is a symlink or not a
//! directory is an error, as is a directory whose user or group does not exist.
//!
//! The parts: [`table`] (the accounts, directories and modes a node kind needs), [`plan`]
//! (what converging changes, read only), [`apply`] (carrying the changes out through their
//! descriptors) and [`sudoers`] (the admin's sudo rule and whether SSH keys are configured).

mod apply;
mod plan;
mod sudoers;
mod table;

use std::path::{Path, PathBuf};

use crate::host::{Host, HostError};
use crate::safefs::SafeFsError;
use crate::userdb::UserDbError;

pub use apply::carry_out;
pub use plan::{Change, created, plan, plan_private};
use sudoers::ensure_sudoers;
pub use sudoers::{SUDOERS_ADMIN, SUDOERS_LINE, ssh_keys_configured};
pub use table::{DirSpec, Spec, UserSpec, spec};

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

/// Converge `root` to `spec`: [`plan`], [`carry_out`], then the admin sudoers file.
pub fn ensure(root: &Path, spec: &Spec, host: &dyn Host) -> Result<Changes, AccountsError> {
    let planned = plan(root, spec)?;
    let mut changes = carry_out(root, &planned, host)?;
    ensure_sudoers(root, spec.admin, host, &mut changes)?;
    Ok(changes)
}

#[cfg(test)]
mod tests;
