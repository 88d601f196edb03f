//! The Helm release record: what `helm get values --all` reads. Helm keeps each revision of a
//! release in a Secret `sh.helm.release.v1.<release>.v<N>` (labels `owner=helm`,
//! `name=<release>`, `version=<N>`) whose `data.release` is base64 of gzip of the release JSON
//! (and the Secret's data is base64 again on the wire, which the API types undo). The computed
//! values are the chart's default values with the release's own values merged over them.

use std::io::Read;

use base64::Engine as _;
use serde_json::Value;

/// The largest release record accepted, decoded (a gzip bomb stops here).
pub const MAX_RECORD: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("Secret {secret}: no data.release key; it is not a Helm release record")]
    NoData { secret: String },
    #[error("Secret {secret}: data.release is not base64: {source}")]
    Base64 {
        secret: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("Secret {secret}: data.release does not gunzip: {source}")]
    Gzip {
        secret: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Secret {secret}: the release record is over {} MiB decoded; refusing it", MAX_RECORD >> 20)]
    TooBig { secret: String },
    #[error("Secret {secret}: the release record is not Helm's release JSON: {source}")]
    Json {
        secret: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The computed values of the Helm release whose record is `data_release` (the bytes of the
/// Secret's `data.release`, after the API's own base64).
pub fn computed_values(secret: &str, data_release: &[u8]) -> Result<Value, RecordError> {
    let s = || secret.to_string();
    let text: Vec<u8> = data_release
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let packed = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|source| RecordError::Base64 {
            secret: s(),
            source,
        })?;
    // Helm gzips records; very old ones are plain JSON.
    let json = if packed.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .take(MAX_RECORD + 1)
            .read_to_end(&mut out)
            .map_err(|source| RecordError::Gzip {
                secret: s(),
                source,
            })?;
        if out.len() as u64 > MAX_RECORD {
            return Err(RecordError::TooBig { secret: s() });
        }
        out
    } else {
        packed
    };
    let release: Value = serde_json::from_slice(&json).map_err(|source| RecordError::Json {
        secret: s(),
        source,
    })?;
    let mut values = release
        .pointer("/chart/values")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Some(config) = release.get("config").filter(|c| c.is_object()) {
        coalesce(&mut values, config);
    }
    Ok(values)
}

/// Helm's coalescing of user values over chart defaults: maps merge key by key, anything else
/// replaces, and a null removes the default.
fn coalesce(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(slot) = b.get_mut(k) {
                    coalesce(slot, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The revision number of a release record Secret's name (`sh.helm.release.v1.<name>.v<N>`).
pub fn revision(secret_name: &str, release: &str) -> Option<u64> {
    secret_name
        .strip_prefix("sh.helm.release.v1.")?
        .strip_prefix(release)?
        .strip_prefix(".v")?
        .parse()
        .ok()
}

/// A release record's `data.release` as Helm writes it: base64 of gzip of the release JSON.
/// (Used by tests and the stand-in cluster to build records the way Helm does.)
pub fn encode_record(release: &Value) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(release.to_string().as_bytes());
    let packed = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(packed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merges_release_values_over_chart_defaults() {
        let rec = json!({"name": "x", "version": 2,
            "chart": {"values": {"a": {"b": 1, "c": 2, "d": 4}, "e": [1]}},
            "config": {"a": {"b": 10, "d": null}, "e": [2], "f": true}});
        let v = computed_values("s", encode_record(&rec).as_bytes()).unwrap();
        assert_eq!(v, json!({"a": {"b": 10, "c": 2}, "e": [2], "f": true}));
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..(MAX_RECORD >> 20) + 2 {
            gz.write_all(&zeros).unwrap();
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        assert!(b64.len() < 1 << 20, "the bomb is small: {}", b64.len());
        let e = computed_values("sh.helm.release.v1.x.v1", b64.as_bytes()).unwrap_err();
        assert!(matches!(e, RecordError::TooBig { .. }), "{e}");
    }

    #[test]
    fn garbage_names_the_secret() {
        let e = computed_values("sh.helm.release.v1.x.v3", b"%%%").unwrap_err();
        assert!(
            e.to_string().starts_with("Secret sh.helm.release.v1.x.v3"),
            "{e}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"not json");
        assert!(matches!(
            computed_values("s", b64.as_bytes()),
            Err(RecordError::Json { .. })
        ));
    }

    #[test]
    fn revision_from_the_secret_name() {
        assert_eq!(revision("sh.helm.release.v1.pc.v12", "pc"), Some(12));
        assert_eq!(revision("sh.helm.release.v1.pc2.v1", "pc"), None);
        assert_eq!(revision("other", "pc"), None);
    }
}
