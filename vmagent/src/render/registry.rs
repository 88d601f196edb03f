//! The cluster registry: zot on the node (bucket-backed, mTLS, only `containerd.client` may
//! read) and containerd's `certs.d/<REGISTRY_HOSTNAME>/hosts.toml`, which sends pulls of
//! `<REGISTRY_HOSTNAME>/…` to it.
//!
//! zot runs when the registry is enabled and has both a hostname and a bucket. Otherwise only
//! `zot.service` is rendered (disabled), zot's env, config and wrapper must not exist, and a known
//! hostname's hosts.toml is removed (upstream left it stale after disabling).

use super::{Desired, Features, Inputs, RenderError, env_file};
use crate::contract::Provider;

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
    let s = inp.settings;
    let hostname = s.get("REGISTRY_HOSTNAME");
    if !hostname.is_empty() {
        // Checked whenever set: it names a directory under /etc/containerd/certs.d.
        check_hostname(hostname)?;
    }
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
            let missing: Vec<&str> = ["REGISTRY_HOSTNAME", "REGISTRY_BUCKET"]
                .into_iter()
                .filter(|k| s.get(k).is_empty())
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

    let provider = s.get("PROVIDER_KIND");
    let bucket = s.get("REGISTRY_BUCKET");
    let region = s.get_or("REGISTRY_REGION", s.get("PROVIDER_REGION"));
    let mut endpoint = s.get("REGISTRY_ENDPOINT").to_string();
    let mut role = s.get("REGISTRY_ASSUME_ROLE").to_string();
    if provider == Provider::Aws.name() {
        let why = "AWS nodes need it for the registry's bucket";
        let account = s.require("AWS_ACCOUNT_ID", why)?;
        let cluster = s.require("CLUSTER_ID", why)?;
        if endpoint.is_empty() {
            endpoint = format!("s3.{}.amazonaws.com", s.get("PROVIDER_REGION"));
        }
        // Forced, as upstream does: the CLI's read-only role ARN is ignored.
        role = format!("arn:aws:iam::{account}:role/podplane-{cluster}-registry");
    }
    let path_style = match s.get("AWS_S3_USE_PATH_STYLE") {
        "" => None,
        _ => Some(s.bool("AWS_S3_USE_PATH_STYLE", false)?),
    };
    let listen = if s.get("INSTANCE_IPV6").is_empty() {
        "127.0.0.1"
    } else {
        "[::1]"
    };

    let pairs = [
        ("CLUSTER_ID", s.get("CLUSTER_ID")),
        ("INSTANCE_ID", s.get("INSTANCE_ID")),
        ("PROVIDER_KIND", provider),
        ("REGISTRY_ENABLED", "true"),
        ("REGISTRY_HOSTNAME", hostname),
        ("REGISTRY_BUCKET", bucket),
        ("REGISTRY_ENDPOINT", endpoint.as_str()),
        ("REGISTRY_REGION", region),
        ("REGISTRY_ASSUME_ROLE", role.as_str()),
        ("REGISTRY_ACCESS_KEY_ID", s.get("REGISTRY_ACCESS_KEY_ID")),
        (
            "REGISTRY_SECRET_ACCESS_KEY",
            s.get("REGISTRY_SECRET_ACCESS_KEY"),
        ),
        ("AWS_S3_USE_PATH_STYLE", s.get("AWS_S3_USE_PATH_STYLE")),
    ];
    // Holds the bucket's static keys.
    d.secret(ENV, 0o640, "root:zot", env_file(&pairs));
    d.file(RUN, 0o755, "root:root", wrapper());
    let driver = if provider == Provider::Google.name() {
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

/// `REGISTRY_HOSTNAME`: letters, digits, `.` and `-`, in non-empty dot-separated labels (so
/// never `.` or `..`, which would escape certs.d).
fn check_hostname(h: &str) -> Result<(), RenderError> {
    let chars_ok = h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !chars_ok || h.split('.').any(str::is_empty) {
        return Err(RenderError::Invalid(format!(
            "REGISTRY_HOSTNAME is {h:?}; it may only contain letters, digits, '.' and '-' (a host name such as registry.example.com)"
        )));
    }
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

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn zot_yml(driver: &Driver, listen: &str) -> String {
    let driver = match driver {
        Driver::Gcs { bucket } => format!("    name: gcs\n    bucket: {}\n", q(bucket)),
        Driver::S3 {
            bucket,
            region,
            endpoint,
            path_style,
        } => {
            let mut y = format!(
                "    name: s3\n    region: {}\n    bucket: {}\n    secure: {}\n    skipverify: false\n",
                q(region),
                q(bucket),
                !endpoint.starts_with("http://")
            );
            if let Some(p) = path_style {
                y.push_str(&format!("    forcepathstyle: {p}\n"));
            }
            if !endpoint.is_empty() {
                y.push_str(&format!("    regionendpoint: {}\n", q(endpoint)));
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
        q(listen)
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
    format!(
        "# Rendered by vmagent; changes are overwritten.
server = \"https://{hostname}\"

[host.\"{url}\"]
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
        &format!(
            "if [[ -z \"${{REGISTRY_BUCKET}}\" ]]; then
  echo \"[run-zot] REGISTRY_BUCKET is empty; not starting\" >&2
  exit 1
fi
for f in {SERVER_CRT} {SERVER_KEY} {CONFIG}; do
  if [[ ! -f \"$f\" ]]; then
    echo \"[run-zot] $f is missing; not starting\" >&2
    exit 1
  fi
done
if [[ -n \"${{REGISTRY_ASSUME_ROLE}}\" ]]; then
  export AWS_SDK_LOAD_CONFIG=1 AWS_ROLE_ARN=\"${{REGISTRY_ASSUME_ROLE}}\" AWS_ROLE_SESSION_NAME=\"${{INSTANCE_ID}}-zot\"
elif [[ -n \"${{REGISTRY_ACCESS_KEY_ID}}\" || -n \"${{REGISTRY_SECRET_ACCESS_KEY}}\" ]]; then
  export AWS_ACCESS_KEY_ID=\"${{REGISTRY_ACCESS_KEY_ID}}\" AWS_SECRET_ACCESS_KEY=\"${{REGISTRY_SECRET_ACCESS_KEY}}\"
fi
exec /usr/bin/zot serve {CONFIG}"
        ),
    )
}

fn unit() -> String {
    format!(
        "[Unit]\nDescription=zot: the cluster registry, served to containerd on this node\n{}\
         Requires=network-online.target\nAfter=network-online.target\nStartLimitIntervalSec=0\n\n\
         [Service]\nType=exec\nUser=zot\nExecStart={RUN}\nRestart=always\nRestartSec=5\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        super::node::conditions(&[SERVER_CRT, SERVER_KEY])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Kind;
    use crate::render::testutil::*;
    use crate::settings::Settings;

    const HOSTS: &str = "/etc/containerd/certs.d/registry.c1.example.com/hosts.toml";

    fn run(s: &Settings) -> Result<Desired, RenderError> {
        render_one(render, Kind::Knd, s)
    }

    fn env(d: &Desired) -> std::collections::BTreeMap<String, String> {
        env_of(d, ENV)
    }

    #[test]
    fn aws_forces_the_registry_role_and_listens_on_ipv6_loopback() {
        let mut s = settings(Kind::Knd, "aws");
        s.set(
            "REGISTRY_ASSUME_ROLE",
            "arn:aws:iam::123456789012:role/podplane-c1-registry-read-only",
        );
        let d = run(&s).unwrap();
        let e = env(&d);
        assert_eq!(
            e["REGISTRY_ASSUME_ROLE"],
            "arn:aws:iam::123456789012:role/podplane-c1-registry"
        );
        assert_eq!(e["REGISTRY_ENDPOINT"], "s3.eu-west-1.amazonaws.com");
        assert_eq!(e["REGISTRY_REGION"], "eu-west-1");
        assert_eq!(e.len(), 12);
        let f = &d.files[ENV];
        assert!(f.secret);
        assert_eq!(
            (f.mode, f.user.as_str(), f.group.as_str()),
            (0o640, "root", "zot")
        );

        // The test node has an IPv6 address.
        let y = text(&d, CONFIG);
        assert!(
            y.contains("  address: \"[::1]\"\n  port: \"5000\"\n"),
            "{y}"
        );
        assert!(y.contains("    name: s3\n    region: \"eu-west-1\"\n    bucket: \"c1-registry\"\n    secure: true\n"), "{y}");
        assert!(y.contains("regionendpoint: \"s3.eu-west-1.amazonaws.com\""));
        assert!(!y.contains("forcepathstyle"));
        assert!(y.contains("          - users:\n              - containerd.client\n            actions:\n              - read\n"));
        let c = &d.files[CONFIG];
        assert_eq!(
            (c.mode, c.user.as_str(), c.group.as_str()),
            (0o640, "root", "zot")
        );

        let h = text(&d, HOSTS);
        assert!(
            h.contains("server = \"https://registry.c1.example.com\""),
            "{h}"
        );
        assert!(h.contains("[host.\"https://[::1]:5000\"]"));
        assert!(h.contains("capabilities = [\"pull\", \"resolve\"]"));
        assert!(h.contains("ca = \"/opt/crt/ca.crt\""));
        assert!(h.contains(
            "client = [[\"/opt/crt/containerd.client.crt\", \"/opt/key/containerd/containerd.client.key\"]]"
        ));
        assert_eq!(d.files[HOSTS].mode, 0o644);
        assert_eq!(
            d.dirs["/etc/containerd/certs.d/registry.c1.example.com"],
            (0o755, "root".into(), "root".into())
        );

        let svc = &d.services[UNIT];
        assert!(svc.enabled);
        for p in [
            ENV,
            RUN,
            CONFIG,
            SERVER_CRT,
            SERVER_KEY,
            CA,
            "/etc/systemd/system/zot.service",
        ] {
            assert!(svc.inputs.contains(p), "{p}");
        }
        assert!(d.notes.is_empty() && d.absent.is_empty());
    }

    #[test]
    fn local_uses_settings_and_ipv4_loopback() {
        let mut s = settings(Kind::Knd, "local");
        s.set("REGISTRY_ENDPOINT", "http://10.0.2.2:9000");
        s.set("REGISTRY_ACCESS_KEY_ID", "AK");
        s.set("REGISTRY_SECRET_ACCESS_KEY", "SK");
        s.set("REGISTRY_ASSUME_ROLE", "");
        s.set("AWS_S3_USE_PATH_STYLE", "true");
        let d = run(&s).unwrap();
        let e = env(&d);
        assert_eq!(e["REGISTRY_ASSUME_ROLE"], "");
        assert_eq!(e["REGISTRY_ENDPOINT"], "http://10.0.2.2:9000");
        assert_eq!(e["REGISTRY_REGION"], "local");
        assert_eq!(e["AWS_S3_USE_PATH_STYLE"], "true");
        let y = text(&d, CONFIG);
        assert!(y.contains("  address: \"127.0.0.1\"\n"), "{y}");
        assert!(y.contains("    secure: false\n"));
        assert!(y.contains("    forcepathstyle: true\n"));
        assert!(y.contains("    regionendpoint: \"http://10.0.2.2:9000\"\n"));
        assert!(!y.contains("SK"));
        assert!(text(&d, HOSTS).contains("[host.\"https://127.0.0.1:5000\"]"));
        let w = text(&d, RUN);
        assert!(w.contains("AWS_ROLE_SESSION_NAME=\"${INSTANCE_ID}-zot\""));
        assert!(w.contains("export AWS_ACCESS_KEY_ID=\"${REGISTRY_ACCESS_KEY_ID}\""));
        assert!(w.ends_with("exec /usr/bin/zot serve /opt/zot/etc/zot.yml\n"));

        s.set("AWS_S3_USE_PATH_STYLE", "yes");
        let e = run(&s).unwrap_err().to_string();
        assert!(e.starts_with("AWS_S3_USE_PATH_STYLE is \"yes\""), "{e}");
    }

    #[test]
    fn hosts_toml_falls_back_to_the_registry_host_not_to_loopback() {
        for (provider, loopback) in [("aws", "[::1]"), ("local", "127.0.0.1")] {
            let d = run(&settings(Kind::Knd, provider)).unwrap();
            let h = text(&d, HOSTS);
            // The fallback is the registry host itself, exactly as containerd would pick it for
            // this namespace with no `server` line.
            let servers: Vec<&str> = h.lines().filter(|l| l.starts_with("server")).collect();
            assert_eq!(
                servers,
                ["server = \"https://registry.c1.example.com\""],
                "{provider}: {h}"
            );
            assert!(!h.contains("server = \"https://[::1]"), "{provider}: {h}");
            assert!(
                !h.contains("server = \"https://127.0.0.1"),
                "{provider}: {h}"
            );
            // The loopback zot stays the first (and only) mirror, with the client pair it needs.
            let host = format!("[host.\"https://{loopback}:5000\"]\n");
            let (_, table) = h.split_once(&host).unwrap_or_else(|| panic!("{host}: {h}"));
            assert!(table.contains("  client = [["), "{provider}: {h}");
            assert_eq!(h.matches("[host.").count(), 1, "{provider}: {h}");
        }
    }

    #[test]
    fn google_uses_gcs() {
        let mut s = settings(Kind::Knd, "local");
        s.set("PROVIDER_KIND", "google");
        let y = text(&run(&s).unwrap(), CONFIG);
        assert!(
            y.contains("  storageDriver:\n    name: gcs\n    bucket: \"c1-registry\"\nhttp:\n"),
            "{y}"
        );
    }

    #[test]
    fn bad_hostname_names_the_key() {
        for bad in [
            "registry.c1/x",
            "reg istry",
            "..",
            "a..b",
            ".registry",
            "registry:5000",
        ] {
            let mut s = settings(Kind::Knd, "local");
            s.set("REGISTRY_HOSTNAME", bad);
            let e = run(&s).unwrap_err().to_string();
            assert!(e.starts_with("REGISTRY_HOSTNAME is "), "{bad}: {e}");
        }
    }

    #[test]
    fn enabled_without_hostname_turns_zot_off_with_a_note() {
        let mut s = settings(Kind::Knd, "aws");
        s.set("REGISTRY_HOSTNAME", "");
        let d = run(&s).unwrap();
        assert!(!d.services[UNIT].enabled);
        assert_eq!(
            d.files.keys().collect::<Vec<_>>(),
            ["/etc/systemd/system/zot.service"]
        );
        for p in [ENV, RUN, CONFIG] {
            assert!(d.absent.contains(p), "{p}");
        }
        assert_eq!(d.absent.len(), 3);
        assert_eq!(d.notes.len(), 1);
        assert!(
            d.notes[0].contains("REGISTRY_HOSTNAME is empty"),
            "{:?}",
            d.notes
        );
        assert!(d.notes[0].contains("zot stays off"));

        s.set("REGISTRY_BUCKET", "");
        let d = run(&s).unwrap();
        assert!(
            d.notes[0].contains("REGISTRY_HOSTNAME and REGISTRY_BUCKET are empty"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn enabled_without_bucket_removes_the_hosts_toml() {
        let mut s = settings(Kind::Knd, "local");
        s.set("REGISTRY_BUCKET", "");
        let d = run(&s).unwrap();
        assert!(!d.services[UNIT].enabled);
        assert!(d.absent.contains(HOSTS));
        assert!(
            d.notes[0].contains("REGISTRY_BUCKET is empty"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn disabled_registry_removes_the_hosts_toml() {
        let mut s = settings(Kind::Knd, "local");
        s.set("REGISTRY_ENABLED", "false");
        let d = run(&s).unwrap();
        assert!(!d.services[UNIT].enabled);
        assert!(d.absent.contains(HOSTS));
        assert!(!d.files.contains_key(HOSTS));
        assert!(
            d.notes.is_empty(),
            "disabling on purpose is not worth a note"
        );
        let u = text(&d, "/etc/systemd/system/zot.service");
        for l in [
            "User=zot",
            "Type=exec",
            "ConditionPathExists=/opt/crt/registry.server.crt",
            "ConditionPathExists=/opt/key/registry/registry.server.key",
            "Requires=network-online.target",
            "After=network-online.target",
            "Restart=always",
            "RestartSec=5",
            "StartLimitIntervalSec=0",
            "ExecStart=/opt/zot/bin/run-zot.sh",
        ] {
            assert!(u.lines().any(|x| x == l), "{l}");
        }
    }
}
