//! fluent-bit: ships the node's journal (an allow-list of units) and cloud-init's log to S3
//! and/or an OTLP/HTTP collector; with neither configured, a local buffer output keeps logs
//! queued on disk until a destination is delivered.
//!
//! Renders `/opt/env/fluent-bit.env`, `/opt/fluent-bit/etc/fluent-bit.yml` (generated here, not
//! from a template), the run wrapper and `fluent-bit.service`. With telemetry off only the unit
//! is rendered (disabled) and the other files must not exist.

use super::{Desired, Features, Inputs, RenderError, env_file};
use crate::contract::Provider;

const ENV: &str = "/opt/env/fluent-bit.env";
const RUN: &str = "/opt/fluent-bit/bin/run-fluent-bit.sh";
const CONFIG: &str = "/opt/fluent-bit/etc/fluent-bit.yml";
const UNIT: &str = "fluent-bit.service";

/// Where OTLP logs go, parsed from `TELEMETRY_OTLP_ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// Host name or IP address; an IPv6 literal is given without its brackets (fluent-bit
    /// resolves the host with getaddrinfo, which wants the bare address).
    pub host: String,
    pub port: u16,
    /// The request path, e.g. `/v1/logs`.
    pub logs_uri: String,
    pub tls: bool,
}

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    d.file(
        &format!("/etc/systemd/system/{UNIT}"),
        0o644,
        "root:root",
        unit(),
    );
    d.service(UNIT, f.fluent_bit, &[ENV, RUN, CONFIG]);
    if !f.fluent_bit {
        for path in [ENV, RUN, CONFIG] {
            d.absent.insert(path.to_string());
        }
        return Ok(());
    }

    let s = inp.settings;
    let services = log_services(s.get("TELEMETRY_LOG_SERVICES"))?;
    let cloudinit = s.bool("TELEMETRY_LOG_CLOUDINIT", true)?;
    if services.is_empty() && !cloudinit {
        return Err(RenderError::Invalid(
            "TELEMETRY_ENABLED is true but there is nothing to collect: TELEMETRY_LOG_SERVICES is empty and TELEMETRY_LOG_CLOUDINIT is false".into(),
        ));
    }

    let bucket = s.get("TELEMETRY_S3_BUCKET");
    let region = s.get_or("TELEMETRY_S3_REGION", s.get("PROVIDER_REGION"));
    let mut endpoint = s.get("TELEMETRY_S3_ENDPOINT").to_string();
    let mut role = s.get("TELEMETRY_S3_ASSUME_ROLE").to_string();
    if s.get("PROVIDER_KIND") == Provider::Aws.name() && !bucket.is_empty() {
        let why = "AWS nodes need it to upload telemetry to S3";
        let account = s.require("AWS_ACCOUNT_ID", why)?;
        let cluster = s.require("CLUSTER_ID", why)?;
        if endpoint.is_empty() {
            endpoint = format!("s3.{}.amazonaws.com", s.get("PROVIDER_REGION"));
        }
        // Forced: the mutable value is ignored, as upstream does.
        role = format!("arn:aws:iam::{account}:role/podplane-{cluster}-telemetry-upload");
    }

    let otlp_endpoint = s.get("TELEMETRY_OTLP_ENDPOINT");
    let otlp = if otlp_endpoint.is_empty() {
        None
    } else {
        Some(parse_otlp(otlp_endpoint)?)
    };
    let port = otlp
        .as_ref()
        .map(|o| o.port.to_string())
        .unwrap_or_default();
    let (host, uri, tls) = match &otlp {
        Some(o) => (
            o.host.as_str(),
            o.logs_uri.as_str(),
            if o.tls { "on" } else { "off" },
        ),
        None => ("", "", ""),
    };
    let services_list = services.join(",");
    let pairs = [
        ("CLUSTER_ID", s.get("CLUSTER_ID")),
        ("INSTANCE_ID", s.get("INSTANCE_ID")),
        ("TELEMETRY_ENABLED", "true"),
        ("TELEMETRY_LOG_SERVICES", services_list.as_str()),
        (
            "TELEMETRY_LOG_CLOUDINIT",
            if cloudinit { "true" } else { "false" },
        ),
        ("TELEMETRY_S3_BUCKET", bucket),
        ("TELEMETRY_S3_ENDPOINT", endpoint.as_str()),
        ("TELEMETRY_S3_REGION", region),
        ("TELEMETRY_S3_ASSUME_ROLE", role.as_str()),
        (
            "TELEMETRY_S3_ACCESS_KEY_ID",
            s.get("TELEMETRY_S3_ACCESS_KEY_ID"),
        ),
        (
            "TELEMETRY_S3_SECRET_ACCESS_KEY",
            s.get("TELEMETRY_S3_SECRET_ACCESS_KEY"),
        ),
        ("TELEMETRY_OTLP_ENDPOINT", otlp_endpoint),
        ("TELEMETRY_OTLP_HOST", host),
        ("TELEMETRY_OTLP_PORT", port.as_str()),
        ("TELEMETRY_OTLP_LOGS_URI", uri),
        ("TELEMETRY_OTLP_TLS", tls),
    ];
    // Holds the S3 static keys.
    d.secret(ENV, 0o640, "root:fluent-bit", env_file(&pairs));
    d.file(RUN, 0o755, "root:root", wrapper());

    let s3 = (!bucket.is_empty()).then_some(S3 {
        bucket,
        region,
        endpoint: &endpoint,
        role: &role,
    });
    if s3.is_none() && otlp.is_none() {
        d.notes.push(
            "telemetry is enabled but has no destination yet (TELEMETRY_S3_BUCKET and TELEMETRY_OTLP_ENDPOINT are empty): fluent-bit buffers logs locally (up to 200M) until one is delivered"
                .into(),
        );
    }
    d.file(
        CONFIG,
        0o600,
        "fluent-bit:fluent-bit",
        config(&services, cloudinit, s3.as_ref(), otlp.as_ref()),
    );
    Ok(())
}

/// `TELEMETRY_LOG_SERVICES`: whitespace removed, empty entries and repeats dropped, each a
/// unit name without `.service`.
fn log_services(raw: &str) -> Result<Vec<String>, RenderError> {
    let cleaned: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out: Vec<String> = Vec::new();
    for svc in cleaned.split(',').filter(|s| !s.is_empty()) {
        let valid = svc.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
        });
        if !valid {
            return Err(RenderError::Invalid(format!(
                "TELEMETRY_LOG_SERVICES has {svc:?}; each entry must be a unit name without .service, matching ^[a-z0-9][a-z0-9._-]*$"
            )));
        }
        if !out.iter().any(|o| o == svc) {
            out.push(svc.to_string());
        }
    }
    Ok(out)
}

/// Parse `TELEMETRY_OTLP_ENDPOINT`: `http://` or `https://`, a host name, IPv4 address or
/// bracketed IPv6 literal, an optional port (default 80 / 443) and an optional path (default
/// `/v1/logs`; a query string is kept, a fragment dropped). Credentials in the URL are refused.
pub fn parse_otlp(endpoint: &str) -> Result<Otlp, RenderError> {
    let bad =
        |why: &str| RenderError::Invalid(format!("TELEMETRY_OTLP_ENDPOINT is {endpoint:?}; {why}"));
    let lower = endpoint.to_ascii_lowercase();
    let (rest, tls) = if lower.starts_with("https://") {
        (&endpoint["https://".len()..], true)
    } else if lower.starts_with("http://") {
        (&endpoint["http://".len()..], false)
    } else {
        return Err(bad("it must start with http:// or https://"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let Some((inside, tail)) = after.split_once(']') else {
            return Err(bad("an IPv6 address needs a closing ]"));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the bracketed host is not an IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(bad("only :<port> may follow the IPv6 address")),
            },
        };
        (inside, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => {
                if p.contains(':') {
                    return Err(bad(
                        "an IPv6 address must be written in brackets, e.g. https://[fd00::1]:4318",
                    ));
                }
                (h, Some(p))
            }
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let name_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !name_ok {
        return Err(bad(
            "the host may only contain letters, digits, '.', '-' and '_'",
        ));
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    let logs_uri = match path {
        "" | "/" => "/v1/logs".to_string(),
        p if p.starts_with('?') => format!("/v1/logs{p}"),
        p => p.to_string(),
    };
    if logs_uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("the path may not contain whitespace"));
    }
    Ok(Otlp {
        host: host.to_string(),
        port,
        logs_uri,
        tls,
    })
}

struct S3<'a> {
    bucket: &'a str,
    region: &'a str,
    endpoint: &'a str,
    role: &'a str,
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn config(services: &[String], cloudinit: bool, s3: Option<&S3>, otlp: Option<&Otlp>) -> String {
    let mut y = String::from(
        "# Rendered by vmagent; changes are overwritten.
service:
  flush: 1
  daemon: off
  log_level: info
  http_server: off
  storage.path: /var/lib/fluent-bit/storage
  storage.sync: full
  storage.checksum: on
  storage.backlog.mem_limit: 64M
  storage.metrics: off

pipeline:
  inputs:
",
    );
    // Each input keeps its read position (journal cursor, file offset) in a small SQLite DB.
    // `db.sync: full` makes every position update durable before fluent-bit moves on, so a crash
    // or power loss can neither roll a position back (replaying logs already shipped) nor leave
    // the DB corrupt (losing the positions altogether).
    if !services.is_empty() {
        y.push_str(
            "    - name: systemd
      tag: systemd.*
      db: /var/lib/fluent-bit/systemd.db
      db.sync: full
      storage.type: filesystem
      read_from_tail: off
      systemd_filter:
",
        );
        for svc in services {
            y.push_str(&format!(
                "        - {}\n",
                q(&format!("_SYSTEMD_UNIT={svc}.service"))
            ));
        }
    }
    if cloudinit {
        y.push_str(
            "    - name: tail
      tag: cloudinit.*
      path: /var/log/cloud-init.log
      db: /var/lib/fluent-bit/cloud-init.db
      db.sync: full
      storage.type: filesystem
      read_from_head: true
      refresh_interval: 30
",
        );
    }
    y.push_str("  filters:\n");
    if !services.is_empty() {
        y.push_str(
            "    - name: modify
      match: systemd.*
      rename:
        - _HOSTNAME host.name
        - MESSAGE body
        - SYSLOG_IDENTIFIER log.source
      add:
        - log.format otlp
",
        );
    }
    if cloudinit {
        y.push_str(
            "    - name: modify
      match: cloudinit.*
      rename:
        - log body
      add:
        - log.source cloud-init
        - log.format otlp
",
        );
    }
    y.push_str("  outputs:\n");
    if let Some(s3) = s3 {
        y.push_str(&format!(
            "    - name: s3\n      match: '*'\n      bucket: {}\n      region: {}\n",
            q(s3.bucket),
            q(s3.region)
        ));
        if !s3.endpoint.is_empty() {
            y.push_str(&format!("      endpoint: {}\n", q(s3.endpoint)));
        }
        if !s3.role.is_empty() {
            y.push_str(&format!("      role_arn: {}\n", q(s3.role)));
        }
        y.push_str(
            "      upload_timeout: 1m
      total_file_size: 100M
      use_put_object: on
      store_dir: /var/lib/fluent-bit/s3
      compression: gzip
      s3_key_format: /logs/%Y-%m-%d/%H/%H-%M-%S_$INDEX_$UUID.json.gz
      json_date_key: date
      json_date_format: iso8601
      retry_limit: no_limits
",
        );
    }
    if let Some(o) = otlp {
        y.push_str(&format!(
            "    - name: opentelemetry\n      match: '*'\n      host: {}\n      port: {}\n      logs_uri: {}\n      tls: {}\n      retry_limit: no_limits\n      storage.total_limit_size: 500M\n",
            q(&o.host),
            o.port,
            q(&o.logs_uri),
            if o.tls { "on" } else { "off" }
        ));
    }
    if s3.is_none() && otlp.is_none() {
        // Nothing listens on port 1: every flush fails and is retried forever, so chunks stay
        // queued on disk (capped) until a real destination is configured.
        y.push_str(
            "    - name: http
      match: '*'
      host: 127.0.0.1
      port: 1
      format: json
      retry_limit: no_limits
      storage.total_limit_size: 200M
",
        );
    }
    y
}

fn wrapper() -> String {
    super::node::wrapper(
        "fluent-bit",
        ENV,
        &[
            "CLUSTER_ID",
            "INSTANCE_ID",
            "TELEMETRY_S3_BUCKET",
            "TELEMETRY_S3_ENDPOINT",
            "TELEMETRY_S3_REGION",
            "TELEMETRY_S3_ASSUME_ROLE",
            "TELEMETRY_OTLP_HOST",
            "TELEMETRY_OTLP_PORT",
            "TELEMETRY_OTLP_LOGS_URI",
            "TELEMETRY_OTLP_TLS",
        ],
        "if [[ -n \"${TELEMETRY_S3_BUCKET}\" && -z \"${TELEMETRY_S3_ASSUME_ROLE}\" && -n \"${TELEMETRY_S3_ACCESS_KEY_ID}\" ]]; then
  export AWS_ACCESS_KEY_ID=\"${TELEMETRY_S3_ACCESS_KEY_ID}\" AWS_SECRET_ACCESS_KEY=\"${TELEMETRY_S3_SECRET_ACCESS_KEY}\"
fi
exec /opt/fluent-bit/bin/fluent-bit -c /opt/fluent-bit/etc/fluent-bit.yml",
    )
}

fn unit() -> String {
    format!(
        "[Unit]\nDescription=Fluent Bit: ship node logs\nRequires=network-online.target\nAfter=network-online.target\n\
         StartLimitIntervalSec=10\nStartLimitBurst=5\n\n\
         [Service]\nUser=fluent-bit\nExecStart={RUN}\nRestart=always\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Kind;
    use crate::render::testutil::*;
    use crate::settings::Settings;

    fn run(s: &Settings) -> Result<Desired, RenderError> {
        render_one(render, Kind::Knd, s)
    }

    fn env(d: &Desired) -> std::collections::BTreeMap<String, String> {
        env_of(d, ENV)
    }

    #[test]
    fn aws_with_bucket_forces_the_upload_role_and_default_endpoint() {
        let mut s = settings(Kind::Knd, "aws");
        s.set("TELEMETRY_S3_ASSUME_ROLE", "arn:aws:iam::1:role/ignored");
        let d = run(&s).unwrap();
        let e = env(&d);
        assert_eq!(
            e["TELEMETRY_S3_ASSUME_ROLE"],
            "arn:aws:iam::123456789012:role/podplane-c1-telemetry-upload"
        );
        assert_eq!(e["TELEMETRY_S3_ENDPOINT"], "s3.eu-west-1.amazonaws.com");
        assert_eq!(e["TELEMETRY_S3_REGION"], "eu-west-1");
        let f = &d.files[ENV];
        assert!(f.secret);
        assert_eq!(
            (f.mode, f.user.as_str(), f.group.as_str()),
            (0o640, "root", "fluent-bit")
        );
        let keys: Vec<_> = text(&d, ENV)
            .lines()
            .map(|l| l.split('=').next().unwrap().to_string())
            .collect();
        assert_eq!(
            keys[..5],
            [
                "CLUSTER_ID",
                "INSTANCE_ID",
                "TELEMETRY_ENABLED",
                "TELEMETRY_LOG_SERVICES",
                "TELEMETRY_LOG_CLOUDINIT"
            ]
        );
        assert_eq!(keys.len(), 16);
        let y = text(&d, CONFIG);
        assert!(y.contains("    - name: s3\n"), "{y}");
        assert!(
            y.contains("role_arn: \"arn:aws:iam::123456789012:role/podplane-c1-telemetry-upload\"")
        );
        assert!(!y.contains("opentelemetry") && !y.contains("port: 1\n"));
        assert!(d.notes.is_empty());
        let c = &d.files[CONFIG];
        assert_eq!(
            (c.mode, c.user.as_str(), c.group.as_str()),
            (0o600, "fluent-bit", "fluent-bit")
        );
        let svc = &d.services[UNIT];
        assert!(svc.enabled);
        for p in [ENV, RUN, CONFIG, "/etc/systemd/system/fluent-bit.service"] {
            assert!(svc.inputs.contains(p), "{p}");
        }
    }

    #[test]
    fn aws_with_bucket_requires_the_account() {
        let mut s = settings(Kind::Knd, "aws");
        s.set("AWS_ACCOUNT_ID", "");
        let e = run(&s).unwrap_err().to_string();
        assert!(e.starts_with("AWS_ACCOUNT_ID is empty"), "{e}");
    }

    #[test]
    fn local_keeps_the_settings_role_and_endpoint() {
        let mut s = settings(Kind::Knd, "local");
        s.set("TELEMETRY_S3_ENDPOINT", "http://10.0.2.2:9000");
        s.set("TELEMETRY_S3_ACCESS_KEY_ID", "AK");
        s.set("TELEMETRY_S3_SECRET_ACCESS_KEY", "SK");
        let d = run(&s).unwrap();
        let e = env(&d);
        assert_eq!(e["TELEMETRY_S3_ASSUME_ROLE"], "");
        assert_eq!(e["TELEMETRY_S3_ENDPOINT"], "http://10.0.2.2:9000");
        assert_eq!(e["TELEMETRY_S3_REGION"], "local");
        assert_eq!(e["TELEMETRY_S3_SECRET_ACCESS_KEY"], "SK");
        let y = text(&d, CONFIG);
        assert!(y.contains("endpoint: \"http://10.0.2.2:9000\""));
        assert!(!y.contains("role_arn"));
        assert!(!y.contains("SK"), "static keys stay out of the config");
        let w = text(&d, RUN);
        assert!(w.contains("export AWS_ACCESS_KEY_ID=\"${TELEMETRY_S3_ACCESS_KEY_ID}\""));
        assert!(w.ends_with(
            "exec /opt/fluent-bit/bin/fluent-bit -c /opt/fluent-bit/etc/fluent-bit.yml\n"
        ));
    }

    #[test]
    fn otlp_endpoints_parse() {
        let p = |e: &str| parse_otlp(e).unwrap();
        assert_eq!(
            p("http://collector"),
            Otlp {
                host: "collector".into(),
                port: 80,
                logs_uri: "/v1/logs".into(),
                tls: false
            }
        );
        assert_eq!(
            p("https://collector.example.com/"),
            Otlp {
                host: "collector.example.com".into(),
                port: 443,
                logs_uri: "/v1/logs".into(),
                tls: true
            }
        );
        assert_eq!(p("https://10.0.0.9:4318").port, 4318);
        assert_eq!(p("https://c:4318/custom/logs").logs_uri, "/custom/logs");
        assert_eq!(
            p("HTTPS://c/otlp/v1/logs?x=1#frag").logs_uri,
            "/otlp/v1/logs?x=1"
        );
        assert_eq!(
            p("https://[fd00::1]:4318/v1/logs"),
            Otlp {
                host: "fd00::1".into(),
                port: 4318,
                logs_uri: "/v1/logs".into(),
                tls: true
            }
        );
        assert_eq!(p("http://[::1]").port, 80);
    }

    #[test]
    fn bad_otlp_endpoints_are_refused() {
        let e = |v: &str| parse_otlp(v).unwrap_err().to_string();
        assert_eq!(
            e("collector:4318"),
            "TELEMETRY_OTLP_ENDPOINT is \"collector:4318\"; it must start with http:// or https://"
        );
        assert!(e("grpc://c").contains("must start with http:// or https://"));
        assert!(e("https://").contains("the host is empty"));
        assert!(e("https://:4318/v1/logs").contains("the host is empty"));
        assert!(e("https://fd00::1/v1/logs").contains("brackets"));
        assert!(e("https://[fd00::1/v1/logs").contains("closing ]"));
        assert!(e("https://[nothex]:1").contains("not an IPv6 address"));
        assert!(e("https://c:0").contains("port"));
        assert!(e("https://c:70000").contains("port"));
        assert!(e("https://c:").contains("port"));
        assert!(e("https://u:p@c").contains("credentials"));
        assert!(e("https://c d").contains("host may only contain"));
    }

    #[test]
    fn otlp_output_and_env() {
        let mut s = settings(Kind::Knd, "local");
        s.set("TELEMETRY_S3_BUCKET", "");
        s.set("TELEMETRY_OTLP_ENDPOINT", "https://[fd00::1]:4318/v1/logs");
        let d = run(&s).unwrap();
        let e = env(&d);
        assert_eq!(e["TELEMETRY_OTLP_HOST"], "fd00::1");
        assert_eq!(e["TELEMETRY_OTLP_PORT"], "4318");
        assert_eq!(e["TELEMETRY_OTLP_LOGS_URI"], "/v1/logs");
        assert_eq!(e["TELEMETRY_OTLP_TLS"], "on");
        let y = text(&d, CONFIG);
        assert!(y.contains(
            "    - name: opentelemetry\n      match: '*'\n      host: \"fd00::1\"\n      port: 4318\n      logs_uri: \"/v1/logs\"\n      tls: on\n"
        ), "{y}");
        assert!(!y.contains("name: s3") && !y.contains("port: 1\n"));
        assert!(d.notes.is_empty());

        s.set("TELEMETRY_OTLP_ENDPOINT", "collector:4318");
        let err = run(&s).unwrap_err().to_string();
        assert!(err.contains("must start with http:// or https://"), "{err}");
    }

    #[test]
    fn no_destination_buffers_locally_with_a_note() {
        let mut s = settings(Kind::Knd, "aws");
        s.set("TELEMETRY_S3_BUCKET", "");
        let d = run(&s).unwrap();
        let y = text(&d, CONFIG);
        assert!(y.contains(
            "    - name: http\n      match: '*'\n      host: 127.0.0.1\n      port: 1\n      format: json\n      retry_limit: no_limits\n      storage.total_limit_size: 200M\n"
        ), "{y}");
        assert!(!y.contains("name: s3") && !y.contains("opentelemetry"));
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].contains("no destination"), "{:?}", d.notes);
        // No bucket on AWS: no forced role.
        assert_eq!(env(&d)["TELEMETRY_S3_ASSUME_ROLE"], "");
    }

    #[test]
    fn nothing_to_collect_is_an_error() {
        let mut s = settings(Kind::Knd, "local");
        s.set("TELEMETRY_LOG_SERVICES", " , ");
        s.set("TELEMETRY_LOG_CLOUDINIT", "false");
        let e = run(&s).unwrap_err().to_string();
        assert!(e.contains("nothing to collect"), "{e}");
    }

    #[test]
    fn every_input_syncs_its_position_db_fully() {
        let s = settings(Kind::Knd, "local");
        let y = text(&run(&s).unwrap(), CONFIG);
        let inputs = y
            .split_once("  inputs:\n")
            .and_then(|(_, rest)| rest.split_once("  filters:\n"))
            .map(|(inputs, _)| inputs)
            .expect("an inputs section");
        let blocks: Vec<&str> = inputs.split("    - name: ").skip(1).collect();
        assert_eq!(blocks.len(), 2, "{inputs}");
        for b in blocks {
            assert!(b.contains("      db: /var/lib/fluent-bit/"), "{b}");
            assert!(b.contains("      db.sync: full\n"), "{b}");
        }
    }

    #[test]
    fn log_services_select_the_systemd_filters() {
        let mut s = settings(Kind::Knd, "local");
        s.set("TELEMETRY_LOG_SERVICES", " kubelet, containerd ,,kubelet\n");
        let d = run(&s).unwrap();
        assert_eq!(env(&d)["TELEMETRY_LOG_SERVICES"], "kubelet,containerd");
        let y = text(&d, CONFIG);
        assert!(y.contains(
            "      systemd_filter:\n        - \"_SYSTEMD_UNIT=kubelet.service\"\n        - \"_SYSTEMD_UNIT=containerd.service\"\n    - name: tail\n"
        ), "{y}");
        assert_eq!(y.matches("_SYSTEMD_UNIT=").count(), 2);

        // Empty list: no systemd input at all, only cloud-init.
        s.set("TELEMETRY_LOG_SERVICES", "");
        let y = text(&run(&s).unwrap(), CONFIG);
        assert!(
            !y.contains("name: systemd") && !y.contains("match: systemd.*"),
            "{y}"
        );
        assert!(y.contains("path: /var/log/cloud-init.log"));

        // Cloud-init off: no tail input.
        s.set("TELEMETRY_LOG_SERVICES", "ssh");
        s.set("TELEMETRY_LOG_CLOUDINIT", "false");
        let y = text(&run(&s).unwrap(), CONFIG);
        assert!(
            !y.contains("cloud-init") && y.contains("_SYSTEMD_UNIT=ssh.service"),
            "{y}"
        );

        s.set("TELEMETRY_LOG_SERVICES", "kubelet,Bad$unit");
        let e = run(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("TELEMETRY_LOG_SERVICES has \"Bad$unit\""),
            "{e}"
        );
        s.set("TELEMETRY_LOG_SERVICES", "-x");
        assert!(run(&s).is_err());
    }

    #[test]
    fn disabled_renders_only_the_unit() {
        let mut s = settings(Kind::Knd, "aws");
        s.set("TELEMETRY_ENABLED", "false");
        // Not validated while off.
        s.set("TELEMETRY_OTLP_ENDPOINT", "nonsense");
        let d = run(&s).unwrap();
        assert_eq!(
            d.files.keys().collect::<Vec<_>>(),
            ["/etc/systemd/system/fluent-bit.service"]
        );
        assert!(!d.services[UNIT].enabled);
        for p in [ENV, RUN, CONFIG] {
            assert!(d.absent.contains(p), "{p}");
        }
        let u = text(&d, "/etc/systemd/system/fluent-bit.service");
        for l in [
            "User=fluent-bit",
            "Restart=always",
            "Requires=network-online.target",
            "After=network-online.target",
            "StartLimitIntervalSec=10",
            "StartLimitBurst=5",
            "ExecStart=/opt/fluent-bit/bin/run-fluent-bit.sh",
        ] {
            assert!(u.lines().any(|x| x == l), "{l}");
        }
    }
}
