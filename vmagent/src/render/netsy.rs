//! netsy (knc only): the etcd-compatible, bucket-backed datastore the API server talks to on
//! `127.0.0.1:2378`. Renders `/opt/netsy/etc/cluster.jsonc`, `/opt/env/netsy.env` (with the
//! provider's storage credentials), the run wrapper and `netsy.service`.
//!
//! knd has no netsy at all. On knc without `NETSY_BUCKET` only the unit is rendered (disabled)
//! and netsy's other files must not exist.

use super::template::fill;
use super::unit::{Sandbox, Unit};
use super::{Desired, Features, Inputs, RenderError, env_file, quoted};
use crate::contract::Kind;
use crate::contract::{DetectedKey as D, MutableKey as M, Provider, UserDataKey as U};
use crate::settings::{NodeSettings, or_empty};

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

    let s = &inp.settings;
    let why = "netsy (the control plane's datastore) needs it";
    let cluster = NodeSettings::required(s.cluster_id.as_deref(), U::ClusterId, why)?;
    let bucket = NodeSettings::required(s.netsy.bucket.as_deref(), M::NetsyBucket, why)?;
    let instance = NodeSettings::required(s.instance_id.as_ref(), U::InstanceId, why)?.as_str();
    let ipv4 = NodeSettings::required(s.ipv4.as_ref(), D::InstanceIpv4, why)?;
    let provider = s.provider;

    d.file(
        CONFIG,
        0o640,
        "root:netsy",
        // No setting carries a key prefix (none is in the contracts): objects go at the
        // bucket's root.
        cluster_json(cluster, provider, bucket, ""),
    );

    let advertise = |port: u16| format!("{ipv4}:{port}");
    let (client, peer, election) = (advertise(2378), advertise(2381), advertise(8443));
    let mut pairs: Vec<(&str, String)> = vec![
        ("INSTANCE_ID", instance.into()),
        ("INSTANCE_HOSTNAME", s.hostname.clone()),
        ("INSTANCE_IPV4", ipv4.to_string()),
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
        ("NETSY_REGION", s.netsy.region_or(&s.region).into()),
    ];
    match provider {
        Provider::Aws => {
            let account = NodeSettings::required(
                s.aws_account_id.as_deref(),
                U::AwsAccountId,
                "AWS nodes need it for netsy's bucket role",
            )?;
            let role = match &s.netsy.assume_role {
                None => format!("arn:aws:iam::{account}:role/podplane-{cluster}-netsy"),
                Some(r) => r.clone(),
            };
            pairs.push(("AWS_ROLE_ARN", role));
            pairs.push(("AWS_ROLE_SESSION_NAME", format!("{instance}-netsy")));
        }
        Provider::Local | Provider::Proxmox => {
            pairs.push(("AWS_ENDPOINT_URL", or_empty(&s.netsy.endpoint).into()));
            pairs.push(("AWS_ACCESS_KEY_ID", or_empty(&s.netsy.access_key_id).into()));
            pairs.push((
                "AWS_SECRET_ACCESS_KEY",
                or_empty(&s.netsy.secret_access_key).into(),
            ));
            pairs.push(("AWS_S3_USE_PATH_STYLE", "true".into()));
        }
        // Workload credentials come from the instance; nothing extra.
        Provider::Google => {}
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

/// cluster.jsonc, keys in netsy's documented order.
fn cluster_json(cluster: &str, provider: Provider, bucket: &str, key_prefix: &str) -> String {
    let storage = if provider == Provider::Google {
        "gcs"
    } else {
        "s3"
    };
    fill(
        include_str!("../../templates/netsy-cluster.jsonc"),
        &[
            ("CLUSTER_ID", &quoted(cluster)),
            ("STORAGE", storage),
            ("BUCKET_NAME", &quoted(bucket)),
            ("KEY_PREFIX", &quoted(key_prefix)),
        ],
    )
}

fn wrapper(exports: &[&str]) -> String {
    super::node::wrapper(
        "netsy",
        ENV,
        exports,
        fill(
            include_str!("../../templates/run-netsy.body.sh"),
            &[("AWS_VARS", &AWS_VARS.join(" "))],
        )
        .trim_end(),
    )
}

fn unit() -> String {
    Unit::new("netsy: the control plane's etcd-compatible datastore")
        .condition_paths(&CERTS)
        .set("Wants", "nstance-agent.service network-online.target")
        .set("After", "network-online.target")
        .set("StartLimitIntervalSec", "0")
        .section("Service")
        .set("Type", "exec")
        .set("User", "netsy")
        .set("ExecStart", RUN)
        .set("SyslogIdentifier", "netsy")
        .set("Restart", "always")
        .set("RestartSec", "5")
        // Writes only its data directory (the local copy of the datastore);
        // its ports (2378, 2381, 8443, 8080) are above 1024.
        .sandbox(&Sandbox {
            read_write_paths: &["/opt/data"],
            memory_deny_write_execute: true,
            ..Sandbox::default()
        })
        .wanted_by("multi-user.target")
}

#[cfg(test)]
#[path = "netsy/tests.rs"]
mod tests;
