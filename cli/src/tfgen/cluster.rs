//! The AWS cluster files: main, buckets, dns, roles, the three impact-level input files,
//! outputs, the pinned node manifests, the userdata template and the schema copy.

use std::collections::{BTreeMap, BTreeSet};

use super::hcl::{Block, Doc, Value, field, ident, raw, safe_name, str, strs};
use super::{File, GenerateError, PinnedManifest, tf_file as tf};
use crate::config::{self, ClusterConfig, Provider};

/// File name of the userdata template shared by every (kind, arch).
pub const USERDATA_TEMPLATE: &str = "podplane.cluster.userdata.sh.tftpl";

/// Inputs besides the config.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base name of the config file (the seed resource reads it next to the `.tf` files).
    pub config_file_name: String,
    /// The deps mirror VMs download from (`PODPLANE_DEPS_URL`).
    pub deps_mirror_url: String,
    /// Cached manifests; the ones the pools need are pinned.
    pub manifests: Vec<PinnedManifest>,
}

const NSTANCE: &str = "nstance-dev/nstance/aws//modules";

/// `knc` for the `control-plane` pool, `knd` for any other.
pub fn pool_kind(pool: &str) -> &'static str {
    if pool == "control-plane" {
        "knc"
    } else {
        "knd"
    }
}

/// The distinct (kind, arch) the pools need, sorted, with the first pool needing each.
pub fn required_targets(cfg: &ClusterConfig) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (name, pool) in &cfg.cluster.pools {
        out.entry((pool_kind(name).to_string(), pool.arch.clone()))
            .or_insert_with(|| name.clone());
    }
    out
}

fn is_seeded(cfg: &ClusterConfig) -> bool {
    matches!(cfg.cluster.seed.name.as_str(), "recommended" | "minimal")
}

fn route53_acme(cfg: &ClusterConfig) -> bool {
    cfg.cluster.acme.is_some()
        && cfg
            .cluster
            .domains
            .iter()
            .any(|d| d.provider.as_ref().is_some_and(|p| p.kind == "aws-route53"))
}

/// Generate every file of the cluster directory. The config is fully validated first.
pub fn generate(cfg: &ClusterConfig, opts: &Options) -> Result<Vec<File>, GenerateError> {
    config::validate_for_terraform(cfg)?;
    let c = &cfg.cluster;
    let provider = c.providers.first().expect("validation requires a provider");
    let network = config::service_network(&c.kubernetes.service_cidr)
        .map_err(config::ValidationError::ServiceCidr)?;
    let account = safe_name(&["account", &provider.account, &provider.region]);
    let net = safe_name(&["network", &provider.account, &provider.region]);
    let targets = required_targets(cfg);
    let mut pinned = Vec::new();
    for ((kind, arch), pool) in &targets {
        let m = opts
            .manifests
            .iter()
            .find(|m| &m.kind == kind && &m.arch == arch)
            .ok_or_else(|| GenerateError::MissingManifest {
                kind: kind.clone(),
                arch: arch.clone(),
                pool: pool.clone(),
            })?;
        check_manifest(m, &opts.deps_mirror_url)?;
        pinned.push(m);
    }

    let mut files = vec![
        tf(
            "podplane.cluster.main.tf",
            &main_tf(cfg, provider, opts, &network, &account, &net),
        ),
        tf("podplane.cluster.buckets.tf", &buckets_tf()),
        tf("podplane.cluster.dns.tf", &dns_tf(cfg, &net)),
        tf("podplane.cluster.roles.tf", &roles_tf(cfg, &account)),
        tf(
            "podplane.cluster.inputs.runtime.tf",
            &runtime_tf(cfg, &network),
        ),
        tf("podplane.cluster.inputs.vm.tf", &vm_tf(cfg)),
        tf("podplane.cluster.inputs.infra.tf", &infra_tf(cfg, provider)),
        tf(
            "podplane.cluster.outputs.tf",
            &outputs_tf(cfg, provider, &net),
        ),
    ];
    for m in pinned {
        files.push(File {
            name: format!(
                "podplane.cluster.{}",
                PinnedManifest::file_name(&m.kind, &m.arch)
            ),
            content: m.json.clone(),
        });
    }
    files.push(File {
        name: USERDATA_TEMPLATE.into(),
        content: crate::userdata::tf_template().into_bytes(),
    });
    files.push(File {
        name: config::SCHEMA_FILE.into(),
        content: schema_copy().into_bytes(),
    });
    Ok(files)
}

/// The manifest must parse and pin a released vmagent (the userdata downloads it by digest).
fn check_manifest(m: &PinnedManifest, mirror: &str) -> Result<(), GenerateError> {
    let name = PinnedManifest::file_name(&m.kind, &m.arch);
    let bad = |reason: String| GenerateError::BadManifest {
        kind: m.kind.clone(),
        arch: m.arch.clone(),
        name: name.clone(),
        reason,
    };
    let manifest = vmagent::manifest::Manifest::from_slice(&m.json, std::path::Path::new(&name))
        .map_err(|e| bad(e.source.to_string()))?;
    if manifest.vmconfig.kind != m.kind || manifest.vmconfig.os.arch != m.arch {
        return Err(bad(format!(
            "it is for {}/{}, not {}/{}",
            manifest.vmconfig.kind, manifest.vmconfig.os.arch, m.kind, m.arch
        )));
    }
    let mut facts = crate::userdata::Facts::nstance_placeholders("aws");
    facts.enable_ssm = true;
    facts.aws_account_id = "123456789012".into();
    let mirror = (!mirror.is_empty()).then_some(mirror);
    let script =
        crate::userdata::render(&manifest, &facts, mirror).map_err(|e| bad(e.to_string()))?;
    // The template embeds the file as written, not the compact form `render` uses.
    let compact = serde_json::to_string(&manifest).map_err(|e| bad(e.to_string()))?;
    let raw_len = String::from_utf8_lossy(&m.json).trim().len();
    let size = script.len() - compact.len() + raw_len;
    if size > crate::userdata::MAX_BYTES {
        return Err(bad(format!(
            "the userdata it makes is {size} bytes, over EC2's {} (compact the JSON or drop entries)",
            crate::userdata::MAX_BYTES
        )));
    }
    Ok(())
}

/// The schema with a `$comment` saying it is a generated support file.
pub fn schema_copy() -> String {
    config::schema::with_comment(
        &config::schema_json(),
        "Generated support file written by the podplane CLI next to podplane.cluster.jsonc for editor validation; its source is the CLI's config types (podplane cluster schema).",
    )
}

fn module(name: &str, source: &str) -> Block {
    Block::new("module", &[name])
        .with("source", str(format!("{NSTANCE}/{source}")))
        .with("version", str("~> 2.0"))
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| field(k, str(v))).collect())
}

const MUTABLE_ENV_PASSTHROUGH: &[(&str, &str)] = &[
    ("SSH_AUTHORIZED_KEYS", "var.ssh_authorized_keys"),
    ("TELEMETRY_ENABLED", "tostring:telemetry_enabled"),
    (
        "TELEMETRY_LOG_CLOUDINIT",
        "tostring:telemetry_log_cloudinit",
    ),
    ("TELEMETRY_LOG_SERVICES", "var.telemetry_log_services"),
    ("TELEMETRY_OTLP_ENDPOINT", "var.telemetry_otlp_endpoint"),
    ("TELEMETRY_S3_BUCKET", "var.telemetry_s3_bucket"),
    ("TELEMETRY_S3_ENDPOINT", "var.telemetry_s3_endpoint"),
    ("TELEMETRY_S3_ASSUME_ROLE", "var.telemetry_s3_assume_role"),
    (
        "TELEMETRY_S3_ACCESS_KEY_ID",
        "var.telemetry_s3_access_key_id",
    ),
    (
        "TELEMETRY_S3_SECRET_ACCESS_KEY",
        "var.telemetry_s3_secret_access_key",
    ),
    ("OIDC_CA_CERT", "var.oidc_ca_cert"),
    ("KUBE_API_ETCD_SERVERS", "var.kube_api_etcd_servers"),
    ("KUBE_LOG_LEVEL", "tostring:kube_log_level"),
    (
        "KUBE_NODE_CIDR_MASK_SIZE_IPV4",
        "tostring:kubernetes_node_cidr_mask_size_ipv4",
    ),
    (
        "KUBE_NODE_CIDR_MASK_SIZE_IPV6",
        "tostring:kubernetes_node_cidr_mask_size_ipv6",
    ),
    ("AWS_S3_USE_PATH_STYLE", "var.aws_s3_use_path_style"),
    ("NETSY_ENDPOINT", "var.netsy_endpoint"),
    ("NETSY_ACCESS_KEY_ID", "var.netsy_access_key_id"),
    ("NETSY_SECRET_ACCESS_KEY", "var.netsy_secret_access_key"),
    ("REGISTRY_ENABLED", "tostring:registry_enabled"),
    ("REGISTRY_ENDPOINT", "var.registry_endpoint"),
    ("REGISTRY_ACCESS_KEY_ID", "var.registry_access_key_id"),
    (
        "REGISTRY_SECRET_ACCESS_KEY",
        "var.registry_secret_access_key",
    ),
    ("REGISTRY_HOSTNAME", "var.registry_hostname"),
];

/// `mutable.env` as a `for` expression that drops null values (vmagent keeps its defaults).
fn mutable_env(network: &config::ServiceNetwork) -> Value {
    let dns: Vec<String> = network.dns.iter().map(|ip| ip.to_string()).collect();
    let mut lines = vec![
        "TELEMETRY_S3_REGION = local.aws_region".to_string(),
        "OIDC_ISSUER = var.oidc_issuer_url".into(),
        "OIDC_SIGNING_ALGS = var.oidc_signing_algs == null ? null : join(\",\", var.oidc_signing_algs)".into(),
        "KUBE_API_PUBLIC_HOSTNAME = var.kubernetes_api_hostname".into(),
        "KUBE_SERVICE_ACCOUNT_ISSUER = \"https://${var.kubernetes_api_hostname}:${var.kubernetes_api_port}\"".into(),
        "KUBE_CLUSTER_CIDR = join(\",\", var.kubernetes_cluster_cidr)".into(),
        "KUBE_SERVICE_CLUSTER_IP_RANGE = join(\",\", var.kubernetes_service_cidr)".into(),
        format!("KUBE_CLUSTER_DNS = {}", super::hcl::quote(&dns.join(","))),
        "NETSY_BUCKET = aws_s3_bucket.podplane_cluster[\"netsy\"].bucket".into(),
        "NETSY_REGION = local.aws_region".into(),
        "NETSY_ASSUME_ROLE = aws_iam_role.podplane_cluster[\"netsy\"].arn".into(),
        "REGISTRY_BUCKET = aws_s3_bucket.podplane_cluster[\"registry\"].bucket".into(),
        "REGISTRY_REGION = local.aws_region".into(),
        "REGISTRY_ASSUME_ROLE = aws_iam_role.podplane_cluster[\"registry-read-only\"].arn".into(),
    ];
    for (key, src) in MUTABLE_ENV_PASSTHROUGH {
        lines.push(match src.strip_prefix("tostring:") {
            Some(v) => format!("{key} = var.{v} == null ? null : tostring(var.{v})"),
            None => format!("{key} = {src}"),
        });
    }
    raw(format!(
        "{{ for key, value in {{\n  {}\n}} : key => value if value != null }}",
        lines.join("\n  ")
    ))
}

/// One Nstance certificate template.
struct Cert {
    name: &'static str,
    kind: &'static str,
    cn: &'static str,
    org: Option<&'static str>,
    uri: Option<&'static str>,
}

const CERTS: &[Cert] = &[
    Cert {
        name: "containerd.client",
        kind: "client",
        cn: "containerd.client",
        org: None,
        uri: None,
    },
    Cert {
        name: "front-proxy.client",
        kind: "client",
        cn: "front-proxy-client",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-apiserver.client",
        kind: "client",
        cn: "kube-apiserver.client",
        org: Some("system:masters"),
        uri: Some("netsy://{{ .Cluster.ID }}/client/kube-apiserver"),
    },
    Cert {
        name: "kube-apiserver.server",
        kind: "server",
        cn: "kube-apiserver.server",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-controller-manager.client",
        kind: "client",
        cn: "system:kube-controller-manager",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-scheduler.client",
        kind: "client",
        cn: "system:kube-scheduler",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube2iam.client",
        kind: "client",
        cn: "kube2iam.client",
        org: None,
        uri: None,
    },
    Cert {
        name: "kubelet.client",
        kind: "client",
        cn: "system:node:{{ .Instance.ID }}",
        org: Some("system:nodes"),
        uri: None,
    },
    Cert {
        name: "kubelet.server",
        kind: "server",
        cn: "kubelet.server",
        org: None,
        uri: None,
    },
    Cert {
        name: "netsy.client",
        kind: "client",
        cn: "netsy.client",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        name: "netsy.server",
        kind: "server",
        cn: "netsy.server",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        name: "registry.server",
        kind: "server",
        cn: "registry.server",
        org: None,
        uri: None,
    },
];

/// Certificate files Nstance delivers to a node of `kind`, in delivery order.
pub fn certificate_files(kind: &str) -> Vec<&'static str> {
    let mut v = vec![
        "containerd.client",
        "kube2iam.client",
        "kubelet.client",
        "kubelet.server",
        "registry.server",
    ];
    if kind == "knc" {
        v.extend([
            "front-proxy.client",
            "kube-apiserver.client",
            "kube-apiserver.server",
            "kube-controller-manager.client",
            "kube-scheduler.client",
            "netsy.client",
            "netsy.server",
        ]);
    }
    v
}

fn certificates(network: &config::ServiceNetwork) -> Value {
    let mut fields = Vec::new();
    for c in CERTS {
        let mut dns = vec![str("{{ .Instance.Hostname }}"), str("localhost")];
        let mut ip: Vec<Value> = [
            "{{ .Instance.IP4 }}",
            "{{ .Instance.IP6 }}",
            "127.0.0.1",
            "::1",
        ]
        .into_iter()
        .map(str)
        .collect();
        if c.name == "kube-apiserver.server" {
            dns.push(str("kube-apiserver.podplane.internal"));
            dns.push(raw("var.kubernetes_api_hostname"));
            ip.extend(network.api.iter().map(|a| str(a.to_string())));
        }
        let mut f = vec![
            ident("kind", str(c.kind)),
            ident("cn", str(c.cn)),
            ident("dns", Value::List(dns)),
            ident("ip", Value::List(ip)),
            ident("ttl", Value::Num(8760)),
        ];
        if let Some(o) = c.org {
            f.push(ident("organization", strs(&[o])));
        }
        if let Some(u) = c.uri {
            f.push(ident("uri", strs(&[u])));
        }
        fields.push(field(c.name, Value::Inline(f)));
    }
    Value::Object(fields)
}

fn target_key(kind: &str, arch: &str) -> String {
    safe_name(&[kind, arch])
}

fn templates(cfg: &ClusterConfig) -> Value {
    let mut fields = Vec::new();
    for (name, pool) in &cfg.cluster.pools {
        let kind = pool_kind(name);
        let mut files = vec![field(
            "mutable.env",
            Value::Inline(vec![
                ident("kind", str("env")),
                ident("template", raw("local.mutable_env")),
            ]),
        )];
        for cert in certificate_files(kind) {
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
                                super::hcl::quote(&target_key(kind, &pool.arch))
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

fn main_tf(
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
    let mut rp =
        Block::new("required_providers", &[]).with("aws", provider("hashicorp/aws", ">= 6.0"));
    if is_seeded(cfg) {
        rp.attr("podplane", provider("podplane/podplane", ">= 1.2.0"));
    }
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
                super::hcl::quote(&opts.deps_mirror_url)
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
        doc.push(
            module(&safe_name(&["shard", zone]), "shard")
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
        let mut seed = Block::new("resource", &["podplane_netsy_seed_s3", "cluster"]);
        // "${path.module}/<name>", the name escaped like any user string.
        let quoted = super::hcl::quote(&opts.config_file_name);
        seed.attr(
            "cluster_config_path",
            raw(format!(
                "\"${{path.module}}/{}\"",
                &quoted[1..quoted.len() - 1]
            )),
        )
        .attr(
            "bucket",
            raw("aws_s3_bucket.podplane_cluster[\"netsy\"].bucket"),
        )
        .attr("region", raw("local.aws_region"));
        if route53_acme(cfg) {
            seed.attr("values_content", raw(ROUTE53_SEED_VALUES));
        }
        if !p.profile.is_empty() {
            seed.attr("profile", str(&p.profile));
        }
        doc.push(seed);
    }
    doc
}

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
        let q = super::hcl::quote(name);
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

fn buckets_tf() -> Doc {
    let mut doc = Doc::default();
    doc.push(Block::new("locals", &[]).with(
        "buckets",
        Value::Object(vec![
            field("netsy", raw("local.netsy_bucket_name")),
            field("registry", raw("local.registry_bucket_name")),
        ]),
    ));
    doc.push(
        Block::new("resource", &["aws_s3_bucket", "podplane_cluster"])
            .with("for_each", raw("local.buckets"))
            .with("bucket", raw("each.value")),
    );
    doc.push(
        Block::new(
            "resource",
            &["aws_s3_bucket_public_access_block", "podplane_cluster"],
        )
        .with("for_each", raw("local.buckets"))
        .with("bucket", raw("aws_s3_bucket.podplane_cluster[each.key].id"))
        .with("block_public_acls", Value::Bool(true))
        .with("block_public_policy", Value::Bool(true))
        .with("ignore_public_acls", Value::Bool(true))
        .with("restrict_public_buckets", Value::Bool(true)),
    );
    doc.push(
        Block::new(
            "resource",
            &[
                "aws_s3_bucket_server_side_encryption_configuration",
                "podplane_cluster",
            ],
        )
        .with("for_each", raw("local.buckets"))
        .with("bucket", raw("aws_s3_bucket.podplane_cluster[each.key].id"))
        .with_block(
            Block::new("rule", &[]).with_block(
                Block::new("apply_server_side_encryption_by_default", &[])
                    .with("sse_algorithm", str("AES256")),
            ),
        ),
    );
    doc
}

/// Route53 can own the API hostname's record: an API load balancer is set and the first
/// domain has a provider and covers the hostname.
fn api_managed(cfg: &ClusterConfig) -> Option<&config::Domain> {
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
fn api_covered(cfg: &ClusterConfig) -> bool {
    let k = &cfg.cluster.kubernetes;
    cfg.cluster
        .domains
        .iter()
        .any(|d| d.zone == k.api_hostname && d.resolved_load_balancer() == k.api_load_balancer)
}

fn dns_tf(cfg: &ClusterConfig, net: &str) -> Doc {
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

fn roles_tf(cfg: &ClusterConfig, account: &str) -> Doc {
    let role = |bucket: &str, bucket_actions: &[&str], object_actions: &[&str]| {
        Value::Object(vec![
            ident("bucket", str(bucket)),
            ident("bucket_actions", strs(bucket_actions)),
            ident("object_actions", strs(object_actions)),
        ])
    };
    let registry_bucket = [
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:ListBucketMultipartUploads",
    ];
    let mut doc = Doc::default();
    doc.push(Block::new("locals", &[]).with(
        "roles",
        Value::Object(vec![
            field(
                "netsy",
                role(
                    "netsy",
                    &["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    &[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:GetObjectAttributes",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                ),
            ),
            field(
                "registry-read-only",
                role(
                    "registry",
                    &registry_bucket,
                    &["s3:GetObject", "s3:ListMultipartUploadParts"],
                ),
            ),
            field(
                "registry-read-write",
                role(
                    "registry",
                    &registry_bucket,
                    &[
                        "s3:GetObject",
                        "s3:ListMultipartUploadParts",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                    ],
                ),
            ),
        ]),
    ));
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "assume_from_knc"]).with_block(
            Block::new("statement", &[])
                .with("actions", strs(&["sts:AssumeRole"]))
                .with_block(Block::new("principals", &[]).with("type", str("AWS")).with(
                    "identifiers",
                    Value::List(vec![raw(format!("module.{account}.agent_iam_role_arn"))]),
                )),
        ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with("name", raw("\"${local.name_prefix}-${each.key}\""))
            .with(
                "assume_role_policy",
                raw("data.aws_iam_policy_document.assume_from_knc.json"),
            ),
    );
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with_block(
                Block::new("statement", &[])
                    .with("actions", raw("each.value.bucket_actions"))
                    .with(
                        "resources",
                        Value::List(vec![raw(
                            "aws_s3_bucket.podplane_cluster[each.value.bucket].arn",
                        )]),
                    ),
            )
            .with_block(
                Block::new("statement", &[])
                    .with("actions", raw("each.value.object_actions"))
                    .with(
                        "resources",
                        Value::List(vec![raw(
                            "\"${aws_s3_bucket.podplane_cluster[each.value.bucket].arn}/*\"",
                        )]),
                    ),
            ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role_policy", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with("name", raw("\"${local.name_prefix}-${each.key}-policy\""))
            .with("role", raw("aws_iam_role.podplane_cluster[each.key].id"))
            .with(
                "policy",
                raw("data.aws_iam_policy_document.podplane_cluster[each.key].json"),
            ),
    );
    let acme = route53_acme(cfg);
    if acme {
        let condition = |variable: &str, values: &[&str]| {
            Block::new("condition", &[])
                .with("test", str("ForAllValues:StringEquals"))
                .with("variable", str(variable))
                .with("values", strs(values))
        };
        doc.push(
            Block::new("resource", &["aws_iam_role", "cert_manager_route53"])
                .with("count", Value::Num(1))
                .with("name", raw("\"${local.name_prefix}-cert-manager-route53\""))
                .with(
                    "assume_role_policy",
                    raw("data.aws_iam_policy_document.assume_from_knc.json"),
                ),
        );
        doc.push(
            Block::new("data", &["aws_iam_policy_document", "cert_manager_route53"])
                .with_block(
                    Block::new("statement", &[])
                        .with("sid", str("ChangeDNS01Records"))
                        .with("actions", strs(&["route53:ChangeResourceRecordSets"]))
                        .with(
                            "resources",
                            raw("[for zone in data.aws_route53_zone.managed : zone.arn]"),
                        )
                        .with_block(condition(
                            "route53:ChangeResourceRecordSetsRecordTypes",
                            &["TXT"],
                        ))
                        .with_block(condition(
                            "route53:ChangeResourceRecordSetsActions",
                            &["UPSERT", "DELETE"],
                        )),
                )
                .with_block(
                    Block::new("statement", &[])
                        .with("sid", str("ReadDNS01Changes"))
                        .with("actions", strs(&["route53:GetChange"]))
                        .with("resources", strs(&["arn:aws:route53:::change/*"])),
                ),
        );
        doc.push(
            Block::new("resource", &["aws_iam_role_policy", "cert_manager_route53"])
                .with("count", Value::Num(1))
                .with(
                    "name",
                    raw("\"${local.name_prefix}-cert-manager-route53-policy\""),
                )
                .with("role", raw("aws_iam_role.cert_manager_route53[0].id"))
                .with(
                    "policy",
                    raw("data.aws_iam_policy_document.cert_manager_route53.json"),
                ),
        );
    }
    let mut assumable = vec![
        raw("aws_iam_role.podplane_cluster[\"netsy\"].arn"),
        raw("aws_iam_role.podplane_cluster[\"registry-read-only\"].arn"),
        raw("aws_iam_role.podplane_cluster[\"registry-read-write\"].arn"),
    ];
    if acme {
        assumable.push(raw("aws_iam_role.cert_manager_route53[0].arn"));
    }
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "podplane_knc"])
            .with_block(
                Block::new("statement", &[])
                    .with("sid", str("AssumePodplaneWorkloadRoles"))
                    .with("actions", strs(&["sts:AssumeRole"]))
                    .with("resources", Value::List(assumable)),
            )
            .with_block(
                Block::new("statement", &[])
                    .with("sid", str("DescribeRegions"))
                    .with("actions", strs(&["ec2:DescribeRegions"]))
                    .with("resources", strs(&["*"])),
            ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role_policy", "podplane_knc"])
            .with("name", raw("\"${local.name_prefix}-podplane-knc-policy\""))
            .with("role", raw(format!("module.{account}.agent_iam_role_name")))
            .with(
                "policy",
                raw("data.aws_iam_policy_document.podplane_knc.json"),
            ),
    );
    doc
}

fn variable(name: &str, description: &str, ty: &str, default: Value) -> Block {
    Block::new("variable", &[name])
        .with("description", str(description))
        .with("type", raw(ty))
        .with("default", default)
}

/// (name, description, type, default, sensitive, whole-number maximum)
type VarSpec<'a> = (&'a str, String, &'a str, Value, bool, Option<u32>);

fn runtime_tf(cfg: &ClusterConfig, network: &config::ServiceNetwork) -> Doc {
    let c = &cfg.cluster;
    let when_set = "existing VMs are reconfigured when set.";
    let static_key = |what: &str, prefer: &str| {
        format!(
            "Static {what}; prefer {prefer} when available. Existing VMs are reconfigured when set."
        )
    };
    let node_mask = "Pod CIDR prefix for new node allocations. Existing Node.spec.podCIDRs and CNI state are not resized or migrated; old allocations consume corresponding blocks in the new allocation grid.";
    let signing = if c.oidc.signing_algs.is_empty() {
        Value::Null
    } else {
        strs(&c.oidc.signing_algs)
    };
    let api_port = if c.kubernetes.api_port != 0 {
        c.kubernetes.api_port
    } else {
        6443
    };
    let registry_hostname = if !c.registry.hostname.is_empty() {
        c.registry.hostname.clone()
    } else if c.domains.is_empty() {
        format!("{}-registry.local", c.id)
    } else {
        String::new()
    };
    let service_cidrs: Vec<String> = network.cidrs.iter().map(|p| p.to_string()).collect();
    // (name, description, type, default, sensitive, whole-number maximum)
    let vars: Vec<VarSpec> = vec![
        ("ssh_authorized_keys", format!("SSH login keys; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_enabled", format!("Telemetry state; {when_set}"), "bool", Value::Null, false, None),
        ("telemetry_log_cloudinit", format!("Cloud-init log collection; {when_set}"), "bool", Value::Null, false, None),
        ("telemetry_log_services", format!("Telemetry services; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_otlp_endpoint", format!("OTLP endpoint; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_bucket", format!("Telemetry bucket; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_endpoint", format!("Telemetry S3 endpoint; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_assume_role", format!("Telemetry role; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_access_key_id", static_key("telemetry access key ID", "telemetry_s3_assume_role"), "string", Value::Null, true, None),
        ("telemetry_s3_secret_access_key", static_key("telemetry secret access key", "telemetry_s3_assume_role"), "string", Value::Null, true, None),
        ("oidc_issuer_url", "OIDC issuer; existing VMs are reconfigured.".into(), "string", str(&c.oidc.issuer_url), false, None),
        ("oidc_ca_cert", format!("OIDC CA certificate; {when_set}"), "string", Value::Null, false, None),
        ("oidc_signing_algs", "OIDC signing algorithms accepted by kube-apiserver; existing VMs are reconfigured. vmagent defaults to RS256 when unset.".into(), "list(string)", signing, false, None),
        ("kube_api_etcd_servers", format!("etcd endpoints; {when_set}"), "string", Value::Null, false, None),
        ("kubernetes_api_hostname", "Kubernetes API hostname; existing VMs are reconfigured.".into(), "string", str(&c.kubernetes.api_hostname), false, None),
        ("kubernetes_api_port", "External Kubernetes API port used by clients; kube-apiserver listens internally on 6443.".into(), "number", Value::Num(api_port), false, None),
        ("kubernetes_cluster_cidr", "Pod CIDRs for control-plane services. Existing VMs are reconfigured, but Podplane does not migrate existing Pods, node CIDR allocations, CNI state, routes, or other networking state.".into(), "list(string)", strs(&c.kubernetes.cluster_cidr), false, None),
        ("kubernetes_node_cidr_mask_size_ipv4", format!("IPv4 {node_mask}"), "number", Value::Null, false, Some(32)),
        ("kubernetes_node_cidr_mask_size_ipv6", format!("IPv6 {node_mask}"), "number", Value::Null, false, Some(128)),
        ("kubernetes_service_cidr", "Default Service CIDRs for control-plane services. Existing VMs are reconfigured, but Podplane does not migrate existing Services or other networking state; additional ServiceCIDR resources are separate.".into(), "list(string)", strs(&service_cidrs), false, None),
        ("kube_log_level", format!("Kubernetes log level; {when_set}"), "number", Value::Null, false, None),
        ("aws_s3_use_path_style", format!("S3 path style; {when_set}"), "string", Value::Null, false, None),
        ("netsy_endpoint", format!("Netsy endpoint; {when_set}"), "string", Value::Null, false, None),
        ("netsy_access_key_id", static_key("Netsy access key ID", "assume-role credentials"), "string", Value::Null, true, None),
        ("netsy_secret_access_key", static_key("Netsy secret access key", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_enabled", format!("Registry state; {when_set}"), "bool", Value::Null, false, None),
        ("registry_endpoint", format!("Registry endpoint; {when_set}"), "string", Value::Null, false, None),
        ("registry_access_key_id", static_key("registry access key ID", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_secret_access_key", static_key("registry secret access key", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_hostname", format!("Registry hostname; {when_set}"), "string", str(registry_hostname), false, None),
    ];
    let mut doc = Doc {
        header: vec![
            "Runtime configuration inputs. Changes are pushed to existing VMs and applied without replacement,".into(),
            "which means if you only change and apply one of these, you should only see the Nstance server".into(),
            "configuration file in the planned changes.".into(),
        ],
        ..Doc::default()
    };
    for (name, description, ty, default, sensitive, max) in vars {
        let mut v = variable(name, &description, ty, default);
        if sensitive {
            v.attr("sensitive", Value::Bool(true));
        }
        if let Some(max) = max {
            v.block(
                Block::new("validation", &[])
                    .with(
                        "condition",
                        raw(format!(
                            "var.{name} == null ? true : (var.{name} >= 0 && var.{name} <= {max} && floor(var.{name}) == var.{name})"
                        )),
                    )
                    .with(
                        "error_message",
                        str(format!("{name} must be a whole number between 0 and {max}.")),
                    ),
            );
        }
        doc.push(v);
    }
    let or = |v: &str, d: &str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    doc.push(
        Block::new("locals", &[])
            .with("oidc_client_id", str(or(&c.oidc.client_id, &c.id)))
            .with(
                "oidc_username_claim",
                str(or(&c.oidc.username_claim, "email")),
            )
            .with("oidc_groups_claim", str(or(&c.oidc.groups_claim, "groups"))),
    );
    doc
}

fn vm_tf(cfg: &ClusterConfig) -> Doc {
    let pools = &cfg.cluster.pools;
    let mut doc = Doc {
        header: vec![
            "VM infrastructure inputs. Changes reconcile VM counts or trigger rolling VM replacement."
                .into(),
        ],
        ..Doc::default()
    };
    // Not nullable: the userdata template tests and quotes it.
    doc.push(
        variable(
            "immutable_ssh_authorized_keys",
            "Early-boot SSH keys; changing them rolls affected VMs.",
            "string",
            str(""),
        )
        .with("nullable", Value::Bool(false)),
    );
    doc.push(variable(
        "pool_instance_types",
        "Instance types by pool; changing one rolls that pool.",
        "map(string)",
        Value::Object(
            pools
                .iter()
                .map(|(n, p)| field(n, str(&p.instance_type)))
                .collect(),
        ),
    ));
    doc.push(variable(
        "pool_sizes",
        "Desired VM counts by pool; changes are reconciled by Nstance.",
        "map(number)",
        Value::Object(
            pools
                .iter()
                .map(|(n, p)| field(n, Value::Num(p.size)))
                .collect(),
        ),
    ));
    doc
}

fn infra_tf(cfg: &ClusterConfig, p: &Provider) -> Doc {
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

fn outputs_tf(cfg: &ClusterConfig, p: &Provider, net: &str) -> Doc {
    let c = &cfg.cluster;
    let q = super::hcl::quote;
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
