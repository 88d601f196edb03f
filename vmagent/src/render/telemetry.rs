//! fluent-bit: ships the node's journal (an allow-list of units) and cloud-init's log to S3
//! and/or an OTLP/HTTP collector; with neither configured, a local buffer output keeps logs
//! queued on disk until a destination is delivered.
//!
//! Renders `/opt/env/fluent-bit.env`, `/opt/fluent-bit/etc/fluent-bit.yml` (generated here, not
//! from a template), the run wrapper and `fluent-bit.service`. With telemetry off only the unit
//! is rendered (disabled) and the other files must not exist.

use super::template::fill;
use super::unit::{Sandbox, Unit};
use super::{Desired, Features, Inputs, RenderError, env_file, quoted};
use crate::contract::otlp::Otlp;
#[cfg(test)]
use crate::contract::otlp::otlp_endpoint as parse_otlp;
use crate::contract::{Provider, UserDataKey as U};
use crate::settings::{NodeSettings, or_empty};

const ENV: &str = "/opt/env/fluent-bit.env";
const RUN: &str = "/opt/fluent-bit/bin/run-fluent-bit.sh";
const CONFIG: &str = "/opt/fluent-bit/etc/fluent-bit.yml";
const UNIT: &str = "fluent-bit.service";

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

    let s = &inp.settings;
    let t = &s.telemetry;
    let services = &t.log_services;
    // Never both empty and off while enabled (refused by the settings parse).
    let cloudinit = t.log_cloudinit;

    let b = &t.s3;
    let bucket = or_empty(&b.bucket);
    let region = b.region_or(&s.region);
    let mut endpoint = or_empty(&b.endpoint).to_string();
    let mut role = or_empty(&b.assume_role).to_string();
    if s.provider == Provider::Aws && !bucket.is_empty() {
        let why = "AWS nodes need it to upload telemetry to S3";
        let account = NodeSettings::required(s.aws_account_id.as_deref(), U::AwsAccountId, why)?;
        let cluster = NodeSettings::required(s.cluster_id.as_deref(), U::ClusterId, why)?;
        if endpoint.is_empty() {
            endpoint = format!("s3.{}.amazonaws.com", s.region);
        }
        // Forced: the mutable value is ignored, as upstream does.
        role = format!("arn:aws:iam::{account}:role/podplane-{cluster}-telemetry-upload");
    }

    let otlp_endpoint = t.otlp_endpoint.as_ref().map_or("", |e| e.text.as_str());
    let otlp = t.otlp_endpoint.as_ref().map(|e| e.value.clone());
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
        ("CLUSTER_ID", s.cluster_id_text()),
        ("INSTANCE_ID", s.instance_id_text()),
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
        ("TELEMETRY_S3_ACCESS_KEY_ID", or_empty(&b.access_key_id)),
        (
            "TELEMETRY_S3_SECRET_ACCESS_KEY",
            or_empty(&b.secret_access_key),
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
        config(services, cloudinit, s3.as_ref(), otlp.as_ref()),
    );
    Ok(())
}

struct S3<'a> {
    bucket: &'a str,
    region: &'a str,
    endpoint: &'a str,
    role: &'a str,
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
                quoted(&format!("_SYSTEMD_UNIT={svc}.service"))
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
            quoted(s3.bucket),
            quoted(s3.region)
        ));
        if !s3.endpoint.is_empty() {
            y.push_str(&format!("      endpoint: {}\n", quoted(s3.endpoint)));
        }
        if !s3.role.is_empty() {
            y.push_str(&format!("      role_arn: {}\n", quoted(s3.role)));
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
            quoted(&o.host),
            o.port,
            quoted(&o.logs_uri),
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
        fill(
            include_str!("../../templates/run-fluent-bit.body.sh"),
            &[("CONFIG", CONFIG)],
        )
        .trim_end(),
    )
}

fn unit() -> String {
    Unit::new("Fluent Bit: ship node logs")
        .set("Wants", "network-online.target")
        .set("After", "network-online.target")
        // Restarted forever, like the other daemons: a burst of fast failures (the bucket or
        // collector unreachable at boot) must not stop log shipping for good.
        .set("StartLimitIntervalSec", "0")
        .section("Service")
        .set("Type", "exec")
        .set("User", "fluent-bit")
        .set("ExecStart", RUN)
        .set("SyslogIdentifier", "fluent-bit")
        .set("Restart", "always")
        .set("RestartSec", "5")
        // Reads the journal (group systemd-journal) and writes only its buffer and journal
        // cursor. Fluent Bit can run Lua/WASM filters with a JIT, so writable+executable
        // memory stays allowed.
        .sandbox(&Sandbox {
            read_write_paths: &["/var/lib/fluent-bit"],
            ..Sandbox::default()
        })
        .wanted_by("multi-user.target")
}

#[cfg(test)]
#[path = "telemetry/tests.rs"]
mod tests;
