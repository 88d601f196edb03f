//! Diff the desired state against the disk below `--root`: which accounts and permissions to
//! converge (the exact `groupadd`/`useradd`/`usermod` commands, directories, execute bits,
//! private files), which files to create, change or remove (content, mode, owner; secret contents redacted) and which services to enable,
//! disable, restart or stop, each with its reason. Restarts are derived: a service restarts when
//! one of its declared inputs changes in this plan (or is named as changed by the caller, like
//! certificates delivered by Nstance).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::accounts;
use crate::diff::line_diff;
use crate::fsutil::under_root;
use crate::render::{Desired, FileSpec};
use crate::safefs::{self, Root, SafeFsError};
use crate::userdb::{UserDb, UserDbError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileChange {
    Create,
    /// What differs; `content_diff` is `None` for secrets.
    Update {
        content: bool,
        mode: Option<(u32, u32)>,
        owner: Option<(String, String)>,
    },
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FilePlan {
    pub path: String,
    #[serde(flatten)]
    pub change: FileChange,
    /// Changed lines (`-old` / `+new`), for non-secret files.
    pub diff: Option<String>,
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Enable,
    Disable,
    Restart,
    Stop,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Restart => "restart",
            Action::Stop => "stop",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServicePlan {
    pub unit: String,
    pub actions: Vec<Action>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Accounts and permissions, carried out before anything else.
    pub accounts: Vec<accounts::Change>,
    pub dirs: Vec<String>,
    pub files: Vec<FilePlan>,
    pub daemon_reload: bool,
    pub services: Vec<ServicePlan>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.dirs.is_empty()
            && self.files.is_empty()
            && self.services.is_empty()
            && !self.daemon_reload
    }

    /// The restart set of this plan, for tests and reports.
    pub fn restarts(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .filter(|s| s.actions.contains(&Action::Restart))
            .map(|s| s.unit.clone())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    UserDb(#[from] UserDbError),
    #[error(
        "{path} should be owned by {user}:{group}, but that {what} does not exist in the root's account database (run `vmagent install`, which creates the service accounts)"
    )]
    UnknownOwner {
        path: String,
        user: String,
        group: String,
        what: &'static str,
    },
    #[error(
        "{path} is a directory or a symlink; vmagent manages it as a file and never follows links: remove it"
    )]
    NotAFile { path: String },
    #[error(transparent)]
    SafeFs(#[from] SafeFsError),
}

/// Is `unit` enabled below `root`? (Its `[Install] WantedBy=` target has the symlink.)
pub fn is_enabled(root: &Path, unit: &str, unit_content: Option<&[u8]>) -> bool {
    let targets: Vec<String> = unit_content
        .map(|c| {
            String::from_utf8_lossy(c)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("WantedBy="))
                .flat_map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let targets = if targets.is_empty() {
        vec!["multi-user.target".to_string()]
    } else {
        targets
    };
    targets.iter().any(|t| {
        std::fs::symlink_metadata(under_root(
            root,
            &format!("/etc/systemd/system/{t}.wants/{unit}"),
        ))
        .is_ok()
    })
}

/// Diff `desired` against the disk below `root`, after the account and permission changes
/// `accounts` (an owner they create is known to the plan). `changed_elsewhere`: files changed
/// outside this plan that services read (certificates just installed by a delivery).
pub fn plan(
    root: &Path,
    desired: &Desired,
    accounts: Vec<accounts::Change>,
    changed_elsewhere: &BTreeSet<String>,
) -> Result<Plan, PlanError> {
    let db = UserDb::load(root)?;
    let fs = Root::open(root)?;
    let created = accounts::created(&accounts);
    let mut p = Plan {
        accounts,
        notes: desired.notes.clone(),
        ..Plan::default()
    };
    for d in desired.dirs.keys() {
        if fs.meta(d)?.is_none() {
            p.dirs.push(d.clone());
        }
    }
    for (path, spec) in &desired.files {
        if let Some(fp) = diff_file(&fs, path, spec, &db, &created)? {
            p.files.push(fp);
        }
    }
    for path in &desired.absent {
        if fs.meta(path)?.is_some() {
            p.files.push(FilePlan {
                path: path.clone(),
                change: FileChange::Remove,
                diff: None,
                secret: false,
            });
        }
    }
    let changed: BTreeSet<&str> = p
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(changed_elsewhere.iter().map(String::as_str))
        .collect();
    p.daemon_reload = p
        .files
        .iter()
        .any(|f| f.path.starts_with("/etc/systemd/system/"));
    for svc in desired.services.values() {
        let content = desired
            .files
            .get(&format!("/etc/systemd/system/{}", svc.unit))
            .map(|f| f.content.as_slice());
        let enabled_now = is_enabled(root, &svc.unit, content);
        let touched: Vec<&str> = svc
            .inputs
            .iter()
            .map(String::as_str)
            .filter(|i| changed.contains(i))
            .collect();
        let (actions, reason) = match (svc.enabled, enabled_now) {
            (true, false) if svc.enable_only => (vec![Action::Enable], "newly enabled".to_string()),
            (true, true) if svc.enable_only => continue,
            (true, false) => (
                vec![Action::Enable, Action::Restart],
                "newly enabled".to_string(),
            ),
            (true, true) if !touched.is_empty() => (
                vec![Action::Restart],
                format!("inputs changed: {}", touched.join(", ")),
            ),
            (false, true) => (vec![Action::Disable, Action::Stop], "disabled".to_string()),
            _ => continue,
        };
        p.services.push(ServicePlan {
            unit: svc.unit.clone(),
            actions,
            reason,
        });
    }
    Ok(p)
}

/// The largest current file `plan` reads to show a diff. A bigger one (a service may bloat a
/// file it owns) is compared by size and digest only, and replaced without a diff.
pub const MAX_DIFF_READ: u64 = 16 << 20;

fn diff_file(
    fs: &Root,
    path: &str,
    spec: &FileSpec,
    db: &UserDb,
    (new_users, new_groups): &(BTreeSet<String>, BTreeSet<String>),
) -> Result<Option<FilePlan>, PlanError> {
    // An account this plan creates owns nothing yet: its files change owner.
    let known = |user: &str, group: &str| {
        (db.uid(user).is_some() || new_users.contains(user))
            && (db.gid(group).is_some() || new_groups.contains(group))
    };
    if !known(&spec.user, &spec.group) {
        return Err(PlanError::UnknownOwner {
            path: path.into(),
            user: spec.user.clone(),
            group: spec.group.clone(),
            what: if db.uid(&spec.user).is_none() && !new_users.contains(&spec.user) {
                "user"
            } else {
                "group"
            },
        });
    };
    // Opened without following a link anywhere on the way; checked and read from the descriptor.
    let opened = match fs.open_file(path) {
        Ok(o) => o,
        Err(SafeFsError::NotRegular { .. }) => {
            return Err(PlanError::NotAFile { path: path.into() });
        }
        Err(e) => return Err(e.into()),
    };
    let Some((file, md)) = opened else {
        return Ok(Some(FilePlan {
            path: path.into(),
            change: FileChange::Create,
            diff: (!spec.secret).then(|| line_diff("", &String::from_utf8_lossy(&spec.content))),
            secret: spec.secret,
        }));
    };
    // A file of the desired size is always compared byte for byte; a larger one only up to the cap.
    let cap = MAX_DIFF_READ.max(spec.content.len() as u64);
    let current = if md.size <= cap {
        Some(safefs::read_capped(file, md.size, cap, path)?)
    } else {
        None
    };
    let content = current.as_deref() != Some(spec.content.as_slice());
    let mode = (md.mode != spec.mode).then_some((md.mode, spec.mode));
    let owned = db.uid(&spec.user) == Some(md.uid) && db.gid(&spec.group) == Some(md.gid);
    let owner = (!owned).then(|| {
        (
            format!("{}:{}", md.uid, md.gid),
            format!("{}:{}", spec.user, spec.group),
        )
    });
    if !content && mode.is_none() && owner.is_none() {
        return Ok(None);
    }
    let diff = match &current {
        _ if !content || spec.secret => None,
        Some(current) => Some(line_diff(
            &String::from_utf8_lossy(current),
            &String::from_utf8_lossy(&spec.content),
        )),
        None => Some(format!(
            "(the current file has {} bytes, more than the {MAX_DIFF_READ} plan reads: not shown; apply replaces it)\n",
            md.size
        )),
    };
    Ok(Some(FilePlan {
        path: path.into(),
        diff,
        change: FileChange::Update {
            content,
            mode,
            owner,
        },
        secret: spec.secret,
    }))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.accounts {
            writeln!(f, "{a}")?;
        }
        for d in &self.dirs {
            writeln!(f, "create directory {d}")?;
        }
        for fp in &self.files {
            match &fp.change {
                FileChange::Create => writeln!(f, "create {}", fp.path)?,
                FileChange::Remove => writeln!(f, "remove {}", fp.path)?,
                FileChange::Update {
                    content,
                    mode,
                    owner,
                } => {
                    let mut what = Vec::new();
                    if *content {
                        what.push("content".to_string());
                    }
                    if let Some((a, b)) = mode {
                        what.push(format!("mode {a:04o} -> {b:04o}"));
                    }
                    if let Some((a, b)) = owner {
                        what.push(format!("owner {a} -> {b}"));
                    }
                    writeln!(f, "change {} ({})", fp.path, what.join(", "))?;
                }
            }
            if fp.secret && fp.change != FileChange::Remove {
                writeln!(f, "    (secret content not shown)")?;
            } else if let Some(d) = &fp.diff {
                for line in d.lines() {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        if self.daemon_reload {
            writeln!(f, "systemctl daemon-reload")?;
        }
        for s in &self.services {
            let acts: Vec<String> = s.actions.iter().map(ToString::to_string).collect();
            writeln!(f, "{} {} ({})", acts.join("+"), s.unit, s.reason)?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// Per-path content hashes, recorded after an apply (for `status`).
pub fn content_hashes(desired: &Desired) -> BTreeMap<String, String> {
    desired
        .files
        .iter()
        .map(|(p, f)| {
            let mut h = crate::fetch::hash::Hasher::new(crate::manifest::Algorithm::Sha256);
            h.update(&f.content);
            (p.clone(), h.finish().hex)
        })
        .collect()
}
