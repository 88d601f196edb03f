//! The outputs `delete` reads from `output -json`: the Nstance bucket and the shard configs.

use serde_json::Value;

use super::DeleteError;

/// What is wrong with an output's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputProblem {
    #[error("expected a non-empty string")]
    NotAString,
    #[error("expected a map of zone to {{config_key, server_ips}}")]
    NotAShardMap,
    #[error("shard {zone:?} has no config_key string")]
    NoConfigKey { zone: String },
}

/// One entry of the `nstance_shards` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub zone: String,
    pub config_key: String,
}

/// Reads `nstance_bucket` and `nstance_shards` (sorted by zone) from `output -json`.
pub fn parse_outputs(outputs: &Value) -> Result<(String, Vec<Shard>), DeleteError> {
    let value = |name: &'static str| {
        outputs
            .get(name)
            .and_then(|o| o.get("value"))
            .filter(|v| !v.is_null())
            .ok_or(DeleteError::MissingOutput(name))
    };
    let bucket = value("nstance_bucket")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DeleteError::BadOutput {
            name: "nstance_bucket",
            reason: OutputProblem::NotAString,
        })?
        .to_string();
    let bad = |reason| DeleteError::BadOutput {
        name: "nstance_shards",
        reason,
    };
    let map = value("nstance_shards")?
        .as_object()
        .ok_or_else(|| bad(OutputProblem::NotAShardMap))?;
    let mut shards = Vec::new();
    for (zone, shard) in map {
        let config_key = shard
            .get("config_key")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(OutputProblem::NoConfigKey { zone: zone.clone() }))?;
        shards.push(Shard {
            zone: zone.clone(),
            config_key: config_key.to_string(),
        });
    }
    shards.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok((bucket, shards))
}
