//! `podplane deps download`, the image part against broken and hostile registries: the
//! testkit's fault-injecting server standing in for a registry (429/5xx, cut connections, wrong
//! digests and sizes, huge manifests, hostile names), a stand-in that wants a Bearer token, and
//! template charts. The cache must stay consistent.

mod common;
use common::*;

use podplane_testkit::oci::{Blob, Image};
use podplane_testkit::{Fault, Mirror, random_bytes};
use serde_json::{Value, json};

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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
        let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, _, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Template charts: 2 (2 found in cache, 0 downloaded)."),
        "{out}"
    );
    // verify re-hashes the charts too.
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let web = cache
        .path()
        .join(format!("deps/templates/charts/{host}/charts/web"));
    std::fs::write(blob(&web, &web_l.digest), b"tampered").unwrap();
    let (code, out, _) = podplane(&deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("template chart {host}/charts/web:1.0.0: "))
            && out.contains("wrong size"),
        "{out}"
    );
}
