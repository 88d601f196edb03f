//! Users, groups, directories and modes every service relies on.
//! [`spec`] is the table, a pure function of the node kind. [`plan`] lists what converging a root
//! to it changes (the exact account commands included); [`carry_out`] makes those changes
//! through the [`Host`] and reports them, so a second run reports nothing. `vmagent plan/apply`
//! take these steps as part of their plan; [`ensure`] (install) plans and carries out at once.
//!
//! Paths are never followed through symlinks: a managed directory that is a symlink or not a
//! directory is an error, as is a directory whose user or group does not exist.
//!
//! The parts: [`table`] (the accounts, directories and modes a node kind needs), [`plan`] (what
//! converging changes, read only), [`apply`] (carrying the changes out through their
//! descriptors), [`sudoers`] (the admin's sudo rule and whether SSH keys are configured) and
//! [`error`]. This file only names them and ties them together in [`ensure`].

mod apply;
mod error;
mod plan;
mod sudoers;
mod table;

use std::path::Path;

use crate::host::Host;

pub use apply::carry_out;
pub use error::{AccountsError, Changes};
pub use plan::{Change, created, plan, plan_private};
use sudoers::ensure_sudoers;
pub use sudoers::{SUDOERS_ADMIN, SUDOERS_LINE, ssh_keys_configured};
pub use table::{DirSpec, Spec, UserSpec, spec};

/// Converge `root` to `spec`: [`plan`], [`carry_out`], then the admin sudoers file.
pub fn ensure(root: &Path, spec: &Spec, host: &dyn Host) -> Result<Changes, AccountsError> {
    let planned = plan(root, spec)?;
    let mut changes = carry_out(root, &planned, host)?;
    ensure_sudoers(root, spec.admin, host, &mut changes)?;
    Ok(changes)
}

#[cfg(test)]
mod tests;
