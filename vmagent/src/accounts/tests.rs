use super::*;
use crate::contract::Kind;
use crate::host::RecordingHost;
use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// A root whose account files define every user and group of `spec` with the ids of this test
/// process, so ownership already matches and no chown is needed.
fn root_with_accounts(spec: &Spec, extra_group_lines: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let etc = root.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let mut passwd = format!("root:x:{uid}:{gid}:root:/root:/bin/bash\n");
    let mut group = format!("root:x:{gid}:\n");
    let mut groups: BTreeSet<&str> = BTreeSet::new();
    for u in &spec.users {
        passwd.push_str(&format!(
            "{0}:x:{uid}:{gid}::{1}:{2}\n",
            u.name,
            u.home.unwrap_or("/home/x"),
            u.shell
        ));
        groups.insert(u.name);
        groups.extend(u.groups.iter().copied());
    }
    for g in groups {
        let members: Vec<&str> = spec
            .users
            .iter()
            .filter(|u| u.groups.contains(&g))
            .map(|u| u.name)
            .collect();
        group.push_str(&format!("{g}:x:{gid}:{}\n", members.join(",")));
    }
    group.push_str(extra_group_lines);
    std::fs::write(etc.join("passwd"), passwd).unwrap();
    std::fs::write(etc.join("group"), group).unwrap();
    root
}

#[test]
fn the_table_per_kind() {
    let knd = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let names: Vec<_> = knd.users.iter().map(|u| u.name).collect();
    assert_eq!(
        names,
        [
            "podplane",
            "nstance-agent",
            "fluent-bit",
            "kube2iam",
            "containerd",
            "kubelet",
            "zot"
        ]
    );
    let kubelet = knd.users.iter().find(|u| u.name == "kubelet").unwrap();
    assert!(!kubelet.system);
    assert_eq!(kubelet.groups, ["podplane", "containerd"]);
    assert!(knd.dirs.iter().all(|d| !d.path.starts_with("/opt/netsy")));
    let key = knd.dirs.iter().find(|d| d.path == "/opt/key").unwrap();
    assert_eq!((key.mode, key.user, key.group), (0o710, "root", "podplane"));

    let knc = spec(Kind::Knc, true, "/usr/lib/aarch64-linux-gnu");
    assert_eq!(knc.users.len(), 12);
    assert!(
        knc.users
            .iter()
            .any(|u| u.name == "admin" && u.shell == "/bin/bash")
    );
    let etc = knc
        .dirs
        .iter()
        .find(|d| d.path == "/opt/netsy/etc")
        .unwrap();
    assert_eq!((etc.mode, etc.user, etc.group), (0o750, "root", "netsy"));
    assert!(
        knc.executables
            .iter()
            .any(|e| e == "/usr/bin/kube-apiserver")
    );
    assert_eq!(knc.libraries[0], "/usr/lib/aarch64-linux-gnu/libpq.so.5");
    // Parents come before children.
    for (i, d) in knc.dirs.iter().enumerate() {
        for later in &knc.dirs[i + 1..] {
            assert!(
                !d.path.starts_with(&format!("{}/", later.path)),
                "{} before {}",
                d.path,
                later.path
            );
        }
    }
}

#[test]
fn a_fresh_root_gets_groups_first_then_users() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/group"), "root:x:0:\n").unwrap();
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let host = RecordingHost::new();
    // The recording host creates nothing, so the directories then lack their owners.
    let err = ensure(root.path(), &s, &host).unwrap_err();
    assert!(matches!(err, AccountsError::MissingOwner { .. }), "{err}");
    let r = root.path().display().to_string();
    let lines = host.lines();
    assert_eq!(
        &lines[..3],
        [
            format!("groupadd --root {r} -r containerd"),
            format!("groupadd --root {r} -r podplane"),
            format!("groupadd --root {r} -r systemd-journal"),
        ]
    );
    assert_eq!(
        lines[3],
        format!("useradd --root {r} -m -s /usr/sbin/nologin -r -U podplane")
    );
    assert!(lines.contains(&format!(
        "useradd --root {r} -m -s /usr/sbin/nologin -U -G podplane,containerd kubelet"
    )));
    assert!(lines.contains(&format!(
        "useradd --root {r} -m -s /usr/sbin/nologin -r -U -G podplane,systemd-journal fluent-bit"
    )));
    assert_eq!(lines.len(), 3 + 7);
}

#[test]
fn existing_users_are_corrected_exactly() {
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let root = root_with_accounts(&s, "syslog:x:4:\nextra:x:5:zot\n");
    // zot got a login shell somewhere along the way.
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let fixed: String = passwd
        .lines()
        .map(|l| match l.strip_prefix("zot:") {
            Some(_) => format!("{}:/bin/bash\n", l.rsplit_once(':').unwrap().0),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(root.path().join("etc/passwd"), fixed).unwrap();
    let host = RecordingHost::new();
    ensure(root.path(), &s, &host).unwrap();
    let r = root.path().display().to_string();
    let lines: Vec<_> = host
        .lines()
        .into_iter()
        .filter(|l| {
            l.starts_with("usermod") || l.starts_with("useradd") || l.starts_with("groupadd")
        })
        .collect();
    assert_eq!(
        lines,
        [
            // fluent-bit joins syslog because that group exists.
            format!("usermod --root {r} -G podplane,systemd-journal,syslog fluent-bit"),
            format!("usermod --root {r} -s /usr/sbin/nologin zot"),
            // zot leaves "extra": the set is exact.
            format!("usermod --root {r} -G podplane zot"),
        ]
    );
}

#[test]
fn directories_are_created_with_modes_and_a_second_run_changes_nothing() {
    let s = spec(Kind::Knc, true, "/usr/lib/x86_64-linux-gnu");
    let root = root_with_accounts(&s, "");
    let host = RecordingHost::new();
    let changes = ensure(root.path(), &s, &host).unwrap();
    assert!(
        changes.iter().any(|c| c == "created /opt/key/netsy"),
        "{changes:?}"
    );
    for d in &s.dirs {
        let md = std::fs::symlink_metadata(root.path().join(&d.path[1..])).unwrap();
        assert!(md.is_dir(), "{}", d.path);
        assert_eq!(md.mode() & 0o7777, d.mode, "{}", d.path);
    }
    let sudoers = root.path().join("etc/sudoers.d/admin");
    assert_eq!(std::fs::read_to_string(&sudoers).unwrap(), SUDOERS_LINE);
    assert_eq!(std::fs::metadata(&sudoers).unwrap().mode() & 0o7777, 0o440);

    let again = RecordingHost::new();
    let changes = ensure(root.path(), &s, &again).unwrap();
    // Only the sudoers owner differs when the test does not run as root.
    let expected: Vec<String> = if unsafe { libc::getuid() } == 0 {
        vec![]
    } else {
        vec![format!("wrote {SUDOERS_ADMIN}")]
    };
    assert_eq!(changes, expected);

    // Without SSH keys the sudoers file goes away.
    let s2 = spec(Kind::Knc, false, "/usr/lib/x86_64-linux-gnu");
    let changes = ensure(root.path(), &s2, &RecordingHost::new()).unwrap();
    assert!(changes.contains(&format!("removed {SUDOERS_ADMIN} (no SSH keys configured)")));
    assert!(!sudoers.exists());
}

#[test]
fn symlinked_or_non_directory_paths_are_refused() {
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let root = root_with_accounts(&s, "");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("opt")).unwrap();
    symlink(elsewhere.path(), root.path().join("opt/crt")).unwrap();
    let err = ensure(root.path(), &s, &RecordingHost::new()).unwrap_err();
    assert!(matches!(err, AccountsError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("opt/crt is a symlink"), "{err}");
    // The link target was not touched.
    assert_ne!(
        std::fs::metadata(elsewhere.path()).unwrap().mode() & 0o7777,
        0o750
    );

    std::fs::remove_file(root.path().join("opt/crt")).unwrap();
    std::fs::write(root.path().join("opt/crt"), b"x").unwrap();
    let err = ensure(root.path(), &s, &RecordingHost::new()).unwrap_err();
    assert!(matches!(err, AccountsError::NotADirectory { .. }), "{err}");
}

#[test]
fn executable_bits_and_libraries() {
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let root = root_with_accounts(&s, "");
    let write = |p: &str, mode| {
        let full = root.path().join(&p[1..]);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, b"x").unwrap();
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
        full
    };
    let kubelet = write("/usr/bin/kubelet", 0o644);
    let bridge = write("/opt/cni/bin/bridge", 0o600);
    let lib = write("/usr/lib/x86_64-linux-gnu/libpq.so.5.17", 0o644);
    symlink(
        "libpq.so.5.17",
        root.path().join("usr/lib/x86_64-linux-gnu/libpq.so.5"),
    )
    .unwrap();
    let changes = ensure(root.path(), &s, &RecordingHost::new()).unwrap();
    assert!(changes.contains(&"made /usr/bin/kubelet executable".to_string()));
    assert!(changes.contains(&"made /opt/cni/bin/bridge executable".to_string()));
    assert_eq!(std::fs::metadata(&kubelet).unwrap().mode() & 0o777, 0o755);
    assert_eq!(std::fs::metadata(&bridge).unwrap().mode() & 0o777, 0o711);
    assert_eq!(std::fs::metadata(&lib).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn ssh_keys_come_from_user_data_or_mutable_env() {
    let root = tempfile::tempdir().unwrap();
    assert!(!ssh_keys_configured(root.path()).unwrap());
    let etc = root.path().join("opt/podplane/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("user-data.env"),
        "IMMUTABLE_SSH_AUTHORIZED_KEYS=''\n",
    )
    .unwrap();
    assert!(!ssh_keys_configured(root.path()).unwrap());
    std::fs::write(
        etc.join("mutable.env"),
        "SSH_AUTHORIZED_KEYS='ssh-ed25519 AAAA x'\n",
    )
    .unwrap();
    assert!(ssh_keys_configured(root.path()).unwrap());
}

#[test]
fn plan_predicts_the_commands_a_real_host_runs() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/group"), "root:x:0:\n").unwrap();
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let planned = plan(root.path(), &s).unwrap();
    let r = root.path().display().to_string();
    let lines: Vec<String> = planned.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines[0],
        format!("run groupadd --root {r} -r containerd (created group containerd)")
    );
    // groupadd has created podplane by the time its user is added: it joins that group.
    assert_eq!(
        lines[3],
        format!(
            "run useradd --root {r} -m -s /usr/sbin/nologin -r -g podplane podplane (created user podplane)"
        )
    );
    // Directories owned by accounts the plan creates are planned, not refused.
    assert!(
        lines.contains(&"create directory /opt/crt (0750 root:podplane)".to_string()),
        "{lines:#?}"
    );
    // Planning wrote nothing.
    assert!(!root.path().join("opt").exists());
    // Without the permissions table's accounts, an unknown owner is refused by the plan.
    let mut broken = s.clone();
    broken.dirs[0].user = "nobody-here";
    let err = plan(root.path(), &broken).unwrap_err();
    assert!(
        matches!(err, AccountsError::MissingOwner { what: "user", .. }),
        "{err}"
    );
}

#[test]
fn carry_out_does_what_plan_shows_and_a_second_plan_is_empty() {
    let s = spec(Kind::Knd, false, "/usr/lib/x86_64-linux-gnu");
    let root = root_with_accounts(&s, "");
    let kubelet = root.path().join("usr/bin/kubelet");
    std::fs::create_dir_all(kubelet.parent().unwrap()).unwrap();
    std::fs::write(&kubelet, b"x").unwrap();
    std::fs::set_permissions(&kubelet, std::fs::Permissions::from_mode(0o644)).unwrap();

    let planned = plan(root.path(), &s).unwrap();
    let lines: Vec<String> = planned.iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&"change /usr/bin/kubelet (mode 0644 -> 0755: executable)".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"create directory /opt/crt (0750 root:podplane)".to_string()),
        "{lines:#?}"
    );
    assert!(!root.path().join("opt").exists(), "plan writes nothing");

    let existed: Vec<bool> = s
        .dirs
        .iter()
        .map(|d| root.path().join(&d.path[1..]).exists())
        .collect();
    let changes = carry_out(root.path(), &planned, &RecordingHost::new()).unwrap();
    assert!(changes.contains(&"made /usr/bin/kubelet executable".to_string()));
    for (d, existed) in s.dirs.iter().zip(existed) {
        assert_eq!(
            changes.contains(&format!("created {}", d.path)),
            !existed,
            "{}: {changes:?}",
            d.path
        );
    }
    assert_eq!(plan(root.path(), &s).unwrap(), Vec::<Change>::new());
}
