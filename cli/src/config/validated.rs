//! The result of full validation: the config as written plus the values validation parsed,
//! typed, so that generation reads them instead of parsing the strings again.

use std::ops::Deref;

use ipnet::Ipv4Net;
use url::Url;
use vmagent::contract::Provider as ProviderKind;

use super::service_network::ServiceNetwork;
use super::types::{ClusterConfig, Provider};

/// Kubernetes API port when `cluster.kubernetes.api_port` is unset.
pub const DEFAULT_API_PORT: u16 = 6443;

/// A cluster config that passed [`validate`](super::validate). Built only by validation; it
/// dereferences to the [`ClusterConfig`] as written (generation renders those strings
/// byte for byte) and carries the parsed forms of the values rules were checked on.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    config: ClusterConfig,
    issuer_url: Url,
    api_port: u16,
    acme_server: Option<Url>,
    service_network: ServiceNetwork,
    provider: ValidProvider,
}

/// The first entry of `cluster.providers` (the rendered one), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidProvider {
    /// `kind`, parsed with the node contract's names.
    pub kind: ProviderKind,
    /// `vpc.v4cidr`, canonical, when a new VPC is described.
    pub vpc_v4cidr: Option<Ipv4Net>,
    /// The entry as written.
    pub config: Provider,
}

impl Validated {
    pub(super) fn new(
        config: ClusterConfig,
        issuer_url: Url,
        api_port: u16,
        acme_server: Option<Url>,
        service_network: ServiceNetwork,
        provider: ValidProvider,
    ) -> Self {
        Self {
            config,
            issuer_url,
            api_port,
            acme_server,
            service_network,
            provider,
        }
    }

    /// The config as written.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The config as written, taken out.
    pub fn into_config(self) -> ClusterConfig {
        self.config
    }

    /// `cluster.oidc.issuer_url`, parsed by the node's `OIDC_ISSUER` rule.
    pub fn issuer_url(&self) -> &Url {
        &self.issuer_url
    }

    /// `cluster.kubernetes.api_port`, or [`DEFAULT_API_PORT`] when unset.
    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// `cluster.acme.server` (Let's Encrypt production when unset); `None` without ACME.
    pub fn acme_server(&self) -> Option<&Url> {
        self.acme_server.as_ref()
    }

    /// The service networks (defaults when `service_cidr` is empty) and their reserved
    /// addresses.
    pub fn service_network(&self) -> &ServiceNetwork {
        &self.service_network
    }

    /// The rendered provider: `cluster.providers[0]`.
    pub fn provider(&self) -> &ValidProvider {
        &self.provider
    }
}

impl Deref for Validated {
    type Target = ClusterConfig;

    fn deref(&self) -> &ClusterConfig {
        &self.config
    }
}
