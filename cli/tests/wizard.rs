//! The interactive cluster config creation (`podplane::wizard`): prompts driven with byte
//! strings, the resulting config files, and the output directory selection.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use podplane::config::{self, ClusterConfig};
use podplane::tfgen;
use podplane::wizard::{
    Answers, COMPONENTS_LABEL, WizardError, choose_output, choose_output_from, config_from_answers,
    config_json, create_config_interactively, run_wizard, write_config,
};
use serde_json::{Value, json};

/// Runs the wizard on `input`; returns the result and everything printed.
fn wizard(input: &str, issuer: Option<&str>) -> (Result<Answers, WizardError>, String) {
    let mut out = Vec::new();
    let r = run_wizard(&mut input.as_bytes(), &mut out, issuer.map(str::to_string));
    (r, String::from_utf8(out).unwrap())
}

/// What the stand-in seeds manifest pins for any seed name.
const SEED_VERSION: &str = "1.2.3-1";
fn seed_digest() -> String {
    format!("sha512:{}", "ab".repeat(64))
}

/// Runs the whole interactive creation for `config_path`, the seed pinned by a stand-in for
/// the seeds manifest.
fn create(config_path: &Path, input: &str) -> (Result<PathBuf, WizardError>, String) {
    let mut out = Vec::new();
    let mut pin = |_: &str| Ok((SEED_VERSION.to_string(), seed_digest()));
    let r = create_config_interactively(config_path, &mut input.as_bytes(), &mut out, &mut pin);
    (r, String::from_utf8(out).unwrap())
}

/// The config of `a` with its seed pinned as [`create`] pins it.
fn pinned(a: &Answers) -> ClusterConfig {
    let mut cfg = config_from_answers(a);
    if !cfg.cluster.seed.name.is_empty() {
        cfg.cluster.seed.version = SEED_VERSION.into();
        cfg.cluster.seed.digest = seed_digest();
    }
    cfg
}

/// Every produced config must pass the light and full checks, and the written file must load
/// back (through the repo's loader) to the same model.
fn assert_usable(cfg: &ClusterConfig) {
    config::light_check(cfg).unwrap();
    tfgen::validate_for_terraform(cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podplane.cluster.jsonc");
    write_config(&path, cfg).unwrap();
    let loaded = config::load(&path).unwrap();
    assert_eq!(&loaded, cfg);
    tfgen::load_and_validate(&path).unwrap();
}

/// Answers → config, checked, as a JSON value.
fn json_of(a: &Answers) -> Value {
    let cfg = pinned(a);
    assert_usable(&cfg);
    serde_json::from_str(&config_json(&cfg).unwrap()).unwrap()
}

const DEFAULT_CONFIG: &str = r#"{
  "$schema": "./podplane.cluster.schema.json",
  "cluster": {
    "id": "example-cluster",
    "name": "Example Cluster",
    "oidc": {
      "issuer_url": "https://auth.example.com"
    },
    "registry": {
      "hostname": "example-cluster-registry.local",
      "ingress": {}
    },
    "pools": {
      "control-plane": {
        "arch": "arm64",
        "instance_type": "t4g.medium",
        "size": 3
      }
    },
    "providers": [
      {
        "kind": "aws",
        "region": "us-east-1",
        "vpc": {
          "v4cidr": "172.18.0.0/16",
          "v6cidr": "auto"
        },
        "zones": {
          "us-east-1a": [
            {
              "services": [
                "nat",
                "nlb"
              ],
              "public": true,
              "v4cidr": "172.18.10.0/28",
              "v6cidr": "auto"
            },
            {
              "services": [
                "nstance"
              ],
              "v4cidr": "172.18.20.0/28",
              "v6cidr": "auto"
            },
            {
              "pool": "control-plane",
              "v4cidr": "172.18.1.0/24",
              "v6cidr": "auto"
            }
          ]
        }
      }
    ],
    "secrets": {
      "default_provider": "aws-secrets-manager",
      "providers": {
        "aws-secrets-manager": {
          "kind": "aws",
          "object_type": "secretsmanager"
        }
      }
    },
    "kubernetes": {
      "api_hostname": "api.example.com",
      "cluster_cidr": [
        "100.64.0.0/10"
      ],
      "service_cidr": [
        "198.18.0.0/15"
      ]
    },
    "seed": {
      "name": "recommended",
      "version": "1.2.3-1",
      "digest": "sha512:abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab"
    },
    "components": {}
  }
}
"#;

/// Provider aws, existing issuer, then every wizard default except the API hostname (which
/// has none).
const DEFAULT_INPUT: &str = "\n\nhttps://auth.example.com\n\n\n\napi.example.com\n\n\n\n\n\n\n\n";

#[test]
fn default_answers_write_the_expected_file() {
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created silently (no directory question).
    let path = dir.path().join("new").join("podplane.cluster.jsonc");
    let (r, out) = create(&path, DEFAULT_INPUT);
    assert_eq!(r.unwrap(), path);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, DEFAULT_CONFIG);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let dir_mode = fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode & !0o022, 0o755 & !0o022, "{dir_mode:o}");
    assert!(
        out.ends_with(&format!("Created {}\n", path.display())),
        "{out}"
    );
    assert!(!out.contains("error:"), "{out}");
    assert_usable(&config::load(&path).unwrap());

    // The transcript: questions in order, `Label [default]: ` / `Label: `.
    let expected_prompts = [
        "Which cloud provider? (aws, google) [aws]: ",
        "Do you already have an OIDC issuer for this cluster? [yes]: ",
        "OIDC issuer URL: ",
        "New cluster config\n",
        "Cluster name [Example Cluster]: ",
        "Cluster ID / slug [example-cluster]: ",
        "Cluster domain (optional): ",
        "Kubernetes API hostname: ",
        "AWS region [us-east-1]: ",
        "AWS profile (optional): ",
        &format!("{COMPONENTS_LABEL} [recommended]: "),
        "Configure networking options? [no]: ",
        "Control-plane architecture [arm64]: ",
        "Control-plane instance type [t4g.medium]: ",
        "Control-plane size [3]: ",
        "Created ",
    ];
    let mut rest = out.as_str();
    for p in expected_prompts {
        let at = rest
            .find(p)
            .unwrap_or_else(|| panic!("{p:?} not in order in {out}"));
        rest = &rest[at + p.len()..];
    }
    // Hidden questions are not asked.
    for hidden in ["DNS provider", "ACME", "VPC IPv4 CIDR", "availability zone"] {
        assert!(!out.contains(hidden), "{hidden} asked: {out}");
    }
    assert_eq!(
        COMPONENTS_LABEL,
        "Initial platform components (recommended, minimal, none)"
    );
}

#[test]
fn default_answers_struct_and_mapping() {
    let d = Answers::default();
    assert_eq!(
        d,
        Answers {
            name: "Example Cluster".into(),
            id: "example-cluster".into(),
            issuer_url: "https://auth.example.com".into(),
            domain: "".into(),
            dns_provider: "".into(),
            acme_email: "".into(),
            api_hostname: "".into(),
            region: "us-east-1".into(),
            profile: "".into(),
            components: "recommended".into(),
            networking: false,
            vpc_cidr: "172.18.0.0/16".into(),
            zone: "us-east-1a".into(),
            cp_arch: "arm64".into(),
            cp_instance_type: "t4g.medium".into(),
            cp_size: 3,
        }
    );
    // Wizard with all defaults (plus the required API hostname) returns exactly the defaults.
    let (r, _) = wizard("\n\n\n\napi.example.com\n\n\n\n\n\n\n\n", None);
    let a = r.unwrap();
    assert_eq!(
        a,
        Answers {
            api_hostname: "api.example.com".into(),
            ..Answers::default()
        }
    );
    assert_eq!(config_json(&pinned(&a)).unwrap(), DEFAULT_CONFIG);
    // The default answers themselves only lack the API hostname.
    let err = config::validate(&pinned(&d)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster.kubernetes.api_hostname: is required"
    );
}

#[test]
fn domain_route53_and_acme_email() {
    // name, id, issuer, domain, dns provider, email, region, profile, components, networking,
    // arch, instance type, size
    let input = "Prod\nprod\nhttps://login.example.org\nexample.com\naws-route53\nops@example.com\nus-west-2\npodplane\nnone\nno\namd64\nm7i.large\n1\n";
    let (r, out) = wizard(input, None);
    let a = r.unwrap();
    assert!(!out.contains("Kubernetes API hostname"), "{out}");
    assert!(out.contains("DNS provider (aws-route53 or blank for manual): "));
    assert!(out.contains("ACME account email (optional): "));
    assert_eq!(a.domain, "example.com");
    assert_eq!(a.dns_provider, "aws-route53");
    assert_eq!(a.acme_email, "ops@example.com");
    let v = json_of(&a);
    let c = &v["cluster"];
    assert_eq!(c["id"], "prod");
    assert_eq!(c["name"], "Prod");
    assert_eq!(
        c["oidc"],
        json!({"issuer_url": "https://login.example.org"})
    );
    assert_eq!(c["acme"], json!({"email": "ops@example.com"}));
    assert_eq!(
        c["domains"],
        json!([{"zone": "example.com", "provider": {"kind": "aws-route53"}}])
    );
    assert_eq!(
        c["registry"],
        json!({"hostname": "registry.example.com", "ingress": {}})
    );
    assert_eq!(
        c["pools"],
        json!({"control-plane": {"arch": "amd64", "instance_type": "m7i.large", "size": 1}})
    );
    let p = &c["providers"][0];
    assert_eq!(p["kind"], "aws");
    assert_eq!(p["region"], "us-west-2");
    assert_eq!(p["profile"], "podplane");
    assert!(p.get("account").is_none());
    assert!(p["zones"].get("us-west-2a").is_some(), "{p}");
    assert_eq!(
        p["load_balancers"],
        json!({"main": {"public": true, "subnets": "public", "listeners": [
            {"port": 443, "pool": "control-plane"},
            {"port": 6443, "pool": "control-plane"}
        ]}})
    );
    assert_eq!(
        c["kubernetes"],
        json!({
            "api_hostname": "k8s.example.com",
            "api_load_balancer": "main",
            "cluster_cidr": ["100.64.0.0/10"],
            "service_cidr": ["198.18.0.0/15"]
        })
    );
    assert_eq!(c["seed"], json!({}));
    assert_eq!(c["components"], json!({}));
    // Key order of the cluster object is the struct order.
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    let text = config_json(&pinned(&a)).unwrap();
    let mut last = 0;
    for k in [
        "\"id\"",
        "\"name\"",
        "\"oidc\"",
        "\"acme\"",
        "\"domains\"",
        "\"registry\"",
        "\"pools\"",
        "\"providers\"",
        "\"secrets\"",
        "\"kubernetes\"",
        "\"seed\"",
        "\"components\"",
    ] {
        let at = text.find(k).unwrap();
        assert!(at > last, "{k} out of order ({keys:?})");
        last = at;
    }
}

#[test]
fn domain_without_dns_provider_and_route53_without_email() {
    // Manual DNS: no provider, no ACME question, no acme.
    let (r, out) = wizard("\n\n\nexample.net\n\n\n\n\n\n\n\n\n", None);
    let a = r.unwrap();
    assert!(!out.contains("ACME"), "{out}");
    let v = json_of(&a);
    assert_eq!(v["cluster"]["domains"], json!([{"zone": "example.net"}]));
    assert!(v["cluster"].get("acme").is_none());
    assert_eq!(
        v["cluster"]["kubernetes"]["api_hostname"],
        "k8s.example.net"
    );

    // Route53 without an email: provider but no acme.
    let (r, _) = wizard("\n\n\nexample.net\naws-route53\n\n\n\n\n\n\n\n\n", None);
    let v = json_of(&r.unwrap());
    assert_eq!(
        v["cluster"]["domains"],
        json!([{"zone": "example.net", "provider": {"kind": "aws-route53"}}])
    );
    assert!(v["cluster"].get("acme").is_none());
}

#[test]
fn networking_answers() {
    // name, id, (issuer preset), domain, api host, region, profile, components, networking=yes,
    // vpc, zone, arch, type, size
    let input = "\n\n\napi.internal\neu-west-1\n\n\nYes\n10.42.0.0/16\neu-west-1c\n\n\n5\n";
    let (r, out) = wizard(input, Some("https://issuer.example.com"));
    assert!(!out.contains("OIDC issuer URL"), "{out}");
    assert!(out.contains("VPC IPv4 CIDR [172.18.0.0/16]: "), "{out}");
    // The zone default follows the answered region.
    assert!(
        out.contains("AWS availability zone [eu-west-1a]: "),
        "{out}"
    );
    let a = r.unwrap();
    assert!(a.networking);
    assert_eq!(a.issuer_url, "https://issuer.example.com");
    let v = json_of(&a);
    let p = &v["cluster"]["providers"][0];
    assert_eq!(
        p["vpc"],
        json!({"v4cidr": "10.42.0.0/16", "v6cidr": "auto"})
    );
    assert_eq!(
        p["zones"],
        json!({"eu-west-1c": [
            {"services": ["nat", "nlb"], "public": true, "v4cidr": "10.42.10.0/28", "v6cidr": "auto"},
            {"services": ["nstance"], "v4cidr": "10.42.20.0/28", "v6cidr": "auto"},
            {"pool": "control-plane", "v4cidr": "10.42.1.0/24", "v6cidr": "auto"}
        ]})
    );
    assert_eq!(v["cluster"]["pools"]["control-plane"]["size"], 5);

    // Networking defaults (just enter) and a local zone.
    let input = "\n\n\napi.internal\nus-west-2\n\n\ny\n\nus-west-2-lax-1a\n\n\n\n";
    let (r, _) = wizard(input, Some("https://issuer.example.com"));
    let v = json_of(&r.unwrap());
    let p = &v["cluster"]["providers"][0];
    assert_eq!(p["vpc"]["v4cidr"], "172.18.0.0/16");
    assert!(p["zones"].get("us-west-2-lax-1a").is_some(), "{p}");
}

#[test]
fn networking_skipped_ignores_zone_answer() {
    let a = Answers {
        api_hostname: "api.example.com".into(),
        region: "ap-southeast-2".into(),
        zone: "us-east-1a".into(),
        networking: false,
        ..Answers::default()
    };
    let v = json_of(&a);
    let zones = v["cluster"]["providers"][0]["zones"].as_object().unwrap();
    assert_eq!(zones.keys().collect::<Vec<_>>(), vec!["ap-southeast-2a"]);
}

#[test]
fn invalid_answers_are_asked_again() {
    let input = concat!(
        "\n",                // name
        "Bad_ID\n",          // id: bad
        "a--b\n",            // id: bad
        "local\n",           // id: reserved
        "good-id\n",         // id
        "\n",                // issuer (default)
        "Example.COM\n",     // domain: bad
        "10.0.0.1\n",        // domain: IP
        "example.com\n",     // domain
        "cloudflare\n",      // dns provider: unsupported
        "aws-route53\n",     // dns provider
        "Ops <ops@x.io>\n",  // email: not bare
        "ops@example.com\n", // email
        "useast1\n",         // region: bad
        "us-east-2\n",       // region
        "\n",                // profile
        "everything\n",      // components: unknown
        "none\n",            // components
        "maybe\n",           // networking: bad
        "y\n",               // networking
        "10.0.0.0/8\n",      // vpc: not /16
        "10.1.2.0/16\n",     // vpc: not canonical
        "fd00::/16\n",       // vpc: not IPv4
        "10.1.0.0/16\n",     // vpc
        "us-east-1a\n",      // zone outside us-east-2
        "us-east-2b\n",      // zone
        "s390x\n",           // arch: bad
        "amd64\n",           // arch
        "\n",                // instance type
        "0\n",               // size: too small
        "three\n",           // size: not a number
        "-2\n",              // size: too small
        "2\n",               // size
    );
    let (r, out) = wizard(input, None);
    let a = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    for expected in [
        "error: Cluster ID / slug: must be lowercase alphanumeric with hyphens, no leading/trailing hyphens\n",
        "error: Cluster ID / slug: must not contain consecutive hyphens\n",
        "error: Cluster ID / slug: \"local\" is reserved\n",
        "error: Cluster domain (optional): must be lowercase and must not end with a dot\n",
        "error: Cluster domain (optional): must be a DNS hostname, not an IP address\n",
        "error: DNS provider (aws-route53 or blank for manual): must be aws-route53 or blank for manual DNS\n",
        "error: ACME account email (optional): must be a valid email address such as ops@example.com\n",
        "error: AWS region: must be a valid AWS region such as us-east-1\n",
        "error: Initial platform components (recommended, minimal, none): must be recommended, minimal, or none\n",
        "error: Configure networking options?: must be yes or no\n",
        "error: VPC IPv4 CIDR: must be a canonical IPv4 /16 CIDR such as 172.18.0.0/16\n",
        "error: AWS availability zone: must be an availability zone in region us-east-2\n",
        "error: Control-plane architecture: must be amd64 or arm64\n",
        "error: Control-plane size: must be at least 1\n",
        "error: Control-plane size: must be a whole number\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert_eq!(out.matches("error: VPC IPv4 CIDR").count(), 3, "{out}");
    assert_eq!(out.matches("error: Control-plane size").count(), 3, "{out}");
    // The question is repeated after each error.
    assert_eq!(
        out.matches("Cluster ID / slug [example-cluster]: ").count(),
        4
    );
    assert_eq!(a.id, "good-id");
    assert_eq!(a.region, "us-east-2");
    assert_eq!(a.zone, "us-east-2b");
    assert_eq!(a.vpc_cidr, "10.1.0.0/16");
    assert_eq!(a.cp_arch, "amd64");
    assert_eq!(a.cp_size, 2);
    let v = json_of(&a);
    assert_eq!(v["cluster"]["acme"]["email"], "ops@example.com");
    assert!(
        v["cluster"]["providers"][0]["zones"]
            .get("us-east-2b")
            .is_some()
    );
}

#[test]
fn invalid_api_hostname_and_long_domain_are_rejected() {
    let long_label = "a".repeat(60);
    // 4 labels of 60 + dots = 243 chars: a valid DNS name, but registry.<it> is 252 — fine;
    // 4×61+3 = 247 → registry.<it> = 256, too long.
    let too_long = vec!["b".repeat(61); 4].join(".");
    assert!(config::check_dns_name(&too_long).is_ok());
    let ok = [
        long_label.clone(),
        long_label.clone(),
        long_label.clone(),
        long_label,
    ]
    .join(".");
    let input = format!("\n\n{too_long}\n{ok}\n\n\n\n\n\n\n\n\n");
    let (r, out) = wizard(&input, Some("https://i.example.com"));
    assert!(
        out.contains("error: Cluster domain (optional): must be at most 244 characters so that registry.<domain> is a valid hostname"),
        "{out}"
    );
    json_of(&r.unwrap());

    let (r, out) = wizard(
        "\n\n\n\n\nhttps://not-a-host\n1.2.3.4\nAPI.example.com\napi.example.com\n\n\n\n\n\n\n\n",
        Some("https://i.example.com"),
    );
    for e in [
        "error: Kubernetes API hostname: is required\n",
        "error: Kubernetes API hostname: must contain only DNS labels\n",
        "error: Kubernetes API hostname: must be a DNS hostname, not an IP address\n",
        "error: Kubernetes API hostname: must be lowercase and must not end with a dot\n",
    ] {
        assert!(out.contains(e), "missing {e:?} in:\n{out}");
    }
    json_of(&r.unwrap());
}

#[test]
fn end_of_input_cancels() {
    // EOF at every point of the wizard.
    let full = "\n\n\napi.example.com\n\n\n\n\n\n\n\n";
    let lines: Vec<&str> = full.split_inclusive('\n').collect();
    for n in 0..lines.len() {
        let input: String = lines[..n].concat();
        let (r, _) = wizard(&input, Some("https://i.example.com"));
        let e = r.unwrap_err();
        assert!(matches!(e, WizardError::Cancelled), "{n}: {e:?}");
        assert_eq!(e.to_string(), "cluster config creation cancelled");
    }
    // A partial last line without a newline is still an answer.
    let (r, _) = wizard(
        "\n\n\napi.example.com\n\n\n\n\n\n\n3",
        Some("https://i.example.com"),
    );
    assert_eq!(r.unwrap().cp_size, 3);
    // EOF while an invalid answer is being re-asked.
    let (r, out) = wizard("\nBad_ID\n", None);
    assert_eq!(
        r.unwrap_err().to_string(),
        "cluster config creation cancelled"
    );
    assert!(out.contains("error: Cluster ID / slug"));

    // EOF before the provider question and the issuer questions.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podplane.cluster.jsonc");
    for input in ["", "\n", "aws\nyes\n"] {
        let (r, _) = create(&path, input);
        assert_eq!(
            r.unwrap_err().to_string(),
            "cluster config creation cancelled",
            "{input:?}"
        );
    }
    assert!(!path.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn google_and_missing_issuer_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("podplane.cluster.jsonc");
    for input in ["google\n", "Google\n", "gcp\n"] {
        let (r, _) = create(&path, input);
        let e = r.unwrap_err();
        assert!(matches!(e, WizardError::GoogleUnsupported));
        assert_eq!(
            e.to_string(),
            "google cloud cluster creation is not supported yet"
        );
    }
    let (r, out) = create(&path, "azure\naws\nno\n");
    assert!(out.contains("error: Which cloud provider? (aws, google): must be aws or google"));
    assert_eq!(
        r.unwrap_err().to_string(),
        "cluster creation requires an OIDC issuer URL; provide an existing issuer or run podplane oidc create first"
    );
    let (r, out) = create(&path, "\nperhaps\nn\n");
    assert!(out.contains(
        "error: Do you already have an OIDC issuer for this cluster?: must be yes or no"
    ));
    assert!(matches!(r.unwrap_err(), WizardError::IssuerRequired));
    // The issuer URL is required (no default).
    let (r, out) = create(&path, "\ny\n\n");
    assert!(out.contains("error: OIDC issuer URL: is required"), "{out}");
    assert!(matches!(r.unwrap_err(), WizardError::Cancelled));
    assert!(!path.exists());
}

fn non_empty_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("README.md"), "hello\n").unwrap();
    dir
}

fn choose(config: &Path, cwd: &Path, input: &str) -> (Result<PathBuf, WizardError>, String) {
    let mut out = Vec::new();
    let r = choose_output_from(config, "my-cluster", cwd, &mut input.as_bytes(), &mut out);
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn output_dir_empty_or_missing_is_used_silently() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("podplane.cluster.jsonc");
    let (r, out) = choose(&config, Path::new("/nonexistent"), "");
    assert_eq!(r.unwrap(), config);
    assert_eq!(out, "");

    let config = dir.path().join("a/b/podplane.cluster.jsonc");
    let (r, out) = choose(&config, Path::new("/nonexistent"), "");
    assert_eq!(r.unwrap(), config);
    assert_eq!(out, "");
    assert!(dir.path().join("a/b").is_dir());
}

#[test]
fn output_dir_specify_default_and_relative() {
    let cwd = non_empty_dir();
    let config = cwd.path().join("podplane.cluster.jsonc");
    // Default directory = cluster id, relative to cwd.
    let (r, out) = choose(&config, cwd.path(), "\n\n");
    let expected_dir = cwd.path().join("my-cluster");
    assert_eq!(r.unwrap(), expected_dir.join("podplane.cluster.jsonc"));
    assert_eq!(
        out,
        format!(
            "Podplane will generate cluster files, but {} is not empty.\n  1) Specify a directory\n  2) Continue in this directory\n  3) Cancel\nChoose [1]: Directory [my-cluster]: ",
            cwd.path().display()
        )
    );
    assert!(expected_dir.is_dir());
    let mode = fs::metadata(&expected_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o022, 0o755 & !0o022, "{mode:o}");

    // A relative config path is resolved against cwd too; a nested relative answer.
    let (r, _) = choose(
        Path::new("podplane.cluster.jsonc"),
        cwd.path(),
        "1\nclusters/prod\n",
    );
    assert_eq!(
        r.unwrap(),
        cwd.path().join("clusters/prod/podplane.cluster.jsonc")
    );
}

#[test]
fn output_dir_check_is_repeated_then_continue() {
    let cwd = non_empty_dir();
    let other = non_empty_dir();
    let config = cwd.path().join("podplane.cluster.jsonc");
    let input = format!("specify\n{}\n2\n", other.path().display());
    let (r, out) = choose(&config, cwd.path(), &input);
    assert_eq!(r.unwrap(), other.path().join("podplane.cluster.jsonc"));
    assert!(out.contains(&format!(
        "Podplane will generate cluster files, but {} is not empty.",
        cwd.path().display()
    )));
    assert!(out.contains(&format!(
        "Podplane will generate cluster files, but {} is not empty.",
        other.path().display()
    )));
}

#[test]
fn output_dir_continue_and_cancel() {
    let cwd = non_empty_dir();
    let config = cwd.path().join("podplane.cluster.jsonc");
    let (r, _) = choose(&config, cwd.path(), "2\n");
    assert_eq!(r.unwrap(), config);

    let (r, out) = choose(&config, cwd.path(), "4\n3\n");
    assert!(out.contains("error: Choose: must be 1, 2 or 3"), "{out}");
    let e = r.unwrap_err();
    assert!(matches!(e, WizardError::OutputCancelled));
    assert_eq!(e.to_string(), "creation cancelled");

    // EOF in the menu or at the directory question cancels too.
    for input in ["", "1\n"] {
        let (r, _) = choose(&config, cwd.path(), input);
        assert_eq!(r.unwrap_err().to_string(), "creation cancelled");
    }

    // Continue is refused where a config of that name already exists.
    fs::write(&config, "{}").unwrap();
    let (r, out) = choose(&config, cwd.path(), "2\ncancel\n");
    assert!(
        out.contains(&format!(
            "{} already exists; specify another directory or cancel.",
            config.display()
        )),
        "{out}"
    );
    assert!(matches!(r.unwrap_err(), WizardError::OutputCancelled));
    assert_eq!(fs::read_to_string(&config).unwrap(), "{}");
}

#[test]
fn create_in_non_empty_dir_flows() {
    let cwd = non_empty_dir();
    let config = cwd.path().join("podplane.cluster.jsonc");
    let target = cwd.path().join("elsewhere");

    // Specify a directory (absolute answer).
    let input = format!("{DEFAULT_INPUT}1\n{}\n", target.display());
    let (r, out) = create(&config, &input);
    let written = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(written, target.join("podplane.cluster.jsonc"));
    assert_eq!(fs::read_to_string(&written).unwrap(), DEFAULT_CONFIG);
    assert!(out.ends_with(&format!("Created {}\n", written.display())));
    assert!(!config.exists());

    // Continue in this directory.
    let (r, _) = create(&config, &format!("{DEFAULT_INPUT}2\n"));
    assert_eq!(r.unwrap(), config);
    assert_eq!(fs::read_to_string(&config).unwrap(), DEFAULT_CONFIG);

    // Cancel writes nothing.
    let dir = non_empty_dir();
    let config = dir.path().join("podplane.cluster.jsonc");
    let (r, out) = create(&config, &format!("{DEFAULT_INPUT}3\n"));
    assert_eq!(r.unwrap_err().to_string(), "creation cancelled");
    assert!(!out.contains("Created"));
    assert!(!config.exists());
}

#[test]
fn choose_output_uses_the_process_cwd_for_absolute_paths_too() {
    // With an absolute config path the cwd does not matter.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("podplane.cluster.jsonc");
    let mut out = Vec::new();
    let r = choose_output(&config, "x", &mut &b""[..], &mut out).unwrap();
    assert_eq!(r, config);
}

#[test]
fn write_config_format() {
    let mut cfg = pinned(&Answers {
        api_hostname: "api.example.com".into(),
        ..Answers::default()
    });
    // `$schema` is added when absent and comes first.
    cfg.schema.clear();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/podplane.cluster.jsonc");
    write_config(&path, &cfg).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, DEFAULT_CONFIG);
    assert!(text.starts_with("{\n  \"$schema\": \"./podplane.cluster.schema.json\",\n"));
    assert!(text.ends_with("}\n") && !text.ends_with("}\n\n"));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Overwrite in place keeps the mode and leaves no temp files.
    write_config(&path, &cfg).unwrap();
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn seed_names_map_to_seed_name_only() {
    let a = Answers {
        api_hostname: "api.example.com".into(),
        components: "recommended".into(),
        ..Answers::default()
    };
    let cfg = config_from_answers(&a);
    assert_eq!(cfg.cluster.seed.name, "recommended");
    assert!(cfg.cluster.seed.version.is_empty() && cfg.cluster.seed.digest.is_empty());
    // Unusable until the command adds the digest — which is why the prompt does not offer it.
    assert_eq!(
        config::light_check(&cfg).unwrap_err().to_string(),
        "invalid cluster.seed: seed.digest is required"
    );
    for none in ["", "none"] {
        let cfg = config_from_answers(&Answers {
            components: none.into(),
            ..a.clone()
        });
        assert_eq!(cfg.cluster.seed, config::Seed::default());
    }
}

#[test]
fn many_accepted_answer_sets_are_usable() {
    let ids = ["a", "example-cluster", "x1-2-3", &"z".repeat(32)];
    let regions = ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-central-2"];
    let domains = ["", "example.com", "c.d.e.example.org", "single"];
    let dns = ["", "aws-route53"];
    let emails = ["", "a.b+c@example.com"];
    let mut n = 0;
    for (i, id) in ids.iter().enumerate() {
        for region in regions {
            for domain in domains {
                for provider in dns {
                    for email in emails {
                        for networking in [false, true] {
                            // Drive the prompts so only accepted sets are used.
                            let mut input = format!("Name {i}\n{id}\n{domain}\n");
                            if domain.is_empty() {
                                input.push_str("api.example.com\n");
                            } else {
                                input.push_str(&format!("{provider}\n"));
                                if provider == "aws-route53" {
                                    input.push_str(&format!("{email}\n"));
                                }
                            }
                            input.push_str(&format!("{region}\nprof\n\n"));
                            if networking {
                                input.push_str(&format!("yes\n10.{i}.0.0/16\n{region}-x-1a\n"));
                            } else {
                                input.push_str("no\n");
                            }
                            input.push_str("amd64\nc7i.large\n7\n");
                            let (r, out) = wizard(&input, Some("https://issuer.example.com"));
                            let a = r.unwrap_or_else(|e| panic!("{e}\n{input}\n{out}"));
                            assert!(!out.contains("error:"), "{out}");
                            assert_usable(&pinned(&a));
                            n += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(n, 4 * 4 * 4 * 2 * 2 * 2);
}

/// The wizard's configs go through Terraform generation (with the test fixtures' pinned
/// manifests); without an account the module names carry an empty segment.
#[test]
fn wizard_configs_generate_terraform() {
    use podplane::tfgen::PinnedManifest;
    use podplane::tfgen::cluster::{self, Options};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut manifests = Vec::new();
    for kind in ["knc", "knd"] {
        for arch in ["amd64", "arm64"] {
            let p = fixtures.join(format!(
                "deps/vmconfig/manifests/{}",
                PinnedManifest::file_name(kind, arch)
            ));
            manifests.push(PinnedManifest {
                kind: kind.into(),
                arch: arch.into(),
                json: fs::read(p).unwrap(),
            });
        }
    }
    let opts = Options {
        config_file_name: "podplane.cluster.jsonc".into(),
        deps_mirror_url: "https://deps.podplane.dev".into(),
        manifests,
    };
    let plain = Answers {
        api_hostname: "api.example.com".into(),
        ..Answers::default()
    };
    let with_domain = Answers {
        domain: "example.com".into(),
        dns_provider: "aws-route53".into(),
        acme_email: "ops@example.com".into(),
        cp_arch: "amd64".into(),
        ..Answers::default()
    };
    for a in [plain, with_domain] {
        let files = cluster::generate(&pinned(&a), &opts).unwrap();
        let all: String = files
            .iter()
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .collect();
        assert!(all.contains("account__us_east_1"), "{a:?}");
        assert!(!all.contains("allowed_account_ids"), "{a:?}");
    }
}
