//! Concurrent, verified downloads of a manifest's install items.
//!
//! Each artifact streams into a temp file beside its final path while it is hashed in the same
//! pass; it is size-checked, fsynced and renamed into place only when its digest matches. Failed
//! attempts are retried with exponential backoff and jitter, resuming with HTTP `Range` where the
//! server allows it. Nothing unverified is ever left at a final path, and temp files are removed
//! on every exit path (a `kill -9` leaves them for the next run, which sweeps them under a lock).

mod download;
pub mod hash;
mod progress;
pub mod wait;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fsutil::{self, DirLock, TempFile};
use crate::manifest::{Digest, InstallItem};

pub use progress::Progress;
pub use wait::{WaitError, wait_for};

/// Name of the lock file taken in the destination directory.
pub const LOCK_NAME: &str = ".vmagent-fetch.lock";

/// One artifact to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The dependency key, used in logs and errors.
    pub key: String,
    pub url: String,
    pub digest: Digest,
    /// Expected size; 0 = unknown.
    pub size: u64,
    /// Final path.
    pub dest: PathBuf,
}

impl Target {
    /// The target of an install item: `<dir>/<key><ext>`, from the mirror when one is given.
    pub fn for_item(item: &InstallItem, dir: &Path, mirror: Option<&str>) -> Target {
        Target {
            key: item.key.clone(),
            url: item.source_url(mirror),
            digest: item.digest.clone(),
            size: item.size,
            dest: dir.join(item.local_name()),
        }
    }
}

/// When and how often to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Consecutive failed attempts of one artifact that made no progress, before giving up.
    pub max_retries: u32,
    /// First backoff delay; doubled after each failure, with jitter.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// An attempt that receives no byte for this long is abandoned and retried.
    pub stall_timeout: Duration,
    pub connect_timeout: Duration,
    /// Overall time budget for the whole fetch; no new attempt starts after it.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            budget: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Destination directory; created when missing.
    pub dir: PathBuf,
    /// Keep verified files by digest here and reuse them across runs.
    pub cache: Option<PathBuf>,
    /// Downloads in flight at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Draw a progress line on stderr.
    pub progress: bool,
}

impl FetchOptions {
    pub fn new(dir: impl Into<PathBuf>) -> FetchOptions {
        FetchOptions {
            dir: dir.into(),
            cache: None,
            concurrency: 10,
            retry: RetryPolicy::default(),
            progress: false,
        }
    }
}

/// What a fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Artifacts verified in place at the end.
    pub files: usize,
    /// Of which downloaded in this run.
    pub downloaded: usize,
    /// Of which already in place with the right digest.
    pub reused_in_place: usize,
    /// Of which taken from the cache.
    pub reused_from_cache: usize,
    /// Bytes received over the network, including bytes of failed attempts.
    pub bytes_received: u64,
    /// Size of all artifacts.
    pub bytes_total: u64,
    /// Attempts beyond the first, over all artifacts.
    pub retries: u32,
    pub elapsed: Duration,
}

impl Summary {
    pub fn reused(&self) -> usize {
        self.reused_in_place + self.reused_from_cache
    }

    /// Megabytes (10^6) per second over the network.
    pub fn mb_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes_received as f64 / 1e6 / s
        } else {
            0.0
        }
    }
}

/// How a body compared with what the manifest pins, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    Empty,
    Short {
        got: u64,
        want: u64,
    },
    Long {
        got: u64,
        want: u64,
    },
    /// Length as expected (or no expected length): the bytes themselves differ.
    Complete {
        got: u64,
    },
}

impl std::fmt::Display for BodyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyState::Empty => write!(f, "the body was empty"),
            BodyState::Short { got, want } => {
                write!(f, "the body was short: {got} of {want} bytes")
            }
            BodyState::Long { got, want } => {
                write!(
                    f,
                    "the body was too long: {got} bytes, manifest size {want}"
                )
            }
            BodyState::Complete { got } => write!(f, "the body was complete ({got} bytes)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot create destination directory {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock destination directory {}: {source}", dir.display())]
    Lock {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write in {}: {source}; make it writable or choose another --dir", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a regular file; remove it so {key} can be downloaded there", path.display())]
    NotAFile { key: String, path: PathBuf },
    #[error(
        "not enough free space in {}: {needed} bytes still to download, {available} available; free space or choose another --dir",
        dir.display()
    )]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error(
        "{key}: HTTP {status} from {url}; the artifact is not served there: check --mirror and the manifest's url/version"
    )]
    Http {
        key: String,
        url: String,
        status: u16,
    },
    #[error(
        "{key}: gave up on {url} after {attempts} attempts in {:.1}s: {last}; check that the server is reachable, or raise --retries/--budget",
        elapsed.as_secs_f64()
    )]
    GaveUp {
        key: String,
        url: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error(
        "{key}: digest mismatch for {url}: expected {expected}, got {actual}; {body}. The server serves other bytes than the manifest pins: fix the mirror or the manifest"
    )]
    DigestMismatch {
        key: String,
        url: String,
        expected: Box<Digest>,
        actual: Box<Digest>,
        body: BodyState,
    },
    #[error(
        "{key}: {url} announces {announced} bytes but the manifest pins {expected}; the server serves a larger file than the manifest pins: fix the mirror or the manifest"
    )]
    SizeMismatch {
        key: String,
        url: String,
        announced: u64,
        expected: u64,
    },
    #[error("cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Fetch every target into place, or fail with the first fatal error and leave no temp file and
/// nothing unverified at a final path. Targets already in place with the right digest, or
/// present in the cache, are not downloaded.
pub async fn fetch(targets: Vec<Target>, opts: &FetchOptions) -> Result<Summary, FetchError> {
    let start = Instant::now();
    let deadline = start + opts.retry.budget;
    let dir = opts.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| FetchError::CreateDir {
        dir: dir.clone(),
        source,
    })?;
    let _lock = DirLock::acquire(&dir, LOCK_NAME, Duration::from_secs(300)).map_err(|source| {
        FetchError::Lock {
            dir: dir.clone(),
            source,
        }
    })?;
    let swept = fsutil::sweep_temp_files(&dir).map_err(|source| FetchError::Write {
        path: dir.clone(),
        source,
    })?;
    if swept > 0 {
        log::info!(dir = dir.display().to_string(), count = swept; "removed {swept} temp files left by an interrupted run");
    }
    if let Some(cache) = &opts.cache {
        std::fs::create_dir_all(cache).map_err(|source| FetchError::Cache {
            path: cache.clone(),
            source,
        })?;
    }

    let mut summary = Summary {
        files: targets.len(),
        bytes_total: targets.iter().map(|t| t.size).sum(),
        ..Summary::default()
    };

    // Phase 1: what is already here (in place or in the cache), verified by digest.
    let mut todo = Vec::new();
    let checks = targets.into_iter().map(|t| {
        let cache = opts.cache.clone();
        tokio::task::spawn_blocking(move || {
            let found = reuse(&t, cache.as_deref());
            (t, found)
        })
    });
    for check in checks.collect::<Vec<_>>() {
        let (t, found) = check.await.expect("reuse check does not panic");
        match found? {
            Reuse::InPlace => summary.reused_in_place += 1,
            Reuse::FromCache => summary.reused_from_cache += 1,
            Reuse::No => todo.push(t),
        }
    }

    // Phase 2: room for what is left, before the first byte.
    let needed: u64 = todo.iter().map(|t| t.size).sum();
    if needed > 0 {
        let available = fsutil::available_bytes(&dir).map_err(|source| FetchError::Read {
            path: dir.clone(),
            source,
        })?;
        if needed > available {
            return Err(FetchError::NoSpace {
                dir,
                needed,
                available,
            });
        }
    }

    // Phase 3: downloads.
    if !todo.is_empty() {
        let progress = Arc::new(Progress::new(todo.len(), needed));
        let drawer = opts
            .progress
            .then(|| progress.clone().draw_every(Duration::from_millis(200)));
        let result = download_all(todo, opts, deadline, progress.clone()).await;
        if let Some(d) = drawer {
            d.abort();
            progress.clear_line();
        }
        summary.bytes_received = progress.received();
        summary.retries = progress.retries();
        summary.downloaded = result?;
    }
    fsutil::fsync_dir(&dir).map_err(|source| FetchError::Write {
        path: dir.clone(),
        source,
    })?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

async fn download_all(
    mut todo: Vec<Target>,
    opts: &FetchOptions,
    deadline: Instant,
    progress: Arc<Progress>,
) -> Result<usize, FetchError> {
    let client = download::client(&opts.retry)?;
    // Largest first: the semaphore is fair, so big files start early and the tail is short.
    todo.sort_by_key(|t| std::cmp::Reverse(t.size));
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (persisting, mut persisted) = tokio::sync::mpsc::channel::<()>(1);
    let mut set = JoinSet::new();
    for t in todo {
        let (client, slots, progress) = (client.clone(), slots.clone(), progress.clone());
        let ctx = download::Ctx {
            retry: opts.retry.clone(),
            deadline,
            cache: opts.cache.clone(),
            persisting: persisting.clone(),
        };
        set.spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            download::download(&client, &t, &ctx, &progress).await
        });
    }
    drop(persisting);
    let mut done = 0;
    let mut failed = None;
    while let Some(joined) = set.join_next().await {
        match joined.expect("download tasks do not panic") {
            Ok(()) => done += 1,
            Err(e) => {
                // Cancel the others; their temp files are removed as their futures drop.
                set.abort_all();
                while set.join_next().await.is_some() {}
                failed = Some(e);
                break;
            }
        }
    }
    // A cancelled download may have handed a verified file to the blocking pool for fsync and
    // rename: wait for those, so no temp file outlives this call.
    while persisted.recv().await.is_some() {}
    match failed {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

enum Reuse {
    InPlace,
    FromCache,
    No,
}

/// Is `t` already at its final path with the right digest, or in the cache? A wrong file at the
/// final path is removed so that nothing unverified stays there.
fn reuse(t: &Target, cache: Option<&Path>) -> Result<Reuse, FetchError> {
    match std::fs::symlink_metadata(&t.dest) {
        Ok(md) if md.is_file() => {
            let (d, len) = hash::hash_file(&t.dest, t.digest.algorithm).map_err(|source| {
                FetchError::Read {
                    path: t.dest.clone(),
                    source,
                }
            })?;
            if d == t.digest && (t.size == 0 || len == t.size) {
                log::debug!(key = t.key.as_str(); "{} already in place", t.key);
                return Ok(Reuse::InPlace);
            }
            log::info!(key = t.key.as_str(), path = t.dest.display().to_string(); "{}: {} has another digest; replacing it", t.key, t.dest.display());
            remove(&t.dest)?;
        }
        Ok(md) if md.is_dir() => {
            return Err(FetchError::NotAFile {
                key: t.key.clone(),
                path: t.dest.clone(),
            });
        }
        Ok(_) => remove(&t.dest)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(FetchError::Read {
                path: t.dest.clone(),
                source,
            });
        }
    }
    let Some(cache) = cache else {
        return Ok(Reuse::No);
    };
    let entry = cache_path(cache, &t.digest);
    if !entry.is_file() {
        return Ok(Reuse::No);
    }
    // Link (or copy) into a temp file beside the destination, verify, then rename into place.
    let write_err = |source| FetchError::Write {
        path: t.dest.clone(),
        source,
    };
    let (tmp, linked) = match TempFile::hard_link_for(&t.dest, &entry) {
        Ok(tmp) => (tmp, true),
        Err(_) => {
            let mut tmp = TempFile::create_for(&t.dest).map_err(write_err)?;
            let mut src = std::fs::File::open(&entry).map_err(write_err)?;
            std::io::copy(&mut src, tmp.file()).map_err(write_err)?;
            (tmp, false)
        }
    };
    let (d, len) =
        hash::hash_file(tmp.path(), t.digest.algorithm).map_err(|source| FetchError::Read {
            path: entry.clone(),
            source,
        })?;
    if d != t.digest || (t.size != 0 && len != t.size) {
        log::warn!(key = t.key.as_str(), path = entry.display().to_string(); "cache entry {} is corrupt; removing it", entry.display());
        let _ = std::fs::remove_file(&entry);
        return Ok(Reuse::No);
    }
    let persisted = if linked {
        tmp.persist_synced()
    } else {
        tmp.persist()
    };
    persisted.map_err(|source| FetchError::Write {
        path: t.dest.clone(),
        source,
    })?;
    log::debug!(key = t.key.as_str(); "{} taken from the cache", t.key);
    Ok(Reuse::FromCache)
}

fn remove(p: &Path) -> Result<(), FetchError> {
    std::fs::remove_file(p).map_err(|source| FetchError::Write {
        path: p.to_path_buf(),
        source,
    })
}

/// `<cache>/<algo>/<hex>`
pub fn cache_path(cache: &Path, d: &Digest) -> PathBuf {
    cache.join(d.algorithm.name()).join(&d.hex)
}

/// Put a verified file into the cache (hard link, or copy across filesystems), atomically.
pub(crate) fn store_in_cache(cache: &Path, d: &Digest, verified: &Path) -> Result<(), FetchError> {
    let entry = cache_path(cache, d);
    if entry.is_file() {
        return Ok(());
    }
    let err = |source| FetchError::Cache {
        path: entry.clone(),
        source,
    };
    std::fs::create_dir_all(entry.parent().expect("cache entry has a parent")).map_err(err)?;
    if let Ok(link) = TempFile::hard_link_for(&entry, verified) {
        return link.persist_synced().map_err(err);
    }
    // Another filesystem: copy, fsync, rename.
    let mut t = TempFile::create_for(&entry).map_err(err)?;
    let mut src = std::fs::File::open(verified).map_err(err)?;
    std::io::copy(&mut src, t.file()).map_err(err)?;
    t.persist().map_err(err)
}

/// Why a document could not be fetched with [`get_document`].
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("unexpected status {status} fetching {url}")]
    Status { url: String, status: u16 },
    #[error("fetching {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error(transparent)]
    Client(#[from] FetchError),
}

/// GET a small document (a manifest) into memory: up to `attempts` tries, waiting 1 s, 2 s,
/// 4 s … between them, on transport errors and HTTP 408/429/5xx; any other non-200 answer fails
/// at once.
pub async fn get_document(url: &str, attempts: u32) -> Result<Vec<u8>, GetError> {
    let client = download::client(&RetryPolicy::default())?;
    let mut delay = Duration::from_secs(1);
    let mut tries = 0;
    loop {
        tries += 1;
        let retryable = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => return Ok(b.to_vec()),
                Err(e) => GetError::Transport {
                    url: url.into(),
                    reason: e.to_string(),
                },
            },
            Ok(r) => {
                let s = r.status();
                let err = GetError::Status {
                    url: url.into(),
                    status: s.as_u16(),
                };
                if !(s.as_u16() == 408 || s.as_u16() == 429 || s.is_server_error()) {
                    return Err(err);
                }
                err
            }
            Err(e) => GetError::Transport {
                url: url.into(),
                reason: e.to_string(),
            },
        };
        if tries >= attempts {
            return Err(retryable);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
