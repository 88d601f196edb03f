//! `podplane deps download` / `deps status` against a loopback mirror: the published manifest at
//! `/manifests/vmconfig_knc_debian-13_<arch>.json`, the artifacts at the URLs inside it.

use std::path::Path;
use std::process::Command;

use podplane_testkit::{Mirror, fixtures};

const KNC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vmagent/tests/fixtures/manifests/knc.debian-13.amd64.json"
);

/// A mirror serving a published knc amd64 manifest (artifacts 1/5000 of their real sizes, an
/// aws-only kube2iam, no OS image) whose URLs point back at it.
fn published() -> (Mirror, tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut src: serde_json::Value = serde_json::from_slice(&std::fs::read(KNC).unwrap()).unwrap();
    src["vmconfig"]["os"]
        .as_object_mut()
        .unwrap()
        .remove("image");
    src["vmconfig"]["dependencies"]
        .as_object_mut()
        .unwrap()
        .remove("vmconfig");
    // The images part is tested against a real registry in deps_images.rs.
    src["vmconfig"]["images"] = serde_json::json!([]);
    src["vmconfig"]["dependencies"]["kube2iam"] = serde_json::json!({
        "version": "0.12.0", "type": "binary", "providers": ["aws"], "size": 9000,
        "url": "https://github.com/jtblin/kube2iam/releases/download/0.12.0/kube2iam-linux-amd64",
        "digest": format!("sha256:{}", "0".repeat(64)),
    });
    let mut m = fixtures::generate(&src, dir.path(), 1.0 / 5000.0, 3).unwrap();
    let mirror = Mirror::start();
    for (key, dep) in m["vmconfig"]["dependencies"].as_object_mut().unwrap() {
        let path = fixtures::mirror_path(
            key,
            dep["version"].as_str().unwrap(),
            dep["url"].as_str().unwrap(),
        );
        dep["url"] = mirror.url(&format!("/{path}")).into();
    }
    publish(dir.path(), &m);
    mirror.serve_dir(dir.path());
    (mirror, dir, m)
}

fn publish(dir: &Path, m: &serde_json::Value) {
    let p = dir.join("manifests/vmconfig_knc_debian-13_amd64.json");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, serde_json::to_vec_pretty(m).unwrap()).unwrap();
    for (name, doc) in catalogs() {
        std::fs::write(dir.join("manifests").join(name), doc).unwrap();
    }
}

/// Components and templates manifests that pin no image.
fn catalogs() -> [(&'static str, Vec<u8>); 2] {
    [
        (
            "components.json",
            br#"{"components": {"version": "1", "images": []}}"#.to_vec(),
        ),
        (
            "templates.json",
            br#"{"templates": {"version": "1", "charts": [], "images": []}}"#.to_vec(),
        ),
    ]
}

fn podplane(mirror: &Mirror, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(args)
        .env("PODPLANE_DEPS_URL", mirror.base_url())
        .env("PODPLANE_DEPS_CACHE_DIR", cache)
        .env("PODPLANE_ARCH", "amd64")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn download_fills_the_cache_then_finds_everything_there() {
    let (mirror, _d, m) = published();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&mirror, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Downloading kubelet...\n") && out.contains("Downloaded kubelet.\n"),
        "{out}"
    );
    assert!(
        !out.contains("kube2iam"),
        "provider-specific items only when selected: {out}"
    );
    assert!(
        out.contains("All dependencies for knc_debian-13_amd64 are up to date.\n"),
        "{out}"
    );
    // Then the arch-independent parts: no image pinned here.
    assert!(
        out.ends_with("Images: 0 (0 found in cache, 0 downloaded: 0 blobs, 0 bytes).\n"),
        "{out}"
    );
    let kubelet = &m["vmconfig"]["dependencies"]["kubelet"];
    let path = cache
        .path()
        .join("vmconfig/artifacts/kubelet/1.37.0/kubelet");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        format!("sha256:{}", podplane_testkit::sha256_hex(&bytes)),
        kubelet["digest"].as_str().unwrap()
    );
    // The annotated manifest and its history copy.
    let latest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            cache
                .path()
                .join("vmconfig/manifests/vmconfig_knc_debian-13_amd64.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        latest["vmconfig"]["dependencies"]["kubelet"]["cached"],
        true
    );
    assert!(
        latest["vmconfig"]["dependencies"]["kube2iam"]
            .get("cached")
            .is_none()
    );
    let history: Vec<_> = std::fs::read_dir(cache.path().join("vmconfig/manifests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vmconfig_knc_debian-13_amd64_") && n.ends_with(".json"))
        .collect();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(
        history[0].contains('T') && history[0].contains("Z_"),
        "{history:?}"
    );

    // Again: everything found, no artifact requested.
    let before = mirror.requests().len();
    let (code, out, _) = podplane(&mirror, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Found kubelet in cache.\n") && !out.contains("Downloading"),
        "{out}"
    );
    assert_eq!(
        mirror.requests().len(),
        before + 3,
        "only the manifests were fetched again (node, components, templates)"
    );

    // --providers aws adds kube2iam; a dry run lists it and writes nothing.
    std::fs::remove_file(&path).unwrap();
    let (code, out, _) = podplane(
        &mirror,
        cache.path(),
        &[
            "deps",
            "download",
            "--skip-seeds",
            "--providers",
            "aws",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("VMConfig artifacts that would be downloaded:\n"),
        "{out}"
    );
    assert!(
        out.contains("  • vmconfig/artifacts/kubelet/1.37.0/kubelet\n"),
        "{out}"
    );
    assert!(
        out.contains("  • vmconfig/artifacts/kube2iam/0.12.0/kube2iam-linux-amd64\n"),
        "{out}"
    );
    assert!(!path.exists(), "a dry run writes nothing");
}

#[test]
fn status_compares_the_published_manifest_with_the_cache() {
    let (mirror, d, mut m) = published();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, _) = podplane(&mirror, cache.path(), &["deps", "status"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("Fetching latest dependency manifest...\nNew packages are available to download (nothing cached yet"),
        "{out}"
    );
    assert_eq!(
        podplane(&mirror, cache.path(), &["deps", "download", "--skip-seeds"]).0,
        0
    );
    let (code, out, _) = podplane(&mirror, cache.path(), &["deps", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("No new packages available.\ncomponents: up to date"),
        "{out}"
    );
    let (code, out, _) = podplane(&mirror, cache.path(), &["deps", "status", "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "up_to_date");
    assert_eq!(v["kind"], "knc");
    m["vmconfig"]["version"] = "0.2.0".into();
    publish(d.path(), &m);
    let (code, out, _) = podplane(&mirror, cache.path(), &["deps", "status"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("New packages are available to download.\ncomponents:"),
        "{out}"
    );
    let (_, out, _) = podplane(
        &mirror,
        cache.path(),
        &["deps", "status", "--output", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "updates_available");
    // An unreachable server is an error: said on stderr, exit 1.
    drop(mirror);
    let gone = Mirror::start();
    let (code, _, err) = podplane(&gone, cache.path(), &["deps", "status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Error checking for new packages: unexpected status 404"),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_refused() {
    let (mirror, d, mut m) = published();
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = podplane(
        &mirror,
        cache.path(),
        &["deps", "download", "--skip-seeds", "--arch", "riscv64"],
    );
    // A usage error (exit 1) that lists the accepted values, before anything is fetched.
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: invalid value 'riscv64' for '--arch <ARCH>'"),
        "{err}"
    );
    assert!(err.contains("[possible values: amd64, arm64]"), "{err}");
    // A published manifest must not carry the unreleased stub.
    m["vmconfig"]["dependencies"]["vmagent"] =
        serde_json::json!({"version": "dev", "url": "", "type": "tar.gz", "digest": "", "size": 0});
    publish(d.path(), &m);
    let (code, _, err) = podplane(&mirror, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("published vmconfig manifest contains unreleased vmconfig stub"),
        "{err}"
    );
    // Every item needs a size.
    m["vmconfig"]["dependencies"]
        .as_object_mut()
        .unwrap()
        .remove("vmagent");
    m["vmconfig"]["dependencies"]["runc"]["size"] = 0.into();
    publish(d.path(), &m);
    let (code, _, err) = podplane(&mirror, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("\"runc\"") && err.contains("no `size`"),
        "{err}"
    );
}

/// Every file below `dir`, relative to it (directories too).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A hostile deps server whose manifest climbs out of the cache with a dependency's version,
/// key or URL file name (once it made `deps download` write `~/.ssh/authorized_keys`, digest
/// and size matching what it served). The manifest is refused before anything is written, and
/// the error names the culprit.
#[test]
fn a_hostile_manifest_cannot_write_outside_the_cache() {
    let payload = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIATTACKER attacker\n".to_vec();
    let digest = format!("sha256:{}", podplane_testkit::sha256_hex(&payload));
    // Six levels up from <home>/.cache/podplane/deps/vmconfig/artifacts/<name> is <home>.
    type Case = (&'static str, fn(&mut serde_json::Value, &str), &'static str);
    let cases: Vec<Case> = vec![
        (
            "version",
            |m, url| {
                let k = &mut m["vmconfig"]["dependencies"]["kubelet"];
                k["version"] = "../../../../../../.ssh".into();
                k["url"] = format!("{url}/authorized_keys").into();
            },
            "\"../../../../../../.ssh\"",
        ),
        (
            "key",
            |m, url| {
                let deps = m["vmconfig"]["dependencies"].as_object_mut().unwrap();
                let mut k = deps.remove("kubelet").unwrap();
                k["version"] = ".ssh".into();
                k["url"] = format!("{url}/authorized_keys").into();
                deps.insert("../../../../../..".into(), k);
            },
            "\"../../../../../..\"",
        ),
        (
            "url",
            |m, url| {
                let k = &mut m["vmconfig"]["dependencies"]["kubelet"];
                k["url"] = format!("{url}/%2e%2e").into();
            },
            "%2e%2e",
        ),
    ];
    for (what, poison, needle) in cases {
        let (mirror, d, mut m) = published();
        mirror.add("/evil/authorized_keys", payload.clone());
        mirror.add("/evil/%2e%2e", payload.clone());
        let base = mirror.url("/evil");
        poison(&mut m, &base);
        for dep in m["vmconfig"]["dependencies"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            if dep["url"].as_str().unwrap().starts_with(&base) {
                dep["digest"] = digest.clone().into();
                dep["size"] = payload.len().into();
            }
        }
        publish(d.path(), &m);
        let home = tempfile::tempdir().unwrap();
        let config = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(["deps", "download", "--skip-seeds"])
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("XDG_CACHE_HOME")
            .env_remove("PODPLANE_DEPS_CACHE_DIR")
            .env("PODPLANE_DEPS_URL", mirror.base_url())
            .env("PODPLANE_ARCH", "amd64")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(needle) && err.contains("single path component"),
            "{what}: {err}"
        );
        assert!(!home.path().join(".ssh").exists(), "{what}: wrote ~/.ssh");
        let outside: Vec<String> = tree(home.path())
            .into_iter()
            .filter(|p| {
                !Path::new(".cache/podplane/deps").starts_with(p)
                    && !p.starts_with(".cache/podplane/deps")
            })
            .collect();
        assert!(outside.is_empty(), "{what}: {outside:?}");
        // Nothing was downloaded either: the manifest was refused first.
        assert_eq!(
            mirror.requests().len(),
            1,
            "{what}: {:?}",
            mirror.requests()
        );
    }
}

#[test]
fn artifact_paths_are_built_from_checked_components_only() {
    let deps = podplane::deps::Deps {
        base_url: "http://127.0.0.1:1".into(),
        dir: "/cache".into(),
    };
    let dep = |version: &str, url: &str| vmagent::manifest::Dependency {
        version: version.into(),
        url: url.into(),
        kind: vmagent::manifest::DepType::Binary,
        digest: String::new(),
        size: 1,
        providers: vec![],
        cached: None,
    };
    assert_eq!(
        deps.artifact_path("kubelet", &dep("1.37.0", "https://dl/x/kubelet"))
            .unwrap(),
        Path::new("/cache/vmconfig/artifacts/kubelet/1.37.0/kubelet")
    );
    for (name, d) in [
        ("..", dep("1", "https://h/f")),
        ("k", dep("../..", "https://h/f")),
        ("k", dep("1", "https://h/..")),
        ("k", dep("1", "https://h/")),
        ("k", dep("", "https://h/f")),
        ("a/b", dep("1", "https://h/f")),
        (".ssh", dep("1", "https://h/f")),
    ] {
        let err = deps.artifact_path(name, &d).unwrap_err();
        assert!(err.to_string().contains("single path component"), "{err}");
    }
}

/// `deps download -f`: the node kinds and arches of the cluster's pools, not the host's.
#[test]
fn download_for_a_cluster_config_covers_its_pools() {
    let mirror = Mirror::start();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    for kind in ["knc", "knd"] {
        let name = format!("vmconfig_{kind}_debian-13_arm64.json");
        mirror
            .add_file(
                &format!("/manifests/{name}"),
                &Path::new(fixtures)
                    .join("deps/vmconfig/manifests")
                    .join(&name),
            )
            .unwrap();
    }
    for (name, doc) in catalogs() {
        mirror.add(&format!("/manifests/{name}"), doc);
    }
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["deps", "download", "--skip-seeds", "--dry-run", "-f"])
        .arg(Path::new(fixtures).join("golden/podplane.cluster.jsonc"))
        .env("PODPLANE_DEPS_URL", mirror.base_url())
        .env("PODPLANE_DEPS_CACHE_DIR", cache.path())
        .env("XDG_CONFIG_HOME", cache.path().join("config"))
        .env("PODPLANE_ARCH", "amd64")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sources: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("VMConfig manifest: "))
        .collect();
    assert_eq!(
        sources,
        [
            mirror.url("/manifests/vmconfig_knc_debian-13_arm64.json"),
            mirror.url("/manifests/vmconfig_knd_debian-13_arm64.json"),
        ]
    );
    // Its providers select provider-specific artifacts.
    let mut cfg =
        podplane::config::load(&Path::new(fixtures).join("golden/podplane.cluster.jsonc")).unwrap();
    assert_eq!(
        podplane::deps::cluster_providers(&cfg),
        ["aws", "aws-route53"]
    );
    cfg.cluster.secrets.providers.insert(
        "g".into(),
        podplane::config::SecretsProvider {
            kind: "gcp".into(),
            ..Default::default()
        },
    );
    assert_eq!(
        podplane::deps::cluster_providers(&cfg),
        ["aws", "aws-route53", "gcp"]
    );
    // --arch narrows to the pools' arches: amd64 has none here.
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args([
            "deps",
            "download",
            "--skip-seeds",
            "--dry-run",
            "--arch",
            "amd64",
            "-f",
        ])
        .arg(Path::new(fixtures).join("golden/podplane.cluster.jsonc"))
        .env("PODPLANE_DEPS_URL", mirror.base_url())
        .env("PODPLANE_DEPS_CACHE_DIR", cache.path())
        .env("XDG_CONFIG_HOME", cache.path().join("config"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("VMConfig manifest:"));
}
