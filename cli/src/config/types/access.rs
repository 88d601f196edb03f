//! How the cluster is reached and trusted: `cluster.oidc`, `cluster.acme`, `cluster.domains`,
//! `cluster.registry` and `cluster.kubernetes`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DOMAIN_PROVIDER_KINDS, OneOf, Require, is_false, is_zero};

/// `cluster.oidc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["issuer_url"]))]
pub struct Oidc {
    /// Issuer URL trusted by the Kubernetes API server.
    #[schemars(extend("format" = "uri"))]
    pub issuer_url: String,
    /// Client ID; defaults to the cluster ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Username claim; defaults to `email`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_claim: String,
    /// Groups claim; defaults to `groups`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub groups_claim: String,
    /// Accepted signing algorithms; unset means RS256.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_algs: Vec<String>,
    /// Issuer CA: inline PEM, http(s) URL or file path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_cert: String,
}

/// `cluster.acme`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["email"]))]
pub struct Acme {
    /// ACME directory (https); defaults to Let's Encrypt production.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// Account email, a bare address.
    pub email: String,
}

/// One entry of `cluster.domains`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["zone"]))]
pub struct Domain {
    /// DNS zone.
    pub zone: String,
    /// DNS provider; absent means manual DNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<DomainProvider>,
    /// Load balancer serving the zone; defaults to `main`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub load_balancer: String,
}

impl Domain {
    /// The load balancer the domain uses (`main` when unset).
    pub fn resolved_load_balancer(&self) -> &str {
        if self.load_balancer.is_empty() {
            "main"
        } else {
            &self.load_balancer
        }
    }
}

/// `cluster.domains[].provider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind"]))]
pub struct DomainProvider {
    /// DNS provider kind.
    #[schemars(transform = OneOf(DOMAIN_PROVIDER_KINDS))]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hosted_zone_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_provider_class_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hosted_zone_name: String,
}

/// `cluster.registry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Registry {
    /// Registry hostname; required when domains are configured.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Optional public registry ingress.
    pub ingress: RegistryIngress,
}

/// `cluster.registry.ingress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryIngress {
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
}

/// `cluster.kubernetes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["api_hostname"]))]
pub struct Kubernetes {
    /// DNS name of the API server.
    pub api_hostname: String,
    /// API port; defaults to 6443.
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1, max = 65535))]
    pub api_port: i64,
    /// Load balancer exposing the API.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_load_balancer: String,
    /// Pod networks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster_cidr: Vec<String>,
    /// Service networks: IPv4 first, at most one per family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_cidr: Vec<String>,
}
