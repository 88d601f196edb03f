//! One artifact: attempts, resume, retry policy and verification.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};

use super::cache::store_in_cache;
use super::error::{BodyState, FetchError, describe};
use super::hash::Hasher;
use super::options::{RetryPolicy, Target};
use super::progress::Progress;
use crate::fsutil::TempFile;

/// Small chunks are gathered up to this many bytes before a write to the temp file.
const WRITE_BUF: usize = 256 * 1024;
/// Chunks at least this large are written as they come (a copy costs more than the syscall).
const DIRECT_WRITE: usize = 32 * 1024;
/// Start disk writeback after this many new bytes, so the final fsync overlaps the download.
const WRITEBACK_EVERY: u64 = 8 << 20;

pub(super) struct Ctx {
    pub retry: RetryPolicy,
    pub deadline: Instant,
    pub cache: Option<PathBuf>,
    /// Held by every fsync + rename on the blocking pool; the receiver learns when all are done,
    /// even those of cancelled downloads.
    pub persisting: tokio::sync::mpsc::Sender<()>,
    /// The `Authorization` header value of this target's requests.
    pub authorization: Option<String>,
}

pub(super) fn client(retry: &RetryPolicy) -> Result<reqwest::Client, FetchError> {
    // rustls is built without a default provider; choose ring once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(retry.connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("vmagent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Client(e.to_string()))
}

/// The partial download of one artifact: temp file, running hash and length.
struct Partial {
    tmp: TempFile,
    hasher: Hasher,
    /// Bytes received and hashed (in the file or in `buf`).
    len: u64,
    buf: Vec<u8>,
    /// Bytes of the file whose writeback has been started.
    synced: u64,
}

impl Partial {
    fn push(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hasher.update(data);
        self.len += data.len() as u64;
        if data.len() >= DIRECT_WRITE || self.buf.len() + data.len() > WRITE_BUF {
            self.flush()?;
        }
        if data.len() >= DIRECT_WRITE {
            self.tmp.file().write_all(data)
        } else {
            self.buf.extend_from_slice(data);
            Ok(())
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.tmp.file().write_all(&self.buf)?;
            self.buf.clear();
        }
        let in_file = self.len - self.buf.len() as u64;
        if in_file - self.synced >= WRITEBACK_EVERY {
            self.tmp.start_writeback(self.synced, in_file - self.synced);
            self.synced = in_file;
        }
        Ok(())
    }

    fn restart(&mut self, algorithm: crate::manifest::Algorithm) -> std::io::Result<u64> {
        let dropped = self.len;
        self.buf.clear();
        self.tmp.reset()?;
        self.hasher = Hasher::new(algorithm);
        self.len = 0;
        self.synced = 0;
        Ok(dropped)
    }
}

/// How an attempt ended, when it did not deliver the whole body.
enum Failure {
    /// Worth another attempt: network trouble, 408/429/5xx, truncation, stalls.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The server's answer will not change: give up now.
    Fatal(FetchError),
    /// The server announced a body longer than the manifest's size.
    SizeMismatch(u64),
}

fn retry(reason: impl Into<String>) -> Failure {
    Failure::Retry {
        reason: reason.into(),
        retry_after: None,
    }
}

pub(super) async fn download(
    client: &reqwest::Client,
    t: &Target,
    ctx: &Ctx,
    progress: &Progress,
) -> Result<(), FetchError> {
    let started = Instant::now();
    let write_err = |source| FetchError::Write {
        path: t.dest.clone(),
        source,
    };
    let tmp_err = |source| FetchError::Write {
        path: t.dest.clone(),
        source,
    };
    let mut tmp = TempFile::create_for(&t.dest).map_err(tmp_err)?;
    tmp.preallocate(t.size).map_err(tmp_err)?;
    let mut p = Partial {
        tmp,
        hasher: Hasher::new(t.digest.algorithm),
        len: 0,
        buf: Vec::with_capacity(WRITE_BUF),
        synced: 0,
    };
    let mut attempts = 0u32;
    let mut idle_failures = 0u32;
    let mut delay = ctx.retry.base_delay;
    let mut restarted_after_mismatch = false;
    loop {
        attempts += 1;
        let before = p.len;
        let outcome = attempt(client, t, ctx, &mut p, progress).await;
        p.flush().map_err(write_err)?;
        let failure = match outcome {
            Ok(()) => {
                let body = body_state(p.len, t.size);
                let actual =
                    std::mem::replace(&mut p.hasher, Hasher::new(t.digest.algorithm)).finish();
                let size_ok = p.len == t.size;
                if actual == t.digest && size_ok {
                    // fsync + rename on the blocking pool, not on an async worker.
                    let tmp = std::mem::replace(&mut p.tmp, TempFile::detached());
                    let busy = ctx.persisting.clone();
                    tokio::task::spawn_blocking(move || {
                        let r = tmp.persist();
                        drop(busy);
                        r
                    })
                    .await
                    .expect("persist does not panic")
                    .map_err(write_err)?;
                    progress.file_done();
                    log::debug!(
                        key = t.key.as_str(), url = t.url.as_str(), bytes = p.len,
                        attempts = attempts, seconds = started.elapsed().as_secs_f64();
                        "{}: verified {} ({} bytes)", t.key, t.digest, p.len
                    );
                    if let Some(cache) = &ctx.cache
                        && let Err(e) = store_in_cache(cache, &t.digest, &t.dest)
                    {
                        log::warn!(key = t.key.as_str(); "{}: not cached: {e}", t.key);
                    }
                    return Ok(());
                }
                if restarted_after_mismatch {
                    return Err(FetchError::DigestMismatch {
                        key: t.key.clone(),
                        url: t.url.clone(),
                        expected: Box::new(t.digest.clone()),
                        actual: Box::new(actual),
                        body,
                    });
                }
                restarted_after_mismatch = true;
                let reason = format!("digest mismatch ({body}); retrying once from byte 0");
                let dropped = p.restart(t.digest.algorithm).map_err(write_err)?;
                progress.discard(dropped);
                reason
            }
            Err(Failure::SizeMismatch(announced)) => {
                if restarted_after_mismatch {
                    return Err(FetchError::SizeMismatch {
                        key: t.key.clone(),
                        url: t.url.clone(),
                        announced,
                        expected: t.size,
                    });
                }
                restarted_after_mismatch = true;
                let dropped = p.restart(t.digest.algorithm).map_err(write_err)?;
                progress.discard(dropped);
                format!(
                    "server announces {announced} bytes, manifest pins {}; retrying once",
                    t.size
                )
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry {
                reason,
                retry_after,
            }) => {
                if p.len > before {
                    // Progress: the connection works, start the backoff over.
                    idle_failures = 0;
                    delay = ctx.retry.base_delay;
                } else {
                    idle_failures += 1;
                }
                if idle_failures > ctx.retry.max_retries {
                    return Err(gave_up(t, attempts, started, reason));
                }
                let wait =
                    jitter(delay).max(retry_after.unwrap_or_default().min(ctx.retry.max_delay));
                if Instant::now() + wait >= ctx.deadline {
                    return Err(gave_up(
                        t,
                        attempts,
                        started,
                        format!("{reason} (time budget spent)"),
                    ));
                }
                delay = (delay * 2).min(ctx.retry.max_delay);
                log::warn!(
                    key = t.key.as_str(), url = t.url.as_str(), attempt = attempts,
                    resume_from = p.len, delay_ms = wait.as_millis() as u64;
                    "{}: attempt {attempts} failed: {reason}; retrying in {:.1}s{}",
                    t.key, wait.as_secs_f64(),
                    if p.len > 0 { format!(" from byte {}", p.len) } else { String::new() }
                );
                progress.retry();
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        // Digest or size mismatch: one immediate restart from byte 0.
        log::warn!(key = t.key.as_str(), url = t.url.as_str(); "{}: {failure}", t.key);
        progress.retry();
    }
}

fn gave_up(t: &Target, attempts: u32, started: Instant, last: String) -> FetchError {
    FetchError::GaveUp {
        key: t.key.clone(),
        url: t.url.clone(),
        attempts,
        elapsed: started.elapsed(),
        last,
    }
}

fn body_state(got: u64, want: u64) -> BodyState {
    if got == 0 {
        BodyState::Empty
    } else if got < want {
        BodyState::Short { got, want }
    } else if got > want {
        BodyState::Long { got, want }
    } else {
        BodyState::Complete { got }
    }
}

/// A random delay in `[d/2, d]`.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(fastrand::f64())
}

/// One HTTP request: resume from `p.len` when it is above 0.
async fn attempt(
    client: &reqwest::Client,
    t: &Target,
    ctx: &Ctx,
    p: &mut Partial,
    progress: &Progress,
) -> Result<(), Failure> {
    let stall = ctx.retry.stall_timeout;
    let mut req = client.get(&t.url);
    if let Some(auth) = &ctx.authorization {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    if p.len > 0 {
        req = req.header(RANGE, format!("bytes={}-", p.len));
    }
    let resp = match tokio::time::timeout(stall, req.send()).await {
        Err(_) => {
            return Err(retry(format!(
                "no response within {}s",
                stall.as_secs_f64()
            )));
        }
        Ok(Err(e)) => return Err(retry(describe(&e))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let io = |source| {
        Failure::Fatal(FetchError::Write {
            path: t.dest.clone(),
            source,
        })
    };
    match status {
        StatusCode::PARTIAL_CONTENT if p.len > 0 => {
            let start = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_start);
            if start != Some(p.len) {
                let dropped = p.restart(t.digest.algorithm).map_err(io)?;
                progress.discard(dropped);
                return Err(retry(
                    "server answered with another range; restarting from byte 0",
                ));
            }
        }
        StatusCode::OK => {
            if p.len > 0 {
                log::info!(key = t.key.as_str(); "{}: server ignores Range; restarting from byte 0", t.key);
                let dropped = p.restart(t.digest.algorithm).map_err(io)?;
                progress.discard(dropped);
            }
            // A longer body than pinned is not worth reading; a shorter one is read, so the
            // error can name its digest and say it was short or empty.
            if let Some(n) = resp.content_length()
                && n > t.size
            {
                return Err(Failure::SizeMismatch(n));
            }
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let dropped = p.restart(t.digest.algorithm).map_err(io)?;
            progress.discard(dropped);
            return Err(retry("range not satisfiable; restarting from byte 0"));
        }
        s if s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS
            || s.is_server_error() =>
        {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Failure::Retry {
                reason: format!("HTTP {status}"),
                retry_after,
            });
        }
        s => {
            return Err(Failure::Fatal(FetchError::Http {
                key: t.key.clone(),
                url: t.url.clone(),
                status: s.as_u16(),
            }));
        }
    }
    let announced_end = resp.content_length().map(|n| p.len + n);
    let mut resp = resp;
    loop {
        let chunk = match tokio::time::timeout(stall, resp.chunk()).await {
            Err(_) => {
                return Err(retry(format!(
                    "stalled: no data for {}s",
                    stall.as_secs_f64()
                )));
            }
            Ok(Err(e)) => return Err(retry(describe(&e))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        p.push(&chunk).map_err(io)?;
        progress.add(chunk.len() as u64);
        if p.len > t.size {
            // More than the manifest pins: stop reading, the digest check reports it.
            return Ok(());
        }
    }
    if let Some(end) = announced_end
        && p.len < end
    {
        return Err(retry(format!("body ended after {} of {end} bytes", p.len)));
    }
    Ok(())
}

/// `bytes 100-199/200` → 100
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn body_states() {
        assert_eq!(body_state(0, 10), BodyState::Empty);
        assert_eq!(body_state(5, 10), BodyState::Short { got: 5, want: 10 });
        assert_eq!(body_state(11, 10), BodyState::Long { got: 11, want: 10 });
        assert_eq!(body_state(10, 10), BodyState::Complete { got: 10 });
    }
}
