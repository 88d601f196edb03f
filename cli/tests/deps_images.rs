//! `podplane deps download`, the image part: a real distribution registry (Debian's
//! `docker-registry`) on loopback filled with generated multi-arch images that share layers,
//! the cache read back by `skopeo`; and the testkit's fault-injecting server standing in for a
//! broken or hostile registry (429/5xx, cut connections, wrong digests and sizes, huge
//! manifests), which must leave the cache consistent.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use podplane_testkit::oci::{Blob, Image, Registry, skopeo};
use podplane_testkit::{Fault, Mirror, random_bytes, tools};
use serde_json::{Value, json};

fn tools_ok() -> bool {
    tools::available("docker-registry", &["--version"])
        && tools::available("skopeo", &["--version"])
}

/// The deps server: minimal node manifests (for both arches) pinning `node_images`, and the
/// components and templates manifests.
fn deps_server(node_images: Value, components: Value) -> Mirror {
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

fn podplane(deps: &Mirror, cache: &Path, args: &[&str]) -> (i32, String, String) {
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

fn row(image: String, img: &Image) -> Value {
    json!({"components": ["app"], "image": image, "digest": img.index.digest, "size": img.index.data.len()})
}

struct World {
    registry: Registry,
    deps: Mirror,
    base: Blob,
    a: Image,
    b: Image,
    pause: Image,
}

/// Three images in the registry (two share a base layer), pinned by the node manifest (pause)
/// and the components manifest (a, b), plus an unselected addon and an aws-only row that point
/// at repositories that do not exist.
fn world() -> World {
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

fn repo_dir(cache: &Path, host: &str, repo: &str) -> PathBuf {
    cache.join(format!("registry/mirror/{host}/{repo}"))
}

/// `oci:<dir>:<tag>` for skopeo, through a link without the `:` of the registry's port (skopeo
/// cuts the reference at the first `:`).
fn oci_ref(dir: &Path, tag: &str) -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    let link = t.path().join("repo");
    std::os::unix::fs::symlink(dir, &link).unwrap();
    let r = format!("oci:{}:{tag}", link.display());
    (t, r)
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

#[test]
fn images_land_in_layouts_that_skopeo_reads() {
    if !tools_ok() {
        return;
    }
    let w = world();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    let h = w.registry.host();
    assert!(
        out.contains(&format!("Downloaded {h}/team/app-a:v1.")),
        "{out}"
    );
    for (repo, tag, img) in [
        ("team/app-a", "v1", &w.a),
        ("team/app-b", "v2", &w.b),
        ("pause", "3.10", &w.pause),
    ] {
        let dir = repo_dir(cache.path(), &h, repo);
        let (_link, layout) = oci_ref(&dir, tag);
        // An independent reader finds the pinned index under the tag…
        let raw = skopeo(&["inspect", "--raw", &layout]).unwrap();
        assert_eq!(raw.as_bytes(), img.index.data, "{repo}");
        // …and copies the amd64 image out of it, blobs verified by skopeo.
        let copy = tempfile::tempdir().unwrap();
        skopeo(&[
            "--override-arch",
            "amd64",
            "copy",
            &layout,
            &format!("dir:{}", copy.path().display()),
        ])
        .unwrap();
        let manifest = std::fs::read(copy.path().join("manifest.json")).unwrap();
        assert_eq!(manifest, img.manifest("amd64").data, "{repo}");
        // Only the requested platform: the arm64 manifest and its own layer are not here.
        let arm = &img.platforms[1];
        assert!(
            !blob(&dir, &arm.1.digest).exists(),
            "{repo}: arm64 manifest cached"
        );
        assert!(!blob(&dir, &arm.3.last().unwrap().digest).exists());
        assert!(
            !dir.read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp"))
        );
    }
    // The shared base layer was fetched once and linked: one inode in both repositories.
    let ia = std::fs::metadata(blob(
        &repo_dir(cache.path(), &h, "team/app-a"),
        &w.base.digest,
    ))
    .unwrap()
    .ino();
    let ib = std::fs::metadata(blob(
        &repo_dir(cache.path(), &h, "team/app-b"),
        &w.base.digest,
    ))
    .unwrap()
    .ino();
    assert_eq!(ia, ib);
    // Unselected rows (an addon not asked for, an aws-only image) were not fetched.
    assert!(
        !cache
            .path()
            .join(format!("registry/mirror/{h}/absent"))
            .exists()
    );
    // The components manifest is cached with the selected rows marked.
    let c: Value = serde_json::from_slice(
        &std::fs::read(
            cache
                .path()
                .join("deps/components/manifests/components.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let cached: Vec<bool> = c["components"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cached"] == json!(true))
        .collect();
    assert_eq!(cached, [true, true, false, false]);
    // A second run finds everything and fetches nothing.
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Found {h}/team/app-a:v1 in cache.")),
        "{out}"
    );
    assert!(
        out.contains("Images: 3 (3 found in cache, 0 downloaded"),
        "{out}"
    );
}

#[test]
fn both_arches_keep_both_platforms() {
    if !tools_ok() {
        return;
    }
    let w = world();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(
        &w.deps,
        cache.path(),
        &["deps", "download", "--arch", "amd64,arm64"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let dir = repo_dir(cache.path(), &w.registry.host(), "team/app-a");
    let copy = tempfile::tempdir().unwrap();
    let (_link, layout) = oci_ref(&dir, "v1");
    skopeo(&[
        "--override-arch",
        "arm64",
        "copy",
        &layout,
        &format!("dir:{}", copy.path().display()),
    ])
    .unwrap();
    assert_eq!(
        std::fs::read(copy.path().join("manifest.json")).unwrap(),
        w.a.manifest("arm64").data
    );
}

/// The fault-injecting server standing in for a registry: it serves one image's manifests and
/// blobs at the distribution API paths.
fn fake_registry(img: &Image, repo: &str) -> Mirror {
    let m = Mirror::start();
    serve_image(&m, img, repo);
    m
}

fn serve_image(m: &Mirror, img: &Image, repo: &str) {
    for b in img.blobs() {
        m.add(&format!("/v2/{repo}/blobs/{}", b.digest), b.data.clone());
        m.add(
            &format!("/v2/{repo}/manifests/{}", b.digest),
            b.data.clone(),
        );
    }
}

fn one_image_deps(host: &str, repos: &[(&str, &Image)]) -> Mirror {
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

#[test]
fn retries_resumes_and_fetches_shared_blobs_once() {
    let base = Blob::new(random_bytes(400_000, 7));
    let a = Image::generate(&["amd64"], std::slice::from_ref(&base), 30_000, 8);
    let b = Image::generate(&["amd64"], std::slice::from_ref(&base), 30_000, 9);
    let reg = fake_registry(&a, "x/a");
    serve_image(&reg, &b, "x/b");
    let host = reg.addr().to_string();
    reg.faults(
        &format!("/v2/x/a/manifests/{}", a.index.digest),
        [Fault::Status(429), Fault::Status(503)],
    );
    // The first image to claim the shared layer is fetched from its repository.
    for repo in ["x/a", "x/b"] {
        reg.faults(
            &format!("/v2/{repo}/blobs/{}", base.digest),
            [Fault::ResetAfter(100_000)],
        );
    }
    let deps = one_image_deps(&host, &[("x/a", &a), ("x/b", &b)]);
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    let base_gets: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&base.digest[7..]))
        .collect();
    // One cut attempt, then one resumed from where it was cut; never from the other repository.
    assert_eq!(base_gets.len(), 2, "{base_gets:?}");
    assert_eq!(base_gets[1].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(
        reg.requests_for(&format!("/v2/x/a/manifests/{}", a.index.digest))
            .len(),
        3
    );
    for (repo, img) in [("x/a", &a), ("x/b", &b)] {
        let dir = repo_dir(cache.path(), &host, repo);
        assert_eq!(
            std::fs::read(blob(&dir, &base.digest)).unwrap(),
            base.data,
            "{repo}"
        );
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert!(
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["digest"] == json!(img.index.digest)
                    && d["annotations"]["org.opencontainers.image.ref.name"] == "v1"),
            "{index}"
        );
    }
}

/// After a failed run: no `index.json` entry, and nothing but verified blobs at final paths.
fn assert_consistent(dir: &Path) {
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

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let a = Image::generate(&["amd64"], &[], 20_000, 10);
    let reg = fake_registry(&a, "x/a");
    reg.always(
        &format!("/v2/x/a/manifests/{}", a.manifest("amd64").digest),
        Fault::WrongBytes,
    );
    let host = reg.addr().to_string();
    let deps = one_image_deps(&host, &[("x/a", &a)]);
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not the pinned"), "{err}");
    assert_consistent(&repo_dir(cache.path(), &host, "x/a"));
}

#[test]
fn a_blob_of_the_wrong_size_is_refused_and_not_kept() {
    let a = Image::generate(&["amd64"], &[], 20_000, 11);
    let reg = fake_registry(&a, "x/a");
    let layer = a.platforms[0].3[0].clone();
    let mut longer = layer.data.clone();
    longer.extend_from_slice(b"trailing");
    reg.add(&format!("/v2/x/a/blobs/{}", layer.digest), longer);
    let host = reg.addr().to_string();
    let deps = one_image_deps(&host, &[("x/a", &a)]);
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("announces") && err.contains(&layer.digest),
        "{err}"
    );
    let dir = repo_dir(cache.path(), &host, "x/a");
    assert!(!blob(&dir, &layer.digest).exists());
    assert_consistent(&dir);
}

#[test]
fn a_huge_manifest_is_not_read() {
    let a = Image::generate(&["amd64"], &[], 1_000, 12);
    let reg = fake_registry(&a, "x/a");
    reg.add(
        &format!("/v2/x/a/manifests/{}", a.index.digest),
        vec![b' '; 5 << 20],
    );
    let host = reg.addr().to_string();
    let deps = one_image_deps(&host, &[("x/a", &a)]);
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn hostile_image_names_write_nothing() {
    let a = Image::generate(&["amd64"], &[], 1_000, 13);
    let reg = fake_registry(&a, "x/a");
    let host = reg.addr().to_string();
    for image in [
        format!("{host}/../../../escape:v1"),
        format!("{host}/x/a:../../v1"),
        format!("{host}/x/A:v1"),
        "/etc/passwd".to_string(),
    ] {
        let deps = deps_server(json!([]), json!([row(image.clone(), &a)]));
        let cache = tempfile::tempdir().unwrap();
        let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
        assert_eq!(code, 1, "{image}: {out}{err}");
        assert!(err.contains("fix the manifest"), "{image}: {err}");
        assert!(
            !cache.path().join("registry").exists(),
            "{image}: something was written"
        );
        assert!(reg.requests().is_empty(), "{image}: the registry was asked");
    }
    // A digest that is not sha256 hex never becomes a file name either.
    let mut bad = row(format!("{host}/x/a:v1"), &a);
    bad["digest"] = json!("sha256:../../../../etc/passwd");
    let deps = deps_server(json!([]), json!([bad]));
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not sha256"), "{err}");
}

/// A stand-in for a registry that wants a Bearer token (as Docker Hub, ghcr.io and quay.io do
/// for anonymous pulls): every `/v2/` request without the token gets 401 and a challenge naming
/// its token service at `/token`. Answers one request per connection.
struct TokenRegistry {
    addr: std::net::SocketAddr,
    /// (path, Authorization header) of every request.
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

type Seen = (String, Option<String>);

impl TokenRegistry {
    fn start(files: std::collections::HashMap<String, Vec<u8>>) -> TokenRegistry {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h
                        .strip_prefix("authorization: ")
                        .or(h.strip_prefix("Authorization: "))
                    {
                        auth = Some(v.trim().to_string());
                    }
                }
                log.lock().unwrap().push((path.clone(), auth.clone()));
                let (status, extra, body) = if path.starts_with("/token?") {
                    ("200 OK", String::new(), br#"{"token":"tok-123"}"#.to_vec())
                } else if auth.as_deref() != Some("Bearer tok-123") {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"test\",scope=\"repository:x/a:pull\"\r\n"
                        ),
                        Vec::new(),
                    )
                } else if let Some(b) = files.get(&path) {
                    ("200 OK", String::new(), b.clone())
                } else {
                    ("404 Not Found", String::new(), Vec::new())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            }
        });
        TokenRegistry { addr, seen }
    }
}

#[test]
fn a_registry_that_wants_a_bearer_token_gets_one() {
    let a = Image::generate(&["amd64"], &[], 50_000, 14);
    let mut files = std::collections::HashMap::new();
    for b in a.blobs() {
        files.insert(format!("/v2/x/a/blobs/{}", b.digest), b.data.clone());
        files.insert(format!("/v2/x/a/manifests/{}", b.digest), b.data.clone());
    }
    let reg = TokenRegistry::start(files);
    let host = reg.addr.to_string();
    let deps = one_image_deps(&host, &[("x/a", &a)]);
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    let seen = reg.seen.lock().unwrap().clone();
    let tokens: Vec<_> = seen
        .iter()
        .filter(|(p, _)| p.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 1, "one token for the repository: {seen:?}");
    assert!(
        tokens[0].0.contains("service=test")
            && tokens[0].0.contains("scope=repository%3Ax%2Fa%3Apull"),
        "{seen:?}"
    );
    // Blobs went through the fetch engine with the token.
    let blobs: Vec<_> = seen.iter().filter(|(p, _)| p.contains("/blobs/")).collect();
    assert_eq!(blobs.len(), 2, "{seen:?}");
    assert!(
        blobs
            .iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer tok-123")),
        "{seen:?}"
    );
    let dir = repo_dir(cache.path(), &host, "x/a");
    assert_eq!(
        std::fs::read(blob(&dir, &a.platforms[0].3[0].digest)).unwrap(),
        a.platforms[0].3[0].data
    );
}

#[test]
fn status_and_verify_name_what_changed_or_broke() {
    if !tools_ok() {
        return;
    }
    let w = world();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 1, "nothing cached yet: {out}{err}");
    assert!(
        out.contains("no node manifest cached; repair: podplane deps download"),
        "{out}"
    );
    assert_eq!(podplane(&w.deps, cache.path(), &["deps", "download"]).0, 0);

    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("components: up to date")
            && out.contains("images: up to date (3 cached images present)"),
        "{out}"
    );
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cached items verified"), "{out}");

    // A corrupt shared layer (same size) and a deleted config: verify names both images.
    let h = w.registry.host();
    let layer = blob(&repo_dir(cache.path(), &h, "team/app-b"), &w.base.digest);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    std::fs::remove_file(blob(
        &repo_dir(cache.path(), &h, "pause"),
        &w.pause.platforms[0].2.digest,
    ))
    .unwrap();
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("{h}/team/app-b:v2: "))
            && out.contains("corrupt (digest differs); repair: podplane deps download"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{h}/pause:3.10: ")) && out.contains("missing; repair"),
        "{out}"
    );
    assert!(err.contains("missing or corrupt"), "{err}");
    let (code, out, _) = podplane(&w.deps, cache.path(), &["deps", "status"]);
    assert_eq!(code, 2, "a missing blob is an update: {out}");
    assert!(
        out.contains("images: updates available (1 of 3 cached images missing)"),
        "{out}"
    );
    // The repair the lines name does repair.
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    // A new components manifest upstream: status says so and exits 2; -o json lists the parts.
    w.deps.add(
        "/manifests/components.json",
        serde_json::to_vec(&json!({"components": {"version": "2", "images": []}})).unwrap(),
    );
    let (code, out, _) = podplane(&w.deps, cache.path(), &["deps", "status"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("components: updates available"), "{out}");
    let (code, out, _) = podplane(&w.deps, cache.path(), &["deps", "status", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["parts"][0]["part"], "components");
    assert_eq!(v["parts"][0]["state"], "updates_available");
    assert_eq!(v["parts"][2]["state"], "up_to_date");
}

/// A Helm chart stored as an OCI artifact (config and content layer of Helm's media types).
fn chart(name: &str, version: &str, seed: u64) -> (Blob, Blob, Blob) {
    let config = Blob::new(
        serde_json::to_vec(&json!({"apiVersion": "v2", "name": name, "version": version})).unwrap(),
    );
    let layer = Blob::new(random_bytes(20_000, seed));
    let manifest = Blob::new(
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config.digest, "size": config.data.len()},
            "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": layer.digest, "size": layer.data.len()}],
        }))
        .unwrap(),
    );
    (manifest, config, layer)
}

#[test]
fn template_charts_and_images_are_cached() {
    let reg = Mirror::start();
    let host = reg.addr().to_string();
    let (web_m, web_c, web_l) = chart("web", "1.0.0", 20);
    let (api_m, api_c, api_l) = chart("api", "2.0.0", 21);
    for (repo, m, c, l) in [
        ("charts/web", &web_m, &web_c, &web_l),
        ("charts/api", &api_m, &api_c, &api_l),
    ] {
        reg.add(
            &format!("/v2/{repo}/manifests/{}", m.digest),
            m.data.clone(),
        );
        for b in [c, l] {
            reg.add(&format!("/v2/{repo}/blobs/{}", b.digest), b.data.clone());
        }
    }
    // web is pinned by version only (resolved by tag), api by digest too.
    reg.add("/v2/charts/web/manifests/1.0.0", web_m.data.clone());
    let img = Image::generate(&["amd64", "arm64"], &[], 5_000, 22);
    serve_image(&reg, &img, "tpl/app");
    let deps = deps_server(json!([]), json!([]));
    deps.add(
        "/manifests/templates.json",
        serde_json::to_vec(&json!({"templates": {"version": "1",
            "charts": [
                {"name": "web", "version": "1.0.0", "type": "oci", "url": format!("oci://{host}/charts/web"),
                 "dependencies": {"components": []}},
                {"name": "api", "version": "2.0.0", "type": "oci", "url": format!("oci://{host}/charts/api"),
                 "digest": api_m.digest, "dependencies": {"components": []}},
            ],
            "images": [{"image": format!("{host}/tpl/app:v1"), "digest": img.index.digest,
                        "size": img.index.data.len(), "templates": {"web": "image"}}],
        }}))
        .unwrap(),
    );
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Template charts: 2 (0 found in cache, 2 downloaded)."),
        "{out}"
    );
    for (repo, tag, m, l) in [
        ("charts/web", "1.0.0", &web_m, &web_l),
        ("charts/api", "2.0.0", &api_m, &api_l),
    ] {
        let dir = cache
            .path()
            .join(format!("deps/templates/charts/{host}/{repo}"));
        assert_eq!(
            std::fs::read(blob(&dir, &l.digest)).unwrap(),
            l.data,
            "{repo}"
        );
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], json!(m.digest), "{repo}");
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            tag
        );
    }
    // The template image too, amd64 only.
    let tdir = repo_dir(cache.path(), &host, "tpl/app");
    assert!(blob(&tdir, &img.manifest("amd64").digest).exists());
    assert!(!blob(&tdir, &img.manifest("arm64").digest).exists());
    let t: Value = serde_json::from_slice(
        &std::fs::read(cache.path().join("deps/templates/manifests/templates.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(t["templates"]["charts"][0]["cached"], true);
    assert_eq!(
        t["templates"]["charts"][0]["chartLayerDigest"],
        json!(web_l.digest)
    );
    assert_eq!(
        t["templates"]["charts"][1]["chartLayerDigest"],
        json!(api_l.digest)
    );
    assert_eq!(t["templates"]["images"][0]["cached"], true);
    // Again: found in the cache.
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Template charts: 2 (2 found in cache, 0 downloaded)."),
        "{out}"
    );
}
