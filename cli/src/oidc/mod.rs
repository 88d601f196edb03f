//! `podplane oidc create` / `oidc delete`: the Easy OIDC server config `podplane.oidc.jsonc`
//! and its OpenTofu/Terraform files.
//!
//! * [`load`] reads, parses (JSONC, strict like the cluster config: unknown or duplicate keys
//!   and wrong types are errors naming the field path) and fully validates a config; a missing
//!   file is an error telling the user to write it (there is no wizard).
//! * [`generate`] is pure: config in, files out (`podplane.oidc.main.tf`,
//!   `podplane.oidc.variables.tf`, `podplane.oidc.outputs.tf`, `podplane.oidc.schema.json`),
//!   formatted as `terraform fmt` would and with user strings escaped by
//!   [`crate::hcl::quote`].
//! * [`generate_files`], [`apply`] and [`destroy`] are the command steps.

mod generate;
mod load;
mod run;
mod schema;
mod types;
mod url;
mod validate;

pub use generate::{MAIN_FILE, OUTPUTS_FILE, VARIABLES_FILE, generate, render};
pub use load::{OidcConfigError, load, parse_str};
pub use run::{
    APPLY_QUESTION, CreateError, DESTROY_DONE_MESSAGE, DESTROY_QUESTION, Generated,
    MANUAL_DNS_NOTICE, NO_APPLY_DELETE_MESSAGE, RunError, apply, destroy, generate_files,
};
pub use schema::{SCHEMA_ID, schema_copy, schema_json};
pub use types::*;
pub use url::UrlPartsError;
pub use validate::{ValidOidc, ValidationError, validate};

/// Default file name of the OIDC config.
pub const DEFAULT_CONFIG_FILE: &str = "podplane.oidc.jsonc";
/// File name of the schema written next to the config.
pub const SCHEMA_FILE: &str = "podplane.oidc.schema.json";
