//! One AWS call: sign with `aws-sigv4`, send, read a capped body, retry throttling with backoff.

use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningParams,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::{Method, Url};

use super::auth::error_chain;
use super::{AwsError, Client, ResponseProblem, xml};

/// How throttled calls (HTTP 429, 503, or a throttling error code) are retried: up to
/// `max_attempts` tries in all, waiting `base_delay` doubled per retry (with jitter, at most
/// `max_delay`, or what `Retry-After` asks within that cap), and never starting a try after
/// `budget` has passed since the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): half fixed, half random.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (retry - 1).min(16))
            .min(self.max_delay);
        let jittered = exp / 2 + exp.mul_f64(fastrand::f64() / 2.0);
        retry_after
            .map_or(jittered, |r| r.max(jittered))
            .min(self.max_delay)
    }
}

/// Error codes AWS uses for "slow down" (S3, EC2 and the query APIs).
const THROTTLING_CODES: [&str; 9] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "TooManyRequestsException",
    "EC2ThrottledException",
];

pub(super) struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// What a call sends.
pub(super) struct Call<'a> {
    /// For messages: "GET s3://bucket/key".
    pub what: &'a str,
    /// Signing name: "s3" or "ec2".
    pub service: &'a str,
    pub method: Method,
    pub url: Url,
    /// Extra headers, all signed (lower-case names).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The largest response body accepted.
    pub max_body: usize,
}

impl Client {
    /// Sends `call`, retrying throttling; any other status is returned to the caller.
    pub(super) async fn send(&self, call: Call<'_>) -> Result<Response, AwsError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let resp = self.send_once(&call).await?;
            let throttled = is_throttling(&resp);
            if !throttled
                || attempt >= self.retry.max_attempts
                || started.elapsed() >= self.retry.budget
            {
                return Ok(resp);
            }
            let retry_after = resp
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let wait = self.retry.delay(attempt, retry_after);
            let left = self.retry.budget.saturating_sub(started.elapsed());
            if wait >= left {
                return Ok(resp);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Response, AwsError> {
        let region = self.auth.region().await?;
        let identity: Identity = self.auth.credentials().await?.into();
        let mut settings = SigningSettings::default();
        if call.service == "s3" {
            // S3 signs the path as sent (no second encoding, no normalization) and wants the
            // payload hash in x-amz-content-sha256.
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let signing_failed = |source: Box<dyn std::error::Error + Send + Sync>| AwsError::Signing {
            what: call.what.to_string(),
            url: call.url.to_string(),
            source,
        };
        let params: SigningParams = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(call.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| signing_failed(e.into()))?
            .into();
        let signable = SignableRequest::new(
            call.method.as_str(),
            call.url.as_str(),
            call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&call.body),
        )
        .map_err(|e| signing_failed(e.into()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| signing_failed(e.into()))?
            .into_parts();

        let mut req = self
            .http
            .request(call.method.clone(), call.url.clone())
            .body(call.body.clone());
        for (k, v) in &call.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let failed = |e: reqwest::Error| AwsError::Request {
            what: call.what.to_string(),
            url: call.url.to_string(),
            reason: error_chain(&e),
            source: Some(e),
        };
        let mut resp = req.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let too_large = || AwsError::BadResponse {
            what: call.what.to_string(),
            url: call.url.to_string(),
            reason: ResponseProblem::TooLarge {
                limit: call.max_body,
            },
        };
        if resp
            .content_length()
            .is_some_and(|n| n > call.max_body as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > call.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn is_throttling(resp: &Response) -> bool {
    match resp.status {
        429 | 503 => true,
        400..=599 => {
            let (code, _) = xml::error_code(&resp.body);
            THROTTLING_CODES.contains(&code.as_str())
        }
        _ => false,
    }
}

/// An error built from an AWS XML error body (S3's `<Error><Code>…` or EC2's
/// `<Response><Errors><Error><Code>…`).
pub(super) fn api_error(what: &str, resp: &Response, hint: &str) -> AwsError {
    let (code, message) = xml::error_code(&resp.body);
    let code = if code.is_empty() {
        http_reason(resp.status).to_string()
    } else {
        code
    };
    let message = if message.is_empty() {
        String::from_utf8_lossy(&resp.body)
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string()
    } else {
        message
    };
    let hint = match (resp.status, hint.is_empty()) {
        (401 | 403, _) => format!(
            "; check which AWS credentials are in use (providers[].profile, AWS_PROFILE, AWS_ACCESS_KEY_ID) and their IAM permissions{}",
            if hint.is_empty() {
                String::new()
            } else {
                format!(" ({hint})")
            }
        ),
        (_, false) => format!("; {hint}"),
        _ => String::new(),
    };
    let hint = if is_throttling(resp) {
        format!("{hint}; AWS kept throttling the request, retry later")
    } else {
        hint
    };
    AwsError::Api {
        what: what.to_string(),
        status: resp.status,
        code,
        message,
        hint,
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "error",
    }
}
