//! Carrying out planned [`Change`]s through the [`Host`]: account commands with the primary
//! group as the database stands at that moment, and directories, execute bits, library modes and
//! private files, each checked again and changed through its descriptor so a link swapped in
//! since the plan is never followed. Reports one line per change made.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::{AccountsError, Changes};
use super::plan::Change;
use super::plan::{missing_owner, regular};
use super::table::DirSpec;
use crate::fsutil;
use crate::host::{Cmd, Host};
use crate::safefs::{self, Kind as FileKind, Root};
use crate::userdb::UserDb;

/// Carry out `changes` through `host`, each checked again on its descriptor, and report what
/// changed.
pub fn carry_out(
    root: &Path,
    changes: &[Change],
    host: &dyn Host,
) -> Result<Changes, AccountsError> {
    let mut out = Vec::new();
    let fs = Root::open(root)?;
    // The account database as the account commands left it.
    let mut db: Option<UserDb> = None;
    for c in changes {
        match c {
            Change::Account {
                cmd, done, user, ..
            } => {
                let cmd = match user {
                    // The primary group as the commands before this one left the database.
                    Some(u) => {
                        let db = match &mut db {
                            Some(db) => db,
                            None => db.insert(UserDb::load(root)?),
                        };
                        primary_group(cmd, u, db.group(u).is_some())
                    }
                    None => cmd.clone(),
                };
                host.run(&cmd)?;
                out.push(done.clone());
                db = None;
            }
            Change::Dir { spec, .. } => {
                let db = match &mut db {
                    Some(db) => db,
                    None => db.insert(UserDb::load(root)?),
                };
                ensure_dir(root, &fs, spec, db, host, &mut out)?;
            }
            Change::Exec { path, .. } => add_exec(&fs, path, &mut out)?,
            Change::Library { path, .. } => set_library_mode(root, path, &mut out)?,
            Change::Private {
                path,
                want: (mode, user, group),
                ..
            } => {
                let db = match &mut db {
                    Some(db) => db,
                    None => db.insert(UserDb::load(root)?),
                };
                secure_private(root, &fs, path, (*mode, user, group), db, host, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// `useradd … -g NAME` when the group `user` exists, `useradd … -U` (create it) when not.
fn primary_group(cmd: &Cmd, user: &str, exists: bool) -> Cmd {
    let mut c = cmd.clone();
    let at = c.args.iter().position(|a| a == "-U" || a == "-g");
    if let Some(i) = at {
        let span = if c.args[i] == "-g" {
            i..(i + 2).min(c.args.len())
        } else {
            i..i + 1
        };
        let flag = if exists {
            vec!["-g".to_string(), user.to_string()]
        } else {
            vec!["-U".to_string()]
        };
        c.args.splice(span, flag);
    }
    c
}

fn ensure_dir(
    root: &Path,
    fs: &Root,
    d: &DirSpec,
    db: &UserDb,
    host: &dyn Host,
    changes: &mut Changes,
) -> Result<(), AccountsError> {
    let path = fsutil::under_root(root, d.path);
    let (Some(uid), Some(gid)) = (db.uid(d.user), db.gid(d.group)) else {
        return Err(missing_owner(root, d, db.uid(d.user).is_some()));
    };
    match fs.meta(d.path)? {
        Some(m) if m.kind == FileKind::Symlink => return Err(AccountsError::Symlink { path }),
        Some(m) if m.kind != FileKind::Dir => return Err(AccountsError::NotADirectory { path }),
        Some(_) => {}
        None => changes.push(format!("created {}", d.path)),
    }
    // Opened without following any link on the way; everything below acts on the descriptor.
    let dir = fs.create_dir_all(d.path)?;
    let md = dir.meta()?;
    let chowned = md.uid != uid || md.gid != gid;
    if chowned {
        host.chown(root, dir.fd(), &path, d.user, d.group)?;
        changes.push(format!(
            "set the owner of {} to {}:{}",
            d.path, d.user, d.group
        ));
    }
    if md.mode != d.mode || chowned {
        safefs::set_mode(dir.fd(), d.mode).map_err(|source| AccountsError::Io {
            path: path.clone(),
            source,
        })?;
        if md.mode != d.mode {
            changes.push(format!("set the mode of {} to {:04o}", d.path, d.mode));
        }
    }
    Ok(())
}

/// Add the execute bits to a regular file, through its descriptor (never through a link).
fn add_exec(fs: &Root, shown: &str, changes: &mut Changes) -> Result<(), AccountsError> {
    let Some((fd, md)) = regular(fs, shown)? else {
        return Ok(());
    };
    if md.mode & 0o111 != 0o111 {
        safefs::set_mode(&fd, md.mode | 0o111).map_err(|source| AccountsError::Io {
            path: fs.full(shown),
            source,
        })?;
        changes.push(format!("made {shown} executable"));
    }
    Ok(())
}

fn set_library_mode(root: &Path, lib: &str, changes: &mut Changes) -> Result<(), AccountsError> {
    // These are symlinks to the versioned library: follow them, as chmod does. This is the one
    // mode vmagent sets by path: the link and its target live in the multiarch library directory,
    // which only root can change, so no service account can redirect it (see docs/security.md).
    let full = fsutil::under_root(root, lib);
    if let Ok(md) = std::fs::metadata(&full)
        && md.mode() & 0o7777 != 0o755
    {
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| AccountsError::Io {
                path: full.clone(),
                source,
            },
        )?;
        changes.push(format!("set the mode of {lib} to 0755"));
    }
    Ok(())
}

/// Make a private file `mode`, owned by `user:group`, through its descriptor: a link swapped in
/// since the plan is never followed.
fn secure_private(
    root: &Path,
    fs: &Root,
    path: &str,
    (mode, user, group): (u32, &str, &str),
    db: &UserDb,
    host: &dyn Host,
    changes: &mut Changes,
) -> Result<(), AccountsError> {
    let Some((fd, md)) = regular(fs, path)? else {
        return Ok(());
    };
    let owned = db.uid(user) == Some(md.uid) && db.gid(group) == Some(md.gid);
    if !owned {
        host.chown(
            root,
            std::os::fd::AsFd::as_fd(&fd),
            &fs.full(path),
            user,
            group,
        )?;
        changes.push(format!("set the owner of {path} to {user}:{group}"));
    }
    if md.mode != mode || !owned {
        safefs::set_mode(&fd, mode).map_err(|source| AccountsError::Io {
            path: fs.full(path),
            source,
        })?;
        if md.mode != mode {
            changes.push(format!("set the mode of {path} to {mode:04o}"));
        }
    }
    Ok(())
}
