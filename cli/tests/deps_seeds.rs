//! The seed part of `deps download` and the resolution of a cluster's pinned seed, against the
//! loopback fixture server (with faults): `manifests/seeds.json` and the snapshots it pins.

mod seed_fixture;

use std::path::Path;

use podplane::deps::Deps;
use podplane::seeds::manifest::{self, SeedsError, Source};
use podplane::seeds::pin::{self, Pin};
use podplane_testkit::{Fault, Mirror};
use serde_json::json;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

struct Published {
    mirror: Mirror,
    recommended: Vec<u8>,
    minimal: Vec<u8>,
}

/// A deps server with seeds version `1.2.3-1`: recommended and minimal snapshots.
fn published() -> Published {
    let mirror = Mirror::start();
    let recommended = seed_fixture::bytes(40);
    let minimal = seed_fixture::bytes(3);
    mirror.add("/seeds/v1.2.3-1/recommended.netsy", recommended.clone());
    mirror.add("/seeds/v1.2.3-1/minimal.netsy", minimal.clone());
    let m = json!({"seeds": {"version": "1.2.3-1", "components": "1.2.3", "snapshots": {
        "recommended": {"url": mirror.url("/seeds/v1.2.3-1/recommended.netsy"),
            "digest": seed_fixture::sha512(&recommended), "size": recommended.len()},
        "minimal": {"url": mirror.url("/seeds/v1.2.3-1/minimal.netsy"),
            "digest": seed_fixture::sha512(&minimal), "size": minimal.len()},
    }}});
    mirror.add("/manifests/seeds.json", serde_json::to_vec(&m).unwrap());
    Published {
        mirror,
        recommended,
        minimal,
    }
}

fn deps(mirror: &Mirror, dir: &Path) -> Deps {
    Deps {
        base_url: mirror.base_url(),
        dir: dir.to_path_buf(),
    }
}

#[test]
fn download_caches_every_snapshot_through_faults_then_finds_them() {
    let p = published();
    // The first answers fail: a reset mid-body, a 503, a truncated body.
    p.mirror.faults(
        "/seeds/v1.2.3-1/recommended.netsy",
        [
            Fault::ResetAfter(1000),
            Fault::Status(503),
            Fault::TruncateAfter(10),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let d = deps(&p.mirror, cache.path());
    let mut out = Vec::new();
    let m = rt()
        .block_on(manifest::download(
            &d,
            Source::Published,
            false,
            false,
            &mut out,
        ))
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Downloading seed recommended..."), "{out}");
    let rec = cache
        .path()
        .join("seeds/snapshots/recommended/1.2.3-1/recommended.netsy");
    assert_eq!(std::fs::read(&rec).unwrap(), p.recommended);
    assert_eq!(
        std::fs::read(
            cache
                .path()
                .join("seeds/snapshots/minimal/1.2.3-1/minimal.netsy")
        )
        .unwrap(),
        p.minimal
    );
    assert!(m.seeds.snapshots.values().all(|s| s.cached == Some(true)));
    let cached: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cache.path().join("seeds/manifests/seeds.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cached["seeds"]["snapshots"]["minimal"]["cached"], true);
    let history = std::fs::read_dir(cache.path().join("seeds/manifests"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with("seeds_") && n.ends_with(".json")
        })
        .count();
    assert_eq!(history, 1);
    // Resumed, not restarted: a later attempt asked for a range.
    let reqs = p.mirror.requests_for("/seeds/v1.2.3-1/recommended.netsy");
    assert!(reqs.len() >= 3, "{reqs:?}");

    // Second run: everything is found, no snapshot is fetched again.
    let before = p.mirror.requests().len();
    let mut out = Vec::new();
    rt().block_on(manifest::download(
        &d,
        Source::Published,
        false,
        false,
        &mut out,
    ))
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Found seed recommended in cache."), "{out}");
    let after: Vec<_> = p.mirror.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(after, ["/manifests/seeds.json"]);
}

#[test]
fn a_digest_mismatch_leaves_nothing_behind() {
    let p = published();
    p.mirror
        .always("/seeds/v1.2.3-1/minimal.netsy", Fault::WrongBytes);
    let cache = tempfile::tempdir().unwrap();
    let d = deps(&p.mirror, cache.path());
    let e = rt()
        .block_on(manifest::download(
            &d,
            Source::Published,
            false,
            false,
            &mut Vec::new(),
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed-minimal") || e.contains("minimal"), "{e}");
    assert!(
        e.to_lowercase().contains("digest") || e.contains("checksum"),
        "{e}"
    );
    assert!(
        !cache
            .path()
            .join("seeds/snapshots/minimal/1.2.3-1/minimal.netsy")
            .exists()
    );
    assert!(!cache.path().join("seeds/manifests/seeds.json").exists());
}

#[test]
fn dry_run_writes_nothing() {
    let p = published();
    let cache = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    rt().block_on(manifest::download(
        &deps(&p.mirror, cache.path()),
        Source::Published,
        true,
        false,
        &mut out,
    ))
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Seeds manifest: http") && out.contains("Seed snapshots: 2"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn resolve_fetches_when_missing_and_checks_version_and_digest() {
    let p = published();
    let cache = tempfile::tempdir().unwrap();
    let d = deps(&p.mirror, cache.path());
    let pin = Pin {
        name: "minimal".into(),
        version: "1.2.3-1".into(),
        digest: seed_fixture::sha512(&p.minimal),
    };
    let path = rt()
        .block_on(pin::resolve(&d, &pin, &mut Vec::new()))
        .unwrap()
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), p.minimal);
    // Cached now: no network needed.
    let before = p.mirror.requests().len();
    rt().block_on(pin::resolve(&d, &pin, &mut Vec::new()))
        .unwrap();
    assert_eq!(p.mirror.requests().len(), before);

    // Another pinned version than the published one: both named.
    let other = Pin {
        version: "2.0.0-1".into(),
        ..pin.clone()
    };
    let e = rt()
        .block_on(pin::resolve(&d, &other, &mut Vec::new()))
        .unwrap_err();
    assert!(matches!(e, SeedsError::Version { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("\"1.2.3-1\"") && e.contains("\"2.0.0-1\""),
        "{e}"
    );

    // The pinned digest is not the file's: both named.
    let wrong = Pin {
        digest: format!("sha512:{}", "ab".repeat(64)),
        ..pin.clone()
    };
    let e = rt()
        .block_on(pin::resolve(&d, &wrong, &mut Vec::new()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&pin.digest) && e.contains(&wrong.digest) && e.contains("minimal"),
        "{e}"
    );
    // none: nothing to resolve.
    let none = Pin {
        name: "none".into(),
        version: String::new(),
        digest: String::new(),
    };
    assert!(
        rt().block_on(pin::resolve(&d, &none, &mut Vec::new()))
            .unwrap()
            .is_none()
    );
}

#[test]
fn hostile_manifests_are_refused() {
    let digest = format!("sha512:{}", "ab".repeat(64));
    let cases = [
        (
            json!({"seeds": {"version": "1", "snapshots": {"../../etc": {"url": "https://x/a.netsy", "digest": digest, "size": 1}}}}),
            "single path component",
        ),
        (
            json!({"seeds": {"version": "../1", "snapshots": {"r": {"url": "https://x/a.netsy", "digest": digest, "size": 1}}}}),
            "single path component",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"url": "https://x/..", "digest": digest, "size": 1}}}}),
            "single path component",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"url": "file:///etc/passwd", "digest": digest, "size": 1}}}}),
            "not an http(s) URL",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"url": "https://x/a", "digest": format!("sha256:{}", "a".repeat(64)), "size": 1}}}}),
            "only sha512",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"url": "https://x/a", "digest": digest, "size": 0}}}}),
            "size must be > 0",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"path": "../a.netsy", "url": "https://x/a", "digest": digest, "size": 1}}}}),
            "exactly one of path or url",
        ),
        (
            json!({"seeds": {"version": "1", "snapshots": {"r": {"path": "/etc/passwd"}}}}),
            "names a local path",
        ),
    ];
    for (m, want) in cases {
        let mirror = Mirror::start();
        mirror.add("/manifests/seeds.json", serde_json::to_vec(&m).unwrap());
        let cache = tempfile::tempdir().unwrap();
        let e = rt()
            .block_on(manifest::download(
                &deps(&mirror, cache.path()),
                Source::Published,
                false,
                false,
                &mut Vec::new(),
            ))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains("seeds.json"), "{m}: {e}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
    }
}

#[test]
fn a_local_manifest_copies_path_entries() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_fixture::bytes(2);
    std::fs::write(dir.path().join("recommended.netsy"), &seed).unwrap();
    std::fs::create_dir(dir.path().join("manifests")).unwrap();
    let file = dir.path().join("manifests/seeds.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"seeds": {"version": "dev", "snapshots": {
            "recommended": {"path": "../recommended.netsy"}}}}))
        .unwrap(),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let d = Deps {
        base_url: "http://127.0.0.1:9".into(),
        dir: cache.path().to_path_buf(),
    };
    rt().block_on(manifest::download(
        &d,
        Source::File(&file),
        false,
        false,
        &mut Vec::new(),
    ))
    .unwrap();
    assert_eq!(
        std::fs::read(
            cache
                .path()
                .join("seeds/snapshots/recommended/dev/recommended.netsy")
        )
        .unwrap(),
        seed
    );
}

#[test]
fn the_wizard_pins_version_and_digest_from_the_manifest() {
    let p = published();
    let cache = tempfile::tempdir().unwrap();
    let d = deps(&p.mirror, cache.path());
    let pin = rt()
        .block_on(pin::pin_for(&d, "minimal", &mut Vec::new()))
        .unwrap();
    assert_eq!(pin.version, "1.2.3-1");
    assert_eq!(pin.digest, seed_fixture::sha512(&p.minimal));
    let e = rt()
        .block_on(pin::pin_for(&d, "huge", &mut Vec::new()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("seed snapshot \"huge\" was not found in seeds manifest")
            && e.contains("minimal, recommended"),
        "{e}"
    );
    // The server gone: the cached manifest still pins.
    let offline = Deps {
        base_url: "http://127.0.0.1:9".into(),
        dir: cache.path().to_path_buf(),
    };
    let again = rt()
        .block_on(pin::pin_for(&offline, "recommended", &mut Vec::new()))
        .unwrap();
    assert_eq!(again.digest, seed_fixture::sha512(&p.recommended));
}
