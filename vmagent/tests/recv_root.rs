//! `vmagent recv` on a temp root that looks like an installed, configured node: certificates and
//! the agent's keys installed with their modes and groups, restarts limited to the services that
//! read what changed, a refused mutable.env that does not stop the certificates, control-plane
//! files refused on workers, links never followed, and bursts coalesced.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use vmagent::apply::Services;
use vmagent::host::SystemHost;
use vmagent::recv::{self, MutableOutcome, RecvOptions, RecvReport};
use vmagent::userdb::UserDb;

fn have_systemctl() -> bool {
    Command::new("systemctl").arg("--version").output().is_ok()
}

fn deliver(root: &Path, name: &str, content: &str) {
    let dir = root.join("opt/nstance-agent/recv");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

fn agent_key(root: &Path, stem: &str) {
    let dir = root.join("opt/nstance-agent/keys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{stem}.key")),
        format!("-----BEGIN PRIVATE KEY-----\n{stem}\n"),
    )
    .unwrap();
}

fn trigger(root: &Path) {
    deliver(root, "write-files.last", "1764064800123");
}

fn run(root: &Path, provider: &str) -> RecvReport {
    recv::recv(
        root,
        &SystemHost,
        &facts(provider),
        &RecvOptions {
            debounce: Duration::ZERO,
            services: Services::Systemd,
        },
    )
    .unwrap_or_else(|e| panic!("recv: {e}"))
}

fn restarts(r: &RecvReport) -> BTreeSet<String> {
    r.applied.as_ref().expect("applied").0.restarts()
}

fn owner(root: &Path, p: &str) -> (u32, String) {
    let md = std::fs::metadata(root.join(p.trim_start_matches('/'))).unwrap();
    let group = std::fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&md.gid().to_string()))
        .map(|l| l.split(':').next().unwrap().to_string())
        .unwrap_or_default();
    (md.mode() & 0o7777, group)
}

fn distinct_ids() -> bool {
    unsafe { libc::getuid() == 0 }
}

#[test]
fn certificates_and_keys_install_and_restart_only_their_readers() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    apply(r, "aws");

    // First delivery: the CA and the kubelet pair, the registry pair, the control-plane files.
    for n in [
        "ca.crt",
        "ca.pub",
        "kubelet.client.crt",
        "kubelet.server.crt",
        "registry.server.crt",
        "front-proxy.client.crt",
        "service-accounts.pub",
        "service-accounts.key",
    ] {
        deliver(r, n, &format!("-----BEGIN {n}-----\n"));
    }
    for k in [
        "kubelet.client",
        "kubelet.server",
        "registry.server",
        "front-proxy.client",
        "netsy.server",
    ] {
        agent_key(r, k);
    }
    trigger(r);
    let rep = run(r, "aws");
    assert!(
        !r.join("opt/nstance-agent/recv/write-files.last").exists(),
        "trigger consumed"
    );
    let installed: BTreeSet<&str> = rep.installed.iter().map(String::as_str).collect();
    for p in [
        "/opt/crt/ca.crt",
        "/opt/pub/ca.pub",
        "/opt/crt/kubelet.server.crt",
        "/opt/pub/service-accounts.pub",
        "/opt/key/kube-apiserver/service-accounts.key",
        "/opt/key/kubelet/kubelet.client.key",
        "/opt/key/kubelet/kubelet.server.key",
        "/opt/key/registry/registry.server.key",
        "/opt/key/kube-apiserver/front-proxy.client.key",
    ] {
        assert!(installed.contains(p), "{p} not in {installed:?}");
    }
    // netsy.server.key has no delivered certificate yet: not installed.
    assert!(!r.join("opt/key/netsy/netsy.server.key").exists());
    if distinct_ids() {
        assert_eq!(owner(r, "/opt/crt/ca.crt"), (0o640, "podplane".into()));
        assert_eq!(
            owner(r, "/opt/key/registry/registry.server.key"),
            (0o640, "zot".into())
        );
        assert_eq!(
            owner(r, "/opt/key/kube-apiserver/front-proxy.client.key"),
            (0o640, "kube-apiserver".into())
        );
        assert_eq!(
            owner(r, "/opt/key/kube-apiserver/service-accounts.key"),
            (0o640, "kube-apiserver".into())
        );
        assert_eq!(
            owner(r, "/opt/key/kubelet/kubelet.server.key"),
            (0o640, "kubelet".into())
        );
    }
    let first = restarts(&rep);
    for unit in [
        "kubelet",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube2iam",
    ] {
        assert!(
            first.contains(&format!("{unit}.service")),
            "{unit}: {first:?}"
        );
    }
    assert!(
        !first.contains("containerd.service"),
        "containerd reads no certificate: {first:?}"
    );

    // Same files again: nothing installed, nothing restarted.
    trigger(r);
    let rep = run(r, "aws");
    assert!(rep.installed.is_empty(), "{:?}", rep.installed);
    assert!(restarts(&rep).is_empty());

    // Only kubelet's serving certificate renewed: only kubelet restarts.
    deliver(r, "kubelet.server.crt", "-----BEGIN renewed-----\n");
    trigger(r);
    let rep = run(r, "aws");
    assert_eq!(rep.installed, ["/opt/crt/kubelet.server.crt"]);
    assert_eq!(
        restarts(&rep),
        BTreeSet::from(["kubelet.service".to_string()])
    );
}

#[test]
fn a_refused_mutable_env_keeps_the_settings_and_does_not_stop_the_certificates() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knd", "aws");
    let r = root.path();
    apply(r, "aws");
    let settings = r.join("opt/podplane/etc/mutable.env");
    let before = std::fs::read(&settings).unwrap();
    deliver(r, "mutable.env", "KUBE_LOG_LEVEL=4\nREGISTRY_ENABLED=yes\n");
    deliver(r, "kubelet.client.crt", "-----BEGIN CERTIFICATE-----\n");
    trigger(r);
    let rep = run(r, "aws");
    match &rep.mutable {
        MutableOutcome::Refused(e) => assert!(e.to_string().contains("REGISTRY_ENABLED"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(&settings).unwrap(),
        before,
        "settings untouched"
    );
    assert_eq!(rep.installed, ["/opt/crt/kubelet.client.crt"]);
    assert!(restarts(&rep).contains("kubelet.service"));

    // The binary says so and exits 1.
    deliver(r, "mutable.env", "KUBE_LOG_LEVEL=$(reboot)\n");
    trigger(r);
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmagent"));
    c.env_remove("JOURNAL_STREAM").arg("--root").arg(r).args([
        "recv",
        "--debounce",
        "0s",
        "--services",
        "none",
    ]);
    for (k, v) in facts("aws") {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mutable.env was refused") && err.contains("KUBE_LOG_LEVEL contains '$'"),
        "{err}"
    );
    assert_eq!(std::fs::read(&settings).unwrap(), before);
}

#[test]
fn a_merged_mutable_env_restarts_what_reads_the_changed_keys() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    apply(r, "aws");
    deliver(r, "mutable.env", "KUBE_LOG_LEVEL='4'\n");
    trigger(r);
    let rep = run(r, "aws");
    assert_eq!(rep.mutable, MutableOutcome::Merged);
    let text = std::fs::read_to_string(r.join("opt/podplane/etc/mutable.env")).unwrap();
    assert!(text.contains("KUBE_LOG_LEVEL='4'\n"), "{text}");
    assert_eq!(owner(r, "/opt/podplane/etc/mutable.env").0, 0o600);
    let want: BTreeSet<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .map(|s| format!("{s}.service"))
    .collect();
    assert_eq!(restarts(&rep), want);
    // Delivered again: unchanged, no restarts.
    trigger(r);
    let rep = run(r, "aws");
    assert_eq!(rep.mutable, MutableOutcome::Unchanged);
    assert!(restarts(&rep).is_empty());
}

#[test]
fn workers_skip_control_plane_files_and_links_are_never_followed() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knd", "local");
    let r = root.path();
    apply(r, "local");
    deliver(r, "service-accounts.key", "-----BEGIN PRIVATE KEY-----\n");
    deliver(r, "netsy.server.crt", "-----BEGIN CERTIFICATE-----\n");
    deliver(r, "kubelet.client.crt", "-----BEGIN CERTIFICATE-----\n");
    deliver(r, "evil.crt", "x");
    let secret = r.join("etc/shadow-like");
    std::fs::write(&secret, "root:secret").unwrap();
    std::os::unix::fs::symlink(&secret, r.join("opt/nstance-agent/recv/ca.crt")).unwrap();
    std::fs::create_dir_all(r.join("opt/nstance-agent/recv/errors")).unwrap();
    std::fs::create_dir_all(r.join("opt/nstance-agent/recv/dir.crt")).unwrap();
    trigger(r);
    let rep = run(r, "local");
    assert_eq!(rep.installed, ["/opt/crt/kubelet.client.crt"]);
    let skipped = rep.skipped.join("\n");
    assert!(
        skipped.contains("service-accounts.key: control-plane only"),
        "{skipped}"
    );
    assert!(
        skipped.contains("netsy.server.crt: control-plane only"),
        "{skipped}"
    );
    assert!(
        skipped.contains("evil.crt: not an accepted delivery"),
        "{skipped}"
    );
    assert!(skipped.contains("ca.crt: not a regular file"), "{skipped}");
    assert!(skipped.contains("dir.crt: not a regular file"), "{skipped}");
    assert!(
        !r.join("opt/crt/ca.crt").exists(),
        "the link was not followed"
    );
    assert!(!r.join("opt/key/kube-apiserver").exists());
}

#[test]
fn a_delivery_during_the_pass_defers_reconfigure_and_keeps_its_changes() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knd", "aws");
    let r = root.path().to_path_buf();
    apply(&r, "aws");
    deliver(&r, "kubelet.server.crt", "-----BEGIN CERTIFICATE-----\n");
    trigger(&r);
    // The agent writes again while this pass is waiting out the burst.
    let r2 = r.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        trigger(&r2);
    });
    let rep = recv::recv(
        &r,
        &SystemHost,
        &facts("aws"),
        &RecvOptions {
            debounce: Duration::from_millis(400),
            services: Services::Systemd,
        },
    )
    .unwrap();
    writer.join().unwrap();
    assert!(rep.applied.is_none(), "deferred to the next pass");
    assert_eq!(rep.installed, ["/opt/crt/kubelet.server.crt"]);
    let pending = std::fs::read_to_string(r.join("var/lib/vmagent/pending-changes")).unwrap();
    assert_eq!(pending, "/opt/crt/kubelet.server.crt\n");

    // The next pass (the new trigger) sees no new content but still restarts for the deferred one.
    let rep = run(&r, "aws");
    assert!(rep.installed.is_empty());
    assert!(
        restarts(&rep).contains("kubelet.service"),
        "{:?}",
        restarts(&rep)
    );
    assert!(!r.join("var/lib/vmagent/pending-changes").exists());
}

#[test]
fn boot_reconcile_unit_is_enabled_but_never_restarted_by_an_apply() {
    if !have_systemctl() {
        eprintln!("SKIP: no systemctl binary");
        return;
    }
    let root = node("knd", "aws");
    let r = root.path();
    let (p, _) = apply(r, "aws");
    let svc = p
        .services
        .iter()
        .find(|s| s.unit == "vmagent-reconcile.service")
        .expect("planned");
    assert_eq!(svc.actions, [vmagent::plan::Action::Enable]);
    assert!(
        std::fs::symlink_metadata(
            r.join("etc/systemd/system/multi-user.target.wants/vmagent-reconcile.service")
        )
        .is_ok()
    );
    let db = UserDb::load(r).unwrap();
    assert!(db.uid("nstance-agent").is_some());
    // A reconcile with nothing delivered changes nothing.
    let rep = run(r, "aws");
    assert!(rep.installed.is_empty());
    let (plan, report) = rep.applied.unwrap();
    assert!(plan.is_empty() && report.written.is_empty(), "{plan}");
    let _ = BTreeMap::<String, String>::new();
}
