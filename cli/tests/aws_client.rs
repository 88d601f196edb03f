//! podplane's AWS client against moto_server on loopback with moto's IAM authorization on: every
//! request after the fixture's setup must carry a valid SigV4 signature from a known access key
//! whose policy allows the call. That proves both the signing and which keys the credential
//! chain picked: user `deleter` may do anything, user `nobody` nothing. Fixtures are created and
//! checked with boto3, independently of podplane's client.
//!
//! Without `moto_server` (pip install 'moto[server]') the tests print SKIP and pass, unless
//! PODPLANE_REQUIRE_MOTO=1, which turns a missing server into a failure.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use podplane::aws::{self, AwsError, EnvSource, PutOutcome};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
/// Requests moto serves before it enforces IAM: the five IAM calls of `setup_users`.
const SETUP_CALLS: &str = "5";

struct Keys {
    id: String,
    secret: String,
}

struct Moto {
    child: Child,
    url: String,
    logdir: tempfile::TempDir,
    deleter: Keys,
    nobody: Keys,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto_server with IAM enforced after the setup calls, and creates the two users.
fn moto(test: &str) -> Option<Moto> {
    let required = std::env::var("PODPLANE_REQUIRE_MOTO").is_ok_and(|v| v == "1");
    let unavailable = |why: String| {
        assert!(
            !required,
            "PODPLANE_REQUIRE_MOTO=1 but {why}; install it with: pip install 'moto[server]'"
        );
        eprintln!("SKIP {test}: {why} (pip install 'moto[server]' to run it)");
        None
    };
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()));
    if !on_path {
        return unavailable("moto_server is not on PATH".into());
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let logdir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(logdir.path().join("moto.log")).unwrap();
    let child = match Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_CALLS)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return unavailable(format!("moto_server cannot be started: {e}")),
    };
    let mut m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        logdir,
        deleter: Keys {
            id: String::new(),
            secret: String::new(),
        },
        nobody: Keys {
            id: String::new(),
            secret: String::new(),
        },
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = m.child.try_wait() {
            return unavailable(format!("moto_server exited with {status}: {}", m.log()));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not listen on {} within 60s",
            m.url
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let users = m.py(
        "iam = boto3.client('iam', endpoint_url=url, region_name=region, aws_access_key_id='x', aws_secret_access_key='x')\n\
         result = {}\n\
         for name, allow in [('deleter', True), ('nobody', False)]:\n    \
             iam.create_user(UserName=name)\n    \
             if allow: iam.put_user_policy(UserName=name, PolicyName='all', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))\n    \
             k = iam.create_access_key(UserName=name)['AccessKey']\n    \
             result[name] = [k['AccessKeyId'], k['SecretAccessKey']]",
        &Keys {
            id: "x".into(),
            secret: "x".into(),
        },
        &Value::Null,
    );
    let keys = |name: &str| Keys {
        id: users[name][0].as_str().unwrap().into(),
        secret: users[name][1].as_str().unwrap().into(),
    };
    m.deleter = keys("deleter");
    m.nobody = keys("nobody");
    Some(m)
}

impl Moto {
    fn log(&self) -> String {
        std::fs::read_to_string(self.logdir.path().join("moto.log")).unwrap_or_default()
    }

    /// Runs a boto3 snippet with `s3` (signed with `keys`), `url`, `region` and `arg` (JSON)
    /// bound; returns the JSON it assigns to `result`.
    fn py(&self, code: &str, keys: &Keys, arg: &Value) -> Value {
        let script = format!(
            "import boto3, json, sys\n\
             url, region = '{url}', '{REGION}'\n\
             s3 = boto3.client('s3', endpoint_url=url, region_name=region, aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n\
             arg = json.loads(sys.argv[1])\n\
             result = None\n\
             {code}\n\
             print(json.dumps(result))\n",
            url = self.url
        );
        let out = Command::new("python3")
            .args(["-c", &script, &arg.to_string(), &keys.id, &keys.secret])
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 helper failed: {}\nmoto log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn put_objects(&self, bucket: &str, objects: &[(&str, &str)]) {
        let objects: BTreeMap<_, _> = objects.iter().cloned().collect();
        self.py(
            "try: s3.create_bucket(Bucket=arg['bucket'])\n\
             except s3.exceptions.BucketAlreadyOwnedByYou: pass\n\
             for k, v in arg['objects'].items(): s3.put_object(Bucket=arg['bucket'], Key=k, Body=v.encode())",
            &self.deleter,
            &json!({"bucket": bucket, "objects": objects}),
        );
    }

    fn get(&self, bucket: &str, key: &str) -> String {
        self.py(
            "result = s3.get_object(Bucket=arg['bucket'], Key=arg['key'])['Body'].read().decode()",
            &self.deleter,
            &json!({"bucket": bucket, "key": key}),
        )
        .as_str()
        .unwrap()
        .to_string()
    }
}

/// A temporary AWS config dir: profile `proc` gets the deleter's keys from a
/// `credential_process` script (which logs each run), profile `static` has the nobody's keys
/// in the credentials file.
struct AwsDir {
    dir: tempfile::TempDir,
}

impl AwsDir {
    fn new(m: &Moto) -> AwsDir {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("creds.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nprintf '%s' '{}'\n",
                dir.path().join("runs.log").display(),
                json!({"Version": 1, "AccessKeyId": m.deleter.id, "SecretAccessKey": m.deleter.secret})
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config"),
            format!(
                "[default]\nregion = {REGION}\n\n[profile proc]\ncredential_process = {}\n",
                script.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            format!(
                "[static]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                m.nobody.id, m.nobody.secret
            ),
        )
        .unwrap();
        AwsDir { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.path("runs.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The files, moto as the endpoint, no instance metadata, and the nobody's keys in the
    /// environment (which a profile named in the cluster config must win over).
    fn env(&self, m: &Moto) -> BTreeMap<String, String> {
        [
            ("AWS_CONFIG_FILE", self.path("config").display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("credentials").display().to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_ENDPOINT_URL", m.url.clone()),
            ("AWS_ACCESS_KEY_ID", m.nobody.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", m.nobody.secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(env: BTreeMap<String, String>, profile: &str) -> aws::Client {
    let config = aws::Config::from_env(REGION, &EnvSource::Vars(env))
        .unwrap()
        .with_profile(profile);
    aws::Client::new(config).unwrap()
}

fn status_code(err: &AwsError) -> (u16, String) {
    match err {
        AwsError::Api { status, code, .. } => (*status, code.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[test]
fn the_profile_named_in_the_cluster_config_picks_the_keys() {
    let Some(m) = moto("the_profile_named_in_the_cluster_config_picks_the_keys") else {
        return;
    };
    m.put_objects("nstance-p1", &[("shards/a.json", "{}")]);
    let d = AwsDir::new(&m);
    let rt = rt();

    // The credential_process profile: the deleter's keys, fetched once for several calls.
    let c = client(d.env(&m), "proc");
    let (region, key) = rt.block_on(c.resolve()).unwrap();
    assert_eq!(
        (region.as_str(), key.as_str()),
        (REGION, m.deleter.id.as_str())
    );
    let (body, _) = rt
        .block_on(c.get_object("nstance-p1", "shards/a.json"))
        .unwrap();
    assert_eq!(body, b"{}");
    let keys = rt
        .block_on(c.list_objects("nstance-p1", "shards/", 10))
        .unwrap();
    assert_eq!(keys, ["shards/a.json"]);
    assert_eq!(d.runs(), 1);

    // The static profile and the environment's keys are the nobody's: denied by IAM.
    for profile in ["static", ""] {
        let err = rt
            .block_on(client(d.env(&m), profile).get_object("nstance-p1", "shards/a.json"))
            .unwrap_err();
        assert_eq!(
            status_code(&err),
            (403, "AccessDenied".to_string()),
            "{profile}: {err}"
        );
    }
    // moto checks the key and the signature, so a wrong secret cannot pass.
    let mut env = d.env(&m);
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "wrong".into());
    let err = rt
        .block_on(client(env, "").get_object("nstance-p1", "shards/a.json"))
        .unwrap_err();
    assert_eq!(status_code(&err).0, 403, "{err}");
    assert_ne!(status_code(&err).1, "AccessDenied", "{err}");
}

#[test]
fn list_and_create_only_put() {
    let Some(m) = moto("list_and_create_only_put") else {
        return;
    };
    m.put_objects("netsy-c1", &[("other/x", "x")]);
    let d = AwsDir::new(&m);
    let c = client(d.env(&m), "proc");
    let rt = rt();
    assert!(
        rt.block_on(c.list_objects("netsy-c1", "seed/", 10))
            .unwrap()
            .is_empty()
    );

    let key = "seed/boot strap+ü.netsy";
    let put = |body: &[u8]| rt.block_on(c.put_object_if_none_match("netsy-c1", key, body.to_vec()));
    assert_eq!(put(b"first").unwrap(), PutOutcome::Created);
    assert_eq!(put(b"second").unwrap(), PutOutcome::AlreadyExists);
    assert_eq!(m.get("netsy-c1", key), "first");

    for i in 0..3 {
        assert_eq!(
            rt.block_on(c.put_object_if_none_match("netsy-c1", &format!("seed/{i}"), vec![]))
                .unwrap(),
            PutOutcome::Created
        );
    }
    let keys = rt
        .block_on(c.list_objects("netsy-c1", "seed/", 1000))
        .unwrap();
    assert_eq!(keys, ["seed/0", "seed/1", "seed/2", key]);
    assert_eq!(
        rt.block_on(c.list_objects("netsy-c1", "seed/", 2))
            .unwrap()
            .len(),
        2
    );

    let err = rt
        .block_on(c.list_objects("no-such-bucket", "", 10))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("LIST s3://no-such-bucket/: HTTP 404 NoSuchBucket"),
        "{err}"
    );
}

/// A proxy in front of moto that answers the first `throttle` requests with 503 SlowDown and
/// forwards the rest unchanged (so moto still checks their signatures); counts requests.
fn throttling_proxy(upstream: &str, throttle: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let req = read_request(&mut conn);
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < throttle {
                let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                let _ = write!(
                    conn,
                    "HTTP/1.1 503 Slow Down\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            // One exchange per connection both ways: ask moto to close, relay until it does.
            let text = String::from_utf8_lossy(&req);
            let end = text.find("\r\n\r\n").unwrap();
            let mut head: Vec<&str> = text[..end]
                .split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                .collect();
            head.push("connection: close");
            let mut up = TcpStream::connect(&upstream).unwrap();
            up.write_all(head.join("\r\n").as_bytes()).unwrap();
            up.write_all(b"\r\n\r\n").unwrap();
            up.write_all(&req[end + 4..]).unwrap();
            let mut resp = Vec::new();
            up.read_to_end(&mut resp).unwrap();
            let _ = conn.write_all(&resp);
        }
    });
    (format!("http://{addr}"), count)
}

fn read_request(conn: &mut TcpStream) -> Vec<u8> {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).unwrap_or(0);
        req.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                return req;
            }
        }
        if n == 0 {
            return req;
        }
    }
}

#[test]
fn throttling_is_retried_with_backoff_against_moto() {
    let Some(m) = moto("throttling_is_retried_with_backoff_against_moto") else {
        return;
    };
    m.put_objects("nstance-t1", &[("a.json", "{\"v\": 1}")]);
    let d = AwsDir::new(&m);
    let (proxy, count) = throttling_proxy(&m.url, 2);
    let mut env = d.env(&m);
    env.insert("AWS_ENDPOINT_URL".into(), proxy);
    let c = client(env, "proc");
    let rt = rt();
    let started = Instant::now();
    let (body, etag) = rt.block_on(c.get_object("nstance-t1", "a.json")).unwrap();
    assert_eq!(body, b"{\"v\": 1}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // Two backoffs of 200 ms and 400 ms, each at least half that with jitter.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // A conditional write through the proxy (already past the throttled requests).
    rt.block_on(c.put_object_if_match("nstance-t1", "a.json", b"{}".to_vec(), &etag))
        .unwrap();
    assert_eq!(m.get("nstance-t1", "a.json"), "{}");
}

/// A fake `tofu` that logs its arguments and prints `outputs` for `output -json`.
fn fake_tofu(dir: &Path, outputs: &Value) -> PathBuf {
    let exe = dir.join("tofu");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = output ]; then cat <<'EOF'\n{}\nEOF\nfi\n",
        dir.join("calls.log").display(),
        serde_json::to_string_pretty(outputs).unwrap()
    );
    std::fs::write(&exe, script).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// The golden cluster config with `"profile": profile` in its AWS provider.
fn cluster_config(dir: &Path, profile: &str) -> PathBuf {
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/golden/podplane.cluster.jsonc"
    ))
    .unwrap();
    let from = "\"region\": \"us-east-1\",";
    assert_eq!(golden.matches(from).count(), 1);
    let text = golden.replace(from, &format!("{from} \"profile\": \"{profile}\","));
    let path = dir.join("podplane.cluster.jsonc");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cluster_delete_uses_the_profile_from_the_cluster_config() {
    let Some(m) = moto("cluster_delete_uses_the_profile_from_the_cluster_config") else {
        return;
    };
    let shard = "{\"groups\": {\"default\": {\"workers\": {\"size\": 2}}}}";
    m.put_objects("nstance-test-cluster", &[("a.json", shard)]);
    let d = AwsDir::new(&m);
    let work = tempfile::tempdir().unwrap();
    let outputs = json!({
        "nstance_bucket": {"value": "nstance-test-cluster"},
        "nstance_shards": {"value": {"us-east-1a": {"config_key": "a.json", "server_ips": []}}},
    });
    let tofu = fake_tofu(work.path(), &outputs);
    let run = |profile: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = cluster_config(dir.path(), profile);
        let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(["cluster", "delete", "-y", "-f"])
            .arg(&config)
            .env_clear()
            .envs(d.env(&m))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("PODPLANE_TF_CMD", &tofu)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let calls = || std::fs::read_to_string(work.path().join("calls.log")).unwrap_or_default();

    // A profile the files do not define: named with the files, before any OpenTofu call.
    let (ok, out) = run("prod");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "AWS profile \"prod\" (providers[].profile in the cluster config) is not defined in {} (AWS_CONFIG_FILE) and {} (AWS_SHARED_CREDENTIALS_FILE); defined: default, proc, static",
            d.path("config").display(),
            d.path("credentials").display()
        )),
        "{out}"
    );
    assert_eq!(calls(), "");

    // The nobody's profile: IAM refuses, nothing is scaled.
    let (ok, out) = run("static");
    assert!(!ok, "{out}");
    assert!(
        out.contains("GET s3://nstance-test-cluster/a.json: HTTP 403 AccessDenied"),
        "{out}"
    );
    assert_eq!(m.get("nstance-test-cluster", "a.json"), shard);

    // The credential_process profile (the deleter), over the nobody's keys in the environment.
    let (ok, out) = run("proc");
    assert!(ok, "{out}");
    assert_eq!(
        m.get("nstance-test-cluster", "a.json"),
        "{\"groups\": {\"default\": {\"workers\": {\"size\": 0}}}}"
    );
    assert!(
        calls().ends_with("destroy -no-color -auto-approve\n"),
        "{}",
        calls()
    );
}
