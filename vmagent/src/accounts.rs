//! Users, groups, directories and modes every service relies on (upstream's permissions.sh).
//! [`spec`] is the table, a pure function of the node kind. [`plan`] lists what converging a root
//! to it changes (the exact account commands included); [`carry_out`] makes those changes
//! through the [`Host`] and reports them, so a second run reports nothing. `vmagent plan/apply`
//! take these steps as part of their plan; [`ensure`] (install) plans and carries out at once.
//!
//! Paths are never followed through symlinks: a managed directory that is a symlink or not a
//! directory is an error, as is a directory whose user or group does not exist.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsutil::{self, TempFile};
use crate::host::{Cmd, Host, HostError};
use crate::safefs::{self, Kind as FileKind, Root, SafeFsError};
use crate::userdb::{UserDb, UserDbError};

use crate::contract::Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: &'static str,
    /// System user (`useradd -r`); kubelet is the exception.
    pub system: bool,
    pub shell: &'static str,
    pub home: Option<&'static str>,
    /// Exact supplementary groups.
    pub groups: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirSpec {
    pub path: &'static str,
    pub mode: u32,
    pub user: &'static str,
    pub group: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub users: Vec<UserSpec>,
    pub dirs: Vec<DirSpec>,
    /// Files that get `+x` when they exist.
    pub executables: Vec<String>,
    /// Directories whose every file gets `+x`.
    pub executable_dirs: Vec<&'static str>,
    /// Shared libraries set to 0755 when present.
    pub libraries: Vec<String>,
    /// Whether the `admin` login user and its sudoers file exist.
    pub admin: bool,
}

const NOLOGIN: &str = "/usr/sbin/nologin";
pub const SUDOERS_ADMIN: &str = "/etc/sudoers.d/admin";
pub const SUDOERS_LINE: &str = "admin ALL=(ALL) NOPASSWD:ALL\n";

fn service(name: &'static str, groups: &[&'static str]) -> UserSpec {
    UserSpec {
        name,
        system: true,
        shell: NOLOGIN,
        home: None,
        groups: groups.to_vec(),
    }
}

fn dirs(
    mode: u32,
    user: &'static str,
    group: &'static str,
    paths: &[&'static str],
) -> Vec<DirSpec> {
    paths
        .iter()
        .map(|&path| DirSpec {
            path,
            mode,
            user,
            group,
        })
        .collect()
}

/// The permissions table for a node. `admin`: SSH keys are configured. `lib_dir`: the
/// multiarch library directory (`/usr/lib/x86_64-linux-gnu`).
pub fn spec(kind: Kind, admin: bool, lib_dir: &str) -> Spec {
    let mut users = vec![
        service("podplane", &[]),
        service("nstance-agent", &["podplane"]),
        service("fluent-bit", &["podplane", "systemd-journal"]),
        service("kube2iam", &["podplane"]),
        service("containerd", &["podplane"]),
        UserSpec {
            name: "kubelet",
            system: false,
            shell: NOLOGIN,
            home: None,
            groups: vec!["podplane", "containerd"],
        },
        service("zot", &["podplane"]),
    ];
    if admin {
        users.push(UserSpec {
            name: "admin",
            system: false,
            shell: "/bin/bash",
            home: Some("/home/admin"),
            groups: vec![],
        });
    }
    let mut d = Vec::new();
    d.extend(dirs(
        0o755,
        "root",
        "root",
        &["/etc", "/etc/containerd", "/etc/containerd/certs.d"],
    ));
    d.extend(dirs(0o750, "root", "podplane", &["/opt", "/opt/podplane"]));
    d.extend(dirs(
        0o755,
        "root",
        "root",
        &[
            "/opt/podplane/bin",
            "/opt/podplane/lib",
            "/opt/podplane/lib/configure",
            "/opt/podplane/share",
            "/opt/podplane/share/defaults",
        ],
    ));
    d.extend(dirs(
        0o700,
        "root",
        "root",
        &["/opt/podplane/etc", "/opt/bin", "/opt/versions", "/opt/cni"],
    ));
    d.extend(dirs(
        0o750,
        "root",
        "podplane",
        &["/opt/crt", "/opt/pub", "/opt/env"],
    ));
    d.extend(dirs(0o710, "root", "podplane", &["/opt/key"]));
    d.extend(dirs(
        0o700,
        "nstance-agent",
        "nstance-agent",
        &[
            "/opt/nstance-agent",
            "/opt/nstance-agent/identity",
            "/opt/nstance-agent/keys",
            "/opt/nstance-agent/recv",
        ],
    ));
    d.extend(dirs(
        0o700,
        "fluent-bit",
        "fluent-bit",
        &["/opt/fluent-bit", "/var/lib/fluent-bit"],
    ));
    d.extend(dirs(0o700, "kube2iam", "kube2iam", &["/opt/kube2iam"]));
    d.extend(dirs(0o750, "root", "kube2iam", &["/opt/key/kube2iam"]));
    d.extend(dirs(0o700, "kubelet", "kubelet", &["/opt/kubelet"]));
    d.extend(dirs(0o750, "root", "kubelet", &["/opt/key/kubelet"]));
    d.extend(dirs(0o750, "root", "containerd", &["/opt/key/containerd"]));
    d.extend(dirs(
        0o750,
        "kubelet",
        "kubelet",
        &["/var/lib/kubelet", "/var/log/containers", "/var/log/pods"],
    ));
    d.extend(dirs(
        0o700,
        "zot",
        "zot",
        &["/opt/zot", "/opt/zot/etc", "/opt/zot/storage"],
    ));
    d.extend(dirs(0o750, "root", "zot", &["/opt/key/registry"]));

    let mut executables: Vec<String> = [
        "/opt/nstance-agent/bin/nstance-agent",
        "/opt/nstance-agent/bin/run-nstance-agent.sh",
        "/opt/fluent-bit/bin/fluent-bit",
        "/opt/fluent-bit/bin/run-fluent-bit.sh",
        "/opt/kube2iam/bin/kube2iam",
        "/opt/kube2iam/bin/run-kube2iam.sh",
        "/usr/bin/getsubids",
        "/usr/local/bin/containerd",
        "/usr/local/bin/containerd-shim-runc-v2",
        "/usr/local/bin/crictl",
        "/usr/local/bin/ctr",
        "/usr/local/sbin/runc",
        "/opt/kubelet/bin/run-kubelet.sh",
        "/usr/bin/kubelet",
        "/usr/bin/zot",
        "/opt/zot/bin/run-zot.sh",
    ]
    .map(String::from)
    .to_vec();

    if kind == Kind::Knc {
        for name in [
            "netsy",
            "kube-apiserver",
            "kube-scheduler",
            "kube-controller-manager",
        ] {
            users.push(service(name, &["podplane"]));
        }
        d.extend(dirs(0o700, "netsy", "netsy", &["/opt/data", "/opt/netsy"]));
        d.extend(dirs(
            0o750,
            "root",
            "netsy",
            &["/opt/netsy/etc", "/opt/key/netsy"],
        ));
        for (svc, home, key) in [
            (
                "kube-apiserver",
                "/opt/kube-apiserver",
                "/opt/key/kube-apiserver",
            ),
            (
                "kube-scheduler",
                "/opt/kube-scheduler",
                "/opt/key/kube-scheduler",
            ),
            (
                "kube-controller-manager",
                "/opt/kube-controller-manager",
                "/opt/key/kube-controller-manager",
            ),
        ] {
            d.extend(dirs(0o700, svc, svc, &[home]));
            d.extend(dirs(0o750, "root", svc, &[key]));
        }
        executables.extend(
            [
                "/opt/netsy/bin/netsy",
                "/opt/netsy/bin/run-netsy.sh",
                "/opt/kube-apiserver/bin/run-kube-apiserver.sh",
                "/opt/kube-controller-manager/bin/run-kube-controller-manager.sh",
                "/usr/bin/kube-apiserver",
                "/usr/bin/kube-scheduler",
                "/usr/bin/kube-controller-manager",
            ]
            .map(String::from),
        );
    }
    Spec {
        users,
        dirs: d,
        executables,
        executable_dirs: vec!["/opt/cni/bin"],
        libraries: vec![
            format!("{lib_dir}/libpq.so.5"),
            format!("{lib_dir}/libsubid.so.5"),
        ],
        admin,
    }
}

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

/// Converge `root` to `spec`: [`plan`], [`carry_out`], then the admin sudoers file.
pub fn ensure(root: &Path, spec: &Spec, host: &dyn Host) -> Result<Changes, AccountsError> {
    let planned = plan(root, spec)?;
    let mut changes = carry_out(root, &planned, host)?;
    ensure_sudoers(root, spec.admin, host, &mut changes)?;
    Ok(changes)
}

/// What converging `root` to `spec` changes, in order: groups, users, directories, execute
/// bits, libraries. Reads only. (The sudoers file is a managed file: see [`sudoers`].)
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

fn missing_owner(root: &Path, d: &DirSpec, user_known: bool) -> AccountsError {
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

/// A regular file's descriptor and metadata, opened without following a link; `None` when it
/// is missing, a link or not a regular file (not ours to change).
fn regular(
    fs: &Root,
    shown: &str,
) -> Result<Option<(std::os::fd::OwnedFd, safefs::Meta)>, AccountsError> {
    match fs.open_node(shown) {
        Ok(Some((fd, md))) if md.kind == FileKind::File => Ok(Some((fd, md))),
        Ok(_) | Err(SafeFsError::Link { .. }) | Err(SafeFsError::NotRegular { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
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

fn ensure_sudoers(
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
    let mut t = TempFile::create_for(&path).map_err(io)?;
    std::io::Write::write_all(t.file(), SUDOERS_LINE.as_bytes()).map_err(io)?;
    t.file()
        .set_permissions(std::fs::Permissions::from_mode(0o440))
        .map_err(io)?;
    host.chown(root, t.fd(), t.path(), "root", "root")?;
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

#[cfg(test)]
mod tests;
