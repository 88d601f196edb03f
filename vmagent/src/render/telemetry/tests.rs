use super::*;
use crate::contract::Kind;
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
    assert!(
        w.ends_with("exec /opt/fluent-bit/bin/fluent-bit -c /opt/fluent-bit/etc/fluent-bit.yml\n")
    );
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
        "it must start with http:// or https://"
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
    assert!(
        err.starts_with("TELEMETRY_OTLP_ENDPOINT is \"collector:4318\" (mutable.env); "),
        "{err}"
    );
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
    s.set("TELEMETRY_LOG_SERVICES", "");
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
    s.set("TELEMETRY_LOG_SERVICES", "kubelet,containerd,kubelet");
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

    // The rule recv applies to a delivery: no blanks, no empty items, lowercase names.
    for bad in ["kubelet,Bad$unit", "-x", " kubelet", "kubelet,,ssh"] {
        s.set("TELEMETRY_LOG_SERVICES", bad);
        let e = run(&s).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "TELEMETRY_LOG_SERVICES is {bad:?} (mutable.env); "
            )),
            "{e}"
        );
    }
}

#[test]
fn disabled_renders_only_the_unit() {
    let mut s = settings(Kind::Knd, "aws");
    s.set("TELEMETRY_ENABLED", "false");
    // Validated even while off (the settings are parsed once, whatever is enabled).
    s.set("TELEMETRY_OTLP_ENDPOINT", "nonsense");
    let e = run(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("TELEMETRY_OTLP_ENDPOINT is \"nonsense\""),
        "{e}"
    );
    s.set("TELEMETRY_OTLP_ENDPOINT", "");
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
        "RestartSec=5",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "SyslogIdentifier=fluent-bit",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/fluent-bit",
        "ExecStart=/opt/fluent-bit/bin/run-fluent-bit.sh",
    ] {
        assert!(u.lines().any(|x| x == l), "{l}");
    }
}
