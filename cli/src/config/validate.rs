//! Light and full validation of a cluster config.
//!
//! [`validate`] runs the full rule set in a fixed order and returns the FIRST failure. Maps
//! are `BTreeMap`s, so pools, zones, roles, load balancers and secrets providers are checked
//! in sorted key order and the first reported error does not depend on hashing.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use thiserror::Error;

use super::service_network::{IpPrefix, ServiceCidrError, service_network};
use super::types::{
    Acme, Cluster, ClusterConfig, Components, DOMAIN_PROVIDER_KINDS, Provider, Seed,
};

/// Why a cluster ID is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("is required")]
    Required,
    #[error("must be at most 32 characters")]
    TooLong,
    #[error("must not contain consecutive hyphens")]
    ConsecutiveHyphens,
    #[error("must be lowercase alphanumeric with hyphens, no leading/trailing hyphens")]
    Charset,
    #[error("{0:?} is reserved")]
    Reserved(String),
}

/// Why a DNS name (hostname, zone) is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DnsNameError {
    #[error("is required")]
    Required,
    #[error("must be at most 253 characters")]
    TooLong,
    #[error("must be lowercase and must not end with a dot")]
    NotLowercaseOrTrailingDot,
    #[error("must be a DNS hostname, not an IP address")]
    IpAddress,
    #[error("must contain only DNS labels")]
    BadLabel,
}

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
    Id(IdError),
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
    DnsName { field: String, error: DnsNameError },
    #[error("cluster.kubernetes.service_cidr: {0}")]
    ServiceCidr(ServiceCidrError),
    #[error("cluster.seed: {0}")]
    Seed(SeedError),
    #[error("cluster.components: {0}")]
    Components(ComponentsError),
    /// `<field>: <problem>` (ACME, secrets, load balancer references).
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    /// `<field> <problem>` (the spec words most rules this way: `cluster.pools.x.arch must …`).
    #[error("{field} {problem}")]
    Rule { field: String, problem: String },
}

fn rule(field: impl Into<String>, problem: impl Into<String>) -> ValidationError {
    ValidationError::Rule {
        field: field.into(),
        problem: problem.into(),
    }
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ValidationError {
    ValidationError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Cluster ID rule (also used for `local --id`).
pub fn check_cluster_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Required);
    }
    if id.len() > 32 {
        return Err(IdError::TooLong);
    }
    if id.contains("--") {
        return Err(IdError::ConsecutiveHyphens);
    }
    if !is_label(id) {
        return Err(IdError::Charset);
    }
    if matches!(id, "local" | "k8s" | "oidc") {
        return Err(IdError::Reserved(id.to_string()));
    }
    Ok(())
}

/// DNS-name rule: non-empty, ≤253, lowercase, no trailing dot, not an IP literal, every
/// label ≤63 and matching the label pattern. Single-label names pass.
pub fn check_dns_name(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Err(DnsNameError::Required);
    }
    if name.len() > 253 {
        return Err(DnsNameError::TooLong);
    }
    if name != name.to_lowercase() || name.ends_with('.') {
        return Err(DnsNameError::NotLowercaseOrTrailingDot);
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(DnsNameError::IpAddress);
    }
    if name.split('.').any(|l| l.len() > 63 || !is_label(l)) {
        return Err(DnsNameError::BadLabel);
    }
    Ok(())
}

/// `^[a-z]{2}(?:-[a-z0-9]+)+-[1-9][0-9]*$` (e.g. `us-west-2`, `us-gov-west-1`).
pub fn is_aws_region(region: &str) -> bool {
    let b = region.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_lowercase() || !b[1].is_ascii_lowercase() || b[2] != b'-' {
        return false;
    }
    let parts: Vec<&str> = region[3..].split('-').collect();
    let Some((last, middle)) = parts.split_last() else {
        return false;
    };
    !middle.is_empty()
        && middle.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && last.starts_with(|c: char| ('1'..='9').contains(&c))
        && last.bytes().all(|c| c.is_ascii_digit())
}

/// A zone belongs to `region` when it is the region plus one letter (`us-west-2a`) or the
/// region plus `-…` (local zone, `us-west-2-lax-1a`).
pub fn is_zone_in_region(region: &str, zone: &str) -> bool {
    let Some(suffix) = zone.strip_prefix(region) else {
        return false;
    };
    let standard = suffix.len() == 1 && suffix.as_bytes()[0].is_ascii_lowercase();
    // Local and Wavelength zones: `us-west-2-lax-1a`, lowercase letters, digits and hyphens.
    let local = suffix.len() > 1
        && suffix.starts_with('-')
        && !suffix.ends_with('-')
        && suffix[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    standard || local
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

/// A bare RFC 5322 `local@domain` address with dot-atom parts (no display name, no angle
/// brackets, no quoted local part, no comments).
pub fn is_bare_email(s: &str) -> bool {
    fn dot_atom(s: &str) -> bool {
        const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
        !s.is_empty()
            && s.split('.').all(|atom| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
            })
    }
    match s.rsplit_once('@') {
        Some((local, domain)) => dot_atom(local) && dot_atom(domain),
        None => false,
    }
}

/// An absolute `https://host[:port][/path]` URL with a non-empty host.
fn is_https_url(s: &str) -> bool {
    let Some(rest) = s
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("https://"))
        .map(|_| &s[8..])
    else {
        return false;
    };
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty()
}

fn check_acme(acme: &Acme, cluster: &Cluster) -> Result<(), &'static str> {
    if !is_bare_email(&acme.email) {
        return Err("email must be a valid email address");
    }
    if !acme.server.is_empty() && !is_https_url(&acme.server) {
        return Err("server must be a valid HTTPS URL");
    }
    let supported = cluster
        .domains
        .iter()
        .any(|d| d.provider.as_ref().is_some_and(|p| p.kind == "aws-route53"));
    if !supported {
        return Err("requires at least one domain with a supported ACME DNS provider");
    }
    Ok(())
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

/// Parses a canonical IPv4 CIDR.
fn canonical_v4(s: &str) -> Option<IpPrefix> {
    IpPrefix::parse(s)
        .ok()
        .filter(|p| p.addr.is_ipv4() && p.is_canonical())
}

fn check_provider(cluster: &Cluster, index: usize, p: &Provider) -> Result<(), ValidationError> {
    let prefix = format!("cluster.providers[{index}]");
    match p.kind.as_str() {
        "aws" => {
            if !is_aws_region(&p.region) {
                return Err(rule(
                    format!("{prefix}.region"),
                    "must be a valid AWS region",
                ));
            }
        }
        "google" => {
            return Err(rule(
                format!("{prefix}.kind"),
                "google is not supported by cluster create yet",
            ));
        }
        "proxmox" => {
            return Err(rule(
                format!("{prefix}.kind"),
                "proxmox is not supported by cluster create",
            ));
        }
        _ => return Err(rule(format!("{prefix}.kind"), "must be aws")),
    }
    let vpc = &p.vpc;
    if !vpc.id.is_empty() && (!vpc.v4cidr.is_empty() || !vpc.v6cidr.is_empty()) {
        return Err(rule(
            format!("{prefix}.vpc.id"),
            "cannot be combined with vpc CIDRs",
        ));
    }
    if vpc.id.is_empty() && vpc.v4cidr.is_empty() {
        return Err(rule(
            format!("{prefix}.vpc.id"),
            "or vpc.v4cidr is required",
        ));
    }
    let vpc_prefix = if vpc.v4cidr.is_empty() {
        None
    } else {
        Some(canonical_v4(&vpc.v4cidr).ok_or_else(|| {
            rule(
                format!("{prefix}.vpc.v4cidr"),
                "must be a canonical IPv4 CIDR",
            )
        })?)
    };
    if !vpc.v6cidr.is_empty() && vpc.v6cidr != "auto" {
        return Err(rule(
            format!("{prefix}.vpc.v6cidr"),
            "only supports \"auto\" for managed AWS generation",
        ));
    }
    if p.zones.is_empty() {
        return Err(rule(
            format!("{prefix}.zones"),
            "must contain at least one zone",
        ));
    }
    let mut roles = BTreeSet::new();
    for (zone, subnets) in &p.zones {
        if zone.is_empty() {
            return Err(rule(
                format!("{prefix}.zones"),
                "contains an empty zone name",
            ));
        }
        if !is_zone_in_region(&p.region, zone) {
            return Err(rule(
                format!("{prefix}.zones.{zone}"),
                format!("must be an availability zone in region {}", p.region),
            ));
        }
        if subnets.is_empty() {
            return Err(rule(
                format!("{prefix}.zones.{zone}"),
                "must contain at least one subnet",
            ));
        }
        for (i, subnet) in subnets.iter().enumerate() {
            let sp = format!("{prefix}.zones.{zone}[{i}]");
            check_subnet(cluster, &sp, subnet)?;
            if !subnet.v4cidr.is_empty() {
                let parsed = canonical_v4(&subnet.v4cidr)
                    .ok_or_else(|| rule(format!("{sp}.v4cidr"), "must be a canonical IPv4 CIDR"))?;
                if let Some(vpc_net) = vpc_prefix
                    && (parsed.bits < vpc_net.bits || !vpc_net.contains(parsed.addr))
                {
                    return Err(rule(
                        format!("{sp}.v4cidr"),
                        format!("must be contained within VPC CIDR {}", vpc.v4cidr),
                    ));
                }
            }
            roles.insert(subnet.role().to_string());
        }
    }
    let buckets: HashSet<&str> = p.buckets.iter().map(String::as_str).collect();
    for (name, role) in &p.roles {
        if let Some(bucket) = role.buckets.iter().find(|b| !buckets.contains(b.as_str())) {
            return Err(rule(
                format!("{prefix}.roles.{name}.buckets"),
                format!("references unknown bucket {bucket:?}"),
            ));
        }
        if !matches!(role.permissions.as_str(), "" | "read-write" | "read-only") {
            return Err(rule(
                format!("{prefix}.roles.{name}.permissions"),
                "must be read-write or read-only",
            ));
        }
    }
    for (name, lb) in &p.load_balancers {
        let lp = format!("{prefix}.load_balancers.{name}");
        if name.is_empty() {
            return Err(rule(
                format!("{prefix}.load_balancers"),
                "contains an empty name",
            ));
        }
        if lb.subnets.is_empty() {
            return Err(rule(format!("{lp}.subnets"), "is required"));
        }
        if !roles.contains(&lb.subnets) {
            return Err(rule(
                format!("{lp}.subnets"),
                format!("references unknown subnet role {:?}", lb.subnets),
            ));
        }
        let mut ports = HashSet::new();
        for (i, listener) in lb.listeners.iter().enumerate() {
            let lsp = format!("{lp}.listeners[{i}]");
            if !(1..=65535).contains(&listener.port) {
                return Err(rule(format!("{lsp}.port"), "must be 1-65535"));
            }
            if !ports.insert(listener.port) {
                return Err(rule(
                    format!("{lsp}.port"),
                    format!("duplicates port {}", listener.port),
                ));
            }
            if !(0..=65535).contains(&listener.target_port) {
                return Err(rule(
                    format!("{lsp}.target_port"),
                    "must be 1-65535 when set",
                ));
            }
            if !cluster.pools.contains_key(&listener.pool) {
                return Err(rule(
                    format!("{lsp}.pool"),
                    format!("references unknown pool {:?}", listener.pool),
                ));
            }
        }
    }
    Ok(())
}

fn check_subnet(
    cluster: &Cluster,
    sp: &str,
    subnet: &super::types::Subnet,
) -> Result<(), ValidationError> {
    if !subnet.id.is_empty() && (!subnet.v4cidr.is_empty() || !subnet.v6cidr.is_empty()) {
        return Err(rule(
            format!("{sp}.id"),
            "cannot be combined with subnet CIDRs",
        ));
    }
    if subnet.id.is_empty() && subnet.v4cidr.is_empty() {
        return Err(rule(format!("{sp}.id"), "or v4cidr is required"));
    }
    if !subnet.v6cidr.is_empty() && subnet.v6cidr != "auto" {
        return Err(rule(
            format!("{sp}.v6cidr"),
            "only supports \"auto\" for managed AWS generation",
        ));
    }
    let has_pool = !subnet.pool.is_empty();
    let has_services = !subnet.services.is_empty();
    if has_pool == has_services {
        return Err(rule(sp, "must set exactly one of pool or services"));
    }
    if has_pool {
        if !cluster.pools.contains_key(&subnet.pool) {
            return Err(rule(
                format!("{sp}.pool"),
                format!("references unknown pool {:?}", subnet.pool),
            ));
        }
        return Ok(());
    }
    for service in &subnet.services {
        match service.as_str() {
            "nstance" => {}
            "nat" | "nlb" => {
                if !subnet.public {
                    return Err(rule(sp, format!("with service {service:?} must be public")));
                }
            }
            _ => {
                return Err(rule(
                    format!("{sp}.services"),
                    format!("contains unsupported service {service:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that load balancer `lb` of `provider` has a listener `port` → `target`
/// (and for `pool`, when given).
fn require_listener(
    provider: &Provider,
    lb: &str,
    port: i64,
    target: i64,
    pool: Option<&str>,
) -> Result<(), String> {
    let Some(balancer) = provider.load_balancers.get(lb) else {
        return Err(format!("references unknown load balancer {lb:?}"));
    };
    let found = balancer.listeners.iter().any(|l| {
        let t = if l.target_port == 0 {
            l.port
        } else {
            l.target_port
        };
        l.port == port && t == target && pool.is_none_or(|p| l.pool == p)
    });
    match (found, pool) {
        (true, _) => Ok(()),
        (false, Some(pool)) => Err(format!(
            "load balancer {lb:?} requires listener port {port} targeting port {target} for pool {pool:?}"
        )),
        (false, None) => Err(format!(
            "load balancer {lb:?} requires listener port {port} targeting port {target}"
        )),
    }
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

/// Full validation (§2.4 order). First failure wins.
pub fn validate(cfg: &ClusterConfig) -> Result<(), ValidationError> {
    let c = &cfg.cluster;
    check_cluster_id(&c.id).map_err(ValidationError::Id)?;
    if c.oidc.issuer_url.is_empty() {
        return Err(ValidationError::IssuerUrlRequired);
    }
    vmagent::contract::oidc_issuer_url(&c.oidc.issuer_url).map_err(|source| {
        ValidationError::IssuerUrl {
            value: c.oidc.issuer_url.clone(),
            source,
        }
    })?;
    check_dns_name(&c.kubernetes.api_hostname).map_err(|error| ValidationError::DnsName {
        field: "cluster.kubernetes.api_hostname".into(),
        error,
    })?;
    if !(0..=65535).contains(&c.kubernetes.api_port) {
        return Err(rule(
            "cluster.kubernetes.api_port",
            "must be 1-65535 when set",
        ));
    }
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
    if let Some(acme) = &c.acme {
        check_acme(acme, c).map_err(|p| field("cluster.acme", p))?;
    }
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
        if !matches!(pool.arch.as_str(), "amd64" | "arm64") {
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
    for (i, provider) in c.providers.iter().enumerate() {
        check_provider(c, i, provider)?;
    }
    check_domains(c, first_provider)
}

/// [`validate`] plus the checks that only Terraform generation makes: the rendered
/// provider must be `aws` and domain DNS providers must be `aws-route53` (or absent).
pub fn validate_for_terraform(cfg: &ClusterConfig) -> Result<(), ValidationError> {
    validate(cfg)?;
    let c = &cfg.cluster;
    if let Some(p) = c.providers.first()
        && p.kind != "aws"
    {
        return Err(rule(
            "cluster provider",
            format!("{:?} is not supported", p.kind),
        ));
    }
    for (i, domain) in c.domains.iter().enumerate() {
        if let Some(p) = &domain.provider
            && p.kind != "aws-route53"
        {
            return Err(rule(
                format!("cluster.domains[{i}].provider.kind"),
                format!("{:?} is not supported by Terraform generation", p.kind),
            ));
        }
    }
    // Pool names double as subnet roles; these three are the service subnets' roles.
    for name in c.pools.keys() {
        if matches!(name.as_str(), "public" | "nstance" | "services") {
            return Err(rule(
                format!("cluster.pools.{name}"),
                "is a reserved subnet role name; rename the pool",
            ));
        }
    }
    if let Some(p) = c.providers.first() {
        let at = "cluster.providers[0]";
        if p.tags.keys().any(|k| k.trim().is_empty()) {
            return Err(rule(format!("{at}.tags"), "has an empty key"));
        }
        // Each zone becomes a `shard_<zone>` module: two zones must not map to one name.
        let mut shards: std::collections::BTreeMap<String, &str> = Default::default();
        for zone in p.zones.keys() {
            let id = crate::tfgen::hcl::safe_name(&["shard", zone]);
            if let Some(other) = shards.insert(id.clone(), zone) {
                return Err(rule(
                    format!("{at}.zones.{zone}"),
                    format!("and zone {other:?} both become module {id:?}; rename or drop one"),
                ));
            }
        }
        // Every shard (zone) runs its Nstance server in that zone's `nstance` subnets (the shard
        // module's precondition), and a group of every pool in that zone's pool subnets.
        for (zone, subnets) in &p.zones {
            if !subnets.iter().any(|s| s.role() == "nstance") {
                return Err(rule(
                    format!("{at}.zones.{zone}"),
                    "has no subnet with \"services\": [\"nstance\"]; every zone runs its own Nstance server",
                ));
            }
            for pool in c.pools.keys() {
                if !subnets.iter().any(|s| &s.pool == pool) {
                    return Err(rule(
                        format!("{at}.zones.{zone}"),
                        format!(
                            "has no subnet for pool {pool:?}; every pool runs in every zone, add a subnet with \"pool\": {pool:?}"
                        ),
                    ));
                }
            }
        }
        if p.vpc.v6cidr != "auto" {
            for (zone, subnets) in &p.zones {
                if let Some(i) = subnets.iter().position(|s| s.v6cidr == "auto") {
                    return Err(rule(
                        format!("{at}.zones.{zone}[{i}].v6cidr"),
                        "\"auto\" needs IPv6 on the VPC (vpc.v6cidr \"auto\")",
                    ));
                }
            }
        }
    }
    Ok(())
}
