//! The wizard's answers and the pure mapping from them to the cluster config and to the
//! config file's bytes. Nothing here reads or writes anything.

use std::collections::BTreeMap;

use crate::config::{
    Acme, Cluster, ClusterConfig, DEFAULT_SCHEMA_REF, Domain, DomainProvider, Kubernetes, Listener,
    LoadBalancer, Oidc, Pool, Provider, Registry, Secrets, SecretsProvider, Seed, Subnet, Vpc,
};

/// The wizard's answers, one field per question. `Default` holds the questions'
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    /// "Cluster name".
    pub name: String,
    /// "Cluster ID / slug".
    pub id: String,
    /// "OIDC issuer URL" (or the issuer chosen before the wizard).
    pub issuer_url: String,
    /// "Cluster domain (optional)"; empty = no domain.
    pub domain: String,
    /// "DNS provider (aws-route53 or blank for manual)"; only with a domain.
    pub dns_provider: String,
    /// "ACME account email (optional)"; only with the `aws-route53` DNS provider.
    pub acme_email: String,
    /// "Kubernetes API hostname"; only without a domain (with one it is `k8s.<domain>`).
    pub api_hostname: String,
    /// "AWS region".
    pub region: String,
    /// "AWS profile (optional)".
    pub profile: String,
    /// "Initial platform components": `none` (or `recommended` / `minimal` once seeds are
    /// cached; `""` means none).
    pub components: String,
    /// "Configure networking options?".
    pub networking: bool,
    /// "VPC IPv4 CIDR" (a canonical `/16`).
    pub vpc_cidr: String,
    /// "AWS availability zone"; used only when `networking` is true.
    pub zone: String,
    /// "Control-plane architecture".
    pub cp_arch: String,
    /// "Control-plane instance type".
    pub cp_instance_type: String,
    /// "Control-plane size".
    pub cp_size: i64,
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            name: "Example Cluster".into(),
            id: "example-cluster".into(),
            issuer_url: "https://auth.example.com".into(),
            domain: String::new(),
            dns_provider: String::new(),
            acme_email: String::new(),
            api_hostname: String::new(),
            region: "us-east-1".into(),
            profile: String::new(),
            components: "recommended".into(),
            networking: false,
            vpc_cidr: "172.18.0.0/16".into(),
            zone: "us-east-1a".into(),
            cp_arch: "arm64".into(),
            cp_instance_type: "t4g.medium".into(),
            cp_size: 3,
        }
    }
}

/// Name of the only pool the wizard creates.
const CONTROL_PLANE: &str = "control-plane";
/// DNS provider kind the wizard supports.
pub(super) const ROUTE53: &str = "aws-route53";
/// Default secrets provider of the AWS draft.
const SECRETS_PROVIDER: &str = "aws-secrets-manager";

/// Maps wizard answers to the AWS draft config:
///
/// * one pool `control-plane`; provider `aws` with the answered region/profile and no
///   account;
/// * VPC `v4cidr` = the answer, `v6cidr: "auto"`; one zone: the answered zone when
///   `networking` is set, else `<region>a`; three subnets on the VPC's first two octets:
///   `x.y.10.0/28` public `nat`+`nlb`, `x.y.20.0/28` `nstance`, `x.y.1.0/24` pool
///   `control-plane`;
/// * no domain: `api_hostname` = the answer, registry `<id>-registry.local`, no load balancer;
/// * domain D: `domains = [{zone: D, provider?}]`, `acme = {email}` with route53 and an email,
///   API `k8s.D` behind load balancer `main`, registry `registry.D`, LB `main` public in the
///   `public` subnets with listeners 443 and 6443 to `control-plane`;
/// * cluster CIDR `100.64.0.0/10`, service CIDR `198.18.0.0/15`, secrets default provider
///   `aws-secrets-manager` (aws / secretsmanager);
/// * components `none` or `""` → `seed: {}`; another name → `seed.name` only (the caller must
///   add `version` and `digest` from the seeds manifest before the config is usable).
pub fn config_from_answers(a: &Answers) -> ClusterConfig {
    let (o1, o2) = first_two_octets(&a.vpc_cidr);
    let subnet = |third: u8, bits: u8| format!("{o1}.{o2}.{third}.0/{bits}");
    let subnets = vec![
        Subnet {
            services: vec!["nat".into(), "nlb".into()],
            public: true,
            v4cidr: subnet(10, 28),
            v6cidr: "auto".into(),
            ..Subnet::default()
        },
        Subnet {
            services: vec!["nstance".into()],
            v4cidr: subnet(20, 28),
            v6cidr: "auto".into(),
            ..Subnet::default()
        },
        Subnet {
            pool: CONTROL_PLANE.into(),
            v4cidr: subnet(1, 24),
            v6cidr: "auto".into(),
            ..Subnet::default()
        },
    ];
    let zone = if a.networking {
        a.zone.clone()
    } else {
        format!("{}a", a.region)
    };
    let mut provider = Provider {
        kind: "aws".into(),
        region: a.region.clone(),
        profile: a.profile.clone(),
        vpc: Vpc {
            v4cidr: a.vpc_cidr.clone(),
            v6cidr: "auto".into(),
            ..Vpc::default()
        },
        zones: BTreeMap::from([(zone, subnets)]),
        ..Provider::default()
    };

    let mut cluster = Cluster {
        id: a.id.clone(),
        name: a.name.clone(),
        oidc: Oidc {
            issuer_url: a.issuer_url.clone(),
            ..Oidc::default()
        },
        pools: BTreeMap::from([(
            CONTROL_PLANE.to_string(),
            Pool {
                arch: a.cp_arch.clone(),
                instance_type: a.cp_instance_type.clone(),
                size: a.cp_size,
                disk_size: 0,
            },
        )]),
        secrets: Secrets {
            default_provider: SECRETS_PROVIDER.into(),
            providers: BTreeMap::from([(
                SECRETS_PROVIDER.to_string(),
                SecretsProvider {
                    kind: "aws".into(),
                    object_type: "secretsmanager".into(),
                    ..SecretsProvider::default()
                },
            )]),
        },
        kubernetes: Kubernetes {
            cluster_cidr: vec!["100.64.0.0/10".into()],
            service_cidr: vec!["198.18.0.0/15".into()],
            ..Kubernetes::default()
        },
        ..Cluster::default()
    };

    if a.domain.is_empty() {
        cluster.kubernetes.api_hostname = a.api_hostname.clone();
        cluster.registry = Registry {
            hostname: format!("{}-registry.local", a.id),
            ..Registry::default()
        };
    } else {
        let route53 = a.dns_provider == ROUTE53;
        cluster.domains = vec![Domain {
            zone: a.domain.clone(),
            provider: route53.then(|| DomainProvider {
                kind: ROUTE53.into(),
                ..DomainProvider::default()
            }),
            ..Domain::default()
        }];
        if route53 && !a.acme_email.is_empty() {
            cluster.acme = Some(Acme {
                email: a.acme_email.clone(),
                ..Acme::default()
            });
        }
        cluster.kubernetes.api_hostname = format!("k8s.{}", a.domain);
        cluster.kubernetes.api_load_balancer = "main".into();
        cluster.registry = Registry {
            hostname: format!("registry.{}", a.domain),
            ..Registry::default()
        };
        let listener = |port| Listener {
            port,
            target_port: 0,
            pool: CONTROL_PLANE.into(),
        };
        provider.load_balancers = BTreeMap::from([(
            "main".to_string(),
            LoadBalancer {
                public: true,
                subnets: "public".into(),
                listeners: vec![listener(443), listener(6443)],
            },
        )]);
    }

    cluster.seed = match a.components.as_str() {
        "" | "none" => Seed::default(),
        name => Seed {
            name: name.into(),
            ..Seed::default()
        },
    };
    cluster.providers = vec![provider];

    ClusterConfig {
        schema: DEFAULT_SCHEMA_REF.into(),
        cluster,
    }
}

/// The first two dot-separated parts of an IPv4 CIDR (`172.18.0.0/16` → `172`, `18`).
fn first_two_octets(cidr: &str) -> (&str, &str) {
    let mut parts = cidr.split('.');
    let a = parts.next().unwrap_or("172");
    let b = parts.next().unwrap_or("18");
    (a, b)
}

/// The file's bytes as the wizard writes them: pretty JSON with 2-space indent
/// and a trailing newline, `"$schema"` first (set to `./podplane.cluster.schema.json` when
/// empty), fields in struct order, map keys sorted, struct-typed fields always present
/// (`"seed": {}`, `"components": {}`, `"registry": {"hostname": …, "ingress": {}}`, …).
///
/// The model's serde attributes already give this shape: only strings, scalars, lists, maps
/// and `Option`s are skipped when empty, never nested structs.
///
/// Fails only if serde_json cannot serialise the model (it has string keys only, so it can).
pub fn config_json(cfg: &ClusterConfig) -> serde_json::Result<String> {
    let mut cfg = cfg.clone();
    if cfg.schema.is_empty() {
        cfg.schema = DEFAULT_SCHEMA_REF.into();
    }
    let mut text = serde_json::to_string_pretty(&cfg)?;
    text.push('\n');
    Ok(text)
}
