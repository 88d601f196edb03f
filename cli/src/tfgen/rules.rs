//! The config rules only Terraform generation needs, on top of [`config::validate`]: what the
//! generator can render (an `aws` provider, Route53 domains) and what the rendered modules
//! require (distinct shard module names, an Nstance subnet and a subnet per pool in every
//! zone, IPv6 on the VPC when a subnet asks for it).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{self, ClusterConfig, ConfigError, Validated, ValidationError};
use crate::hcl::safe_name;
use vmagent::contract::Provider as ProviderKind;

/// [`config::validate`] plus the checks that only Terraform generation makes: the rendered
/// provider must be `aws` and domain DNS providers must be `aws-route53` (or absent).
/// Success gives the [`Validated`] config generation consumes.
pub fn validate_for_terraform(cfg: &ClusterConfig) -> Result<Validated, ValidationError> {
    let valid = config::validate(cfg)?;
    let c = &cfg.cluster;
    let p = &valid.provider().config;
    if valid.provider().kind != ProviderKind::Aws {
        return Err(ValidationError::rule(
            "cluster provider",
            format!("{:?} is not supported", p.kind),
        ));
    }
    for (i, domain) in c.domains.iter().enumerate() {
        if let Some(p) = &domain.provider
            && p.kind != "aws-route53"
        {
            return Err(ValidationError::rule(
                format!("cluster.domains[{i}].provider.kind"),
                format!("{:?} is not supported by Terraform generation", p.kind),
            ));
        }
    }
    // Pool names double as subnet roles; these three are the service subnets' roles.
    for name in c.pools.keys() {
        if matches!(name.as_str(), "public" | "nstance" | "services") {
            return Err(ValidationError::rule(
                format!("cluster.pools.{name}"),
                "is a reserved subnet role name; rename the pool",
            ));
        }
    }
    let at = "cluster.providers[0]";
    if p.tags.keys().any(|k| k.trim().is_empty()) {
        return Err(ValidationError::rule(
            format!("{at}.tags"),
            "has an empty key",
        ));
    }
    // Each zone becomes a `shard_<zone>` module: two zones must not map to one name.
    let mut shards: BTreeMap<String, &str> = Default::default();
    for zone in p.zones.keys() {
        let id = safe_name(&["shard", zone]);
        if let Some(other) = shards.insert(id.clone(), zone) {
            return Err(ValidationError::rule(
                format!("{at}.zones.{zone}"),
                format!("and zone {other:?} both become module {id:?}; rename or drop one"),
            ));
        }
    }
    // Every shard (zone) runs its Nstance server in that zone's `nstance` subnets (the shard
    // module's precondition), and a group of every pool in that zone's pool subnets.
    for (zone, subnets) in &p.zones {
        if !subnets.iter().any(|s| s.role() == "nstance") {
            return Err(ValidationError::rule(
                format!("{at}.zones.{zone}"),
                "has no subnet with \"services\": [\"nstance\"]; every zone runs its own Nstance server",
            ));
        }
        for pool in c.pools.keys() {
            if !subnets.iter().any(|s| &s.pool == pool) {
                return Err(ValidationError::rule(
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
                return Err(ValidationError::rule(
                    format!("{at}.zones.{zone}[{i}].v6cidr"),
                    "\"auto\" needs IPv6 on the VPC (vpc.v6cidr \"auto\")",
                ));
            }
        }
    }
    Ok(valid)
}

/// [`config::load`] followed by full validation including the Terraform-generation-only rules.
pub fn load_and_validate(path: &Path) -> Result<Validated, ConfigError> {
    let cfg = config::load(path)?;
    validate_for_terraform(&cfg).map_err(|source| ConfigError::Validation {
        path: path.display().to_string(),
        source,
    })
}
