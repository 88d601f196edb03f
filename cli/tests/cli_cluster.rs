//! `podplane cluster validate|schema` and `podplane version`, run as a subprocess.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn podplane(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws.cluster.jsonc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_accepts_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture();
    let out = podplane(
        &["cluster", "validate", "-f", path.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{} is valid\n", path.display()));
}

#[test]
fn validate_defaults_to_the_file_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(), dir.path().join("podplane.cluster.jsonc")).unwrap();
    let out = podplane(&["cluster", "validate"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "podplane.cluster.jsonc is valid\n");
}

#[test]
fn validate_reports_the_first_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(fixture()).unwrap();
    let broken = original.replace("\"size\": 2,", "\"size\": -2,");
    assert_ne!(broken, original);
    std::fs::write(dir.path().join("c.jsonc"), broken).unwrap();
    let out = podplane(&["cluster", "validate", "--file", "c.jsonc"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "Error: cluster config c.jsonc: cluster.pools.workers.size must be >= 0\n"
    );
}

#[test]
fn validate_reports_missing_file_and_parse_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = podplane(&["cluster", "validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: read cluster config podplane.cluster.jsonc: No such file or directory (os error 2)\n"
    );
    std::fs::write(
        dir.path().join("podplane.cluster.jsonc"),
        "{\"cluster\": {\"id\": \"a\", \"idd\": 1}}",
    )
    .unwrap();
    let out = podplane(&["cluster", "validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "Error: parse cluster config podplane.cluster.jsonc: at cluster.idd: unknown field `idd`"
        ),
        "{err}"
    );
}

#[test]
fn validate_reports_light_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("podplane.cluster.jsonc"),
        "{\"cluster\": {\"id\": \"local\"}}",
    )
    .unwrap();
    let out = podplane(&["cluster", "validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: cluster config podplane.cluster.jsonc: invalid cluster.id: \"local\" is reserved\n"
    );
}

/// Minimal structural check of `value` against `schema`: `$ref`, `anyOf` (null), objects
/// (required, additionalProperties false / schema), arrays, enums and basic types.
fn conforms(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").unwrap();
        return conforms(root, &root["$defs"][name], value, at);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any
            .iter()
            .find(|s| conforms(root, s, value, at).is_ok())
            .map(|_| ())
            .ok_or_else(|| format!("{at}: matches no anyOf branch"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} not in enum"));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("null") if !value.is_null() => return Err(format!("{at}: not null")),
        Some("string") if !value.is_string() => return Err(format!("{at}: not a string")),
        Some("boolean") if !value.is_boolean() => return Err(format!("{at}: not a bool")),
        Some("integer") if !value.is_i64() => return Err(format!("{at}: not an integer")),
        Some("array") => {
            let items = value.as_array().ok_or(format!("{at}: not an array"))?;
            for (i, item) in items.iter().enumerate() {
                conforms(root, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        Some("object") => {
            let obj = value.as_object().ok_or(format!("{at}: not an object"))?;
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !obj.contains_key(req.as_str().unwrap()) {
                    return Err(format!("{at}: missing required {req}"));
                }
            }
            for (k, v) in obj {
                let sub = match schema.get("properties").and_then(|p| p.get(k)) {
                    Some(s) => s,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) | None => {
                            return Err(format!("{at}: unexpected key {k}"));
                        }
                        Some(s) => s,
                    },
                };
                conforms(root, sub, v, &format!("{at}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[test]
fn schema_command_prints_the_generated_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = podplane(&["cluster", "schema"], dir.path());
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), podplane::config::schema_json());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["required"], serde_json::json!(["cluster"]));
    assert_eq!(schema["additionalProperties"], false);
    let defs = schema["$defs"].as_object().unwrap();
    assert_eq!(
        defs["Cluster"]["required"],
        serde_json::json!(["id", "oidc", "kubernetes"])
    );
    assert_eq!(
        defs["Pool"]["required"],
        serde_json::json!(["arch", "instance_type", "size"])
    );
    assert_eq!(
        defs["Pool"]["properties"]["arch"]["enum"],
        serde_json::json!(["amd64", "arm64"])
    );
    assert_eq!(
        defs["Subnet"]["properties"]["services"]["items"]["enum"],
        serde_json::json!(["nat", "nlb", "nstance"])
    );
    assert_eq!(
        defs["Seed"]["properties"]["name"]["enum"],
        serde_json::json!(["", "recommended", "minimal", "none"])
    );
    for (name, def) in defs {
        if def["type"] == "object" {
            assert_eq!(def["additionalProperties"], false, "{name}");
        }
    }
    // The fixture, round-tripped through the Rust types, conforms to the schema…
    let cfg = podplane::tfgen::load_and_validate(&fixture()).unwrap();
    let value = serde_json::to_value(cfg.config()).unwrap();
    conforms(&schema, &schema, &value, "$").unwrap();
    // …and the checker does reject what the schema forbids.
    let mut bad = value.clone();
    bad["cluster"]["pools"]["workers"]["arch"] = "x86".into();
    assert!(conforms(&schema, &schema, &bad, "$").is_err());
    let mut bad = value;
    bad["cluster"]["pools"]["workers"]["zone"] = "a".into();
    assert!(conforms(&schema, &schema, &bad, "$").is_err());
}

#[test]
fn version_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = podplane(&["version"], dir.path());
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with(&format!("Version: {} (", env!("CARGO_PKG_VERSION"))));
    let out = podplane(&["--version"], dir.path());
    assert_eq!(
        text(&out.stdout),
        format!("podplane CLI {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = podplane(&["version", "-o", "json"], dir.path());
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["commit"].is_string());
}

#[test]
fn completion_scripts_name_the_commands() {
    for (shell, needle) in [
        ("bash", "_podplane()"),
        ("zsh", "#compdef podplane"),
        ("fish", "complete -c podplane"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(needle),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.contains("userdata") && text.contains("cluster"),
            "{shell}"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown shells are a usage error (exit 1, as every error)"
    );
}

/// Printing and validating commands leave the user's config directory alone (they work with a
/// read-only or missing home); a mistyped command gets clap's suggestion and exit status 1.
#[test]
fn read_only_commands_do_not_write_the_config_dir() {
    let home = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let runs: &[&[&str]] = &[
        &["version"],
        &["--version"],
        &["-V"],
        &["--help"],
        &["completion", "bash"],
        &["cluster", "schema"],
        &["oidc", "schema"],
        &["cluster", "validate", "-f", fixture.to_str().unwrap()],
    ];
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(*args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let left: Vec<_> = std::fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} wrote {left:?} under HOME");
    }
}

#[test]
fn a_mistyped_command_gets_a_suggestion_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = podplane(&["clutser"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("a similar subcommand exists: 'cluster'"),
        "{err}"
    );
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn validate_as_json_says_valid_or_where_the_problem_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture();
    let out = podplane(
        &[
            "cluster",
            "validate",
            "-f",
            path.to_str().unwrap(),
            "-o",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json_out(&out),
        serde_json::json!({"valid": true, "file": path.to_str().unwrap()})
    );

    // A rule on the parsed config: its path, and the line and column of that field.
    let original = std::fs::read_to_string(fixture()).unwrap();
    let broken = original.replace("\"size\": 2,", "\"size\": -2,");
    let (line, column) = broken
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("-2,").map(|c| (i + 1, c + 1)))
        .unwrap();
    std::fs::write(dir.path().join("c.jsonc"), &broken).unwrap();
    let out = podplane(
        &["cluster", "validate", "-f", "c.jsonc", "--output", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_out(&out),
        serde_json::json!({
            "valid": false,
            "file": "c.jsonc",
            "line": line,
            "column": column,
            "path": "cluster.pools.workers.size",
            "message": "cluster.pools.workers.size must be >= 0",
        })
    );
    // The message is said to people too.
    assert_eq!(
        text(&out.stderr),
        "Error: cluster config c.jsonc: cluster.pools.workers.size must be >= 0\n"
    );

    // A parse error inside a list: serde's position and path.
    std::fs::write(
        dir.path().join("c.jsonc"),
        "{\"cluster\": {\"id\": \"a\",\n  \"providers\": [{\"kind\": \"aws\", \"zonez\": 1}]}}",
    )
    .unwrap();
    let out = podplane(
        &["cluster", "validate", "-f", "c.jsonc", "-o", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["path"], "cluster.providers[0].zonez");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        // serde_json points at the closing quote of the unknown key.
        (Some(2), Some(39))
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `zonez`"),
        "{v}"
    );

    // A light-load check: the field, found in the text.
    std::fs::write(
        dir.path().join("c.jsonc"),
        "{\n  \"cluster\": {\n    \"id\": \"local\"\n  }\n}\n",
    )
    .unwrap();
    let out = podplane(
        &["cluster", "validate", "-f", "c.jsonc", "-o", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["path"], "cluster.id");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(3), Some(11))
    );
    assert_eq!(v["message"], "invalid cluster.id: \"local\" is reserved");

    // No file: named, no position.
    let out = podplane(
        &["cluster", "validate", "-f", "none.jsonc", "-o", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_out(&out);
    assert_eq!(v["file"], "none.jsonc");
    assert!(v["line"].is_null() && v["path"].is_null(), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("No such file"),
        "{v}"
    );
}
