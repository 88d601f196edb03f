//! The cluster config file `podplane.cluster.jsonc`: model, JSONC loader, validation and
//! JSON schema.
//!
//! # Strictness
//!
//! The upstream CLI ignored unknown keys, matched keys case-insensitively and let the last
//! of two duplicate keys win. This implementation is deliberately stricter:
//!
//! * keys are case-sensitive;
//! * an unknown key anywhere is a parse error naming its path, e.g.
//!   `parse cluster config podplane.cluster.jsonc: at cluster.pools.main: unknown field …`;
//! * a key repeated in the same object is a parse error naming the object, e.g.
//!   `… at cluster.pools: duplicate key "main" …` (`… duplicate field …` for fixed fields);
//! * a value of the wrong JSON type is a parse error naming its path.
//!
//! Missing fields are not parse errors: they default, and the light load / full validation
//! report them with their own messages (`missing cluster.id`, `… is required`).
//!
//! Light load ([`load`]) runs the checks every command needs (id, issuer, seed, components);
//! full validation ([`validate`]) runs every rule in a fixed order and reports the first
//! failure, iterating maps in sorted key order so that failure is deterministic.

mod jsonc;
mod load;
mod locate;
pub(crate) mod schema;
mod service_network;
mod types;
mod validate;
mod validated;

pub use jsonc::{JsoncError, to_json as jsonc_to_json};
pub use load::{
    ConfigError, ErrorLocation, LoadProblem, ParseError, light_check, load, parse_jsonc, parse_str,
};
pub use locate::locate;
pub use schema::{SCHEMA_ID, schema_json};
pub use service_network::{
    CidrError, DEFAULT_SERVICE_CIDRS, Family, ServiceCidrError, ServiceNetwork, api_service_ip,
    dns_service_ip, is_canonical, parse_cidr, service_network,
};
pub(crate) use types::strict_map;
pub use types::*;
pub use validate::{
    ComponentsError, DnsNameError, IdError, SeedError, ValidationError, check_cluster_id,
    check_components, check_dns_name, check_seed, is_aws_region, is_bare_email, is_zone_in_region,
    validate,
};
pub use validated::{DEFAULT_API_PORT, ValidProvider, Validated};

/// Default file name of the cluster config.
pub const DEFAULT_CONFIG_FILE: &str = "podplane.cluster.jsonc";
/// File name of the schema written next to the config.
pub const SCHEMA_FILE: &str = "podplane.cluster.schema.json";
