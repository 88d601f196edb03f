//! The dependency cache (`podplane deps`), vmconfig part: the published node manifest and the
//! artifacts it pins, downloaded with vmagent's engine (parallel, verified by digest, resumable)
//! into the cache layout other commands read:
//!
//! ```text
//! <deps>/vmconfig/manifests/vmconfig_<kind>_debian-13_<arch>.json              latest, annotated
//! <deps>/vmconfig/manifests/vmconfig_<kind>_debian-13_<arch>_<UTC>_<sha12>.json   history
//! <deps>/vmconfig/artifacts/<name>/<version>/<basename(url)>                 (OS image: "os-image")
//! ```
//! `<deps>` is `$PODPLANE_DEPS_CACHE_DIR`, else `$XDG_CACHE_HOME/podplane/deps`, else
//! `~/.cache/podplane/deps`; the published manifests come from `$PODPLANE_DEPS_URL`
//! (default `https://deps.podplane.dev`).
//!
//! The deps server is not trusted with paths: `<name>`, `<version>` and `<basename(url)>` come
//! from the manifest it serves, so each is checked to be a single safe path component
//! ([`vmagent::manifest::check_name`]) before a path is built from it, and every artifact path
//! stays below `<deps>/vmconfig/artifacts`.

pub mod catalog;
pub mod check;
pub mod git;
pub mod images;
pub mod parts;

use std::io::Write;
use std::path::{Path, PathBuf};

use vmagent::contract::{Arch, Kind, Provider};
use vmagent::fetch::{self, FetchOptions, GetError, Target};
use vmagent::manifest::{Dependency, Digest, Manifest, NameError, check_name, url_basename};

pub const DEFAULT_DEPS_URL: &str = "https://deps.podplane.dev";

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("unsupported arch {0:?} (use amd64 or arm64)")]
    Arch(String),
    #[error("unsupported node kind {0:?} (use knc or knd)")]
    Kind(String),
    #[error(
        "{name}: its {what} {value:?} {source}; it would be a path in the deps cache, so it must be a single path component: fix the manifest or the deps server"
    )]
    UnsafeName {
        name: String,
        what: &'static str,
        value: String,
        #[source]
        source: NameError,
    },
    #[error("{0}: the name is taken by the OS image; rename the dependency in the manifest")]
    ReservedName(String),
    #[error(transparent)]
    Get(#[from] GetError),
    #[error(transparent)]
    Manifest(#[from] vmagent::manifest::ManifestFileError),
    #[error("published vmconfig manifest contains unreleased vmconfig stub")]
    Stub,
    #[error("{what} for {name}")]
    Item { name: String, what: &'static str },
    #[error(transparent)]
    Download(#[from] fetch::FetchError),
    #[error(transparent)]
    Image(#[from] images::ImageError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error("{source_name}: at {path}: {reason}; fix the manifest or the deps server")]
    Parse {
        source_name: String,
        path: String,
        reason: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the cache is and where published manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deps {
    pub base_url: String,
    pub dir: PathBuf,
}

impl Deps {
    pub fn from_env() -> Deps {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let dir = env("PODPLANE_DEPS_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                env("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from(".cache"))
                    .join("podplane/deps")
            });
        Deps {
            base_url: env("PODPLANE_DEPS_URL").unwrap_or_else(|| DEFAULT_DEPS_URL.into()),
            dir,
        }
    }

    pub fn manifest_url(&self, kind: &str, arch: &str) -> String {
        format!(
            "{}/manifests/vmconfig_{kind}_debian-13_{arch}.json",
            self.base_url.trim_end_matches('/')
        )
    }

    pub fn manifest_path(&self, kind: &str, arch: &str) -> PathBuf {
        self.dir.join(format!(
            "vmconfig/manifests/vmconfig_{kind}_debian-13_{arch}.json"
        ))
    }

    /// The directory every artifact is kept below.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join("vmconfig/artifacts")
    }

    /// `<deps>/vmconfig/artifacts/<name>/<version>/<basename(url)>`, built only from components
    /// that passed [`check_name`], so it never leaves [`Deps::artifacts_dir`].
    pub fn artifact_path(&self, name: &str, dep: &Dependency) -> Result<PathBuf, DepsError> {
        let basename = url_basename(&dep.url);
        let mut path = self.artifacts_dir();
        for (what, value) in [
            ("name", name),
            ("version", dep.version.as_str()),
            ("URL's file name", basename),
        ] {
            check_name(value).map_err(|source| DepsError::UnsafeName {
                name: name.to_string(),
                what,
                value: value.to_string(),
                source,
            })?;
            path.push(value);
        }
        debug_assert!(path.starts_with(self.artifacts_dir()));
        Ok(path)
    }
}

/// Providers whose artifacts a cluster needs: its providers' kinds, its DNS providers' kinds,
/// and the ones its secrets providers imply (aws → aws, gcp/google → gcp, proxmox → openbao).
pub fn cluster_providers(cfg: &crate::config::ClusterConfig) -> Vec<String> {
    let c = &cfg.cluster;
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !p.is_empty() && !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    };
    for p in &c.providers {
        add(&p.kind);
        if p.kind == Provider::Proxmox.name() {
            add("openbao");
        }
    }
    for d in &c.domains {
        if let Some(p) = &d.provider {
            add(&p.kind);
        }
    }
    for s in c.secrets.providers.values() {
        match s.kind.as_str() {
            "aws" => add("aws"),
            "gcp" | "google" => add("gcp"),
            _ => {}
        }
    }
    out
}

/// A progress line only on a terminal, and not under `CI=true`, `TERM=dumb` or the journal
/// (the rule is shared with vmagent's `fetch`).
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    vmagent::fetch::progress::line_wanted(std::io::stderr().is_terminal(), |k| {
        std::env::var(k).ok()
    })
}

/// The host's arch in Debian's names (`PODPLANE_ARCH` wins).
pub fn host_arch() -> String {
    std::env::var("PODPLANE_ARCH")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            Arch::from_rust(std::env::consts::ARCH)
                .unwrap_or(Arch::Amd64)
                .name()
                .into()
        })
}

pub fn check_arch(a: &str) -> Result<(), DepsError> {
    match Arch::parse(a) {
        Some(_) => Ok(()),
        None => Err(DepsError::Arch(a.into())),
    }
}

pub fn check_kind(k: &str) -> Result<(), DepsError> {
    match Kind::parse(k) {
        Some(_) => Ok(()),
        None => Err(DepsError::Kind(k.into())),
    }
}

/// What the cache keeps: the OS image (as `os-image`) and every dependency but the unreleased
/// stub, provider-neutral ones always, provider-specific ones when selected (`all` = every one).
pub fn download_items(
    m: &Manifest,
    providers: &[String],
) -> Result<Vec<(String, Dependency)>, DepsError> {
    let all = providers.iter().any(|p| p == "all");
    let mut out = Vec::new();
    if let Some(img) = &m.vmconfig.os.image {
        out.push(("os-image".to_string(), img.clone()));
    }
    for (name, dep) in &m.vmconfig.dependencies {
        if dep.is_unreleased_stub(name) {
            continue;
        }
        if name == "os-image" && m.vmconfig.os.image.is_some() {
            return Err(DepsError::ReservedName(name.clone()));
        }
        let neutral = dep.providers.iter().all(|p| p.trim().is_empty());
        let wanted = neutral
            || all
            || providers
                .iter()
                .any(|p| vmagent::manifest::provider_matches(&dep.providers, p));
        if wanted {
            out.push((name.clone(), dep.clone()));
        }
    }
    for (name, dep) in &out {
        let item = |what| DepsError::Item {
            name: name.clone(),
            what,
        };
        if dep.url.is_empty() {
            return Err(item("missing URL"));
        }
        if Digest::parse(&dep.digest).is_err() {
            return Err(item("invalid digest"));
        }
        if dep.size == 0 {
            return Err(item("missing size"));
        }
    }
    Ok(out)
}

fn in_cache(path: &Path, dep: &Dependency) -> bool {
    let Ok(d) = Digest::parse(&dep.digest) else {
        return false;
    };
    // A file of another size is not worth hashing (nor is a huge one).
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == dep.size) {
        return false;
    }
    fetch::hash::hash_file(path, d.algorithm).is_ok_and(|(got, len)| got == d && len == dep.size)
}

async fn load(
    deps: &Deps,
    kind: &str,
    arch: &str,
    file: Option<&Path>,
) -> Result<(Manifest, String), DepsError> {
    match file {
        Some(f) => Ok((Manifest::load(f)?, f.display().to_string())),
        None => {
            let (_, m, url) = fetch_published(deps, kind, arch).await?;
            Ok((m, url))
        }
    }
}

/// The published manifest for (kind, arch): its bytes, parsed, and its URL. A manifest that
/// still carries the unreleased stub is refused.
async fn fetch_published(
    deps: &Deps,
    kind: &str,
    arch: &str,
) -> Result<(Vec<u8>, Manifest, String), DepsError> {
    let url = deps.manifest_url(kind, arch);
    let bytes = fetch::get_document(&url, 4).await?;
    let m = Manifest::from_slice(&bytes, Path::new(&url))?;
    if m.vmconfig
        .dependencies
        .iter()
        .any(|(k, d)| d.is_unreleased_stub(k))
    {
        return Err(DepsError::Stub);
    }
    Ok((bytes, m, url))
}

/// The cached manifest's bytes for (kind, arch), fetching and caching the published one
/// first when the cache has none (`cluster create` pins these bytes).
pub async fn ensure_manifest(deps: &Deps, kind: &str, arch: &str) -> Result<Vec<u8>, DepsError> {
    check_kind(kind)?;
    check_arch(arch)?;
    let path = deps.manifest_path(kind, arch);
    match read_capped(&path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(DepsError::Read { path, source }),
    }
    let (bytes, _, _) = fetch_published(deps, kind, arch).await?;
    vmagent::fsutil::write_atomic(&path, &bytes, None)
        .map_err(|source| DepsError::Write { path, source })?;
    Ok(bytes)
}

/// A cached manifest, at most [`vmagent::manifest::MAX_MANIFEST_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let max = vmagent::manifest::MAX_MANIFEST_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes; remove it so it is fetched again"),
        ));
    }
    Ok(bytes)
}

/// `podplane deps download` for one arch (the vmconfig part). Plain progress on `out`.
pub async fn download(
    deps: &Deps,
    kind: &str,
    arch: &str,
    file: Option<&Path>,
    providers: &[String],
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), DepsError> {
    check_kind(kind)?;
    check_arch(arch)?;
    let (mut manifest, source) = load(deps, kind, arch, file).await?;
    let items = download_items(&manifest, providers)?;
    // Every path is built (and its components checked) before anything is written.
    let mut missing: Vec<(&String, &Dependency, PathBuf)> = Vec::new();
    for (name, dep) in &items {
        let path = deps.artifact_path(name, dep)?;
        if !in_cache(&path, dep) {
            missing.push((name, dep, path));
        }
    }
    if dry_run {
        let _ = writeln!(out, "VMConfig manifest: {source}");
        let _ = writeln!(
            out,
            "VMConfig cache directory: {}",
            deps.dir.join("vmconfig").display()
        );
        if missing.is_empty() {
            let _ = writeln!(out, "All dependencies already cached, nothing to download.");
        } else {
            let _ = writeln!(out, "VMConfig artifacts that would be downloaded:");
            for (_, _, path) in &missing {
                let rel = path.strip_prefix(&deps.dir).unwrap_or(path);
                let _ = writeln!(out, "  • {}", rel.display());
            }
        }
        return Ok(());
    }
    for (name, _) in items
        .iter()
        .filter(|i| !missing.iter().any(|m| *m.0 == i.0))
    {
        let _ = writeln!(out, "Found {name} in cache.");
    }
    let mut targets = Vec::new();
    for (name, dep, dest) in &missing {
        let dest = dest.clone();
        let item = |what| DepsError::Item {
            name: (*name).clone(),
            what,
        };
        // Both hold for what download_items and artifact_path let through; say so if not.
        let parent = dest
            .parent()
            .ok_or_else(|| item("no cache directory"))?
            .to_path_buf();
        let digest = Digest::parse(&dep.digest).map_err(|_| item("invalid digest"))?;
        std::fs::create_dir_all(&parent).map_err(|source| DepsError::Write {
            path: parent,
            source,
        })?;
        let _ = writeln!(out, "Downloading {name}...");
        targets.push(Target {
            key: (*name).clone(),
            url: dep.url.clone(),
            digest,
            size: dep.size,
            dest,
        });
    }
    if !targets.is_empty() {
        let mut opts = FetchOptions::new(deps.artifacts_dir());
        opts.concurrency = 4;
        opts.progress = interactive();
        fetch::fetch(targets, &opts).await?;
        for (name, _, _) in &missing {
            let _ = writeln!(out, "Downloaded {name}.");
        }
    }
    // Annotate: every item is now cached.
    for (name, _) in &items {
        if name == "os-image" {
            if let Some(img) = manifest.vmconfig.os.image.as_mut() {
                img.cached = Some(true);
            }
        } else if let Some(d) = manifest.vmconfig.dependencies.get_mut(name) {
            d.cached = Some(true);
        }
    }
    write_manifest(deps, kind, arch, &manifest)?;
    let _ = writeln!(
        out,
        "All dependencies for {kind}_debian-13_{arch} are up to date."
    );
    Ok(())
}

fn write_manifest(deps: &Deps, kind: &str, arch: &str, m: &Manifest) -> Result<(), DepsError> {
    let latest = deps.manifest_path(kind, arch);
    let text = serde_json::to_string_pretty(m).map_err(|e| DepsError::Write {
        path: latest.clone(),
        source: e.into(),
    })? + "\n";
    let mut h = fetch::hash::Hasher::new(vmagent::manifest::Algorithm::Sha256);
    h.update(text.as_bytes());
    let hex = h.finish().hex;
    let stamp = utc_stamp();
    let history = latest.with_file_name(format!(
        "vmconfig_{kind}_debian-13_{arch}_{stamp}_{}.json",
        &hex[..12]
    ));
    for path in [&latest, &history] {
        let err = |source| DepsError::Write {
            path: path.to_path_buf(),
            source,
        };
        vmagent::fsutil::write_atomic(path, text.as_bytes(), None).map_err(err)?;
    }
    Ok(())
}

/// `yyyymmddThhmmssZ`
fn utc_stamp() -> String {
    vmagent::clock::now_utc().replace(['-', ':'], "")
}

/// The manifest with its local `cached` annotations cleared, for comparison.
fn without_annotations(m: &Manifest) -> Manifest {
    let mut m = m.clone();
    if let Some(img) = m.vmconfig.os.image.as_mut() {
        img.cached = None;
    }
    for d in m.vmconfig.dependencies.values_mut() {
        d.cached = None;
    }
    for i in &mut m.vmconfig.images {
        i.cached = None;
    }
    m
}

/// `podplane deps status`: compare the published manifest with the cached one. Never fails.
/// How the cache compares with the published node manifest for one kind and arch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// The cached manifest pins exactly what is published.
    UpToDate,
    /// The published manifest differs from the cached one.
    UpdatesAvailable,
    /// Nothing is cached for this kind and arch yet.
    NotCached,
}

/// The result of `deps status`, for people (`Display`) and scripts (`-o json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    pub kind: String,
    pub arch: String,
    pub state: CacheState,
    /// Where the published manifest was read.
    pub published: String,
    /// The cached manifest's path.
    pub cached: PathBuf,
    /// The other parts: the components and templates manifests and the images.
    pub parts: Vec<check::PartStatus>,
}

impl StatusReport {
    /// Exit status: 0 up to date, 2 when `deps download` would fetch something.
    pub fn exit_code(&self) -> u8 {
        let all_current = self.state == CacheState::UpToDate
            && self.parts.iter().all(|p| p.state == CacheState::UpToDate);
        if all_current { 0 } else { 2 }
    }
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fmt_node(f)?;
        for p in &self.parts {
            let state = match p.state {
                CacheState::UpToDate => "up to date",
                CacheState::UpdatesAvailable => "updates available",
                CacheState::NotCached => "not cached",
            };
            write!(f, "\n{}: {state} ({})", p.part, p.detail)?;
        }
        Ok(())
    }
}

impl StatusReport {
    fn fmt_node(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.state {
            CacheState::UpToDate => f.write_str("No new packages available."),
            CacheState::UpdatesAvailable => f.write_str("New packages are available to download."),
            CacheState::NotCached => write!(
                f,
                "New packages are available to download (nothing cached yet for {} {}; run `podplane deps download`).",
                self.kind, self.arch
            ),
        }
    }
}

/// Compare the published manifest of `kind`/`arch` with the cached one. An error (the server
/// unreachable, a bad manifest) is returned, not folded into the report.
pub async fn status(deps: &Deps, kind: &str, arch: &str) -> Result<StatusReport, DepsError> {
    check_kind(kind)?;
    check_arch(arch)?;
    let (latest, _) = load(deps, kind, arch, None).await?;
    let cached_path = deps.manifest_path(kind, arch);
    let state = if !cached_path.exists() {
        CacheState::NotCached
    } else {
        match Manifest::load(&cached_path) {
            Ok(c) if without_annotations(&c) == without_annotations(&latest) => {
                CacheState::UpToDate
            }
            // An unreadable cached manifest is replaced by the next download.
            _ => CacheState::UpdatesAvailable,
        }
    };
    Ok(StatusReport {
        kind: kind.to_string(),
        arch: arch.to_string(),
        state,
        published: deps.manifest_url(kind, arch),
        cached: cached_path,
        parts: check::parts_status(deps).await?,
    })
}
