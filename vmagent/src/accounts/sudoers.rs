//! Admin access: the `admin` user's sudoers file, written (root-owned, 0440, through an
//! exclusive temporary file) when SSH keys are configured and removed when they are not, and
//! the check of the environment files that says whether they are.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::{AccountsError, Changes};
use crate::fsutil::{self, TempFile};
use crate::host::Host;

pub const SUDOERS_ADMIN: &str = "/etc/sudoers.d/admin";
pub const SUDOERS_LINE: &str = "admin ALL=(ALL) NOPASSWD:ALL\n";

pub(super) fn ensure_sudoers(
    root: &Path,
    admin: bool,
    host: &dyn Host,
    changes: &mut Changes,
) -> Result<(), AccountsError> {
    let path = fsutil::under_root(root, SUDOERS_ADMIN);
    let io = |source| AccountsError::Io {
        path: path.clone(),
        source,
    };
    if !admin {
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::remove_file(&path).map_err(io)?;
            changes.push(format!("removed {SUDOERS_ADMIN} (no SSH keys configured)"));
        }
        return Ok(());
    }
    let current = std::fs::symlink_metadata(&path).ok();
    let same = current.as_ref().is_some_and(|md| {
        md.is_file()
            && md.mode() & 0o7777 == 0o440
            && md.uid() == 0
            && md.gid() == 0
            && std::fs::read_to_string(&path).is_ok_and(|t| t == SUDOERS_LINE)
    });
    if same {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
    // Owner and mode on the fresh temp file's descriptor before the first byte, as for every
    // file vmagent writes.
    let mut t = TempFile::create_for(&path).map_err(io)?;
    host.chown(root, t.fd(), t.path(), "root", "root")?;
    t.file()
        .set_permissions(std::fs::Permissions::from_mode(0o440))
        .map_err(io)?;
    std::io::Write::write_all(t.file(), SUDOERS_LINE.as_bytes()).map_err(io)?;
    t.persist().map_err(io)?;
    changes.push(format!("wrote {SUDOERS_ADMIN}"));
    Ok(())
}

/// Are SSH keys configured? (`IMMUTABLE_SSH_AUTHORIZED_KEYS` in user-data.env or
/// `SSH_AUTHORIZED_KEYS` in mutable.env, non-empty.)
pub fn ssh_keys_configured(root: &Path) -> Result<bool, crate::envfile::EnvFileError> {
    let mut any = false;
    for (file, key) in [
        (
            "/opt/podplane/etc/user-data.env",
            "IMMUTABLE_SSH_AUTHORIZED_KEYS",
        ),
        ("/opt/podplane/etc/mutable.env", "SSH_AUTHORIZED_KEYS"),
    ] {
        if let Some(env) = crate::envfile::read(&fsutil::under_root(root, file))? {
            any |= env.get(key).is_some_and(|v| !v.trim().is_empty());
        }
    }
    Ok(any)
}
