//! `podplane deps download`, the image part: a real distribution registry (Debian's
//! `docker-registry`) on loopback filled with generated multi-arch images that share layers,
//! the cache read back by `skopeo`; `deps status` and `deps verify` over it. The faults are in
//! `deps_images_faults.rs`.

use std::os::unix::fs::MetadataExt;

mod common;
use common::*;

use podplane_testkit::oci::skopeo;
use serde_json::{Value, json};

#[test]
fn images_land_in_layouts_that_skopeo_reads() {
    if !tools_ok() {
        return;
    }
    let w = world();
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
        &["deps", "download", "--skip-seeds", "--arch", "amd64,arm64"],
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
    assert_eq!(
        podplane(&w.deps, cache.path(), &["deps", "download", "--skip-seeds"]).0,
        0
    );

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
    let (code, out, err) = podplane(&w.deps, cache.path(), &["deps", "download", "--skip-seeds"]);
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
