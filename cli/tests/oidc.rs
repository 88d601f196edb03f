//! `podplane oidc create` generation: upstream's golden OIDC config against upstream's expected
//! files (with the header, through `terraform fmt`), `terraform fmt -check` over written files,
//! every rejected bad input with its exact message, determinism, the
//! `domain.provider` variants, the schema copy, and the apply/destroy steps against a fake
//! `tofu`.
//!
//! `terraform` is optional locally (a SKIP line is printed) and required when
//! `PODPLANE_REQUIRE_TOOLS=1`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use podplane::oidc::{self, OidcConfig};
use podplane::tfgen::HEADER;
use podplane::tfrun::Runner;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc")
}

fn golden_path() -> PathBuf {
    fixtures().join("podplane.oidc.jsonc")
}

fn golden() -> OidcConfig {
    oidc::load(&golden_path()).unwrap()
}

/// The golden config as plain JSON, for mutating.
fn golden_json() -> Value {
    let text = std::fs::read_to_string(golden_path()).unwrap();
    serde_json::from_str(&podplane::config::jsonc_to_json(&text).unwrap()).unwrap()
}

fn generate(cfg: &OidcConfig) -> BTreeMap<String, String> {
    oidc::generate(cfg)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, String::from_utf8(f.content).unwrap()))
        .collect()
}

fn from_json(v: &Value) -> OidcConfig {
    oidc::parse_str(&v.to_string()).unwrap()
}

/// The terraform executable, when the machine has one (see podplane_testkit::tools).
fn terraform() -> Option<PathBuf> {
    podplane_testkit::tools::available("terraform", &["version"])
        .then(|| PathBuf::from("terraform"))
}

/// `terraform fmt -` of `text`.
fn terraform_fmt(exe: &Path, text: &str) -> String {
    let mut child = Command::new(exe)
        .args(["fmt", "-no-color", "-"])
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "terraform fmt -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn header_text() -> String {
    let mut s: String = HEADER.iter().map(|h| format!("# {h}\n")).collect();
    s.push('\n');
    s
}

/// Collapses the alignment padding (runs of spaces after the indentation) to one space.
fn unalign(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            let body = l.trim_start_matches(' ');
            let indent = &l[..l.len() - body.len()];
            let mut out = String::from(indent);
            let mut prev_space = false;
            for c in body.chars() {
                if c == ' ' && prev_space {
                    continue;
                }
                prev_space = c == ' ';
                out.push(c);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const TF_FILES: [&str; 3] = [oidc::MAIN_FILE, oidc::VARIABLES_FILE, oidc::OUTPUTS_FILE];

fn upstream_raw(name: &str) -> String {
    let expected = name.replace(".tf", ".expected.tf");
    std::fs::read_to_string(fixtures().join("upstream").join(expected)).unwrap()
}

#[test]
fn golden_files_have_the_expected_names() {
    let files = oidc::generate(&golden()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "podplane.oidc.main.tf",
            "podplane.oidc.variables.tf",
            "podplane.oidc.outputs.tf",
            "podplane.oidc.schema.json",
        ]
    );
}

/// Without terraform: our output, padding removed, is header + upstream's raw rendering.
#[test]
fn golden_matches_upstream_raw_rendering() {
    let files = generate(&golden());
    for name in TF_FILES {
        let want = format!("{}{}", header_text(), upstream_raw(name));
        assert_eq!(unalign(&files[name]), want, "{name}");
    }
}

/// With terraform: our output is byte-equal to `terraform fmt` of header + upstream's raw file.
#[test]
fn golden_equals_terraform_fmt_of_upstream_expected() {
    let Some(tf) = terraform() else { return };
    let files = generate(&golden());
    for name in TF_FILES {
        let want = terraform_fmt(&tf, &format!("{}{}", header_text(), upstream_raw(name)));
        assert_eq!(
            files[name], want,
            "{name} differs from terraform fmt of upstream"
        );
    }
    // Upstream's own spot checks (after formatting).
    let main = &files[oidc::MAIN_FILE];
    for want in [
        "oidc_addr                   = \"auth.example.com\"",
        "connector_type              = \"google\"",
        "route53_zone_id = data.aws_route53_zone.oidc.zone_id",
    ] {
        assert!(main.contains(want), "missing {want:?}:\n{main}");
    }
}

/// A config exercising every optional field and the escaping of user strings.
fn rich() -> OidcConfig {
    let mut v = golden_json();
    v["oidc"]["provider"]["profile"] = json!("prod-${admin}");
    v["oidc"]["hostname"] = json!("HTTPS://user@auth.example.com:8443/ignored?x#y");
    v["oidc"]["domain"]["provider"]["hosted_zone_id"] = json!("Z0123");
    v["oidc"]["default_redirect_uris"] = json!(["http://localhost:8000", "http://127.0.0.1:18000"]);
    v["oidc"]["clients"] = json!({
        "zz-last": { "redirect_uris": ["https://z.example.com/cb"] },
        "kubelogin": { "groups_override": "prod" },
        "argo \"cd\"": { "groups_override": "prod", "redirect_uris": ["https://argo/%{x}"] },
        "plain": {}
    });
    v["oidc"]["groups_overrides"] = json!({
        "prod": { "zed@example.com": ["viewers"], "ops@example.com": ["admins", "ops"] },
        "empty": {}
    });
    from_json(&v)
}

fn variants() -> Vec<(&'static str, OidcConfig)> {
    let mut v = vec![("golden", golden()), ("rich", rich())];
    let mut no_dns = golden_json();
    no_dns["oidc"]["domain"] = json!({ "zone": "example.com" });
    v.push(("no-dns-provider", from_json(&no_dns)));
    let mut zone_id = golden_json();
    zone_id["oidc"]["domain"]["provider"]["hosted_zone_id"] = json!("Z0123456789");
    v.push(("hosted-zone-id", from_json(&zone_id)));
    let mut dotted = golden_json();
    dotted["oidc"]["domain"]["zone"] = json!("example.com.");
    v.push(("dotted-zone", from_json(&dotted)));
    let mut minimal = golden_json();
    let o = minimal["oidc"].as_object_mut().unwrap();
    for k in ["domain", "default_redirect_uris", "clients"] {
        o.remove(k);
    }
    o["hostname"] = json!("auth.example.com");
    v.push(("minimal", from_json(&minimal)));
    v
}

#[test]
fn domain_provider_variants() {
    // Absent provider: no zone lookup and no route53_zone_id.
    let all = variants();
    let get = |n: &str| generate(&all.iter().find(|(name, _)| *name == n).unwrap().1);
    let main = get("no-dns-provider")[oidc::MAIN_FILE].clone();
    assert!(!main.contains("aws_route53_zone"), "{main}");
    assert!(!main.contains("route53_zone_id"), "{main}");
    // Zone name without a trailing dot gets one.
    let main = get("golden")[oidc::MAIN_FILE].clone();
    assert!(
        main.contains("data \"aws_route53_zone\" \"oidc\" {\n  name = \"example.com.\"\n}\n"),
        "{main}"
    );
    // One with a dot keeps exactly one.
    let main = get("dotted-zone")[oidc::MAIN_FILE].clone();
    assert!(main.contains("  name = \"example.com.\"\n"), "{main}");
    assert!(!main.contains("example.com..\""), "{main}");
    // A hosted zone id pins the lookup instead of the name.
    let main = get("hosted-zone-id")[oidc::MAIN_FILE].clone();
    assert!(
        main.contains("data \"aws_route53_zone\" \"oidc\" {\n  zone_id = \"Z0123456789\"\n}\n"),
        "{main}"
    );
    assert!(!main.contains("  name ="), "{main}");
    assert!(
        main.contains("= data.aws_route53_zone.oidc.zone_id\n"),
        "{main}"
    );
    // Provider aws without a zone is not managed either.
    let mut no_zone = golden_json();
    no_zone["oidc"]["domain"] = json!({ "provider": { "kind": "aws" } });
    let cfg = from_json(&no_zone);
    assert!(!cfg.dns_managed());
    assert!(!generate(&cfg)[oidc::MAIN_FILE].contains("route53"));
    assert!(golden().dns_managed());
}

#[test]
fn rich_config_renders_sorted_and_escaped() {
    let cfg = rich();
    let main = generate(&cfg)[oidc::MAIN_FILE].clone();
    let want_tail = r#"provider "aws" {
  region  = "us-east-1"
  profile = "prod-$${admin}"
}

data "aws_route53_zone" "oidc" {
  zone_id = "Z0123"
}

module "oidc" {
  source                      = "easy-oidc/easy-oidc/aws"
  oidc_addr                   = "auth.example.com:8443"
  connector_type              = "google"
  connector_client_secret_arn = "arn:connector"
  signing_key_secret_arn      = "arn:signing"
  default_redirect_uris       = ["http://localhost:8000", "http://127.0.0.1:18000"]
  clients = {
    "argo \"cd\"" = {
      groups_override = "prod"
      redirect_uris   = ["https://argo/%%{x}"]
    }
    "kubelogin" = {
      groups_override = "prod"
    }
    "plain" = {}
    "zz-last" = {
      redirect_uris = ["https://z.example.com/cb"]
    }
  }
  groups_overrides = {
    "empty" = {}
    "prod" = {
      "ops@example.com" = ["admins", "ops"]
      "zed@example.com" = ["viewers"]
    }
  }
  route53_zone_id = data.aws_route53_zone.oidc.zone_id
}
"#;
    assert!(main.ends_with(want_tail), "{main}");
    assert_eq!(cfg.issuer_url(), "https://auth.example.com:8443");
    assert_eq!(cfg.host(), "auth.example.com:8443");
    let mut bare = golden();
    bare.oidc.hostname = "auth.example.com".into();
    assert_eq!(bare.issuer_url(), "https://auth.example.com");
    let mut http = golden();
    http.oidc.hostname = "http://auth.local".into();
    assert_eq!(http.issuer_url(), "http://auth.local");
    // Variables: header only; outputs: the module's address as the issuer.
    let files = generate(&cfg);
    assert_eq!(files[oidc::VARIABLES_FILE], header_text());
    assert_eq!(
        files[oidc::OUTPUTS_FILE],
        format!(
            "{}output \"oidc_issuer_url\" {{\n  value = \"https://${{module.oidc.oidc_addr}}\"\n}}\n",
            header_text()
        )
    );
}

#[test]
fn generation_is_deterministic() {
    for (name, cfg) in variants() {
        assert_eq!(
            oidc::generate(&cfg).unwrap(),
            oidc::generate(&cfg).unwrap(),
            "{name}"
        );
    }
    // Key order in the file does not matter.
    let a = r#"{"oidc": {"provider": {"kind": "aws", "region": "r"}, "hostname": "h",
        "connector": {"kind": "github", "client_secret_arn": "c"}, "signing_key_secret_arn": "s",
        "clients": {"b": {}, "a": {"groups_override": "g"}},
        "groups_overrides": {"g": {"y@x": ["2"], "x@x": ["1"]}, "f": {}}}}"#;
    let b = r#"{"oidc": {"groups_overrides": {"f": {}, "g": {"x@x": ["1"], "y@x": ["2"]}},
        "clients": {"a": {"groups_override": "g"}, "b": {}}, "signing_key_secret_arn": "s",
        "connector": {"client_secret_arn": "c", "kind": "github"}, "hostname": "h",
        "provider": {"region": "r", "kind": "aws"}}}"#;
    let ga = oidc::generate(&oidc::parse_str(a).unwrap()).unwrap();
    let gb = oidc::generate(&oidc::parse_str(b).unwrap()).unwrap();
    assert_eq!(ga, gb);
}

#[test]
fn terraform_fmt_accepts_every_written_variant_unchanged() {
    if terraform().is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for (name, cfg) in variants() {
        let dir = t.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let files = oidc::generate(&cfg).unwrap();
        podplane::tfgen::write(&dir, &files, "podplane oidc create").unwrap();
        podplane_testkit::tools::terraform_fmt_check(&dir)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn generate_files_writes_next_to_the_config_and_leaves_others_alone() {
    let t = tempfile::tempdir().unwrap();
    let cfg_path = t.path().join("podplane.oidc.jsonc");
    std::fs::copy(golden_path(), &cfg_path).unwrap();
    std::fs::write(t.path().join("custom.tf"), "# mine\n").unwrap();
    let g = oidc::generate_files(&cfg_path).unwrap();
    assert_eq!(g.dir, t.path());
    assert_eq!(g.config_path, cfg_path);
    assert_eq!(g.issuer_url(), "https://auth.example.com");
    assert_eq!(g.files.len(), 4);
    let want = generate(&golden());
    for (name, content) in &want {
        let path = t.path().join(name);
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), content, "{name}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(t.path().join("custom.tf")).unwrap(),
        "# mine\n"
    );
    // Only our files plus the two that were there.
    let mut names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "custom.tf",
            "podplane.oidc.jsonc",
            "podplane.oidc.main.tf",
            "podplane.oidc.outputs.tf",
            "podplane.oidc.schema.json",
            "podplane.oidc.variables.tf",
        ]
    );
}

#[test]
fn a_missing_config_says_to_write_it() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("podplane.oidc.jsonc");
    let want = format!(
        "OIDC config {} does not exist; write it first: a JSONC file {{\"oidc\": {{…}}}} setting at least oidc.provider.kind and .region, oidc.hostname, oidc.connector.kind and .client_secret_arn, and oidc.signing_key_secret_arn",
        path.display()
    );
    assert_eq!(oidc::load(&path).unwrap_err().to_string(), want);
    assert_eq!(oidc::generate_files(&path).unwrap_err().to_string(), want);
    // Nothing was written.
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

/// Writes `v` as the config file and returns the load error message with the path prefix
/// replaced by `<path>`.
fn load_error(v: &Value) -> String {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("podplane.oidc.jsonc");
    std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    let err = oidc::load(&path).unwrap_err().to_string();
    err.replace(&path.display().to_string(), "<path>")
}

#[test]
fn every_bad_oidc_input_is_rejected_with_its_message() {
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing provider kind",
            |v| {
                v["oidc"]["provider"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kind");
            },
            "oidc.provider.kind is required",
        ),
        (
            "missing provider",
            |v| {
                v["oidc"].as_object_mut().unwrap().remove("provider");
            },
            "oidc.provider.kind is required",
        ),
        (
            "empty provider kind",
            |v| v["oidc"]["provider"]["kind"] = json!(""),
            "oidc.provider.kind is required",
        ),
        (
            "google provider",
            |v| v["oidc"]["provider"]["kind"] = json!("google"),
            "oidc.provider.kind google is not supported until the Easy OIDC Google module exists",
        ),
        (
            "gcp provider",
            |v| v["oidc"]["provider"]["kind"] = json!("gcp"),
            "oidc.provider.kind google is not supported until the Easy OIDC Google module exists",
        ),
        (
            "unsupported provider kind",
            |v| v["oidc"]["provider"]["kind"] = json!("azure"),
            "oidc.provider.kind \"azure\" is not supported",
        ),
        (
            "aws without region",
            |v| {
                v["oidc"]["provider"]
                    .as_object_mut()
                    .unwrap()
                    .remove("region");
            },
            "oidc.provider.region is required for aws",
        ),
        (
            "missing hostname",
            |v| {
                v["oidc"].as_object_mut().unwrap().remove("hostname");
            },
            "oidc.hostname is required",
        ),
        (
            "empty hostname",
            |v| v["oidc"]["hostname"] = json!(""),
            "oidc.hostname is required",
        ),
        (
            "hostname URL without host",
            |v| v["oidc"]["hostname"] = json!("https://"),
            "oidc.hostname must be a hostname, not a URL",
        ),
        (
            "hostname URL with only a path",
            |v| v["oidc"]["hostname"] = json!("https:///auth"),
            "oidc.hostname must be a hostname, not a URL",
        ),
        (
            "hostname URL without scheme",
            |v| v["oidc"]["hostname"] = json!("://auth.example.com"),
            "oidc.hostname must be a hostname, not a URL",
        ),
        (
            "hostname URL with a bad port",
            |v| v["oidc"]["hostname"] = json!("https://auth.example.com:https"),
            "oidc.hostname must be a hostname, not a URL",
        ),
        (
            "unsupported DNS provider kind",
            |v| v["oidc"]["domain"]["provider"]["kind"] = json!("cloudflare"),
            "oidc.domain.provider.kind \"cloudflare\" is not supported for managed DNS yet",
        ),
        (
            "missing connector kind",
            |v| {
                v["oidc"]["connector"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kind");
            },
            "oidc.connector.kind is required",
        ),
        (
            "unknown connector kind",
            |v| v["oidc"]["connector"]["kind"] = json!("okta"),
            "oidc.connector.kind \"okta\" is not supported",
        ),
        (
            "missing client secret ARN",
            |v| {
                v["oidc"]["connector"]
                    .as_object_mut()
                    .unwrap()
                    .remove("client_secret_arn");
            },
            "oidc.connector.client_secret_arn is required",
        ),
        (
            "missing signing key ARN",
            |v| {
                v["oidc"]
                    .as_object_mut()
                    .unwrap()
                    .remove("signing_key_secret_arn");
            },
            "oidc.signing_key_secret_arn is required",
        ),
        (
            "empty client name",
            |v| v["oidc"]["clients"] = json!({ "": {}, "kubelogin": {} }),
            "oidc.clients contains an empty client name",
        ),
        (
            "client referencing an unknown groups override",
            |v| {
                v["oidc"]["clients"]["kubelogin"] = json!({ "groups_override": "prod" });
                v["oidc"]["groups_overrides"] = json!({ "dev": { "a@example.com": ["x"] } });
            },
            "oidc.clients.kubelogin.groups_override references unknown groups override \"prod\"",
        ),
    ];
    for (name, edit, msg) in cases {
        let mut v = golden_json();
        edit(&mut v);
        assert_eq!(
            load_error(&v),
            format!("OIDC config <path>: {msg}"),
            "{name}"
        );
        // generate refuses the same config with the same message.
        let cfg = from_json(&v);
        assert_eq!(oidc::generate(&cfg).unwrap_err().to_string(), msg, "{name}");
    }
}

#[test]
fn validation_runs_in_spec_order() {
    // Everything wrong at once: the provider is reported first, then the hostname, ….
    let mut v = json!({ "oidc": { "provider": { "kind": "aws" } } });
    assert_eq!(
        load_error(&v),
        "OIDC config <path>: oidc.provider.region is required for aws"
    );
    v["oidc"]["provider"]["region"] = json!("us-east-1");
    assert_eq!(
        load_error(&v),
        "OIDC config <path>: oidc.hostname is required"
    );
    v["oidc"]["hostname"] = json!("auth.example.com");
    v["oidc"]["domain"] = json!({ "provider": { "kind": "gcp" } });
    assert_eq!(
        load_error(&v),
        "OIDC config <path>: oidc.domain.provider.kind \"gcp\" is not supported for managed DNS yet"
    );
}

#[test]
fn unparseable_or_unknown_input_is_a_parse_error_naming_the_field() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("podplane.oidc.jsonc");
    let prefix = format!("parse OIDC config {}: ", path.display());
    let cases = [
        ("{ \"oidc\": ", ""),
        (
            r#"{"oidc": {"connector": {"kind": "google", "secret": "x"}}}"#,
            "at oidc.connector.secret: unknown field `secret`",
        ),
        (r#"{"oidcs": {}}"#, "unknown field `oidcs`"),
        (
            r#"{"oidc": {"clients": {"a": {}, "a": {}}}}"#,
            "at oidc.clients: duplicate key \"a\"",
        ),
        (
            r#"{"oidc": {"groups_overrides": {"g": {"x@y": [], "x@y": []}}}}"#,
            "at oidc.groups_overrides.g: duplicate key \"x@y\"",
        ),
        (
            r#"{"oidc": {"default_redirect_uris": "http://localhost"}}"#,
            "at oidc.default_redirect_uris: invalid type",
        ),
        (
            r#"{"oidc": {"clients": {"a": {"redirect_uris": [1]}}}}"#,
            "at oidc.clients.a.redirect_uris[0]: invalid type",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, text).unwrap();
        let err = oidc::load(&path).unwrap_err().to_string();
        assert!(err.starts_with(&prefix), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
    }
    // JSONC comments and trailing commas are fine.
    std::fs::write(
        &path,
        "// c\n{ /* x */ \"oidc\": { \"provider\": { \"kind\": \"aws\", \"region\": \"r\", }, \"hostname\": \"h\", \"connector\": { \"kind\": \"github\", \"client_secret_arn\": \"c\" }, \"signing_key_secret_arn\": \"s\", }, }\n",
    )
    .unwrap();
    oidc::load(&path).unwrap();
}

#[test]
fn schema_copy_is_marked_and_describes_the_file() {
    let files = generate(&golden());
    let schema = &files[oidc::SCHEMA_FILE];
    assert_eq!(schema, &oidc::schema_copy());
    let lines: Vec<&str> = schema.lines().collect();
    let id = lines.iter().position(|l| l.contains("\"$id\"")).unwrap();
    assert!(lines[id + 1].trim_start().starts_with("\"$comment\""));
    let v: Value = serde_json::from_str(schema).unwrap();
    assert_eq!(v["$id"], oidc::SCHEMA_ID);
    assert_eq!(v["title"], "Podplane OIDC config");
    assert!(
        v["$comment"]
            .as_str()
            .unwrap()
            .contains("Generated support file")
    );
    assert_eq!(v["required"], json!(["oidc"]));
    assert_eq!(v["additionalProperties"], false);
    // The source schema has no $comment.
    let src: Value = serde_json::from_str(&oidc::schema_json()).unwrap();
    assert!(src.get("$comment").is_none());
    let text = schema.as_str();
    for want in [
        "\"aws\",\n",
        "\"gcp\"",
        "\"github\"",
        "\"signing_key_secret_arn\"",
    ] {
        assert!(text.contains(want), "{want}");
    }
    // The golden config's "$schema" points at this file.
    assert_eq!(golden().schema, oidc::DEFAULT_SCHEMA_REF);
    assert_eq!(oidc::DEFAULT_SCHEMA_REF, format!("./{}", oidc::SCHEMA_FILE));
}

/// Writes an executable fake `tofu` logging its arguments to `dir/tofu.log`.
fn fake_tofu(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let log = dir.join("tofu.log");
    let exe = dir.join("tofu");
    std::fs::write(
        &exe,
        format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$(pwd)\" \"$*\" >> '{}'\n{extra}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (exe, log)
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn apply_inits_confirms_and_applies() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (exe, log) = fake_tofu(bin.path(), "");
    let runner = Runner::new(&exe, work.path());
    let d = work.path().display();

    // Managed DNS, -y: no prompt, no DNS notice.
    let mut out = Vec::new();
    oidc::apply(&runner, &golden(), true, &mut "".as_bytes(), &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "");
    assert_eq!(
        log_lines(&log),
        [format!("{d}|init"), format!("{d}|apply -auto-approve")]
    );

    // Manual DNS, answered yes.
    std::fs::remove_file(&log).unwrap();
    let mut manual = golden();
    manual.oidc.domain = Default::default();
    let mut out = Vec::new();
    oidc::apply(&runner, &manual, false, &mut "y\n".as_bytes(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{} [y/N]: {}\n",
            oidc::APPLY_QUESTION,
            oidc::MANUAL_DNS_NOTICE
        )
    );
    assert_eq!(log_lines(&log), [format!("{d}|init"), format!("{d}|apply")]);

    // Refused: init ran, apply did not.
    std::fs::remove_file(&log).unwrap();
    let err = oidc::apply(
        &runner,
        &golden(),
        false,
        &mut "n\n".as_bytes(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "apply cancelled");
    assert_eq!(log_lines(&log), [format!("{d}|init")]);

    // A failing apply is reported, after the DNS notice.
    let (bad, _) = fake_tofu(bin.path(), "if [ \"$1\" = apply ]; then exit 4; fi");
    let runner = Runner::new(&bad, work.path());
    let mut out = Vec::new();
    let err = oidc::apply(&runner, &manual, true, &mut "".as_bytes(), &mut out).unwrap_err();
    assert!(err.to_string().contains("[apply -auto-approve]"), "{err}");
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains(oidc::MANUAL_DNS_NOTICE)
    );
}

#[test]
fn destroy_confirms_then_destroys() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (exe, log) = fake_tofu(bin.path(), "");
    let runner = Runner::new(&exe, work.path());
    let d = work.path().display();

    let err = oidc::destroy(&runner, false, &mut "no\n".as_bytes(), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "destroy cancelled");
    assert!(log_lines(&log).is_empty());

    let mut out = Vec::new();
    oidc::destroy(&runner, false, &mut "yes\n".as_bytes(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "Destroy OpenTofu/Terraform-managed resources? [y/N]: {}\n",
            oidc::DESTROY_DONE_MESSAGE
        )
    );
    assert_eq!(
        log_lines(&log),
        [format!("{d}|init"), format!("{d}|destroy")]
    );

    let mut out = Vec::new();
    oidc::destroy(&runner, true, &mut "".as_bytes(), &mut out).unwrap();
    assert_eq!(
        log_lines(&log).last().unwrap(),
        &format!("{d}|destroy -auto-approve")
    );
    assert_eq!(
        oidc::DESTROY_DONE_MESSAGE,
        "OIDC destroy completed. Config and generated .tf files were left in place."
    );
    assert_eq!(
        oidc::NO_APPLY_DELETE_MESSAGE,
        "--no-apply set; OIDC config validated and no destroy was run."
    );
}

/// Validation hands back the issuer and served host split from `oidc.hostname` once, and a
/// rejected URL-looking hostname keeps why as its cause.
#[test]
fn validated_config_carries_issuer_and_host() {
    let mut cfg = golden();
    cfg.oidc.hostname = "HTTPS://u:p@auth.example.com:8443/x".into();
    let valid = oidc::validate(&cfg).unwrap();
    assert_eq!(valid.issuer_url(), "https://auth.example.com:8443");
    assert_eq!(valid.host(), "auth.example.com:8443");
    assert_eq!(valid.config(), &cfg);
    cfg.oidc.hostname = "auth.example.com".into();
    let valid = oidc::validate(&cfg).unwrap();
    assert_eq!(valid.issuer_url(), "https://auth.example.com");
    assert_eq!(valid.host(), "auth.example.com");
    cfg.oidc.hostname = "https://auth.example.com:80a".into();
    let err = oidc::validate(&cfg).unwrap_err();
    assert_eq!(
        err,
        oidc::ValidationError::HostnameUrl(oidc::UrlPartsError::Port)
    );
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("has an invalid port"));
}
