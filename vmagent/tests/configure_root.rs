//! `vmagent plan` / `vmagent apply` on a temp root: bootstrap detection (facts given through
//! overrides), every file written atomically with its mode and owner, units enabled offline with
//! the real `systemctl --root`, a second apply that does nothing, restart sets derived from
//! single-key changes, and bad inputs that fail with nothing written.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use vmagent::apply::Services;
use vmagent::converge;
use vmagent::host::{Output, RecordingHost, SystemHost};

#[test]
fn first_apply_bootstraps_writes_and_enables_then_a_second_apply_does_nothing() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    let before = plan(r, "aws");
    assert!(!before.is_empty());
    assert!(
        before.notes[0].contains("bootstrap has not run"),
        "{:?}",
        before.notes
    );
    assert!(
        !r.join("opt/podplane/bootstrap.done").exists(),
        "plan writes nothing"
    );

    let (p, report) = apply(r, "aws");
    assert!(!report.written.is_empty());
    // Bootstrap ran once, done last.
    let det = std::fs::read_to_string(r.join("opt/podplane/etc/detected.env")).unwrap();
    assert!(
        det.contains("INSTANCE_PROVIDER_ID='aws:///eu-west-1a/i-0abc123'"),
        "{det}"
    );
    assert!(r.join("opt/podplane/bootstrap.done").exists());
    // Files with their modes.
    for (path, mode) in [
        ("/opt/env/nstance-agent.env", 0o640),
        ("/etc/containerd/config.toml", 0o644),
        ("/etc/systemd/system/containerd.service", 0o644),
        ("/opt/nstance-agent/bin/run-nstance-agent.sh", 0o755),
        ("/opt/nstance-agent/identity/ca.crt", 0o600),
        ("/home/admin/.ssh/authorized_keys", 0o600),
    ] {
        let md = std::fs::metadata(r.join(&path[1..])).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(md.mode() & 0o7777, mode, "{path}");
    }
    assert_eq!(
        std::fs::metadata(r.join("home/admin/.ssh")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        std::fs::read_to_string(r.join("opt/nstance-agent/identity/ca.crt")).unwrap(),
        "-----BEGIN CERTIFICATE-----\n"
    );
    // The managed hosts block and merged subuid.
    let hosts = std::fs::read_to_string(r.join("etc/hosts")).unwrap();
    assert!(hosts.starts_with("127.0.0.1 localhost\n# BEGIN podplane managed kube-apiserver\n127.0.0.1 kube-apiserver.podplane.internal\n"), "{hosts}");
    assert_eq!(
        std::fs::read_to_string(r.join("etc/subuid")).unwrap(),
        "debian:100000:65536\nkubelet:65536:7208960\n"
    );
    // Enabled offline by the real systemctl.
    for unit in [
        "containerd.service",
        "nstance-agent.service",
        "kube2iam.service",
    ] {
        assert!(
            std::fs::symlink_metadata(
                r.join("etc/systemd/system/multi-user.target.wants")
                    .join(unit)
            )
            .is_ok(),
            "{unit} enabled"
        );
    }
    assert!(
        r.join("etc/systemd/system/timers.target.wants/hosts-refresh.timer")
            .exists()
            || std::fs::symlink_metadata(
                r.join("etc/systemd/system/timers.target.wants/hosts-refresh.timer")
            )
            .is_ok()
    );
    assert!(
        p.services.iter().all(|s| s.reason == "newly enabled"),
        "{p}"
    );
    assert!(r.join("var/lib/vmagent/last-apply.json").exists());

    // Again: nothing to write, nothing to run.
    let again = plan(r, "aws");
    assert!(again.is_empty(), "{again}");
    let (p2, report2) = apply(r, "aws");
    assert!(p2.is_empty());
    assert!(
        report2.written.is_empty() && report2.actions.is_empty(),
        "{report2:?}"
    );
}

#[test]
fn single_key_changes_restart_exactly_the_services_that_read_them() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    apply(r, "aws");
    let set = |names: &[&str]| -> BTreeSet<String> {
        names.iter().map(|n| format!("{n}.service")).collect()
    };
    let cases: Vec<(&str, &str, BTreeSet<String>)> = vec![
        (
            "KUBE_LOG_LEVEL",
            "4",
            set(&[
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
            ]),
        ),
        ("KUBE_CLUSTER_DNS", "198.19.255.253", set(&["kubelet"])),
        (
            "SSH_AUTHORIZED_KEYS",
            "ssh-ed25519 BBBB second@example",
            set(&[]),
        ),
        ("KUBE_API_INTERNAL_LB_HOSTNAME", "lb.example.com", set(&[])),
    ];
    for (key, value, want) in cases {
        let saved = std::fs::read_to_string(r.join("opt/podplane/etc/mutable.env")).unwrap();
        set_mutable(r, key, value);
        let p = plan(r, "aws");
        assert_eq!(p.restarts(), want, "{key}: {p}");
        std::fs::write(r.join("opt/podplane/etc/mutable.env"), saved).unwrap();
    }
    // A containerd config change (the sandbox image follows the registry) restarts containerd
    // and kubelet; a registry that goes away disables zot.
    set_mutable(r, "REGISTRY_HOSTNAME", "registry.c1.example.com");
    set_mutable(r, "REGISTRY_BUCKET", "c1-registry");
    apply(r, "aws");
    let config = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert!(
        config
            .contains("sandbox = \"registry.c1.example.com/mirror/registry.k8s.io/pause:3.10.2\""),
        "{config}"
    );
    set_mutable(r, "REGISTRY_ENABLED", "false");
    let p = plan(r, "aws");
    let restarts = p.restarts();
    assert!(
        restarts.contains("containerd.service") && restarts.contains("kubelet.service"),
        "{p}"
    );
    let zot = p
        .services
        .iter()
        .find(|s| s.unit == "zot.service")
        .expect("zot planned");
    assert_eq!(
        zot.actions,
        [vmagent::plan::Action::Disable, vmagent::plan::Action::Stop],
        "{p}"
    );
}

#[test]
fn plan_asks_the_host_for_dns_capabilities_and_environment() {
    let root = node("knd", "aws");
    let r = root.path();
    std::fs::write(
        r.join("opt/podplane/etc/mutable.env"),
        "KUBE_API_INTERNAL_LB_HOSTNAME='lb.c1.internal'\n",
    )
    .unwrap();
    let lb: std::net::IpAddr = "10.0.0.7".parse().unwrap();
    let desired = |host: &RecordingHost| {
        converge::plan(r, host, &facts("aws"), &BTreeSet::new())
            .unwrap_or_else(|e| panic!("plan: {e}"))
            .0
            .desired
    };
    let text = |d: &vmagent::render::Desired, path: &str| {
        String::from_utf8(d.files[path].content.clone()).unwrap()
    };
    let resolving = RecordingHost::new().with_name("lb.c1.internal", &[lb]);
    let d = desired(&resolving);
    let hosts = text(&d, "/etc/hosts");
    assert!(
        hosts.contains("10.0.0.7 kube-apiserver.podplane.internal"),
        "{hosts}"
    );
    assert!(text(&d, "/etc/systemd/system/containerd.service").contains("OOMScoreAdjust=-999"));
    assert!(resolving.lines().is_empty(), "{:?}", resolving.lines());

    let capped = RecordingHost::new()
        .with_name("lb.c1.internal", &[lb])
        .with_oom_adjust(false);
    let unit = text(&desired(&capped), "/etc/systemd/system/containerd.service");
    assert!(!unit.contains("OOMScoreAdjust"), "{unit}");

    // A name the host cannot resolve is an error naming the key, whatever the real DNS says.
    let err = converge::plan(r, &RecordingHost::new(), &facts("aws"), &BTreeSet::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("KUBE_API_INTERNAL_LB_HOSTNAME"), "{err}");

    let env = RecordingHost::new()
        .with_env("INSTANCE_IPV4", "10.0.9.9")
        .with_env("HOME", "/root");
    let overrides = converge::overrides_from_env(&env);
    assert_eq!(
        overrides,
        BTreeMap::from([("INSTANCE_IPV4".to_string(), "10.0.9.9".to_string())])
    );
}

#[test]
fn plan_shows_accounts_permissions_sudoers_and_the_nonce_and_apply_does_them() {
    let root = node("knd", "aws");
    let r = root.path();
    // zot's account is missing (its group is still there); the nonce is world-readable.
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let without_zot: String = passwd
        .lines()
        .filter(|l| !l.starts_with("zot:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(r.join("etc/passwd"), &without_zot).unwrap();
    let nonce = r.join("opt/nstance-agent/identity/nonce.jwt");
    std::fs::create_dir_all(nonce.parent().unwrap()).unwrap();
    std::fs::write(&nonce, "eyJhbGciOi.nonce\n").unwrap();
    std::fs::set_permissions(&nonce, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let before = tree(r);
    let useradd = format!(
        "useradd --root {} -m -s /usr/sbin/nologin -r -g zot -G podplane zot",
        r.display()
    );
    let (_, p) = converge::plan(r, &RecordingHost::new(), &facts("aws"), &BTreeSet::new())
        .unwrap_or_else(|e| panic!("plan: {e}"));
    let text = p.to_string();
    for want in [
        format!("run {useradd} (created user zot)\n"),
        "create directory /opt/bin (0700 root:root)\n".to_string(),
        "change directory /opt (mode 0755 -> 0750, owner ".to_string(),
        "create /etc/sudoers.d/admin\n".to_string(),
        "change /opt/nstance-agent/identity/nonce.jwt (mode 0644 -> 0600".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    assert_eq!(tree(r), before, "plan writes nothing");

    // apply runs exactly the planned command through the host (which adds the account here).
    let passwd_path = r.join("etc/passwd");
    let host = RecordingHost::with_responder(move |c| {
        if c.program == "useradd" {
            let mut t = std::fs::read_to_string(&passwd_path).unwrap();
            t.push_str("zot:x:2999:2999::/nonexistent:/usr/sbin/nologin\n");
            std::fs::write(&passwd_path, t).unwrap();
        }
        Ok(Output::default())
    });
    let (applied, report) =
        converge::apply(r, &host, &facts("aws"), Services::None, &BTreeSet::new())
            .unwrap_or_else(|e| panic!("apply: {e}"));
    assert_eq!(
        applied.accounts, p.accounts,
        "apply carries out what plan showed"
    );
    assert!(host.lines().contains(&useradd), "{:?}", host.lines());
    assert!(
        report.accounts.contains(&"created user zot".to_string())
            && report.accounts.contains(&"created /opt/bin".to_string()),
        "{:?}",
        report.accounts
    );
    assert_eq!(std::fs::metadata(&nonce).unwrap().mode() & 0o7777, 0o600);
    assert!(
        host.lines().contains(&format!(
            "chown nstance-agent:nstance-agent {}",
            nonce.display()
        )),
        "{:?}",
        host.lines()
    );
    let sudoers = r.join("etc/sudoers.d/admin");
    assert_eq!(
        std::fs::read_to_string(&sudoers).unwrap(),
        vmagent::accounts::SUDOERS_LINE
    );
    assert_eq!(std::fs::metadata(&sudoers).unwrap().mode() & 0o7777, 0o440);
    assert!(report.written.contains(&"/etc/sudoers.d/admin".to_string()));
}

#[test]
fn bad_inputs_fail_with_nothing_written() {
    // No user-data.env.
    let root = node("knd", "local");
    let r = root.path();
    std::fs::remove_file(r.join("opt/podplane/etc/user-data.env")).unwrap();
    let before = tree(r);
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("local"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("user-data.env is missing"),
        "{err}"
    );
    let mut after = tree(r);
    // The agent's lock is the only thing created.
    after.retain(|p| !p.starts_with(r.join("var/lib/vmagent")));
    assert_eq!(
        after,
        before
            .into_iter()
            .filter(|p| !p.starts_with(r.join("var/lib/vmagent")))
            .collect()
    );

    // bootstrap.done without detected.env.
    let root = node("knd", "local");
    let r = root.path();
    std::fs::write(r.join("opt/podplane/bootstrap.done"), "completed_at=x\n").unwrap();
    let err = converge::plan(r, &SystemHost, &facts("local"), &BTreeSet::new()).unwrap_err();
    assert!(
        err.to_string().contains("will not silently run again"),
        "{err}"
    );

    // No default route / no IPv4 / no cloud identity: detection fails, naming the override.
    let root = node("knd", "aws");
    let r = root.path();
    let silent = RecordingHost::with_responder(|_| Ok(Output::default()));
    let err = converge::plan(r, &silent, &BTreeMap::new(), &BTreeSet::new()).unwrap_err();
    assert!(err.to_string().contains("INSTANCE_PROVIDER_ID"), "{err}");
    let mut f = facts("aws");
    f.remove("INSTANCE_NETDEV");
    f.remove("INSTANCE_IPV4");
    let err = converge::plan(r, &silent, &f, &BTreeSet::new()).unwrap_err();
    assert!(err.to_string().contains("no default route"), "{err}");
    let no_v4 = RecordingHost::with_responder(|c| {
        Ok(Output {
            stdout: if c.display() == "ip -o route get 1" {
                "1.0.0.0 dev ens5 src x".into()
            } else {
                String::new()
            },
            stderr: String::new(),
        })
    });
    let err = converge::plan(r, &no_v4, &f, &BTreeSet::new()).unwrap_err();
    assert!(
        err.to_string().contains("ens5 has no IPv4 address"),
        "{err}"
    );

    // Not installed / install incomplete.
    let root = node("knd", "local");
    let r = root.path();
    std::fs::rename(
        r.join("opt/podplane/share/vmconfig-installed.json"),
        r.join("opt/podplane/share/vmconfig-manifest.json"),
    )
    .unwrap();
    let err = converge::plan(r, &SystemHost, &facts("local"), &BTreeSet::new()).unwrap_err();
    assert!(
        err.to_string().contains("install has not finished"),
        "{err}"
    );
    std::fs::remove_file(r.join("opt/podplane/share/vmconfig-manifest.json")).unwrap();
    let err = converge::plan(r, &SystemHost, &facts("local"), &BTreeSet::new()).unwrap_err();
    assert!(err.to_string().contains("not installed"), "{err}");
}

#[test]
fn pause_image_count_must_be_one() {
    for images in [
        serde_json::json!([]),
        serde_json::json!([
            {"image": "registry.k8s.io/pause:3.10.2", "digest": "sha256:1", "size": 1},
            {"image": "registry.k8s.io/pause:3.9", "digest": "sha256:2", "size": 1}
        ]),
    ] {
        let root = node("knd", "local");
        let r = root.path();
        let path = r.join("opt/podplane/share/vmconfig-installed.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let n = images.as_array().unwrap().len();
        m["vmconfig"]["images"] = images;
        std::fs::write(&path, m.to_string()).unwrap();
        let before = tree(r);
        let err = converge::apply(
            r,
            &SystemHost,
            &facts("local"),
            Services::None,
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(&format!("has {n} pause images")),
            "{err}"
        );
        let after: BTreeSet<_> = tree(r)
            .into_iter()
            .filter(|p| !p.starts_with(r.join("var/lib/vmagent")))
            .collect();
        assert_eq!(after, before, "nothing written");
    }
}

fn vmagent_cmd(root: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmagent"));
    c.env_remove("JOURNAL_STREAM")
        .arg("--root")
        .arg(root)
        .args(args);
    for (k, v) in facts("aws") {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_command_exit_codes_diffs_and_redaction() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    let (code, out, _) = vmagent_cmd(r, &["plan"]);
    assert_eq!(code, 2, "changes pending: {out}");
    assert!(out.contains("create /etc/containerd/config.toml"), "{out}");
    let (code, _, err) = vmagent_cmd(r, &["apply"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("service actions (enable containerd.service"),
        "{err}"
    );
    let (code, out, _) = vmagent_cmd(r, &["plan"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("no changes\n"), "{out}");
    // Not errors, but said: the seeded settings have no registry name yet.
    assert!(
        out.contains(
            "note: the registry is enabled but REGISTRY_HOSTNAME and REGISTRY_BUCKET are empty"
        ),
        "{out}"
    );

    set_mutable(r, "KUBE_LOG_LEVEL", "4");
    set_mutable(r, "NETSY_BUCKET", "c1-netsy");
    set_mutable(r, "NETSY_SECRET_ACCESS_KEY", "s3cr3t-value");
    let (code, out, _) = vmagent_cmd(r, &["plan"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("change /opt/env/kube-apiserver.env (content)"),
        "{out}"
    );
    assert!(
        out.contains("    -KUBE_LOG_LEVEL='2'\n    +KUBE_LOG_LEVEL='4'\n"),
        "{out}"
    );
    assert!(
        out.contains("create /opt/env/netsy.env\n    (secret content not shown)"),
        "{out}"
    );
    assert!(!out.contains("s3cr3t-value"), "secrets never shown: {out}");
    assert!(out.contains("restart kube-scheduler.service (inputs changed: /etc/systemd/system/kube-scheduler.service)"), "{out}");
    assert!(
        out.contains("enable+restart netsy.service (newly enabled)"),
        "{out}"
    );

    std::fs::remove_file(r.join("opt/podplane/etc/user-data.env")).unwrap();
    let (code, _, err) = vmagent_cmd(r, &["plan"]);
    assert_eq!(code, 1);
    assert!(err.contains("user-data.env is missing"), "{err}");
}

#[test]
fn a_bad_otlp_endpoint_fails_the_apply_with_nothing_written() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knd", "aws");
    let r = root.path();
    apply(r, "aws");
    set_mutable(r, "TELEMETRY_ENABLED", "true");
    set_mutable(r, "TELEMETRY_OTLP_ENDPOINT", "collector.example.com:4318");
    let before = tree(r);
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::Systemd,
        &BTreeSet::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("TELEMETRY_OTLP_ENDPOINT"), "{err}");
    assert_eq!(tree(r), before, "nothing written");
    assert!(!r.join("opt/fluent-bit/etc/fluent-bit.yml").exists());
}

#[test]
fn status_reports_install_last_apply_pending_changes_and_deliveries() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    let st = vmagent::status::status(r, &SystemHost);
    assert_eq!(st.install, "installed");
    assert_eq!(st.last_apply, None);
    assert_eq!(
        st.components.get("kubelet").map(String::as_str),
        Some("1.37.0")
    );

    apply(r, "aws");
    let st = vmagent::status::status(r, &SystemHost);
    assert!(
        st.last_apply.as_deref().is_some_and(|t| t.ends_with('Z')),
        "{st:?}"
    );
    // Facts come from detected.env now; nothing pending.
    assert_eq!(
        (st.pending_files, st.pending_actions.len()),
        (Some(0), 0),
        "{st}"
    );
    assert_eq!(
        st.units.get("containerd.service").map(String::as_str),
        Some("unknown (not the running system)")
    );

    set_mutable(r, "KUBE_LOG_LEVEL", "4");
    std::fs::write(
        r.join("var/lib/vmagent/pending-changes"),
        "/opt/crt/ca.crt\n",
    )
    .unwrap();
    let st = vmagent::status::status(r, &SystemHost);
    assert_eq!(st.pending_files, Some(3), "{st}");
    assert!(
        st.pending_actions
            .contains(&"restart kube-scheduler.service".to_string()),
        "{st}"
    );
    assert_eq!(st.pending_deliveries, ["/opt/crt/ca.crt"]);
    let text = st.to_string();
    assert!(
        text.starts_with("install: installed (knc test)\n"),
        "{text}"
    );
    // A unit changed too, so the daemon-reload that apply runs first is listed with the restarts.
    assert!(
        text.contains("pending: 3 files, 4 service actions (daemon-reload, "),
        "{text}"
    );

    // The binary, as JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_vmagent"))
        .env_remove("JOURNAL_STREAM")
        .arg("--root")
        .arg(r)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["install"], "installed");
    assert_eq!(v["pending_files"], 3);
    assert_eq!(v["pending_deliveries"][0], "/opt/crt/ca.crt");

    // Not installed.
    let empty = tempfile::tempdir().unwrap();
    let st = vmagent::status::status(empty.path(), &SystemHost);
    assert_eq!(
        (st.install.as_str(), st.pending_files),
        ("not installed", None)
    );
}
