//! `podplane deps download`, the components source: a bare Git mirror of a real local
//! repository (served over `file://`), checked to hold the pinned ref; hostile URLs and refs
//! refused before git runs.

use std::path::Path;
use std::process::Command;

use podplane_testkit::Mirror;
use serde_json::{Value, json};

fn sh_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work repository with one commit on `main` tagged `v1.2.3`, and a bare clone of it (the
/// "upstream" the manifest names).
fn upstream(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    sh_git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("values.yaml"), "a: 1\n").unwrap();
    sh_git(&work, &["add", "."]);
    sh_git(&work, &["commit", "-q", "-m", "one"]);
    sh_git(&work, &["tag", "v1.2.3"]);
    let bare = dir.join("components.git");
    sh_git(dir, &["clone", "-q", "--bare", "work", "components.git"]);
    (work, bare)
}

fn deps_server(source: Value) -> Mirror {
    let m = Mirror::start();
    m.add(
        "/manifests/vmconfig_knc_debian-13_amd64.json",
        serde_json::to_vec(&json!({"vmconfig": {"version": "1", "kind": "knc",
            "os": {"name": "debian-13", "arch": "amd64"}, "dependencies": {}}}))
        .unwrap(),
    );
    m.add(
        "/manifests/components.json",
        serde_json::to_vec(
            &json!({"components": {"version": "1", "source": source, "images": []}}),
        )
        .unwrap(),
    );
    m.add(
        "/manifests/templates.json",
        br#"{"templates": {"version": "1", "charts": [], "images": []}}"#.to_vec(),
    );
    m
}

fn podplane(deps: &Mirror, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(args)
        .env("PODPLANE_DEPS_URL", deps.base_url())
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
fn the_components_source_is_mirrored_and_holds_its_pin() {
    let t = tempfile::tempdir().unwrap();
    let (work, bare) = upstream(t.path());
    let url = format!("file://{}", bare.display());
    let deps = deps_server(json!({"url": url, "ref": {"tag": "v1.2.3"}}));
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 0, "{out}{err}");
    let mirror = cache
        .path()
        .join("git/file")
        .join(bare.strip_prefix("/").unwrap());
    assert!(
        out.contains(&format!(
            "Components source cached in {}.",
            mirror.display()
        )),
        "{out}"
    );
    assert_eq!(
        sh_git(&mirror, &["rev-parse", "refs/tags/v1.2.3"]),
        sh_git(&work, &["rev-parse", "v1.2.3"])
    );
    assert_eq!(
        sh_git(&mirror, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 0, "{out}{err}");

    // A new commit upstream: the next download fetches it.
    std::fs::write(work.join("values.yaml"), "a: 2\n").unwrap();
    sh_git(&work, &["commit", "-q", "-am", "two"]);
    sh_git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let head = sh_git(&work, &["rev-parse", "HEAD"]);
    let deps = deps_server(json!({"url": url, "ref": {"commit": head}}));
    let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sh_git(&mirror, &["rev-parse", "refs/heads/main"]), head);

    // An exact semver finds the tag vX; a range is not checked.
    for semver in ["1.2.3", ">=1.0"] {
        let deps = deps_server(json!({"url": url, "ref": {"semver": semver}}));
        let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
        assert_eq!(code, 0, "{semver}: {out}{err}");
    }

    // A broken mirror: verify names it and the repair.
    std::fs::remove_dir_all(mirror.join("objects")).unwrap();
    let (code, out, _) = podplane(&deps, cache.path(), &["deps", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("components source {url}"))
            && out.contains("repair: podplane deps download"),
        "{out}"
    );
}

#[test]
fn a_pin_the_repository_does_not_hold_fails() {
    let t = tempfile::tempdir().unwrap();
    let (_, bare) = upstream(t.path());
    let url = format!("file://{}", bare.display());
    for (r, want) in [
        (
            json!({"commit": "0123456789abcdef0123456789abcdef01234567"}),
            "has no commit",
        ),
        (json!({"branch": "release"}), "has no branch \"release\""),
        (json!({"semver": "9.9.9"}), "has no tag for version"),
        (
            json!({"branch": "main", "tag": "v1.2.3"}),
            "exactly one of branch, tag, semver, or commit",
        ),
    ] {
        let deps = deps_server(json!({"url": url, "ref": r}));
        let cache = tempfile::tempdir().unwrap();
        let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
        assert_eq!(code, 1, "{r}: {out}{err}");
        assert!(err.contains(want), "{r}: {err}");
        // Nothing is marked cached when the source is not right.
        assert!(
            !cache
                .path()
                .join("components/manifests/components.json")
                .exists()
        );
    }
    // --skip-components-git leaves the source alone.
    let deps = deps_server(json!({"url": url, "ref": {"branch": "release"}}));
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = podplane(
        &deps,
        cache.path(),
        &["deps", "download", "--skip-seeds", "--skip-components-git"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!cache.path().join("git").exists());
}

#[test]
fn hostile_sources_never_reach_git() {
    let t = tempfile::tempdir().unwrap();
    let (_, bare) = upstream(t.path());
    let marker = t.path().join("pwned");
    for source in [
        json!({"url": format!("ext::sh -c touch% {}", marker.display()), "ref": {"branch": "main"}}),
        json!({"url": format!("file://{}", bare.display()), "ref": {"branch": format!("--upload-pack=touch {}", marker.display())}}),
        json!({"url": "https://example.com/../../../etc", "ref": {"branch": "main"}}),
        json!({"url": "-oProxyCommand=touch /tmp/x", "ref": {"branch": "main"}}),
    ] {
        let deps = deps_server(source.clone());
        let cache = tempfile::tempdir().unwrap();
        let (code, out, err) = podplane(&deps, cache.path(), &["deps", "download", "--skip-seeds"]);
        assert_eq!(code, 1, "{source}: {out}{err}");
        assert!(
            err.contains("fix the components manifest"),
            "{source}: {err}"
        );
        assert!(!marker.exists(), "{source}: a command ran");
        assert!(!cache.path().join("git").exists(), "{source}");
    }
}
