//! `vmagent install` against a real Debian trixie root (debootstrapped once and cached by
//! tests/roots/trixie-minbase), with real dpkg, useradd/usermod/groupadd and real Debian debs
//! (uidmap, libsubid5) next to stand-ins. Each test works on its own overlay copy of the root.
//! Needs root; without it every test here says SKIP and returns.

mod install_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use install_common::*;
use podplane_testkit::node;
use vmagent::userdb::UserDb;

#[test]
fn installs_a_knc_node_and_a_second_run_changes_nothing() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();

    let (code, err) = install(&root);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("installed 4 debs and"), "{err}");

    // Debs: real and stand-in, installed by dpkg, with services blocked meanwhile.
    let status = chroot(
        &root,
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
    assert_eq!(
        status.matches("install ok installed").count(),
        4,
        "{status}"
    );
    assert_eq!(
        std::fs::read_to_string(o.path("/var/lib/podplane-test/fluent-bit-policy-rc"))
            .unwrap()
            .trim(),
        "101",
        "fluent-bit's postinst saw policy-rc.d blocking starts"
    );
    assert!(
        !o.path("/usr/sbin/policy-rc.d").exists(),
        "policy-rc.d removed again"
    );
    assert!(o.path("/usr/bin/newuidmap").exists(), "real uidmap files");

    // Tarball members and binaries where the rules put them, 0755 root:root.
    for p in [
        "/usr/local/bin/containerd",
        "/usr/local/bin/containerd-shim-runc-v2",
        "/usr/local/bin/ctr",
        "/usr/local/bin/crictl",
        "/opt/netsy/bin/netsy",
        "/opt/nstance-agent/bin/nstance-agent",
        "/opt/cni/bin/bridge",
        "/opt/cni/bin/loopback",
        "/usr/bin/kubelet",
        "/usr/bin/kube-apiserver",
        "/usr/bin/zot",
        "/usr/local/sbin/runc",
        "/opt/kube2iam/bin/kube2iam",
    ] {
        let md = std::fs::symlink_metadata(o.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(
            (md.mode() & 0o777, md.uid(), md.gid()),
            (0o755, 0, 0),
            "{p}"
        );
    }
    assert!(
        !o.path("/usr/local/bin/containerd-stress").exists(),
        "only selected members"
    );
    assert!(!o.path("/opt/netsy/bin/README.md").exists());
    assert!(
        o.path("/opt/cni/bin/LICENSE").exists(),
        "cni-plugins: the whole archive"
    );
    assert_eq!(
        mode(&o.path("/opt/cni/bin/LICENSE")) & 0o111,
        0o111,
        "+x on /opt/cni/bin/*"
    );

    // Marker last, manifest and staging gone.
    assert!(
        o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );
    assert!(
        !o.path("/opt/podplane/share/vmconfig-manifest.json")
            .exists()
    );
    assert!(!o.path("/opt/podplane/artifacts").exists());

    // Accounts, as the real tools made them.
    let groups = |u: &str| {
        let mut g: Vec<String> = chroot(&root, &["id", "-nG", u])
            .split_whitespace()
            .map(String::from)
            .collect();
        g.sort();
        g.join(" ")
    };
    assert_eq!(groups("kubelet"), "containerd kubelet podplane");
    assert_eq!(groups("fluent-bit"), "fluent-bit podplane systemd-journal");
    assert_eq!(groups("netsy"), "netsy podplane");
    let db = UserDb::load(&root).unwrap();
    assert_eq!(db.user("zot").unwrap().shell, "/usr/sbin/nologin");
    assert!(db.user("zot").unwrap().uid < 1000, "system user");
    assert!(
        db.user("kubelet").unwrap().uid >= 1000,
        "kubelet is not a system user"
    );
    assert_eq!(db.user("admin").unwrap().shell, "/bin/bash");
    assert_eq!(mode(&o.path("/etc/sudoers.d/admin")), 0o440);

    // Every directory of the table, mode and owner.
    let spec = vmagent::accounts::spec(
        vmagent::contract::Kind::Knc,
        true,
        "/usr/lib/x86_64-linux-gnu",
    );
    for d in &spec.dirs {
        let md = std::fs::symlink_metadata(o.path(d.path)).unwrap();
        assert!(md.is_dir(), "{}", d.path);
        assert_eq!(md.mode() & 0o7777, d.mode, "{}", d.path);
        assert_eq!(Some(md.uid()), db.uid(d.user), "{} user", d.path);
        assert_eq!(Some(md.gid()), db.gid(d.group), "{} group", d.path);
    }
    assert_eq!(
        mode(&o.path("/usr/lib/x86_64-linux-gnu/libpq.so.5.17")),
        0o755
    );

    // Again: nothing to do, nothing changed.
    let before = snapshot(&root);
    let (code, err) = install(&root);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("already installed; permissions already in place"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn killed_during_dpkg_the_next_run_restores_policy_rc_and_converges() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let clean = Overlay::new(&base);
    prepare(&clean, art.path(), &manifest);
    assert_eq!(install(&clean.root()).0, 0);

    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    // An administrator's policy-rc.d, which must survive.
    std::fs::create_dir_all(o.path("/usr/sbin")).unwrap();
    std::fs::write(o.path("/usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        o.path("/usr/sbin/policy-rc.d"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(o.path(node::NOTES)).unwrap();
    std::fs::write(o.path("/var/lib/podplane-test/slow-postinst"), "").unwrap();
    let started = o.path("/var/lib/podplane-test/postinst-started");
    kill_install_when(&o.root(), || started.exists());

    let policy = std::fs::read_to_string(o.path("/usr/sbin/policy-rc.d")).unwrap();
    assert_eq!(
        policy,
        vmagent::install::deb::OUR_POLICY_RC,
        "left blocking by the kill"
    );
    assert!(
        vmagent::install::deb::dpkg_interrupted(&o.root())
            || chroot(&o.root(), &["dpkg", "--audit"]).contains("fluent-bit")
    );
    assert!(
        !o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );

    std::fs::remove_file(o.path("/var/lib/podplane-test/slow-postinst")).unwrap();
    let (code, err) = install(&o.root());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("restored /usr/sbin/policy-rc.d"), "{err}");
    assert_eq!(
        std::fs::read_to_string(o.path("/usr/sbin/policy-rc.d")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!o.path("/usr/sbin/policy-rc.d.podplane-bak").exists());
    assert_eq!(chroot(&o.root(), &["dpkg", "--audit"]).trim(), "");
    let mut got = snapshot(&o.root());
    let mut want = snapshot(&clean.root());
    // The only intended difference: the administrator's policy-rc.d is there.
    got.remove("usr/sbin/policy-rc.d");
    want.remove("usr/sbin/policy-rc.d");
    assert_eq!(got, want);
}

#[test]
fn killed_during_extraction_the_next_run_converges() {
    let Some((base, debs)) = base() else { return };
    // A large cni-plugins member keeps the staging busy long enough to be interrupted.
    let (art, manifest) = artifacts(&debs, 192 << 20);
    let clean = Overlay::new(&base);
    prepare(&clean, art.path(), &manifest);
    assert_eq!(install(&clean.root()).0, 0);

    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let cni = o.path("/opt/cni/bin");
    kill_install_when(&o.root(), || {
        std::fs::read_dir(&cni).is_ok_and(|rd| {
            rd.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".big-blob.vmagent-")
            })
        })
    });
    assert!(
        !o.path("/opt/cni/bin/big-blob").exists(),
        "never a half file at the final path"
    );
    assert!(
        !o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );

    let (code, err) = install(&o.root());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("temp files of an interrupted run in /opt/cni/bin"),
        "{err}"
    );
    assert_eq!(snapshot(&o.root()), snapshot(&clean.root()));
}

#[test]
fn a_failing_deb_restores_policy_rc_and_writes_no_marker() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    std::fs::create_dir_all(o.path(node::NOTES)).unwrap();
    std::fs::write(o.path("/var/lib/podplane-test/fail-postinst"), "").unwrap();
    let (code, err) = install(&o.root());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("dpkg failed") && err.contains("postinst was asked to fail"),
        "{err}"
    );
    assert!(!o.path("/usr/sbin/policy-rc.d").exists());
    assert!(
        !o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );
    assert!(
        o.path("/opt/podplane/share/vmconfig-manifest.json")
            .exists()
    );
    assert!(
        !o.path("/usr/bin/kubelet").exists(),
        "files go in after the debs"
    );

    std::fs::remove_file(o.path("/var/lib/podplane-test/fail-postinst")).unwrap();
    let (code, err) = install(&o.root());
    assert_eq!(code, 0, "{err}");
    assert!(o.path("/usr/bin/kubelet").exists());
}

#[test]
fn bad_inputs_fail_before_anything_is_installed() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let root = o.root();
    // What the test itself edits (the inputs) is left out of the comparison.
    let state = |root: &Path| {
        let mut s = snapshot(root);
        s.retain(|k, _| {
            !k.starts_with("opt/podplane/artifacts")
                && !k.starts_with("opt/podplane/share/vmconfig-manifest")
        });
        s
    };
    let pristine = state(&root);
    let passwd = std::fs::read_to_string(o.path("/etc/passwd")).unwrap();
    let manifest_path = o.path("/opt/podplane/share/vmconfig-manifest.json");
    let write_manifest =
        |m: &serde_json::Value| std::fs::write(&manifest_path, m.to_string()).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(state(&root), pristine, "{what}: the root changed");
        assert_eq!(
            std::fs::read_to_string(o.path("/etc/passwd")).unwrap(),
            passwd,
            "{what}"
        );
    };

    // A tarball key without an extract rule.
    let mut m = manifest.clone();
    m["vmconfig"]["dependencies"]["registry"] = m["vmconfig"]["dependencies"]["crictl"].clone();
    std::fs::copy(
        o.path("/opt/podplane/artifacts/crictl.tar.gz"),
        o.path("/opt/podplane/artifacts/registry.tar.gz"),
    )
    .unwrap();
    write_manifest(&m);
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(
        err.contains("\"registry\" is a tar.gz without an extract rule"),
        "{err}"
    );
    unchanged("unknown key");
    std::fs::remove_file(o.path("/opt/podplane/artifacts/registry.tar.gz")).unwrap();
    write_manifest(&manifest);

    // An artifact that is not what the manifest pins.
    let kubelet = o.path("/opt/podplane/artifacts/kubelet");
    let good = std::fs::read(&kubelet).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 1;
    std::fs::write(&kubelet, &bad).unwrap();
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(
        err.contains("artifact kubelet") && err.contains("run `vmagent fetch` first"),
        "{err}"
    );
    unchanged("tampered artifact");
    std::fs::remove_file(&kubelet).unwrap();
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(
        err.contains("artifact kubelet") && err.contains("No such file"),
        "{err}"
    );
    std::fs::write(&kubelet, &good).unwrap();

    // A dependency without a digest.
    let mut m = manifest.clone();
    m["vmconfig"]["dependencies"]["zot"]["digest"] = "".into();
    write_manifest(&m);
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(
        err.contains("dependency \"zot\": digest is missing"),
        "{err}"
    );
    write_manifest(&manifest);
    unchanged("empty digest");

    // A manifest whose shell rendering does not match it.
    let sh = o.path("/opt/podplane/share/vmconfig-manifest.sh");
    std::fs::write(
        &sh,
        format!("VMCONFIG_MANIFEST_JSON_SHA256={}\n", "0".repeat(64)),
    )
    .unwrap();
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(err.contains("were not packaged together"), "{err}");
    std::fs::write(&sh, "# no hash line\n").unwrap();
    let (code, err) = install(&root);
    assert_eq!(code, 1);
    assert!(err.contains("no VMCONFIG_MANIFEST_JSON_SHA256"), "{err}");
    std::fs::remove_file(&sh).unwrap();
    unchanged("drift");

    // Archives that try to escape.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "parent",
            evil_tar("../../../etc/evil", None),
            "contains \"..\"",
        ),
        ("absolute", evil_tar("/etc/evil", None), "is absolute"),
        (
            "symlink",
            evil_tar("bridge", Some("../../../../etc/shadow")),
            "pointing outside",
        ),
    ];
    for (what, bytes, needle) in cases {
        let mut m = manifest.clone();
        std::fs::write(o.path("/opt/podplane/artifacts/cni-plugins.tar.gz"), &bytes).unwrap();
        m["vmconfig"]["dependencies"]["cni-plugins"]["digest"] =
            format!("sha256:{}", podplane_testkit::sha256_hex(&bytes)).into();
        m["vmconfig"]["dependencies"]["cni-plugins"]["size"] = bytes.len().into();
        write_manifest(&m);
        let (code, err) = install(&root);
        assert_eq!(code, 1, "{what}");
        assert!(
            err.contains("is refused") && err.contains(needle),
            "{what}: {err}"
        );
        assert!(!o.path("/etc/evil").exists());
        unchanged(what);
    }
}

/// A gzipped tarball with one regular file, or one symlink to `link`, written raw so that
/// unsafe names get through.
fn evil_tar(name: &str, link: Option<&str>) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut h = tar::Header::new_old();
    {
        let bytes = h.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_mode(0o755);
    match link {
        Some(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        None => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(4);
        }
    }
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    if link.is_none() {
        let mut block = vec![0u8; 512];
        block[..4].copy_from_slice(b"evil");
        raw.extend(block);
    }
    raw.extend(vec![0u8; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_symlinked_managed_directory_is_refused() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let elsewhere = o.path("/srv/elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink("/srv/elsewhere", o.path("/opt/crt")).unwrap();
    let (code, err) = install(&o.root());
    assert_eq!(code, 1);
    assert!(err.contains("opt/crt is a symlink"), "{err}");
    assert_ne!(mode(&elsewhere), 0o750, "the link target was not touched");
}

#[test]
fn a_full_destination_is_refused_before_anything_is_installed() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 4 << 20);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    // /opt/cni on its own 2 MiB filesystem: the 4 MiB cni-plugins tarball cannot fit.
    let cni = o.path("/opt/cni");
    std::fs::create_dir_all(&cni).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&cni)
        .status()
        .unwrap();
    assert!(st.success());
    let (code, err) = install(&o.root());
    let _ = Command::new("umount").arg(&cni).status();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not enough free space") && err.contains("/opt/cni"),
        "{err}"
    );
    assert!(!o.path("/usr/bin/kubelet").exists());
    let status = chroot(
        &o.root(),
        &["dpkg-query", "-W", "-f", "${Status}", "uidmap"],
    );
    assert!(!status.contains("installed"), "{status}");
}

#[test]
fn sigterm_stops_at_the_next_step_and_leaves_no_temp_files() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 192 << 20);
    let o = Overlay::new(&base);
    prepare(&o, art.path(), &manifest);
    let child = vmagent(&o.root())
        .arg("install")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cni = o.path("/opt/cni/bin");
    let start = Instant::now();
    while !std::fs::read_dir(&cni).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".big-blob.vmagent-")
        })
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "staging never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&cni)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().contains(".vmagent-")),
        "{left:?}"
    );
    assert!(!o.path("/usr/sbin/policy-rc.d").exists());
    assert!(
        !o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );
    let (code, err) = install(&o.root());
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bootstrap_takes_a_fresh_root_from_userdata_facts_to_a_configured_node() {
    let Some((base, debs)) = base() else { return };
    let (art, manifest) = artifacts(&debs, 0);
    // The deps mirror: every artifact at vmconfig/artifacts/<key>/<version>/<basename(url)>.
    let mirror = podplane_testkit::Mirror::start();
    for (key, dep) in manifest["vmconfig"]["dependencies"].as_object().unwrap() {
        let url = dep["url"].as_str().unwrap();
        if url.is_empty() {
            continue;
        }
        let ext = match dep["type"].as_str().unwrap() {
            "deb" => ".deb",
            "tar.gz" => ".tar.gz",
            _ => "",
        };
        let path =
            podplane_testkit::fixtures::mirror_path(key, dep["version"].as_str().unwrap(), url);
        mirror
            .add_file(
                &format!("/{path}"),
                &art.path().join("a").join(format!("{key}{ext}")),
            )
            .unwrap();
    }
    let manifest_file = art.path().join("pinned.json");
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();
    let o = Overlay::new(&base);
    let root = o.root();
    let bootstrap = || {
        let mut c = vmagent(&root);
        c.arg("bootstrap")
            .arg("--manifest")
            .arg(&manifest_file)
            .args([
                "--instance-id",
                "i-0abc123",
                "--cluster-id",
                "c1",
                "--provider",
                "aws",
            ])
            .args([
                "--region",
                "eu-west-1",
                "--zone",
                "eu-west-1a",
                "--instance-type",
                "m7i.large",
            ])
            .args(["--aws-account-id", "123456789012"])
            .args([
                "--nstance-ca-cert",
                "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
            ])
            .args(["--registration-addr", &mirror.addr().to_string()])
            .args(["--agent-addr", &mirror.addr().to_string()])
            .args(["--nonce", "eyJhbGciOiJFUzI1NiJ9.e30.sig"])
            .args(["--ssh-authorized-keys", "ssh-ed25519 AAAAC3Nza ops@example"])
            .args(["--mirror", &mirror.base_url()])
            // Facts cloud-init would give on a real instance.
            .env("INSTANCE_PROVIDER_ID", "aws:///eu-west-1a/i-0abc123")
            .env("INSTANCE_NETDEV", "ens5")
            .env("INSTANCE_IPV4", "10.0.1.23")
            .env("INSTANCE_IPV6", "")
            .env("INSTANCE_HOSTNAME", "i-0abc123")
            .env("INSTANCE_FQDN", "i-0abc123.eu-west-1.compute.internal");
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = bootstrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("is reachable"),
        "waited for the registration address: {err}"
    );
    assert!(err.contains(": 4 debs, "), "{err}");
    assert_eq!(
        std::fs::read_to_string(o.path("/etc/hostname")).unwrap(),
        "i-0abc123\n"
    );
    let ud = std::fs::read_to_string(o.path("/opt/podplane/etc/user-data.env")).unwrap();
    assert!(
        ud.contains("PROVIDER_KIND='aws'\n") && ud.contains("INSTANCE_ID='i-0abc123'\n"),
        "{ud}"
    );
    assert_eq!(mode(&o.path("/opt/podplane/etc/user-data.env")), 0o600);
    assert!(o.path("/opt/podplane/bootstrap.done").exists());
    assert!(
        o.path("/opt/podplane/share/vmconfig-installed.json")
            .exists()
    );
    assert!(o.path("/usr/bin/kubelet").exists());
    let db = UserDb::load(&root).unwrap();
    let nonce = std::fs::metadata(o.path("/opt/nstance-agent/identity/nonce.jwt")).unwrap();
    assert_eq!(
        (nonce.mode() & 0o777, Some(nonce.uid())),
        (0o600, db.uid("nstance-agent"))
    );
    let keys = std::fs::metadata(o.path("/home/admin/.ssh/authorized_keys")).unwrap();
    assert_eq!(
        (keys.mode() & 0o777, Some(keys.uid())),
        (0o600, db.uid("admin"))
    );
    assert_eq!(
        std::fs::read_to_string(o.path("/opt/nstance-agent/identity/ca.crt")).unwrap(),
        "-----BEGIN CERTIFICATE-----\n"
    );
    for unit in [
        "containerd",
        "kubelet",
        "nstance-agent",
        "kube-apiserver",
        "kube2iam",
        "vmagent-reconcile",
    ] {
        assert!(
            std::fs::symlink_metadata(o.path(&format!(
                "/etc/systemd/system/multi-user.target.wants/{unit}.service"
            )))
            .is_ok(),
            "{unit} enabled"
        );
    }
    // Userdata runs again (cloud-init re-run, an operator): nothing to do.
    let requests = mirror.requests().len();
    let (code, err) = bootstrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("node configured (0 files, 0 service actions)"),
        "{err}"
    );
    assert_eq!(
        mirror.requests().len(),
        requests,
        "nothing downloaded again"
    );
}

#[test]
fn the_deb_installs_in_a_chroot_and_its_postinst_respects_systemd_and_policy_rc() {
    let Some((base, _)) = base() else { return };
    let Some(deb) = built_deb() else { return };
    let o = Overlay::new(&base);
    let root = o.root();
    std::fs::copy(&deb, o.path("/tmp/vmagent.deb")).unwrap();
    stand_in_debs(&root, &["iproute2"]);
    let dpkg_i = |root: &Path| {
        let out = Command::new("chroot")
            .arg(root)
            .args(["dpkg", "-i", "/tmp/vmagent.deb"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Image build: a chroot, no systemd running, nothing installed yet.
    dpkg_i(&root);
    let version = chroot(&root, &["vmagent", "--version"]);
    assert!(version.starts_with("vmagent "), "{version}");
    assert_eq!(
        chroot(&root, &["dpkg-query", "-W", "-f", "${Status}", "vmagent"]),
        "install ok installed"
    );

    // Upgrade of an installed node with systemd running: postinst re-applies, and without
    // service actions while policy-rc.d forbids starts. A recording stand-in takes vmagent's
    // place earlier in PATH to see the call.
    std::fs::create_dir_all(o.path("/run/systemd/system")).unwrap();
    std::fs::create_dir_all(o.path("/opt/podplane/share")).unwrap();
    std::fs::write(o.path("/opt/podplane/share/vmconfig-installed.json"), "{}").unwrap();
    let record = "#!/bin/sh\necho \"$@\" >> /tmp/vmagent-calls\n";
    std::fs::write(o.path("/usr/local/bin/vmagent"), record).unwrap();
    std::fs::set_permissions(
        o.path("/usr/local/bin/vmagent"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(o.path("/usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n").unwrap();
    std::fs::set_permissions(
        o.path("/usr/sbin/policy-rc.d"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    dpkg_i(&root);
    assert_eq!(
        std::fs::read_to_string(o.path("/tmp/vmagent-calls")).unwrap(),
        "apply --services none\n"
    );
    std::fs::remove_file(o.path("/usr/sbin/policy-rc.d")).unwrap();
    dpkg_i(&root);
    assert_eq!(
        std::fs::read_to_string(o.path("/tmp/vmagent-calls")).unwrap(),
        "apply --services none\napply --services systemd\n"
    );
}
