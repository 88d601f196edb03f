//! What to fetch and how: a [`Target`] (one artifact with its URL, pinned digest and size, and
//! final path), the [`RetryPolicy`], the [`FetchOptions`] of one fetch (concurrency, budget,
//! cache, progress), and the [`Summary`] of what it did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::{Digest, InstallItem};

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
    /// cancelled and their temp files removed. At most [`MAX_BUDGET`](super::MAX_BUDGET).
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
    /// `Authorization` header values by URL prefix: a target whose URL starts with a prefix is
    /// requested with that value (the first match wins), e.g. a registry's Bearer token for one
    /// repository's blobs. Redirects to another host drop the header.
    pub authorization: Vec<(String, String)>,
}

impl FetchOptions {
    /// The `Authorization` value for `url`, if one of [`FetchOptions::authorization`] applies.
    pub fn authorization_for(&self, url: &str) -> Option<&str> {
        self.authorization
            .iter()
            .find(|(prefix, _)| url.starts_with(prefix.as_str()))
            .map(|(_, v)| v.as_str())
    }

    pub fn new(dir: impl Into<PathBuf>) -> FetchOptions {
        FetchOptions {
            dir: dir.into(),
            cache: None,
            concurrency: 10,
            retry: RetryPolicy::default(),
            progress: false,
            authorization: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_by_url_prefix() {
        let mut o = FetchOptions::new("/tmp");
        assert_eq!(o.authorization_for("https://r/v2/a/blobs/x"), None);
        o.authorization = vec![
            ("https://r/v2/a/blobs/".into(), "Bearer A".into()),
            ("https://r/v2/".into(), "Bearer any".into()),
        ];
        assert_eq!(
            o.authorization_for("https://r/v2/a/blobs/x"),
            Some("Bearer A")
        );
        assert_eq!(
            o.authorization_for("https://r/v2/b/blobs/x"),
            Some("Bearer any")
        );
        // Another host (or scheme) never gets the token.
        assert_eq!(o.authorization_for("https://evil/v2/a/blobs/x"), None);
        assert_eq!(o.authorization_for("http://r/v2/a/blobs/x"), None);
    }
}
