//! JSON schema of `podplane.cluster.jsonc`, generated from the Rust types.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};

use super::types::ClusterConfig;

/// `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://podplane.dev/schemas/podplane.cluster.schema.json";

/// The schema (draft 2020-12) as pretty-printed JSON with a trailing newline. Objects carry
/// `additionalProperties: false`, enumerated strings an `enum`, and `required` lists match
/// the documented required fields.
pub fn schema_json() -> String {
    schema_for::<ClusterConfig>(SCHEMA_ID)
}

/// The draft 2020-12 schema of a strict config model with `$id` set, pretty-printed with a
/// trailing newline.
pub(crate) fn schema_for<T: JsonSchema>(id: &str) -> String {
    // Serde defaults are resolution details (empty strings, empty objects), not advice for
    // editors, so the generated `default` keywords are dropped.
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .with_transform(RecursiveTransform(|s: &mut Schema| {
            s.remove("default");
        }))
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), id.into());
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}

/// `schema` with a `"$comment": comment` line inserted right after its `$id` line: the
/// support copy written next to a config file.
pub(crate) fn with_comment(schema: &str, comment: &str) -> String {
    let line = format!("  \"$comment\": {},\n", serde_json::Value::from(comment));
    let mut out = String::with_capacity(schema.len() + line.len());
    for l in schema.split_inclusive('\n') {
        out.push_str(l);
        if l.trim_start().starts_with("\"$id\"") {
            out.push_str(&line);
        }
    }
    out
}
