//! `podplane.cluster.inputs.infra.tf`: inputs that change cloud resources, and the cluster's
//! identity and placement.

use std::collections::BTreeMap;

use super::shared::variable;
use crate::config::{ClusterConfig, Provider};
use crate::hcl::{Block, Doc, Value, field, ident, str};

pub(super) fn doc(cfg: &ClusterConfig, p: &Provider) -> Doc {
    let c = &cfg.cluster;
    let mut doc = Doc {
        header: vec![
            "Cluster infrastructure inputs. Changes may add, replace, or remove provider resources."
                .into(),
        ],
        ..Doc::default()
    };
    doc.push(variable(
        "vpc_id",
        "Existing VPC ID; changing it replaces network placement.",
        "string",
        str(&p.vpc.id),
    ));
    doc.push(variable(
        "vpc_cidr_ipv4",
        "Managed VPC IPv4 CIDR; changing it may replace networking.",
        "string",
        str(&p.vpc.v4cidr),
    ));
    doc.push(variable(
        "enable_ipv6",
        "IPv6 state; changing it updates cloud networking.",
        "bool",
        Value::Bool(p.vpc.v6cidr == "auto"),
    ));
    doc.push(
        variable(
            "enable_ssm",
            "SSM access; changing it updates cloud infrastructure and VM bootstrap.",
            "bool",
            Value::Bool(true),
        )
        .with("nullable", Value::Bool(false)),
    );

    // role → zone → subnets in config order; IPv6 netnums count across all zones (sorted).
    let mut roles: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> = BTreeMap::new();
    let mut netnum = 0;
    for (zone, subnets) in &p.zones {
        for s in subnets {
            let mut f = Vec::new();
            if !s.id.is_empty() {
                f.push(ident("existing", str(&s.id)));
            } else {
                f.push(ident("ipv4_cidr", str(&s.v4cidr)));
            }
            if s.v6cidr == "auto" {
                f.push(ident("ipv6_netnum", Value::Num(netnum)));
                netnum += 1;
            }
            if s.public {
                f.push(ident("public", Value::Bool(true)));
            }
            if s.services.iter().any(|x| x == "nat") {
                f.push(ident("nat_gateway", Value::Bool(true)));
            }
            if !s.public && s.role() != "public" {
                f.push(ident("nat_subnet", str("public")));
            }
            roles
                .entry(s.role())
                .or_default()
                .entry(zone.as_str())
                .or_default()
                .push(Value::Inline(f));
        }
    }
    let subnets = Value::Object(
        roles
            .into_iter()
            .map(|(role, zones)| {
                field(
                    role,
                    Value::Object(
                        zones
                            .into_iter()
                            .map(|(z, list)| field(z, Value::List(list)))
                            .collect(),
                    ),
                )
            })
            .collect(),
    );
    let lbs = Value::Object(
        p.load_balancers
            .iter()
            .map(|(name, lb)| {
                let mut listeners: Vec<(i64, i64)> = lb
                    .listeners
                    .iter()
                    .map(|l| {
                        (
                            l.port,
                            if l.target_port == 0 {
                                l.port
                            } else {
                                l.target_port
                            },
                        )
                    })
                    .collect();
                listeners.sort();
                field(
                    name,
                    Value::Inline(vec![
                        ident(
                            "listeners",
                            Value::List(
                                listeners
                                    .into_iter()
                                    .map(|(port, target)| {
                                        Value::Inline(vec![
                                            ident("port", Value::Num(port)),
                                            ident("target_port", Value::Num(target)),
                                        ])
                                    })
                                    .collect(),
                            ),
                        ),
                        ident("subnets", str(&lb.subnets)),
                        ident("public", Value::Bool(lb.public)),
                    ]),
                )
            })
            .collect(),
    );
    doc.push(
        Block::new("locals", &[])
            .with("subnets", subnets)
            .with("load_balancers", lbs),
    );
    doc.push(
        Block::new("locals", &[])
            .comment(
                "Cluster identity and placement. Changing these values is not supported in place;",
            )
            .comment("destroy the cluster, then update podplane.cluster.jsonc and recreate it.")
            .with("cluster_id", str(&c.id))
            .with("name_prefix", str(&c.id))
            .with("provider_kind", str(&p.kind))
            .with("provider_account", str(&p.account))
            .with("provider_region", str(&p.region)),
    );
    doc
}
