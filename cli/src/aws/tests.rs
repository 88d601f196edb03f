//! The credential chain with real AWS config files and a real `credential_process` script, and
//! retries and size caps against loopback stand-ins for AWS (real sockets, real client).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

fn vars(pairs: &[(&str, &str)]) -> EnvSource {
    EnvSource::Vars(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn endpoints() {
    let c = Config::from_env(
        "eu-west-1",
        &vars(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:6000/"),
        ]),
    )
    .unwrap();
    assert_eq!(c.s3_endpoint.unwrap().as_str(), "http://127.0.0.1:5000/");
    assert_eq!(c.ec2_endpoint.unwrap().as_str(), "http://127.0.0.1:6000/");

    let err =
        Config::from_env("eu-west-1", &vars(&[("AWS_ENDPOINT_URL_S3", "localhost")])).unwrap_err();
    // The parse error stays the typed cause.
    assert!(
        matches!(
            &err,
            AwsError::BadEndpoint {
                reason: EndpointProblem::Parse(_),
                ..
            }
        ),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.starts_with("AWS_ENDPOINT_URL_S3=\"localhost\""),
        "{err}"
    );
}

/// A temporary AWS config dir: `config` with a `credential_process` profile and a region,
/// `credentials` with static keys; the script logs each run.
struct AwsDir {
    dir: tempfile::TempDir,
}

impl AwsDir {
    fn new() -> AwsDir {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("creds.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nprintf '%s' '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"process-secret\"}}'\n",
                dir.path().join("runs.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let broken = dir.path().join("broken.sh");
        std::fs::write(
            &broken,
            "#!/bin/sh\necho the login session expired >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config"),
            format!(
                "[profile proc]\ncredential_process = {}\nregion = ap-south-2\n\n[profile broken]\ncredential_process = {}\n",
                script.display(),
                broken.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            "[static]\naws_access_key_id = AKIDSTATIC\naws_secret_access_key = static-secret\n",
        )
        .unwrap();
        AwsDir { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The files, no instance metadata, plus `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> EnvSource {
        let mut m: BTreeMap<String, String> = [
            ("AWS_CONFIG_FILE", self.path("config")),
            ("AWS_SHARED_CREDENTIALS_FILE", self.path("credentials")),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        EnvSource::Vars(m)
    }
}

fn resolve(region: &str, profile: &str, env: &EnvSource) -> Result<(String, String), AwsError> {
    let client = Client::new(Config::from_env(region, env).unwrap().with_profile(profile)).unwrap();
    rt().block_on(client.resolve())
}

#[test]
fn a_credential_process_profile_runs_once_and_gives_the_region() {
    let d = AwsDir::new();
    let client = Client::new(
        Config::from_env("", &d.env(&[]))
            .unwrap()
            .with_profile("proc"),
    )
    .unwrap();
    let rt = rt();
    assert_eq!(
        rt.block_on(client.resolve()).unwrap(),
        ("ap-south-2".to_string(), "AKIDPROCESS".to_string())
    );
    // Cached: credentials without an expiry are not fetched again.
    rt.block_on(client.clone().resolve()).unwrap();
    assert_eq!(d.runs(), 1);
    // The cluster config's region wins over the profile's.
    assert_eq!(
        resolve("eu-west-1", "proc", &d.env(&[])).unwrap().0,
        "eu-west-1"
    );
}

#[test]
fn the_configured_profile_wins_over_env_keys_and_aws_profile() {
    let d = AwsDir::new();
    let env = d.env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_PROFILE", "proc"),
    ]);
    assert_eq!(
        resolve("us-east-1", "static", &env).unwrap().1,
        "AKIDSTATIC"
    );
    // Without one, the chain's order: environment keys first.
    assert_eq!(resolve("us-east-1", "", &env).unwrap().1, "AKIDENV");
    // Then AWS_PROFILE.
    let env = d.env(&[("AWS_PROFILE", "static")]);
    assert_eq!(resolve("us-east-1", "", &env).unwrap().1, "AKIDSTATIC");
}

#[test]
fn a_missing_profile_names_the_profile_and_the_files_read() {
    let d = AwsDir::new();
    let err = resolve("us-east-1", "prod", &d.env(&[])).unwrap_err();
    assert!(matches!(err, AwsError::ProfileNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    let expected = format!(
        "AWS profile \"prod\" (providers[].profile in the cluster config) is not defined in {} (AWS_CONFIG_FILE) and {} (AWS_SHARED_CREDENTIALS_FILE); defined: broken, proc, static; add [profile prod]",
        d.path("config"),
        d.path("credentials")
    );
    assert!(msg.starts_with(&expected), "{msg}\n{expected}");

    // From AWS_PROFILE, with the default files under a HOME that has none.
    let home = tempfile::tempdir().unwrap();
    let env = vars(&[
        ("HOME", &home.path().display().to_string()),
        ("AWS_PROFILE", "dev"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let msg = resolve("us-east-1", "", &env).unwrap_err().to_string();
    let aws = home.path().join(".aws");
    assert!(
        msg.starts_with(&format!(
            "AWS profile \"dev\" (AWS_PROFILE) is not defined in {} (default, missing) and {} (default, missing); they define no profiles",
            aws.join("config").display(),
            aws.join("credentials").display()
        )),
        "{msg}"
    );
}

#[test]
fn failing_or_absent_credentials_are_clear_errors() {
    let d = AwsDir::new();
    let err = resolve("us-east-1", "broken", &d.env(&[])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("AWS credentials not found (profile \"broken\" from providers[].profile in the cluster config): "),
        "{msg}"
    );
    assert!(msg.contains("the login session expired"), "{msg}");
    assert!(std::error::Error::source(&err).is_some());

    let started = Instant::now();
    let msg = resolve(
        "us-east-1",
        "",
        &vars(&[("AWS_EC2_METADATA_DISABLED", "true")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.starts_with("AWS credentials not found (default chain: "),
        "{msg}"
    );
    assert!(msg.contains("AWS_ACCESS_KEY_ID"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let msg = resolve(
        "",
        "",
        &vars(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.starts_with("no AWS region: "), "{msg}");
}

/// A loopback stand-in for AWS: answers each connection with the next of `responses` (the last
/// one repeats) and counts the requests.
fn scripted(responses: Vec<String>) -> (reqwest::Url, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            read_request(&mut conn);
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let resp = &responses[n.min(responses.len() - 1)];
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    (format!("http://{addr}/").parse().unwrap(), count)
}

fn read_request(conn: &mut std::net::TcpStream) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = conn.read(&mut buf) else { return };
        req.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                return;
            }
        }
        if n == 0 {
            return;
        }
    }
}

fn http(status: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn test_client(endpoint: &reqwest::Url) -> Client {
    let mut config = Config::from_env(
        "us-east-1",
        &vars(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]),
    )
    .unwrap();
    config.s3_endpoint = Some(endpoint.clone());
    config.ec2_endpoint = Some(endpoint.clone());
    Client::new(config).unwrap().with_retry(RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        budget: Duration::from_secs(20),
    })
}

const SLOW_DOWN: &str =
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

#[test]
fn throttling_is_retried_then_succeeds() {
    let ok = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
    let limit = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>";
    let (url, count) = scripted(vec![
        http("503 Slow Down", SLOW_DOWN, ""),
        http("400 Bad Request", limit, ""),
        http("429 Too Many Requests", "", "retry-after: 0\r\n"),
        http("200 OK", ok, ""),
    ]);
    let got = rt()
        .block_on(test_client(&url).describe_instances(&[]))
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
fn throttling_gives_up_after_the_attempt_cap_and_other_errors_are_not_retried() {
    let (url, count) = scripted(vec![http("503 Slow Down", SLOW_DOWN, "")]);
    let started = Instant::now();
    let err = rt()
        .block_on(test_client(&url).get_object("b", "k"))
        .unwrap_err()
        .to_string();
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.starts_with("GET s3://b/k: HTTP 503 SlowDown: Please reduce your request rate.;"),
        "{err}"
    );
    assert!(
        err.ends_with("AWS kept throttling the request, retry later"),
        "{err}"
    );

    let denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    let (url, count) = scripted(vec![http("403 Forbidden", denied, "")]);
    let err = rt()
        .block_on(test_client(&url).get_object("b", "k"))
        .unwrap_err()
        .to_string();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(
        err.starts_with(
            "GET s3://b/k: HTTP 403 AccessDenied: Access Denied; check which AWS credentials"
        ),
        "{err}"
    );
}

#[test]
fn the_retry_budget_caps_the_total_time() {
    // Retry-After asks for an hour: the wait is capped, and the budget ends the retries.
    let (url, count) = scripted(vec![http(
        "503 Slow Down",
        SLOW_DOWN,
        "retry-after: 3600\r\n",
    )]);
    let client = test_client(&url).with_retry(RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        budget: Duration::from_millis(800),
    });
    let started = Instant::now();
    rt().block_on(client.get_object("b", "k")).unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let n = count.load(Ordering::SeqCst);
    assert!((2..=5).contains(&n), "{n} attempts");
}

#[test]
fn oversized_responses_are_refused() {
    // A declared length over the cap is refused before the body is read.
    let huge =
        "HTTP/1.1 200 OK\r\ncontent-length: 100000000000\r\nconnection: close\r\n\r\n".to_string();
    let (url, _) = scripted(vec![huge]);
    let err = rt()
        .block_on(test_client(&url).describe_instances(&[]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            AwsError::BadResponse {
                reason: ResponseProblem::TooLarge { limit: 16777216 },
                ..
            }
        ),
        "{err:?}"
    );

    // A body without a length that never ends is cut at the cap.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        read_request(&mut conn);
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n<ListBucketResult>");
        let chunk = vec![b' '; 1 << 16];
        while conn.write_all(&chunk).is_ok() {}
    });
    let url: reqwest::Url = format!("http://{addr}/").parse().unwrap();
    let err = rt()
        .block_on(test_client(&url).list_objects("b", "p/", 10))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("the response body is larger than 16777216 bytes"),
        "{err}"
    );
}
