//! JSON schema of `podplane.oidc.jsonc`, generated from the Rust types.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;

use super::types::OidcConfig;

/// `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://podplane.dev/schemas/podplane.oidc.schema.json";

/// The schema (draft 2020-12) as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with_transform(RecursiveTransform(|s: &mut Schema| {
            s.remove("default");
        }))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<OidcConfig>();
    schema.insert("$id".into(), SCHEMA_ID.into());
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}

/// The schema with a `$comment` right after `$id` saying it is a generated support file
/// (the content of `podplane.oidc.schema.json`).
pub fn schema_copy() -> String {
    let schema = schema_json();
    let mut out = String::with_capacity(schema.len() + 160);
    for line in schema.split_inclusive('\n') {
        out.push_str(line);
        if line.trim_start().starts_with("\"$id\"") {
            out.push_str("  \"$comment\": \"Generated support file written by the podplane CLI next to podplane.oidc.jsonc for editor validation; its source is the CLI's OIDC config types.\",\n");
        }
    }
    out
}
