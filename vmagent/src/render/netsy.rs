//! netsy (knc only): the etcd-compatible, bucket-backed datastore the API server talks to on
//! `127.0.0.1:2378`. Renders `/opt/netsy/etc/cluster.jsonc`, `/opt/env/netsy.env` (with the
//! provider's storage credentials), the run wrapper and `netsy.service`.
//!
//! knd has no netsy at all. On knc without `NETSY_BUCKET` only the unit is rendered (disabled)
//! and netsy's other files must not exist.

use super::{Desired, Features, Inputs, RenderError, env_file};
use crate::accounts::Kind;
use crate::contract::Provider;

const ENV: &str = "/opt/env/netsy.env";
const RUN: &str = "/opt/netsy/bin/run-netsy.sh";
const CONFIG: &str = "/opt/netsy/etc/cluster.jsonc";
const UNIT: &str = "netsy.service";
const CA: &str = "/opt/crt/ca.crt";
const SERVER_CRT: &str = "/opt/crt/netsy.server.crt";
const SERVER_KEY: &str = "/opt/key/netsy/netsy.server.key";
const CLIENT_CRT: &str = "/opt/crt/netsy.client.crt";
const CLIENT_KEY: &str = "/opt/key/netsy/netsy.client.key";
const CERTS: [&str; 5] = [CA, SERVER_CRT, SERVER_KEY, CLIENT_CRT, CLIENT_KEY];

/// The provider-specific variables the wrapper exports when non-empty.
const AWS_VARS: [&str; 6] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_S3_USE_PATH_STYLE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
];

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    if inp.kind != Kind::Knc {
        return Ok(());
    }
    d.file(
        &format!("/etc/systemd/system/{UNIT}"),
        0o644,
        "root:root",
        unit(),
    );
    let mut inputs = vec![ENV, RUN, CONFIG];
    inputs.extend(CERTS);
    d.service(UNIT, f.netsy, &inputs);
    if !f.netsy {
        for path in [ENV, RUN, CONFIG] {
            d.absent.insert(path.to_string());
        }
        return Ok(());
    }

    let s = inp.settings;
    let why = "netsy (the control plane's datastore) needs it";
    let cluster = s.require("CLUSTER_ID", why)?;
    let bucket = s.require("NETSY_BUCKET", why)?;
    let instance = s.require("INSTANCE_ID", why)?;
    let ipv4 = s.require("INSTANCE_IPV4", why)?;
    let provider = s.get("PROVIDER_KIND");

    d.file(
        CONFIG,
        0o640,
        "root:netsy",
        cluster_json(cluster, provider, bucket, s.get("NETSY_KEY_PREFIX")),
    );

    let advertise = |port: u16| format!("{ipv4}:{port}");
    let (client, peer, election) = (advertise(2378), advertise(2381), advertise(8443));
    let mut pairs: Vec<(&str, String)> = vec![
        ("INSTANCE_ID", instance.into()),
        ("INSTANCE_HOSTNAME", s.get("INSTANCE_HOSTNAME").into()),
        ("INSTANCE_IPV4", ipv4.into()),
        ("NETSY_CONFIG", CONFIG.into()),
        ("NETSY_NODE_ID", instance.into()),
        ("NETSY_BIND_CLIENT", "0.0.0.0:2378".into()),
        ("NETSY_ADVERTISE_CLIENT", client),
        ("NETSY_BIND_PEER", "0.0.0.0:2381".into()),
        ("NETSY_ADVERTISE_PEER", peer),
        ("NETSY_BIND_ELECTION", "0.0.0.0:8443".into()),
        ("NETSY_ADVERTISE_ELECTION", election),
        ("NETSY_BIND_HEALTH", "0.0.0.0:8080".into()),
        ("NETSY_TLS_CA_CERT", CA.into()),
        ("NETSY_TLS_SERVER_CERT", SERVER_CRT.into()),
        ("NETSY_TLS_SERVER_KEY", SERVER_KEY.into()),
        ("NETSY_TLS_CLIENT_CERT", CLIENT_CRT.into()),
        ("NETSY_TLS_CLIENT_KEY", CLIENT_KEY.into()),
        ("NETSY_DATA_DIR", "/opt/data".into()),
        ("NETSY_DEBUG", "false".into()),
        (
            "NETSY_REGION",
            s.get_or("NETSY_REGION", s.get("PROVIDER_REGION")).into(),
        ),
    ];
    match Provider::parse(provider) {
        Some(Provider::Aws) => {
            let account = s.require(
                "AWS_ACCOUNT_ID",
                "AWS nodes need it for netsy's bucket role",
            )?;
            let role = match s.get("NETSY_ASSUME_ROLE") {
                "" => format!("arn:aws:iam::{account}:role/podplane-{cluster}-netsy"),
                r => r.to_string(),
            };
            pairs.push(("AWS_ROLE_ARN", role));
            pairs.push(("AWS_ROLE_SESSION_NAME", format!("{instance}-netsy")));
        }
        Some(Provider::Local | Provider::Proxmox) => {
            pairs.push(("AWS_ENDPOINT_URL", s.get("NETSY_ENDPOINT").into()));
            pairs.push(("AWS_ACCESS_KEY_ID", s.get("NETSY_ACCESS_KEY_ID").into()));
            pairs.push((
                "AWS_SECRET_ACCESS_KEY",
                s.get("NETSY_SECRET_ACCESS_KEY").into(),
            ));
            pairs.push(("AWS_S3_USE_PATH_STYLE", "true".into()));
        }
        // google: workload credentials come from the instance; nothing extra.
        _ => {}
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Holds the bucket's static keys on local/proxmox.
    d.secret(ENV, 0o640, "root:netsy", env_file(&borrowed));

    let exports: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !k.starts_with("AWS_"))
        .collect();
    d.file(RUN, 0o755, "root:root", wrapper(&exports));
    Ok(())
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// cluster.jsonc, keys in netsy's documented order.
fn cluster_json(cluster: &str, provider: &str, bucket: &str, key_prefix: &str) -> String {
    let storage = if provider == Provider::Google.name() {
        "gcs"
    } else {
        "s3"
    };
    format!(
        r#"{{
  "cluster_id": {},
  "storage": {{
    "provider": "{storage}",
    "bucket_name": {},
    "key_prefix": {},
    "class": "STANDARD",
    "encryption": "provider-managed"
  }},
  "heartbeat_interval": "1s",
  "elector": {{
    "degradation_count": 2,
    "deregistration_timeout": "3m",
    "primary_prior_timeout": "5s"
  }},
  "replication": {{
    "quorum": -1,
    "degradation_count": 2,
    "chunk_buffer": {{
      "threshold_size_mb": 4,
      "threshold_age_minutes": 1
    }}
  }},
  "snapshot": {{
    "threshold_records": 10000,
    "threshold_size_mb": 10000,
    "threshold_age_minutes": 0
  }},
  "compaction_interval": "5m"
}}
"#,
        js(cluster),
        js(bucket),
        js(key_prefix)
    )
}

fn wrapper(exports: &[&str]) -> String {
    super::node::wrapper(
        "netsy",
        ENV,
        exports,
        &format!(
            "if [[ -n \"${{NETSY_REGION}}\" ]]; then
  export AWS_DEFAULT_REGION=\"${{NETSY_REGION}}\"
fi
for v in {}; do
  if [[ -n \"${{!v:-}}\" ]]; then
    export \"${{v}}\"
  fi
done
exec /opt/netsy/bin/netsy",
            AWS_VARS.join(" ")
        ),
    )
}

fn unit() -> String {
    format!(
        "[Unit]\nDescription=netsy: the control plane's etcd-compatible datastore\n{}\
         Wants=nstance-agent.service network-online.target\nAfter=network-online.target\nStartLimitIntervalSec=0\n\n\
         [Service]\nType=exec\nUser=netsy\nExecStart={RUN}\nRestart=always\nRestartSec=5\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        super::node::conditions(&CERTS)
    )
}

#[cfg(test)]
mod tests {
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
}
