//! Nstance deliveries: certificates, keys and `mutable.env` that nstance-agent drops into
//! `/opt/nstance-agent/recv/` before touching `write-files.last`.
//!
//! One pass ([`recv`]): take the agent lock; remove the trigger first (so a delivery during the
//! pass triggers another); wait out the burst (~1 s); merge `mutable.env` (a refused file leaves
//! the settings untouched and does **not** stop the certificates); install the allow-listed
//! certificates and the agent's keys for them, comparing contents instead of mtimes; then, unless
//! a new trigger arrived meanwhile, the same plan/apply as `vmagent apply`, with every installed
//! path counted as a changed input so exactly the services that read it restart. Changes a pass
//! defers to the next are remembered in `/var/lib/vmagent/pending-changes`.

pub mod mutable;
pub mod pem;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::accounts::Kind;
use crate::apply::{ApplyReport, Services};
use crate::configure::{self, ConfigureError};
use crate::fsutil::{TempFile, under_root};
use crate::host::Host;
use crate::install::{INSTALLED, STATE_DIR};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::settings::MUTABLE_ENV;
use crate::userdb::UserDb;

pub const RECV_DIR: &str = "/opt/nstance-agent/recv";
pub const TRIGGER: &str = "/opt/nstance-agent/recv/write-files.last";
pub const AGENT_KEYS: &str = "/opt/nstance-agent/keys";
const PENDING: &str = "pending-changes";

/// Delivered files every node accepts.
const COMMON: &[&str] = &[
    "ca.crt",
    "ca.pub",
    "containerd.client.crt",
    "kube2iam.client.crt",
    "kubelet.client.crt",
    "kubelet.server.crt",
    "registry.server.crt",
];
/// Delivered files only a control-plane node accepts (a worker has no group or directory for
/// them; upstream failed the whole delivery on `service-accounts.key`).
const KNC_ONLY: &[&str] = &[
    "front-proxy.client.crt",
    "kube-apiserver.client.crt",
    "kube-apiserver.server.crt",
    "kube-controller-manager.client.crt",
    "kube-scheduler.client.crt",
    "netsy.client.crt",
    "netsy.server.crt",
    "service-accounts.key",
    "service-accounts.pub",
];

#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error(transparent)]
    Configure(#[from] ConfigureError),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

/// What happened to a delivered mutable.env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutableOutcome {
    /// None in recv/.
    Absent,
    /// Merged; the settings file changed.
    Merged,
    /// Valid, and already what the settings say.
    Unchanged,
    /// Refused; the settings file was not touched.
    Refused(mutable::MutableError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvOptions {
    /// Wait this long after removing the trigger, so a burst of deliveries is one pass.
    pub debounce: Duration,
    pub services: Services,
}

#[derive(Debug)]
pub struct RecvReport {
    pub mutable: MutableOutcome,
    /// Installed or updated (root-relative paths).
    pub installed: Vec<String>,
    /// Delivered names that were not installed, with why.
    pub skipped: Vec<String>,
    /// The apply, unless a newer delivery deferred it to the next pass.
    pub applied: Option<(Plan, ApplyReport)>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RecvError {
    let path = path.display().to_string();
    move |source| RecvError::Io { what, path, source }
}

/// Where a delivered name goes, and its group.
fn destination(name: &str) -> Option<(String, &'static str)> {
    if name == "service-accounts.key" {
        return Some((
            "/opt/key/kube-apiserver/service-accounts.key".into(),
            "kube-apiserver",
        ));
    }
    if name.ends_with(".crt") {
        return Some((format!("/opt/crt/{name}"), "podplane"));
    }
    if name.ends_with(".pub") {
        return Some((format!("/opt/pub/{name}"), "podplane"));
    }
    None
}

/// Where an agent-generated key `<stem>.key` goes: `/opt/key/<service>/`, group = service
/// (registry → zot's group in /opt/key/registry; front-proxy → kube-apiserver).
pub fn key_destination(stem: &str) -> (String, &'static str) {
    let prefix = stem.split('.').next().unwrap_or(stem);
    let (dir, group): (&str, &'static str) = match prefix {
        "registry" => ("registry", "zot"),
        "front-proxy" => ("kube-apiserver", "kube-apiserver"),
        "containerd" => ("containerd", "containerd"),
        "kube2iam" => ("kube2iam", "kube2iam"),
        "kubelet" => ("kubelet", "kubelet"),
        "kube-apiserver" => ("kube-apiserver", "kube-apiserver"),
        "kube-controller-manager" => ("kube-controller-manager", "kube-controller-manager"),
        "kube-scheduler" => ("kube-scheduler", "kube-scheduler"),
        "netsy" => ("netsy", "netsy"),
        _ => ("podplane", "podplane"),
    };
    (format!("/opt/key/{dir}/{stem}.key"), group)
}

fn allowed(kind: Kind, name: &str) -> bool {
    COMMON.contains(&name) || (kind == Kind::Knc && KNC_ONLY.contains(&name))
}

/// Copy `src` to `dest` (0640 root:`group`) when the content differs. Returns whether it did.
fn install_if_changed(
    root: &Path,
    host: &dyn Host,
    src: &Path,
    dest: &str,
    group: &str,
    db: &UserDb,
) -> Result<bool, RecvError> {
    let full = under_root(root, dest);
    let content = std::fs::read(src).map_err(io("read", src))?;
    let same_content = std::fs::read(&full).is_ok_and(|c| c == content);
    let md = std::fs::symlink_metadata(&full).ok();
    let same_meta = md.as_ref().is_some_and(|m| {
        m.is_file()
            && m.mode() & 0o7777 == 0o640
            && Some(m.uid()) == db.uid("root")
            && Some(m.gid()) == db.gid(group)
    });
    if same_content && same_meta {
        return Ok(false);
    }
    std::fs::create_dir_all(full.parent().expect("has a parent")).map_err(io("create", &full))?;
    let mut t = TempFile::create_for(&full).map_err(io("write", &full))?;
    std::io::Write::write_all(t.file(), &content).map_err(io("write", &full))?;
    t.file()
        .set_permissions(std::fs::Permissions::from_mode(0o640))
        .map_err(io("write", &full))?;
    host.chown(root, t.fd(), t.path(), "root", group)?;
    t.persist().map_err(io("write", &full))?;
    Ok(!same_content || md.is_none())
}

/// Merge a delivered mutable.env into the settings file (0600 root:root, atomic).
fn merge_mutable(root: &Path, host: &dyn Host) -> Result<MutableOutcome, RecvError> {
    let delivered = under_root(root, &format!("{RECV_DIR}/mutable.env"));
    match std::fs::symlink_metadata(&delivered) {
        Ok(md) if md.is_file() => {}
        _ => return Ok(MutableOutcome::Absent),
    }
    let text = std::fs::read_to_string(&delivered).map_err(io("read", &delivered))?;
    let parsed = match mutable::parse(&text) {
        Ok(m) => m,
        Err(e) => return Ok(MutableOutcome::Refused(e)),
    };
    let dest = under_root(root, MUTABLE_ENV);
    let current_text = std::fs::read_to_string(&dest).unwrap_or_default();
    // The current file is ours; read it leniently (an older contract may have had other keys).
    let current = crate::envfile::parse(&current_text, &dest).unwrap_or_default();
    let merged = match mutable::merge(&current, &parsed) {
        Ok(m) => m,
        Err(e) => return Ok(MutableOutcome::Refused(e)),
    };
    if merged == current_text {
        return Ok(MutableOutcome::Unchanged);
    }
    std::fs::create_dir_all(dest.parent().expect("has a parent")).map_err(io("create", &dest))?;
    let mut t = TempFile::create_for(&dest).map_err(io("write", &dest))?;
    std::io::Write::write_all(t.file(), merged.as_bytes()).map_err(io("write", &dest))?;
    t.file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io("write", &dest))?;
    host.chown(root, t.fd(), t.path(), "root", "root")?;
    t.persist().map_err(io("write", &dest))?;
    Ok(MutableOutcome::Merged)
}

/// Install delivered certificates and the agent's keys for them. Returns (installed, skipped).
fn install_certs(
    root: &Path,
    host: &dyn Host,
    kind: Kind,
) -> Result<(Vec<String>, Vec<String>), RecvError> {
    let db = UserDb::load(root).map_err(|e| RecvError::Io {
        what: "read",
        path: e.path.display().to_string(),
        source: e.source,
    })?;
    let mut installed = Vec::new();
    let mut skipped = Vec::new();
    let recv = under_root(root, RECV_DIR);
    let mut names: Vec<String> = match std::fs::read_dir(&recv) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io("read", &recv)(e)),
    };
    names.sort();
    for name in names {
        if name.starts_with('.')
            || name == "write-files.last"
            || name == "mutable.env"
            || name == "errors"
        {
            continue;
        }
        let path = recv.join(&name);
        let md = std::fs::symlink_metadata(&path).map_err(io("read", &path))?;
        if !md.is_file() {
            skipped.push(format!("{name}: not a regular file"));
            continue;
        }
        if !allowed(kind, &name) {
            let why = if KNC_ONLY.contains(&name.as_str()) {
                "control-plane only"
            } else {
                "not an accepted delivery"
            };
            skipped.push(format!("{name}: {why}"));
            continue;
        }
        let Some((dest, group)) = destination(&name) else {
            skipped.push(format!("{name}: no destination"));
            continue;
        };
        if install_if_changed(root, host, &path, &dest, group, &db)? {
            installed.push(dest);
        }
    }
    // Keys the agent generated, next to each certificate now in place.
    let keys = under_root(root, AGENT_KEYS);
    if let Ok(rd) = std::fs::read_dir(&keys) {
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
                .map(str::to_string)
            else {
                continue;
            };
            let cert = format!("{stem}.crt");
            if !allowed(kind, &cert) || !under_root(root, &format!("/opt/crt/{cert}")).exists() {
                continue;
            }
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let (dest, group) = key_destination(&stem);
            if install_if_changed(root, host, &path, &dest, group, &db)? {
                installed.push(dest);
            }
        }
    }
    Ok((installed, skipped))
}

fn read_pending(root: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(under_root(root, &format!("{STATE_DIR}/{PENDING}")))
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn write_pending(root: &Path, set: &BTreeSet<String>) -> Result<(), RecvError> {
    let path = under_root(root, &format!("{STATE_DIR}/{PENDING}"));
    if set.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let text: String = set.iter().map(|p| format!("{p}\n")).collect();
    crate::fsutil::write_atomic(&path, text.as_bytes(), None).map_err(io("write", &path))
}

/// One delivery pass (also the boot reconcile, with no debounce). A refused mutable.env does
/// not fail the pass: it is in the report ([`MutableOutcome::Refused`]) and the caller reports it.
pub fn recv(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
    opts: &RecvOptions,
) -> Result<RecvReport, RecvError> {
    let _lock = configure::lock(root)?;
    let trigger = under_root(root, TRIGGER);
    match std::fs::remove_file(&trigger) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &trigger)(e)),
    }
    std::thread::sleep(opts.debounce);

    let marker = under_root(root, INSTALLED);
    let manifest = Manifest::load(&marker).map_err(ConfigureError::from)?;
    let kind = Kind::parse(&manifest.vmconfig.kind)
        .ok_or_else(|| ConfigureError::Kind(marker.display().to_string()))?;

    let mutable = merge_mutable(root, host)?;
    match &mutable {
        MutableOutcome::Refused(why) => {
            log::error!("delivered mutable.env refused, settings kept: {why}")
        }
        MutableOutcome::Merged => log::info!("merged the delivered mutable.env"),
        _ => {}
    }
    let (installed, skipped) = install_certs(root, host, kind)?;
    for s in &skipped {
        log::info!("delivery skipped: {s}");
    }
    for p in &installed {
        log::info!(path = p.as_str(); "installed {p}");
    }

    let mut changed = read_pending(root);
    changed.extend(installed.iter().cloned());
    let applied = if trigger.exists() {
        // A newer delivery is waiting: its pass reconfigures, with these changes too.
        write_pending(root, &changed)?;
        log::info!("a newer delivery arrived during this pass; reconfiguring in the next one");
        None
    } else {
        write_pending(root, &changed)?;
        let r = configure::apply_locked(root, host, overrides, opts.services, &changed)?;
        write_pending(root, &BTreeSet::new())?;
        Some(r)
    };
    Ok(RecvReport {
        mutable,
        installed,
        skipped,
        applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_key_groups() {
        assert_eq!(
            destination("ca.crt"),
            Some(("/opt/crt/ca.crt".into(), "podplane"))
        );
        assert_eq!(
            destination("ca.pub"),
            Some(("/opt/pub/ca.pub".into(), "podplane"))
        );
        assert_eq!(
            destination("service-accounts.key"),
            Some((
                "/opt/key/kube-apiserver/service-accounts.key".into(),
                "kube-apiserver"
            ))
        );
        assert_eq!(destination("x.json"), None);
        assert_eq!(
            key_destination("registry.server"),
            ("/opt/key/registry/registry.server.key".into(), "zot")
        );
        assert_eq!(
            key_destination("front-proxy.client"),
            (
                "/opt/key/kube-apiserver/front-proxy.client.key".into(),
                "kube-apiserver"
            )
        );
        assert_eq!(
            key_destination("kubelet.server"),
            ("/opt/key/kubelet/kubelet.server.key".into(), "kubelet")
        );
    }

    #[test]
    fn knc_only_names_are_refused_on_workers() {
        assert!(allowed(Kind::Knd, "kubelet.client.crt"));
        assert!(!allowed(Kind::Knd, "service-accounts.key"));
        assert!(!allowed(Kind::Knd, "netsy.server.crt"));
        assert!(allowed(Kind::Knc, "service-accounts.key"));
        assert!(!allowed(Kind::Knc, "evil.crt"));
        assert!(!allowed(Kind::Knc, "write-files.last"));
    }
}
