use super::*;
use crate::render::testutil::*;
use crate::settings::Settings;
use serde_json::json;

fn run(kind: Kind, s: &Settings) -> Result<Desired, RenderError> {
    render_one(render, kind, s)
}

fn env(d: &Desired) -> std::collections::BTreeMap<String, String> {
    env_of(d, ENV)
}

#[test]
fn cluster_json_parses_with_the_exact_values_in_order() {
    let s = settings(Kind::Knc, "aws");
    let d = run(Kind::Knc, &s).unwrap();
    let raw = text(&d, CONFIG);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        v,
        json!({
            "cluster_id": "c1",
            "storage": {
                "provider": "s3",
                "bucket_name": "c1-netsy",
                "key_prefix": "",
                "class": "STANDARD",
                "encryption": "provider-managed"
            },
            "heartbeat_interval": "1s",
            "elector": {
                "degradation_count": 2,
                "deregistration_timeout": "3m",
                "primary_prior_timeout": "5s"
            },
            "replication": {
                "quorum": -1,
                "degradation_count": 2,
                "chunk_buffer": {"threshold_size_mb": 4, "threshold_age_minutes": 1}
            },
            "snapshot": {
                "threshold_records": 10000,
                "threshold_size_mb": 10000,
                "threshold_age_minutes": 0
            },
            "compaction_interval": "5m"
        })
    );
    // Field order as documented, not alphabetical.
    let pos = |k: &str| raw.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("cluster_id") < pos("storage") && pos("storage") < pos("heartbeat_interval"));
    assert!(pos("snapshot") < pos("compaction_interval"));
    let f = &d.files[CONFIG];
    assert_eq!(
        (f.mode, f.user.as_str(), f.group.as_str()),
        (0o640, "root", "netsy")
    );
}

#[test]
fn strings_are_json_escaped_and_google_uses_gcs() {
    let mut s = settings(Kind::Knc, "local");
    s.set("PROVIDER_KIND", "google");
    s.set("CLUSTER_ID", "c\"1\\x");
    let d = run(Kind::Knc, &s).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text(&d, CONFIG)).unwrap();
    assert_eq!(v["cluster_id"], "c\"1\\x");
    assert_eq!(v["storage"]["provider"], "gcs");
    // google: no provider extras.
    assert!(env(&d).keys().all(|k| !k.starts_with("AWS_")));
}

#[test]
fn aws_env_has_the_role_and_session() {
    let s = settings(Kind::Knc, "aws");
    let d = run(Kind::Knc, &s).unwrap();
    let e = env(&d);
    assert_eq!(
        e["AWS_ROLE_ARN"],
        "arn:aws:iam::123456789012:role/podplane-c1-netsy"
    );
    assert_eq!(e["AWS_ROLE_SESSION_NAME"], "i-0abc123-netsy");
    assert_eq!(e["NETSY_REGION"], "eu-west-1");
    assert_eq!(e["NETSY_NODE_ID"], "i-0abc123");
    assert_eq!(e["NETSY_ADVERTISE_CLIENT"], "10.0.1.23:2378");
    assert_eq!(e["NETSY_ADVERTISE_PEER"], "10.0.1.23:2381");
    assert_eq!(e["NETSY_ADVERTISE_ELECTION"], "10.0.1.23:8443");
    assert_eq!(e["NETSY_BIND_HEALTH"], "0.0.0.0:8080");
    assert_eq!(e["NETSY_CONFIG"], CONFIG);
    assert_eq!(e["NETSY_DEBUG"], "false");
    assert_eq!(e.len(), 22);
    assert!(!e.contains_key("AWS_ACCESS_KEY_ID"));
    let f = &d.files[ENV];
    assert!(f.secret);
    assert_eq!(
        (f.mode, f.user.as_str(), f.group.as_str()),
        (0o640, "root", "netsy")
    );

    // NETSY_ASSUME_ROLE is honoured (not forced).
    let mut s = s;
    s.set("NETSY_ASSUME_ROLE", "arn:aws:iam::123456789012:role/custom");
    assert_eq!(
        env(&run(Kind::Knc, &s).unwrap())["AWS_ROLE_ARN"],
        "arn:aws:iam::123456789012:role/custom"
    );
    s.set("AWS_ACCOUNT_ID", "");
    let e = run(Kind::Knc, &s).unwrap_err().to_string();
    assert!(e.starts_with("AWS_ACCOUNT_ID is empty"), "{e}");
}

#[test]
fn local_env_has_the_static_keys_and_path_style() {
    let mut s = settings(Kind::Knc, "local");
    s.set("NETSY_REGION", "us-east-1");
    let d = run(Kind::Knc, &s).unwrap();
    let e = env(&d);
    assert_eq!(e["AWS_ENDPOINT_URL"], "http://10.0.2.2:9000");
    assert_eq!(e["AWS_ACCESS_KEY_ID"], "AKLOCAL");
    assert_eq!(e["AWS_SECRET_ACCESS_KEY"], "local-secret");
    assert_eq!(e["AWS_S3_USE_PATH_STYLE"], "true");
    assert_eq!(e["NETSY_REGION"], "us-east-1");
    assert!(!e.contains_key("AWS_ROLE_ARN"));

    s.set("PROVIDER_KIND", "proxmox");
    assert_eq!(
        env(&run(Kind::Knc, &s).unwrap())["AWS_S3_USE_PATH_STYLE"],
        "true"
    );
}

#[test]
fn wrapper_exports_netsy_vars_and_only_set_aws_ones() {
    let s = settings(Kind::Knc, "local");
    let d = run(Kind::Knc, &s).unwrap();
    let w = text(&d, RUN);
    let export = w
        .lines()
        .find(|l| l.starts_with("export INSTANCE_ID"))
        .unwrap();
    for k in [
        "INSTANCE_HOSTNAME",
        "INSTANCE_IPV4",
        "NETSY_CONFIG",
        "NETSY_TLS_CLIENT_KEY",
        "NETSY_REGION",
    ] {
        assert!(export.split(' ').any(|x| x == k), "{k}");
    }
    assert!(!export.contains("AWS_"));
    assert!(w.contains("export AWS_DEFAULT_REGION=\"${NETSY_REGION}\""));
    assert!(w.contains("for v in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_S3_USE_PATH_STYLE AWS_ROLE_ARN AWS_ROLE_SESSION_NAME; do"));
    assert!(w.ends_with("exec /opt/netsy/bin/netsy\n"));
    assert_eq!(d.files[RUN].mode, 0o755);
}

#[test]
fn service_declares_its_inputs_and_conditions() {
    let s = settings(Kind::Knc, "aws");
    let d = run(Kind::Knc, &s).unwrap();
    let svc = &d.services[UNIT];
    assert!(svc.enabled);
    for p in [
        ENV,
        RUN,
        CONFIG,
        CA,
        SERVER_CRT,
        SERVER_KEY,
        CLIENT_CRT,
        CLIENT_KEY,
        "/etc/systemd/system/netsy.service",
    ] {
        assert!(svc.inputs.contains(p), "{p}");
    }
    let u = text(&d, "/etc/systemd/system/netsy.service");
    for l in [
        "User=netsy",
        "Type=exec",
        "Restart=always",
        "ExecStart=/opt/netsy/bin/run-netsy.sh",
        "ConditionPathExists=/opt/crt/ca.crt",
        "ConditionPathExists=/opt/key/netsy/netsy.client.key",
    ] {
        assert!(u.lines().any(|x| x == l), "{l}");
    }
    assert!(u.contains("Wants=nstance-agent.service"));
    assert!(!u.contains("first-boot-env"));
}

#[test]
fn knc_without_bucket_renders_only_the_disabled_unit() {
    let mut s = settings(Kind::Knc, "aws");
    s.set("NETSY_BUCKET", "");
    let d = run(Kind::Knc, &s).unwrap();
    assert_eq!(
        d.files.keys().collect::<Vec<_>>(),
        ["/etc/systemd/system/netsy.service"]
    );
    assert!(!d.services[UNIT].enabled);
    for p in [ENV, RUN, CONFIG] {
        assert!(d.absent.contains(p), "{p}");
    }
}

#[test]
fn knd_has_no_netsy() {
    let s = settings(Kind::Knd, "aws");
    let d = run(Kind::Knd, &s).unwrap();
    assert_eq!(d, Desired::default());
}

#[test]
fn required_settings_are_named() {
    for key in ["CLUSTER_ID", "INSTANCE_ID", "INSTANCE_IPV4"] {
        let mut s = settings(Kind::Knc, "local");
        s.set(key, "");
        let e = run(Kind::Knc, &s).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{key} is empty")), "{e}");
    }
}
