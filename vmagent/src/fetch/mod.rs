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
//!
//! The parts: [`options`] (what to fetch and how: targets, retries, the summary), [`cache`]
//! (reusing a verified file in place or from the cache, and storing one there), `download`
//! (one artifact's transfer), [`document`] (a small document such as a manifest, read into
//! memory with limits), [`error`] (the errors and their descriptions), and [`hash`],
//! [`progress`] and [`wait`]. This file holds the orchestration: checking the targets, taking the
//! lock, reusing what can be reused and downloading the rest concurrently within the budget.

mod cache;
mod document;
mod download;
mod error;
pub mod hash;
mod options;
pub mod progress;
pub mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::fsutil::{self, DirLock};

pub use cache::cache_path;
use cache::{Reuse, reuse};
pub use document::{DocumentLimits, GetError, MAX_DOCUMENT_BYTES, get_document, get_document_with};
pub use error::{BodyState, FetchError, describe};
pub use options::{FetchOptions, RetryPolicy, Summary, Target};
pub use progress::Progress;
pub use wait::{WaitError, wait_for};

/// Name of the lock file taken in the destination directory.
pub const LOCK_NAME: &str = ".vmagent-fetch.lock";

/// Longest time budget a fetch accepts; longer ones are cut to it.
pub const MAX_BUDGET: Duration = Duration::from_secs(7 * 24 * 3600);

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
            authorization: opts.authorization_for(&t.url).map(str::to_string),
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
