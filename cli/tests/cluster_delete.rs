//! `delete::delete_cluster` against a real S3/EC2 API (moto_server on loopback) and a fake `tofu`
//! script. Fixtures are created and checked with boto3, independently of podplane's AWS client.
//!
//! Without `moto_server` (pip install 'moto[server]') the moto-backed tests print SKIP and pass,
//! unless PODPLANE_REQUIRE_MOTO=1, which turns a missing server into a failure.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podplane::aws::{self, EnvSource};
use podplane::delete::{self, DeleteError, DeleteOptions};
use podplane::tfrun::Runner;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

struct Moto {
    child: Child,
    url: String,
    _logdir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto_server on a free loopback port, or returns None after printing SKIP.
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
    let boto = Command::new("python3")
        .args(["-c", "import boto3"])
        .stderr(Stdio::null())
        .status();
    if !boto.is_ok_and(|s| s.success()) {
        return unavailable("python3 with boto3 is not available".into());
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
        _logdir: logdir,
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = m.child.try_wait() {
            let log =
                std::fs::read_to_string(m._logdir.path().join("moto.log")).unwrap_or_default();
            return unavailable(format!("moto_server exited with {status}: {log}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not listen on {} within 60s",
            m.url
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

impl Moto {
    fn env(&self) -> BTreeMap<String, String> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_ENDPOINT_URL", self.url.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Runs a boto3 snippet with `s3` and `ec2` clients and `arg` (JSON) bound; returns the JSON
    /// it assigns to `result`.
    fn py(&self, code: &str, arg: &Value) -> Value {
        let script = format!(
            "import boto3, json, sys\n\
             s3 = boto3.client('s3', endpoint_url='{url}', region_name='{REGION}')\n\
             ec2 = boto3.client('ec2', endpoint_url='{url}', region_name='{REGION}')\n\
             arg = json.loads(sys.argv[1])\n\
             result = None\n\
             {code}\n\
             print(json.dumps(result))\n",
            url = self.url
        );
        let out = Command::new("python3")
            .args(["-c", &script, &arg.to_string()])
            .envs(self.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 helper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn put_objects(&self, bucket: &str, objects: &[(&str, &str)]) {
        let objects: BTreeMap<_, _> = objects.iter().cloned().collect();
        self.py(
            "s3.create_bucket(Bucket=arg['bucket'])\n\
             s3.put_bucket_versioning(Bucket=arg['bucket'], VersioningConfiguration={'Status': 'Enabled'})\n\
             for k, v in arg['objects'].items(): s3.put_object(Bucket=arg['bucket'], Key=k, Body=v.encode())",
            &json!({"bucket": bucket, "objects": objects}),
        );
    }

    /// Object body and ETag.
    fn get_object(&self, bucket: &str, key: &str) -> (String, String) {
        let r = self.py(
            "o = s3.get_object(Bucket=arg['bucket'], Key=arg['key'])\n\
             result = [o['Body'].read().decode(), o['ETag']]",
            &json!({"bucket": bucket, "key": key}),
        );
        (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into())
    }

    /// How many times the key was written (the bucket is versioned).
    fn versions(&self, bucket: &str, key: &str) -> usize {
        let r = self.py(
            "v = s3.list_object_versions(Bucket=arg['bucket'], Prefix=arg['key']).get('Versions', [])\n\
             result = len([x for x in v if x['Key'] == arg['key']])",
            &json!({"bucket": bucket, "key": key}),
        );
        r.as_u64().unwrap() as usize
    }

    /// Starts one instance per tag set; returns their ids.
    fn run_instances(&self, tag_sets: &[&[(&str, &str)]]) -> Vec<String> {
        let sets: Vec<BTreeMap<_, _>> = tag_sets
            .iter()
            .map(|t| t.iter().cloned().collect())
            .collect();
        let r = self.py(
            "result = []\n\
             for tags in arg:\n    \
                 r = ec2.run_instances(ImageId='ami-12c6146b', MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': k, 'Value': v} for k, v in tags.items()]}])\n    \
                 result.append(r['Instances'][0]['InstanceId'])",
            &json!(sets),
        );
        r.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn states(&self, ids: &[String]) -> BTreeMap<String, String> {
        let r = self.py(
            "result = {}\n\
             for res in ec2.describe_instances(InstanceIds=arg)['Reservations']:\n    \
                 for i in res['Instances']: result[i['InstanceId']] = i['State']['Name']",
            &json!(ids),
        );
        serde_json::from_value(r).unwrap()
    }
}

/// A fake `tofu` in its own dir that logs its arguments and prints `outputs` for `output -json`.
struct FakeTofu {
    _bin: tempfile::TempDir,
    work: tempfile::TempDir,
    log: PathBuf,
    exe: PathBuf,
}

impl FakeTofu {
    fn new(outputs: &Value) -> FakeTofu {
        let bin = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let log = bin.path().join("calls.log");
        let exe = bin.path().join("tofu");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nif [ \"$1\" = output ]; then cat <<'EOF'\n{}\nEOF\nfi\n",
            log.display(),
            serde_json::to_string_pretty(outputs).unwrap()
        );
        std::fs::write(&exe, script).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeTofu {
            _bin: bin,
            work,
            log,
            exe,
        }
    }

    fn runner(&self) -> Runner {
        let path = std::env::join_paths([self.exe.parent().unwrap()]).unwrap();
        let exe = podplane::tfrun::locate(None, Some(&path)).unwrap();
        assert_eq!(exe, self.exe);
        Runner::new(exe, self.work.path())
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn outputs(bucket: &str, shards: &[(&str, &str)]) -> Value {
    let shards: serde_json::Map<String, Value> = shards
        .iter()
        .map(|(zone, key)| {
            (
                zone.to_string(),
                json!({"config_key": key, "server_ips": ["10.0.1.10"]}),
            )
        })
        .collect();
    json!({
        "cluster_id": {"sensitive": false, "type": "string", "value": "c1"},
        "nstance_bucket": {"sensitive": false, "type": "string", "value": bucket},
        "nstance_shards": {"sensitive": false, "type": ["map", ["object", {}]], "value": shards},
    })
}

fn options(m: &Moto, cluster_id: &str, auto_approve: bool) -> DeleteOptions {
    DeleteOptions {
        auto_approve,
        poll_interval: Duration::from_millis(50),
        wait_timeout: Duration::from_millis(400),
        env: EnvSource::Vars(m.env()),
        ..DeleteOptions::new(cluster_id, REGION)
    }
}

fn run(runner: &Runner, opts: &DeleteOptions, answers: &str) -> (Result<(), DeleteError>, String) {
    let mut out = Vec::new();
    let r = delete::delete_cluster(runner, opts, &mut answers.as_bytes(), &mut out);
    (r, String::from_utf8(out).unwrap())
}

/// Shard config with groups in an order serde_json would not keep, plus unrelated fields.
const SHARD_A: &str = r#"{
  "shard": "us-east-1a",
  "groups": {
    "default": {
      "workers": { "template": "knd", "size": 3, "vars": { "size": 9 } },
      "ingress": { "size": 2, "instance_type": "m7i.large" }
    },
    "acme": {
      "batch": { "size": 1 }
    }
  },
  "templates": { "knd": { "arch": "amd64" } }
}
"#;

const SHARD_A_SCALED: &str = r#"{
  "shard": "us-east-1a",
  "groups": {
    "default": {
      "workers": { "template": "knd", "size": 0, "vars": { "size": 9 } },
      "ingress": { "size": 0, "instance_type": "m7i.large" }
    },
    "acme": {
      "batch": { "size": 0 }
    }
  },
  "templates": { "knd": { "arch": "amd64" } }
}
"#;

const SHARD_B_ZERO: &str =
    r#"{"groups": {"default": {"workers": {"size": 0}}}, "note": "already idle"}"#;

fn managed(name: &str, shard: &str, group: &str, cluster: &str) -> Vec<(String, String)> {
    vec![
        ("Name".into(), name.into()),
        ("nstance:cluster-id".into(), cluster.into()),
        ("nstance:managed".into(), "true".into()),
        ("nstance:shard".into(), shard.into()),
        ("nstance:group".into(), group.into()),
    ]
}

fn tags(t: &[(String, String)]) -> Vec<(&str, &str)> {
    t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn scales_waits_terminates_on_yes_destroys_and_cleans_dangling() {
    let Some(m) = moto("scales_waits_terminates_on_yes_destroys_and_cleans_dangling") else {
        return;
    };
    m.put_objects(
        "nstance-c1",
        &[
            ("shards/us-east-1a.json", SHARD_A),
            ("shards/us-east-1b.json", SHARD_B_ZERO),
        ],
    );
    let (_, etag_b) = m.get_object("nstance-c1", "shards/us-east-1b.json");
    let w1 = managed("c1-workers-1", "us-east-1a", "default/workers", "c1");
    let w2 = managed("c1-ingress-1", "us-east-1b", "default/ingress", "c1");
    let other = managed("c2-workers-1", "us-east-1a", "default/workers", "c2");
    let loose = [("nstance:cluster-id", "c1"), ("Name", "c1-bastion")];
    let ids = m.run_instances(&[&tags(&w1), &tags(&w2), &tags(&other), &loose]);

    let tofu = FakeTofu::new(&outputs(
        "nstance-c1",
        &[
            ("us-east-1b", "shards/us-east-1b.json"),
            ("us-east-1a", "shards/us-east-1a.json"),
        ],
    ));
    let (r, out) = run(&tofu.runner(), &options(&m, "c1", false), "y\nyes\nY\n");
    r.unwrap_or_else(|e| panic!("{e}\n{out}"));

    // Only sizes changed, byte for byte; the already-idle shard was not rewritten.
    assert_eq!(
        m.get_object("nstance-c1", "shards/us-east-1a.json").0,
        SHARD_A_SCALED
    );
    assert_eq!(
        m.get_object("nstance-c1", "shards/us-east-1b.json"),
        (SHARD_B_ZERO.to_string(), etag_b)
    );
    assert_eq!(m.versions("nstance-c1", "shards/us-east-1b.json"), 1);
    assert_eq!(m.versions("nstance-c1", "shards/us-east-1a.json"), 2);

    let states = m.states(&ids);
    assert_eq!(states[&ids[0]], "terminated");
    assert_eq!(states[&ids[1]], "terminated");
    assert_eq!(
        states[&ids[2]], "running",
        "another cluster's instance was touched"
    );
    assert_eq!(states[&ids[3]], "terminated", "dangling instance was left");

    assert_eq!(tofu.calls(), ["init", "output -json", "destroy"]);

    let scaling = out
        .find("Scaling Nstance-managed groups to zero in shard configs.")
        .unwrap();
    let a = out
        .find("us-east-1a: s3://nstance-c1/shards/us-east-1a.json scaled to zero")
        .unwrap();
    let b = out
        .find("us-east-1b: s3://nstance-c1/shards/us-east-1b.json already at zero")
        .unwrap();
    assert!(scaling < a && a < b, "{out}");
    assert!(
        out.contains("Waiting for Nstance-managed EC2 instances to terminate."),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {} (c1-workers-1) shard=us-east-1a group=default/workers state=running\n",
            ids[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {} (c1-ingress-1) shard=us-east-1b group=default/ingress state=running\n",
            ids[1]
        )),
        "{out}"
    );
    assert!(!out.contains(&ids[2]), "{out}");
    assert!(
        out.contains(
            "Terminate remaining Nstance-managed EC2 instances directly before destroy? [y/N]: "
        ),
        "{out}"
    );
    assert!(
        out.contains("Destroy OpenTofu/Terraform-managed resources? [y/N]: "),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {} (c1-bastion) shard=- group=- state=running\n",
            ids[3]
        )),
        "{out}"
    );
    assert!(
        out.contains("Terminate dangling EC2 instances? [y/N]: "),
        "{out}"
    );
    assert!(
        out.ends_with(
            "Cluster \"c1\" destroy completed. Config and generated .tf files were left in place.\n"
        ),
        "{out}"
    );
}

#[test]
fn auto_approve_passes_the_flag_and_asks_nothing() {
    let Some(m) = moto("auto_approve_passes_the_flag_and_asks_nothing") else {
        return;
    };
    m.put_objects("nstance-c3", &[("a.json", SHARD_A)]);
    let tofu = FakeTofu::new(&outputs("nstance-c3", &[("us-east-1a", "a.json")]));
    let (r, out) = run(&tofu.runner(), &options(&m, "c3", true), "");
    r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        tofu.calls(),
        ["init", "output -json", "destroy -auto-approve"]
    );
    assert!(!out.contains("[y/N]"), "{out}");
    assert_eq!(m.get_object("nstance-c3", "a.json").0, SHARD_A_SCALED);
}

#[test]
fn declining_destroy_cancels_after_scaling() {
    let Some(m) = moto("declining_destroy_cancels_after_scaling") else {
        return;
    };
    m.put_objects("nstance-c4", &[("a.json", SHARD_A)]);
    let tofu = FakeTofu::new(&outputs("nstance-c4", &[("us-east-1a", "a.json")]));
    let (r, out) = run(&tofu.runner(), &options(&m, "c4", false), "n\n");
    assert_eq!(r.unwrap_err().to_string(), "destroy cancelled", "{out}");
    assert_eq!(tofu.calls(), ["init", "output -json"]);
    assert_eq!(m.get_object("nstance-c4", "a.json").0, SHARD_A_SCALED);
    // End of input also means no.
    let (r, _) = run(&tofu.runner(), &options(&m, "c4", false), "");
    assert_eq!(r.unwrap_err().to_string(), "destroy cancelled");
}

#[test]
fn declining_to_terminate_remaining_instances_is_a_timeout() {
    let Some(m) = moto("declining_to_terminate_remaining_instances_is_a_timeout") else {
        return;
    };
    m.put_objects("nstance-c5", &[("a.json", SHARD_B_ZERO)]);
    let w = managed("c5-w", "us-east-1a", "default/workers", "c5");
    let ids = m.run_instances(&[&tags(&w)]);
    let tofu = FakeTofu::new(&outputs("nstance-c5", &[("us-east-1a", "a.json")]));
    let (r, out) = run(&tofu.runner(), &options(&m, "c5", false), "n\n");
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "timed out after 400ms waiting for 1 Nstance-managed EC2 instance(s) of cluster \"c5\""
        ),
        "{err}"
    );
    assert!(err.contains(&ids[0]), "{err}");
    assert!(out.contains(
        "Terminate remaining Nstance-managed EC2 instances directly before destroy? [y/N]: "
    ));
    assert_eq!(tofu.calls(), ["init", "output -json"]);
    assert_eq!(m.states(&ids)[&ids[0]], "running");
}

#[test]
fn a_concurrent_change_to_a_shard_config_is_refused() {
    let Some(m) = moto("a_concurrent_change_to_a_shard_config_is_refused") else {
        return;
    };
    m.put_objects("nstance-c6", &[("a.json", SHARD_A)]);
    let config = aws::Config::from_env(REGION, &EnvSource::Vars(m.env())).unwrap();
    let client = aws::Client::new(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (body, etag) = rt
        .block_on(client.get_object("nstance-c6", "a.json"))
        .unwrap();
    assert_eq!(body, SHARD_A.as_bytes());
    assert_eq!(etag, m.get_object("nstance-c6", "a.json").1);

    m.put_objects("nstance-c6", &[("a.json", SHARD_B_ZERO)]);
    let err = rt
        .block_on(client.put_object_if_match("nstance-c6", "a.json", b"{}".to_vec(), &etag))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("PUT s3://nstance-c6/a.json: the object changed since it was read"),
        "{err}"
    );
    assert!(
        err.contains("modified concurrently, rerun podplane cluster delete"),
        "{err}"
    );
    assert_eq!(m.get_object("nstance-c6", "a.json").0, SHARD_B_ZERO);

    let err = rt
        .block_on(client.get_object("nstance-c6", "missing.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("GET s3://nstance-c6/missing.json: HTTP 404 NoSuchKey"),
        "{err}"
    );
}

#[test]
fn missing_outputs_name_the_output_and_the_fix() {
    let tofu = FakeTofu::new(&json!({"cluster_id": {"value": "c1"}}));
    // Credentials are checked first; these are never used (no AWS call is reached).
    let creds: BTreeMap<String, String> =
        [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let opts = DeleteOptions {
        env: EnvSource::Vars(creds),
        ..DeleteOptions::new("c1", REGION)
    };
    let (r, out) = run(&tofu.runner(), &opts, "");
    assert_eq!(
        r.unwrap_err().to_string(),
        "missing nstance_bucket output; rerun podplane cluster create --no-apply to regenerate managed .tf files and apply them"
    );
    assert_eq!(out, "");

    let tofu = FakeTofu::new(&json!({"nstance_bucket": {"value": "b"}}));
    let (r, _) = run(&tofu.runner(), &opts, "");
    assert_eq!(
        r.unwrap_err().to_string(),
        "missing nstance_shards output; rerun podplane cluster create --no-apply to regenerate managed .tf files and apply them"
    );
    assert_eq!(tofu.calls(), ["init", "output -json"]);
}

#[test]
fn missing_credentials_are_reported_before_any_change() {
    let tofu = FakeTofu::new(&outputs("b", &[("z", "k")]));
    // No keys, no profile files (no HOME), no instance metadata: the whole chain comes up empty.
    let env = [("AWS_EC2_METADATA_DISABLED", "true")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = DeleteOptions {
        env: EnvSource::Vars(env),
        ..DeleteOptions::new("c1", REGION)
    };
    let (r, _) = run(&tofu.runner(), &opts, "");
    let err = r.unwrap_err().to_string();
    assert!(
        err.starts_with("AWS credentials not found (default chain: environment, default profile"),
        "{err}"
    );
    assert!(
        err.contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    // Before init and output: nothing ran.
    assert!(tofu.calls().is_empty(), "{:?}", tofu.calls());
}

/// The whole command through the binary: config → outputs → scale → destroy, with the
/// credentials and endpoint from the process environment.
#[test]
fn the_cli_deletes_a_cluster_end_to_end() {
    let Some(m) = moto("the_cli_deletes_a_cluster_end_to_end") else {
        return;
    };
    m.put_objects("nstance-test-cluster", &[("a.json", SHARD_A)]);
    let tofu = FakeTofu::new(&outputs(
        "nstance-test-cluster",
        &[("us-east-1a", "a.json")],
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/golden/podplane.cluster.jsonc"
        ),
        dir.path().join("podplane.cluster.jsonc"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["cluster", "delete", "-y", "-f"])
        .arg(dir.path().join("podplane.cluster.jsonc"))
        .envs(m.env())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("PODPLANE_TF_CMD", &tofu.exe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tofu.calls(),
        // stdout is not a terminal here, so OpenTofu is asked for plain output.
        [
            "init -no-color",
            "output -json",
            "destroy -no-color -auto-approve"
        ]
    );
    assert_eq!(
        m.get_object("nstance-test-cluster", "a.json").0,
        SHARD_A_SCALED
    );
    assert!(
        stdout.ends_with(
            "Cluster \"test-cluster\" destroy completed. Config and generated .tf files were left in place.\n"
        ),
        "{stdout}"
    );
}
