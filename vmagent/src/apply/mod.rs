//! Carry out a [`Plan`]: accounts and permissions (through [`crate::accounts::carry_out`]),
//! directories, then every file written atomically (an exclusive temp file
//! beside it, owner and mode set before the first byte, fsync, rename; a mode/owner-only change
//! is made through the file's descriptor), removals, then the
//! service actions through the [`Host`] ([`services`]): enable/disable, one `daemon-reload`,
//! stop and restart of exactly the services the plan names, each verb batched into one
//! `systemctl` call. With `--root` other than `/`, units are enabled and disabled offline
//! (`systemctl --root`) and nothing is started or stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;

use crate::deferred::{self, Deferred};
use crate::host::{Host, HostError};
use crate::plan::{FileChange, Plan};
use crate::render::Desired;
use crate::safefs::{Dir, Perm, Root, SafeFsError};

mod services;

/// Whether to run service actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    Systemd,
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Account and permission changes, one line each (`created user zot`).
    pub accounts: Vec<String>,
    pub written: Vec<String>,
    pub removed: Vec<String>,
    /// Service commands run, e.g. `restart containerd.service`.
    pub actions: Vec<String>,
    /// Service commands that failed (the apply goes on and reports them at the end).
    pub failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot write: {0}")]
    Write(#[from] SafeFsError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Accounts(#[from] crate::accounts::AccountsError),
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
    let fs = Root::open(root)?;
    sweep_temps(&fs, desired);
    report.accounts = crate::accounts::carry_out(root, &plan.accounts, host)?;
    for c in &report.accounts {
        log::info!("permissions: {c}");
    }
    for d in &plan.dirs {
        let (mode, user, group) = &desired.dirs[d];
        fs.create_dir_all(d)?;
        fs.set_perm(host, d, Some((user, group)), Some(*mode))?;
    }
    let mut dirs_to_sync = BTreeMap::new();
    for fp in &plan.files {
        match &fp.change {
            FileChange::Remove => {
                if let Some((dir, name)) = existing_parent(&fs, &fp.path)? {
                    dir.remove(name)?;
                    dirs_to_sync.insert(dir.path().to_string(), dir);
                }
                report.removed.push(fp.path.clone());
            }
            FileChange::Update {
                content: false,
                mode,
                owner,
            } => {
                let spec = &desired.files[&fp.path];
                fs.set_perm(
                    host,
                    &fp.path,
                    owner
                        .as_ref()
                        .map(|_| (spec.user.as_str(), spec.group.as_str())),
                    // A chown clears set-id bits: set the mode again after one.
                    (mode.is_some() || owner.is_some()).then_some(spec.mode),
                )?;
                report.written.push(fp.path.clone());
            }
            FileChange::Create | FileChange::Update { .. } => {
                let spec = &desired.files[&fp.path];
                let perm = Perm {
                    mode: spec.mode,
                    owner: Some((&spec.user, &spec.group)),
                };
                let dir = fs.write_file(host, &fp.path, &spec.content, perm)?;
                dirs_to_sync.insert(dir.path().to_string(), dir);
                report.written.push(fp.path.clone());
            }
        }
    }
    for dir in dirs_to_sync.values() {
        dir.sync()?;
    }
    if services == Services::None {
        // Files are in place but systemd was not told: keep every action for the next apply.
        deferred::save(root, &Deferred::from_plan(plan))?;
        return Ok(report);
    }
    let live = root == Path::new("/");
    let remaining = services::run(plan, live, root, host, &mut report);
    deferred::save(root, &remaining)?;
    if !report.failed.is_empty() {
        return Err(ApplyError::Services(report.failed.clone()));
    }
    Ok(report)
}

/// The parent directory of `path` and its last name, when the parent exists.
fn existing_parent<'p>(fs: &Root, path: &'p str) -> Result<Option<(Dir, &'p OsStr)>, SafeFsError> {
    let p = Path::new(path);
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Ok(None);
    };
    Ok(fs.open_dir(&parent.to_string_lossy())?.map(|d| (d, name)))
}

/// Remove temp files that a killed apply left beside managed files (links too, never followed).
/// Failures are logged, not fatal: a leftover temp file is only clutter.
fn sweep_temps(fs: &Root, desired: &Desired) {
    let parents: BTreeSet<&str> = desired
        .files
        .keys()
        .filter_map(|p| Path::new(p).parent().and_then(|d| d.to_str()))
        .collect();
    for parent in parents {
        match fs
            .open_dir(parent)
            .and_then(|d| d.map(|d| d.sweep_temps()).transpose())
        {
            Ok(Some(n)) if n > 0 => {
                log::info!("removed {n} temp files a killed run left in {parent}")
            }
            Ok(_) => {}
            Err(e) => log::warn!("cannot sweep temp files in {parent}: {e}"),
        }
    }
}
