//! Light and full validation of a cluster config.
//!
//! [`validate`] runs the full rule set in a fixed order and returns the FIRST failure. Maps
//! are `BTreeMap`s, so pools, zones, roles, load balancers and secrets providers are checked
//! in sorted key order and the first reported error does not depend on hashing.
//!
//! The format rules for single values live in `predicates`, the checks of one cloud provider
//! entry in `provider`; the rules only Terraform generation needs are in `crate::tfgen`.

mod predicates;
mod provider;

use std::collections::HashSet;

use thiserror::Error;

use super::service_network::{ServiceCidrError, service_network};
use super::types::{
    Acme, Cluster, ClusterConfig, Components, DOMAIN_PROVIDER_KINDS, Provider, Seed,
};
use super::validated::{DEFAULT_API_PORT, Validated};
use predicates::{https_url, is_label};
use provider::{check_provider, require_listener};

pub use predicates::{
    DnsNameError, IdError, check_cluster_id, check_dns_name, is_aws_region, is_bare_email,
    is_zone_in_region,
};

/// Why `cluster.seed` is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeedError {
    #[error("seed.name must be recommended, minimal, or none")]
    Name,
    #[error("seed.digest is required")]
    DigestRequired,
    #[error("seed.digest must be a sha512 digest in sha512:<hex> format")]
    DigestFormat,
}

/// Why `cluster.components` is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComponentsError {
    #[error("components.source.url is required")]
    UrlRequired,
    #[error("components.source.ref must set at most one of branch, tag, semver, or commit")]
    TooManyRefs,
    #[error("components.source.secretRef.name is required when secretRef is set")]
    SecretRefName,
}

/// First failure of [`validate`]. `Display` is the user-facing message, prefixed with the
/// path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("cluster.id: {0}")]
    Id(#[source] IdError),
    #[error("cluster.oidc.issuer_url is required")]
    IssuerUrlRequired,
    /// The issuer URL breaks the rule the node applies to `OIDC_ISSUER` (one shared function,
    /// `vmagent::contract::oidc_issuer_url`), so kube-apiserver would never get it.
    #[error("cluster.oidc.issuer_url {value:?} {source}")]
    IssuerUrl {
        value: String,
        #[source]
        source: vmagent::contract::UrlRuleError,
    },
    /// A DNS-name rule failure at `field`.
    #[error("{field}: {error}")]
    DnsName {
        field: String,
        #[source]
        error: DnsNameError,
    },
    #[error("cluster.kubernetes.service_cidr: {0}")]
    ServiceCidr(#[source] ServiceCidrError),
    #[error("cluster.seed: {0}")]
    Seed(#[source] SeedError),
    #[error("cluster.components: {0}")]
    Components(#[source] ComponentsError),
    /// `<field>: <problem>` (ACME, secrets, load balancer references).
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// `<field> <problem>` (most rules read this way: `cluster.pools.x.arch must …`).
    #[error("{field} {problem}")]
    Rule { field: String, problem: String },
}

impl ValidationError {
    /// The config path of the field at fault (`cluster.pools.main.arch`).
    pub fn field(&self) -> &str {
        match self {
            ValidationError::Id(_) => "cluster.id",
            ValidationError::IssuerUrlRequired | ValidationError::IssuerUrl { .. } => {
                "cluster.oidc.issuer_url"
            }
            ValidationError::DnsName { field, .. }
            | ValidationError::Field { field, .. }
            | ValidationError::Rule { field, .. } => field,
            ValidationError::ServiceCidr(_) => "cluster.kubernetes.service_cidr",
            ValidationError::Seed(_) => "cluster.seed",
            ValidationError::Components(_) => "cluster.components",
        }
    }

    /// A [`ValidationError::Rule`]: `<field> <problem>`.
    pub(crate) fn rule(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ValidationError::Rule {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn rule(field: impl Into<String>, problem: impl Into<String>) -> ValidationError {
    ValidationError::rule(field, problem)
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ValidationError {
    ValidationError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Seed rules (light and full validation).
pub fn check_seed(seed: &Seed) -> Result<(), SeedError> {
    if !matches!(seed.name.as_str(), "" | "recommended" | "minimal" | "none") {
        return Err(SeedError::Name);
    }
    if matches!(seed.name.as_str(), "recommended" | "minimal") {
        if seed.digest.is_empty() {
            return Err(SeedError::DigestRequired);
        }
        let ok = seed.digest.split_once(':').is_some_and(|(alg, hex)| {
            alg == "sha512"
                && hex.len() == 128
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !ok {
            return Err(SeedError::DigestFormat);
        }
    }
    Ok(())
}

/// Components source rules (light and full validation).
pub fn check_components(components: &Components) -> Result<(), ComponentsError> {
    let Some(source) = &components.source else {
        return Ok(());
    };
    if source.url.trim().is_empty() {
        return Err(ComponentsError::UrlRequired);
    }
    let r = &source.git_ref;
    let refs = [&r.branch, &r.tag, &r.semver, &r.commit];
    if refs.iter().filter(|s| !s.is_empty()).count() > 1 {
        return Err(ComponentsError::TooManyRefs);
    }
    if source
        .secret_ref
        .as_ref()
        .is_some_and(|s| s.name.trim().is_empty())
    {
        return Err(ComponentsError::SecretRefName);
    }
    Ok(())
}

/// ACME rules; on success the directory URL (the default one when `server` is unset).
fn check_acme(acme: &Acme, cluster: &Cluster) -> Result<url::Url, &'static str> {
    if !is_bare_email(&acme.email) {
        return Err("email must be a valid email address");
    }
    let server = if acme.server.is_empty() {
        super::types::DEFAULT_ACME_SERVER
    } else {
        &acme.server
    };
    let Some(server) = https_url(server) else {
        return Err("server must be a valid HTTPS URL");
    };
    let supported = cluster
        .domains
        .iter()
        .any(|d| d.provider.as_ref().is_some_and(|p| p.kind == "aws-route53"));
    if !supported {
        return Err("requires at least one domain with a supported ACME DNS provider");
    }
    Ok(server)
}

fn check_secrets_name(prefix: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{prefix} is required"));
    }
    if name.len() > 32 || !is_label(name) || name.contains("--") {
        return Err(format!(
            "{prefix} must be lowercase alphanumeric with hyphens, no leading/trailing hyphens, no consecutive hyphens, no dots, and at most 32 characters"
        ));
    }
    Ok(())
}

fn check_secrets(cluster: &Cluster) -> Result<(), String> {
    let secrets = &cluster.secrets;
    if secrets.providers.is_empty() {
        if !secrets.default_provider.is_empty() {
            return Err("default_provider requires at least one provider".into());
        }
        return Ok(());
    }
    if secrets.default_provider.is_empty() {
        return Err("default_provider is required when providers are configured".into());
    }
    check_secrets_name("default_provider", &secrets.default_provider)?;
    for (name, provider) in &secrets.providers {
        let prefix = format!("providers.{name}");
        check_secrets_name(&prefix, name)?;
        if !provider.key_prefix.is_empty() {
            check_secrets_name(&format!("{prefix}.key_prefix"), &provider.key_prefix)?;
        }
        match provider.kind.as_str() {
            "aws" => {
                if !matches!(
                    provider.object_type.as_str(),
                    "secretsmanager" | "ssmparameter"
                ) {
                    return Err(format!(
                        "{prefix}.object_type must be secretsmanager or ssmparameter for aws"
                    ));
                }
            }
            "gcp" => {
                if provider.project_id.is_empty() {
                    return Err(format!("{prefix}.project_id is required for gcp"));
                }
            }
            "vault" | "openbao" => {}
            "" => return Err(format!("{prefix}.kind is required")),
            _ => return Err(format!("{prefix}.kind must be aws, gcp, vault, or openbao")),
        }
    }
    if !secrets.providers.contains_key(&secrets.default_provider) {
        return Err(format!(
            "default_provider {:?} does not match a configured provider",
            secrets.default_provider
        ));
    }
    Ok(())
}

fn check_domains(cluster: &Cluster, provider: &Provider) -> Result<(), ValidationError> {
    let mut zones = HashSet::new();
    for (i, domain) in cluster.domains.iter().enumerate() {
        let prefix = format!("cluster.domains[{i}]");
        check_dns_name(&domain.zone).map_err(|error| ValidationError::DnsName {
            field: format!("{prefix}.zone"),
            error,
        })?;
        if !zones.insert(domain.zone.as_str()) {
            return Err(rule(
                format!("{prefix}.zone"),
                format!("duplicates {:?}", domain.zone),
            ));
        }
        if let Some(p) = &domain.provider
            && !DOMAIN_PROVIDER_KINDS.contains(&p.kind.as_str())
        {
            return Err(rule(
                format!("{prefix}.provider.kind"),
                "must be aws-route53, cloudflare, google-cloud-dns, or local",
            ));
        }
        require_listener(provider, domain.resolved_load_balancer(), 443, 443, None)
            .map_err(|p| field(format!("{prefix}.load_balancer"), p))?;
    }
    let k = &cluster.kubernetes;
    if !k.api_load_balancer.is_empty() {
        let lb = k.api_load_balancer.as_str();
        if let Some(d) = cluster
            .domains
            .iter()
            .find(|d| d.zone == k.api_hostname && d.resolved_load_balancer() != lb)
        {
            return Err(rule(
                "cluster.kubernetes.api_load_balancer",
                format!(
                    "{lb:?} conflicts with domain apex {:?} load balancer {:?}",
                    d.zone,
                    d.resolved_load_balancer()
                ),
            ));
        }
        let port = if k.api_port == 0 { 6443 } else { k.api_port };
        require_listener(provider, lb, port, 6443, Some("control-plane"))
            .map_err(|p| field("cluster.kubernetes.api_load_balancer", p))?;
    }
    Ok(())
}

/// Full validation: every rule in a fixed order (the order upstream podplane checked in).
/// First failure wins; success gives the config with its parsed values ([`Validated`]).
pub fn validate(cfg: &ClusterConfig) -> Result<Validated, ValidationError> {
    let c = &cfg.cluster;
    check_cluster_id(&c.id).map_err(ValidationError::Id)?;
    if c.oidc.issuer_url.is_empty() {
        return Err(ValidationError::IssuerUrlRequired);
    }
    let issuer_url = vmagent::contract::oidc_issuer_url(&c.oidc.issuer_url).map_err(|source| {
        ValidationError::IssuerUrl {
            value: c.oidc.issuer_url.clone(),
            source,
        }
    })?;
    check_dns_name(&c.kubernetes.api_hostname).map_err(|error| ValidationError::DnsName {
        field: "cluster.kubernetes.api_hostname".into(),
        error,
    })?;
    let api_port = match u16::try_from(c.kubernetes.api_port) {
        Ok(0) => DEFAULT_API_PORT,
        Ok(port) => port,
        Err(_) => {
            return Err(rule(
                "cluster.kubernetes.api_port",
                "must be 1-65535 when set",
            ));
        }
    };
    if !c.registry.hostname.is_empty() {
        check_dns_name(&c.registry.hostname).map_err(|error| ValidationError::DnsName {
            field: "cluster.registry.hostname".into(),
            error,
        })?;
    }
    if !c.domains.is_empty() && c.registry.hostname.is_empty() {
        return Err(rule(
            "cluster.registry.hostname",
            "is required when domains are configured",
        ));
    }
    let acme_server = match &c.acme {
        Some(acme) => Some(check_acme(acme, c).map_err(|p| field("cluster.acme", p))?),
        None => None,
    };
    let network =
        service_network(&c.kubernetes.service_cidr).map_err(ValidationError::ServiceCidr)?;
    if c.components
        .registry
        .as_ref()
        .is_some_and(|r| r.mirror.enabled)
        && c.registry_mirror_hostname().is_empty()
    {
        return Err(rule(
            "cluster.registry.hostname",
            "is required when components.registry.mirror.enabled is true without components.registry.mirror.hostname",
        ));
    }
    check_seed(&c.seed).map_err(ValidationError::Seed)?;
    check_components(&c.components).map_err(ValidationError::Components)?;
    check_secrets(c).map_err(|p| field("cluster.secrets", p))?;
    let Some(first_provider) = c.providers.first() else {
        return Err(rule(
            "cluster.providers",
            "must contain at least one provider",
        ));
    };
    if c.pools.is_empty() {
        return Err(rule("cluster.pools", "must contain at least one pool"));
    }
    for (name, pool) in &c.pools {
        if name.is_empty() {
            return Err(rule("cluster.pools", "contains an empty pool name"));
        }
        if vmagent::contract::Arch::parse(&pool.arch).is_none() {
            return Err(rule(
                format!("cluster.pools.{name}.arch"),
                "must be amd64 or arm64",
            ));
        }
        if pool.instance_type.is_empty() {
            return Err(rule(
                format!("cluster.pools.{name}.instance_type"),
                "is required",
            ));
        }
        if pool.size < 0 {
            return Err(rule(format!("cluster.pools.{name}.size"), "must be >= 0"));
        }
    }
    let valid_provider = check_provider(c, 0, first_provider)?;
    for (i, provider) in c.providers.iter().enumerate().skip(1) {
        check_provider(c, i, provider)?;
    }
    check_domains(c, first_provider)?;
    Ok(Validated::new(
        cfg.clone(),
        issuer_url,
        api_port,
        acme_server,
        network,
        valid_provider,
    ))
}
