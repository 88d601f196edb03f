//! A small AWS client for `cluster delete` and `cluster seed`: S3 object get, list and
//! conditional put, EC2 DescribeInstances/TerminateInstances.
//!
//! Credentials and the region come from the standard chain, resolved by the official
//! `aws-config` crate exactly as the AWS CLI and OpenTofu do: environment variables, the shared
//! config and credentials files with profiles (static keys, SSO, `credential_process`, assumed
//! roles, web identity), the ECS container endpoint and instance metadata. A profile named in the
//! cluster config (`providers[].profile`) wins over `AWS_PROFILE` and over access keys in the
//! environment, as `--profile` does for the AWS CLI. Requests are signed with `aws-sigv4`,
//! sent with reqwest, retried with backoff when AWS throttles, and their responses are capped in
//! size (`send`).
//!
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_EC2` and `AWS_ENDPOINT_URL` override the endpoints;
//! S3 uses path-style URLs under an override and virtual-host style otherwise.

mod auth;
pub mod ec2;
pub mod s3;
mod send;
mod xml;

pub use s3::PutOutcome;
pub use send::RetryPolicy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

/// Why an `AWS_ENDPOINT_URL*` value is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointProblem {
    #[error("{0}")]
    Parse(#[from] url::ParseError),
    #[error("expected an http:// or https:// URL with a host")]
    NotHttp,
}

/// What is wrong with an AWS response.
#[derive(Debug, thiserror::Error)]
pub enum ResponseProblem {
    #[error("invalid XML: {0}")]
    Xml(#[source] quick_xml::DeError),
    #[error("no ETag header, so the object cannot be updated safely")]
    NoEtag,
    #[error("more than 10000 result pages; nextToken never ends")]
    EndlessPages,
    #[error("the response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error(
        "AWS credentials not found ({chain}): {reason}; set credentials the way the AWS CLI reads them: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/config or ~/.aws/credentials (providers[].profile in the cluster config or AWS_PROFILE; run `aws sso login` for SSO profiles), web identity or an instance role"
    )]
    Credentials {
        /// Which chain was asked: "profile \"x\" from providers[].profile", "default chain".
        chain: String,
        /// The provider's error with its whole chain, for the message.
        reason: String,
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    #[error(
        "AWS profile {profile:?} ({origin}) is not defined in {files}{available}; add [profile {profile}] to the config file (or [{profile}] to the credentials file), or fix the profile name"
    )]
    ProfileNotFound {
        profile: String,
        /// "providers[].profile in the cluster config" or "AWS_PROFILE".
        origin: String,
        /// The files read, each with whether it exists.
        files: String,
        /// "; defined: a, b", or empty.
        available: String,
    },
    #[error(
        "the AWS shared config files cannot be read ({files}): {source}; fix or remove the file"
    )]
    ProfileFiles {
        files: String,
        #[source]
        source: aws_config::profile::ProfileFileLoadError,
    },
    #[error(
        "no AWS region: the cluster config names none and neither AWS_REGION, AWS_DEFAULT_REGION, the profile's region nor instance metadata gives one; set providers[].region in the cluster config"
    )]
    NoRegion,
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
    #[error("{what}: cannot sign the request to {url}: {source}")]
    Signing {
        what: String,
        url: String,
        /// `aws_sigv4`'s signing or parameter error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
    #[error("s3://{bucket}/{key}: unusable bucket or key name: {reason}")]
    BadName {
        bucket: String,
        key: String,
        #[source]
        reason: s3::NameProblem,
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

/// Where environment variables are read from: the process, or an explicit map (tests, and
/// callers that must not depend on the process environment). The AWS credential chain reads
/// its variables (AWS_PROFILE, AWS_CONFIG_FILE, HOME, …) from here too.
#[derive(Clone, Default)]
pub enum EnvSource {
    #[default]
    Process,
    Vars(BTreeMap<String, String>),
}

/// Names only: the values include secrets.
impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvSource::Process => f.write_str("Process"),
            EnvSource::Vars(m) => f.debug_tuple("Vars").field(&m.keys()).finish(),
        }
    }
}

impl EnvSource {
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match self {
            EnvSource::Process => std::env::var(name).ok(),
            EnvSource::Vars(m) => m.get(name).cloned(),
        };
        v.filter(|v| !v.trim().is_empty())
    }

    /// Every variable (a snapshot of the process environment for `Process`).
    fn all(&self) -> BTreeMap<String, String> {
        match self {
            EnvSource::Process => std::env::vars().collect(),
            EnvSource::Vars(m) => m.clone(),
        }
    }
}

/// Region, profile, where the environment comes from, and optional endpoint overrides.
#[derive(Debug, Clone)]
pub struct Config {
    /// The region from the cluster config; empty means the chain's (AWS_REGION, the profile's
    /// `region`, instance metadata).
    pub region: String,
    /// The profile from the cluster config (`providers[].profile`); `None` means the chain's
    /// choice (AWS_PROFILE, else `default`).
    pub profile: Option<String>,
    pub env: EnvSource,
    pub s3_endpoint: Option<Url>,
    pub ec2_endpoint: Option<Url>,
}

impl Config {
    /// Reads the endpoint overrides from `env` and keeps `env` for the credential chain, which
    /// is resolved on first use (see [`Client::resolve`]).
    pub fn from_env(region: &str, env: &EnvSource) -> Result<Config, AwsError> {
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
            region: region.trim().to_string(),
            profile: None,
            env: env.clone(),
            s3_endpoint: endpoint("AWS_ENDPOINT_URL_S3")?,
            ec2_endpoint: endpoint("AWS_ENDPOINT_URL_EC2")?,
        })
    }

    /// Selects the profile named in the cluster config; an empty name keeps the chain's choice.
    pub fn with_profile(mut self, profile: &str) -> Config {
        let p = profile.trim();
        self.profile = (!p.is_empty()).then(|| p.to_string());
        self
    }
}

/// An HTTP client plus the settings to sign requests with. Cloning shares the resolved
/// credentials.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Config,
    retry: RetryPolicy,
    auth: Arc<auth::Auth>,
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
        Ok(Client {
            http,
            auth: Arc::new(auth::Auth::new(&config)),
            config,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy (tests shorten the delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Resolves the region and the credentials now (later calls reuse them until they are
    /// about to expire), so a missing profile or missing credentials is reported before
    /// anything changes. Returns the region and the access key id in use.
    pub async fn resolve(&self) -> Result<(String, String), AwsError> {
        let region = self.auth.region().await?;
        let creds = self.auth.credentials().await?;
        Ok((region, creds.access_key_id().to_string()))
    }
}

#[cfg(test)]
mod tests;
