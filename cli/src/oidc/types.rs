//! Rust model of `podplane.oidc.jsonc`, the Easy OIDC server config.
//!
//! Like the cluster model, every struct rejects unknown keys and every map rejects duplicate
//! keys; absent fields default so that validation reports them with its own messages
//! (`oidc.hostname is required`). The JSON schema still marks them `required`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::url::url_parts;
use crate::config::{OneOf, Require};

/// `$schema` value for new OIDC config files.
pub const DEFAULT_SCHEMA_REF: &str = "./podplane.oidc.schema.json";
/// `oidc.provider.kind` as accepted by the schema (generation supports only `aws`).
pub const PROVIDER_KINDS: &[&str] = &["aws", "google", "gcp"];
/// `oidc.domain.provider.kind` (empty means manual DNS).
pub const DOMAIN_PROVIDER_KINDS: &[&str] = &["aws"];
/// `oidc.connector.kind`.
pub const CONNECTOR_KINDS: &[&str] = &["google", "github"];

/// A `podplane.oidc.jsonc` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(
    title = "Podplane OIDC config",
    description = "Configuration for an Easy OIDC server deployment managed by Podplane.",
    transform = Require(&["oidc"])
)]
pub struct OidcConfig {
    /// Path or URL of the JSON schema, for editors (Podplane writes a local relative path).
    #[serde(rename = "$schema", skip_serializing_if = "String::is_empty")]
    pub schema: String,
    /// The Easy OIDC server.
    pub oidc: Oidc,
}

/// The `oidc` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["provider", "hostname", "connector", "signing_key_secret_arn"]))]
pub struct Oidc {
    /// Cloud provider the server is deployed to.
    pub provider: Provider,
    /// Issuer hostname (or a URL whose host is used); the issuer is https://<hostname>.
    pub hostname: String,
    /// DNS zone of the hostname and its DNS provider.
    pub domain: Domain,
    /// Upstream OAuth connector.
    pub connector: Connector,
    /// AWS Secrets Manager ARN containing the OIDC signing key.
    pub signing_key_secret_arn: String,
    /// Default redirect URIs for clients that do not set their own redirect_uris.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_redirect_uris: Vec<String>,
    /// OIDC clients keyed by client name.
    #[serde(
        deserialize_with = "crate::config::strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub clients: BTreeMap<String, Client>,
    /// Static group mappings keyed by override name, referenced by clients' groups_override.
    #[serde(
        deserialize_with = "crate::config::strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub groups_overrides: BTreeMap<String, GroupsOverride>,
}

/// `oidc.provider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind"]))]
pub struct Provider {
    /// Cloud provider used to deploy Easy OIDC. Podplane currently supports aws.
    #[schemars(transform = OneOf(PROVIDER_KINDS))]
    pub kind: String,
    /// Provider region. Required for aws.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// Provider account identifier, such as an AWS account ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Local provider credentials profile name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// Google Cloud project ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
}

/// `oidc.domain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Domain {
    /// DNS zone for the OIDC hostname.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub zone: String,
    /// DNS provider for managed records; absent means manual DNS.
    #[serde(skip_serializing_if = "DomainProvider::is_empty")]
    pub provider: DomainProvider,
}

/// `oidc.domain.provider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DomainProvider {
    /// DNS provider used for managed OIDC DNS records. Podplane currently supports aws.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(DOMAIN_PROVIDER_KINDS))]
    pub kind: String,
    /// Provider-specific hosted zone ID. For AWS, the Route 53 hosted zone ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hosted_zone_id: String,
}

impl DomainProvider {
    fn is_empty(&self) -> bool {
        self.kind.is_empty() && self.hosted_zone_id.is_empty()
    }
}

/// `oidc.connector`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind", "client_secret_arn"]))]
pub struct Connector {
    /// Upstream OAuth connector used by Easy OIDC.
    #[schemars(transform = OneOf(CONNECTOR_KINDS))]
    pub kind: String,
    /// AWS Secrets Manager ARN containing the upstream OAuth client ID and client secret.
    pub client_secret_arn: String,
}

/// `oidc.clients.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Client {
    /// Name of a groups_overrides entry to apply to this client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub groups_override: String,
    /// Redirect URIs allowed for this client. Overrides default_redirect_uris when set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
}

/// `oidc.groups_overrides.<name>`: user email or subject → static group names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct GroupsOverride(
    #[serde(deserialize_with = "crate::config::strict_map")] pub BTreeMap<String, Vec<String>>,
);

impl OidcConfig {
    /// Whether the DNS record is managed (Route 53 zone lookup + `route53_zone_id`):
    /// `domain.provider.kind` is `aws` and `domain.zone` is set.
    pub fn dns_managed(&self) -> bool {
        self.oidc.domain.provider.kind == "aws" && !self.oidc.domain.zone.is_empty()
    }

    /// The issuer URL: `https://<hostname>`, or `<scheme>://<host>` when the hostname was
    /// given as a URL. Empty when the hostname is.
    pub fn issuer_url(&self) -> String {
        let h = &self.oidc.hostname;
        if h.is_empty() {
            return String::new();
        }
        match url_parts(h) {
            Some(Ok((scheme, host))) => format!("{scheme}://{host}"),
            _ => format!("https://{h}"),
        }
    }

    /// The host the server answers on (the module's `oidc_addr`): the hostname, or the host
    /// (with port, without user info) of a hostname given as a URL.
    pub fn host(&self) -> String {
        let h = &self.oidc.hostname;
        match url_parts(h) {
            Some(Ok((_, host))) => host,
            _ => h.clone(),
        }
    }
}
