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
//!
//! recv runs as root while nstance-agent, which owns `recv/` and `keys/`, may be hostile: it can
//! swap any delivered name for a link or a FIFO at any moment, or replace either directory with a
//! link. So each directory is opened once without following a link, and each delivered file is
//! opened once relative to it with `O_NOFOLLOW | O_NONBLOCK`, checked on that descriptor (regular
//! file, one link, size cap), read from it, checked as PEM of the kind its name promises and only
//! then written, owner and mode set before the first byte, atomically. A file that fails any of
//! that is skipped with its reason in the pass's outcome; the others still install.

pub mod mutable;
pub mod pem;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::apply::{ApplyReport, Services};
use crate::contract::Kind;
use crate::contract::certs;
use crate::converge::{self, ConfigureError};
use crate::host::Host;
use crate::install::{INSTALLED, STATE_DIR};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::safefs::{self, Dir, Kind as FileKind, Perm, Root, SafeFsError};
use crate::settings::MUTABLE_ENV;
use crate::userdb::UserDb;
use pem::{PemError, PemKind};

pub const RECV_DIR: &str = "/opt/nstance-agent/recv";
pub const TRIGGER: &str = "/opt/nstance-agent/recv/write-files.last";
pub const AGENT_KEYS: &str = "/opt/nstance-agent/keys";
const TRIGGER_NAME: &str = "write-files.last";
const MUTABLE_NAME: &str = "mutable.env";
const PENDING: &str = "pending-changes";

/// The most a delivered certificate, public key or private key may hold (a CA bundle of a few
/// dozen certificates fits).
pub const MAX_PEM: u64 = 64 * 1024;
/// The most a delivered mutable.env may hold (the contract's keys at their longest fit).
pub const MAX_MUTABLE_ENV: u64 = 256 * 1024;
/// The most the pending-changes state file may hold (a few dozen paths in practice).
const MAX_PENDING: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error(transparent)]
    Configure(#[from] ConfigureError),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error(transparent)]
    SafeFs(#[from] SafeFsError),
}

/// Why one delivered file was not installed. The others still are.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A link, not a regular file, too large, unreadable.
    #[error("{0}")]
    File(#[source] SafeFsError),
    #[error(
        "{path} has {links} hard links; a delivery must be a file of its own (a hard link can name a file that is not the agent's): write it afresh"
    )]
    HardLinked { path: String, links: u64 },
    #[error("{path}: {source}; the installed copy, if any, is kept")]
    Pem {
        path: String,
        #[source]
        source: PemError,
    },
    #[error("cannot install it as {dest}: {source}")]
    Install {
        dest: String,
        #[source]
        source: SafeFsError,
    },
}

/// Why a delivered mutable.env was refused. The settings file is untouched.
#[derive(Debug, thiserror::Error)]
pub enum MutableRefused {
    #[error(
        "{source}; the delivered mutable.env must be a regular file of at most {MAX_MUTABLE_ENV} bytes"
    )]
    Unreadable {
        path: String,
        #[source]
        source: DeliveryError,
    },
    #[error("{path}: {source}; fix it and deliver mutable.env again")]
    Invalid {
        path: String,
        #[source]
        source: mutable::MutableError,
    },
    #[error("the current settings {path} cannot be read: {source}")]
    Current {
        path: String,
        #[source]
        source: SafeFsError,
    },
}

/// What happened to a delivered mutable.env.
#[derive(Debug)]
pub enum MutableOutcome {
    /// None in recv/.
    Absent,
    /// Merged; the settings file changed.
    Merged,
    /// Valid, and already what the settings say.
    Unchanged,
    /// Refused; the settings file was not touched.
    Refused(MutableRefused),
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

/// Whether a node of `kind` takes the delivered file `name` (the table in
/// [`crate::contract::certs`]).
pub fn allowed(kind: Kind, name: &str) -> bool {
    certs::accepted(kind, name).is_some()
}

/// Read a delivered file once, through one descriptor opened relative to its directory with
/// `O_NOFOLLOW | O_NONBLOCK`: a link is refused by the kernel, a FIFO or device by `fstat` on
/// that same descriptor, and a swap after the open changes nothing we read. At most `max`
/// bytes. `Ok(None)` when it is gone.
fn read_delivered(dir: &Dir, name: &OsStr, max: u64) -> Result<Option<Vec<u8>>, DeliveryError> {
    let shown = format!("{}/{}", dir.path(), name.to_string_lossy());
    let Some((file, meta)) = dir.open_file(name).map_err(DeliveryError::File)? else {
        return Ok(None);
    };
    let links = rustix::fs::fstat(&file)
        .map_err(|e| {
            DeliveryError::File(SafeFsError::Io {
                path: shown.clone(),
                source: e.into(),
            })
        })?
        .st_nlink as u64;
    if links > 1 {
        return Err(DeliveryError::HardLinked { path: shown, links });
    }
    safefs::read_capped(file, meta.size, max, &shown)
        .map(Some)
        .map_err(DeliveryError::File)
}

/// Write `content` to `dest` (0640 root:`group`, owner and mode set before the first byte)
/// unless it is already there with that owner and mode. Returns whether the content changed.
fn install_if_changed(
    fs: &Root,
    host: &dyn Host,
    content: &[u8],
    dest: &str,
    group: &str,
    db: &UserDb,
) -> Result<bool, SafeFsError> {
    // Read no more than the new content: anything longer differs anyway. A link or anything
    // odd at the destination counts as different and is replaced (the rename replaces the name,
    // never what it points at).
    let current = match fs.open_file(dest) {
        Ok(Some((f, meta))) => {
            let same = safefs::read_capped(f, meta.size, content.len() as u64, dest)
                .is_ok_and(|c| c == content);
            Some((same, meta))
        }
        _ => None,
    };
    let same_meta = current.is_some_and(|(_, m)| {
        m.kind == FileKind::File
            && m.mode == 0o640
            && Some(m.uid) == db.uid("root")
            && Some(m.gid) == db.gid(group)
    });
    let same_content = current.is_some_and(|(same, _)| same);
    if same_content && same_meta {
        return Ok(false);
    }
    let dir = fs.write_file(
        host,
        dest,
        content,
        Perm {
            mode: 0o640,
            owner: Some(("root", group)),
        },
    )?;
    dir.sync()?;
    Ok(!same_content)
}

/// What installing a delivered file needs.
struct Installer<'a> {
    fs: &'a Root,
    host: &'a dyn Host,
    db: &'a UserDb,
}

impl Installer<'_> {
    /// Read, check and install one delivered file. `Ok(None)` when it vanished meanwhile.
    fn deliver(
        &self,
        dir: &Dir,
        name: &OsStr,
        kind: PemKind,
        dest: &str,
        group: &str,
    ) -> Result<Option<bool>, DeliveryError> {
        let Some(content) = read_delivered(dir, name, MAX_PEM)? else {
            return Ok(None);
        };
        pem::check(kind, &content).map_err(|source| DeliveryError::Pem {
            path: format!("{}/{}", dir.path(), name.to_string_lossy()),
            source,
        })?;
        install_if_changed(self.fs, self.host, &content, dest, group, self.db)
            .map(Some)
            .map_err(|source| DeliveryError::Install {
                dest: dest.to_string(),
                source,
            })
    }
}

/// Open a directory nstance-agent owns, never through a link. A directory that cannot be opened
/// safely is reported in `skipped` (its deliveries are not read) and the pass goes on.
fn open_delivery_dir(fs: &Root, path: &str, skipped: &mut Vec<String>) -> Option<Dir> {
    match fs.open_dir(path) {
        Ok(d) => d,
        Err(e) => {
            skipped.push(format!("{path}/: {e}"));
            None
        }
    }
}

/// Merge a delivered mutable.env into the settings file (0600 root:root, atomic).
fn merge_mutable(
    fs: &Root,
    host: &dyn Host,
    recv: Option<&Dir>,
) -> Result<MutableOutcome, RecvError> {
    let Some(recv) = recv else {
        return Ok(MutableOutcome::Absent);
    };
    let path = format!("{RECV_DIR}/{MUTABLE_NAME}");
    let refused = |r| Ok(MutableOutcome::Refused(r));
    let bytes = match read_delivered(recv, OsStr::new(MUTABLE_NAME), MAX_MUTABLE_ENV) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(MutableOutcome::Absent),
        Err(source) => return refused(MutableRefused::Unreadable { path, source }),
    };
    let parsed = match mutable::parse_bytes(&bytes) {
        Ok(m) => m,
        Err(source) => return refused(MutableRefused::Invalid { path, source }),
    };
    let current_bytes = match fs.read(MUTABLE_ENV, MAX_MUTABLE_ENV) {
        Ok(b) => b.unwrap_or_default(),
        Err(source) => {
            return refused(MutableRefused::Current {
                path: MUTABLE_ENV.into(),
                source,
            });
        }
    };
    // The current file is ours; read it leniently (an older contract may have had other keys;
    // one that does not parse is replaced by the contract's defaults and the delivery).
    let current_text = String::from_utf8_lossy(&current_bytes);
    let current = crate::envfile::parse(&current_text, &fs.full(MUTABLE_ENV)).unwrap_or_default();
    let merged = match mutable::merge(&current, &parsed) {
        Ok(m) => m,
        Err(source) => return refused(MutableRefused::Invalid { path, source }),
    };
    if merged.as_bytes() == current_bytes {
        return Ok(MutableOutcome::Unchanged);
    }
    fs.write_file(
        host,
        MUTABLE_ENV,
        merged.as_bytes(),
        Perm {
            mode: 0o600,
            owner: Some(("root", "root")),
        },
    )?
    .sync()?;
    Ok(MutableOutcome::Merged)
}

/// Install delivered certificates and the agent's keys for them. Returns (installed, skipped).
/// One bad file is skipped with its reason; it never stops the others.
fn install_certs(
    fs: &Root,
    host: &dyn Host,
    kind: Kind,
    recv: Option<&Dir>,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>, RecvError> {
    let db = UserDb::load(fs.path()).map_err(|e| RecvError::Io {
        what: "read",
        path: e.path.display().to_string(),
        source: e.source,
    })?;
    let installer = Installer { fs, host, db: &db };
    let mut installed = Vec::new();
    if let Some(dir) = recv {
        let names = match dir.names() {
            Ok(n) => n,
            Err(e) => {
                skipped.push(format!("{RECV_DIR}/: {e}"));
                Vec::new()
            }
        };
        for os in names {
            let name = os.to_string_lossy();
            if name.starts_with('.')
                || name == TRIGGER_NAME
                || name == MUTABLE_NAME
                || name == "errors"
            {
                continue;
            }
            // Names not accepted here are never opened.
            let Some(delivery) = certs::accepted(kind, &name) else {
                let why = if certs::delivery(&name).is_some() {
                    "control-plane only"
                } else {
                    "not an accepted delivery"
                };
                skipped.push(format!("{name}: {why}"));
                continue;
            };
            let Some(pem_kind) = PemKind::for_name(&name) else {
                skipped.push(format!("{name}: no destination"));
                continue;
            };
            let (dest, group) = (delivery.destination(), delivery.group);
            match installer.deliver(dir, &os, pem_kind, &dest, group) {
                Ok(Some(true)) => installed.push(dest),
                Ok(_) => {}
                Err(e) => skipped.push(format!("{name}: {e}")),
            }
        }
    }
    // Keys the agent generated, next to each certificate now in place.
    if let Some(dir) = open_delivery_dir(fs, AGENT_KEYS, skipped) {
        let names = match dir.names() {
            Ok(n) => n,
            Err(e) => {
                skipped.push(format!("{AGENT_KEYS}/: {e}"));
                Vec::new()
            }
        };
        for os in names {
            let name = os.to_string_lossy();
            let Some(stem) = name.strip_suffix(".key") else {
                continue;
            };
            let cert = format!("{stem}.crt");
            // Only certificates whose key the agent generates take one from keys/.
            let key_dest = certs::accepted(kind, &cert).and_then(|d| d.key_destination());
            let Some((dest, group)) = key_dest.filter(|_| !name.starts_with('.')) else {
                continue;
            };
            let has_cert = fs
                .meta(&format!("/opt/crt/{cert}"))
                .is_ok_and(|m| m.is_some_and(|m| m.kind == FileKind::File));
            if !has_cert {
                continue;
            }
            match installer.deliver(&dir, &os, PemKind::PrivateKey, &dest, group) {
                Ok(Some(true)) => installed.push(dest),
                Ok(_) => {}
                Err(e) => skipped.push(format!("{AGENT_KEYS}/{name}: {e}")),
            }
        }
    }
    Ok(installed)
}

fn pending_path() -> String {
    format!("{STATE_DIR}/{PENDING}")
}

/// The changes an earlier pass deferred. The file is root's own, but is still read without
/// following a link, without blocking on a FIFO and with a size cap; one that cannot be read is
/// said and ignored (this pass rewrites it).
fn read_pending(fs: &Root) -> BTreeSet<String> {
    let path = pending_path();
    let bytes = match fs.read(&path, MAX_PENDING) {
        Ok(b) => b.unwrap_or_default(),
        Err(e) => {
            log::warn!("ignoring the deferred changes in {path}, which cannot be read: {e}");
            return BTreeSet::new();
        }
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(String::from)
        .collect()
}

/// Replace pending-changes atomically (a temp file renamed over it), or remove it when empty.
fn write_pending(fs: &Root, host: &dyn Host, set: &BTreeSet<String>) -> Result<(), RecvError> {
    let path = pending_path();
    if set.is_empty() {
        if let Some(dir) = fs.open_dir(STATE_DIR)? {
            dir.remove(OsStr::new(PENDING))?;
        }
        return Ok(());
    }
    let text: String = set.iter().map(|p| format!("{p}\n")).collect();
    fs.write_file(
        host,
        &path,
        text.as_bytes(),
        Perm {
            mode: 0o644,
            owner: None,
        },
    )?
    .sync()?;
    Ok(())
}

/// Is a newer delivery's trigger waiting? Looked up in recv/ without following a link.
fn triggered(fs: &Root) -> bool {
    fs.open_dir(RECV_DIR).ok().flatten().is_some_and(|d| {
        d.meta_of(OsStr::new(TRIGGER_NAME))
            .is_ok_and(|m| m.is_some())
    })
}

/// One delivery pass (also the boot reconcile, with no debounce). A refused mutable.env does
/// not fail the pass: its outcome carries it ([`MutableOutcome::Refused`]) for the caller to show.
pub fn recv(
    root: &Path,
    host: &dyn Host,
    overrides: &BTreeMap<String, String>,
    opts: &RecvOptions,
) -> Result<RecvReport, RecvError> {
    let _lock = converge::lock(root)?;
    let fs = Root::open(root)?;
    let mut skipped = Vec::new();
    // recv/ belongs to nstance-agent: the trigger is removed relative to the directory opened
    // without following a link, never through one.
    match fs.open_dir(RECV_DIR) {
        Ok(Some(dir)) => {
            dir.remove(OsStr::new(TRIGGER_NAME))?;
        }
        Ok(None) => {}
        Err(e) => log::warn!("not removing the trigger: {e}"),
    }
    std::thread::sleep(opts.debounce);

    let marker = crate::fsutil::under_root(root, INSTALLED);
    let manifest = Manifest::load(&marker).map_err(ConfigureError::from)?;
    let kind = Kind::parse(&manifest.vmconfig.kind)
        .ok_or_else(|| ConfigureError::Kind(marker.display().to_string()))?;

    // Opened once after the wait; every delivery is read relative to it.
    let recv_dir = open_delivery_dir(&fs, RECV_DIR, &mut skipped);
    let mutable = merge_mutable(&fs, host, recv_dir.as_ref())?;
    match &mutable {
        MutableOutcome::Refused(why) => {
            log::error!("delivered mutable.env refused, settings kept: {why}")
        }
        MutableOutcome::Merged => log::info!("merged the delivered mutable.env"),
        _ => {}
    }
    let installed = install_certs(&fs, host, kind, recv_dir.as_ref(), &mut skipped)?;
    drop(recv_dir);
    for s in &skipped {
        log::warn!("delivery skipped: {s}");
    }
    for p in &installed {
        log::info!(path = p.as_str(); "installed {p}");
    }

    let mut changed = read_pending(&fs);
    changed.extend(installed.iter().cloned());
    let applied = if triggered(&fs) {
        // A newer delivery is waiting: its pass reconfigures, with these changes too.
        write_pending(&fs, host, &changed)?;
        log::info!("a newer delivery arrived during this pass; reconfiguring in the next one");
        None
    } else {
        write_pending(&fs, host, &changed)?;
        let r = converge::apply_locked(root, host, overrides, opts.services, &changed)?;
        write_pending(&fs, host, &BTreeSet::new())?;
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
    fn knc_only_names_are_refused_on_workers() {
        assert!(allowed(Kind::Knd, "kubelet.client.crt"));
        assert!(!allowed(Kind::Knd, "service-accounts.key"));
        assert!(!allowed(Kind::Knd, "netsy.server.crt"));
        assert!(allowed(Kind::Knc, "service-accounts.key"));
        assert!(!allowed(Kind::Knc, "evil.crt"));
        assert!(!allowed(Kind::Knc, "write-files.last"));
    }
}
