//! Cluster config loading and validation through the library API: parse errors, light load
//! and every full-validation rule, each asserting the exact message.

use std::path::{Path, PathBuf};

use podplane::config::{self, ClusterConfig};
use podplane::tfgen;
use serde_json::{Value, json};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws.cluster.jsonc")
}

/// The fixture as a JSON value, to be edited per case.
fn base() -> Value {
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    serde_json::from_str(&config::jsonc_to_json(&text).unwrap()).unwrap()
}

/// Sets (`Some`) or removes (`None`) the value at a JSON pointer, creating parent objects.
fn edit(v: &mut Value, pointer: &str, new: Option<Value>) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let mut cur = v;
    for part in parent.split('/').skip(1) {
        cur = match cur {
            Value::Array(a) => &mut a[part.parse::<usize>().unwrap()],
            Value::Object(o) => o.entry(part.to_string()).or_insert_with(|| json!({})),
            _ => panic!("cannot descend into {pointer}"),
        };
    }
    match (cur, new) {
        (Value::Object(o), Some(n)) => {
            o.insert(last.to_string(), n);
        }
        (Value::Object(o), None) => {
            o.remove(last);
        }
        (Value::Array(a), Some(n)) => {
            let i = last.parse::<usize>().unwrap();
            if i == a.len() {
                a.push(n);
            } else {
                a[i] = n;
            }
        }
        (Value::Array(a), None) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => panic!("bad pointer {pointer}"),
    }
}

fn parse_value(v: &Value) -> ClusterConfig {
    config::parse_str(&serde_json::to_string_pretty(v).unwrap()).unwrap()
}

/// Applies the edits to the fixture and returns the full-validation error message.
fn full_error(edits: &[(&str, Option<Value>)]) -> String {
    let mut v = base();
    for (pointer, new) in edits {
        edit(&mut v, pointer, new.clone());
    }
    match tfgen::validate_for_terraform(&parse_value(&v)) {
        Ok(_) => "<valid>".into(),
        Err(e) => e.to_string(),
    }
}

/// One edit: set (`Some`) or remove (`None`) the value at a JSON pointer.
type Edit<'a> = (&'a str, Option<Value>);

fn set(pointer: &str, value: Value) -> (&str, Option<Value>) {
    (pointer, Some(value))
}

fn del(pointer: &str) -> (&str, Option<Value>) {
    (pointer, None)
}

/// Asserts each `(edits, message)` case.
fn assert_cases(cases: &[(Vec<Edit>, &str)]) {
    for (edits, expected) in cases {
        assert_eq!(full_error(edits), *expected, "edits: {edits:?}");
    }
}

#[test]
fn fixture_is_valid_and_round_trips() {
    let cfg = tfgen::load_and_validate(&fixture_path())
        .unwrap()
        .into_config();
    assert_eq!(cfg.cluster.id, "test-cluster");
    assert_eq!(cfg.cluster.pools.len(), 2);
    assert_eq!(
        cfg.cluster.providers[0].zones["us-west-2a"][0].role(),
        "public"
    );
    assert_eq!(
        cfg.cluster.providers[0].zones["us-west-2a"][1].role(),
        "nstance"
    );
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    assert_eq!(config::parse_str(&text).unwrap(), cfg);
    // Struct-typed fields are always written, `$schema` first.
    assert!(text.starts_with("{\n  \"$schema\": \"./podplane.cluster.schema.json\""));
    assert!(text.contains("\"seed\": {}"));
    assert!(text.contains("\"components\": {}"));
}

#[test]
fn light_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podplane.cluster.jsonc");
    let p = path.display().to_string();
    let cases: Vec<(Vec<Edit>, String)> = vec![
        (
            vec![del("/cluster/id")],
            format!("cluster config {p}: missing cluster.id"),
        ),
        (
            vec![set("/cluster/id", json!(""))],
            format!("cluster config {p}: missing cluster.id"),
        ),
        (
            vec![set("/cluster/id", json!("Test"))],
            format!(
                "cluster config {p}: invalid cluster.id: must be lowercase alphanumeric with hyphens, no leading/trailing hyphens"
            ),
        ),
        (
            vec![del("/cluster/oidc/issuer_url")],
            format!("cluster config {p}: missing cluster.oidc.issuer_url"),
        ),
        (
            vec![set("/cluster/seed/name", json!("full"))],
            format!(
                "cluster config {p}: invalid cluster.seed: seed.name must be recommended, minimal, or none"
            ),
        ),
        (
            vec![set("/cluster/components/source", json!({"url": ""}))],
            format!(
                "cluster config {p}: invalid cluster.components: components.source.url is required"
            ),
        ),
        // Light load wins over full validation: the bad hostname is reported only after.
        (
            vec![
                set("/cluster/kubernetes/api_hostname", json!("BAD")),
                set("/cluster/seed/name", json!("x")),
            ],
            format!(
                "cluster config {p}: invalid cluster.seed: seed.name must be recommended, minimal, or none"
            ),
        ),
        (
            vec![set("/cluster/kubernetes/api_hostname", json!("BAD"))],
            format!(
                "cluster config {p}: cluster.kubernetes.api_hostname: must be lowercase and must not end with a dot"
            ),
        ),
    ];
    for (edits, expected) in cases {
        let mut v = base();
        for (pointer, new) in &edits {
            edit(&mut v, pointer, new.clone());
        }
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        let err = tfgen::load_and_validate(&path).unwrap_err().to_string();
        assert_eq!(err, expected, "edits: {edits:?}");
    }
}

#[test]
fn read_error_names_the_file() {
    let err = config::load(Path::new("/nonexistent/podplane.cluster.jsonc")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "read cluster config /nonexistent/podplane.cluster.jsonc: No such file or directory (os error 2)"
    );
}

fn parse_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonc");
    std::fs::write(&path, text).unwrap();
    let err = config::load(&path).unwrap_err().to_string();
    let prefix = format!("parse cluster config {}: ", path.display());
    err.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{err:?} lacks {prefix:?}"))
        .to_string()
}

#[test]
fn unparseable_jsonc() {
    assert_eq!(
        parse_error("{\"cluster\": "),
        "at cluster: EOF while parsing a value at line 1 column 12"
    );
    assert_eq!(
        parse_error("{} {}"),
        "trailing characters at line 1 column 4"
    );
    assert_eq!(
        parse_error("{\n /* never closed"),
        "unterminated /* comment starting at line 2 column 2"
    );
}

#[test]
fn type_errors_name_the_path() {
    assert_eq!(
        parse_error(r#"{"cluster": {"pools": {"main": {"size": "3"}}}}"#),
        "at cluster.pools.main.size: invalid type: string \"3\", expected i64 at line 1 column 43"
    );
    assert_eq!(
        parse_error(r#"{"cluster": {"providers": [{"zones": {"us-west-2a": [{"public": 1}]}}]}}"#),
        "at cluster.providers[0].zones.us-west-2a[0].public: invalid type: integer `1`, expected a boolean at line 1 column 65"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let err = parse_error(r#"{"cluster": {"pools": {"main": {"zone": "a"}}}}"#);
    assert!(
        err.starts_with("at cluster.pools.main.zone: unknown field `zone`, expected one of `arch`"),
        "{err}"
    );
    let err = parse_error(r#"{"clusters": {}}"#);
    assert_eq!(
        err,
        "at clusters: unknown field `clusters`, expected `$schema` or `cluster` at line 1 column 11"
    );
    // Keys are case-sensitive.
    let err = parse_error(r#"{"cluster": {"ID": "a"}}"#);
    assert!(err.contains("unknown field `ID`"), "{err}");
}

#[test]
fn duplicate_keys_are_rejected_with_their_path() {
    let err = parse_error(r#"{"cluster": {"id": "a", "id": "b"}}"#);
    assert!(err.starts_with("at cluster"), "{err}");
    assert!(err.contains("duplicate field `id`"), "{err}");
    assert_eq!(
        parse_error(r#"{"cluster": {"pools": {"main": {"size": 1}, "main": {"size": 2}}}}"#),
        "at cluster.pools: duplicate key \"main\" at line 1 column 50"
    );
    let err = parse_error(r#"{"cluster": {"providers": [{"tags": {"a": "1", "a": "2"}}]}}"#);
    assert!(
        err.starts_with("at cluster.providers[0].tags: duplicate key \"a\""),
        "{err}"
    );
}

#[test]
fn comments_and_trailing_commas_are_accepted() {
    let text = "// head\n{ /* a */ \"cluster\": { \"id\": \"a-b\", // id\n \"pools\": {\"p\": {\"size\": 1,},}, }, }\n";
    let cfg = config::parse_str(text).unwrap();
    assert_eq!(cfg.cluster.id, "a-b");
    assert_eq!(cfg.cluster.pools["p"].size, 1);
}

#[test]
fn cluster_id_rules() {
    let long = "a".repeat(33);
    assert_cases(&[
        (
            vec![set("/cluster/id", json!(""))],
            "cluster.id: is required",
        ),
        (
            vec![set("/cluster/id", json!(long))],
            "cluster.id: must be at most 32 characters",
        ),
        (
            vec![set("/cluster/id", json!("a--b"))],
            "cluster.id: must not contain consecutive hyphens",
        ),
        (
            vec![set("/cluster/id", json!("local"))],
            "cluster.id: \"local\" is reserved",
        ),
        (
            vec![set("/cluster/id", json!("k8s"))],
            "cluster.id: \"k8s\" is reserved",
        ),
        (
            vec![set("/cluster/id", json!("oidc"))],
            "cluster.id: \"oidc\" is reserved",
        ),
        (vec![set("/cluster/id", json!("a".repeat(32)))], "<valid>"),
    ]);
    for bad in ["Upper", "a_b", "a b", "-a", "a-"] {
        assert_eq!(
            full_error(&[set("/cluster/id", json!(bad))]),
            "cluster.id: must be lowercase alphanumeric with hyphens, no leading/trailing hyphens",
            "{bad}"
        );
    }
}

#[test]
fn issuer_url_required() {
    assert_cases(&[(
        vec![del("/cluster/oidc/issuer_url")],
        "cluster.oidc.issuer_url is required",
    )]);
}

#[test]
fn issuer_url_rules() {
    assert_cases(&[
        (
            vec![set(
                "/cluster/oidc/issuer_url",
                json!("HTTPS://auth.example.com"),
            )],
            "cluster.oidc.issuer_url \"HTTPS://auth.example.com\" must start with https:// in lower case (kube-apiserver only accepts https issuers, and the URL must match the tokens' iss claim exactly)",
        ),
        (
            vec![set(
                "/cluster/oidc/issuer_url",
                json!("https://auth.example.com?x=1"),
            )],
            "cluster.oidc.issuer_url \"https://auth.example.com?x=1\" has a query (?...); kube-apiserver refuses it: remove it",
        ),
        (
            vec![set(
                "/cluster/oidc/issuer_url",
                json!("https://auth.example.com/~me"),
            )],
            "cluster.oidc.issuer_url \"https://auth.example.com/~me\" contains '~' in the path; only letters, digits and - . _ / : are allowed (and [ ] around an IPv6 host)",
        ),
    ]);
}

#[test]
fn api_hostname_and_port_rules() {
    let long_label = format!("{}.example.com", "a".repeat(64));
    let too_long = ["a".repeat(63).as_str(); 4].join(".");
    let h = "/cluster/kubernetes/api_hostname";
    assert_cases(&[
        (vec![del(h)], "cluster.kubernetes.api_hostname: is required"),
        (
            vec![set(h, json!("K8s.example.com"))],
            "cluster.kubernetes.api_hostname: must be lowercase and must not end with a dot",
        ),
        (
            vec![set(h, json!("k8s.example.com."))],
            "cluster.kubernetes.api_hostname: must be lowercase and must not end with a dot",
        ),
        (
            vec![set(h, json!("10.0.0.1"))],
            "cluster.kubernetes.api_hostname: must be a DNS hostname, not an IP address",
        ),
        (
            vec![set(h, json!("fd00::1"))],
            "cluster.kubernetes.api_hostname: must be a DNS hostname, not an IP address",
        ),
        (
            vec![set(h, json!(long_label))],
            "cluster.kubernetes.api_hostname: must contain only DNS labels",
        ),
        (
            vec![set(h, json!("k8s_api.example.com"))],
            "cluster.kubernetes.api_hostname: must contain only DNS labels",
        ),
        (
            vec![set(h, json!("k8s..example.com"))],
            "cluster.kubernetes.api_hostname: must contain only DNS labels",
        ),
        (
            vec![set(h, json!(too_long))],
            "cluster.kubernetes.api_hostname: must be at most 253 characters",
        ),
        (
            vec![set("/cluster/kubernetes/api_port", json!(-1))],
            "cluster.kubernetes.api_port must be 1-65535 when set",
        ),
        (
            vec![set("/cluster/kubernetes/api_port", json!(65536))],
            "cluster.kubernetes.api_port must be 1-65535 when set",
        ),
    ]);
}

#[test]
fn registry_rules() {
    assert_cases(&[
        (
            vec![set(
                "/cluster/registry/hostname",
                json!("registry.example.com."),
            )],
            "cluster.registry.hostname: must be lowercase and must not end with a dot",
        ),
        (
            vec![del("/cluster/registry/hostname")],
            "cluster.registry.hostname is required when domains are configured",
        ),
        // The mirror rule (step 8) is shadowed by step 5: an unresolvable mirror hostname
        // needs domains without a registry hostname, which step 5 already rejects.
        (
            vec![
                del("/cluster/registry/hostname"),
                set(
                    "/cluster/components/registry",
                    json!({"mirror": {"enabled": true}}),
                ),
            ],
            "cluster.registry.hostname is required when domains are configured",
        ),
        (
            vec![set(
                "/cluster/components/registry",
                json!({"mirror": {"enabled": true}}),
            )],
            "<valid>",
        ),
    ]);
}

#[test]
fn acme_rules() {
    assert_cases(&[
        (
            vec![set("/cluster/acme/email", json!("Ops <ops@example.com>"))],
            "cluster.acme: email must be a valid email address",
        ),
        (
            vec![set("/cluster/acme/email", json!("ops"))],
            "cluster.acme: email must be a valid email address",
        ),
        (
            vec![set("/cluster/acme/email", json!(""))],
            "cluster.acme: email must be a valid email address",
        ),
        (
            vec![set(
                "/cluster/acme/server",
                json!("http://acme.example.com/dir"),
            )],
            "cluster.acme: server must be a valid HTTPS URL",
        ),
        (
            vec![set("/cluster/acme/server", json!("https:///dir"))],
            "cluster.acme: server must be a valid HTTPS URL",
        ),
        (
            vec![set(
                "/cluster/acme/server",
                json!("https://acme.example.com/directory"),
            )],
            "<valid>",
        ),
        (
            vec![del("/cluster/domains/0/provider")],
            "cluster.acme: requires at least one domain with a supported ACME DNS provider",
        ),
    ]);
}

#[test]
fn service_cidr_rules() {
    let s = "/cluster/kubernetes/service_cidr";
    assert_cases(&[
        (
            vec![set(s, json!(["10.0.0.0/16", "fd00::/108", "10.1.0.0/16"]))],
            "cluster.kubernetes.service_cidr: service_cidr supports at most two networks",
        ),
        (
            vec![set(s, json!(["10.96.0.1/12"]))],
            "cluster.kubernetes.service_cidr: service_cidr[0] \"10.96.0.1/12\" is not canonical (use \"10.96.0.0/12\")",
        ),
        (
            vec![set(s, json!(["x"]))],
            "cluster.kubernetes.service_cidr: service_cidr[0] \"x\" is invalid: missing \"/\" and prefix length",
        ),
        (
            vec![set(s, json!(["10.0.0.0/16", "10.1.0.0/16"]))],
            "cluster.kubernetes.service_cidr: service_cidr contains duplicate IPv4 networks",
        ),
        (
            vec![set(s, json!(["fdc6::/108", "198.18.0.0/15"]))],
            "cluster.kubernetes.service_cidr: service_cidr must be IPv4-primary; IPv6-primary configurations are unsupported",
        ),
        (
            vec![set(s, json!(["10.0.0.0/31"]))],
            "cluster.kubernetes.service_cidr: service_cidr \"10.0.0.0/31\" has insufficient capacity for the Kubernetes API and DNS services",
        ),
        (
            vec![set(s, json!(["10.0.0.0/16", "fd00::/116"]))],
            "cluster.kubernetes.service_cidr: service_cidr \"fd00::/116\" has insufficient capacity for the Kubernetes API and DNS services",
        ),
        (vec![del(s)], "<valid>"),
    ]);
}

#[test]
fn seed_and_components_rules() {
    let digest = format!("sha512:{}", "a".repeat(128));
    assert_cases(&[
        (
            vec![set("/cluster/seed/name", json!("full"))],
            "cluster.seed: seed.name must be recommended, minimal, or none",
        ),
        (
            vec![set("/cluster/seed/name", json!("recommended"))],
            "cluster.seed: seed.digest is required",
        ),
        (
            vec![
                set("/cluster/seed/name", json!("minimal")),
                set(
                    "/cluster/seed/digest",
                    json!(format!("sha256:{}", "a".repeat(128))),
                ),
            ],
            "cluster.seed: seed.digest must be a sha512 digest in sha512:<hex> format",
        ),
        (
            vec![
                set("/cluster/seed/name", json!("minimal")),
                set(
                    "/cluster/seed/digest",
                    json!(format!("sha512:{}", "A".repeat(128))),
                ),
            ],
            "cluster.seed: seed.digest must be a sha512 digest in sha512:<hex> format",
        ),
        (
            vec![
                set("/cluster/seed/name", json!("minimal")),
                set("/cluster/seed/digest", json!("sha512:abc")),
            ],
            "cluster.seed: seed.digest must be a sha512 digest in sha512:<hex> format",
        ),
        (
            vec![
                set("/cluster/seed/name", json!("recommended")),
                set("/cluster/seed/digest", json!(digest)),
            ],
            "<valid>",
        ),
        (vec![set("/cluster/seed/name", json!("none"))], "<valid>"),
        (
            vec![set("/cluster/components/source", json!({"url": "  "}))],
            "cluster.components: components.source.url is required",
        ),
        (
            vec![set(
                "/cluster/components/source",
                json!({"url": "https://git.example.com/c.git", "ref": {"branch": "main", "tag": "v1"}}),
            )],
            "cluster.components: components.source.ref must set at most one of branch, tag, semver, or commit",
        ),
        (
            vec![set(
                "/cluster/components/source",
                json!({"url": "https://git.example.com/c.git", "secretRef": {"name": " "}}),
            )],
            "cluster.components: components.source.secretRef.name is required when secretRef is set",
        ),
    ]);
}

#[test]
fn secrets_rules() {
    let p = "/cluster/secrets/providers/aws-secrets-manager";
    let msg = "must be lowercase alphanumeric with hyphens, no leading/trailing hyphens, no consecutive hyphens, no dots, and at most 32 characters";
    assert_cases(&[
        (
            vec![set("/cluster/secrets/providers", json!({}))],
            "cluster.secrets: default_provider requires at least one provider",
        ),
        (
            vec![del("/cluster/secrets/default_provider")],
            "cluster.secrets: default_provider is required when providers are configured",
        ),
        (
            vec![set("/cluster/secrets/default_provider", json!("other"))],
            "cluster.secrets: default_provider \"other\" does not match a configured provider",
        ),
        (
            vec![set("/cluster/secrets/default_provider", json!("Bad"))],
            &format!("cluster.secrets: default_provider {msg}"),
        ),
        (
            vec![set(
                "/cluster/secrets/providers/bad.name",
                json!({"kind": "vault"}),
            )],
            &format!("cluster.secrets: providers.bad.name {msg}"),
        ),
        (
            vec![set(&format!("{p}/key_prefix"), json!("a--b"))],
            &format!("cluster.secrets: providers.aws-secrets-manager.key_prefix {msg}"),
        ),
        (
            vec![set(&format!("{p}/kind"), json!("azure"))],
            "cluster.secrets: providers.aws-secrets-manager.kind must be aws, gcp, vault, or openbao",
        ),
        (
            vec![set(&format!("{p}/kind"), json!(""))],
            "cluster.secrets: providers.aws-secrets-manager.kind is required",
        ),
        (
            vec![set(&format!("{p}/object_type"), json!("kms"))],
            "cluster.secrets: providers.aws-secrets-manager.object_type must be secretsmanager or ssmparameter for aws",
        ),
        (
            vec![set(&format!("{p}/kind"), json!("gcp"))],
            "cluster.secrets: providers.aws-secrets-manager.project_id is required for gcp",
        ),
        (vec![set(&format!("{p}/kind"), json!("openbao"))], "<valid>"),
        (vec![del("/cluster/secrets")], "<valid>"),
    ]);
}

#[test]
fn provider_and_pool_presence_rules() {
    assert_cases(&[
        (
            vec![set("/cluster/providers", json!([]))],
            "cluster.providers must contain at least one provider",
        ),
        (
            vec![set("/cluster/pools", json!({}))],
            "cluster.pools must contain at least one pool",
        ),
        (
            vec![set(
                "/cluster/pools/",
                json!({"arch": "amd64", "instance_type": "t", "size": 1}),
            )],
            "cluster.pools contains an empty pool name",
        ),
        (
            vec![set("/cluster/pools/workers/arch", json!("x86_64"))],
            "cluster.pools.workers.arch must be amd64 or arm64",
        ),
        (
            vec![del("/cluster/pools/workers/instance_type")],
            "cluster.pools.workers.instance_type is required",
        ),
        (
            vec![set("/cluster/pools/workers/size", json!(-1))],
            "cluster.pools.workers.size must be >= 0",
        ),
        (
            vec![set("/cluster/pools/workers/size", json!(0))],
            "<valid>",
        ),
    ]);
}

#[test]
fn provider_kind_region_and_vpc_rules() {
    let pr = "/cluster/providers/0";
    assert_cases(&[
        (
            vec![set(&format!("{pr}/kind"), json!("google"))],
            "cluster.providers[0].kind google is not supported by cluster create yet",
        ),
        (
            vec![set(&format!("{pr}/kind"), json!("proxmox"))],
            "cluster.providers[0].kind proxmox is not supported by cluster create",
        ),
        (
            vec![set(&format!("{pr}/kind"), json!("azure"))],
            "cluster.providers[0].kind must be aws",
        ),
        (
            vec![set(&format!("{pr}/region"), json!("us-west"))],
            "cluster.providers[0].region must be a valid AWS region",
        ),
        (
            vec![del(&format!("{pr}/region"))],
            "cluster.providers[0].region must be a valid AWS region",
        ),
        (
            vec![set(&format!("{pr}/vpc/id"), json!("vpc-123"))],
            "cluster.providers[0].vpc.id cannot be combined with vpc CIDRs",
        ),
        (
            vec![set(&format!("{pr}/vpc"), json!({}))],
            "cluster.providers[0].vpc.id or vpc.v4cidr is required",
        ),
        (
            vec![set(&format!("{pr}/vpc/v4cidr"), json!("172.18.0.1/16"))],
            "cluster.providers[0].vpc.v4cidr must be a canonical IPv4 CIDR",
        ),
        (
            vec![set(&format!("{pr}/vpc/v4cidr"), json!("fd00::/48"))],
            "cluster.providers[0].vpc.v4cidr must be a canonical IPv4 CIDR",
        ),
        (
            vec![set(&format!("{pr}/vpc/v6cidr"), json!("fd00::/56"))],
            "cluster.providers[0].vpc.v6cidr only supports \"auto\" for managed AWS generation",
        ),
        // A second provider is validated too (only the first is rendered).
        (
            vec![set("/cluster/providers/1", json!({"kind": "google"}))],
            "cluster.providers[1].kind google is not supported by cluster create yet",
        ),
    ]);
}

/// Edits that move the fixture's subnets into zone `zone`.
fn move_zone(zone: &str) -> Vec<(String, Option<Value>)> {
    let subnets = base()["cluster"]["providers"][0]["zones"]["us-west-2a"].clone();
    vec![
        ("/cluster/providers/0/zones/us-west-2a".into(), None),
        (format!("/cluster/providers/0/zones/{zone}"), Some(subnets)),
    ]
}

#[test]
fn zone_rules() {
    for zone in ["us-west-1a", "us-west-20a", "us-west-2", "us-west-2ab"] {
        let edits = move_zone(zone);
        let edits: Vec<(&str, Option<Value>)> =
            edits.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
        assert_eq!(
            full_error(&edits),
            format!(
                "cluster.providers[0].zones.{zone} must be an availability zone in region us-west-2"
            )
        );
    }
    let edits = move_zone("us-west-2-lax-1a");
    let edits: Vec<(&str, Option<Value>)> =
        edits.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
    assert_eq!(full_error(&edits), "<valid>");
    assert_cases(&[
        (
            vec![set("/cluster/providers/0/zones", json!({}))],
            "cluster.providers[0].zones must contain at least one zone",
        ),
        (
            vec![set("/cluster/providers/0/zones/us-west-2b", json!([]))],
            "cluster.providers[0].zones.us-west-2b must contain at least one subnet",
        ),
    ]);
}

#[test]
fn subnet_rules() {
    let z = "/cluster/providers/0/zones/us-west-2a";
    let s = "cluster.providers[0].zones.us-west-2a";
    assert_cases(&[
        (
            vec![set(&format!("{z}/2/id"), json!("subnet-1"))],
            &format!("{s}[2].id cannot be combined with subnet CIDRs"),
        ),
        (
            vec![del(&format!("{z}/2/v4cidr")), del(&format!("{z}/2/v6cidr"))],
            &format!("{s}[2].id or v4cidr is required"),
        ),
        (
            vec![
                del(&format!("{z}/2/v4cidr")),
                del(&format!("{z}/2/v6cidr")),
                set(&format!("{z}/2/id"), json!("subnet-1")),
            ],
            "<valid>",
        ),
        (
            vec![set(&format!("{z}/2/v6cidr"), json!("fd00::/64"))],
            &format!("{s}[2].v6cidr only supports \"auto\" for managed AWS generation"),
        ),
        (
            vec![set(&format!("{z}/2/services"), json!(["nstance"]))],
            &format!("{s}[2] must set exactly one of pool or services"),
        ),
        (
            vec![del(&format!("{z}/2/pool"))],
            &format!("{s}[2] must set exactly one of pool or services"),
        ),
        (
            vec![set(&format!("{z}/2/pool"), json!("gpu"))],
            &format!("{s}[2].pool references unknown pool \"gpu\""),
        ),
        (
            vec![set(&format!("{z}/1/services"), json!(["nstance", "dns"]))],
            &format!("{s}[1].services contains unsupported service \"dns\""),
        ),
        (
            vec![set(&format!("{z}/0/public"), json!(false))],
            &format!("{s}[0] with service \"nat\" must be public"),
        ),
        (
            vec![
                set(&format!("{z}/0/services"), json!(["nlb"])),
                del(&format!("{z}/0/public")),
            ],
            &format!("{s}[0] with service \"nlb\" must be public"),
        ),
        (
            vec![set(&format!("{z}/2/v4cidr"), json!("172.18.1.1/24"))],
            &format!("{s}[2].v4cidr must be a canonical IPv4 CIDR"),
        ),
        (
            vec![set(&format!("{z}/2/v4cidr"), json!("10.0.1.0/24"))],
            &format!("{s}[2].v4cidr must be contained within VPC CIDR 172.18.0.0/16"),
        ),
        (
            vec![set(&format!("{z}/2/v4cidr"), json!("172.0.0.0/8"))],
            &format!("{s}[2].v4cidr must be contained within VPC CIDR 172.18.0.0/16"),
        ),
    ]);
}

#[test]
fn role_rules() {
    let r = "/cluster/providers/0/roles/app";
    assert_cases(&[
        (
            vec![set(r, json!({"buckets": ["missing"]}))],
            "cluster.providers[0].roles.app.buckets references unknown bucket \"missing\"",
        ),
        (
            vec![
                set("/cluster/providers/0/buckets", json!(["data"])),
                set(r, json!({"buckets": ["data"], "permissions": "admin"})),
            ],
            "cluster.providers[0].roles.app.permissions must be read-write or read-only",
        ),
        (
            vec![
                set("/cluster/providers/0/buckets", json!(["data"])),
                set(r, json!({"buckets": ["data"], "permissions": "read-only"})),
            ],
            "<valid>",
        ),
    ]);
}

#[test]
fn load_balancer_rules() {
    let lb = "/cluster/providers/0/load_balancers/main";
    let m = "cluster.providers[0].load_balancers.main";
    assert_cases(&[
        (
            vec![set(
                "/cluster/providers/0/load_balancers/",
                json!({"public": true, "subnets": "public", "listeners": []}),
            )],
            "cluster.providers[0].load_balancers contains an empty name",
        ),
        (
            vec![del(&format!("{lb}/subnets"))],
            &format!("{m}.subnets is required"),
        ),
        (
            vec![set(&format!("{lb}/subnets"), json!("private"))],
            &format!("{m}.subnets references unknown subnet role \"private\""),
        ),
        (
            vec![set(&format!("{lb}/subnets"), json!("nstance"))],
            "<valid>",
        ),
        (
            vec![set(&format!("{lb}/listeners/0/port"), json!(0))],
            &format!("{m}.listeners[0].port must be 1-65535"),
        ),
        (
            vec![set(&format!("{lb}/listeners/1/port"), json!(65536))],
            &format!("{m}.listeners[1].port must be 1-65535"),
        ),
        (
            vec![set(&format!("{lb}/listeners/1/port"), json!(443))],
            &format!("{m}.listeners[1].port duplicates port 443"),
        ),
        (
            vec![set(&format!("{lb}/listeners/1/target_port"), json!(70000))],
            &format!("{m}.listeners[1].target_port must be 1-65535 when set"),
        ),
        (
            vec![set(&format!("{lb}/listeners/1/pool"), json!("x"))],
            &format!("{m}.listeners[1].pool references unknown pool \"x\""),
        ),
    ]);
}

#[test]
fn domain_rules() {
    let second = json!({"zone": "example.com"});
    assert_cases(&[
        (
            vec![set("/cluster/domains/0/zone", json!("Example.com"))],
            "cluster.domains[0].zone: must be lowercase and must not end with a dot",
        ),
        (
            vec![set("/cluster/domains/1", second)],
            "cluster.domains[1].zone duplicates \"example.com\"",
        ),
        (
            vec![
                del("/cluster/acme"),
                set("/cluster/domains/0/provider/kind", json!("route53")),
            ],
            "cluster.domains[0].provider.kind must be aws-route53, cloudflare, google-cloud-dns, or local",
        ),
        (
            vec![set("/cluster/domains/0/load_balancer", json!("x"))],
            "cluster.domains[0].load_balancer: references unknown load balancer \"x\"",
        ),
        (
            vec![set(
                "/cluster/providers/0/load_balancers/main/listeners/0/target_port",
                json!(8443),
            )],
            "cluster.domains[0].load_balancer: load balancer \"main\" requires listener port 443 targeting port 443",
        ),
        // target_port defaults to port.
        (
            vec![del(
                "/cluster/providers/0/load_balancers/main/listeners/0/target_port",
            )],
            "<valid>",
        ),
        (vec![del("/cluster/domains/0/load_balancer")], "<valid>"),
    ]);
}

#[test]
fn api_load_balancer_rules() {
    assert_cases(&[
        (
            vec![set("/cluster/kubernetes/api_port", json!(443))],
            "cluster.kubernetes.api_load_balancer: load balancer \"main\" requires listener port 443 targeting port 6443 for pool \"control-plane\"",
        ),
        (
            vec![set(
                "/cluster/providers/0/load_balancers/main/listeners/1/pool",
                json!("workers"),
            )],
            "cluster.kubernetes.api_load_balancer: load balancer \"main\" requires listener port 6443 targeting port 6443 for pool \"control-plane\"",
        ),
        (
            vec![set("/cluster/kubernetes/api_load_balancer", json!("x"))],
            "cluster.kubernetes.api_load_balancer: references unknown load balancer \"x\"",
        ),
        (
            vec![
                set("/cluster/kubernetes/api_hostname", json!("example.com")),
                set("/cluster/kubernetes/api_load_balancer", json!("api")),
            ],
            "cluster.kubernetes.api_load_balancer \"api\" conflicts with domain apex \"example.com\" load balancer \"main\"",
        ),
        (
            vec![del("/cluster/kubernetes/api_load_balancer")],
            "<valid>",
        ),
    ]);
}

#[test]
fn terraform_only_domain_provider_rule() {
    let edits = [
        del("/cluster/acme"),
        set("/cluster/domains/0/provider/kind", json!("cloudflare")),
    ];
    assert_eq!(
        full_error(&edits),
        "cluster.domains[0].provider.kind \"cloudflare\" is not supported by Terraform generation"
    );
    let mut v = base();
    for (p, n) in edits {
        edit(&mut v, p, n);
    }
    assert_eq!(config::validate(&parse_value(&v)).map(|_| ()), Ok(()));
}

#[test]
fn first_error_is_deterministic() {
    // Two pool errors: "control-plane" sorts before "workers", so it is always reported.
    let edits = [
        set("/cluster/pools/workers/arch", json!("x86")),
        del("/cluster/pools/control-plane/instance_type"),
    ];
    for _ in 0..5 {
        assert_eq!(
            full_error(&edits),
            "cluster.pools.control-plane.instance_type is required"
        );
    }
    // Errors in two different steps: the earlier step wins regardless of file order.
    let edits = [
        set("/cluster/providers/0/region", json!("nowhere")),
        set("/cluster/pools/workers/size", json!(-3)),
    ];
    assert_eq!(
        full_error(&edits),
        "cluster.pools.workers.size must be >= 0"
    );
    // Two zones with errors: the sorted-first zone is reported.
    let edits = [
        set("/cluster/providers/0/zones/us-west-2c", json!([])),
        set("/cluster/providers/0/zones/us-west-2b", json!([])),
    ];
    assert_eq!(
        full_error(&edits),
        "cluster.providers[0].zones.us-west-2b must contain at least one subnet"
    );
}

#[test]
fn region_and_zone_helpers() {
    for ok in [
        "us-west-2",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-10",
    ] {
        assert!(config::is_aws_region(ok), "{ok}");
    }
    for bad in [
        "us-west",
        "US-west-2",
        "us-west-02",
        "u-west-2",
        "us--west-2",
        "us-west-2-",
        "",
    ] {
        assert!(!config::is_aws_region(bad), "{bad}");
    }
    assert!(config::is_zone_in_region("us-west-2", "us-west-2a"));
    assert!(config::is_zone_in_region("us-west-2", "us-west-2-lax-1a"));
    assert!(!config::is_zone_in_region("us-west-2", "us-west-2-"));
    assert!(!config::is_zone_in_region("us-west-2", "us-west-2A"));
}

/// The node's path for one delivered `mutable.env` value: parse the file, then merge it (which
/// checks every value). `Err` carries the node's message.
fn node_accepts(key: &str, value: &str) -> Result<(), String> {
    use vmagent::recv::mutable;
    let delivered = mutable::parse(&format!("{key}='{value}'\n")).map_err(|e| e.to_string())?;
    mutable::merge(&Default::default(), &delivered)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Issuer URLs with whether they are acceptable. Empty is left out on purpose: the CLI requires
/// an issuer, while an empty `OIDC_ISSUER` on the node means "not delivered yet".
const ISSUERS: &[(&str, bool)] = &[
    ("https://auth.example.com", true),
    ("https://auth.example.com/", true),
    ("https://auth.example.com:8443", true),
    ("https://auth.example.com:443/dex", true),
    ("https://keycloak.example.com/realms/main", true),
    (
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
        true,
    ),
    (
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123",
        true,
    ),
    ("https://10.0.0.1:5556/dex", true),
    ("https://[fd00::1]:5556", true),
    ("HTTPS://auth.example.com", false),
    ("Https://auth.example.com", false),
    ("http://auth.example.com", false),
    ("auth.example.com", false),
    ("https://", false),
    ("https:///auth.example.com", false),
    ("https://user@auth.example.com", false),
    ("https://user:secret@auth.example.com/x", false),
    ("https://auth.example.com?tenant=a", false),
    ("https://auth.example.com/#x", false),
    ("https://auth.example.com/~user", false),
    ("https://auth.example.com/a%2Fb", false),
    ("https://auth.example.com/a+b", false),
    ("https://auth.example.com/a,b", false),
    ("https://auth.example.com/a=b", false),
    ("https://auth.example.com/a b", false),
    (" https://auth.example.com", false),
    ("https://auth.example.com ", false),
    ("https://Auth.Example.com", false),
    ("https://auth.example.com/a/../b", false),
    ("https://auth.example.com:0", false),
    ("https://auth.example.com:0443", false),
    ("https://auth.example.com:", false),
    ("https://auth.example.com:99999", false),
    ("https://1.2.3", false),
    ("https://[::1", false),
    ("https://auth_1.example.com", false),
    ("https://-auth.example.com", false),
    ("https://bücher.example", false),
];

/// `podplane cluster validate` and the node's `mutable.env` check must agree on every issuer: a
/// cluster the CLI calls valid must not leave kube-apiserver without its `--oidc-issuer-url`.
#[test]
fn issuer_url_rule_is_the_same_in_the_cli_and_on_the_node() {
    let mut disagree = Vec::new();
    for &(url, want) in ISSUERS {
        let cli = full_error(&[set("/cluster/oidc/issuer_url", json!(url))]);
        let node = node_accepts("OIDC_ISSUER", url);
        if cli != "<valid>" {
            assert!(
                cli.starts_with(&format!("cluster.oidc.issuer_url {url:?} ")),
                "{url:?}: the CLI refused it for another reason: {cli}"
            );
        }
        if (cli == "<valid>", node.is_ok()) != (want, want) {
            disagree.push(format!(
                "{url:?} (want {}): cli: {cli}; node: {}",
                if want { "accepted" } else { "refused" },
                node.err().unwrap_or_else(|| "<valid>".into())
            ));
        }
    }
    assert!(disagree.is_empty(), "\n{}", disagree.join("\n"));
}

/// The CLI sends `KUBE_SERVICE_ACCOUNT_ISSUER = https://<api_hostname>:<api_port>`: whatever API
/// hostname and port it accepts must give an issuer the node accepts.
#[test]
fn service_account_issuer_the_cli_sends_is_accepted_by_the_node() {
    let mut checked = 0;
    for host in [
        "k8s.example.com",
        "api",
        "xn--bcher-kva.example",
        "a-b.c-d.example",
    ] {
        for port in [0, 1, 443, 6443, 65535] {
            let cli = full_error(&[
                set("/cluster/kubernetes/api_hostname", json!(host)),
                set("/cluster/kubernetes/api_port", json!(port)),
            ]);
            if cli != "<valid>" {
                continue;
            }
            let port = if port == 0 { 6443 } else { port };
            let issuer = format!("https://{host}:{port}");
            assert_eq!(
                node_accepts("KUBE_SERVICE_ACCOUNT_ISSUER", &issuer),
                Ok(()),
                "{issuer}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "only {checked} API hostnames were valid in the CLI"
    );
}

/// Validation hands back the values it parsed, typed: generation reads these instead of the
/// strings (port defaulted, provider kind, canonical VPC network, ACME directory, networks).
#[test]
fn validated_config_carries_parsed_values() {
    let valid = config::validate(&parse_value(&base())).unwrap();
    assert_eq!(valid.issuer_url().as_str(), "https://auth.example.com/");
    assert_eq!(valid.api_port(), config::DEFAULT_API_PORT);
    assert_eq!(valid.provider().kind, vmagent::contract::Provider::Aws);
    assert_eq!(
        valid
            .provider()
            .vpc_v4cidr
            .map(|n| n.to_string())
            .as_deref(),
        Some("172.18.0.0/16")
    );
    assert_eq!(valid.provider().config, valid.cluster.providers[0]);
    assert_eq!(
        valid.acme_server().map(|u| u.as_str()),
        Some(config::DEFAULT_ACME_SERVER)
    );
    let nets: Vec<String> = valid
        .service_network()
        .cidrs
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, config::DEFAULT_SERVICE_CIDRS);

    let mut v = base();
    edit(&mut v, "/cluster/kubernetes/api_port", Some(json!(8443)));
    edit(&mut v, "/cluster/kubernetes/api_load_balancer", None);
    edit(
        &mut v,
        "/cluster/acme/server",
        Some(json!("https://acme.example.com/dir")),
    );
    let valid = config::validate(&parse_value(&v)).unwrap();
    assert_eq!(valid.api_port(), 8443);
    assert_eq!(
        valid.acme_server().map(|u| u.as_str()),
        Some("https://acme.example.com/dir")
    );
    // The config as written is kept untouched for rendering.
    assert_eq!(valid.into_config(), parse_value(&v));
}
