//! What runs on the cluster from day one: `cluster.secrets`, `cluster.seed` and
//! `cluster.components`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    OneOf, Require, SECRETS_OBJECT_TYPES, SECRETS_PROVIDER_KINDS, SEED_NAMES, is_false, strict_map,
};

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
