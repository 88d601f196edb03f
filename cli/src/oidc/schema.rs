//! JSON schema of `podplane.oidc.jsonc`, generated from the Rust types.

use super::types::OidcConfig;

/// `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://podplane.dev/schemas/podplane.oidc.schema.json";

/// The schema (draft 2020-12) as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    crate::config::schema::schema_for::<OidcConfig>(SCHEMA_ID)
}

/// The schema with a `$comment` right after `$id` saying it is a generated support file
/// (the content of `podplane.oidc.schema.json`).
pub fn schema_copy() -> String {
    crate::config::schema::with_comment(
        &schema_json(),
        "Generated support file written by the podplane CLI next to podplane.oidc.jsonc for editor validation; its source is the CLI's OIDC config types.",
    )
}
