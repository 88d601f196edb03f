//! `podplane.cluster.dns.tf`: the Route53 zones Podplane manages and their alias records.

use super::shared::{api_covered, api_managed};
use crate::config::ClusterConfig;
use crate::hcl::{Block, Doc, Value, field, ident, raw, str};

pub(super) fn doc(cfg: &ClusterConfig, net: &str) -> Doc {
    let c = &cfg.cluster;
    let mut zones = Vec::new();
    let mut records = Vec::new();
    for d in &c.domains {
        let Some(p) = &d.provider else { continue };
        let id = if p.hosted_zone_id.is_empty() {
            Value::Null
        } else {
            str(&p.hosted_zone_id)
        };
        zones.push(field(
            &d.zone,
            Value::Object(vec![ident("hosted_zone_id", id)]),
        ));
        let rec = Value::Object(vec![
            ident("zone", str(&d.zone)),
            ident("load_balancer", str(d.resolved_load_balancer())),
        ]);
        records.push(field(&d.zone, rec.clone()));
        records.push(field(&format!("*.{}", d.zone), rec));
    }
    if let Some(d) = api_managed(cfg)
        && !api_covered(cfg)
    {
        records.push(field(
            &c.kubernetes.api_hostname,
            Value::Object(vec![
                ident("zone", str(&d.zone)),
                ident("load_balancer", str(&c.kubernetes.api_load_balancer)),
            ]),
        ));
    }
    let mut doc = Doc::default();
    doc.push(
        Block::new("locals", &[])
            .with("managed_dns_zones", Value::Object(zones))
            .with("managed_dns_records", Value::Object(records)),
    );
    doc.push(
        Block::new("data", &["aws_route53_zone", "managed"])
            .with("for_each", raw("local.managed_dns_zones"))
            .with("zone_id", raw("each.value.hosted_zone_id"))
            .with(
                "name",
                raw("each.value.hosted_zone_id == null ? each.key : null"),
            )
            .with(
                "private_zone",
                raw("each.value.hosted_zone_id == null ? false : null"),
            ),
    );
    for (name, kind, each) in [
        ("managed_ipv4", "A", "local.managed_dns_records"),
        (
            "managed_ipv6",
            "AAAA",
            "var.enable_ipv6 ? local.managed_dns_records : {}",
        ),
    ] {
        doc.push(
            Block::new("resource", &["aws_route53_record", name])
                .with("for_each", raw(each))
                .with(
                    "zone_id",
                    raw("data.aws_route53_zone.managed[each.value.zone].zone_id"),
                )
                .with("name", raw("each.key"))
                .with("type", str(kind))
                .with_block(
                    Block::new("alias", &[])
                        .with(
                            "name",
                            raw(format!(
                                "module.{net}.load_balancers[each.value.load_balancer].dns_name"
                            )),
                        )
                        .with(
                            "zone_id",
                            raw(format!(
                                "module.{net}.load_balancers[each.value.load_balancer].zone_id"
                            )),
                        )
                        .with("evaluate_target_health", Value::Bool(false)),
                ),
        );
    }
    doc
}
