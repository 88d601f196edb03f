use super::*;
use crate::contract::Kind;
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
        "Wants=network-online.target",
        "After=network-online.target",
        "SyslogIdentifier=zot",
        "ProtectSystem=strict",
        "ReadWritePaths=/opt/zot/storage",
        "Restart=always",
        "RestartSec=5",
        "StartLimitIntervalSec=0",
        "ExecStart=/opt/zot/bin/run-zot.sh",
    ] {
        assert!(u.lines().any(|x| x == l), "{l}");
    }
}
