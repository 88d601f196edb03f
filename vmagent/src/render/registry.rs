//! The cluster registry: zot on the node (bucket-backed, mTLS, only `containerd.client` may
//! read) and containerd's `certs.d/<REGISTRY_HOSTNAME>/hosts.toml`, which sends pulls of
//! `<REGISTRY_HOSTNAME>/…` to it.
//!
//! zot runs when the registry is enabled and has both a hostname and a bucket. Otherwise only
//! `zot.service` is rendered (disabled), zot's env, config and wrapper must not exist, and a known
//! hostname's hosts.toml is removed (upstream left it stale after disabling).

use super::template::fill;
use super::unit::{Sandbox, Unit};
use super::{Desired, Features, Inputs, RenderError, env_file, quoted};
use crate::contract::{MutableKey as M, Provider, UserDataKey as U};
use crate::settings::{NodeSettings, or_empty};

const ENV: &str = "/opt/env/zot.env";
const RUN: &str = "/opt/zot/bin/run-zot.sh";
const CONFIG: &str = "/opt/zot/etc/zot.yml";
const UNIT: &str = "zot.service";
const CA: &str = "/opt/crt/ca.crt";
const SERVER_CRT: &str = "/opt/crt/registry.server.crt";
const SERVER_KEY: &str = "/opt/key/registry/registry.server.key";
const PORT: u16 = 5000;

/// containerd's hosts.toml for a registry hostname.
pub fn hosts_toml_path(hostname: &str) -> String {
    format!("/etc/containerd/certs.d/{hostname}/hosts.toml")
}

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    let s = &inp.settings;
    // A checked DNS name (it names a directory under /etc/containerd/certs.d, so never `.` or
    // `..`), or "" when unset.
    let hostname = s.registry.hostname.as_ref().map_or("", |h| h.as_str());
    d.file(
        &format!("/etc/systemd/system/{UNIT}"),
        0o644,
        "root:root",
        unit(),
    );
    d.service(UNIT, f.zot, &[ENV, RUN, CONFIG, SERVER_CRT, SERVER_KEY, CA]);
    if !f.zot {
        for path in [ENV, RUN, CONFIG] {
            d.absent.insert(path.to_string());
        }
        if !hostname.is_empty() {
            d.absent.insert(hosts_toml_path(hostname));
        }
        if f.registry {
            let missing: Vec<&str> = [
                (M::RegistryHostname, hostname.is_empty()),
                (M::RegistryBucket, s.registry.bucket.bucket.is_none()),
            ]
            .into_iter()
            .filter(|(_, empty)| *empty)
            .map(|(k, _)| k.name())
            .collect();
            d.notes.push(format!(
                "the registry is enabled but {} empty: zot stays off and containerd's sandbox image is not mirrored by the local registry",
                match missing.as_slice() {
                    [one] => format!("{one} is"),
                    _ => missing.join(" and ") + " are",
                }
            ));
        }
        return Ok(());
    }

    let provider = s.provider;
    let b = &s.registry.bucket;
    let bucket = or_empty(&b.bucket);
    let region = b.region_or(&s.region);
    let mut endpoint = or_empty(&b.endpoint).to_string();
    let mut role = or_empty(&b.assume_role).to_string();
    if provider == Provider::Aws {
        let why = "AWS nodes need it for the registry's bucket";
        let account = NodeSettings::required(s.aws_account_id.as_deref(), U::AwsAccountId, why)?;
        let cluster = NodeSettings::required(s.cluster_id.as_deref(), U::ClusterId, why)?;
        if endpoint.is_empty() {
            endpoint = format!("s3.{}.amazonaws.com", s.region);
        }
        // Forced, as upstream does: the CLI's read-only role ARN is ignored.
        role = format!("arn:aws:iam::{account}:role/podplane-{cluster}-registry");
    }
    let path_style = s.aws_s3_use_path_style;
    let path_style_text = path_style.map(|p| p.to_string()).unwrap_or_default();
    let listen = if s.ipv6.is_none() {
        "127.0.0.1"
    } else {
        "[::1]"
    };

    let pairs = [
        ("CLUSTER_ID", s.cluster_id_text()),
        ("INSTANCE_ID", s.instance_id_text()),
        ("PROVIDER_KIND", provider.name()),
        ("REGISTRY_ENABLED", "true"),
        ("REGISTRY_HOSTNAME", hostname),
        ("REGISTRY_BUCKET", bucket),
        ("REGISTRY_ENDPOINT", endpoint.as_str()),
        ("REGISTRY_REGION", region),
        ("REGISTRY_ASSUME_ROLE", role.as_str()),
        ("REGISTRY_ACCESS_KEY_ID", or_empty(&b.access_key_id)),
        ("REGISTRY_SECRET_ACCESS_KEY", or_empty(&b.secret_access_key)),
        ("AWS_S3_USE_PATH_STYLE", &path_style_text),
    ];
    // Holds the bucket's static keys.
    d.secret(ENV, 0o640, "root:zot", env_file(&pairs));
    d.file(RUN, 0o755, "root:root", wrapper());
    let driver = if provider == Provider::Google {
        Driver::Gcs { bucket }
    } else {
        Driver::S3 {
            bucket,
            region,
            endpoint: &endpoint,
            path_style,
        }
    };
    d.file(CONFIG, 0o640, "root:zot", zot_yml(&driver, listen));
    d.dirs.insert(
        format!("/etc/containerd/certs.d/{hostname}"),
        (0o755, "root".into(), "root".into()),
    );
    d.file(
        &hosts_toml_path(hostname),
        0o644,
        "root:root",
        hosts_toml(hostname, listen),
    );
    Ok(())
}

enum Driver<'a> {
    Gcs {
        bucket: &'a str,
    },
    S3 {
        bucket: &'a str,
        region: &'a str,
        endpoint: &'a str,
        path_style: Option<bool>,
    },
}

fn zot_yml(driver: &Driver, listen: &str) -> String {
    let driver = match driver {
        Driver::Gcs { bucket } => format!("    name: gcs\n    bucket: {}\n", quoted(bucket)),
        Driver::S3 {
            bucket,
            region,
            endpoint,
            path_style,
        } => {
            let mut y = format!(
                "    name: s3\n    region: {}\n    bucket: {}\n    secure: {}\n    skipverify: false\n",
                quoted(region),
                quoted(bucket),
                !endpoint.starts_with("http://")
            );
            if let Some(p) = path_style {
                y.push_str(&format!("    forcepathstyle: {p}\n"));
            }
            if !endpoint.is_empty() {
                y.push_str(&format!("    regionendpoint: {}\n", quoted(endpoint)));
            }
            y
        }
    };
    format!(
        "# Rendered by vmagent; changes are overwritten.
distSpecVersion: \"1.1.0\"
storage:
  rootDirectory: /opt/zot/storage
  dedupe: false
  storageDriver:
{driver}http:
  address: {}
  port: \"{PORT}\"
  tls:
    cert: {SERVER_CRT}
    key: {SERVER_KEY}
    cacert: {CA}
  auth:
    mtls:
      identityAttributes:
        - CommonName
  accessControl:
    repositories:
      \"**\":
        policies:
          - users:
              - containerd.client
            actions:
              - read
log:
  level: info
",
        quoted(listen)
    )
}

/// containerd tries the `[host]` entries in order and falls back to `server`. The only host is
/// this node's zot on loopback, reached with containerd's client pair (zot requires mTLS). The
/// fallback is the registry host itself, `https://<REGISTRY_HOSTNAME>` (the name never carries a
/// port, so https's default applies): the server containerd uses for this namespace when the
/// file has no `server` line, as upstream's had none. It must not be the loopback zot again: the
/// top-level `server` has no client certificate, so every request there would fail.
fn hosts_toml(hostname: &str, listen: &str) -> String {
    let url = format!("https://{listen}:{PORT}");
    let server = quoted(&format!("https://{hostname}"));
    let url = quoted(&url);
    format!(
        "# Rendered by vmagent; changes are overwritten.
server = {server}

[host.{url}]
  capabilities = [\"pull\", \"resolve\"]
  ca = \"{CA}\"
  client = [[\"/opt/crt/containerd.client.crt\", \"/opt/key/containerd/containerd.client.key\"]]
"
    )
}

fn wrapper() -> String {
    super::node::wrapper(
        "zot",
        ENV,
        &[],
        fill(
            include_str!("../../templates/run-zot.body.sh"),
            &[
                ("SERVER_CRT", SERVER_CRT),
                ("SERVER_KEY", SERVER_KEY),
                ("CONFIG", CONFIG),
            ],
        )
        .trim_end(),
    )
}

fn unit() -> String {
    Unit::new("zot: the cluster registry, served to containerd on this node")
        .condition_paths(&[SERVER_CRT, SERVER_KEY])
        .set("Wants", "network-online.target")
        .set("After", "network-online.target")
        .set("StartLimitIntervalSec", "0")
        .section("Service")
        .set("Type", "exec")
        .set("User", "zot")
        .set("ExecStart", RUN)
        .set("SyslogIdentifier", "zot")
        .set("Restart", "always")
        .set("RestartSec", "5")
        // Writes only its storage root (blobs live in the bucket; this is its local cache and
        // index); listens on 5000.
        .sandbox(&Sandbox {
            read_write_paths: &["/opt/zot/storage"],
            memory_deny_write_execute: true,
            ..Sandbox::default()
        })
        .wanted_by("multi-user.target")
}

#[cfg(test)]
#[path = "registry/tests.rs"]
mod tests;
