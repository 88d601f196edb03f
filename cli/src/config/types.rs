//! Rust model of `podplane.cluster.jsonc`.
//!
//! Field order is the serialisation order of the file. Every struct rejects unknown keys and
//! every map rejects duplicate keys (see the [module docs](super)). Fields are defaulted when
//! absent so that the loader and the validator can report missing values with their own
//! messages (`missing cluster.id`, `…instance_type is required`); the JSON schema still lists
//! them as `required` (added with [`Require`]). Enumerated fields are plain strings checked by
//! the validator (which gives the specific messages); their allowed values live in the
//! constants below and are put into the schema with [`OneOf`] / [`ItemsOneOf`].
//!
//! This module holds the document and the `cluster` object; its parts are in `access`
//! (OIDC, ACME, domains, registry, Kubernetes API), `provider` (pools and cloud providers)
//! and `platform` (secrets, seed, components).

mod access;
mod platform;
mod provider;

pub use access::*;
pub use platform::*;
pub use provider::*;

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

impl Cluster {
    /// Mirror hostname: explicit, else `registry.hostname`, else `<id>-registry.local` when
    /// there are no domains; empty when none resolves.
    pub fn registry_mirror_hostname(&self) -> String {
        if let Some(r) = &self.components.registry
            && !r.mirror.hostname.is_empty()
        {
            return r.mirror.hostname.clone();
        }
        self.registry_hostname()
    }

    /// Registry hostname: `registry.hostname`, else `<id>-registry.local` when there are no
    /// domains; empty when none resolves.
    pub fn registry_hostname(&self) -> String {
        if !self.registry.hostname.is_empty() {
            return self.registry.hostname.clone();
        }
        if self.domains.is_empty() {
            return format!("{}-registry.local", self.id);
        }
        String::new()
    }

    /// The OIDC client ID: `oidc.client_id`, else the cluster ID.
    pub fn oidc_client_id(&self) -> &str {
        or_default(&self.oidc.client_id, &self.id)
    }

    /// The OIDC username claim: `oidc.username_claim`, else `email`.
    pub fn oidc_username_claim(&self) -> &str {
        or_default(&self.oidc.username_claim, "email")
    }

    /// The OIDC groups claim: `oidc.groups_claim`, else `groups`.
    pub fn oidc_groups_claim(&self) -> &str {
        or_default(&self.oidc.groups_claim, "groups")
    }
}

fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}
