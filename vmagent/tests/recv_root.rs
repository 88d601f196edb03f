//! `vmagent recv` on a temp root that looks like an installed, configured node: certificates and
//! the agent's keys installed with their modes and groups, restarts limited to the services that
//! read what changed, a refused mutable.env that does not stop the certificates, control-plane
//! files refused on workers, links never followed, and bursts coalesced.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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

fn deliver_bytes(root: &Path, name: &str, content: &[u8]) {
    let dir = root.join("opt/nstance-agent/recv");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

/// A PEM block whose body is a DER SEQUENCE holding `tag` (distinct content per tag).
fn pem(label: &str, tag: &str) -> String {
    use base64::Engine;
    let mut der = vec![0x30, tag.len() as u8];
    der.extend_from_slice(tag.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

/// The PEM a delivered name should hold, by its extension.
fn pem_for(name: &str, tag: &str) -> String {
    let label = if name.ends_with(".pub") {
        "PUBLIC KEY"
    } else if name.ends_with(".key") {
        "PRIVATE KEY"
    } else {
        "CERTIFICATE"
    };
    pem(label, tag)
}

fn agent_key(root: &Path, stem: &str) {
    let dir = root.join("opt/nstance-agent/keys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), pem("PRIVATE KEY", stem)).unwrap();
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
        deliver(r, n, &pem_for(n, n));
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
    deliver(r, "kubelet.server.crt", &pem("CERTIFICATE", "renewed"));
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
    deliver(r, "kubelet.client.crt", &pem("CERTIFICATE", "c"));
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
    assert!(
        matches!(rep.mutable, MutableOutcome::Merged),
        "{:?}",
        rep.mutable
    );
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
    assert!(
        matches!(rep.mutable, MutableOutcome::Unchanged),
        "{:?}",
        rep.mutable
    );
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
    deliver(r, "service-accounts.key", &pem("PRIVATE KEY", "sa"));
    deliver(r, "netsy.server.crt", &pem("CERTIFICATE", "c"));
    deliver(r, "kubelet.client.crt", &pem("CERTIFICATE", "c"));
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
    assert!(
        skipped.contains(
            "ca.crt: /opt/nstance-agent/recv/ca.crt (a symbolic link) is not a regular file"
        ),
        "{skipped}"
    );
    // Names that are not accepted are never opened.
    assert!(
        skipped.contains("dir.crt: not an accepted delivery"),
        "{skipped}"
    );
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
    deliver(&r, "kubelet.server.crt", &pem("CERTIFICATE", "c"));
    trigger(&r);
    // The agent writes again while this pass is waiting out the burst.
    let r2 = r.clone();
    let writer = std::thread::spawn(move || {
        // Once the pass has consumed the first trigger (not by the clock: a busy machine may
        // start the pass late).
        let first = r2.join("opt/nstance-agent/recv/write-files.last");
        let start = std::time::Instant::now();
        while first.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
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

/// Every regular file below the places recv installs to, with its content (links not followed).
fn installed_contents(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["opt/crt", "opt/pub", "opt/key"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        } else if md.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    let settings = root.join("opt/podplane/etc/mutable.env");
    out.push((
        settings.clone(),
        std::fs::read(&settings).unwrap_or_default(),
    ));
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Who swaps the delivered files during [`swap_race`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Swapper {
    /// A thread of this (root) process: fastest, so the race is hit most often.
    Thread,
    /// A forked child that dropped to the nstance-agent account, as the real attacker is.
    Agent,
}

/// nstance-agent keeps swapping each delivered file between a real one and a link to a root-only
/// secret while recv runs again and again (bounded: 30 passes or 10 s). Each name has a sibling
/// link to the secret and the two are exchanged atomically (renameat2 RENAME_EXCHANGE), so the
/// name always exists and flips every few microseconds. recv opens, checks and reads one
/// descriptor, so the secret never reaches a destination.
fn swap_race(swapper: Swapper) {
    // One race at a time: each swapper keeps a core busy.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let root = node("knd", "aws");
    let r = root.path().to_path_buf();
    apply(&r, "aws");
    // Root-only secrets that would pass every content check.
    let secret_cert = pem("CERTIFICATE", "TOPSECRET-CERTIFICATE");
    let secret_key = pem("PRIVATE KEY", "TOPSECRET-PRIVATE-KEY");
    let secret_env = "KUBE_API_PUBLIC_HOSTNAME=topsecret.example\n";
    let secrets = r.join("root/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (n, c) in [
        ("cert", secret_cert.as_str()),
        ("key", secret_key.as_str()),
        ("env", secret_env),
    ] {
        std::fs::write(secrets.join(n), c).unwrap();
        std::fs::set_permissions(
            secrets.join(n),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let recv_dir = r.join("opt/nstance-agent/recv");
    let keys_dir = r.join("opt/nstance-agent/keys");
    std::fs::create_dir_all(&recv_dir).unwrap();
    std::fs::create_dir_all(&keys_dir).unwrap();
    let mut swapped: Vec<(PathBuf, String, PathBuf)> = Vec::new();
    for n in [
        "ca.crt",
        "kubelet.client.crt",
        "kubelet.server.crt",
        "containerd.client.crt",
        "kube2iam.client.crt",
        "registry.server.crt",
    ] {
        swapped.push((recv_dir.join(n), pem_for(n, n), secrets.join("cert")));
    }
    swapped.push((
        recv_dir.join("mutable.env"),
        "KUBE_LOG_LEVEL=3\n".into(),
        secrets.join("env"),
    ));
    for k in ["kubelet.client", "kubelet.server", "registry.server"] {
        swapped.push((
            keys_dir.join(format!("{k}.key")),
            pem("PRIVATE KEY", k),
            secrets.join("key"),
        ));
    }
    let mut pairs = Vec::new();
    for (path, real, secret) in &swapped {
        std::fs::write(path, real).unwrap();
        let twin = path.with_file_name(format!(
            ".swap-{}",
            path.file_name().unwrap().to_str().unwrap()
        ));
        std::os::unix::fs::symlink(secret, &twin).unwrap();
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        pairs.push((c(path), c(&twin)));
    }
    let exchange = |a: &std::ffi::CString, b: &std::ffi::CString| unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let mut thread = None;
    let mut child = None;
    match swapper {
        Swapper::Thread => {
            let (stop, swaps, pairs) = (stop.clone(), swaps.clone(), pairs.clone());
            thread = Some(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for (a, b) in &pairs {
                        let rc = exchange(a, b);
                        assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
                    }
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        Swapper::Agent => {
            let db = UserDb::load(&r).unwrap();
            let (uid, gid) = (
                db.uid("nstance-agent").unwrap(),
                db.gid("nstance-agent").unwrap(),
            );
            // The agent owns its directories and what it delivered; the temp root must be
            // traversable for it, as / is on a node.
            for d in [&r, &r.join("opt"), &r.join("opt/nstance-agent")] {
                std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            for (path, _, _) in &swapped {
                let dir = path.parent().unwrap();
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
                for e in std::fs::read_dir(dir).unwrap().flatten() {
                    std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).unwrap();
                }
            }
            // Its supplementary groups, as login would set them (/opt is 0750 root:podplane).
            let groups: Vec<libc::gid_t> = std::fs::read_to_string(r.join("etc/group"))
                .unwrap()
                .lines()
                .filter(|l| {
                    l.split(':')
                        .nth(3)
                        .is_some_and(|m| m.split(',').any(|u| u == "nstance-agent"))
                })
                .filter_map(|l| l.split(':').nth(2)?.parse().ok())
                .collect();
            // After fork only plain system calls: drop to the agent's ids, then swap until
            // killed; exit 2 if a swap is refused (the test then fails: it proves nothing).
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                unsafe {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setresgid(gid, gid, gid) != 0
                        || libc::setresuid(uid, uid, uid) != 0
                    {
                        libc::_exit(3);
                    }
                    loop {
                        for (a, b) in &pairs {
                            if exchange(a, b) != 0 {
                                libc::_exit(2);
                            }
                        }
                    }
                }
            }
            child = Some(pid);
        }
    }
    let markers: [&[u8]; 3] = [
        secret_cert.lines().nth(1).unwrap().as_bytes(),
        secret_key.lines().nth(1).unwrap().as_bytes(),
        b"topsecret",
    ];
    let started = std::time::Instant::now();
    let mut passes = 0;
    let mut leaked = Vec::new();
    while passes < 30 && started.elapsed() < Duration::from_secs(10) {
        let rep = recv::recv(
            &r,
            &SystemHost,
            &facts("aws"),
            &RecvOptions {
                debounce: Duration::ZERO,
                services: Services::None,
            },
        );
        passes += 1;
        if let Err(e) = rep {
            leaked.push(format!("pass {passes}: recv failed: {e}"));
            break;
        }
        for (p, c) in installed_contents(&r) {
            if markers.iter().any(|m| contains(&c, m)) {
                leaked.push(format!("pass {passes}: the secret reached {}", p.display()));
            }
        }
        if !leaked.is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = thread {
        t.join().unwrap();
    }
    if let Some(pid) = child {
        let mut status = 0;
        let still_swapping = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0;
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
        assert!(
            still_swapping,
            "the agent's swapper stopped early (exit status {status}): its swaps were refused"
        );
    }
    assert!(leaked.is_empty(), "{leaked:#?}");
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!("{passes} passes, {swaps} swap rounds");
    assert!(passes >= 3, "the race was exercised");
    if swapper == Swapper::Thread {
        assert!(swaps >= 100, "the race was exercised");
    }
    // With the swapper stopped and every delivery back in place, the real deliveries get
    // through. (Whether a pass during the race found them all in place depends on timing; on a
    // loaded machine none may have, so this is checked once the race is over.)
    for ((path, _, _), (a, b)) in swapped.iter().zip(&pairs) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            assert_eq!(exchange(a, b), 0, "{}", std::io::Error::last_os_error());
        }
    }
    let rep = recv::recv(
        &r,
        &SystemHost,
        &facts("aws"),
        &RecvOptions {
            debounce: Duration::ZERO,
            services: Services::None,
        },
    );
    assert!(rep.is_ok(), "{:?}", rep.err().map(|e| e.to_string()));
    assert!(r.join("opt/crt/kubelet.client.crt").exists());
}

#[test]
fn a_delivery_swapped_for_a_link_to_a_secret_is_never_copied() {
    swap_race(Swapper::Thread);
}

#[test]
fn a_delivery_swapped_by_the_agent_account_is_never_copied() {
    if !distinct_ids() {
        eprintln!("SKIP: needs root, to run the swapper as the nstance-agent account");
        return;
    }
    swap_race(Swapper::Agent);
}

/// nstance-agent owns /opt/nstance-agent: it can replace recv/ or keys/ with a link to a
/// root-only directory. recv refuses the link instead of installing what it points at.
#[test]
fn a_linked_recv_or_keys_directory_is_never_followed() {
    let root = node("knd", "aws");
    let r = root.path();
    apply(r, "aws");
    let stash = r.join("root/stash");
    std::fs::create_dir_all(&stash).unwrap();
    let stashed_cert = pem("CERTIFICATE", "STASHED-CERTIFICATE");
    let stashed_key = pem("PRIVATE KEY", "STASHED-PRIVATE-KEY");
    std::fs::write(stash.join("kubelet.client.crt"), &stashed_cert).unwrap();
    std::fs::write(stash.join("kubelet.client.key"), &stashed_key).unwrap();
    std::fs::write(stash.join("write-files.last"), "1").unwrap();
    for d in ["recv", "keys"] {
        let p = r.join("opt/nstance-agent").join(d);
        let _ = std::fs::remove_dir_all(&p);
        std::os::unix::fs::symlink(&stash, &p).unwrap();
    }
    let rep = recv::recv(
        r,
        &SystemHost,
        &facts("aws"),
        &RecvOptions {
            debounce: Duration::ZERO,
            services: Services::None,
        },
    );
    for (p, c) in installed_contents(r) {
        for m in [&stashed_cert, &stashed_key] {
            assert!(!contains(&c, m.as_bytes()), "{} was copied", p.display());
        }
    }
    assert!(
        stash.join("write-files.last").exists(),
        "nothing removed through the link"
    );
    // recv skips the linked directories; the apply after it refuses them too (it manages them as
    // directories), so the pass may end in that error.
    match rep {
        Ok(rep) => {
            let skipped = rep.skipped.join("\n");
            assert!(
                skipped.contains("/opt/nstance-agent/recv") && skipped.contains("symbolic link"),
                "{skipped}"
            );
        }
        Err(e) => assert!(e.to_string().contains("never follows links"), "{e}"),
    }
}

/// Oversized files and files that are not PEM of the expected kind are skipped, each named with
/// why; the good ones install. An oversized mutable.env is refused alone.
#[test]
fn oversized_and_malformed_deliveries_are_skipped_and_the_rest_install() {
    let root = node("knc", "aws");
    let r = root.path();
    apply(r, "aws");
    let settings = r.join("opt/podplane/etc/mutable.env");
    let before = std::fs::read(&settings).unwrap();
    deliver(r, "kubelet.client.crt", &pem("CERTIFICATE", "good"));
    deliver(r, "registry.server.crt", &pem("CERTIFICATE", "good2"));
    deliver(r, "kubelet.server.crt", "x");
    deliver(r, "ca.crt", &pem("CERTIFICATE", "big").repeat(2000));
    deliver(r, "ca.pub", &pem("CERTIFICATE", "not a public key"));
    deliver(r, "service-accounts.key", &pem("PUBLIC KEY", "not private"));
    deliver(
        r,
        "service-accounts.pub",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    );
    deliver(r, "netsy.server.crt", "-----BEGIN CERTIFICATE-----\nMAA=\n");
    agent_key(r, "kubelet.client");
    std::fs::write(
        r.join("opt/nstance-agent/keys/registry.server.key"),
        "not a key",
    )
    .unwrap();
    let mut env = "# padding\n".repeat(30_000);
    env.push_str("KUBE_LOG_LEVEL=3\n");
    deliver(r, "mutable.env", &env);
    let rep = recv::recv(
        r,
        &SystemHost,
        &facts("aws"),
        &RecvOptions {
            debounce: Duration::ZERO,
            services: Services::None,
        },
    )
    .unwrap_or_else(|e| panic!("recv: {e}"));
    assert_eq!(
        rep.installed,
        [
            "/opt/crt/kubelet.client.crt",
            "/opt/crt/registry.server.crt",
            "/opt/key/kubelet/kubelet.client.key",
        ]
    );
    let skipped = rep.skipped.join("\n");
    for (name, why) in [
        ("kubelet.server.crt", "no PEM"),
        ("ca.crt", "larger than"),
        ("ca.pub", "CERTIFICATE"),
        ("service-accounts.key", "PUBLIC KEY"),
        ("service-accounts.pub", "base64"),
        ("netsy.server.crt", "END"),
        ("registry.server.key", "no PEM"),
    ] {
        assert!(
            skipped.lines().any(|l| l.contains(name) && l.contains(why)),
            "{name} ({why}) not in:\n{skipped}"
        );
    }
    match &rep.mutable {
        MutableOutcome::Refused(e) => assert!(e.to_string().contains("larger than"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&settings).unwrap(), before);
    assert!(rep.applied.is_some());
}

/// Invalid UTF-8 in mutable.env is refused alone, naming the line; the certificates still install
/// and the apply still runs. A leading BOM and CRLF line endings are accepted.
#[test]
fn a_mutable_env_with_bad_bytes_is_refused_alone() {
    let root = node("knd", "aws");
    let r = root.path();
    apply(r, "aws");
    let settings = r.join("opt/podplane/etc/mutable.env");
    let before = std::fs::read(&settings).unwrap();
    deliver_bytes(
        r,
        "mutable.env",
        b"KUBE_LOG_LEVEL=4\nREGISTRY_HOSTNAME=r\xffx\n",
    );
    deliver(r, "kubelet.client.crt", &pem("CERTIFICATE", "c"));
    let opts = RecvOptions {
        debounce: Duration::ZERO,
        services: Services::None,
    };
    let rep = recv::recv(r, &SystemHost, &facts("aws"), &opts)
        .unwrap_or_else(|e| panic!("recv stopped on a bad mutable.env: {e}"));
    match &rep.mutable {
        MutableOutcome::Refused(e) => {
            let e = e.to_string();
            assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&settings).unwrap(), before);
    assert_eq!(rep.installed, ["/opt/crt/kubelet.client.crt"]);
    assert!(rep.applied.is_some());

    deliver_bytes(
        r,
        "mutable.env",
        b"\xef\xbb\xbfKUBE_LOG_LEVEL='5'\r\n# c\r\n",
    );
    let rep = recv::recv(r, &SystemHost, &facts("aws"), &opts).unwrap();
    assert!(
        matches!(rep.mutable, MutableOutcome::Merged),
        "{:?}",
        rep.mutable
    );
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.contains("KUBE_LOG_LEVEL='5'\n"), "{text}");
}

/// The pending-changes state file is read without blocking (a FIFO there must not hang the
/// pass) and replaced atomically.
#[test]
fn pending_changes_is_read_safely_and_replaced() {
    let root = node("knd", "aws");
    let r = root.path().to_path_buf();
    apply(&r, "aws");
    let pending = r.join("var/lib/vmagent/pending-changes");
    let c = std::ffi::CString::new(pending.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    deliver(&r, "kubelet.client.crt", &pem("CERTIFICATE", "c"));
    trigger(&r);
    let (tx, rx) = std::sync::mpsc::channel();
    let r2 = r.clone();
    std::thread::spawn(move || {
        let rep = recv::recv(
            &r2,
            &SystemHost,
            &facts("aws"),
            &RecvOptions {
                debounce: Duration::ZERO,
                services: Services::None,
            },
        )
        .map_err(|e| e.to_string());
        let _ = tx.send(rep);
    });
    let rep = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("recv hung on a FIFO at pending-changes")
        .unwrap_or_else(|e| panic!("recv: {e}"));
    assert_eq!(rep.installed, ["/opt/crt/kubelet.client.crt"]);
    assert!(rep.applied.is_some());
    assert!(std::fs::symlink_metadata(&pending).is_err(), "cleared");
}

/// A hard link in recv/ can name a file that is not the agent's (where the kernel allows it):
/// a delivery with more than one link is skipped, never copied.
#[test]
fn a_hard_linked_delivery_is_skipped() {
    let root = node("knd", "aws");
    let r = root.path();
    apply(r, "aws");
    let secret = r.join("opt/nstance-agent/secret.crt");
    let secret_pem = pem("CERTIFICATE", "HARDLINKED-SECRET");
    std::fs::write(&secret, &secret_pem).unwrap();
    std::fs::create_dir_all(r.join("opt/nstance-agent/recv")).unwrap();
    std::fs::hard_link(&secret, r.join("opt/nstance-agent/recv/ca.crt")).unwrap();
    deliver(r, "kubelet.client.crt", &pem("CERTIFICATE", "c"));
    let rep = recv::recv(
        r,
        &SystemHost,
        &facts("aws"),
        &RecvOptions {
            debounce: Duration::ZERO,
            services: Services::None,
        },
    )
    .unwrap_or_else(|e| panic!("recv: {e}"));
    assert_eq!(rep.installed, ["/opt/crt/kubelet.client.crt"]);
    let skipped = rep.skipped.join("\n");
    assert!(
        skipped.contains("ca.crt: /opt/nstance-agent/recv/ca.crt has 2 hard links"),
        "{skipped}"
    );
    assert!(!r.join("opt/crt/ca.crt").exists());
}
