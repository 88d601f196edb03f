use super::*;
use crate::host::RecordingHost;

const T: Duration = Duration::from_secs(5);

#[test]
fn guard_saves_and_restores_an_existing_policy() {
    let root = tempfile::tempdir().unwrap();
    let policy = root.path().join("usr/sbin/policy-rc.d");
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    std::fs::write(&policy, "#!/bin/sh\nexit 0\n").unwrap();
    let g = PolicyRcGuard::block(root.path()).unwrap();
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), OUR_POLICY_RC);
    assert!(
        root.path()
            .join("usr/sbin/policy-rc.d.podplane-bak")
            .exists()
    );
    drop(g);
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(
        !root
            .path()
            .join("usr/sbin/policy-rc.d.podplane-bak")
            .exists()
    );
}

#[test]
fn leftovers_of_a_killed_run_are_recovered() {
    let root = tempfile::tempdir().unwrap();
    let g = PolicyRcGuard::block(root.path()).unwrap();
    std::mem::forget(g); // as if killed
    let policy = root.path().join("usr/sbin/policy-rc.d");
    assert!(policy.exists());
    let host = RecordingHost::new();
    let done = recover(root.path(), &host, T).unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(!policy.exists());
    assert!(host.actions().is_empty());
}

#[test]
fn interrupted_dpkg_is_configured_with_services_blocked() {
    let root = tempfile::tempdir().unwrap();
    let updates = root.path().join("var/lib/dpkg/updates");
    std::fs::create_dir_all(&updates).unwrap();
    std::fs::write(updates.join("0001"), "x").unwrap();
    let policy = root.path().join("usr/sbin/policy-rc.d");
    let p2 = policy.clone();
    let host = RecordingHost::with_responder(move |_| {
        assert!(is_ours(&p2), "services are blocked while dpkg runs");
        Ok(Default::default())
    });
    recover(root.path(), &host, T).unwrap();
    let r = root.path().display().to_string();
    assert_eq!(host.lines(), [format!("chroot {r} dpkg --configure -a")]);
    assert!(!policy.exists());
}

#[test]
fn one_dpkg_call_for_all_debs_and_restore_on_failure() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("opt/podplane/artifacts/libpq5.deb");
    let b = root.path().join("opt/podplane/artifacts/fluent-bit.deb");
    let host = RecordingHost::new();
    install(root.path(), &[b.clone(), a.clone()], &host, T).unwrap();
    let r = root.path().display().to_string();
    assert_eq!(
        host.lines(),
        [format!(
            "chroot {r} dpkg -i /opt/podplane/artifacts/fluent-bit.deb /opt/podplane/artifacts/libpq5.deb"
        )]
    );
    match &host.actions()[0] {
        crate::host::Recorded::Run(c) => {
            assert!(
                c.env
                    .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into()))
            )
        }
        other => panic!("{other}"),
    }

    let failing = RecordingHost::with_responder(|c| {
        Err(HostError::Failed {
            cmd: c.display(),
            status: "exit status: 1".into(),
            stderr: "dpkg: error processing archive".into(),
        })
    });
    let err = install(root.path(), &[a], &failing, T).unwrap_err();
    assert!(
        err.to_string().contains("dpkg: error processing archive"),
        "{err}"
    );
    assert!(!root.path().join("usr/sbin/policy-rc.d").exists());
}

/// Hold `<root>/<lock>` with an open-file-description lock (as a dpkg would hold it with its
/// fcntl lock) until the returned file is dropped.
fn hold(root: &Path, lock: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let p = fsutil::under_root(root, lock);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .unwrap();
    // SAFETY: a zeroed flock is valid; F_OFD_SETLK on a descriptor we own.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &fl) },
        0
    );
    f
}

#[test]
fn a_held_dpkg_lock_keeps_services_blocked_and_fails_clearly() {
    let root = tempfile::tempdir().unwrap();
    // A killed run left our policy-rc.d (and the administrator's saved one) while its dpkg
    // still runs.
    let policy = root.path().join("usr/sbin/policy-rc.d");
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    std::fs::write(&policy, "#!/bin/sh\nexit 0\n").unwrap();
    std::mem::forget(PolicyRcGuard::block(root.path()).unwrap());
    assert_eq!(lock_holder(root.path(), DPKG_LOCKS[0]).unwrap(), None);
    let held = hold(root.path(), DPKG_LOCKS[1]);
    assert!(lock_holder(root.path(), DPKG_LOCKS[1]).unwrap().is_some());

    let host = RecordingHost::new();
    let start = Instant::now();
    let err = recover(root.path(), &host, Duration::from_millis(300)).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(300));
    let msg = err.to_string();
    assert!(
        msg.contains("/var/lib/dpkg/lock is still held") && msg.contains("--lock-timeout"),
        "{msg}"
    );
    assert!(is_ours(&policy), "still blocking while that dpkg runs");
    assert!(
        root.path()
            .join("usr/sbin/policy-rc.d.podplane-bak")
            .exists()
    );
    let err = install(
        root.path(),
        &[root.path().join("x.deb")],
        &host,
        Duration::ZERO,
    )
    .unwrap_err();
    assert!(matches!(err, DebError::Busy { .. }), "{err}");
    assert!(host.actions().is_empty(), "dpkg never ran");

    // Released while waiting: recovery goes on.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
    });
    let done = recover(root.path(), &host, Duration::from_secs(10)).unwrap();
    t.join().unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
}

#[test]
fn nothing_to_recover_does_not_wait_for_dpkg() {
    let root = tempfile::tempdir().unwrap();
    let _held = hold(root.path(), DPKG_LOCKS[0]);
    let done = recover(root.path(), &RecordingHost::new(), Duration::from_secs(60)).unwrap();
    assert!(done.is_empty());
}

#[test]
fn debs_are_checked_on_their_face() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let member = |name: &str, data: &[u8]| {
        let mut h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100644,
            data.len()
        )
        .into_bytes();
        h.extend_from_slice(data);
        if data.len() % 2 == 1 {
            h.push(b'\n');
        }
        h
    };
    let ar = |members: &[(&str, &[u8])]| {
        let mut out = b"!<arch>\n".to_vec();
        for (n, data) in members {
            out.extend(member(n, data));
        }
        out
    };
    let good = ar(&[
        ("debian-binary", b"2.0\n"),
        ("_gpgorigin", b"sig"),
        ("control.tar.xz", b"abc"),
        ("data.tar.zst", b"defg"),
    ]);
    check(&write("good.deb", &good)).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "html.deb",
            b"<html>not found</html>".to_vec(),
            "not an ar archive",
        ),
        ("empty.deb", Vec::new(), "not an ar archive"),
        (
            "truncated.deb",
            good[..good.len() - 2].to_vec(),
            "past the end",
        ),
        (
            "header.deb",
            good[..8 + 30].to_vec(),
            "truncated member header",
        ),
        (
            "order.deb",
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("data.tar.xz", b"x"),
                ("control.tar.xz", b"y"),
            ]),
            "expected debian-binary",
        ),
        (
            "format.deb",
            ar(&[
                ("debian-binary", b"3.0\n"),
                ("control.tar.xz", b"x"),
                ("data.tar.xz", b"y"),
            ]),
            "format 2.x",
        ),
        (
            "nodata.deb",
            ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", b"x")]),
            "expected debian-binary",
        ),
    ];
    for (name, bytes, needle) in cases {
        let err = check(&write(name, &bytes)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains(needle) && msg.contains("vmagent fetch"),
            "{name}: {msg}"
        );
    }
}
