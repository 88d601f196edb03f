//! Users, groups, directories and modes every service relies on (upstream's permissions.sh).
//! [`spec`] is the table, a pure function of the node kind; [`ensure`] converges a root to it
//! through the [`Host`] and reports what it changed, so a second run reports nothing.
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

pub use crate::contract::Kind;

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

#[derive(Debug, Clone, PartialEq, Eq)]
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
const SUDOERS_LINE: &str = "admin ALL=(ALL) NOPASSWD:ALL\n";

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

/// `/usr/lib/<triple>` for a manifest arch.
pub fn lib_dir(arch: &str) -> &'static str {
    match arch {
        "arm64" => "/usr/lib/aarch64-linux-gnu",
        _ => "/usr/lib/x86_64-linux-gnu",
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

fn account_tool(root: &Path, tool: &str) -> Cmd {
    let c = Cmd::new(tool);
    if root == Path::new("/") {
        c
    } else {
        c.arg("--root").arg(root.to_string_lossy())
    }
}

/// Converge `root` to `spec`.
pub fn ensure(root: &Path, spec: &Spec, host: &dyn Host) -> Result<Changes, AccountsError> {
    let mut changes = Vec::new();
    ensure_accounts(root, spec, host, &mut changes)?;
    let db = UserDb::load(root)?;
    let fs = Root::open(root)?;
    for d in &spec.dirs {
        ensure_dir(root, &fs, d, &db, host, &mut changes)?;
    }
    ensure_executables(root, &fs, spec, &mut changes)?;
    ensure_sudoers(root, spec.admin, host, &mut changes)?;
    Ok(changes)
}

fn ensure_accounts(
    root: &Path,
    spec: &Spec,
    host: &dyn Host,
    changes: &mut Changes,
) -> Result<(), AccountsError> {
    let db = UserDb::load(root)?;
    // Every supplementary group must exist before the users that join it.
    let needed: BTreeSet<&str> = spec
        .users
        .iter()
        .flat_map(|u| u.groups.iter().copied())
        .collect();
    for g in needed {
        if db.group(g).is_none() {
            host.run(&account_tool(root, "groupadd").args(["-r", g]))?;
            changes.push(format!("created group {g}"));
        }
    }
    let db = UserDb::load(root)?;
    let has_syslog = db.group("syslog").is_some();
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
                c = if db.group(u.name).is_some() {
                    c.args(["-g", u.name])
                } else {
                    c.arg("-U")
                };
                if !list.is_empty() {
                    c = c.args(["-G", &list]);
                }
                host.run(&c.arg(u.name))?;
                changes.push(format!("created user {}", u.name));
            }
            Some(existing) => {
                if existing.shell != u.shell {
                    host.run(&account_tool(root, "usermod").args(["-s", u.shell, u.name]))?;
                    changes.push(format!("set the shell of {} to {}", u.name, u.shell));
                }
                if u.home.is_some_and(|h| existing.home != h) {
                    let h = u.home.unwrap_or_default();
                    host.run(&account_tool(root, "usermod").args(["-d", h, u.name]))?;
                    changes.push(format!("set the home of {} to {h}", u.name));
                }
                let want: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
                if db.supplementary_groups(u.name) != want {
                    host.run(&account_tool(root, "usermod").args(["-G", &list, u.name]))?;
                    changes.push(format!("set the groups of {} to [{list}]", u.name));
                }
            }
        }
    }
    Ok(())
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
        return Err(AccountsError::MissingOwner {
            path,
            user: d.user,
            group: d.group,
            what: if db.uid(d.user).is_none() {
                "user"
            } else {
                "group"
            },
        });
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
    let (fd, md) = match fs.open_node(shown) {
        Ok(Some(n)) => n,
        // Missing, a link or not a regular file: not ours to change.
        Ok(None) | Err(SafeFsError::Link { .. }) | Err(SafeFsError::NotRegular { .. }) => {
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if md.kind != FileKind::File {
        return Ok(());
    }
    if md.mode & 0o111 != 0o111 {
        safefs::set_mode(&fd, md.mode | 0o111).map_err(|source| AccountsError::Io {
            path: fs.full(shown),
            source,
        })?;
        changes.push(format!("made {shown} executable"));
    }
    Ok(())
}

fn ensure_executables(
    root: &Path,
    fs: &Root,
    spec: &Spec,
    changes: &mut Changes,
) -> Result<(), AccountsError> {
    for e in &spec.executables {
        add_exec(fs, e, changes)?;
    }
    for dir in &spec.executable_dirs {
        let Ok(Some(d)) = fs.open_dir(dir) else {
            continue;
        };
        for n in d.names()? {
            let Some(n) = n.to_str() else { continue };
            add_exec(fs, &format!("{dir}/{n}"), changes)?;
        }
    }
    for lib in &spec.libraries {
        // These are symlinks to the versioned library: follow them, as chmod does.
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
