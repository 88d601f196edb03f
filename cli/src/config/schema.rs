//! JSON schema of `podplane.cluster.jsonc`, generated from the Rust types.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;

use super::types::ClusterConfig;

/// `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://podplane.dev/schemas/podplane.cluster.schema.json";

/// The schema (draft 2020-12) as pretty-printed JSON with a trailing newline. Objects carry
/// `additionalProperties: false`, enumerated strings an `enum`, and `required` lists match
/// the documented required fields.
pub fn schema_json() -> String {
    // Serde defaults are resolution details (empty strings, empty objects), not advice for
    // editors, so the generated `default` keywords are dropped.
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with_transform(RecursiveTransform(|s: &mut Schema| {
            s.remove("default");
        }))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<ClusterConfig>();
    schema.insert("$id".into(), SCHEMA_ID.into());
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}
