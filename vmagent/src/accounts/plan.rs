//! Planning: what converging a root to its [`Spec`] changes, in order (groups, users,
//! directories, execute bits, libraries, private files), each as a [`Change`] that names the
//! exact account command or the mode and owner it sets. Reads the account database and the disk
//! without following links, and changes nothing.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::AccountsError;
use super::table::{DirSpec, Spec};
use crate::fsutil;
use crate::host::Cmd;
use crate::safefs::{self, Kind as FileKind, Root, SafeFsError};
use crate::userdb::UserDb;

/// One planned change to accounts or permissions. [`plan`] lists them; [`carry_out`] makes them,
/// checking each path again through its descriptor when it acts, so what it changes is what the
/// disk needs at that moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A `groupadd`, `useradd` or `usermod`, exactly as it will run. `done` is the change line;
    /// `user` / `group`: the account it creates.
    Account {
        cmd: Cmd,
        done: String,
        user: Option<String>,
        group: Option<String>,
    },
    /// A managed directory to create, chmod or chown.
    Dir {
        spec: DirSpec,
        create: bool,
        /// Current and wanted mode.
        mode: Option<(u32, u32)>,
        /// Current owner (`uid:gid`) when it differs.
        owner: Option<String>,
    },
    /// A regular file that gets `+x`: current and new mode.
    Exec { path: String, mode: (u32, u32) },
    /// A shared library (through its link, as chmod does) set to 0755: current mode.
    Library { path: String, mode: u32 },
    /// A private file that must be `mode`, owned by `user:group` (the Nstance nonce).
    Private {
        path: String,
        want: (u32, &'static str, &'static str),
        mode: Option<(u32, u32)>,
        owner: Option<String>,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = |mode: &Option<(u32, u32)>, owner: &Option<String>, to: &str| {
            let mut w = Vec::new();
            if let Some((a, b)) = mode {
                w.push(format!("mode {a:04o} -> {b:04o}"));
            }
            if let Some(a) = owner {
                w.push(format!("owner {a} -> {to}"));
            }
            w.join(", ")
        };
        match self {
            Change::Account { cmd, done, .. } => write!(f, "run {} ({done})", cmd.display()),
            Change::Dir {
                spec, create: true, ..
            } => write!(
                f,
                "create directory {} ({:04o} {}:{})",
                spec.path, spec.mode, spec.user, spec.group
            ),
            Change::Dir {
                spec, mode, owner, ..
            } => write!(
                f,
                "change directory {} ({})",
                spec.path,
                what(mode, owner, &format!("{}:{}", spec.user, spec.group))
            ),
            Change::Exec { path, mode: (a, b) } => {
                write!(f, "change {path} (mode {a:04o} -> {b:04o}: executable)")
            }
            Change::Library { path, mode } => {
                write!(f, "change {path} (mode {mode:04o} -> 0755)")
            }
            Change::Private {
                path,
                want: (_, user, group),
                mode,
                owner,
            } => write!(
                f,
                "change {path} ({})",
                what(mode, owner, &format!("{user}:{group}"))
            ),
        }
    }
}

/// The users and groups that `changes` create.
pub fn created(changes: &[Change]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
    for c in changes {
        if let Change::Account { user, group, .. } = c {
            users.extend(user.clone());
            groups.extend(group.clone());
        }
    }
    (users, groups)
}

fn account_tool(root: &Path, tool: &str) -> Cmd {
    let c = Cmd::new(tool);
    if root == Path::new("/") {
        c
    } else {
        c.arg("--root").arg(root.to_string_lossy())
    }
}

/// What converging `root` to `spec` changes, in order: groups, users, directories, execute
/// bits, libraries. Reads only. (The sudoers file is a managed file: see [`super::sudoers`].)
pub fn plan(root: &Path, spec: &Spec) -> Result<Vec<Change>, AccountsError> {
    let db = UserDb::load(root)?;
    let mut out = Vec::new();
    plan_accounts(root, spec, &db, &mut out);
    let (new_users, new_groups) = created(&out);
    let fs = Root::open(root)?;
    for d in &spec.dirs {
        out.extend(plan_dir(root, &fs, d, &db, &new_users, &new_groups)?);
    }
    plan_executables(root, &fs, spec, &mut out)?;
    Ok(out)
}

fn plan_accounts(root: &Path, spec: &Spec, db: &UserDb, out: &mut Vec<Change>) {
    // Every supplementary group must exist before the users that join it.
    let needed: BTreeSet<&str> = spec
        .users
        .iter()
        .flat_map(|u| u.groups.iter().copied())
        .collect();
    let mut new_groups = BTreeSet::new();
    for g in needed {
        if db.group(g).is_none() {
            out.push(Change::Account {
                cmd: account_tool(root, "groupadd").args(["-r", g]),
                done: format!("created group {g}"),
                user: None,
                group: Some(g.to_string()),
            });
            new_groups.insert(g);
        }
    }
    let group_exists = |g: &str| db.group(g).is_some() || new_groups.contains(g);
    let has_syslog = group_exists("syslog");
    let usermod = |args: &[&str], done: String| Change::Account {
        cmd: account_tool(root, "usermod").args(args.iter().copied()),
        done,
        user: None,
        group: None,
    };
    for u in &spec.users {
        let mut groups: Vec<&str> = u.groups.clone();
        if u.name == "fluent-bit" && has_syslog {
            // To read /var/log/cloud-init.log.
            groups.push("syslog");
        }
        let list = groups.join(",");
        match db.user(u.name) {
            None => {
                let mut c = account_tool(root, "useradd")
                    .arg("-m")
                    .args(["-s", u.shell]);
                if u.system {
                    c = c.arg("-r");
                }
                if let Some(h) = u.home {
                    c = c.args(["-d", h]);
                }
                // Primary group of the same name: reuse it when it exists already.
                c = if group_exists(u.name) {
                    c.args(["-g", u.name])
                } else {
                    c.arg("-U")
                };
                if !list.is_empty() {
                    c = c.args(["-G", &list]);
                }
                out.push(Change::Account {
                    cmd: c.arg(u.name),
                    done: format!("created user {}", u.name),
                    user: Some(u.name.to_string()),
                    group: Some(u.name.to_string()),
                });
            }
            Some(existing) => {
                if existing.shell != u.shell {
                    out.push(usermod(
                        &["-s", u.shell, u.name],
                        format!("set the shell of {} to {}", u.name, u.shell),
                    ));
                }
                if let Some(h) = u.home.filter(|h| existing.home != *h) {
                    out.push(usermod(
                        &["-d", h, u.name],
                        format!("set the home of {} to {h}", u.name),
                    ));
                }
                let want: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
                if db.supplementary_groups(u.name) != want {
                    out.push(usermod(
                        &["-G", &list, u.name],
                        format!("set the groups of {} to [{list}]", u.name),
                    ));
                }
            }
        }
    }
}

pub(super) fn missing_owner(root: &Path, d: &DirSpec, user_known: bool) -> AccountsError {
    AccountsError::MissingOwner {
        path: fsutil::under_root(root, d.path),
        user: d.user,
        group: d.group,
        what: if user_known { "group" } else { "user" },
    }
}

fn plan_dir(
    root: &Path,
    fs: &Root,
    d: &DirSpec,
    db: &UserDb,
    new_users: &BTreeSet<String>,
    new_groups: &BTreeSet<String>,
) -> Result<Option<Change>, AccountsError> {
    let user_known = db.uid(d.user).is_some() || new_users.contains(d.user);
    if !user_known || (db.gid(d.group).is_none() && !new_groups.contains(d.group)) {
        return Err(missing_owner(root, d, user_known));
    }
    let path = fsutil::under_root(root, d.path);
    let m = match fs.meta(d.path)? {
        Some(m) if m.kind == FileKind::Symlink => return Err(AccountsError::Symlink { path }),
        Some(m) if m.kind != FileKind::Dir => return Err(AccountsError::NotADirectory { path }),
        Some(m) => m,
        None => {
            return Ok(Some(Change::Dir {
                spec: d.clone(),
                create: true,
                mode: None,
                owner: None,
            }));
        }
    };
    // An account the plan creates owns nothing yet.
    let owned = db.uid(d.user) == Some(m.uid) && db.gid(d.group) == Some(m.gid);
    let mode = (m.mode != d.mode).then_some((m.mode, d.mode));
    let owner = (!owned).then(|| format!("{}:{}", m.uid, m.gid));
    Ok((mode.is_some() || owner.is_some()).then(|| Change::Dir {
        spec: d.clone(),
        create: false,
        mode,
        owner,
    }))
}

/// A regular file's descriptor and metadata, opened without following a link; `None` when it
/// is missing, a link or not a regular file (not ours to change).
pub(super) fn regular(
    fs: &Root,
    shown: &str,
) -> Result<Option<(std::os::fd::OwnedFd, safefs::Meta)>, AccountsError> {
    match fs.open_node(shown) {
        Ok(Some((fd, md))) if md.kind == FileKind::File => Ok(Some((fd, md))),
        Ok(_) | Err(SafeFsError::Link { .. }) | Err(SafeFsError::NotRegular { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn plan_executables(
    root: &Path,
    fs: &Root,
    spec: &Spec,
    out: &mut Vec<Change>,
) -> Result<(), AccountsError> {
    let mut plan_exec = |path: String| -> Result<(), AccountsError> {
        if let Some((_, md)) = regular(fs, &path)?
            && md.mode & 0o111 != 0o111
        {
            out.push(Change::Exec {
                path,
                mode: (md.mode, md.mode | 0o111),
            });
        }
        Ok(())
    };
    for e in &spec.executables {
        plan_exec(e.clone())?;
    }
    for dir in &spec.executable_dirs {
        let Ok(Some(d)) = fs.open_dir(dir) else {
            continue;
        };
        for n in d.names()? {
            let Some(n) = n.to_str() else { continue };
            plan_exec(format!("{dir}/{n}"))?;
        }
    }
    for lib in &spec.libraries {
        // These are symlinks to the versioned library: follow them, as chmod does. This is the one
        // mode vmagent sets by path: the link and its target live in the multiarch library directory,
        // which only root can change, so no service account can redirect it (see docs/security.md).
        if let Ok(md) = std::fs::metadata(fsutil::under_root(root, lib))
            && md.mode() & 0o7777 != 0o755
        {
            out.push(Change::Library {
                path: lib.clone(),
                mode: md.mode() & 0o7777,
            });
        }
    }
    Ok(())
}

/// The change that makes the regular file `path` (when it is one) `mode`, owned by
/// `user:group`. A missing file, a link or anything else is left alone.
pub fn plan_private(
    root: &Path,
    path: &str,
    want: (u32, &'static str, &'static str),
) -> Result<Option<Change>, AccountsError> {
    let fs = Root::open(root)?;
    let Some((_, md)) = regular(&fs, path)? else {
        return Ok(None);
    };
    let db = UserDb::load(root)?;
    let (mode, user, group) = want;
    let owned = db.uid(user) == Some(md.uid) && db.gid(group) == Some(md.gid);
    let mode_change = (md.mode != mode).then_some((md.mode, mode));
    let owner = (!owned).then(|| format!("{}:{}", md.uid, md.gid));
    Ok(
        (mode_change.is_some() || owner.is_some()).then(|| Change::Private {
            path: path.to_string(),
            want,
            mode: mode_change,
            owner,
        }),
    )
}
