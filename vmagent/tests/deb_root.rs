//! The vmagent package's maintainer scripts, run by real dpkg in an overlay of the cached Debian
//! trixie root (tests/roots/trixie-minbase): removing the package stops and disables vmagent's
//! own units, purging it removes /var/lib/vmagent and those units, and every other node file is
//! left alone. Needs root and the package built by packaging/build-deb; without them, SKIP.

mod install_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use install_common::*;

/// vmagent's own units, as `vmagent apply` writes them, with the target each is enabled in.
const OWN_UNITS: [(&str, &str); 5] = [
    ("hosts-refresh.timer", "timers.target"),
    ("hosts-refresh.service", ""),
    ("nstance-recv-watch.path", "paths.target"),
    ("nstance-recv-watch.service", ""),
    ("vmagent-reconcile.service", "multi-user.target"),
];

fn dpkg(root: &Path, args: &[&str]) {
    let out = Command::new("chroot")
        .arg(root)
        .arg("dpkg")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn exists(o: &Overlay, path: &str) -> bool {
    std::fs::symlink_metadata(o.path(path)).is_ok()
}

fn write_unit(o: &Overlay, name: &str, wanted_by: &str) {
    let mut text = format!("[Unit]\nDescription={name}\n\n");
    text.push_str(if name.ends_with(".timer") {
        "[Timer]\nOnBootSec=1min\n"
    } else if name.ends_with(".path") {
        "[Path]\nPathExists=/opt/nstance-agent/recv/write-files.last\n"
    } else {
        "[Service]\nType=oneshot\nExecStart=/usr/bin/vmagent apply\n"
    });
    if !wanted_by.is_empty() {
        text.push_str(&format!("\n[Install]\nWantedBy={wanted_by}\n"));
    }
    std::fs::write(o.path(&format!("/etc/systemd/system/{name}")), text).unwrap();
}

#[test]
fn remove_stops_and_disables_vmagents_units_and_purge_removes_its_state() {
    let Some((base, _)) = base() else { return };
    let Some(deb) = built_deb() else { return };
    let o = Overlay::new(&base);
    let root = o.root();
    std::fs::copy(&deb, o.path("/tmp/vmagent.deb")).unwrap();
    stand_in_debs(&root, &["iproute2"]);
    dpkg(&root, &["-i", "/tmp/vmagent.deb"]);

    // A configured node: vmagent's units written and enabled, its state, and a node unit that
    // is not vmagent's own.
    for (name, wanted_by) in OWN_UNITS {
        write_unit(&o, name, wanted_by);
    }
    write_unit(&o, "kubelet.service", "multi-user.target");
    let enable = Command::new("chroot")
        .arg(&root)
        .args([
            "systemctl",
            "enable",
            "hosts-refresh.timer",
            "nstance-recv-watch.path",
            "vmagent-reconcile.service",
            "kubelet.service",
        ])
        .output()
        .unwrap();
    assert!(
        enable.status.success(),
        "{}",
        String::from_utf8_lossy(&enable.stderr)
    );
    for (name, wanted_by) in OWN_UNITS.iter().filter(|(_, w)| !w.is_empty()) {
        let link = format!("/etc/systemd/system/{wanted_by}.wants/{name}");
        assert!(exists(&o, &link), "{link} after enable");
    }
    std::fs::create_dir_all(o.path("/var/lib/vmagent")).unwrap();
    std::fs::write(o.path("/var/lib/vmagent/last-apply.json"), "{}").unwrap();

    // systemd "running" (its runtime directory exists), with a systemctl that records each
    // call before handing it to the real one (which acts on files only inside a chroot).
    std::fs::create_dir_all(o.path("/run/systemd/system")).unwrap();
    let recorder =
        "#!/bin/sh\necho \"$@\" >> /tmp/systemctl-calls\nexec /usr/bin/systemctl \"$@\"\n";
    std::fs::write(o.path("/usr/local/bin/systemctl"), recorder).unwrap();
    std::fs::set_permissions(
        o.path("/usr/local/bin/systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    dpkg(&root, &["-r", "vmagent"]);
    let calls = std::fs::read_to_string(o.path("/tmp/systemctl-calls")).unwrap_or_default();
    for (name, _) in OWN_UNITS {
        for verb in ["stop", "disable"] {
            assert!(
                calls.lines().any(|l| l == format!("{verb} {name}")),
                "remove did not `systemctl {verb} {name}`:\n{calls}"
            );
        }
    }
    assert!(
        !calls.contains("kubelet"),
        "remove touched a node unit:\n{calls}"
    );
    for (name, wanted_by) in OWN_UNITS.iter().filter(|(_, w)| !w.is_empty()) {
        let link = format!("/etc/systemd/system/{wanted_by}.wants/{name}");
        assert!(!exists(&o, &link), "{link} still enabled after remove");
    }
    assert!(exists(
        &o,
        "/etc/systemd/system/multi-user.target.wants/kubelet.service"
    ));
    assert!(
        exists(&o, "/var/lib/vmagent/last-apply.json"),
        "remove keeps the state (purge removes it)"
    );
    assert!(!exists(&o, "/usr/bin/vmagent"));

    dpkg(&root, &["-P", "vmagent"]);
    assert!(
        !exists(&o, "/var/lib/vmagent"),
        "purge removes /var/lib/vmagent"
    );
    for (name, _) in OWN_UNITS {
        let unit = format!("/etc/systemd/system/{name}");
        assert!(!exists(&o, &unit), "{unit} left after purge");
    }
    assert!(exists(&o, "/etc/systemd/system/kubelet.service"));
    assert!(exists(
        &o,
        "/etc/systemd/system/multi-user.target.wants/kubelet.service"
    ));
    assert_eq!(
        Command::new("chroot")
            .arg(&root)
            .args(["dpkg-query", "-W", "-f", "${Status}", "vmagent"])
            .output()
            .unwrap()
            .stdout,
        b"",
        "vmagent is gone from dpkg's database"
    );
}
