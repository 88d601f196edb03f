//! Helpers of the deps image tests: the deps server, the podplane runner, a world of images in
//! a real registry, and the fault-injecting stand-in registry.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use podplane_testkit::oci::{Blob, Image, Registry};
use podplane_testkit::{Mirror, random_bytes, tools};
use serde_json::{Value, json};

pub fn tools_ok() -> bool {
    tools::available("docker-registry", &["--version"])
        && tools::available("skopeo", &["--version"])
}

/// The deps server: minimal node manifests (for both arches) pinning `node_images`, and the
/// components and templates manifests.
pub fn deps_server(node_images: Value, components: Value) -> Mirror {
    let m = Mirror::start();
    for arch in ["amd64", "arm64"] {
        m.add(
            &format!("/manifests/vmconfig_knc_debian-13_{arch}.json"),
            serde_json::to_vec(&json!({"vmconfig": {
                "version": "1", "kind": "knc",
                "os": {"name": "debian-13", "arch": arch},
                "dependencies": {}, "images": node_images,
            }}))
            .unwrap(),
        );
    }
    m.add(
        "/manifests/components.json",
        serde_json::to_vec(&json!({"components": {"version": "1", "images": components}})).unwrap(),
    );
    m.add(
        "/manifests/templates.json",
        serde_json::to_vec(&json!({"templates": {"version": "1", "charts": [], "images": []}}))
            .unwrap(),
    );
    m
}

pub fn podplane(deps: &Mirror, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(args)
        .env("PODPLANE_DEPS_URL", deps.base_url())
        .env("PODPLANE_DEPS_CACHE_DIR", cache.join("deps"))
        .env("PODPLANE_ARCH", "amd64")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn row(image: String, img: &Image) -> Value {
    json!({"components": ["app"], "image": image, "digest": img.index.digest, "size": img.index.data.len()})
}

pub struct World {
    pub registry: Registry,
    pub deps: Mirror,
    pub base: Blob,
    pub a: Image,
    pub b: Image,
    pub pause: Image,
}

/// Three images in the registry (two share a base layer), pinned by the node manifest (pause)
/// and the components manifest (a, b), plus an unselected addon and an aws-only row that point
/// at repositories that do not exist.
pub fn world() -> World {
    let registry = Registry::start().unwrap();
    let base = Blob::new(random_bytes(300_000, 1));
    let a = Image::generate(&["amd64", "arm64"], std::slice::from_ref(&base), 100_000, 2);
    let b = Image::generate(&["amd64", "arm64"], std::slice::from_ref(&base), 50_000, 3);
    let pause = Image::generate(&["amd64", "arm64"], &[], 10_000, 4);
    registry.push(&a, "team/app-a", "v1").unwrap();
    registry.push(&b, "team/app-b", "v2").unwrap();
    registry.push(&pause, "pause", "3.10").unwrap();
    let h = registry.host();
    let mut addon = row(format!("{h}/absent/addon:v1"), &a);
    addon["addon"] = json!(true);
    addon["components"] = json!(["not-recommended"]);
    let mut aws = row(format!("{h}/absent/aws:v1"), &a);
    aws["providers"] = json!(["aws"]);
    // The node manifest's row form: one platform's manifest, with the index it belongs to.
    let deps = deps_server(
        json!([{"image": format!("{h}/pause:3.10"), "digest": pause.manifest("amd64").digest,
            "size": pause.manifest("amd64").data.len(), "platform": "linux/amd64", "index": pause.index.digest}]),
        json!([
            row(format!("{h}/team/app-a:v1"), &a),
            row(format!("{h}/team/app-b:v2"), &b),
            addon,
            aws,
        ]),
    );
    World {
        registry,
        deps,
        base,
        a,
        b,
        pause,
    }
}

pub fn repo_dir(cache: &Path, host: &str, repo: &str) -> PathBuf {
    cache.join(format!("registry/mirror/{host}/{repo}"))
}

/// `oci:<dir>:<tag>` for skopeo, through a link without the `:` of the registry's port (skopeo
/// cuts the reference at the first `:`).
pub fn oci_ref(dir: &Path, tag: &str) -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    let link = t.path().join("repo");
    std::os::unix::fs::symlink(dir, &link).unwrap();
    let r = format!("oci:{}:{tag}", link.display());
    (t, r)
}

pub fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

/// The fault-injecting server standing in for a registry: it serves one image's manifests and
/// blobs at the distribution API paths.
pub fn fake_registry(img: &Image, repo: &str) -> Mirror {
    let m = Mirror::start();
    serve_image(&m, img, repo);
    m
}

pub fn serve_image(m: &Mirror, img: &Image, repo: &str) {
    for b in img.blobs() {
        m.add(&format!("/v2/{repo}/blobs/{}", b.digest), b.data.clone());
        m.add(
            &format!("/v2/{repo}/manifests/{}", b.digest),
            b.data.clone(),
        );
    }
}

pub fn one_image_deps(host: &str, repos: &[(&str, &Image)]) -> Mirror {
    deps_server(
        json!([]),
        Value::Array(
            repos
                .iter()
                .map(|(r, img)| row(format!("{host}/{r}:v1"), img))
                .collect(),
        ),
    )
}

/// After a failed run: no `index.json` entry, and nothing but verified blobs at final paths.
pub fn assert_consistent(dir: &Path) {
    if let Ok(text) = std::fs::read(dir.join("index.json")) {
        let index: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(index["manifests"], json!([]), "an entry after a failure");
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("blobs/sha256")) {
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "temp file left: {name}");
            let data = std::fs::read(e.path()).unwrap();
            assert_eq!(podplane_testkit::sha256_hex(&data), name, "unverified blob");
        }
    }
}
