//! Turn a directory of verified artifacts into an installed node (debs, binaries, tarballs, then
//! the accounts and permissions), crash-safe and idempotent.
//!
//! Order: take the agent lock; recover from a killed run (once no dpkg it left runs: policy-rc.d,
//! interrupted dpkg, temp files); if the installed marker exists, only converge permissions.
//! Otherwise verify every artifact, check every deb and read and check every tarball and every
//! destination (writing nothing: a bad input leaves the root as it was), stage every file beside
//! its destination, install the debs in one `dpkg -i` with services blocked, rename the staged
//! files into place, write the marker last, remove the artifacts, and converge permissions.
//!
//! Files go below directories that service accounts own (`/opt/nstance-agent/bin`,
//! `/opt/kube2iam/bin`), so every write below the root goes through [`crate::safefs`]: no link
//! on the way is followed, and one planted there is refused with an error naming it.

pub mod archive;
pub mod deb;
pub mod rules;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::accounts::{self, AccountsError, Changes};
use crate::contract::Arch;
use crate::contract::Kind;
use crate::fetch::hash::hash_file;
use crate::fsutil::{self, DirLock};
use crate::host::Host;
use crate::manifest::{Manifest, ManifestFileError};
use crate::safefs::{self, SafeFsError};
use archive::{ArchiveError, Checked, Staged};
use deb::DebError;
use rules::{NoRule, Placement};

pub const MANIFEST: &str = "/opt/podplane/share/vmconfig-manifest.json";
pub const MANIFEST_SH: &str = "/opt/podplane/share/vmconfig-manifest.sh";
pub const INSTALLED: &str = "/opt/podplane/share/vmconfig-installed.json";
pub const ARTIFACTS: &str = "/opt/podplane/artifacts";
/// vmagent's own state: its lock, and later its apply records.
pub const STATE_DIR: &str = "/var/lib/vmagent";

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub root: PathBuf,
    /// The manifest to install [default: `<root>/opt/podplane/share/vmconfig-manifest.json`].
    pub manifest: Option<PathBuf>,
    /// The verified artifacts [default: `<root>/opt/podplane/artifacts`].
    pub artifacts: Option<PathBuf>,
    /// Provider filter for the install items; `None`: `PROVIDER_KIND` of user-data.env, if any.
    pub provider: Option<String>,
    /// How long to wait for another vmagent holding the agent lock.
    pub lock_timeout: Duration,
}

impl InstallOptions {
    pub fn new(root: impl Into<PathBuf>) -> InstallOptions {
        InstallOptions {
            root: root.into(),
            manifest: None,
            artifacts: None,
            provider: None,
            lock_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// The marker was there: only permissions were converged.
    pub fast_path: bool,
    /// Repairs of an interrupted earlier run.
    pub recovered: Vec<String>,
    /// Debs given to dpkg.
    pub debs: Vec<String>,
    /// Files put in place (root-relative, e.g. `/usr/bin/kubelet`).
    pub files: Vec<String>,
    /// What the permissions step changed.
    pub permissions: Changes,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot take the agent lock in {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestFileError),
    #[error(
        "{}: its VMCONFIG_MANIFEST_JSON_SHA256 is {expected} but {} hashes to {actual}; the two were not packaged together: refusing to install",
        sh.display(), json.display()
    )]
    Drift {
        sh: PathBuf,
        json: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: no VMCONFIG_MANIFEST_JSON_SHA256=<64 hex> line; refusing to install", sh.display())]
    DriftLine { sh: PathBuf },
    #[error("artifact {key} ({}): {problem}; run `vmagent fetch` first. Nothing was installed", path.display())]
    Artifact {
        key: String,
        path: PathBuf,
        problem: String,
    },
    #[error(transparent)]
    NoRule(#[from] NoRule),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fs(#[from] SafeFsError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    EnvFile(#[from] crate::envfile::EnvFileError),
    #[error(
        "not enough free space for the install in {}: about {needed} bytes needed, {available} available; free space there first. Nothing was installed",
        dir.display()
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("interrupted; the next run picks up where this one stopped")]
    Interrupted,
}

fn check(stop: &AtomicBool) -> Result<(), InstallError> {
    if stop.load(Ordering::SeqCst) {
        Err(InstallError::Interrupted)
    } else {
        Ok(())
    }
}

/// Install the node below `opts.root`. `stop` is polled between steps (set it from a signal
/// handler); every guard restores its state on the way out.
pub fn install(
    host: &dyn Host,
    opts: &InstallOptions,
    stop: &AtomicBool,
) -> Result<InstallReport, InstallError> {
    let root = opts.root.as_path();
    let state = fsutil::under_root(root, STATE_DIR);
    std::fs::create_dir_all(&state).map_err(|source| InstallError::Lock {
        path: state.clone(),
        source,
    })?;
    let _lock = DirLock::acquire(&state, "lock", opts.lock_timeout).map_err(|source| {
        InstallError::Lock {
            path: state.clone(),
            source,
        }
    })?;

    let fs = safefs::Root::open(root)?;

    let mut report = InstallReport {
        recovered: deb::recover(root, host, opts.lock_timeout)?,
        ..InstallReport::default()
    };
    for dir in destination_dirs() {
        match fs
            .open_dir(dir)
            .and_then(|d| d.map(|d| d.sweep_temps()).transpose())
        {
            Ok(Some(n)) if n > 0 => report.recovered.push(format!(
                "removed {n} temp files of an interrupted run in {dir}"
            )),
            Ok(_) => {}
            // A link in the way: the checks below refuse it with the whole story.
            Err(e) => log::warn!("not sweeping {dir} for temp files: {e}"),
        }
    }
    for r in &report.recovered {
        log::warn!("{r}");
    }

    let installed = fsutil::under_root(root, INSTALLED);
    let artifacts = opts
        .artifacts
        .clone()
        .unwrap_or_else(|| fsutil::under_root(root, ARTIFACTS));
    if fs.meta(INSTALLED)?.is_some() {
        // Already installed: converge permissions only.
        let m = Manifest::load(&installed)?;
        remove_dir(&artifacts)?;
        report.fast_path = true;
        report.permissions = permissions(root, &m, host)?;
        return Ok(report);
    }

    let manifest_path = opts
        .manifest
        .clone()
        .unwrap_or_else(|| fsutil::under_root(root, MANIFEST));
    let bytes = std::fs::read(&manifest_path).map_err(|source| {
        crate::manifest::ManifestError::Read {
            path: manifest_path.clone(),
            source,
        }
        .in_file(&manifest_path)
    })?;
    let manifest = Manifest::from_slice(&bytes, &manifest_path)?;
    drift_check(&manifest_path, &bytes)?;

    let provider = match &opts.provider {
        Some(p) => Some(p.clone()),
        None => crate::envfile::read(&fsutil::under_root(root, crate::settings::USER_DATA_ENV))?
            .and_then(|env| {
                env.get(crate::contract::UserDataKey::ProviderKind.name())
                    .cloned()
            })
            .filter(|p| !p.is_empty()),
    };
    let items = manifest.install_items(provider.as_deref());

    // 1. Everything verified and every rule known before anything is touched.
    let mut plan = Vec::new();
    for item in &items {
        let placement = rules::placement(item)?;
        if placement == Placement::SelfPackage {
            continue;
        }
        let path = artifacts.join(item.local_name());
        verify(&item.key, &path, item)?;
        plan.push((item, placement, path));
    }
    check(stop)?;

    // 2. Every deb and every archive read and checked, every destination reachable without a
    //    link, and room for it all: still nothing written.
    let mut steps = Vec::new();
    for (item, placement, path) in &plan {
        let step = match placement {
            Placement::Deb => {
                deb::check(path)?;
                Step::Deb(path.clone())
            }
            Placement::Binary(dest) => {
                archive::check_dest(&fs, dest)?;
                Step::Binary {
                    src: path.clone(),
                    dest: dest.clone(),
                }
            }
            Placement::Tarball(rule) => Step::Tarball(archive::check(path, &item.key, rule, &fs)?),
            Placement::SelfPackage => continue,
        };
        let space = match (&step, placement) {
            (Step::Deb(_), _) => ("/usr".to_string(), item.size.saturating_mul(3)),
            (Step::Binary { dest, .. }, _) => (dest.clone(), item.size),
            (Step::Tarball(c), Placement::Tarball(rule)) => {
                let dir = match rule.members {
                    Some(list) => list.first().map(|(_, d)| *d).unwrap_or(rule.dir),
                    None => rule.dir,
                };
                (dir.to_string(), c.bytes)
            }
            _ => continue,
        };
        steps.push((step, space));
        check(stop)?;
    }
    space_check(root, steps.iter().map(|(_, s)| s))?;
    // Another dpkg (apt) running: wait before staging, so a timeout leaves nothing behind.
    if steps.iter().any(|(s, _)| matches!(s, Step::Deb(_))) {
        deb::wait_for_dpkg(root, opts.lock_timeout)?;
    }
    check(stop)?;

    // 3. Stage every file beside its destination.
    let mut staged = Staged::default();
    let mut debs = Vec::new();
    for (step, _) in &steps {
        match step {
            Step::Deb(path) => debs.push(path.clone()),
            Step::Binary { src, dest } => {
                let mut f = std::fs::File::open(src).map_err(|source| InstallError::Read {
                    path: src.clone(),
                    source,
                })?;
                staged
                    .files
                    .push(archive::stage_file(&mut f, dest, 0o755, &fs, host)?);
            }
            Step::Tarball(c) => staged.files.extend(archive::stage(c, &fs, host)?.files),
        }
        check(stop)?;
    }

    // 4. Debs, with services blocked.
    deb::install(root, &debs, host, opts.lock_timeout)?;
    report.debs = debs
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    check(stop)?;

    // 5. Files into place.
    report.files = staged.commit()?;

    // 6. The marker, last; then the staging directory.
    fs.write_file(
        host,
        INSTALLED,
        &bytes,
        safefs::Perm {
            mode: 0o644,
            owner: None,
        },
    )?
    .sync()?;
    if manifest_path == fsutil::under_root(root, MANIFEST) {
        let _ = std::fs::remove_file(&manifest_path);
    }
    remove_dir(&artifacts)?;
    log::info!(kind = manifest.vmconfig.kind.as_str(), debs = report.debs.len(), files = report.files.len();
        "installed {} {}: {} debs, {} files", manifest.vmconfig.kind, manifest.vmconfig.version,
        report.debs.len(), report.files.len());

    // 7. Users, groups, directories, modes.
    report.permissions = permissions(root, &manifest, host)?;
    Ok(report)
}

/// Converge users, groups and directories for the manifest's kind.
pub fn permissions(root: &Path, m: &Manifest, host: &dyn Host) -> Result<Changes, InstallError> {
    let kind = Kind::parse(&m.vmconfig.kind).unwrap_or(Kind::Knd);
    let admin = accounts::ssh_keys_configured(root)?;
    let spec = accounts::spec(
        kind,
        admin,
        Arch::parse(&m.vmconfig.os.arch)
            .unwrap_or(Arch::Amd64)
            .lib_dir(),
    );
    let changes = accounts::ensure(root, &spec, host)?;
    for c in &changes {
        log::info!("permissions: {c}");
    }
    Ok(changes)
}

/// One thing to install, checked.
enum Step {
    Deb(PathBuf),
    Binary { src: PathBuf, dest: String },
    Tarball(Checked),
}

/// Is there room for what the plan writes, on every filesystem it writes to? `need` is
/// `(system path written, bytes)`: binaries count their size, tarballs the size of the members
/// they stage (as read by the check), debs three times their size (unpacked by dpkg below
/// /usr). Staged copies and final files share the space: a staged file becomes the final one by
/// rename.
fn space_check<'a>(
    root: &Path,
    need: impl Iterator<Item = &'a (String, u64)>,
) -> Result<(), InstallError> {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    // st_dev -> (a directory on it, bytes needed)
    let mut by_dev: BTreeMap<u64, (PathBuf, u64)> = BTreeMap::new();
    for (dest, bytes) in need {
        let existing = nearest_existing(&fsutil::under_root(root, dest));
        let Ok(md) = std::fs::metadata(&existing) else {
            continue;
        };
        let e = by_dev.entry(md.dev()).or_insert((existing, 0));
        e.1 += bytes;
    }
    for (_, (dir, needed)) in by_dev {
        let available = fsutil::available_bytes(&dir).map_err(|source| InstallError::Read {
            path: dir.clone(),
            source,
        })?;
        if needed > available {
            return Err(InstallError::NoSpace {
                dir,
                needed,
                available,
            });
        }
    }
    Ok(())
}

/// The closest ancestor of `p` (or `p` itself) that exists.
fn nearest_existing(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    while std::fs::symlink_metadata(&cur).is_err() {
        if !cur.pop() {
            return PathBuf::from("/");
        }
    }
    cur
}

/// Directories that receive staged files (swept for temp files of killed runs).
fn destination_dirs() -> &'static [&'static str] {
    &[
        "/usr/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/opt/cni/bin",
        "/opt/netsy/bin",
        "/opt/nstance-agent/bin",
        "/opt/kube2iam/bin",
        "/usr/sbin",
        "/opt/podplane/share",
    ]
}

fn verify(key: &str, path: &Path, item: &crate::manifest::InstallItem) -> Result<(), InstallError> {
    let problem = |p: String| InstallError::Artifact {
        key: key.to_string(),
        path: path.to_path_buf(),
        problem: p,
    };
    let md = std::fs::symlink_metadata(path).map_err(|e| problem(e.to_string()))?;
    if !md.is_file() {
        return Err(problem("not a regular file".into()));
    }
    if item.size > 0 && md.len() != item.size {
        return Err(problem(format!(
            "{} bytes, the manifest pins {}",
            md.len(),
            item.size
        )));
    }
    let (d, _) = hash_file(path, item.digest.algorithm).map_err(|e| problem(e.to_string()))?;
    if d != item.digest {
        return Err(problem(format!(
            "digest {d}, the manifest pins {}",
            item.digest
        )));
    }
    Ok(())
}

/// If the manifest's shell rendering (`vmconfig-manifest.sh`) sits beside it, its
/// `VMCONFIG_MANIFEST_JSON_SHA256` must be the JSON's sha256.
fn drift_check(json: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let sh = json.with_file_name("vmconfig-manifest.sh");
    let Ok(text) = std::fs::read_to_string(&sh) else {
        return Ok(());
    };
    let expected = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("VMCONFIG_MANIFEST_JSON_SHA256="))
        .map(|v| {
            v.trim()
                .trim_matches('\'')
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| InstallError::DriftLine { sh: sh.clone() })?;
    let mut h = crate::fetch::hash::Hasher::new(crate::manifest::Algorithm::Sha256);
    h.update(bytes);
    let actual = h.finish().hex;
    if actual != expected {
        return Err(InstallError::Drift {
            sh,
            json: json.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<(), InstallError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(InstallError::Write {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
