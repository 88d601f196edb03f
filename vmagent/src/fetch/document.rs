//! GET of a small document (a manifest) into memory, bounded: a size limit, a stall timeout, an
//! overall deadline, and retries with backoff on transport errors and HTTP 408/429/5xx only.

use std::time::Duration;

use super::download;
use super::error::{FetchError, describe};
use super::options::RetryPolicy;

/// Largest document [`get_document`] reads into memory (a manifest is a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

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
