//! The region and credentials, from the standard chain via `aws-config`, resolved once per
//! client and cached until the credentials are about to expire.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls;
use aws_types::os_shim_internal::{Env, Fs};
use aws_types::region::Region;
use tokio::sync::{Mutex, OnceCell};

use super::{AwsError, Config, EnvSource};

/// Credentials that expire sooner than this are fetched again before a request.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Variables that would make the chain use keys from the environment instead of a profile the
/// cluster config names.
const STATIC_KEY_VARS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
];

pub(super) struct Auth {
    region: String,
    profile: Option<String>,
    env: EnvSource,
    loaded: OnceCell<Loaded>,
    cached: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    region: Option<String>,
    /// Always set by the default loader.
    provider: Option<SharedCredentialsProvider>,
    /// Which chain answers, for error messages.
    chain: String,
}

impl Auth {
    pub(super) fn new(config: &Config) -> Auth {
        Auth {
            region: config.region.clone(),
            profile: config.profile.clone(),
            env: config.env.clone(),
            loaded: OnceCell::new(),
            cached: Mutex::new(None),
        }
    }

    pub(super) async fn region(&self) -> Result<String, AwsError> {
        self.loaded()
            .await?
            .region
            .clone()
            .ok_or(AwsError::NoRegion)
    }

    /// Current credentials: the cached ones while they stay valid for a while, else new ones
    /// from the provider (which may run `credential_process`, call SSO or STS, or ask IMDS).
    pub(super) async fn credentials(&self) -> Result<Credentials, AwsError> {
        let loaded = self.loaded().await?;
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let soon = SystemTime::now() + REFRESH_BEFORE_EXPIRY;
            if c.expiry().is_none_or(|e| e > soon) {
                return Ok(c.clone());
            }
        }
        let result = match &loaded.provider {
            Some(p) => p.provide_credentials().await,
            None => Err(CredentialsError::not_loaded(
                "no credential provider configured",
            )),
        };
        let creds = result.map_err(|source| AwsError::Credentials {
            chain: loaded.chain.clone(),
            reason: error_chain(&source),
            source,
        })?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    async fn loaded(&self) -> Result<&Loaded, AwsError> {
        self.loaded.get_or_try_init(|| self.load()).await
    }

    async fn load(&self) -> Result<Loaded, AwsError> {
        let mut vars = self.env.all();
        let (profile, origin) = match &self.profile {
            Some(p) => {
                // Like the AWS CLI's --profile (and the Terraform provider's `profile`): the
                // named profile, never keys that happen to be in the environment.
                for k in STATIC_KEY_VARS {
                    vars.remove(k);
                }
                (Some(p.clone()), "providers[].profile in the cluster config")
            }
            None => (
                vars.get("AWS_PROFILE")
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty()),
                "AWS_PROFILE",
            ),
        };
        let env = Env::from(vars.clone().into_iter().collect::<HashMap<_, _>>());
        if let Some(p) = &profile {
            check_profile(&env, &vars, p, origin).await?;
        }
        // The providers' own HTTPS client (SSO, STS for web identity, IMDS): rustls with ring.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .env(env)
            .http_client(http);
        if let Some(p) = &profile {
            loader = loader.profile_name(p);
        }
        if !self.region.is_empty() {
            loader = loader.region(Region::new(self.region.clone()));
        }
        let sdk = loader.load().await;
        let chain = match &profile {
            Some(p) => format!("profile {p:?} from {origin}"),
            None => "default chain: environment, default profile, web identity, container, instance metadata".to_string(),
        };
        Ok(Loaded {
            region: sdk.region().map(|r| r.to_string()),
            provider: sdk.credentials_provider(),
            chain,
        })
    }
}

/// Fails with the profile, where it was named, the files read and the profiles they define
/// when `profile` is in none of them. (The chain itself would fall through to instance metadata
/// and end with a vaguer error.)
async fn check_profile(
    env: &Env,
    vars: &BTreeMap<String, String>,
    profile: &str,
    origin: &str,
) -> Result<(), AwsError> {
    let files = shared_files(vars)
        .iter()
        .map(|(path, var)| {
            let state = if path.is_file() { "" } else { ", missing" };
            format!("{} ({var}{state})", path.display())
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let set = aws_config::profile::load(
        &Fs::real(),
        env,
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        None,
    )
    .await
    .map_err(|source| AwsError::ProfileFiles {
        files: files.clone(),
        source,
    })?;
    if set.get_profile(profile).is_some() {
        return Ok(());
    }
    let mut names: Vec<&str> = set.profiles().collect();
    names.sort_unstable();
    let available = if names.is_empty() {
        "; they define no profiles".to_string()
    } else {
        format!("; defined: {}", names.join(", "))
    };
    Err(AwsError::ProfileNotFound {
        profile: profile.to_string(),
        origin: origin.to_string(),
        files,
        available,
    })
}

/// The shared config and credentials files the chain reads, with the variable that chose each
/// path (or the default's name), `~/` expanded as the AWS tools do.
fn shared_files(vars: &BTreeMap<String, String>) -> [(PathBuf, &'static str); 2] {
    let home = vars.get("HOME").filter(|h| !h.is_empty());
    let expand = |p: &str| -> PathBuf {
        match (p.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
            _ => PathBuf::from(p),
        }
    };
    let pick = |var: &'static str, default: &str| match vars.get(var).filter(|v| !v.is_empty()) {
        Some(v) => (expand(v), var),
        None => (expand(default), "default"),
    };
    [
        pick("AWS_CONFIG_FILE", "~/.aws/config"),
        pick("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    ]
}

/// An error and its causes, for messages (the providers put the useful part in the causes).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
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
