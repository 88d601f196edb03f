//! A small AWS client for `cluster delete`: S3 object get/conditional put and EC2
//! DescribeInstances/TerminateInstances, signed with SigV4 (no AWS SDK).
//!
//! Credentials come only from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally
//! `AWS_SESSION_TOKEN`; shared config files, profiles, SSO and instance roles are not supported
//! (export credentials first, e.g. with `aws configure export-credentials --format env`).
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_EC2` and `AWS_ENDPOINT_URL` override the endpoints;
//! S3 uses path-style URLs under an override and virtual-host style otherwise.

pub mod ec2;
pub mod s3;
pub mod sigv4;
mod xml;

pub use xml::XmlError;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use sha2::{Digest, Sha256};

/// Why an `AWS_ENDPOINT_URL*` value is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointProblem {
    #[error("{0}")]
    Parse(#[from] url::ParseError),
    #[error("expected an http:// or https:// URL with a host")]
    NotHttp,
}

/// What is wrong with an AWS response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseProblem {
    #[error("invalid XML: {0}")]
    Xml(#[from] XmlError),
    #[error("no ETag header, so the object cannot be updated safely")]
    NoEtag,
    #[error("more than 10000 result pages; nextToken never ends")]
    EndlessPages,
}

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "AWS credentials not found: {missing} not set; export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary credentials); AWS profiles and SSO are not supported, use `aws configure export-credentials --format env` to export them"
    )]
    MissingCredentials { missing: String },
    #[error(
        "{var}={value:?} is not a usable endpoint URL: {reason}; set it to e.g. https://host:port or unset it"
    )]
    BadEndpoint {
        var: String,
        value: String,
        #[source]
        reason: EndpointProblem,
    },
    #[error("cannot build the HTTPS client for AWS: {0}")]
    Client(#[source] reqwest::Error),
    #[error(
        "{what}: request to {url} failed: {reason}; check network access to AWS and the endpoint settings"
    )]
    Request {
        what: String,
        url: String,
        /// The cause with its whole chain, for the message.
        reason: String,
        /// The HTTP client's error, when there is one.
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("{what}: HTTP {status} {code}: {message}{hint}")]
    Api {
        what: String,
        status: u16,
        code: String,
        message: String,
        hint: String,
    },
    #[error(
        "{what}: the object changed since it was read (If-Match {etag} failed with 412 Precondition Failed); the shard config was modified concurrently, rerun podplane cluster delete"
    )]
    PreconditionFailed { what: String, etag: String },
    #[error("{what}: unexpected response from {url}: {reason}")]
    BadResponse {
        what: String,
        url: String,
        #[source]
        reason: ResponseProblem,
    },
    #[error(
        "{what}: cannot build the URL {url}: {source}; check the region and the AWS_ENDPOINT_URL* settings"
    )]
    BadUrl {
        what: String,
        url: String,
        #[source]
        source: url::ParseError,
    },
}

/// Static credentials from the environment.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where environment variables are read from: the process, or an explicit map (tests).
#[derive(Debug, Clone, Default)]
pub enum EnvSource {
    #[default]
    Process,
    Vars(BTreeMap<String, String>),
}

impl EnvSource {
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match self {
            EnvSource::Process => std::env::var(name).ok(),
            EnvSource::Vars(m) => m.get(name).cloned(),
        };
        v.filter(|v| !v.trim().is_empty())
    }
}

/// Region, credentials and optional endpoint overrides.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    pub credentials: Credentials,
    pub s3_endpoint: Option<Url>,
    pub ec2_endpoint: Option<Url>,
}

impl Config {
    /// Reads credentials and endpoint overrides from `env`.
    pub fn from_env(region: &str, env: &EnvSource) -> Result<Config, AwsError> {
        let key = env.get("AWS_ACCESS_KEY_ID");
        let secret = env.get("AWS_SECRET_ACCESS_KEY");
        let (access_key_id, secret_access_key) = match (key, secret) {
            (Some(k), Some(s)) => (k, s),
            (k, s) => {
                let missing = [
                    ("AWS_ACCESS_KEY_ID", k.is_none()),
                    ("AWS_SECRET_ACCESS_KEY", s.is_none()),
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" and ");
                return Err(AwsError::MissingCredentials { missing });
            }
        };
        let endpoint = |specific: &str| -> Result<Option<Url>, AwsError> {
            let (var, value) = match env.get(specific) {
                Some(v) => (specific, v),
                None => match env.get("AWS_ENDPOINT_URL") {
                    Some(v) => ("AWS_ENDPOINT_URL", v),
                    None => return Ok(None),
                },
            };
            let bad = |reason: EndpointProblem| AwsError::BadEndpoint {
                var: var.to_string(),
                value: value.clone(),
                reason,
            };
            let url = Url::parse(value.trim()).map_err(|e| bad(e.into()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(bad(EndpointProblem::NotHttp));
            }
            Ok(Some(url))
        };
        Ok(Config {
            region: region.to_string(),
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: env.get("AWS_SESSION_TOKEN"),
            },
            s3_endpoint: endpoint("AWS_ENDPOINT_URL_S3")?,
            ec2_endpoint: endpoint("AWS_ENDPOINT_URL_EC2")?,
        })
    }
}

/// An HTTP client plus the settings to sign requests with.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Config,
}

struct Response {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Client {
    pub fn new(config: Config) -> Result<Client, AwsError> {
        // rustls is built without a default provider; choose ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("podplane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AwsError::Client)?;
        Ok(Client { http, config })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Signs and sends one request; `headers` are extra signed headers (lower-case names).
    async fn send(
        &self,
        what: &str,
        service: &str,
        method: reqwest::Method,
        url: Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Response, AwsError> {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(AwsError::Request {
                    what: what.to_string(),
                    url: url.to_string(),
                    reason: "URL has no host".into(),
                    source: None,
                });
            }
        };
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let payload = hex::encode(Sha256::digest(&body));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signed = sigv4::sign(
            &sigv4::Request {
                method: method.as_str(),
                host: &host,
                path: url.path(),
                query: &query,
                headers: &headers,
                payload_sha256: &payload,
            },
            &self.config.credentials,
            &self.config.region,
            service,
            &sigv4::amz_date(now),
        );
        let mut req = self.http.request(method, url.clone()).body(body);
        for (k, v) in headers.iter().chain(signed.iter()) {
            req = req.header(k.as_str(), v.as_str());
        }
        let failed = |e: reqwest::Error| AwsError::Request {
            what: what.to_string(),
            url: url.to_string(),
            reason: describe(&e),
            source: Some(e),
        };
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(failed)?.to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// An error built from an AWS XML error body (`<Error><Code>…<Message>…`).
fn api_error(what: &str, resp: &Response, hint: &str) -> AwsError {
    let text = String::from_utf8_lossy(&resp.body);
    let (code, message) = match xml::parse(&text) {
        Ok(doc) => (
            doc.find("Code")
                .map(|e| e.text.trim().to_string())
                .unwrap_or_default(),
            doc.find("Message")
                .map(|e| e.text.trim().to_string())
                .unwrap_or_default(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let code = if code.is_empty() {
        http_reason(resp.status).to_string()
    } else {
        code
    };
    let message = if message.is_empty() {
        text.chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string()
    } else {
        message
    };
    let hint = match (resp.status, hint.is_empty()) {
        (401 | 403, _) => format!(
            "; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN and the IAM permissions{}",
            if hint.is_empty() {
                String::new()
            } else {
                format!(" ({hint})")
            }
        ),
        (_, false) => format!("; {hint}"),
        _ => String::new(),
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
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "error",
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::Vars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn credentials_and_endpoints() {
        let err = Config::from_env("eu-west-1", &vars(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"),
            "{err}"
        );
        let err = Config::from_env("eu-west-1", &vars(&[("AWS_ACCESS_KEY_ID", "a")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY not set"), "{err}");
        assert!(err.contains("profiles and SSO are not supported"), "{err}");

        let c = Config::from_env(
            "eu-west-1",
            &vars(&[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_SESSION_TOKEN", "t"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:6000/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.credentials.session_token.as_deref(), Some("t"));
        assert_eq!(c.s3_endpoint.unwrap().as_str(), "http://127.0.0.1:5000/");
        assert_eq!(c.ec2_endpoint.unwrap().as_str(), "http://127.0.0.1:6000/");

        let err = Config::from_env(
            "eu-west-1",
            &vars(&[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_ENDPOINT_URL_S3", "localhost"),
            ]),
        )
        .unwrap_err();
        // The parse error stays the typed cause.
        assert!(
            matches!(
                &err,
                AwsError::BadEndpoint {
                    reason: EndpointProblem::Parse(_),
                    ..
                }
            ),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.starts_with("AWS_ENDPOINT_URL_S3=\"localhost\""),
            "{err}"
        );
    }
}
