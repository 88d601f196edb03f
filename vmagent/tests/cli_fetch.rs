//! The `vmagent fetch` binary: bad input fails before any download, `--root` defaults, the
//! provider filter from user-data.env, `--wait-for`, and SIGTERM cleaning up partial downloads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use podplane_testkit::{Fault, Mirror, fixtures};

const KNC_AMD64: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/manifests/knc.debian-13.amd64.json"
);

fn vmagent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmagent"));
    c.env_remove("JOURNAL_STREAM");
    c
}

fn run(cmd: &mut Command) -> (i32, String) {
    let Output { status, stderr, .. } = cmd.output().expect("vmagent runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A mirror serving knc amd64 fixtures at 1/2000 of their real sizes, plus an aws-only
/// kube2iam entry; returns (mirror, its directory, manifest path).
fn fixture_mirror() -> (Mirror, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut source: serde_json::Value =
        serde_json::from_slice(&std::fs::read(KNC_AMD64).unwrap()).unwrap();
    source["vmconfig"]["dependencies"]["kube2iam"] = serde_json::json!({
        "version": "0.12.0", "type": "binary", "providers": ["aws"], "size": 30_000_000,
        "url": "https://github.com/jtblin/kube2iam/releases/download/0.12.0/kube2iam-linux-amd64",
        "digest": format!("sha256:{}", "0".repeat(64)),
    });
    let m = fixtures::generate(&source, dir.path(), 1.0 / 2000.0, 7).unwrap();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let mirror = Mirror::start();
    mirror.serve_dir(dir.path());
    (mirror, dir, manifest)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".vmagent-fetch.lock")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fetches_into_root_defaults_with_the_provider_from_user_data() {
    let (mirror, _d, manifest) = fixture_mirror();
    let root = tempfile::tempdir().unwrap();
    let share = root.path().join("opt/podplane/share");
    let etc = root.path().join("opt/podplane/etc");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(&manifest, share.join("vmconfig-manifest.json")).unwrap();
    std::fs::write(etc.join("user-data.env"), "PROVIDER_KIND='local'\n").unwrap();

    let (code, err) = run(vmagent().arg("--root").arg(root.path()).args([
        "fetch",
        "--mirror",
        &mirror.base_url(),
    ]));
    assert_eq!(code, 0, "{err}");
    let dir = root.path().join("opt/podplane/artifacts");
    let files = files_in(&dir);
    assert_eq!(files.len(), 16, "{files:?}");
    assert!(
        !files.contains(&"kube2iam".to_string()),
        "aws-only item on local"
    );
    assert!(files.contains(&"cni-plugins.tar.gz".to_string()));
    let summary = err.lines().last().unwrap();
    assert!(
        summary.contains("fetched 16 files") && summary.contains("16 downloaded"),
        "{err}"
    );

    // Again: everything reused, nothing requested.
    let before = mirror.requests().len();
    let (code, err) = run(vmagent().arg("--root").arg(root.path()).args([
        "fetch",
        "--mirror",
        &mirror.base_url(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("16 reused"), "{err}");
    assert_eq!(mirror.requests().len(), before);

    // --provider wins over user-data.env: on aws the aws-only item is added, the rest reused.
    let (code, err) = run(vmagent().arg("--root").arg(root.path()).args([
        "fetch",
        "--provider",
        "AWS",
        "--mirror",
        &mirror.base_url(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("fetched 17 files") && err.contains("1 downloaded, 16 reused"),
        "{err}"
    );
    assert!(dir.join("kube2iam").is_file());
}

#[test]
fn bad_manifests_fail_before_any_download() {
    let (mirror, _d, manifest) = fixture_mirror();
    let work = tempfile::tempdir().unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["vmconfig"]["dependencies"]["kubelet"]["digest"] = "sha256:abc".into();
    let bad_digest = work.path().join("bad-digest.json");
    std::fs::write(&bad_digest, m.to_string()).unwrap();
    let not_json = work.path().join("not-json.json");
    std::fs::write(&not_json, "{\"vmconfig\": ").unwrap();
    let mut m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m2["vmconfig"]["dependencies"]["runc"]["size"] = "12MB".into();
    let bad_type = work.path().join("bad-type.json");
    std::fs::write(&bad_type, m2.to_string()).unwrap();

    let mut m3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m3["vmconfig"]["dependencies"]["kubelet"]["version"] = "../../../../../tmp".into();
    let hostile_version = work.path().join("hostile-version.json");
    std::fs::write(&hostile_version, m3.to_string()).unwrap();
    let mut m4: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m4["vmconfig"]["dependencies"]["zot"]["size"] = 0.into();
    let no_size = work.path().join("no-size.json");
    std::fs::write(&no_size, m4.to_string()).unwrap();

    for (file, needles) in [
        (
            &bad_digest,
            vec!["bad-digest.json", "\"kubelet\"", "expected 64"],
        ),
        (
            &hostile_version,
            vec![
                "hostile-version.json",
                "vmconfig.dependencies.kubelet.version",
                "\"../../../../../tmp\"",
                "single path component",
            ],
        ),
        (&no_size, vec!["no-size.json", "\"zot\"", "size"]),
        (&not_json, vec!["not-json.json", "not valid"]),
        (
            &bad_type,
            vec!["bad-type.json", "vmconfig.dependencies.runc.size"],
        ),
    ] {
        let dir = work.path().join("artifacts");
        let (code, err) = run(vmagent()
            .args(["fetch", "--mirror", &mirror.base_url()])
            .arg("--manifest")
            .arg(file)
            .arg("--dir")
            .arg(&dir));
        assert_eq!(code, 1, "{err}");
        for n in needles {
            assert!(err.contains(n), "{err} lacks {n}");
        }
        assert!(!dir.exists(), "nothing is created for a bad manifest");
    }
    assert!(mirror.requests().is_empty());

    let (code, err) = run(vmagent()
        .args(["fetch", "--mirror", "deps.example.com", "--manifest"])
        .arg(&manifest));
    assert_eq!(code, 1);
    assert!(
        err.contains("--mirror") && err.contains("https://"),
        "{err}"
    );

    let (code, err) = run(vmagent()
        .args(["fetch", "--wait-for", "nstance", "--manifest"])
        .arg(&manifest));
    assert_eq!(code, 1);
    assert!(
        err.contains("--wait-for") && err.contains("HOST:PORT"),
        "{err}"
    );

    let (code, _) = run(vmagent().args(["fetch", "--concurrency", "0"]));
    assert_eq!(code, 1, "usage errors exit 1");

    // Huge durations are usage errors naming the flag and the limit, never a panic.
    for huge in ["99999999999999h", "999999999999999999999h", "8d", "169h"] {
        let (code, err) = run(vmagent()
            .args(["fetch", "--budget", huge, "--manifest"])
            .arg(&manifest)
            .arg("--dir")
            .arg(work.path().join("artifacts")));
        assert_eq!(code, 1, "--budget {huge}: {err}");
        assert!(
            err.contains("--budget") && !err.contains("panicked"),
            "{err}"
        );
    }
    let (code, err) = run(vmagent().args(["fetch", "--stall-timeout", "99999999999999h"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("7 days"), "{err}");

    let (code, err) = run(vmagent().args(["--root", "/nonexistent-root", "fetch"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent-root/opt/podplane/share/vmconfig-manifest.json"),
        "{err}"
    );
}

#[test]
fn waits_for_the_registration_address_then_fetches() {
    let (mirror, _d, manifest) = fixture_mirror();
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let a2 = addr.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let l = std::net::TcpListener::bind(&a2).unwrap();
        let _ = l.accept();
    });
    let (code, err) = run(vmagent()
        .args([
            "fetch",
            "--provider",
            "local",
            "--mirror",
            &mirror.base_url(),
        ])
        .args(["--wait-for", &addr, "--manifest"])
        .arg(&manifest)
        .arg("--dir")
        .arg(work.path()));
    late.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("waiting for {addr}: attempt 1")),
        "{err}"
    );
    assert!(err.contains(&format!("{addr} is reachable")), "{err}");
    assert!(err.contains("fetched 16 files"), "{err}");
}

#[test]
fn sigterm_removes_partial_downloads() {
    let (mirror, d, manifest) = fixture_mirror();
    // Serve kubelet (30 KB here) slowly so the run is still going when we stop it.
    let kubelet = d.path().join("vmconfig/artifacts/kubelet/1.37.0/kubelet");
    mirror
        .add_file("/vmconfig/artifacts/kubelet/1.37.0/kubelet", &kubelet)
        .unwrap();
    mirror.always(
        "/vmconfig/artifacts/kubelet/1.37.0/kubelet",
        Fault::Trickle {
            chunk: 1000,
            pause: Duration::from_millis(100),
        },
    );
    let work = tempfile::tempdir().unwrap();
    let child = vmagent()
        .args([
            "fetch",
            "--provider",
            "local",
            "--mirror",
            &mirror.base_url(),
        ])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--dir")
        .arg(work.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Temp names are random: wait for any `.kubelet.vmagent-*.part`.
    let has_temp = || {
        files_in(work.path())
            .iter()
            .any(|n| n.starts_with(".kubelet.vmagent-") && n.ends_with(".part"))
    };
    let start = Instant::now();
    while !has_temp() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no temp file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    let left = files_in(work.path());
    assert!(
        left.iter()
            .all(|n| !n.contains(".vmagent-") && n != "kubelet"),
        "{left:?}"
    );
}

/// `--budget` bounds a transfer under way: a mirror trickling one byte every 200 ms (never a
/// stall) cannot hold `vmagent fetch --budget 2s` much longer than 2 s. The mirror's loop is
/// bounded: a 40-byte body (8 s a response; the digest then fails, and one retry follows), and
/// it ends early when vmagent hangs up.
#[test]
fn the_budget_ends_a_trickling_download() {
    let (mirror, _d, manifest) = fixture_mirror();
    let path = "/vmconfig/artifacts/kubelet/1.37.0/kubelet";
    mirror.add(path, vec![0u8; 40]);
    mirror.always(
        path,
        Fault::Trickle {
            chunk: 1,
            pause: Duration::from_millis(200),
        },
    );
    let work = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (code, err) = run(vmagent()
        .args(["fetch", "--provider", "local", "--no-progress"])
        .args(["--mirror", &mirror.base_url(), "--budget", "2s"])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--dir")
        .arg(work.path()));
    let took = start.elapsed();
    assert_eq!(code, 1, "{err}");
    assert!(took < Duration::from_millis(4500), "took {took:?}: {err}");
    for part in ["kubelet", path, "budget", "ran out"] {
        assert!(err.contains(part), "{err} lacks {part}");
    }
    let left = files_in(work.path());
    assert!(
        left.iter()
            .all(|n| !n.contains(".vmagent-") && n != "kubelet"),
        "{left:?}"
    );
}
