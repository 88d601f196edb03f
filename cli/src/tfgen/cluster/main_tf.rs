//! `podplane.cluster.main.tf`: providers, the per-(kind, arch) userdata, the `mutable.env`
//! and template locals, the Nstance modules (cluster, account, network, one shard per zone)
//! and the optional seed resource.

use std::collections::{BTreeMap, BTreeSet};

use super::certificates::{certificate_files, certificates};
use super::shared::{is_seeded, module, route53_acme, string_map};
use super::{Options, USERDATA_TEMPLATE, pool_kind, required_targets};
use crate::config::{self, ClusterConfig, Provider};
use crate::hcl::{self, Block, Doc, Value, field, ident, raw, safe_name, str};
use crate::tfgen::PinnedManifest;
use vmagent::contract::MutableKey;

/// mutable.env keys taken straight from a Terraform variable (`tostring:` converts a non-string
/// variable, keeping null).
const MUTABLE_ENV_PASSTHROUGH: &[(MutableKey, &str)] = &[
    (MutableKey::SshAuthorizedKeys, "var.ssh_authorized_keys"),
    (MutableKey::TelemetryEnabled, "tostring:telemetry_enabled"),
    (
        MutableKey::TelemetryLogCloudinit,
        "tostring:telemetry_log_cloudinit",
    ),
    (
        MutableKey::TelemetryLogServices,
        "var.telemetry_log_services",
    ),
    (
        MutableKey::TelemetryOtlpEndpoint,
        "var.telemetry_otlp_endpoint",
    ),
    (MutableKey::TelemetryS3Bucket, "var.telemetry_s3_bucket"),
    (MutableKey::TelemetryS3Endpoint, "var.telemetry_s3_endpoint"),
    (
        MutableKey::TelemetryS3AssumeRole,
        "var.telemetry_s3_assume_role",
    ),
    (
        MutableKey::TelemetryS3AccessKeyId,
        "var.telemetry_s3_access_key_id",
    ),
    (
        MutableKey::TelemetryS3SecretAccessKey,
        "var.telemetry_s3_secret_access_key",
    ),
    (MutableKey::OidcCaCert, "var.oidc_ca_cert"),
    (MutableKey::KubeApiEtcdServers, "var.kube_api_etcd_servers"),
    (MutableKey::KubeLogLevel, "tostring:kube_log_level"),
    (
        MutableKey::KubeNodeCidrMaskSizeIpv4,
        "tostring:kubernetes_node_cidr_mask_size_ipv4",
    ),
    (
        MutableKey::KubeNodeCidrMaskSizeIpv6,
        "tostring:kubernetes_node_cidr_mask_size_ipv6",
    ),
    (MutableKey::AwsS3UsePathStyle, "var.aws_s3_use_path_style"),
    (MutableKey::NetsyEndpoint, "var.netsy_endpoint"),
    (MutableKey::NetsyAccessKeyId, "var.netsy_access_key_id"),
    (
        MutableKey::NetsySecretAccessKey,
        "var.netsy_secret_access_key",
    ),
    (MutableKey::RegistryEnabled, "tostring:registry_enabled"),
    (MutableKey::RegistryEndpoint, "var.registry_endpoint"),
    (
        MutableKey::RegistryAccessKeyId,
        "var.registry_access_key_id",
    ),
    (
        MutableKey::RegistrySecretAccessKey,
        "var.registry_secret_access_key",
    ),
    (MutableKey::RegistryHostname, "var.registry_hostname"),
];

/// `mutable.env` as a `for` expression that drops null values (vmagent keeps its defaults).
fn mutable_env(network: &config::ServiceNetwork) -> Value {
    let dns: Vec<String> = network.dns.iter().map(|ip| ip.to_string()).collect();
    let mut lines: Vec<(MutableKey, String)> = vec![
        (MutableKey::TelemetryS3Region, "local.aws_region".into()),
        (MutableKey::OidcIssuer, "var.oidc_issuer_url".into()),
        (
            MutableKey::OidcSigningAlgs,
            "var.oidc_signing_algs == null ? null : join(\",\", var.oidc_signing_algs)".into(),
        ),
        (
            MutableKey::KubeApiPublicHostname,
            "var.kubernetes_api_hostname".into(),
        ),
        (
            MutableKey::KubeServiceAccountIssuer,
            "\"https://${var.kubernetes_api_hostname}:${var.kubernetes_api_port}\"".into(),
        ),
        (
            MutableKey::KubeClusterCidr,
            "join(\",\", var.kubernetes_cluster_cidr)".into(),
        ),
        (
            MutableKey::KubeServiceClusterIpRange,
            "join(\",\", var.kubernetes_service_cidr)".into(),
        ),
        (MutableKey::KubeClusterDns, hcl::quote(&dns.join(","))),
        (
            MutableKey::NetsyBucket,
            "aws_s3_bucket.podplane_cluster[\"netsy\"].bucket".into(),
        ),
        (MutableKey::NetsyRegion, "local.aws_region".into()),
        (
            MutableKey::NetsyAssumeRole,
            "aws_iam_role.podplane_cluster[\"netsy\"].arn".into(),
        ),
        (
            MutableKey::RegistryBucket,
            "aws_s3_bucket.podplane_cluster[\"registry\"].bucket".into(),
        ),
        (MutableKey::RegistryRegion, "local.aws_region".into()),
        (
            MutableKey::RegistryAssumeRole,
            "aws_iam_role.podplane_cluster[\"registry-read-only\"].arn".into(),
        ),
    ];
    for &(key, src) in MUTABLE_ENV_PASSTHROUGH {
        lines.push((
            key,
            match src.strip_prefix("tostring:") {
                Some(v) => format!("var.{v} == null ? null : tostring(var.{v})"),
                None => src.to_string(),
            },
        ));
    }
    let lines: Vec<String> = lines
        .iter()
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    raw(format!(
        "{{ for key, value in {{\n  {}\n}} : key => value if value != null }}",
        lines.join("\n  ")
    ))
}

fn target_key(kind: &str, arch: &str) -> String {
    safe_name(&[kind, arch])
}

fn templates(cfg: &ClusterConfig) -> Value {
    let mut fields = Vec::new();
    for (name, pool) in &cfg.cluster.pools {
        let node_kind = pool_kind(name);
        let kind = node_kind.name();
        let mut files = vec![field(
            "mutable.env",
            Value::Inline(vec![
                ident("kind", str("env")),
                ident("template", raw("local.mutable_env")),
            ]),
        )];
        for cert in certificate_files(node_kind) {
            files.push(field(
                &format!("{cert}.crt"),
                Value::Inline(vec![
                    ident("kind", str("certificate")),
                    ident("template", str(cert)),
                    ident(
                        "key",
                        Value::Inline(vec![
                            ident("source", str("agent")),
                            ident("name", str(cert)),
                        ]),
                    ),
                ]),
            ));
        }
        fields.push(field(
            name,
            Value::Object(vec![
                ident("kind", str(kind)),
                ident("arch", str(&pool.arch)),
                ident("vars", raw("local.mutable_env")),
                ident(
                    "userdata",
                    Value::Inline(vec![
                        ident("source", str("inline")),
                        ident("encoding", str("base64")),
                        ident(
                            "content",
                            raw(format!(
                                "base64encode(local.userdata[{}])",
                                hcl::quote(&target_key(kind, &pool.arch))
                            )),
                        ),
                    ]),
                ),
                ident("files", Value::Inline(files)),
                ident(
                    "args",
                    Value::Inline(vec![ident(
                        "ImageId",
                        str(format!("{{{{ .Image.debian_13_{} }}}}", pool.arch)),
                    )]),
                ),
            ]),
        ));
    }
    Value::Object(fields)
}

pub(super) fn doc(
    cfg: &ClusterConfig,
    p: &Provider,
    opts: &Options,
    network: &config::ServiceNetwork,
    account: &str,
    net: &str,
) -> Doc {
    let mut doc = Doc::default();
    let provider = |source: &str, version: &str| {
        Value::Object(vec![
            ident("source", str(source)),
            ident("version", str(version)),
        ])
    };
    let rp = Block::new("required_providers", &[]).with("aws", provider("hashicorp/aws", ">= 6.0"));
    doc.push(
        Block::new("terraform", &[])
            .with("required_version", str(">= 1.6.0"))
            .with_block(rp),
    );

    let mut aws = Block::new("provider", &["aws"]).with("region", raw("local.provider_region"));
    if !p.profile.is_empty() {
        aws.attr("profile", str(&p.profile));
    }
    if !p.account.is_empty() {
        aws.attr(
            "allowed_account_ids",
            Value::List(vec![raw("local.provider_account")]),
        );
    }
    if !p.tags.is_empty() {
        aws.block(Block::new("default_tags", &[]).with("tags", string_map(&p.tags)));
    }
    doc.push(aws);
    doc.push(Block::new("data", &["aws_caller_identity", "current"]));
    doc.push(Block::new("data", &["aws_region", "current"]));

    // Userdata: one rendering of the shared template per (kind, arch), fed the pinned
    // manifest, so an edited pinned copy changes the userdata (and rolls those VMs).
    let mut userdata = Vec::new();
    for (kind, arch) in required_targets(cfg).keys() {
        let manifest = format!(
            "file(\"${{path.module}}/podplane.cluster.{}\")",
            PinnedManifest::file_name(kind, arch)
        );
        userdata.push(field(
            &target_key(kind, arch),
            raw(format!(
                "templatefile(\"${{path.module}}/{USERDATA_TEMPLATE}\", {{\n  manifest_json = {manifest}\n  deps_mirror_url = {}\n  provider_kind = local.provider_kind\n  aws_account_id = local.aws_account_id\n  immutable_ssh_authorized_keys = var.immutable_ssh_authorized_keys\n  enable_ssm = var.enable_ssm\n}})",
                hcl::quote(&opts.deps_mirror_url)
            )),
        ));
    }

    let mut locals = Block::new("locals", &[]);
    locals
        .attr(
            "aws_account_id",
            raw("data.aws_caller_identity.current.account_id"),
        )
        .attr("aws_region", raw("data.aws_region.current.region"))
        .attr(
            "netsy_bucket_name",
            raw("\"${local.cluster_id}-${local.aws_account_id}-netsy\""),
        )
        .attr(
            "registry_bucket_name",
            raw("\"${local.cluster_id}-${local.aws_account_id}-registry\""),
        )
        .attr("mutable_env", mutable_env(network))
        .attr("certificates", certificates(network))
        .attr("userdata", Value::Object(userdata))
        .attr("templates", templates(cfg));
    doc.push(locals);
    // Plan-time warning when keys or an edited manifest push a node's userdata over EC2's limit.
    doc.push(
        Block::new("check", &["userdata_size"]).with_block(
            Block::new("assert", &[])
                .with(
                    "condition",
                    raw(format!(
                        "alltrue([for name, content in local.userdata : length(base64encode(content)) <= {}])",
                        // Bytes, not characters: base64 of n bytes is 4 * ceil(n / 3) long.
                        crate::userdata::MAX_BYTES / 3 * 4
                    )),
                )
                .with(
                    "error_message",
                    str(format!(
                        "A node's userdata is over EC2's {}-byte limit; shorten var.immutable_ssh_authorized_keys or the pinned manifest.",
                        crate::userdata::MAX_BYTES
                    )),
                ),
        ),
    );

    let mut cluster = module("cluster", "cluster")
        .with("cluster_id", raw("local.cluster_id"))
        .with("name_prefix", raw("local.name_prefix"));
    if !p.profile.is_empty() {
        cluster.attr("aws_profile", str(&p.profile));
    }
    if !p.tags.is_empty() {
        cluster.attr("tags", string_map(&p.tags));
    }
    doc.push(cluster);
    doc.push(
        module(account, "account")
            .with("cluster", raw("module.cluster"))
            .with("enable_ssm", raw("var.enable_ssm")),
    );
    let mut network_mod = module(net, "network")
        .with("cluster", raw("module.cluster"))
        .with("enable_ssm", raw("var.enable_ssm"))
        .with("vpc_id", raw("var.vpc_id"))
        .with("vpc_cidr_ipv4", raw("var.vpc_cidr_ipv4"))
        .with("enable_ipv6", raw("var.enable_ipv6"))
        .with("subnets", raw("local.subnets"));
    if !p.load_balancers.is_empty() {
        network_mod.attr("load_balancers", raw("local.load_balancers"));
    }
    doc.push(network_mod);

    let groups = groups(cfg, p);
    for zone in p.zones.keys() {
        let mut shard = module(&safe_name(&["shard", zone]), "shard");
        if is_seeded(cfg) {
            // No control-plane node may start before bootstrap.netsy is in the bucket.
            shard.attr("depends_on", raw("[terraform_data.podplane_seed]"));
        }
        doc.push(
            shard
                .with("cluster", raw("module.cluster"))
                .with("account", raw(format!("module.{account}")))
                .with("network", raw(format!("module.{net}")))
                .with("shard", str(zone))
                .with("zone", str(zone))
                .with("enable_ssm", raw("var.enable_ssm"))
                .with("certificates", raw("local.certificates"))
                .with("templates", raw("local.templates"))
                .with("groups", groups.clone()),
        );
    }

    if is_seeded(cfg) {
        // The seed is written by the podplane binary (`podplane cluster seed`), run once when
        // the Netsy bucket exists and before the shards (which start the control plane); the
        // binary uses the local deps cache and PODPLANE_DEPS_URL, and uploads create-only, so
        // a rerun never touches Netsy state. Paths and names reach the shell through the
        // environment, never spliced into the command.
        let quoted = hcl::quote(&opts.config_file_name);
        let mut env = vec![
            ident(
                "PODPLANE_SEED_CONFIG",
                raw(format!(
                    "\"${{path.module}}/{}\"",
                    &quoted[1..quoted.len() - 1]
                )),
            ),
            ident(
                "PODPLANE_SEED_BUCKET",
                raw("aws_s3_bucket.podplane_cluster[\"netsy\"].bucket"),
            ),
        ];
        if route53_acme(cfg) {
            env.push(ident("PODPLANE_SEED_VALUES", raw(ROUTE53_SEED_VALUES)));
        }
        if !p.profile.is_empty() {
            env.push(ident("AWS_PROFILE", str(&p.profile)));
        }
        let seed = Block::new("resource", &["terraform_data", "podplane_seed"])
            .with(
                "triggers_replace",
                raw("[aws_s3_bucket.podplane_cluster[\"netsy\"].bucket]"),
            )
            .with_block(
                Block::new("provisioner", &["local-exec"])
                    .with("command", str(SEED_COMMAND))
                    .with("environment", Value::Object(env)),
            );
        doc.push(seed);
    }
    doc
}

/// The shell command of the seed provisioner (`$PODPLANE_BIN` picks another binary).
const SEED_COMMAND: &str = "\"${PODPLANE_BIN:-podplane}\" cluster seed -f \"$PODPLANE_SEED_CONFIG\" --bucket \"$PODPLANE_SEED_BUCKET\"";

const ROUTE53_SEED_VALUES: &str = r#"yamlencode({
  platform = { components = {
    apps = { cert-manager = { namespaceAnnotations = {
      "iam.amazonaws.com/allowed-roles" = jsonencode([aws_iam_role.cert_manager_route53[0].arn])
    } } }
    values = {
      cert-manager = { cert-manager = { podAnnotations = {
        "iam.amazonaws.com/role" = aws_iam_role.cert_manager_route53[0].arn
      } } }
      platform-certs = { platform = { certs = { ingress = { acme = {
        solvers = [for name, zone in data.aws_route53_zone.managed : {
          dnsZones = [name]
          route53 = { hostedZoneID = zone.zone_id, region = local.aws_region }
        }]
      } } } } }
    }
  } }
})"#;

fn groups(cfg: &ClusterConfig, p: &Provider) -> Value {
    // pool → load balancer → external ports (sorted).
    let mut lbs: BTreeMap<&str, BTreeMap<&str, BTreeSet<i64>>> = BTreeMap::new();
    for (name, lb) in &p.load_balancers {
        for l in &lb.listeners {
            lbs.entry(l.pool.as_str())
                .or_default()
                .entry(name.as_str())
                .or_default()
                .insert(l.port);
        }
    }
    let mut pools = Vec::new();
    for (name, pool) in &cfg.cluster.pools {
        let q = hcl::quote(name);
        let mut f = vec![
            ident("template", str(name)),
            ident("size", raw(format!("var.pool_sizes[{q}]"))),
            ident("subnet_pool", str(name)),
            ident(
                "instance_type",
                raw(format!("var.pool_instance_types[{q}]")),
            ),
            ident("vars", raw("local.mutable_env")),
        ];
        if pool.disk_size > 0 {
            f.push(ident("disk_size", Value::Num(pool.disk_size)));
        }
        if let Some(by_lb) = lbs.get(name.as_str()) {
            f.push(ident(
                "load_balancers",
                Value::Object(
                    by_lb
                        .iter()
                        .map(|(lb, ports)| {
                            field(
                                lb,
                                Value::List(ports.iter().map(|p| Value::Num(*p)).collect()),
                            )
                        })
                        .collect(),
                ),
            ));
        }
        pools.push(field(name, Value::Object(f)));
    }
    Value::Object(vec![field("default", Value::Object(pools))])
}
