//! Checks of one `cluster.providers[i]` entry (VPC, zones, subnets, roles, load balancers)
//! and of the listeners other sections ask a provider's load balancers for.

use std::collections::{BTreeSet, HashSet};

use super::predicates::{canonical_v4, is_aws_region, is_zone_in_region};
use super::{ValidationError, rule};
use crate::config::types::{Cluster, Provider, Subnet};
use crate::config::validated::ValidProvider;
use vmagent::contract::Provider as ProviderKind;

/// Checks `cluster.providers[index]`; on success returns its typed form.
pub(super) fn check_provider(
    cluster: &Cluster,
    index: usize,
    p: &Provider,
) -> Result<ValidProvider, ValidationError> {
    let prefix = format!("cluster.providers[{index}]");
    let kind = match ProviderKind::parse(&p.kind) {
        Some(kind @ ProviderKind::Aws) => {
            if !is_aws_region(&p.region) {
                return Err(rule(
                    format!("{prefix}.region"),
                    "must be a valid AWS region",
                ));
            }
            kind
        }
        Some(ProviderKind::Google) => {
            return Err(rule(
                format!("{prefix}.kind"),
                "google is not supported by cluster create yet",
            ));
        }
        Some(ProviderKind::Proxmox) => {
            return Err(rule(
                format!("{prefix}.kind"),
                "proxmox is not supported by cluster create",
            ));
        }
        Some(ProviderKind::Local) | None => {
            return Err(rule(format!("{prefix}.kind"), "must be aws"));
        }
    };
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
                    && !vpc_net.contains(&parsed)
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
    Ok(ValidProvider {
        kind,
        vpc_v4cidr: vpc_prefix,
        config: p.clone(),
    })
}

fn check_subnet(cluster: &Cluster, sp: &str, subnet: &Subnet) -> Result<(), ValidationError> {
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
pub(super) fn require_listener(
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
