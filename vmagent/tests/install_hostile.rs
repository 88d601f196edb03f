//! `vmagent install` against hostile inputs and a hostile node, on overlay copies of the cached
//! Debian trixie root (see install_root.rs): tarballs that try to escape through chains of
//! links or links on disk, set-id members, a bad archive or deb next to good ones, links that a
//! service account plants in the directories it owns, and a dpkg that an interrupted install
//! left running. Needs root; without it every test here says SKIP and returns.

mod install_common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use install_common::*;
use podplane_testkit::tarball::{M, targz};

/// Replace the artifact of `key` (file name `file` in the artifacts directory) and pin it.
fn replace(o: &Overlay, manifest: &mut serde_json::Value, key: &str, file: &str, bytes: &[u8]) {
    std::fs::write(o.path(&format!("/opt/podplane/artifacts/{file}")), bytes).unwrap();
    let d = &mut manifest["vmconfig"]["dependencies"][key];
    d["digest"] = format!("sha256:{}", podplane_testkit::sha256_hex(bytes)).into();
    d["size"] = bytes.len().into();
    std::fs::write(
        o.path("/opt/podplane/share/vmconfig-manifest.json"),
        manifest.to_string(),
    )
    .unwrap();
}

/// Did any deb of the node get installed? (dpkg never ran if not.)
fn no_deb_installed(root: &Path) -> bool {
    let status = chroot(
        root,
        &[
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Status}\n",
            "uidmap",
            "libsubid5",
            "fluent-bit",
            "libpq5",
        ],
    );
    !status.contains("ok installed")
}

/// The root as the install is judged, without the inputs a test edits.
fn state(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut s = snapshot(root);
    s.retain(|k, _| {
        !k.starts_with("opt/podplane/artifacts")
            && !k.starts_with("opt/podplane/share/vmconfig-manifest")
    });
    s
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_bad_archive_or_deb_next_to_good_ones_leaves_the_root_as_it_was() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();
    let pristine = state(&root);

    // nstance-agent comes after cni-plugins, containerd, crictl and the fluent-bit deb: its
    // archive is cut short. Nothing of the others may be staged, no directory made, no dpkg.
    let good = std::fs::read(o.path("/opt/podplane/artifacts/nstance-agent.tar.gz")).unwrap();
    let mut m = manifest.clone();
    replace(
        &o,
        &mut m,
        "nstance-agent",
        "nstance-agent.tar.gz",
        &good[..good.len() - 20],
    );
    let (code, err) = install(&root);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nstance-agent.tar.gz: cannot read the archive"),
        "{err}"
    );
    assert!(no_deb_installed(&root), "dpkg never ran");
    assert_eq!(state(&root), pristine, "the root is as it was");
    assert!(!o.path("/opt/cni").exists());

    // A "deb" that is not one, pinned by the manifest (say, an error page that was fetched):
    // the real debs must not be installed without it.
    let mut m = manifest.clone();
    replace(&o, &mut m, "nstance-agent", "nstance-agent.tar.gz", &good);
    replace(
        &o,
        &mut m,
        "libpq5",
        "libpq5.deb",
        b"<html><body>404 Not Found</body></html>\n",
    );
    let (code, err) = install(&root);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("libpq5.deb: not a usable Debian package"),
        "{err}"
    );
    assert!(no_deb_installed(&root), "dpkg never ran");
    assert_eq!(state(&root), pristine, "the root is as it was");
}

#[test]
fn hostile_tarball_members_are_refused_or_defanged() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();
    let pristine = state(&root);
    let outside = o.path("/srv/outside");
    std::fs::create_dir_all(&outside).unwrap();

    // Each link alone stays inside /opt/cni/bin; together l1 is /opt/cni.
    let chain = targz(&[
        M::File("bridge", 0o755, b"#!/bin/sh\n"),
        M::Dir("sub/"),
        M::Link("sub/l2", ".."),
        M::Link("l1", "sub/l2/.."),
    ]);
    // A link to a link created earlier in the archive, leading out.
    let link_to_link = targz(&[M::Dir("d/"), M::Link("d/up", "../.."), M::Link("x", "d/up")]);
    let mut m = manifest.clone();
    for (what, bytes) in [("chain", chain), ("link to link", link_to_link)] {
        replace(&o, &mut m, "cni-plugins", "cni-plugins.tar.gz", &bytes);
        let (code, err) = install(&root);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(
            err.contains("is refused") && err.contains("pointing outside the destination"),
            "{what}: {err}"
        );
        assert!(no_deb_installed(&root), "{what}: dpkg never ran");
        assert_eq!(state(&root), pristine, "{what}");
    }

    // A link on disk in /opt/cni/bin (left there by anything): a member is never written
    // through it.
    std::fs::create_dir_all(o.path("/opt/cni/bin")).unwrap();
    std::os::unix::fs::symlink(&outside, o.path("/opt/cni/bin/evil")).unwrap();
    let through = targz(&[
        M::File("bridge", 0o755, b"#!/bin/sh\n"),
        M::File("evil/pwned", 0o755, b"#!/bin/sh\necho pwned\n"),
    ]);
    replace(&o, &mut m, "cni-plugins", "cni-plugins.tar.gz", &through);
    let (code, err) = install(&root);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("\"evil/pwned\" is refused")
            && err.contains("goes through the symlink")
            && err.contains("/opt/cni/bin/evil"),
        "{err}"
    );
    assert_eq!(names(&outside), Vec::<String>::new());
    assert!(no_deb_installed(&root), "dpkg never ran");
    std::fs::remove_file(o.path("/opt/cni/bin/evil")).unwrap();

    // Set-id, sticky and group/other-writable members install as 0755 (or less).
    let modes = targz(&[
        M::File("bridge", 0o6777, b"#!/bin/sh\n"),
        M::File("loopback", 0o1777, b"#!/bin/sh\n"),
        M::File("host-local", 0o775, b"#!/bin/sh\n"),
        M::File("LICENSE", 0o666, b"license\n"),
    ]);
    replace(&o, &mut m, "cni-plugins", "cni-plugins.tar.gz", &modes);
    let (code, err) = install(&root);
    assert_eq!(code, 0, "{err}");
    for f in ["bridge", "loopback", "host-local", "LICENSE"] {
        let md = std::fs::symlink_metadata(o.path(&format!("/opt/cni/bin/{f}"))).unwrap();
        assert_eq!(
            md.mode() & 0o7022,
            0,
            "{f}: {:o} keeps no set-id, sticky or group/other write bit",
            md.mode()
        );
        assert_eq!((md.uid(), md.gid()), (0, 0), "{f}");
    }
}

#[test]
fn a_link_a_service_plants_in_its_home_is_refused_and_nothing_is_written_there() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();
    let profile_d = o.path("/etc/profile.d");
    let cron_d = o.path("/etc/cron.d");
    std::fs::create_dir_all(&profile_d).unwrap();
    std::fs::create_dir_all(&cron_d).unwrap();
    let before = (names(&profile_d), names(&cron_d));

    // The accounts own their homes (as permissions left them on an installed node) and point
    // bin somewhere root reads: a root-owned, executable file there would be run by root.
    for (home, target) in [
        ("/opt/nstance-agent", "../../etc/profile.d"),
        ("/opt/kube2iam", "../../etc/cron.d"),
    ] {
        std::fs::create_dir_all(o.path(home)).unwrap();
        std::os::unix::fs::chown(o.path(home), Some(65534), Some(65534)).unwrap();
        let bin = o.path(&format!("{home}/bin"));
        std::os::unix::fs::symlink(target, &bin).unwrap();
        std::os::unix::fs::lchown(&bin, Some(65534), Some(65534)).unwrap();
    }

    // kube2iam (a binary) is checked first, then nstance-agent (a tarball member).
    for (home, planted) in [
        ("/opt/kube2iam", &cron_d),
        ("/opt/nstance-agent", &profile_d),
    ] {
        let (code, err) = install(&root);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "{home}/bin: refusing to go through a symbolic link"
            )),
            "{home}: {err}"
        );
        assert!(no_deb_installed(&root), "{home}: dpkg never ran");
        assert_eq!(
            (names(&profile_d), names(&cron_d)),
            before,
            "{home}: nothing written through the link into {}",
            planted.display()
        );
        std::fs::remove_file(o.path(&format!("{home}/bin"))).unwrap();
    }

    // With the links gone, the install goes through.
    let (code, err) = install(&root);
    assert_eq!(code, 0, "{err}");
    assert!(o.path("/opt/nstance-agent/bin/nstance-agent").is_file());
    assert_eq!((names(&profile_d), names(&cron_d)), before);
}

/// Hold `<root>/<lock>` the way a running dpkg holds it (an fcntl write lock; here an
/// open-file-description lock, which conflicts the same way) until dropped.
fn hold_dpkg_lock(root: &Path, lock: &str) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join(lock.trim_start_matches('/')))
        .unwrap();
    // SAFETY: a zeroed flock is valid; F_OFD_SETLK on a descriptor we own.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &fl) },
        0,
        "lock {lock}"
    );
    f
}

#[test]
fn install_waits_for_a_dpkg_a_killed_run_left_before_unblocking_services() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();
    let pristine = state(&root);
    let held = hold_dpkg_lock(&root, "/var/lib/dpkg/lock");
    // Nothing to recover, but dpkg busy (say, apt): a timeout leaves nothing staged behind.
    let out = vmagent(&root)
        .args(["install", "--lock-timeout", "500ms"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/var/lib/dpkg/lock is still held by"), "{err}");
    assert_eq!(state(&root), pristine, "nothing staged, no directory made");
    assert!(!o.path("/usr/sbin/policy-rc.d").exists());
    drop(held);

    // What a run killed while its dpkg -i ran leaves: our policy-rc.d (the administrator's one
    // saved beside it), and that dpkg, still running, holding dpkg's lock.
    let policy = o.path("/usr/sbin/policy-rc.d");
    let backup = o.path("/usr/sbin/policy-rc.d.podplane-bak");
    std::fs::write(&backup, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(&policy, vmagent::install::deb::OUR_POLICY_RC).unwrap();
    let held = hold_dpkg_lock(&root, "/var/lib/dpkg/lock-frontend");

    // With a short timeout: a clear error, services still blocked, nothing installed.
    let start = Instant::now();
    let out = vmagent(&root)
        .args(["install", "--lock-timeout", "1s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30), "bounded wait");
    assert!(
        err.contains("/var/lib/dpkg/lock-frontend is still held by")
            && err.contains("--lock-timeout"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        vmagent::install::deb::OUR_POLICY_RC,
        "services stay blocked while that dpkg may still run"
    );
    assert!(backup.exists(), "the administrator's policy-rc.d is kept");
    assert!(no_deb_installed(&root));

    // With the default timeout: install waits, touching nothing, until the lock is released.
    let child = vmagent(&root)
        .arg("install")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        vmagent::install::deb::OUR_POLICY_RC,
        "still blocked while dpkg's lock is held"
    );
    assert!(backup.exists());
    assert!(no_deb_installed(&root));
    drop(held);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("waiting up to 300s"), "{err}");
    assert!(err.contains("restored /usr/sbin/policy-rc.d"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!backup.exists());
    assert!(!no_deb_installed(&root));
}
