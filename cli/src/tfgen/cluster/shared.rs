//! Pieces several of the cluster's `.tf` files share: the Nstance module source, the
//! `variable` block shape, and the config facts more than one file branches on.

use std::collections::BTreeMap;

use crate::config::{self, ClusterConfig};
use crate::hcl::{Block, Value, field, raw, str};

/// Registry path of the Nstance AWS modules.
const NSTANCE: &str = "nstance-dev/nstance/aws//modules";

/// A seed is applied (`recommended` or `minimal`), so the seed provider and resource are generated.
pub(super) fn is_seeded(cfg: &ClusterConfig) -> bool {
    matches!(cfg.cluster.seed.name.as_str(), "recommended" | "minimal")
}

/// ACME is on and some domain is on Route53: cert-manager gets a Route53 role for DNS-01.
pub(super) fn route53_acme(cfg: &ClusterConfig) -> bool {
    cfg.cluster.acme.is_some()
        && cfg
            .cluster
            .domains
            .iter()
            .any(|d| d.provider.as_ref().is_some_and(|p| p.kind == "aws-route53"))
}

/// An Nstance module block pinned to the 2.x releases.
pub(super) fn module(name: &str, source: &str) -> Block {
    Block::new("module", &[name])
        .with("source", str(format!("{NSTANCE}/{source}")))
        .with("version", str("~> 2.0"))
}

/// A string map (tags) as an HCL object.
pub(super) fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| field(k, str(v))).collect())
}

/// Route53 can own the API hostname's record: an API load balancer is set and the first
/// domain has a provider and covers the hostname.
pub(super) fn api_managed(cfg: &ClusterConfig) -> Option<&config::Domain> {
    let c = &cfg.cluster;
    if c.kubernetes.api_load_balancer.is_empty() {
        return None;
    }
    let d = c.domains.first()?;
    let host = &c.kubernetes.api_hostname;
    (d.provider.is_some() && (host == &d.zone || host.ends_with(&format!(".{}", d.zone))))
        .then_some(d)
}

/// Some domain's apex already is the API hostname on the API load balancer.
pub(super) fn api_covered(cfg: &ClusterConfig) -> bool {
    let k = &cfg.cluster.kubernetes;
    cfg.cluster
        .domains
        .iter()
        .any(|d| d.zone == k.api_hostname && d.resolved_load_balancer() == k.api_load_balancer)
}

/// A `variable` block with a description, type and default.
pub(super) fn variable(name: &str, description: &str, ty: &str, default: Value) -> Block {
    Block::new("variable", &[name])
        .with("description", str(description))
        .with("type", raw(ty))
        .with("default", default)
}
