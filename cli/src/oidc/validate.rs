//! Full validation of `podplane.oidc.jsonc`. The first failure is reported, in the order
//! upstream podplane checked; clients are checked in sorted name order, so the failure is
//! deterministic.

use super::types::OidcConfig;
use super::url::{UrlPartsError, url_parts};

/// A failed rule. `Display` is the message after `OIDC config <path>: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("oidc.provider.kind is required")]
    ProviderKindRequired,
    #[error("oidc.provider.kind google is not supported until the Easy OIDC Google module exists")]
    ProviderGoogle,
    #[error("oidc.provider.kind {0:?} is not supported")]
    ProviderKindUnsupported(String),
    #[error("oidc.provider.region is required for aws")]
    RegionRequired,
    #[error("oidc.hostname is required")]
    HostnameRequired,
    /// The hostname contains `://` but is not a URL with a host (the cause says why).
    #[error("oidc.hostname must be a hostname, not a URL")]
    HostnameUrl(#[source] UrlPartsError),
    #[error("oidc.domain.provider.kind {0:?} is not supported for managed DNS yet")]
    DomainProviderUnsupported(String),
    #[error("oidc.connector.kind is required")]
    ConnectorKindRequired,
    #[error("oidc.connector.kind {0:?} is not supported")]
    ConnectorKindUnsupported(String),
    #[error("oidc.connector.client_secret_arn is required")]
    ClientSecretArnRequired,
    #[error("oidc.signing_key_secret_arn is required")]
    SigningKeySecretArnRequired,
    #[error("oidc.clients contains an empty client name")]
    EmptyClientName,
    #[error("oidc.clients.{client}.groups_override references unknown groups override {name:?}")]
    UnknownGroupsOverride { client: String, name: String },
}

/// An OIDC config that passed [`validate`]: the config as written (it dereferences to it) plus
/// the issuer URL and served host, split from `oidc.hostname` once.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOidc {
    config: OidcConfig,
    issuer_url: String,
    host: String,
}

impl ValidOidc {
    /// The config as written.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// `https://<hostname>`, or `<scheme>://<host>` when the hostname was given as a URL.
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// The host the server answers on (the module's `oidc_addr`), with its port if given.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl std::ops::Deref for ValidOidc {
    type Target = OidcConfig;

    fn deref(&self) -> &OidcConfig {
        &self.config
    }
}

/// Runs every rule in order and returns the first failure, or the [`ValidOidc`] config.
pub fn validate(cfg: &OidcConfig) -> Result<ValidOidc, ValidationError> {
    use ValidationError as E;
    let o = &cfg.oidc;
    match o.provider.kind.as_str() {
        "aws" => {
            if o.provider.region.is_empty() {
                return Err(E::RegionRequired);
            }
        }
        "google" | "gcp" => return Err(E::ProviderGoogle),
        "" => return Err(E::ProviderKindRequired),
        k => return Err(E::ProviderKindUnsupported(k.into())),
    }
    if o.hostname.is_empty() {
        return Err(E::HostnameRequired);
    }
    let (issuer_url, host) = match url_parts(&o.hostname) {
        Some(Ok((scheme, host))) => (format!("{scheme}://{host}"), host),
        Some(Err(why)) => return Err(E::HostnameUrl(why)),
        None => (format!("https://{}", o.hostname), o.hostname.clone()),
    };
    let dns = &o.domain.provider.kind;
    if !dns.is_empty() && dns != "aws" {
        return Err(E::DomainProviderUnsupported(dns.clone()));
    }
    match o.connector.kind.as_str() {
        "google" | "github" => {}
        "" => return Err(E::ConnectorKindRequired),
        k => return Err(E::ConnectorKindUnsupported(k.into())),
    }
    if o.connector.client_secret_arn.is_empty() {
        return Err(E::ClientSecretArnRequired);
    }
    if o.signing_key_secret_arn.is_empty() {
        return Err(E::SigningKeySecretArnRequired);
    }
    for (name, client) in &o.clients {
        if name.is_empty() {
            return Err(E::EmptyClientName);
        }
        let g = &client.groups_override;
        if !g.is_empty() && !o.groups_overrides.contains_key(g) {
            return Err(E::UnknownGroupsOverride {
                client: name.clone(),
                name: g.clone(),
            });
        }
    }
    Ok(ValidOidc {
        config: cfg.clone(),
        issuer_url,
        host,
    })
}
