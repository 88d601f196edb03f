//! Where the cluster runs: `cluster.pools` and `cluster.providers` (VPC, subnets, load
//! balancers, buckets, roles).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ItemsOneOf, OneOf, POOL_ARCHES, PROVIDER_KINDS, ROLE_PERMISSIONS, Require, SUBNET_SERVICES,
    V6CIDR_VALUES, is_false, is_zero, strict_map,
};

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
