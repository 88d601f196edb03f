//! `podplane.cluster.outputs.tf`: the values users and `podplane cluster delete` read back.

use super::shared::{api_covered, api_managed, route53_acme};
use crate::config::{ClusterConfig, Provider};
use crate::hcl::{self, Block, Doc, Value, field, ident, raw, safe_name, str, strs};

pub(super) fn doc(cfg: &ClusterConfig, p: &Provider, net: &str) -> Doc {
    let c = &cfg.cluster;
    let q = hcl::quote;
    let lb_target = |lb: &str| raw(format!("module.{net}.load_balancers[{}].dns_name", q(lb)));
    let output = |name: &str, value: Value| Block::new("output", &[name]).with("value", value);
    let mut doc = Doc::default();
    doc.push(output("cluster_id", raw("local.cluster_id")));
    doc.push(output(
        "kubernetes_api_url",
        raw("\"https://${var.kubernetes_api_hostname}:${var.kubernetes_api_port}\""),
    ));
    let targets = c
        .domains
        .iter()
        .map(|d| {
            field(
                &d.zone,
                Value::Object(vec![
                    ident("names", strs(&[d.zone.clone(), format!("*.{}", d.zone)])),
                    ident("target", lb_target(d.resolved_load_balancer())),
                    ident("managed", Value::Bool(d.provider.is_some())),
                ]),
            )
        })
        .collect();
    doc.push(
        Block::new("output", &["domain_targets"])
            .with(
                "description",
                str("Configured domain names and their load-balancer DNS targets."),
            )
            .with("value", Value::Object(targets)),
    );
    let mut manual = Vec::new();
    for d in c.domains.iter().filter(|d| d.provider.is_none()) {
        manual.push(field(&d.zone, lb_target(d.resolved_load_balancer())));
        manual.push(field(
            &format!("*.{}", d.zone),
            lb_target(d.resolved_load_balancer()),
        ));
    }
    if !c.kubernetes.api_load_balancer.is_empty() && api_managed(cfg).is_none() && !api_covered(cfg)
    {
        manual.push(field(
            &c.kubernetes.api_hostname,
            lb_target(&c.kubernetes.api_load_balancer),
        ));
    }
    doc.push(
        Block::new("output", &["manual_dns_records"])
            .with(
                "description",
                str("DNS records requiring manual setup. Use CNAME where valid, or an apex alias or flattening record."),
            )
            .with("value", Value::Object(manual)),
    );
    doc.push(output("nstance_bucket", raw("module.cluster.bucket")));
    doc.push(output(
        "nstance_shards",
        Value::Object(
            p.zones
                .keys()
                .map(|z| {
                    let m = safe_name(&["shard", z]);
                    field(
                        z,
                        Value::Object(vec![
                            ident("config_key", raw(format!("module.{m}.config_key"))),
                            ident("server_ips", raw(format!("module.{m}.server_ips"))),
                        ]),
                    )
                })
                .collect(),
        ),
    ));
    for (name, role) in [
        ("registry_read_only_role_arn", "registry-read-only"),
        ("registry_read_write_role_arn", "registry-read-write"),
        ("netsy_role_arn", "netsy"),
    ] {
        doc.push(output(
            name,
            raw(format!("aws_iam_role.podplane_cluster[{}].arn", q(role))),
        ));
    }
    if route53_acme(cfg) {
        doc.push(output(
            "cert_manager_route53_role_arn",
            raw("aws_iam_role.cert_manager_route53[0].arn"),
        ));
    }
    doc
}
