//! Carry out a [`Plan`]: directories, then every file written atomically (temp file beside it,
//! mode, owner, fsync, rename; a mode/owner-only change is made in place), removals, then the
//! service actions through the [`Host`]: `daemon-reload` when a unit changed, enable/disable, and
//! restart/stop of exactly the services the plan names. With `--root` other than `/`, units are
//! enabled and disabled offline (`systemctl --root`) and nothing is started or stopped.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fsutil::{self, TempFile, under_root};
use crate::host::{Cmd, Host, HostError};
use crate::plan::{Action, FileChange, Plan};
use crate::render::Desired;

/// Whether to run service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    Systemd,
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub written: Vec<String>,
    pub removed: Vec<String>,
    /// Service commands run, e.g. `restart containerd.service`.
    pub actions: Vec<String>,
    /// Service commands that failed (the apply goes on and reports them at the end).
    pub failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{} service actions failed: {}", .0.len(), .0.join("; "))]
    Services(Vec<String>),
}

pub fn apply(
    root: &Path,
    desired: &Desired,
    plan: &Plan,
    host: &dyn Host,
    services: Services,
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    for d in &plan.dirs {
        let (mode, user, group) = &desired.dirs[d];
        let full = under_root(root, d);
        let werr = |source| ApplyError::Write {
            path: d.clone(),
            source,
        };
        std::fs::create_dir_all(&full).map_err(werr)?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode)).map_err(werr)?;
        host.chown(root, &full, user, group)?;
    }
    let mut dirs_to_sync = BTreeSet::new();
    for fp in &plan.files {
        let full = under_root(root, &fp.path);
        let werr = |source| ApplyError::Write {
            path: fp.path.clone(),
            source,
        };
        match &fp.change {
            FileChange::Remove => {
                std::fs::remove_file(&full).map_err(werr)?;
                report.removed.push(fp.path.clone());
            }
            FileChange::Update {
                content: false,
                mode,
                owner,
            } => {
                let spec = &desired.files[&fp.path];
                if mode.is_some() {
                    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(spec.mode))
                        .map_err(werr)?;
                }
                if owner.is_some() {
                    host.chown(root, &full, &spec.user, &spec.group)?;
                }
                report.written.push(fp.path.clone());
            }
            FileChange::Create | FileChange::Update { .. } => {
                let spec = &desired.files[&fp.path];
                let parent = full.parent().expect("managed paths have a parent");
                std::fs::create_dir_all(parent).map_err(werr)?;
                let mut t = TempFile::create_for(&full).map_err(werr)?;
                std::io::Write::write_all(t.file(), &spec.content).map_err(werr)?;
                t.file()
                    .set_permissions(std::fs::Permissions::from_mode(spec.mode))
                    .map_err(werr)?;
                host.chown(root, t.path(), &spec.user, &spec.group)?;
                t.persist(&full).map_err(werr)?;
                dirs_to_sync.insert(parent.to_path_buf());
                report.written.push(fp.path.clone());
            }
        }
    }
    for d in dirs_to_sync {
        fsutil::fsync_dir(&d).map_err(|source| ApplyError::Write {
            path: d.display().to_string(),
            source,
        })?;
    }
    if services == Services::None {
        return Ok(report);
    }
    let live = root == Path::new("/");
    let systemctl = |args: &[&str]| {
        let mut c = Cmd::new("systemctl");
        if !live {
            c = c.arg(format!("--root={}", root.display()));
        }
        c.args(args.iter().copied())
    };
    if plan.daemon_reload && live {
        host.run(&systemctl(&["daemon-reload"]))?;
        report.actions.push("daemon-reload".into());
    }
    for s in &plan.services {
        for a in &s.actions {
            let verb = a.to_string();
            // Enabling is offline-safe; starting and stopping needs the running system.
            if !live && matches!(a, Action::Restart | Action::Stop) {
                continue;
            }
            match host.run(&systemctl(&[&verb, &s.unit])) {
                Ok(_) => report.actions.push(format!("{verb} {}", s.unit)),
                Err(e) => {
                    log::error!(unit = s.unit.as_str(); "{verb} {} failed: {e}", s.unit);
                    report.failed.push(format!("{verb} {}: {e}", s.unit));
                }
            }
        }
    }
    if !report.failed.is_empty() {
        return Err(ApplyError::Services(report.failed.clone()));
    }
    Ok(report)
}
