//! Converging a node: `vmagent plan` and `vmagent apply`. Check the preconditions, run the
//! one-shot bootstrap detection when it is pending, read the three env layers, render the desired
//! state, diff it against the disk and (for apply) carry it out, restarting only what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::accounts;
use crate::apply::{self, ApplyReport, Services};
use crate::contract::Kind;
use crate::deferred;
use crate::envfile;
use crate::facts::{self, FactsError};
use crate::fsutil::{DirLock, under_root};
use crate::host::Host;
use crate::install::{INSTALLED, MANIFEST, STATE_DIR};
use crate::manifest::Manifest;
use crate::plan::{self, Plan};
use crate::render::{self, Desired, Inputs, RenderError};
use crate::safefs::Root;
use crate::settings::{self, NodeSettings, Settings, SettingsError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("install has not finished ({} still exists): run `vmagent install` first", under_root(root, MANIFEST).display())]
    InstallIncomplete { root: std::path::PathBuf },
    #[error("the node is not installed ({} is missing): run `vmagent install` first", under_root(root, INSTALLED).display())]
    NotInstalled { root: std::path::PathBuf },
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestFileError),
    #[error("{0}: the installed manifest's kind must be knd or knc")]
    Kind(String),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    EnvFile(#[from] envfile::EnvFileError),
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error(transparent)]
    Accounts(#[from] accounts::AccountsError),
    #[error(
        "{path}: line {line} is not valid UTF-8; vmagent keeps this file's other lines, so fix or remove that line first"
    )]
    NotText { path: String, line: usize },
    #[error("cannot take the agent lock: {0}")]
    Lock(std::io::Error),
    #[error("cannot record the apply in {path}: {source}")]
    Record {
        path: String,
        source: std::io::Error,
    },
}

/// The largest `/etc/hosts`, `/etc/subuid` or `/etc/subgid` vmagent merges its lines into.
const MAX_MERGED_FILE: u64 = 64 << 20;

/// Everything needed to plan: the desired state and what it came from.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: Kind,
    pub manifest: Manifest,
    pub settings: Settings,
    pub desired: Desired,
    /// The permissions table: accounts, directories, execute bits.
    pub spec: accounts::Spec,
    /// Facts detected now because bootstrap has not run yet (apply writes them first).
    pub pending_bootstrap: Option<BTreeMap<String, String>>,
}

/// Environment values that replace detection (`INSTANCE_IPV4=…`), from the host's environment.
pub fn overrides_from_env(host: &dyn Host) -> BTreeMap<String, String> {
    crate::contract::DetectedKey::ALL
        .iter()
        .filter_map(|k| host.env_var(k.name()).map(|v| (k.name().to_string(), v)))
        .collect()
}

pub fn prepare(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
) -> Result<Prepared, ConfigureError> {
    if under_root(root, MANIFEST).exists() {
        return Err(ConfigureError::InstallIncomplete { root: root.into() });
    }
    let marker = under_root(root, INSTALLED);
    if !marker.exists() {
        return Err(ConfigureError::NotInstalled { root: root.into() });
    }
    let manifest = Manifest::load(&marker)?;
    let kind = Kind::parse(&manifest.vmconfig.kind)
        .ok_or_else(|| ConfigureError::Kind(marker.display().to_string()))?;
    let done = under_root(root, settings::BOOTSTRAP_DONE).exists();
    let (settings, pending_bootstrap) = if done {
        (Settings::load(root)?, None)
    } else {
        let ud_path = under_root(root, settings::USER_DATA_ENV);
        let ud = envfile::read(&ud_path)?.ok_or(SettingsError::Missing { path: ud_path })?;
        let ud_settings = Settings::from_layers([&ud]);
        let facts = facts::detect(root, host, &manifest.vmconfig.kind, &ud_settings, overrides)?;
        let mutable = envfile::read(&under_root(root, settings::MUTABLE_ENV))?.unwrap_or_default();
        (Settings::from_layers([&ud, &facts, &mutable]), Some(facts))
    };
    // These files are merged, not replaced: their other lines are kept as they are. A missing
    // file is empty; one that cannot be read as text is an error (reading it as empty would
    // make apply drop every line vmagent does not manage).
    let fs = Root::open(root).map_err(apply::ApplyError::from)?;
    let read = |p: &str| -> Result<String, ConfigureError> {
        let bytes = fs
            .read(p, MAX_MERGED_FILE)
            .map_err(apply::ApplyError::from)?
            .unwrap_or_default();
        String::from_utf8(bytes).map_err(|e| ConfigureError::NotText {
            path: fs.full(p).display().to_string(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
        })
    };
    let (etc_hosts, subuid, subgid) = (
        read("/etc/hosts")?,
        read("/etc/subuid")?,
        read("/etc/subgid")?,
    );
    // Parsed once; rendering only formats it.
    let typed = NodeSettings::parse(&settings)?;
    let api_lb_addrs = match &typed.kube.api_internal_lb_hostname {
        Some(lb) if kind == Kind::Knd => host.resolve(lb.as_str()),
        _ => vec![],
    };
    let admin = accounts::ssh_keys_configured(root)?;
    let spec = accounts::spec(
        kind,
        admin,
        crate::contract::Arch::parse(&manifest.vmconfig.os.arch)
            .unwrap_or(crate::contract::Arch::Amd64)
            .lib_dir(),
    );
    let mut desired = render::render(&Inputs {
        kind,
        settings: typed,
        manifest: &manifest,
        etc_hosts: &etc_hosts,
        subuid: &subuid,
        subgid: &subgid,
        api_lb_addrs,
        oom_adjust: host.can_lower_oom_scores(),
    })?;
    sudoers(&mut desired, admin);
    Ok(Prepared {
        kind,
        manifest,
        settings,
        desired,
        spec,
        pending_bootstrap,
    })
}

/// What `apply` would do. Writes nothing.
pub fn plan(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
    changed_elsewhere: &BTreeSet<String>,
) -> Result<(Prepared, Plan), ConfigureError> {
    let p = prepare(root, host, overrides)?;
    let mut pl = plan_prepared(root, &p, changed_elsewhere)?;
    if p.pending_bootstrap.is_some() {
        pl.notes.insert(
            0,
            "bootstrap has not run: apply first writes detected.env, mutable.env (defaults) and bootstrap.done".into(),
        );
    }
    Ok((p, pl))
}

/// The admin sudoers file as a managed file: 0440 root:root when SSH keys are configured,
/// otherwise absent. `accounts::ensure` (install, bootstrap) writes it too; here it joins the
/// rendered state, so plan shows it and apply keeps it.
fn sudoers(desired: &mut Desired, admin: bool) {
    if admin {
        desired.file(
            accounts::SUDOERS_ADMIN,
            0o440,
            "root:root",
            accounts::SUDOERS_LINE,
        );
    } else {
        desired.absent.insert(accounts::SUDOERS_ADMIN.to_string());
    }
}

/// The plan for `p`: accounts and permissions (the table, then the identity files), then the
/// desired files and services.
fn plan_prepared(
    root: &Path,
    p: &Prepared,
    changed_elsewhere: &BTreeSet<String>,
) -> Result<Plan, ConfigureError> {
    let mut perms = accounts::plan(root, &p.spec)?;
    let mut notes = Vec::new();
    perms.extend(identity_files(root, &mut notes));
    let mut pl = plan::plan(root, &p.desired, perms, changed_elsewhere)?;
    // Actions an earlier apply could not carry out (`--services none`, a failed restart).
    deferred::load(root).merge_into(&mut pl, &p.desired);
    pl.notes.extend(notes);
    Ok(pl)
}

/// Bootstrap if pending, then plan and apply (accounts and permissions first).
pub fn apply(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
    services: Services,
    changed_elsewhere: &BTreeSet<String>,
) -> Result<(Plan, ApplyReport), ConfigureError> {
    let _lock = lock(root)?;
    apply_locked(root, host, overrides, services, changed_elsewhere)
}

/// Take the agent lock (install, apply and recv serialise on it), waiting up to 5 minutes.
pub fn lock(root: &Path) -> Result<DirLock, ConfigureError> {
    let state = under_root(root, STATE_DIR);
    std::fs::create_dir_all(&state).map_err(ConfigureError::Lock)?;
    DirLock::acquire(&state, "lock", Duration::from_secs(300)).map_err(ConfigureError::Lock)
}

/// [`apply`] for a caller that holds the agent lock.
pub fn apply_locked(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
    services: Services,
    changed_elsewhere: &BTreeSet<String>,
) -> Result<(Plan, ApplyReport), ConfigureError> {
    let p = prepare(root, host, overrides)?;
    if let Some(facts) = &p.pending_bootstrap {
        facts::write_bootstrap(root, facts, &crate::clock::now_utc())?;
    }
    // Bootstrap just wrote the settings files: render again from disk.
    let p = if p.pending_bootstrap.is_some() {
        prepare(root, host, overrides)?
    } else {
        p
    };
    let pl = plan_prepared(root, &p, changed_elsewhere)?;
    let report = apply::apply(root, &p.desired, &pl, host, services)?;
    record(root, &p.desired, &report)?;
    Ok((pl, report))
}

/// The Nstance nonce stays private to the agent: 0600 nstance-agent:nstance-agent, changed
/// through its descriptor (nstance-agent owns the identity directory, so a link may be swapped
/// in; it is never followed). Without a nonce and without an identity certificate the agent can
/// neither register nor authenticate: said in a note, not fatal (the operator may be about to
/// provide one).
fn identity_files(root: &Path, notes: &mut Vec<String>) -> Option<accounts::Change> {
    const NONCE: &str = "/opt/nstance-agent/identity/nonce.jwt";
    let want = (0o600, "nstance-agent", "nstance-agent");
    let fs = Root::open(root).ok()?;
    match fs.open_node(NONCE) {
        Ok(Some((_, md))) if md.kind == crate::safefs::Kind::File => {
            match accounts::plan_private(root, NONCE, want) {
                Ok(change) => return change,
                Err(e) => log::warn!("not securing {NONCE}: {e}"),
            }
        }
        Err(e) => log::warn!("not securing {NONCE}: {e}"),
        Ok(_) => {}
    }
    if !matches!(
        fs.meta("/opt/nstance-agent/identity/identity.crt"),
        Ok(Some(_))
    ) {
        notes.push(
            "neither identity/nonce.jwt nor identity/identity.crt exists: nstance-agent can neither register nor authenticate".into(),
        );
    }
    None
}

/// `/var/lib/vmagent/last-apply.json`: when, what was written, which service actions ran, and
/// the content hash of every managed file (for `status`).
fn record(root: &Path, desired: &Desired, report: &ApplyReport) -> Result<(), ConfigureError> {
    let path = under_root(root, &format!("{STATE_DIR}/last-apply.json"));
    let doc = serde_json::json!({
        "applied_at": crate::clock::now_utc(),
        "accounts": report.accounts,
        "written": report.written,
        "removed": report.removed,
        "actions": report.actions,
        "files": plan::content_hashes(desired),
    });
    let err = |source| ConfigureError::Record {
        path: path.display().to_string(),
        source,
    };
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    crate::fsutil::write_atomic(&path, text.as_bytes(), None).map_err(err)
}
