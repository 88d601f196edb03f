//! packaging/manifest and packaging/release, run as scripts, checked with vmagent's own reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use podplane_testkit::node::{self, NodeOptions};
use vmagent::manifest::Manifest;

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_manifest_builder_pins_a_directory_of_artifacts() {
    if !have("jq") || !have("dpkg-deb") {
        eprintln!("SKIP: jq or dpkg-deb missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let arts = dir.path().join("artifacts");
    let built = node::build(
        &arts,
        &NodeOptions {
            kind: "knd",
            ..Default::default()
        },
    )
    .unwrap();
    // A template with wrong digests and sizes for everything, and one entry with no file.
    let mut template = built.clone();
    for (_, dep) in template["vmconfig"]["dependencies"]
        .as_object_mut()
        .unwrap()
    {
        if dep["url"] != "" {
            dep["digest"] = format!("sha256:{}", "0".repeat(64)).into();
            dep["size"] = 1.into();
        }
    }
    template["vmconfig"]["dependencies"]["extra"] = serde_json::json!({
        "version": "1", "type": "binary", "url": "https://x.invalid/extra",
        "digest": format!("sha512:{}", "0".repeat(128)), "size": 5
    });
    let tpath = dir.path().join("template.json");
    std::fs::write(&tpath, template.to_string()).unwrap();
    for (args, has_extra) in [(vec![], true), (vec!["--only-present"], false)] {
        let out = Command::new(top().join("packaging/manifest"))
            .arg(&tpath)
            .arg(&arts)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = Manifest::from_slice(&out.stdout, Path::new("built.json")).unwrap();
        for item in m.install_items(None) {
            if item.key == "extra" {
                continue;
            }
            let (d, len) = vmagent::fetch::hash::hash_file(
                &arts.join(item.local_name()),
                item.digest.algorithm,
            )
            .unwrap();
            assert_eq!(d, item.digest, "{}", item.key);
            assert_eq!(len, item.size, "{}", item.key);
        }
        assert_eq!(m.vmconfig.dependencies.contains_key("extra"), has_extra);
    }
    let out = Command::new(top().join("packaging/manifest"))
        .arg(&tpath)
        .arg("/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent: no such directory"));
}

#[test]
fn a_release_is_reproducible_and_its_manifests_pin_its_tarballs() {
    if !have("jq") {
        eprintln!("SKIP: jq missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &Path| {
        let o = Command::new(top().join("packaging/release"))
            .args([
                "1.2.3",
                "--kinds",
                "knd,knc",
                "--base-url",
                "https://deps.example.com/r",
            ])
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("vmagent_1.2.3_checksums.txt")).unwrap()
    };
    let a = run(&dir.path().join("a"));
    let b = run(&dir.path().join("b"));
    assert_eq!(a, b, "two builds of one version are byte-identical");
    assert_eq!(a.lines().count(), 4);
    let arch = String::from_utf8(
        Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let arch = arch.trim();
    for kind in ["knd", "knc"] {
        let name = format!("vmagent_1.2.3_{kind}_debian-13_{arch}");
        let out = dir.path().join("a");
        let m = Manifest::load(&out.join(format!("{name}.json"))).unwrap();
        let entry = &m.vmconfig.dependencies["vmagent"];
        assert_eq!(
            entry.url,
            format!("https://deps.example.com/r/{name}.tar.gz")
        );
        let tarball = out.join(format!("{name}.tar.gz"));
        let (d, len) =
            vmagent::fetch::hash::hash_file(&tarball, vmagent::manifest::Algorithm::Sha256)
                .unwrap();
        assert_eq!(entry.digest, d.to_string());
        assert_eq!(entry.size, len);
        assert!(
            m.install_items(None).iter().any(|i| i.key == "vmagent"),
            "the released entry is fetched"
        );
        // The embedded manifest: same pins, the vmagent entry an unreleased stub.
        let x = tempfile::tempdir().unwrap();
        assert!(
            Command::new("tar")
                .arg("xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(x.path())
                .status()
                .unwrap()
                .success()
        );
        let embedded =
            Manifest::load(&x.path().join("opt/podplane/share/vmconfig-manifest.json")).unwrap();
        assert!(embedded.vmconfig.dependencies["vmagent"].is_unreleased_stub("vmagent"));
        assert!(
            embedded
                .install_items(None)
                .iter()
                .all(|i| i.key != "vmagent")
        );
        assert_eq!(embedded.vmconfig.version, "1.2.3");
        assert_eq!(embedded.vmconfig.kind, kind);
        let bin = x.path().join("usr/bin/vmagent");
        let v = Command::new(&bin).arg("--version").output().unwrap();
        assert!(String::from_utf8_lossy(&v.stdout).starts_with("vmagent "));
    }
}
