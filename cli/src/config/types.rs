//! Rust model of `podplane.cluster.jsonc`.
//!
//! Field order is the serialisation order of the file. Every struct rejects unknown keys and
//! every map rejects duplicate keys (see the [module docs](super)). Fields are defaulted when
//! absent so that the loader and the validator can report missing values with their own
//! messages (`missing cluster.id`, `…instance_type is required`); the JSON schema still lists
//! them as `required` (added with [`Require`]). Enumerated fields are plain strings checked by
//! the validator (which gives the specific messages); their allowed values live in the
//! constants below and are put into the schema with [`OneOf`] / [`ItemsOneOf`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, transform::Transform};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use vmagent::contract::{Arch, Provider as ProviderKind};

/// `$schema` value written into new config files.
pub const DEFAULT_SCHEMA_REF: &str = "./podplane.cluster.schema.json";
/// ACME directory used when `cluster.acme.server` is omitted.
pub const DEFAULT_ACME_SERVER: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `pools.<n>.arch`.
pub const POOL_ARCHES: &[&str] = Arch::NAMES;
/// `providers[].kind` as accepted by the schema (generation supports only `aws`).
pub const PROVIDER_KINDS: &[&str] = &[
    ProviderKind::Aws.name(),
    ProviderKind::Google.name(),
    ProviderKind::Proxmox.name(),
];
/// `domains[].provider.kind`.
pub const DOMAIN_PROVIDER_KINDS: &[&str] =
    &["aws-route53", "cloudflare", "google-cloud-dns", "local"];
/// Subnet `services[]`.
pub const SUBNET_SERVICES: &[&str] = &["nat", "nlb", "nstance"];
/// `providers[].roles.<n>.permissions` (empty means `read-write`).
pub const ROLE_PERMISSIONS: &[&str] = &["read-write", "read-only"];
/// `secrets.providers.<n>.kind`.
pub const SECRETS_PROVIDER_KINDS: &[&str] = &["aws", "gcp", "vault", "openbao"];
/// `secrets.providers.<n>.object_type` for AWS.
pub const SECRETS_OBJECT_TYPES: &[&str] = &["secretsmanager", "ssmparameter"];
/// `seed.name` (`""` means none).
pub const SEED_NAMES: &[&str] = &["", "recommended", "minimal", "none"];
/// Only accepted value of the `v6cidr` fields.
pub const V6CIDR_VALUES: &[&str] = &["auto"];

/// Schema transform: sets the object's `required` list.
pub struct Require(pub &'static [&'static str]);

impl Transform for Require {
    fn transform(&mut self, schema: &mut Schema) {
        schema.insert("required".into(), self.0.into());
    }
}

/// Schema transform: restricts a string to the given values.
pub struct OneOf(pub &'static [&'static str]);

impl Transform for OneOf {
    fn transform(&mut self, schema: &mut Schema) {
        schema.insert("enum".into(), self.0.into());
    }
}

/// Schema transform: restricts the items of a string array to the given values.
pub struct ItemsOneOf(pub &'static [&'static str]);

impl Transform for ItemsOneOf {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(items) = schema.get_mut("items").and_then(|i| i.as_object_mut()) {
            items.insert("enum".into(), self.0.into());
        }
    }
}

/// Deserialises a JSON object into a map, failing on a repeated key (serde's own map
/// implementation silently keeps the last one). Used by every strict config model.
pub(crate) fn strict_map<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct StrictMap<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for StrictMap<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = access.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
                }
                let value = access.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(StrictMap(PhantomData))
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A `podplane.cluster.jsonc` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(
    title = "Podplane cluster config",
    transform = Require(&["cluster"])
)]
pub struct ClusterConfig {
    /// Path or URL of the JSON schema, for editors.
    #[serde(rename = "$schema", skip_serializing_if = "String::is_empty")]
    pub schema: String,
    /// The cluster description.
    pub cluster: Cluster,
}

/// The `cluster` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["id", "oidc", "kubernetes"]))]
pub struct Cluster {
    /// Stable cluster slug: lowercase letters, digits and single hyphens, at most 32 characters.
    #[schemars(length(max = 32))]
    pub id: String,
    /// Human-readable cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// OIDC issuer trusted by the API server.
    pub oidc: Oidc,
    /// ACME account for ingress certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<Acme>,
    /// DNS zones for ingress; the first one is the default ingress domain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Domain>,
    /// Cluster OCI registry endpoint.
    pub registry: Registry,
    /// Named VM pools.
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub pools: BTreeMap<String, Pool>,
    /// Cloud providers; only the first one is rendered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Provider>,
    /// Podplane Secrets providers.
    pub secrets: Secrets,
    /// Kubernetes API and networks.
    pub kubernetes: Kubernetes,
    /// Seed snapshot for the initial cluster state.
    pub seed: Seed,
    /// Platform components settings.
    pub components: Components,
}

/// `cluster.oidc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["issuer_url"]))]
pub struct Oidc {
    /// Issuer URL trusted by the Kubernetes API server.
    #[schemars(extend("format" = "uri"))]
    pub issuer_url: String,
    /// Client ID; defaults to the cluster ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Username claim; defaults to `email`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_claim: String,
    /// Groups claim; defaults to `groups`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub groups_claim: String,
    /// Accepted signing algorithms; unset means RS256.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_algs: Vec<String>,
    /// Issuer CA: inline PEM, http(s) URL or file path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_cert: String,
}

/// `cluster.acme`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["email"]))]
pub struct Acme {
    /// ACME directory (https); defaults to Let's Encrypt production.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// Account email, a bare address.
    pub email: String,
}

/// One entry of `cluster.domains`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["zone"]))]
pub struct Domain {
    /// DNS zone.
    pub zone: String,
    /// DNS provider; absent means manual DNS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<DomainProvider>,
    /// Load balancer serving the zone; defaults to `main`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub load_balancer: String,
}

impl Domain {
    /// The load balancer the domain uses (`main` when unset).
    pub fn resolved_load_balancer(&self) -> &str {
        if self.load_balancer.is_empty() {
            "main"
        } else {
            &self.load_balancer
        }
    }
}

/// `cluster.domains[].provider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind"]))]
pub struct DomainProvider {
    /// DNS provider kind.
    #[schemars(transform = OneOf(DOMAIN_PROVIDER_KINDS))]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hosted_zone_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_provider_class_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hosted_zone_name: String,
}

/// `cluster.registry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Registry {
    /// Registry hostname; required when domains are configured.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Optional public registry ingress.
    pub ingress: RegistryIngress,
}

/// `cluster.registry.ingress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryIngress {
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
}

/// `cluster.pools.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["arch", "instance_type", "size"]))]
pub struct Pool {
    /// CPU architecture.
    #[schemars(transform = OneOf(POOL_ARCHES))]
    pub arch: String,
    /// Cloud instance type.
    pub instance_type: String,
    /// Instances per zone.
    #[schemars(range(min = 0))]
    pub size: i64,
    /// Root disk size in GiB; omitted means the module default.
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1))]
    pub disk_size: i64,
}

/// One entry of `cluster.providers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind"]))]
pub struct Provider {
    /// Provider kind (Terraform generation supports `aws`).
    #[schemars(transform = OneOf(PROVIDER_KINDS))]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// Tags applied to every resource.
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
    /// The VPC: an existing `id`, or CIDRs for a new one.
    pub vpc: Vpc,
    /// Subnets per availability zone.
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub zones: BTreeMap<String, Vec<Subnet>>,
    /// Named load balancers.
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub load_balancers: BTreeMap<String, LoadBalancer>,
    /// Bucket names (validated, not rendered yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
    /// Named roles with bucket access (validated, not rendered yet).
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub roles: BTreeMap<String, Role>,
}

/// `cluster.providers[].vpc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Vpc {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Canonical IPv4 CIDR of a new VPC.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub v4cidr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(V6CIDR_VALUES))]
    pub v6cidr: String,
}

/// `cluster.providers[].zones.<zone>[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Subnet {
    /// Pool placed in this subnet (exclusive with `services`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pool: String,
    /// Services placed in this subnet (exclusive with `pool`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = ItemsOneOf(SUBNET_SERVICES))]
    pub services: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub public: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub v4cidr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(V6CIDR_VALUES))]
    pub v6cidr: String,
}

impl Subnet {
    /// The subnet role used by load balancers and the network module.
    pub fn role(&self) -> &str {
        let has = |s: &str| self.services.iter().any(|x| x == s);
        if !self.pool.is_empty() {
            &self.pool
        } else if has("nstance") {
            "nstance"
        } else if self.public && (has("nat") || has("nlb")) {
            "public"
        } else {
            "services"
        }
    }
}

/// `cluster.providers[].load_balancers.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["public", "subnets", "listeners"]))]
pub struct LoadBalancer {
    pub public: bool,
    /// Subnet role the load balancer is placed in.
    pub subnets: String,
    pub listeners: Vec<Listener>,
}

/// `…load_balancers.<name>.listeners[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["port", "pool"]))]
pub struct Listener {
    #[schemars(range(min = 1, max = 65535))]
    pub port: i64,
    /// Target port; defaults to `port`.
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: i64,
    /// Target pool.
    pub pool: String,
}

/// `cluster.providers[].roles.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["buckets"]))]
pub struct Role {
    pub buckets: Vec<String>,
    /// Defaults to `read-write`.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(ROLE_PERMISSIONS))]
    pub permissions: String,
}

/// `cluster.secrets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Secrets {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_provider: String,
    #[serde(
        deserialize_with = "strict_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub providers: BTreeMap<String, SecretsProvider>,
}

/// `cluster.secrets.providers.<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["kind"]))]
pub struct SecretsProvider {
    #[schemars(transform = OneOf(SECRETS_PROVIDER_KINDS))]
    pub kind: String,
    /// Backend key prefix; defaults to the cluster ID.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_prefix: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(SECRETS_OBJECT_TYPES))]
    pub object_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub location: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_cert: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operator_role: String,
}

/// `cluster.kubernetes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["api_hostname"]))]
pub struct Kubernetes {
    /// DNS name of the API server.
    pub api_hostname: String,
    /// API port; defaults to 6443.
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1, max = 65535))]
    pub api_port: i64,
    /// Load balancer exposing the API.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_load_balancer: String,
    /// Pod networks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster_cidr: Vec<String>,
    /// Service networks: IPv4 first, at most one per family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_cidr: Vec<String>,
}

/// `cluster.seed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schemars(transform = OneOf(SEED_NAMES))]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `sha512:` followed by 128 lowercase hex digits.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
}

/// `cluster.components`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Components {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ComponentsSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<ComponentsRegistry>,
}

/// `cluster.components.registry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentsRegistry {
    pub mirror: ComponentsRegistryMirror,
}

/// `cluster.components.registry.mirror`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentsRegistryMirror {
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// `cluster.components.source`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["url"]))]
pub struct ComponentsSource {
    pub url: String,
    #[serde(rename = "ref")]
    pub git_ref: ComponentsSourceRef,
    #[serde(rename = "secretRef", skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ComponentsSourceSecretRef>,
}

/// `cluster.components.source.ref`: at most one field set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentsSourceRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub branch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub semver: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub commit: String,
}

/// `cluster.components.source.secretRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(transform = Require(&["name"]))]
pub struct ComponentsSourceSecretRef {
    pub name: String,
}

impl Cluster {
    /// Mirror hostname: explicit, else `registry.hostname`, else `<id>-registry.local` when
    /// there are no domains; empty when none resolves.
    pub fn registry_mirror_hostname(&self) -> String {
        if let Some(r) = &self.components.registry
            && !r.mirror.hostname.is_empty()
        {
            return r.mirror.hostname.clone();
        }
        if !self.registry.hostname.is_empty() {
            return self.registry.hostname.clone();
        }
        if self.domains.is_empty() {
            return format!("{}-registry.local", self.id);
        }
        String::new()
    }
}
