//! `vmagent plan` / `apply` against a node root where a service account is hostile: links planted
//! in directories it owns, swapped in a loop while root applies, and temp-file names planted in
//! advance. Root must never write, chmod or chown anything outside that account's own directories.
//! Also: service actions deferred by `apply --services none` survive until an apply carries them out.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use vmagent::apply::Services;
use vmagent::converge;
use vmagent::host::{RecordingHost, SystemHost};

fn setup_apply(r: &Path) {
    converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_or_else(|e| panic!("setup apply: {e}"));
}

fn listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_link_planted_in_a_service_home_is_an_error_naming_it_and_nothing_is_written_through_it() {
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // nstance-agent owns /opt/nstance-agent: it moves bin away and points bin at /etc/profile.d.
    std::fs::create_dir_all(r.join("etc/profile.d")).unwrap();
    std::fs::rename(
        r.join("opt/nstance-agent/bin"),
        r.join("opt/nstance-agent/bin.old"),
    )
    .unwrap();
    symlink("../../etc/profile.d", r.join("opt/nstance-agent/bin")).unwrap();

    let err = converge::plan(r, &SystemHost, &facts("aws"), &BTreeSet::new()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/opt/nstance-agent/bin") && msg.contains("symbolic link"),
        "{msg}"
    );
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/opt/nstance-agent/bin"), "{err}");
    assert_eq!(
        listing(&r.join("etc/profile.d")),
        Vec::<String>::new(),
        "root wrote through the planted link"
    );

    // A link as the file itself (the wrapper swapped for a link to a root-only file) is refused
    // too, and the file it points at keeps its mode and content.
    std::fs::remove_file(r.join("opt/nstance-agent/bin")).unwrap();
    std::fs::rename(
        r.join("opt/nstance-agent/bin.old"),
        r.join("opt/nstance-agent/bin"),
    )
    .unwrap();
    std::fs::write(r.join("etc/shadow"), "root:$6$secret:1::::::\n").unwrap();
    let wrapper = r.join("opt/nstance-agent/bin/run-nstance-agent.sh");
    std::fs::remove_file(&wrapper).unwrap();
    symlink("../../../etc/shadow", &wrapper).unwrap();
    let err = converge::plan(r, &SystemHost, &facts("aws"), &BTreeSet::new()).unwrap_err();
    assert!(err.to_string().contains("run-nstance-agent.sh"), "{err}");
    let _ = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/shadow")).unwrap(),
        "root:$6$secret:1::::::\n"
    );
    let md = std::fs::metadata(r.join("etc/shadow")).unwrap();
    assert_eq!(
        md.mode() & 0o777,
        0o644,
        "mode of the link's target changed"
    );
}

#[test]
fn a_link_planted_at_a_service_directory_is_never_chowned_or_chmoded() {
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // /opt/nstance-agent/identity swapped for a link to /etc: the permissions step must refuse it
    // rather than hand /etc to nstance-agent.
    std::fs::create_dir_all(r.join("etc/sudoers.d")).unwrap();
    let etc_before = std::fs::metadata(r.join("etc")).unwrap();
    std::fs::rename(
        r.join("opt/nstance-agent/identity"),
        r.join("opt/nstance-agent/identity.old"),
    )
    .unwrap();
    symlink("../../etc", r.join("opt/nstance-agent/identity")).unwrap();
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("identity"), "{err}");
    let etc_after = std::fs::metadata(r.join("etc")).unwrap();
    assert_eq!(
        (etc_after.mode(), etc_after.uid(), etc_after.gid()),
        (etc_before.mode(), etc_before.uid(), etc_before.gid())
    );
}

#[test]
fn planted_temp_names_are_not_opened_and_are_swept() {
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // Links with temp-file names, as a killed run (or an attacker guessing names) would leave.
    std::fs::write(r.join("etc/shadow"), "secret\n").unwrap();
    let bin = r.join("opt/nstance-agent/bin");
    for pid in [1, 2, std::process::id()] {
        symlink(
            "../../../etc/shadow",
            bin.join(format!(".run-nstance-agent.sh.vmagent-{pid}.part")),
        )
        .unwrap();
    }
    std::fs::remove_file(bin.join("run-nstance-agent.sh")).unwrap();
    setup_apply(r);
    assert_eq!(
        std::fs::read_to_string(r.join("etc/shadow")).unwrap(),
        "secret\n"
    );
    assert_eq!(listing(&bin), ["run-nstance-agent.sh"]);
}

/// Run `script` with `sh` as `uid:gid` (plus `groups`), in the background.
fn as_account(uid: u32, gid: u32, groups: &str, script: &str) -> std::process::Child {
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            &format!("--groups={groups}"),
            "sh",
            "-c",
            script,
        ])
        .spawn()
        .expect("setpriv")
}

fn id_of(root: &Path, file: &str, name: &str) -> u32 {
    std::fs::read_to_string(root.join(file))
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| f[2].parse().unwrap())
        })
        .unwrap()
}

#[test]
fn a_service_account_swapping_links_in_a_loop_never_steers_a_root_write() {
    if unsafe { libc::getuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("SKIP: needs root and setpriv (CI runs it)");
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // Let the unprivileged account reach its home, as on a node (/ and /opt are traversable).
    std::fs::set_permissions(r, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uid = id_of(r, "etc/passwd", "nstance-agent");
    let gid = id_of(r, "etc/group", "nstance-agent");
    let podplane = id_of(r, "etc/group", "podplane");
    std::fs::create_dir_all(r.join("etc/profile.d")).unwrap();
    std::fs::write(r.join("etc/shadow"), "secret\n").unwrap();
    let home = r.join("opt/nstance-agent");
    // For three seconds: replace bin (root's) with a directory of its own that lacks the wrapper,
    // so root plans to write it, then swap that for a link to /etc/profile.d; plant links with
    // temp-file names; swap the nonce for a link to /etc/shadow.
    let script = format!(
        r#"exec 2>/dev/null; cd '{home}' || exit 1
end=$(( $(date +%s) + 3 ))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
  i=$((i+1))
  mv bin bin.real 2>/dev/null
  mkdir -p bin
  ln -sf ../../../etc/shadow "bin/.run-nstance-agent.sh.vmagent-$i.part" 2>/dev/null
  mv bin "bin.$i" 2>/dev/null && ln -s ../../etc/profile.d bin
  rm -f identity/nonce.jwt; ln -s ../../../etc/shadow identity/nonce.jwt
  rm -f bin; rm -rf "bin.$i"; mv bin.real bin 2>/dev/null
  rm -f identity/nonce.jwt
done
"#,
        home = home.display()
    );
    let mut attacker = as_account(uid, gid, &podplane.to_string(), &script);
    let start = Instant::now();
    let (mut ok, mut refused) = (0, 0);
    while start.elapsed() < Duration::from_secs(3) {
        match converge::apply(
            r,
            &SystemHost,
            &facts("aws"),
            Services::None,
            &BTreeSet::new(),
        ) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(attacker.wait().unwrap().success(), "attacker script failed");
    eprintln!("applies: {ok} ok, {refused} refused");
    assert!(ok + refused > 3, "too few applies ran: {ok} + {refused}");
    assert_eq!(listing(&r.join("etc/profile.d")), Vec::<String>::new());
    let shadow = std::fs::metadata(r.join("etc/shadow")).unwrap();
    assert_eq!(
        (shadow.uid(), shadow.mode() & 0o7777),
        (0, 0o644),
        "/etc/shadow was chowned or chmoded"
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/shadow")).unwrap(),
        "secret\n"
    );
    // After the attack the node converges again.
    std::fs::create_dir_all(home.join("bin")).ok();
    setup_apply(r);
    assert!(home.join("bin/run-nstance-agent.sh").is_file());
}

#[test]
fn actions_deferred_by_services_none_are_planned_until_an_apply_carries_them_out() {
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // The files are in place, but systemd was never told: the plan still shows the actions.
    let p = plan(r, "aws");
    assert!(!p.is_empty(), "deferred actions were lost");
    assert!(p.daemon_reload);
    assert!(p.files.is_empty(), "{p}");
    let enables: Vec<&str> = p
        .services
        .iter()
        .filter(|s| s.actions.contains(&vmagent::plan::Action::Enable))
        .map(|s| s.unit.as_str())
        .collect();
    assert!(enables.contains(&"containerd.service"), "{p}");
    let record = std::fs::read_to_string(r.join("var/lib/vmagent/deferred-actions")).unwrap();
    assert!(record.contains("enable containerd.service"), "{record}");

    // A second `--services none` keeps them; an apply with services carries them out (offline
    // here: enables through `systemctl --root`) and clears the record.
    setup_apply(r);
    assert!(r.join("var/lib/vmagent/deferred-actions").exists());
    let host = RecordingHost::new();
    let (_, report) =
        converge::apply(r, &host, &facts("aws"), Services::Systemd, &BTreeSet::new()).unwrap();
    assert!(
        report
            .actions
            .iter()
            .any(|a| a == "enable containerd.service"),
        "{report:?}"
    );
    assert!(!r.join("var/lib/vmagent/deferred-actions").exists());
}

/// A host that checks, whenever vmagent hands it a new file to chown, that nothing has been
/// written to it yet and nobody but its owner can read it: the owner and mode are set before the
/// first byte, so a secret is never readable, even for a moment, by another account.
struct CheckingHost {
    inner: RecordingHost,
    violations: std::sync::Mutex<Vec<String>>,
    checked: std::sync::atomic::AtomicUsize,
}

impl vmagent::host::Host for CheckingHost {
    fn run(
        &self,
        cmd: &vmagent::host::Cmd,
    ) -> Result<vmagent::host::Output, vmagent::host::HostError> {
        self.inner.run(cmd)
    }

    fn chown(
        &self,
        root: &Path,
        file: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        user: &str,
        group: &str,
    ) -> Result<(), vmagent::host::HostError> {
        let md = vmagent::safefs::meta_of(file).unwrap();
        if md.kind == vmagent::safefs::Kind::File {
            self.checked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if md.size != 0 || md.mode & 0o077 != 0 {
                self.violations.lock().unwrap().push(format!(
                    "{}: {} bytes, mode {:04o} before its owner was set",
                    path.display(),
                    md.size,
                    md.mode
                ));
            }
        }
        self.inner.chown(root, file, path, user, group)
    }

    fn resolve(&self, name: &str) -> Vec<std::net::IpAddr> {
        self.inner.resolve(name)
    }

    fn can_lower_oom_scores(&self) -> bool {
        self.inner.can_lower_oom_scores()
    }

    fn env_var(&self, key: &str) -> Option<String> {
        self.inner.env_var(key)
    }
}

#[test]
fn secrets_are_never_written_before_their_owner_and_mode_are_set() {
    let root = node("knc", "aws");
    let r = root.path();
    setup_apply(r);
    // Credentials that end up in env files and configs readable only by their service.
    for (k, v) in [
        ("REGISTRY_HOSTNAME", "registry.example.com"),
        ("REGISTRY_BUCKET", "images"),
        ("REGISTRY_ACCESS_KEY_ID", "AKIAZOT"),
        ("REGISTRY_SECRET_ACCESS_KEY", "zot-s3-secret"),
        ("NETSY_BUCKET", "netsy"),
        ("NETSY_ACCESS_KEY_ID", "AKIANETSY"),
        ("NETSY_SECRET_ACCESS_KEY", "netsy-s3-secret"),
    ] {
        set_mutable(r, k, v);
    }
    let host = CheckingHost {
        inner: RecordingHost::new(),
        violations: Default::default(),
        checked: Default::default(),
    };
    converge::apply(r, &host, &facts("aws"), Services::None, &BTreeSet::new()).unwrap();
    let checked = host.checked.load(std::sync::atomic::Ordering::Relaxed);
    assert!(checked >= 4, "only {checked} files were checked");
    let zot_env = std::fs::read_to_string(r.join("opt/env/zot.env")).unwrap();
    assert!(zot_env.contains("zot-s3-secret"), "{zot_env}");
    assert_eq!(*host.violations.lock().unwrap(), Vec::<String>::new());
}

#[test]
fn a_merged_file_that_is_not_text_is_an_error_and_is_left_alone() {
    let root = node("knd", "aws");
    let r = root.path();
    setup_apply(r);
    let hosts = b"127.0.0.1 localhost\n10.0.0.9 caf\xe9\n".to_vec();
    std::fs::write(r.join("etc/hosts"), &hosts).unwrap();
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/etc/hosts") && msg.contains("line 2"),
        "{msg}"
    );
    assert_eq!(std::fs::read(r.join("etc/hosts")).unwrap(), hosts);
}

#[test]
fn a_link_in_place_of_the_sudoers_file_or_the_nonce_is_never_followed() {
    let root = node("knd", "aws");
    let r = root.path();
    setup_apply(r);
    // A file somewhere else that the agent must never change through a link.
    let victim = r.join("etc/shadow");
    std::fs::write(&victim, "root:*:1::::::\n").unwrap();
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let sudoers = r.join("etc/sudoers.d/admin");
    std::fs::remove_file(&sudoers).unwrap();
    symlink("../shadow", &sudoers).unwrap();
    let err = converge::plan(r, &SystemHost, &facts("aws"), &BTreeSet::new()).unwrap_err();
    assert!(err.to_string().contains("/etc/sudoers.d/admin"), "{err}");
    let err = converge::apply(
        r,
        &SystemHost,
        &facts("aws"),
        Services::None,
        &BTreeSet::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/etc/sudoers.d/admin"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root:*:1::::::\n"
    );
    std::fs::remove_file(&sudoers).unwrap();

    // nstance-agent owns the identity directory: a nonce that is a link is left alone.
    let nonce = r.join("opt/nstance-agent/identity/nonce.jwt");
    symlink("../../../etc/shadow", &nonce).unwrap();
    let p = converge::plan(r, &SystemHost, &facts("aws"), &BTreeSet::new())
        .unwrap()
        .1;
    assert!(
        !p.to_string()
            .contains("change /opt/nstance-agent/identity/nonce.jwt"),
        "{p}"
    );
    setup_apply(r);
    let md = std::fs::metadata(&victim).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert!(std::fs::symlink_metadata(&nonce).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_to_string(&sudoers).unwrap(),
        vmagent::accounts::SUDOERS_LINE
    );
}
