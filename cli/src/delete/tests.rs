use super::*;
use serde_json::json;

#[test]
fn scale_to_zero_sets_every_group_size() {
    let mut doc = json!({
        "version": 3,
        "groups": {
            "default": {"workers": {"size": 3, "type": "m7i.large"}, "gpu": {"size": 0}},
            "team-b": {"batch": {"size": 2.5, "labels": {"size": 9}}, "empty": {}},
            "odd": "not an object"
        },
        "size": 7
    });
    assert!(scale_to_zero(&mut doc));
    assert_eq!(
        doc,
        json!({
            "version": 3,
            "groups": {
                "default": {"workers": {"size": 0, "type": "m7i.large"}, "gpu": {"size": 0}},
                "team-b": {"batch": {"size": 0, "labels": {"size": 9}}, "empty": {"size": 0}},
                "odd": "not an object"
            },
            "size": 7
        })
    );
    assert!(!scale_to_zero(&mut doc));
    assert!(!scale_to_zero(
        &mut json!({"groups": {"t": {"g": {"size": 0.0}}}})
    ));
    assert!(!scale_to_zero(&mut json!({"other": 1})));
    assert!(!scale_to_zero(&mut json!([1, 2])));
}

#[test]
fn scale_text_keeps_order_and_formatting() {
    let text = "{\n  \"zeta\": {\"size\": 5},\n  \"groups\": {\n    \"t\": {\n      \"w\": {\"type\": \"x\", \"size\": 12, \"arr\": [1, {\"size\": 3}]},\n      \"e\": {}, \"n\": {\"a\": \"}\\\"{\"}\n    }\n  }\n}\n";
    let got = scale_text(text).unwrap().unwrap();
    assert_eq!(
        got,
        "{\n  \"zeta\": {\"size\": 5},\n  \"groups\": {\n    \"t\": {\n      \"w\": {\"type\": \"x\", \"size\": 0, \"arr\": [1, {\"size\": 3}]},\n      \"e\": {\"size\": 0}, \"n\": {\"size\": 0, \"a\": \"}\\\"{\"}\n    }\n  }\n}\n"
    );
    assert_eq!(scale_text(&got).unwrap(), None);
    assert!(scale_text("[1]").is_err());
    assert!(scale_text("{").is_err());
}

#[test]
fn outputs_are_required() {
    let err = parse_outputs(&json!({})).unwrap_err().to_string();
    assert_eq!(
        err,
        "missing nstance_bucket output; rerun podplane cluster create --no-apply to regenerate managed .tf files and apply them"
    );
    let err = parse_outputs(&json!({"nstance_bucket": {"value": "b"}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("missing nstance_shards output; rerun"),
        "{err}"
    );
    let (bucket, shards) = parse_outputs(&json!({
        "nstance_bucket": {"value": "b"},
        "nstance_shards": {"value": {
            "z-b": {"config_key": "k2", "server_ips": []},
            "z-a": {"config_key": "k1", "server_ips": ["10.0.0.1"]}
        }}
    }))
    .unwrap();
    assert_eq!(bucket, "b");
    assert_eq!(
        shards.iter().map(|s| s.zone.as_str()).collect::<Vec<_>>(),
        ["z-a", "z-b"]
    );
    let err = parse_outputs(&json!({"nstance_bucket": {"value": 3}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("nstance_bucket output is malformed: expected a non-empty string; rerun"),
        "{err}"
    );
    // The reason is kept as the error's typed source.
    let err = parse_outputs(&json!({
        "nstance_bucket": {"value": "b"},
        "nstance_shards": {"value": {"z-a": {"server_ips": []}}}
    }))
    .unwrap_err();
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("shard \"z-a\" has no config_key string")
    );
    assert!(matches!(
        err,
        DeleteError::BadOutput {
            name: "nstance_shards",
            reason: OutputProblem::NoConfigKey { .. }
        }
    ));
}
