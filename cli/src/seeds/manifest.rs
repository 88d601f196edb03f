//! The seeds manifest (`<deps url>/manifests/seeds.json`) and the seed cache:
//!
//! ```text
//! <deps>/seeds/manifests/seeds.json                       latest, annotated (`cached`)
//! <deps>/seeds/manifests/seeds_<UTC>_<sha256[:12]>.json   history
//! <deps>/seeds/snapshots/<name>/<seed version>/<file>.netsy
//! ```
//!
//! A published manifest pins every snapshot by URL, sha512 digest and size; snapshots are
//! downloaded with vmagent's fetch engine (verified, resumable, retried), like the node
//! artifacts. A local manifest (`--seeds FILE`, for seed development) may instead name a file
//! relative to itself (`"path": "../recommended.netsy"`), which is copied into the cache; a
//! published manifest may not point at local files. Names, versions and file names from a
//! manifest become path components only after [`check_name`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vmagent::fetch::{self, FetchOptions, GetError, Target};
use vmagent::manifest::{Algorithm, Digest, NameError, check_name, url_basename};

use crate::deps::Deps;

/// The seed names a cluster can use (`none` = no seed).
pub const SEED_NAMES: [&str; 3] = ["recommended", "minimal", "none"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedsManifest {
    pub seeds: Seeds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    /// What `cluster.seed.version` pins (opaque: `1.2.3-1` or `v1.2.3-1`).
    pub version: String,
    /// The platform components version the seeds were made from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub components: String,
    pub snapshots: BTreeMap<String, SnapshotEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SnapshotEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `sha512:<128 hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A file relative to the manifest (local manifests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Local annotation: the snapshot is in the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedsError {
    #[error("seeds manifest {source_name}: {problem}")]
    Manifest {
        source_name: String,
        problem: String,
    },
    #[error("seeds manifest {source_name}: not valid JSON of the seeds schema: {source}")]
    Json {
        source_name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "seeds manifest {source_name}: snapshot {name:?}: its {what} {value:?} {source}; it would be a path in the deps cache, so it must be a single path component: fix the manifest or the deps server"
    )]
    UnsafeName {
        source_name: String,
        name: String,
        what: &'static str,
        value: String,
        #[source]
        source: NameError,
    },
    #[error(transparent)]
    Get(#[from] GetError),
    #[error("downloading seed snapshots: {0}")]
    Download(#[from] fetch::FetchError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "seeds manifest version is {got:?}, want {want:?} (cluster.seed.version): the deps server publishes another seed version; set cluster.seed.version and cluster.seed.digest to the published ones (the wizard does) or point PODPLANE_DEPS_URL at a server that has {want:?}"
    )]
    Version { got: String, want: String },
    #[error(
        "seed snapshot {name:?} was not found in seeds manifest version {version:?} (it has: {have})"
    )]
    NoSnapshot {
        name: String,
        version: String,
        have: String,
    },
    #[error(
        "podplane seed file {} digest is {got}, want {want} (cluster.seed.digest for seed {name:?} version {version:?}); delete the file to fetch it again, or fix cluster.seed.digest",
        path.display()
    )]
    Digest {
        path: PathBuf,
        name: String,
        version: String,
        got: String,
        want: String,
    },
    #[error("cluster.seed.version is required when cluster.seed.name is {0:?}")]
    NoVersion(String),
    #[error(
        "cluster.seed.digest must be a sha512 digest in sha512:<hex> format (got {0:?}); copy it from the seeds manifest"
    )]
    BadPin(String),
}

/// Largest manifest read (it lists two or three snapshots).
const MAX_MANIFEST_BYTES: u64 = vmagent::manifest::MAX_MANIFEST_BYTES;

impl SeedsManifest {
    /// Parses and checks a manifest; `source_name` (URL or file) names it in errors.
    pub fn from_slice(bytes: &[u8], source_name: &str) -> Result<SeedsManifest, SeedsError> {
        let m: SeedsManifest =
            serde_json::from_slice(bytes).map_err(|source| SeedsError::Json {
                source_name: source_name.to_string(),
                source,
            })?;
        m.validate(source_name)?;
        Ok(m)
    }

    /// Every snapshot sets exactly one of `path`/`url`; URL entries pin a sha512 digest and a
    /// size; names and versions are safe path components.
    pub fn validate(&self, source_name: &str) -> Result<(), SeedsError> {
        let bad = |problem: String| SeedsError::Manifest {
            source_name: source_name.to_string(),
            problem,
        };
        if self.seeds.version.trim().is_empty() {
            return Err(bad("seeds.version is empty".into()));
        }
        if self.seeds.snapshots.is_empty() {
            return Err(bad("seeds.snapshots is empty".into()));
        }
        self.safe(source_name, "seeds", "version", &self.seeds.version)?;
        for (name, s) in &self.seeds.snapshots {
            self.safe(source_name, name, "name", name)?;
            match (&s.url, &s.path) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(bad(format!(
                        "snapshot {name:?} must set exactly one of path or url"
                    )));
                }
                (Some(url), None) => {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(bad(format!(
                            "snapshot {name:?}: url {url:?} is not an http(s) URL"
                        )));
                    }
                    let d = s.digest.as_deref().unwrap_or_default();
                    if !matches!(Digest::parse(d), Ok(p) if p.algorithm == Algorithm::Sha512) {
                        return Err(bad(format!(
                            "snapshot {name:?}: digest {d:?} must be sha512:<128 hex> (only sha512 is accepted for seeds)"
                        )));
                    }
                    if s.size.unwrap_or(0) == 0 {
                        return Err(bad(format!("snapshot {name:?}: size must be > 0")));
                    }
                    self.safe(source_name, name, "URL's file name", url_basename(url))?;
                }
                (None, Some(p)) => {
                    let base = Path::new(p).file_name().and_then(|f| f.to_str());
                    self.safe(source_name, name, "path's file name", base.unwrap_or(p))?;
                    if let Some(d) = &s.digest
                        && !matches!(Digest::parse(d), Ok(p) if p.algorithm == Algorithm::Sha512)
                    {
                        return Err(bad(format!(
                            "snapshot {name:?}: digest {d:?} must be sha512:<128 hex>"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn safe(
        &self,
        source_name: &str,
        name: &str,
        what: &'static str,
        value: &str,
    ) -> Result<(), SeedsError> {
        check_name(value).map_err(|source| SeedsError::UnsafeName {
            source_name: source_name.to_string(),
            name: name.to_string(),
            what,
            value: value.to_string(),
            source,
        })
    }

    /// A copy without the local `cached` annotations.
    pub fn without_annotations(&self) -> SeedsManifest {
        let mut m = self.clone();
        for s in m.seeds.snapshots.values_mut() {
            s.cached = None;
        }
        m
    }
}

/// Paths and URLs of the seed cache.
pub fn manifest_url(deps: &Deps) -> String {
    format!(
        "{}/manifests/seeds.json",
        deps.base_url.trim_end_matches('/')
    )
}

pub fn manifest_path(deps: &Deps) -> PathBuf {
    deps.dir.join("seeds/manifests/seeds.json")
}

pub fn snapshots_dir(deps: &Deps) -> PathBuf {
    deps.dir.join("seeds/snapshots")
}

/// `<deps>/seeds/snapshots/<name>/<version>/<file>`; [`SeedsManifest::validate`] has checked
/// every component.
pub fn snapshot_path(deps: &Deps, m: &SeedsManifest, name: &str, s: &SnapshotEntry) -> PathBuf {
    let file = match (&s.url, &s.path) {
        (Some(url), _) => url_basename(url).to_string(),
        (None, Some(p)) => Path::new(p)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    snapshots_dir(deps)
        .join(name)
        .join(&m.seeds.version)
        .join(file)
}

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, SeedsError> {
    let err = |source| SeedsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > max {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        )));
    }
    Ok(bytes)
}

/// Where a manifest comes from: a local file (`--seeds`), or the deps server.
pub enum Source<'a> {
    File(&'a Path),
    Published,
}

/// Loads the manifest; a published one may only use URL entries.
pub async fn load(deps: &Deps, source: Source<'_>) -> Result<(SeedsManifest, String), SeedsError> {
    match source {
        Source::File(f) => {
            let name = f.display().to_string();
            let bytes = read_capped(f, MAX_MANIFEST_BYTES)?;
            Ok((SeedsManifest::from_slice(&bytes, &name)?, name))
        }
        Source::Published => {
            let url = manifest_url(deps);
            let bytes = fetch::get_document(&url, 4).await?;
            let m = SeedsManifest::from_slice(&bytes, &url)?;
            if let Some((name, _)) = m.seeds.snapshots.iter().find(|(_, s)| s.path.is_some()) {
                return Err(SeedsError::Manifest {
                    source_name: url,
                    problem: format!(
                        "snapshot {name:?} names a local path; a published manifest must pin a url, digest and size"
                    ),
                });
            }
            Ok((m, url))
        }
    }
}

/// Whether `path` holds exactly the pinned bytes.
fn in_cache(path: &Path, s: &SnapshotEntry) -> bool {
    let (Some(d), Some(size)) = (
        s.digest.as_deref().and_then(|d| Digest::parse(d).ok()),
        s.size,
    ) else {
        return false;
    };
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == size) {
        return false;
    }
    fetch::hash::hash_file(path, d.algorithm).is_ok_and(|(got, len)| got == d && len == size)
}

/// `deps download`'s seed part: loads the manifest, caches every snapshot (downloaded and
/// sha512-verified, or copied for `path` entries), then writes the annotated manifest. With
/// `dry_run`, says what it would do and writes nothing.
pub async fn download(
    deps: &Deps,
    source: Source<'_>,
    dry_run: bool,
    progress: bool,
    out: &mut dyn Write,
) -> Result<SeedsManifest, SeedsError> {
    let local_dir = match &source {
        Source::File(f) => Some(f.parent().unwrap_or(Path::new(".")).to_path_buf()),
        Source::Published => None,
    };
    let (mut m, name) = load(deps, source).await?;
    if dry_run {
        let _ = writeln!(out, "Seeds manifest: {name}");
        let _ = writeln!(
            out,
            "Seed snapshot cache directory: {}",
            snapshots_dir(deps).display()
        );
        let _ = writeln!(out, "Seed snapshots: {}", m.seeds.snapshots.len());
        return Ok(m);
    }
    let mut targets = Vec::new();
    let mut copies = Vec::new();
    for (sname, s) in &m.seeds.snapshots {
        let dest = snapshot_path(deps, &m, sname, s);
        match (&s.url, &s.path, &local_dir) {
            (Some(url), _, _) => {
                if in_cache(&dest, s) {
                    let _ = writeln!(out, "Found seed {sname} in cache.");
                    continue;
                }
                let digest =
                    Digest::parse(s.digest.as_deref().unwrap_or_default()).map_err(|e| {
                        SeedsError::Manifest {
                            source_name: name.clone(),
                            problem: format!("snapshot {sname:?}: {e}"),
                        }
                    })?;
                let _ = writeln!(out, "Downloading seed {sname}...");
                targets.push(Target {
                    key: format!("seed-{sname}"),
                    url: url.clone(),
                    digest,
                    size: s.size.unwrap_or(0),
                    dest,
                });
            }
            (None, Some(p), Some(dir)) => copies.push((dir.join(p), dest, s.digest.clone())),
            _ => {}
        }
    }
    for t in &targets {
        if let Some(parent) = t.dest.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SeedsError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }
    if !targets.is_empty() {
        let mut opts = FetchOptions::new(snapshots_dir(deps));
        opts.concurrency = 4;
        opts.progress = progress;
        fetch::fetch(targets, &opts).await?;
    }
    for (from, to, digest) in copies {
        let bytes = read_capped(&from, super::netsy::MAX_FILE_BYTES)?;
        if let Some(d) = digest {
            let got = sha512(&bytes);
            if got != d {
                return Err(SeedsError::Digest {
                    path: from,
                    name: String::new(),
                    version: m.seeds.version.clone(),
                    got,
                    want: d,
                });
            }
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SeedsError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        vmagent::fsutil::write_atomic(&to, &bytes, None)
            .map_err(|source| SeedsError::Write { path: to, source })?;
    }
    for s in m.seeds.snapshots.values_mut() {
        s.cached = Some(true);
    }
    write_manifest(deps, &m)?;
    let _ = writeln!(
        out,
        "Seed snapshots for version {} are cached.",
        m.seeds.version
    );
    Ok(m)
}

/// `sha512:<hex>` of `bytes`.
pub fn sha512(bytes: &[u8]) -> String {
    let mut h = fetch::hash::Hasher::new(Algorithm::Sha512);
    h.update(bytes);
    format!("sha512:{}", h.finish().hex)
}

fn write_manifest(deps: &Deps, m: &SeedsManifest) -> Result<(), SeedsError> {
    let latest = manifest_path(deps);
    let text = serde_json::to_string_pretty(m).map_err(|e| SeedsError::Write {
        path: latest.clone(),
        source: e.into(),
    })? + "\n";
    let mut h = fetch::hash::Hasher::new(Algorithm::Sha256);
    h.update(text.as_bytes());
    let hex = h.finish().hex;
    let stamp = vmagent::clock::now_utc().replace(['-', ':'], "");
    let history = latest.with_file_name(format!("seeds_{stamp}_{}.json", &hex[..12]));
    if let Some(parent) = latest.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SeedsError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    for path in [&latest, &history] {
        vmagent::fsutil::write_atomic(path, text.as_bytes(), None).map_err(|source| {
            SeedsError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The cached manifest, if there is a readable one.
pub fn cached(deps: &Deps) -> Option<SeedsManifest> {
    let path = manifest_path(deps);
    let bytes = read_capped(&path, MAX_MANIFEST_BYTES).ok()?;
    SeedsManifest::from_slice(&bytes, &path.display().to_string()).ok()
}
