//! Concurrent, verified downloads of a manifest's install items.
//!
//! Each artifact streams into a temp file beside its final path while it is hashed in the same
//! pass; it is size-checked, fsynced and renamed into place only when its digest matches. Failed
//! attempts are retried with exponential backoff and jitter, resuming with HTTP `Range` where the
//! server allows it. Nothing unverified is ever left at a final path, and temp files are removed
//! on every exit path (a `kill -9` leaves them for the next run, which sweeps them under a lock).
//! The time budget bounds the whole fetch, transfers included: a server that trickles bytes
//! cannot hold it past the budget.
//!
//! The optional cache directory may be shared with other accounts, so its entries are untrusted:
//! they are opened without following links, checked on the descriptor and copied (hashing what
//! is copied) into a fresh temp file of ours, never linked.

mod download;
pub mod hash;
pub mod progress;
pub mod wait;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fsutil::{self, DirLock, TempFile};
use crate::manifest::{Digest, InstallItem};
use crate::safefs;

pub use progress::Progress;
pub use wait::{WaitError, wait_for};

/// Name of the lock file taken in the destination directory.
pub const LOCK_NAME: &str = ".vmagent-fetch.lock";

/// Longest time budget a fetch accepts; longer ones are cut to it.
pub const MAX_BUDGET: Duration = Duration::from_secs(7 * 24 * 3600);

/// Largest document [`get_document`] reads into memory (a manifest is a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// One artifact to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The dependency key, used in logs and errors.
    pub key: String,
    pub url: String,
    pub digest: Digest,
    /// Expected size in bytes; required (a target of size 0 is refused): no more than this is
    /// ever read from the server.
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
    /// Overall time budget for the whole fetch: when it runs out, transfers under way are
    /// cancelled and their temp files removed. At most [`MAX_BUDGET`].
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
    /// Length as expected: the bytes themselves differ.
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
    #[error(
        "{key}: no size is pinned for {url}; every artifact needs its size in bytes: add it to the manifest"
    )]
    NoSize { key: String, url: String },
    #[error(
        "{first} and {second} would both be written to {}; give them different names",
        dest.display()
    )]
    SameDestination {
        first: String,
        second: String,
        dest: PathBuf,
    },
    #[error(
        "{key}: the time budget of {}s ran out while fetching {url}; the partial download was removed. Raise --budget or check the server's speed",
        budget.as_secs_f64()
    )]
    BudgetSpent {
        key: String,
        url: String,
        budget: Duration,
    },
}

/// Fetch every target into place, or fail with the first fatal error and leave no temp file and
/// nothing unverified at a final path. Targets already in place with the right digest, or
/// present in the cache, are not downloaded.
pub async fn fetch(targets: Vec<Target>, opts: &FetchOptions) -> Result<Summary, FetchError> {
    let start = Instant::now();
    let budget = opts.retry.budget.min(MAX_BUDGET);
    let deadline = start + budget;
    check_targets(&targets)?;
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
        bytes_total: total_size(&targets),
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
    let needed = total_size(&todo);
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
        let result = download_all(todo, opts, deadline, budget, progress.clone()).await;
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

/// The sizes added up; saturating, as a manifest may pin absurd sizes (then refused for space).
fn total_size(targets: &[Target]) -> u64 {
    targets.iter().fold(0, |sum, t| sum.saturating_add(t.size))
}

/// Refuse targets without a size and two targets with one destination, before anything is
/// created.
fn check_targets(targets: &[Target]) -> Result<(), FetchError> {
    let mut dests = std::collections::HashMap::new();
    for t in targets {
        if t.size == 0 {
            return Err(FetchError::NoSize {
                key: t.key.clone(),
                url: t.url.clone(),
            });
        }
        if let Some(first) = dests.insert(&t.dest, &t.key) {
            return Err(FetchError::SameDestination {
                first: first.clone(),
                second: t.key.clone(),
                dest: t.dest.clone(),
            });
        }
    }
    Ok(())
}

async fn download_all(
    mut todo: Vec<Target>,
    opts: &FetchOptions,
    deadline: Instant,
    budget: Duration,
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
            let work = async {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                download::download(&client, &t, &ctx, &progress).await
            };
            // The budget bounds the transfer itself, not only the retries: when it runs out the
            // download future is dropped, and its temp file with it.
            match tokio::time::timeout_at(deadline.into(), work).await {
                Ok(r) => r,
                Err(_) => Err(FetchError::BudgetSpent {
                    key: t.key.clone(),
                    url: t.url.clone(),
                    budget,
                }),
            }
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

/// Is `t` already at its final path with the right digest, or in the cache? A wrong file, a
/// link or anything else but a directory at the final path is removed so that nothing
/// unverified stays there.
fn reuse(t: &Target, cache: Option<&Path>) -> Result<Reuse, FetchError> {
    if in_place(t)? {
        log::debug!(key = t.key.as_str(); "{} already in place", t.key);
        return Ok(Reuse::InPlace);
    }
    let Some(cache) = cache else {
        return Ok(Reuse::No);
    };
    from_cache(t, cache)
}

/// Open `path` for reading without following a link at its last component, and without
/// blocking on a FIFO.
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

fn in_place(t: &Target) -> Result<bool, FetchError> {
    let read_err = |source| FetchError::Read {
        path: t.dest.clone(),
        source,
    };
    let md = match std::fs::symlink_metadata(&t.dest) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(read_err(source)),
    };
    if md.is_dir() {
        return Err(FetchError::NotAFile {
            key: t.key.clone(),
            path: t.dest.clone(),
        });
    }
    if md.is_file() {
        // Checked again on the descriptor: what is hashed is what was opened.
        let file = match open_nofollow(&t.dest) {
            Ok(f) => Some(f),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(read_err(source)),
        };
        if let Some(file) = file {
            let fmd = file.metadata().map_err(read_err)?;
            if fmd.is_file() && fmd.len() == t.size {
                let (d, len) =
                    hash::hash_reader(file.take(t.size), t.digest.algorithm).map_err(read_err)?;
                if d == t.digest && len == t.size {
                    return Ok(true);
                }
            }
        }
        log::info!(key = t.key.as_str(), path = t.dest.display().to_string(); "{}: {} has another digest; replacing it", t.key, t.dest.display());
    } else {
        log::info!(key = t.key.as_str(), path = t.dest.display().to_string(); "{}: {} is not a regular file; replacing it", t.key, t.dest.display());
    }
    remove(&t.dest)?;
    Ok(false)
}

/// Take `t` from the cache: the entry is opened without following links below the cache
/// directory, must be a regular file of the pinned size, and is copied into a temp file beside
/// the destination while hashing the copied bytes; only a match is renamed into place. An entry
/// that does not match is removed; one that cannot be used is skipped with a warning.
fn from_cache(t: &Target, cache: &Path) -> Result<Reuse, FetchError> {
    let entry = cache_path(cache, &t.digest);
    let skip = |why: &dyn std::fmt::Display| {
        log::warn!(key = t.key.as_str(), path = entry.display().to_string(); "{}: not using cache entry {}: {why}", t.key, entry.display());
        Ok(Reuse::No)
    };
    let root = match safefs::Root::open(cache) {
        Ok(r) => r,
        Err(e) => return skip(&e),
    };
    let dir = match root.open_dir(&format!("/{}", t.digest.algorithm.name())) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Reuse::No),
        Err(e) => return skip(&e),
    };
    let name = OsStr::new(&t.digest.hex);
    let (file, meta) = match dir.open_file(name) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Reuse::No),
        Err(e) => return skip(&e),
    };
    let corrupt = |why: String| {
        log::warn!(key = t.key.as_str(), path = entry.display().to_string(); "cache entry {} is corrupt ({why}); removing it", entry.display());
        let _ = dir.remove(name);
        Ok(Reuse::No)
    };
    if meta.size != t.size {
        return corrupt(format!("{} bytes, {} pinned", meta.size, t.size));
    }
    let write_err = |source| FetchError::Write {
        path: t.dest.clone(),
        source,
    };
    let mut tmp = TempFile::create_for(&t.dest).map_err(write_err)?;
    let copied = copy_hashing(file.take(t.size + 1), tmp.file(), t.digest.algorithm);
    let (d, len) = match copied {
        Ok(r) => r,
        Err(CopyError::Read(e)) => return skip(&e),
        Err(CopyError::Write(e)) => return Err(write_err(e)),
    };
    if d != t.digest || len != t.size {
        return corrupt(format!("digest {d}, {len} bytes"));
    }
    tmp.persist().map_err(write_err)?;
    log::debug!(key = t.key.as_str(); "{} taken from the cache", t.key);
    Ok(Reuse::FromCache)
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copy `src` into `dst`, hashing exactly the bytes written.
fn copy_hashing(
    mut src: impl Read,
    dst: &mut std::fs::File,
    algorithm: crate::manifest::Algorithm,
) -> Result<(Digest, u64), CopyError> {
    let mut h = hash::Hasher::new(algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        h.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        len += n as u64;
    }
    Ok((h.finish(), len))
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

/// Put a verified file into the cache: a copy in a fresh temp file, renamed into place, in a
/// directory reached without following links below the cache directory. An existing entry is
/// left alone (a bad one is removed the next time it is read).
pub(crate) fn store_in_cache(cache: &Path, d: &Digest, verified: &Path) -> Result<(), FetchError> {
    let entry = cache_path(cache, d);
    let err = |source| FetchError::Cache {
        path: entry.clone(),
        source,
    };
    let safe_err = |e: safefs::SafeFsError| FetchError::Cache {
        path: entry.clone(),
        source: e.into_io(),
    };
    let root = safefs::Root::open(cache).map_err(safe_err)?;
    let dir = root
        .create_dir_all(&format!("/{}", d.algorithm.name()))
        .map_err(safe_err)?;
    let name = OsStr::new(&d.hex);
    if dir.meta_of(name).map_err(safe_err)?.is_some() {
        return Ok(());
    }
    let mut t = dir.create_temp(name).map_err(safe_err)?;
    let mut src = open_nofollow(verified).map_err(err)?;
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
    #[error(
        "{url} is larger than {max} bytes{}; that is not a manifest: check the URL (PODPLANE_DEPS_URL)",
        announced.map(|n| format!(" (it announces {n})")).unwrap_or_default()
    )]
    TooLarge {
        url: String,
        max: u64,
        announced: Option<u64>,
    },
    #[error(
        "fetching {url} took longer than {}s; check that the server is reachable and answers",
        after.as_secs_f64()
    )]
    Deadline { url: String, after: Duration },
    #[error(transparent)]
    Client(#[from] FetchError),
}

/// Bounds of [`get_document_with`].
#[derive(Debug, Clone)]
pub struct DocumentLimits {
    /// Tries, on transport errors, stalls and HTTP 408/429/5xx.
    pub attempts: u32,
    /// Largest body accepted; a larger `Content-Length` is refused before the body is read.
    pub max_bytes: u64,
    /// An attempt that receives nothing for this long is abandoned (and retried).
    pub stall_timeout: Duration,
    /// The whole call, retries and waits included, ends by then.
    pub deadline: Duration,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            attempts: 4,
            max_bytes: MAX_DOCUMENT_BYTES,
            stall_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
        }
    }
}

/// GET a small document (a manifest) into memory: up to `attempts` tries, waiting 1 s, 2 s,
/// 4 s … between them, on transport errors and HTTP 408/429/5xx; any other non-200 answer fails
/// at once. At most [`MAX_DOCUMENT_BYTES`], and within the default deadline of
/// [`DocumentLimits`].
pub async fn get_document(url: &str, attempts: u32) -> Result<Vec<u8>, GetError> {
    get_document_with(
        url,
        &DocumentLimits {
            attempts,
            ..DocumentLimits::default()
        },
    )
    .await
}

/// [`get_document`] with explicit bounds.
pub async fn get_document_with(url: &str, limits: &DocumentLimits) -> Result<Vec<u8>, GetError> {
    let policy = RetryPolicy {
        connect_timeout: limits
            .stall_timeout
            .min(RetryPolicy::default().connect_timeout),
        ..RetryPolicy::default()
    };
    let client = download::client(&policy)?;
    match tokio::time::timeout(limits.deadline, get_with_retries(&client, url, limits)).await {
        Ok(r) => r,
        Err(_) => Err(GetError::Deadline {
            url: url.into(),
            after: limits.deadline,
        }),
    }
}

async fn get_with_retries(
    client: &reqwest::Client,
    url: &str,
    limits: &DocumentLimits,
) -> Result<Vec<u8>, GetError> {
    let mut delay = Duration::from_secs(1);
    let mut tries = 0;
    loop {
        tries += 1;
        let retryable = match get_once(client, url, limits).await {
            Ok(body) => return Ok(body),
            Err(e @ GetError::Status { status, .. })
                if !(status == 408 || status == 429 || (500..600).contains(&status)) =>
            {
                return Err(e);
            }
            Err(e @ (GetError::TooLarge { .. } | GetError::Client(_))) => return Err(e),
            Err(e) => e,
        };
        if tries >= limits.attempts {
            return Err(retryable);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

/// One GET, reading at most `limits.max_bytes`, each wait bounded by the stall timeout.
async fn get_once(
    client: &reqwest::Client,
    url: &str,
    limits: &DocumentLimits,
) -> Result<Vec<u8>, GetError> {
    let stall = limits.stall_timeout;
    let stalled = || GetError::Transport {
        url: url.into(),
        reason: format!("no data for {}s", stall.as_secs_f64()),
    };
    let transport = |e: reqwest::Error| GetError::Transport {
        url: url.into(),
        reason: describe(&e),
    };
    let mut resp = tokio::time::timeout(stall, client.get(url).send())
        .await
        .map_err(|_| stalled())?
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(GetError::Status {
            url: url.into(),
            status: resp.status().as_u16(),
        });
    }
    let too_large = |announced| GetError::TooLarge {
        url: url.into(),
        max: limits.max_bytes,
        announced,
    };
    if let Some(n) = resp.content_length()
        && n > limits.max_bytes
    {
        return Err(too_large(Some(n)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = tokio::time::timeout(stall, resp.chunk())
        .await
        .map_err(|_| stalled())?
        .map_err(transport)?
    {
        if (body.len() + chunk.len()) as u64 > limits.max_bytes {
            return Err(too_large(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A one-line description of a reqwest error with every cause that says something (the DNS
/// failure, the refused connection, the TLS problem), without repeating the URL: reqwest's own
/// text ("error sending request for url (…)") hides the reason. Used by both programs.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_body() || e.is_decode() {
        "body interrupted".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper-util wraps causes in "client error (Connect)"-style layers that add nothing.
        if text != last && !text.starts_with("client error (") {
            s.push_str(": ");
            s.push_str(&text);
            last = text;
        }
        source = cause.source();
    }
    s
}
