//! Why a fetch failed: [`FetchError`], with [`BodyState`] saying how a body compared with what
//! the manifest pins, and [`describe`], the one-line account of a reqwest error with the causes
//! that say something, used by both programs.

use std::path::PathBuf;
use std::time::Duration;

use crate::manifest::Digest;

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
