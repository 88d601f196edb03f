//! `vmagent::fetch` against a real HTTP server on loopback that injects faults. Each test asserts
//! the outcome: the final file's digest, the error text, the retries counted, the requests the
//! server saw (with their Range headers) and that no temp file is left behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podplane_testkit::{Fault, Mirror, random_bytes, sha256_hex, sha512_hex};
use vmagent::fetch::{self, BodyState, FetchError, FetchOptions, RetryPolicy, Target};
use vmagent::manifest::Digest;

const MB: usize = 1 << 20;

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        stall_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(500),
        budget: Duration::from_secs(20),
    }
}

struct Setup {
    mirror: Mirror,
    dir: tempfile::TempDir,
    opts: FetchOptions,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = FetchOptions::new(dir.path().join("artifacts"));
    opts.retry = fast_policy();
    Setup {
        mirror: Mirror::start(),
        dir,
        opts,
    }
}

impl Setup {
    /// Serve `data` at `/<key>` and return its target (sha256, size pinned).
    fn artifact(&self, key: &str, data: Vec<u8>) -> Target {
        let t = Target {
            key: key.into(),
            url: self.mirror.url(&format!("/{key}")),
            digest: Digest::parse(&format!("sha256:{}", sha256_hex(&data))).unwrap(),
            size: data.len() as u64,
            dest: self.opts.dir.join(key),
        };
        self.mirror.add(&format!("/{key}"), data);
        t
    }

    async fn fetch(&self, targets: Vec<Target>) -> Result<fetch::Summary, FetchError> {
        fetch::fetch(targets, &self.opts).await
    }
}

fn file_sha256(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

/// Names in `dir` other than the lock file.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != fetch::LOCK_NAME)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn ranges(m: &Mirror, path: &str) -> Vec<Option<String>> {
    m.requests_for(path).into_iter().map(|r| r.range).collect()
}

#[tokio::test]
async fn reset_mid_body_is_retried_and_resumed() {
    let s = setup();
    let data = random_bytes(2 * MB, 1);
    let t = s.artifact("kubelet", data.clone());
    s.mirror.faults("/kubelet", [Fault::ResetAfter(700_000)]);
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 1);
    assert_eq!(sum.downloaded, 1);
    let r = ranges(&s.mirror, "/kubelet");
    assert_eq!(r.len(), 2, "{r:?}");
    // What arrived before the reset is kept: the retry asks for the rest, never from 0 again.
    if let Some(range) = &r[1] {
        let from: u64 = range
            .trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap();
        assert!(from > 0 && from <= 700_000, "{range}");
    }
    assert_eq!(entries(&s.opts.dir), ["kubelet"]);
}

#[tokio::test]
async fn server_errors_then_success() {
    let s = setup();
    let data = random_bytes(300_000, 2);
    let t = s.artifact("runc", data.clone());
    s.mirror.faults(
        "/runc",
        [Fault::Status(503), Fault::Status(500), Fault::Status(429)],
    );
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 3);
    assert_eq!(s.mirror.requests_for("/runc").len(), 4);
}

#[tokio::test]
async fn truncated_body_resumes_with_range_from_the_exact_byte() {
    let s = setup();
    let data = random_bytes(MB, 3);
    let t = s.artifact("zot", data.clone());
    s.mirror.faults("/zot", [Fault::TruncateAfter(400_000)]);
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 1);
    assert_eq!(
        ranges(&s.mirror, "/zot"),
        [None, Some("bytes=400000-".to_string())]
    );
    // Only the missing part crossed the network twice... not at all: 1 MiB in total.
    assert_eq!(sum.bytes_received, MB as u64);
}

#[tokio::test]
async fn truncated_body_without_range_support_restarts_from_zero() {
    let s = setup();
    let data = random_bytes(MB, 4);
    let t = s.artifact("crictl", data.clone());
    s.mirror.no_ranges("/crictl");
    s.mirror.faults("/crictl", [Fault::TruncateAfter(400_000)]);
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 1);
    // The client asked to resume; the server answered 200 with the whole body.
    assert_eq!(
        ranges(&s.mirror, "/crictl"),
        [None, Some("bytes=400000-".to_string())]
    );
    assert_eq!(sum.bytes_received, 400_000 + MB as u64);
}

#[tokio::test]
async fn wrong_bytes_once_are_retried_from_zero() {
    let s = setup();
    let data = random_bytes(500_000, 5);
    let t = s.artifact("netsy", data.clone());
    s.mirror.faults("/netsy", [Fault::WrongBytes]);
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 1);
    assert_eq!(ranges(&s.mirror, "/netsy"), [None, None]);
}

#[tokio::test]
async fn always_wrong_bytes_fail_after_one_retry_naming_everything() {
    let s = setup();
    let data = random_bytes(500_000, 6);
    let mut corrupt = data.clone();
    corrupt[250_000] ^= 0xff;
    let t = s.artifact("kube-apiserver", data);
    s.mirror.always("/kube-apiserver", Fault::WrongBytes);
    let err = s.fetch(vec![t.clone()]).await.unwrap_err();
    match &err {
        FetchError::DigestMismatch {
            key,
            url,
            expected,
            actual,
            body,
        } => {
            assert_eq!(key, "kube-apiserver");
            assert_eq!(url, &t.url);
            assert_eq!(expected.as_ref(), &t.digest);
            assert_eq!(actual.hex, sha256_hex(&corrupt));
            assert_eq!(*body, BodyState::Complete { got: 500_000 });
        }
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    for part in ["kube-apiserver", &t.url, &t.digest.to_string(), "complete"] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert_eq!(s.mirror.requests_for("/kube-apiserver").len(), 2);
    assert!(
        entries(&s.opts.dir).is_empty(),
        "{:?}",
        entries(&s.opts.dir)
    );
}

#[tokio::test]
async fn empty_and_short_bodies_are_named_in_the_error() {
    let s = setup();
    let t = s.artifact("kubectl", random_bytes(100_000, 7));
    s.mirror.always("/kubectl", Fault::Empty);
    let err = s.fetch(vec![t.clone()]).await.unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::DigestMismatch {
                body: BodyState::Empty,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("the body was empty"), "{err}");

    // A server whose file is shorter than pinned (consistent Content-Length).
    let s = setup();
    let mut t = s.artifact("kubectl", random_bytes(100_000, 8));
    t.size = 150_000;
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::DigestMismatch {
                body: BodyState::Short {
                    got: 100_000,
                    want: 150_000
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("short: 100000 of 150000"), "{err}");
    assert!(entries(&s.opts.dir).is_empty());
}

#[tokio::test]
async fn a_larger_file_than_pinned_is_not_downloaded() {
    let s = setup();
    let mut t = s.artifact("fluent-bit", random_bytes(MB, 9));
    t.size = 1000;
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(
        matches!(err, FetchError::SizeMismatch { announced, expected: 1000, .. } if announced == MB as u64),
        "{err}"
    );
    assert_eq!(s.mirror.requests_for("/fluent-bit").len(), 2);
    assert!(entries(&s.opts.dir).is_empty());
}

#[tokio::test]
async fn stalled_response_is_abandoned_and_resumed() {
    let s = setup();
    let data = random_bytes(MB, 10);
    let t = s.artifact("containerd", data.clone());
    s.mirror.faults(
        "/containerd",
        [Fault::StallAfter(300_000, Duration::from_secs(5))],
    );
    let start = Instant::now();
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
    assert_eq!(sum.retries, 1);
    let r = ranges(&s.mirror, "/containerd");
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].as_deref(), Some("bytes=300000-"));
}

#[tokio::test]
async fn not_found_fails_at_once() {
    let s = setup();
    let ok = s.artifact("uidmap", random_bytes(1000, 11));
    let missing = Target {
        url: s.mirror.url("/nowhere/libpq5.deb"),
        dest: s.opts.dir.join("libpq5.deb"),
        key: "libpq5".into(),
        ..ok.clone()
    };
    let err = s.fetch(vec![missing]).await.unwrap_err();
    assert!(matches!(err, FetchError::Http { status: 404, ref key, .. } if key == "libpq5"));
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 404") && msg.contains("/nowhere/libpq5.deb"),
        "{msg}"
    );
    assert_eq!(s.mirror.requests_for("/nowhere/libpq5.deb").len(), 1);
    assert!(entries(&s.opts.dir).is_empty());
}

#[tokio::test]
async fn slow_trickle_completes_without_retries() {
    let s = setup();
    let data = random_bytes(160_000, 12);
    let t = s.artifact("libsubid5", data.clone());
    s.mirror.always(
        "/libsubid5",
        Fault::Trickle {
            chunk: 16_000,
            pause: Duration::from_millis(60),
        },
    );
    let start = Instant::now();
    let sum = s.fetch(vec![t.clone()]).await.unwrap();
    // Ten pauses of 60 ms: slower than the stall timeout in total, never per read.
    assert!(start.elapsed() >= Duration::from_millis(540));
    assert_eq!(sum.retries, 0);
    assert_eq!(file_sha256(&t.dest), sha256_hex(&data));
}

#[tokio::test]
async fn sha512_artifacts_verify() {
    let s = setup();
    let data = random_bytes(300_000, 13);
    let mut t = s.artifact("nstance-agent", data.clone());
    t.digest = Digest::parse(&format!("sha512:{}", sha512_hex(&data))).unwrap();
    s.fetch(vec![t.clone()]).await.unwrap();
    assert_eq!(std::fs::read(&t.dest).unwrap(), data);
}

#[tokio::test]
async fn concurrency_is_bounded_and_everything_lands() {
    let mut s = setup();
    s.opts.concurrency = 3;
    let targets: Vec<_> = (0..12)
        .map(|i| {
            let key = format!("item{i:02}");
            let t = s.artifact(&key, random_bytes(64_000, 100 + i));
            s.mirror.always(
                &format!("/{key}"),
                Fault::Trickle {
                    chunk: 16_000,
                    pause: Duration::from_millis(30),
                },
            );
            t
        })
        .collect();
    let sum = s.fetch(targets.clone()).await.unwrap();
    assert_eq!(sum.downloaded, 12);
    let max = s.mirror.max_in_flight();
    assert!((2..=3).contains(&max), "max in flight {max}");
    for t in &targets {
        assert_eq!(
            format!("sha256:{}", file_sha256(&t.dest)),
            t.digest.to_string()
        );
    }
}

#[tokio::test]
async fn verified_files_in_place_are_not_downloaded_again_and_wrong_ones_are_replaced() {
    let s = setup();
    let a = s.artifact("a", random_bytes(100_000, 14));
    let b = s.artifact("b", random_bytes(100_000, 15));
    s.fetch(vec![a.clone(), b.clone()]).await.unwrap();
    assert_eq!(s.mirror.requests().len(), 2);

    std::fs::write(&b.dest, b"tampered").unwrap();
    let sum = s.fetch(vec![a.clone(), b.clone()]).await.unwrap();
    assert_eq!(sum.reused_in_place, 1);
    assert_eq!(sum.downloaded, 1);
    assert_eq!(s.mirror.requests().len(), 3);
    assert_eq!(
        format!("sha256:{}", file_sha256(&b.dest)),
        b.digest.to_string()
    );
}

#[tokio::test]
async fn cache_is_reused_across_destinations_and_heals_corruption() {
    let mut s = setup();
    let cache = s.dir.path().join("cache");
    s.opts.cache = Some(cache.clone());
    let a = s.artifact("a", random_bytes(200_000, 16));
    s.fetch(vec![a.clone()]).await.unwrap();
    let entry = fetch::cache_path(&cache, &a.digest);
    assert!(entry.is_file());

    // Another destination: served from the cache, no request.
    let other: PathBuf = s.dir.path().join("other");
    let mut opts = s.opts.clone();
    opts.dir = other.clone();
    let a2 = Target {
        dest: other.join("a"),
        ..a.clone()
    };
    let sum = fetch::fetch(vec![a2.clone()], &opts).await.unwrap();
    assert_eq!(sum.reused_from_cache, 1);
    assert_eq!(s.mirror.requests().len(), 1);
    assert_eq!(file_sha256(&a2.dest), file_sha256(&a.dest));

    // A corrupt cache entry is dropped and the file downloaded again.
    std::fs::remove_file(&a2.dest).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::fs::write(&entry, b"rot").unwrap();
    let sum = fetch::fetch(vec![a2.clone()], &opts).await.unwrap();
    assert_eq!(sum.downloaded, 1);
    assert_eq!(s.mirror.requests().len(), 2);
    assert_eq!(
        format!("sha256:{}", file_sha256(&entry)),
        a.digest.to_string()
    );
    s.opts = opts;
}

#[tokio::test]
async fn free_space_is_checked_before_the_first_byte() {
    let s = setup();
    let mut t = s.artifact("huge", random_bytes(10, 17));
    t.size = u64::MAX / 4;
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(matches!(err, FetchError::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("not enough free space"), "{err}");
    assert!(s.mirror.requests().is_empty());
}

#[tokio::test]
async fn absurd_sizes_add_up_without_overflow() {
    let s = setup();
    let mut a = s.artifact("a", random_bytes(10, 33));
    let mut b = s.artifact("b", random_bytes(10, 34));
    a.size = u64::MAX / 2 + 1;
    b.size = u64::MAX / 2 + 1;
    let err = s.fetch(vec![a, b]).await.unwrap_err();
    assert!(matches!(err, FetchError::NoSpace { .. }), "{err}");
    assert!(s.mirror.requests().is_empty());
}

#[tokio::test]
async fn unwritable_destination_is_reported() {
    let mut s = setup();
    let file = s.dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    s.opts.dir = file.join("artifacts");
    let t = s.artifact("a", random_bytes(10, 18));
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(matches!(err, FetchError::CreateDir { .. }), "{err}");
    assert!(err.to_string().contains("plain-file/artifacts"), "{err}");
    assert!(s.mirror.requests().is_empty());
}

#[tokio::test]
async fn unreachable_server_gives_up_within_the_budget() {
    let mut s = setup();
    s.opts.retry.max_retries = 1000;
    s.opts.retry.budget = Duration::from_millis(400);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = s.artifact("a", random_bytes(10, 19));
    t.url = format!("http://127.0.0.1:{port}/a");
    let start = Instant::now();
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    match &err {
        FetchError::GaveUp { attempts, last, .. } => {
            assert!(*attempts >= 2, "{attempts}");
            assert!(last.contains("time budget"), "{last}");
            assert!(last.to_lowercase().contains("refused"), "{last}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(entries(&s.opts.dir).is_empty());
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_retry_limit() {
    let mut s = setup();
    s.opts.retry.max_retries = 2;
    let t = s.artifact("a", random_bytes(10, 20));
    s.mirror.always("/a", Fault::Status(502));
    let err = s.fetch(vec![t]).await.unwrap_err();
    assert!(
        matches!(err, FetchError::GaveUp { attempts: 3, ref last, .. } if last.contains("502")),
        "{err}"
    );
    assert_eq!(s.mirror.requests_for("/a").len(), 3);
}

#[tokio::test]
async fn a_fatal_error_cancels_the_rest_and_leaves_no_temp_files() {
    let s = setup();
    let slow = s.artifact("slow", random_bytes(MB, 21));
    s.mirror.always(
        "/slow",
        Fault::Trickle {
            chunk: 4096,
            pause: Duration::from_millis(50),
        },
    );
    let ok = s.artifact("ok", random_bytes(1000, 22));
    let gone = Target {
        key: "gone".into(),
        url: s.mirror.url("/gone"),
        dest: s.opts.dir.join("gone"),
        ..ok.clone()
    };
    let start = Instant::now();
    let err = s.fetch(vec![slow, ok, gone]).await.unwrap_err();
    assert!(matches!(err, FetchError::Http { status: 404, .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The finished one may stay (it is verified); no temp file and no partial "slow".
    let left = entries(&s.opts.dir);
    assert!(left.iter().all(|n| n == "ok"), "{left:?}");
}

#[tokio::test]
async fn temp_files_of_killed_runs_are_swept() {
    let s = setup();
    std::fs::create_dir_all(&s.opts.dir).unwrap();
    std::fs::write(s.opts.dir.join(".a.vmagent-99999.part"), b"junk").unwrap();
    let t = s.artifact("a", random_bytes(10, 23));
    s.fetch(vec![t]).await.unwrap();
    assert_eq!(entries(&s.opts.dir), ["a"]);
}

/// Mount a tmpfs of `kib` KiB on a new temp dir (needs root); `None` when we may not mount.
fn small_tmpfs(kib: u32) -> Option<(tempfile::TempDir, Unmount)> {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: cannot mount a tmpfs here (not root?)");
        return None;
    }
    let path = dir.path().to_path_buf();
    Some((dir, Unmount(path)))
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_ends_with_one_error_and_no_file() {
    let Some((disk, _unmount)) = small_tmpfs(1024) else {
        return;
    };
    let mut s = setup();
    s.opts.dir = disk.path().join("artifacts");

    // Size pinned: refused before the first byte.
    let t = s.artifact("big", random_bytes(3 * MB, 24));
    let err = s.fetch(vec![t.clone()]).await.unwrap_err();
    assert!(matches!(err, FetchError::NoSpace { .. }), "{err}");
    assert!(s.mirror.requests().is_empty());

    assert!(
        entries(&s.opts.dir).is_empty(),
        "{:?}",
        entries(&s.opts.dir)
    );
}

#[tokio::test]
async fn a_target_without_a_size_is_refused_before_anything_happens() {
    // Without a pinned size nothing would bound how much a server may send.
    let s = setup();
    let t = s.artifact("big", random_bytes(1000, 24));
    let unknown = Target { size: 0, ..t };
    let err = s.fetch(vec![unknown.clone()]).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("big") && msg.contains(&unknown.url) && msg.contains("size"),
        "{msg}"
    );
    assert!(s.mirror.requests().is_empty());
    assert!(!s.opts.dir.exists(), "nothing is created");
}

#[tokio::test]
async fn two_targets_for_one_path_are_refused() {
    let s = setup();
    let a = s.artifact("a", random_bytes(1000, 26));
    let b = Target {
        key: "b".into(),
        ..s.artifact("b", random_bytes(1000, 27))
    };
    let b = Target {
        dest: a.dest.clone(),
        ..b
    };
    let err = s.fetch(vec![a, b]).await.unwrap_err();
    assert!(
        err.to_string().contains("would both be written to"),
        "{err}"
    );
    assert!(s.mirror.requests().is_empty());
}

#[tokio::test]
async fn a_cache_on_another_filesystem_is_copied_both_ways() {
    let Some((disk, _unmount)) = small_tmpfs(4096) else {
        return;
    };
    let mut s = setup();
    let cache = disk.path().join("cache");
    s.opts.cache = Some(cache.clone());
    let a = s.artifact("a", random_bytes(300_000, 25));
    s.fetch(vec![a.clone()]).await.unwrap();
    let entry = fetch::cache_path(&cache, &a.digest);
    assert_eq!(file_sha256(&entry), file_sha256(&a.dest));

    std::fs::remove_file(&a.dest).unwrap();
    let sum = s.fetch(vec![a.clone()]).await.unwrap();
    assert_eq!(sum.reused_from_cache, 1);
    assert_eq!(s.mirror.requests().len(), 1);
    assert_eq!(
        format!("sha256:{}", file_sha256(&a.dest)),
        a.digest.to_string()
    );
    assert_eq!(entries(&s.opts.dir), ["a"]);
}

/// The time budget bounds a transfer under way, not only the waits between attempts: a server
/// that sends one byte every 200 ms (never slow enough to count as a stall) cannot hold the
/// fetch past the budget. The mirror's trickle loop is bounded by the body (100 bytes, 20 s at
/// most) and ends as soon as the client hangs up.
#[tokio::test]
async fn the_budget_ends_a_trickling_transfer() {
    let mut s = setup();
    s.opts.retry.stall_timeout = Duration::from_secs(30);
    s.opts.retry.budget = Duration::from_millis(1500);
    let t = s.artifact("trickle", random_bytes(100, 28));
    s.mirror.always(
        "/trickle",
        Fault::Trickle {
            chunk: 1,
            pause: Duration::from_millis(200),
        },
    );
    let start = Instant::now();
    let err = s.fetch(vec![t.clone()]).await.map(|_| ()).unwrap_err();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1500 + 1000),
        "took {took:?} for a 1.5 s budget"
    );
    let msg = err.to_string();
    for part in ["trickle", t.url.as_str(), "budget", "ran out"] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert!(
        entries(&s.opts.dir).is_empty(),
        "{:?}",
        entries(&s.opts.dir)
    );
}

/// A budget beyond any sane run is cut, never an overflow.
#[tokio::test]
async fn a_huge_budget_does_not_overflow() {
    let mut s = setup();
    s.opts.retry.budget = Duration::MAX;
    let t = s.artifact("a", random_bytes(1000, 29));
    s.fetch(vec![t]).await.unwrap();
}

/// A cache entry planted as a symbolic link is not followed: the artifact is downloaded and the
/// destination is a regular file of ours.
#[tokio::test]
async fn a_symlinked_cache_entry_is_not_followed() {
    let mut s = setup();
    let cache = s.dir.path().join("cache");
    s.opts.cache = Some(cache.clone());
    let data = random_bytes(50_000, 30);
    let a = s.artifact("a", data.clone());
    let elsewhere = s.dir.path().join("elsewhere");
    std::fs::write(&elsewhere, &data).unwrap();
    let entry = fetch::cache_path(&cache, &a.digest);
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();

    let sum = s.fetch(vec![a.clone()]).await.unwrap();
    assert_eq!(sum.reused_from_cache, 0);
    assert_eq!(sum.downloaded, 1);
    let md = std::fs::symlink_metadata(&a.dest).unwrap();
    assert!(md.file_type().is_file(), "{:?}", md.file_type());
    assert_eq!(std::fs::read(&a.dest).unwrap(), data);
    // The planted link is left as it was, and its target untouched.
    assert!(
        std::fs::symlink_metadata(&entry)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), data);
}

/// A cache entry is copied, never hard-linked: whoever owns the entry's inode (the cache may be
/// shared) must not be able to change the artifact after it was verified.
#[tokio::test]
async fn a_cache_entry_is_copied_not_shared() {
    use std::os::unix::fs::MetadataExt;
    let mut s = setup();
    let cache = s.dir.path().join("cache");
    s.opts.cache = Some(cache.clone());
    let data = random_bytes(50_000, 31);
    let a = s.artifact("a", data.clone());
    let entry = fetch::cache_path(&cache, &a.digest);
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(&entry, &data).unwrap();

    let sum = s.fetch(vec![a.clone()]).await.unwrap();
    assert_eq!(sum.reused_from_cache, 1);
    assert!(s.mirror.requests().is_empty());
    let (e, d) = (
        std::fs::metadata(&entry).unwrap(),
        std::fs::metadata(&a.dest).unwrap(),
    );
    assert_ne!(
        e.ino(),
        d.ino(),
        "the artifact shares the cache entry's inode"
    );
    assert_eq!(std::fs::read(&a.dest).unwrap(), data);

    // Rewriting the entry afterwards changes nothing in place.
    std::fs::write(&entry, b"evil").unwrap();
    assert_eq!(std::fs::read(&a.dest).unwrap(), data);
}

/// A cache whose algorithm directory is a link to somewhere else: nothing is read from or
/// written there.
#[tokio::test]
async fn a_linked_cache_directory_is_not_followed() {
    let mut s = setup();
    let cache = s.dir.path().join("cache");
    let outside = s.dir.path().join("outside");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("sha256")).unwrap();
    s.opts.cache = Some(cache.clone());
    let data = random_bytes(50_000, 32);
    let a = s.artifact("a", data.clone());
    // A matching file "in the cache" through the link: not used.
    std::fs::write(outside.join(&a.digest.hex), &data).unwrap();

    let sum = s.fetch(vec![a.clone()]).await.unwrap();
    assert_eq!(sum.downloaded, 1, "the linked entry was used");
    assert_eq!(std::fs::read(&a.dest).unwrap(), data);
    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [a.digest.hex.as_str()], "written through the link");
}

/// A loopback server that answers every connection with `head` and then `body_len` bytes of
/// `b'x'` written `chunk` at a time with `pause` between writes; it stops when the client hangs
/// up or after `conns` connections.
fn raw_server(
    head: &'static str,
    body_len: usize,
    chunk: usize,
    pause: Duration,
    conns: usize,
) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/manifest.json", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming().take(conns) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut req = [0u8; 4096];
                let _ = c.read(&mut req);
                if c.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let buf = vec![b'x'; chunk];
                let mut sent = 0;
                while sent < body_len {
                    let n = chunk.min(body_len - sent);
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    sent += n;
                    std::thread::sleep(pause);
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn documents_announcing_more_than_the_cap_are_refused_unread() {
    let m = Mirror::start();
    m.add(
        "/big.json",
        vec![b' '; fetch::MAX_DOCUMENT_BYTES as usize + 1],
    );
    let url = m.url("/big.json");
    let err = fetch::get_document(&url, 1).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&url) && msg.contains(&fetch::MAX_DOCUMENT_BYTES.to_string()),
        "{msg}"
    );
    assert_eq!(m.requests().len(), 1, "a too-large document is not retried");
}

#[tokio::test]
async fn documents_without_a_length_stop_at_the_cap() {
    // No Content-Length: the body runs until the connection closes (8 MiB here).
    let url = raw_server(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        8 << 20,
        64 << 10,
        Duration::ZERO,
        1,
    );
    let err = fetch::get_document(&url, 1).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&url) && msg.contains("larger than"), "{msg}");
}

#[tokio::test]
async fn a_trickling_document_ends_at_the_deadline() {
    // One byte every 100 ms for up to 10 s, never a stall.
    let url = raw_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
        100,
        1,
        Duration::from_millis(100),
        1,
    );
    let limits = fetch::DocumentLimits {
        attempts: 1,
        deadline: Duration::from_millis(800),
        ..fetch::DocumentLimits::default()
    };
    let start = Instant::now();
    let err = fetch::get_document_with(&url, &limits).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, fetch::GetError::Deadline { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_document_error_says_why_the_connection_failed() {
    // A port nobody listens on: the message names the refusal, not only "error sending request".
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/manifest.json");
    let msg = fetch::get_document(&url, 1).await.unwrap_err().to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    // A name that cannot resolve (.invalid never does): the DNS failure is said.
    let url = "http://podplane-test.invalid/manifest.json";
    let msg = fetch::get_document(url, 1).await.unwrap_err().to_string();
    assert!(msg.contains("dns error"), "{msg}");
}
