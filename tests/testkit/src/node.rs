//! A node's artifacts laid out as `vmagent fetch` leaves them (`<dir>/<key><ext>`), with a
//! manifest that pins them: tarballs in upstream's member layouts, small stand-in programs for
//! the Kubernetes and Podplane binaries (they say they are stand-ins), a stand-in fluent-bit deb
//! whose postinst records what `policy-rc.d` answered, and real Debian debs when given.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

/// Where the stand-in fluent-bit's postinst leaves its notes, inside the node's root.
pub const NOTES: &str = "/var/lib/podplane-test";

#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// "knd" or "knc".
    pub kind: &'static str,
    /// Directory holding real `uidmap_*.deb` and `libsubid5_*.deb` (from tests/roots).
    pub real_debs: Option<PathBuf>,
    /// Extra random bytes in the cni-plugins tarball (a member `big-blob`), to make extraction
    /// take a while.
    pub cni_padding: usize,
    /// Add an aws-only kube2iam binary.
    pub kube2iam: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            kind: "knc",
            real_debs: None,
            cni_padding: 0,
            kube2iam: true,
        }
    }
}

fn standin(name: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho \"{name}: test stand-in, not the real program\" \"$@\"\n").into_bytes()
}

/// A gzipped tarball of `(path, mode, content)` entries; a path ending in `/` is a directory.
pub fn tarball(entries: &[(&str, u32, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, mode, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_uid(1001);
        h.set_gid(1001);
        h.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty())?;
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(content.len() as u64);
            b.append_data(&mut h, path, content.as_slice())?;
        }
    }
    b.into_inner()?.finish()
}

/// Build a deb with `dpkg-deb` from files `(path, mode, content)` and maintainer scripts.
pub fn deb(
    work: &Path,
    package: &str,
    version: &str,
    files: &[(&str, u32, Vec<u8>)],
    postinst: Option<&str>,
) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let tree = work.join(format!("{package}-tree"));
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(tree.join("DEBIAN"))?;
    fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: Podplane tests <tests@podplane.invalid>\nDescription: {package} test stand-in\n"
        ),
    )?;
    if let Some(script) = postinst {
        let p = tree.join("DEBIAN/postinst");
        fs::write(&p, script)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
    }
    for (path, mode, content) in files {
        let p = tree.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap())?;
        fs::write(&p, content)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
    }
    let out = work.join(format!("{package}_{version}_all.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&tree)
        .arg(&out)
        .output()?;
    if !status.status.success() {
        return Err(io::Error::other(format!(
            "dpkg-deb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        )));
    }
    Ok(out)
}

/// The stand-in fluent-bit's postinst: records what policy-rc.d says about starting it, and
/// sleeps or fails when the node's root holds the matching flag file.
pub const FLUENT_BIT_POSTINST: &str = r#"#!/bin/sh
notes=/var/lib/podplane-test
mkdir -p "$notes"
if [ -x /usr/sbin/policy-rc.d ]; then
  /usr/sbin/policy-rc.d fluent-bit start
  echo $? > "$notes/fluent-bit-policy-rc"
else
  echo none > "$notes/fluent-bit-policy-rc"
fi
if [ -e "$notes/slow-postinst" ]; then
  echo started > "$notes/postinst-started"
  sleep 60
fi
if [ -e "$notes/fail-postinst" ]; then
  echo "fluent-bit stand-in: postinst was asked to fail" >&2
  exit 1
fi
exit 0
"#;

/// Write the artifacts into `dir` and return the manifest that pins them.
pub fn build(dir: &Path, opts: &NodeOptions) -> io::Result<Value> {
    fs::create_dir_all(dir)?;
    let work = dir.join(".work");
    fs::create_dir_all(&work)?;
    let mut deps = serde_json::Map::new();
    let mut add = |key: &str,
                   kind: &str,
                   version: &str,
                   file: &str,
                   bytes: &[u8],
                   providers: Option<&[&str]>|
     -> io::Result<()> {
        let ext = match kind {
            "deb" => ".deb",
            "tar.gz" => ".tar.gz",
            _ => "",
        };
        let mut f = fs::File::create(dir.join(format!("{key}{ext}")))?;
        f.write_all(bytes)?;
        let mut d = json!({
            "version": version,
            "url": format!("https://artifacts.podplane.invalid/{key}/{version}/{file}"),
            "type": kind,
            "digest": format!("sha256:{}", crate::sha256_hex(bytes)),
            "size": bytes.len(),
        });
        if let Some(p) = providers {
            d["providers"] = json!(p);
        }
        deps.insert(key.to_string(), d);
        Ok(())
    };

    // Debs.
    let fb = deb(
        &work,
        "fluent-bit",
        "5.0.5",
        &[(
            "/opt/fluent-bit/bin/fluent-bit",
            0o755,
            standin("fluent-bit"),
        )],
        Some(FLUENT_BIT_POSTINST),
    )?;
    add(
        "fluent-bit",
        "deb",
        "5.0.5",
        "fluent-bit_5.0.5_amd64.deb",
        &fs::read(fb)?,
        None,
    )?;
    let libpq = deb(
        &work,
        "libpq5",
        "17.9-0+deb13u1",
        &[(
            "/usr/lib/x86_64-linux-gnu/libpq.so.5.17",
            0o644,
            b"stand-in library\n".to_vec(),
        )],
        Some("#!/bin/sh\nln -sf libpq.so.5.17 /usr/lib/x86_64-linux-gnu/libpq.so.5\n"),
    )?;
    add(
        "libpq5",
        "deb",
        "17.9-0+deb13u1",
        "libpq5_17.9-0+deb13u1_amd64.deb",
        &fs::read(libpq)?,
        None,
    )?;
    if let Some(real) = &opts.real_debs {
        for name in ["libsubid5", "uidmap"] {
            let found = fs::read_dir(real)?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}_")))
                })
                .ok_or_else(|| {
                    io::Error::other(format!("no {name}_*.deb in {}", real.display()))
                })?;
            add(
                name,
                "deb",
                "4.17.4-2",
                &format!("{name}_4.17.4-2_amd64.deb"),
                &fs::read(found)?,
                None,
            )?;
        }
    }

    // Tarballs, in upstream's member layouts.
    let containerd = tarball(&[
        ("bin/", 0o755, vec![]),
        ("bin/containerd", 0o755, standin("containerd")),
        (
            "bin/containerd-shim-runc-v2",
            0o755,
            standin("containerd-shim-runc-v2"),
        ),
        ("bin/containerd-stress", 0o755, standin("containerd-stress")),
        ("bin/ctr", 0o755, standin("ctr")),
    ])?;
    add(
        "containerd",
        "tar.gz",
        "2.3.1",
        "containerd-2.3.1-linux-amd64.tar.gz",
        &containerd,
        None,
    )?;
    let crictl = tarball(&[("crictl", 0o755, standin("crictl"))])?;
    add(
        "crictl",
        "tar.gz",
        "1.36.0",
        "crictl-v1.36.0-linux-amd64.tar.gz",
        &crictl,
        None,
    )?;
    let nstance = tarball(&[
        ("LICENSE", 0o644, b"license\n".to_vec()),
        ("nstance-agent", 0o755, standin("nstance-agent")),
    ])?;
    add(
        "nstance-agent",
        "tar.gz",
        "1.2.3",
        "nstance-agent_1.2.3_linux_amd64.tar.gz",
        &nstance,
        None,
    )?;
    let mut cni = vec![
        ("./", 0o755, vec![]),
        ("./LICENSE", 0o644, b"license\n".to_vec()),
        ("./bridge", 0o755, standin("bridge")),
        ("./host-local", 0o755, standin("host-local")),
        ("./loopback", 0o755, standin("loopback")),
    ];
    if opts.cni_padding > 0 {
        cni.push((
            "./big-blob",
            0o644,
            crate::random_bytes(opts.cni_padding, 99),
        ));
    }
    let cni = tarball(&cni)?;
    add(
        "cni-plugins",
        "tar.gz",
        "1.9.1",
        "cni-plugins-linux-amd64-v1.9.1.tgz",
        &cni,
        None,
    )?;

    // Binaries.
    for (key, version, file) in [
        ("kubelet", "1.37.0", "kubelet"),
        ("runc", "1.4.2", "runc.amd64"),
        ("zot", "2.1.17", "zot-linux-amd64-minimal"),
    ] {
        add(key, "binary", version, file, &standin(key), None)?;
    }
    if opts.kube2iam {
        add(
            "kube2iam",
            "binary",
            "0.12.0",
            "kube2iam-linux-amd64",
            &standin("kube2iam"),
            Some(&["aws"]),
        )?;
    }
    if opts.kind == "knc" {
        let netsy = tarball(&[
            ("LICENSE", 0o644, b"license\n".to_vec()),
            ("README.md", 0o644, b"readme\n".to_vec()),
            ("netsy", 0o755, standin("netsy")),
        ])?;
        add(
            "netsy",
            "tar.gz",
            "1.1.0",
            "netsy_1.1.0_linux_amd64.tar.gz",
            &netsy,
            None,
        )?;
        for key in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
        ] {
            add(key, "binary", "1.37.0", key, &standin(key), None)?;
        }
    }
    deps.insert(
        "vmconfig".into(),
        json!({"version": "dev", "url": "", "type": "tar.gz", "digest": "", "size": 0}),
    );
    fs::remove_dir_all(&work)?;
    Ok(json!({"vmconfig": {
        "version": "test",
        "kind": opts.kind,
        "os": {"name": "debian-13", "arch": "amd64"},
        "dependencies": deps,
        "images": [{"image": "registry.k8s.io/pause:3.10.2",
                    "digest": "sha256:412c4a7219cb8a299a37337f3d87810c5340095322e15594a1637785adad0f17",
                    "size": 318043, "platform": "linux/amd64"}],
    }}))
}
