//! `podplane cluster seed`: the interpolation of a seed for a cluster config, read back by the
//! independent Python reader, the `--dry-run` of the binary against a loopback deps server,
//! and the create-only upload against a real S3 implementation on loopback (moto_server, which
//! honours `If-None-Match: *` with 412 PreconditionFailed).
//!
//! moto_server and the Python reader are optional locally (SKIP) and required under
//! PODPLANE_REQUIRE_MOTO=1 / PODPLANE_REQUIRE_TOOLS=1.

mod seed_fixture;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podplane::aws::EnvSource;
use podplane::deps::Deps;
use podplane::seeds::command::{self, SeedOptions};
use podplane::seeds::netsy;
use podplane::seeds::pin::Pin;
use podplane_testkit::{Mirror, tools};
use serde_json::{Value, json};

fn config(extra: Value) -> Value {
    let mut c = json!({"cluster": {
        "id": "c1",
        "oidc": {"issuer_url": "https://auth.example.com"},
        "registry": {"hostname": "registry.example.com"},
        "providers": [{"kind": "aws", "region": "us-east-1", "account": "123456789012"}],
        "kubernetes": {"api_hostname": "k8s.example.com"},
        "seed": {},
    }});
    podplane::seeds::interpolate::merge(&mut c["cluster"], extra);
    c
}

fn write_config(dir: &Path, cfg: &Value) -> PathBuf {
    let p = dir.join("podplane.cluster.jsonc");
    std::fs::write(&p, serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    p
}

/// The records of `bytes`, by key, with their JSON values.
fn by_key(bytes: &[u8]) -> (Vec<netsy::Record>, BTreeMap<String, Value>) {
    let s = netsy::decode(bytes, "out").unwrap();
    netsy::check_bootstrap(&s, "out").unwrap();
    let map = s
        .records
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.key).into_owned(),
                serde_json::from_slice(&r.value).unwrap_or(Value::Null),
            )
        })
        .collect();
    (s.records, map)
}

fn build(cfg: &Value, seed: &[u8], inline: Option<&str>, file: Option<&str>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), cfg);
    let cfg = podplane::config::load(&path).unwrap();
    let seed_path = dir.path().join("seed.netsy");
    std::fs::write(&seed_path, seed).unwrap();
    let vf = dir.path().join("values.yaml");
    if let Some(f) = file {
        std::fs::write(&vf, f).unwrap();
    }
    command::build(
        &cfg,
        &seed_path,
        None,
        inline,
        file.map(|t| (t, vf.as_path())),
    )
    .unwrap()
}

#[test]
fn service_network_is_rewritten_and_allocations_follow() {
    let cfg = config(json!({"kubernetes": {"service_cidr": ["10.200.0.0/16", "fd00:10::/108"]}}));
    // traefik's allocation as the API server writes it: family and allocator labels, a UID.
    let mut recs = seed_fixture::records(2);
    for r in recs.iter_mut() {
        if r.key == b"/registry/ipaddresses/10.96.0.20" {
            let mut v: Value = serde_json::from_slice(&r.value).unwrap();
            v["metadata"]["uid"] = json!("5b1c8e57-7d6f-4f4e-9a55-3c1a2f1b0e20");
            v["metadata"]["labels"] = json!({"ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"});
            r.value = serde_json::to_vec(&v).unwrap();
        }
    }
    let seed = netsy::encode("seed", None, &recs);
    let (_, m) = by_key(&build(&cfg, &seed, None, None));
    assert_eq!(
        m["/registry/servicecidrs/kubernetes"]["spec"]["cidrs"],
        json!(["10.200.0.0/16", "fd00:10::/108"])
    );
    let svc = |k: &str| m[&format!("/registry/services/specs/{k}")]["spec"].clone();
    assert_eq!(
        svc("default/kubernetes")["clusterIPs"],
        json!(["10.200.0.1", "fd00:10::1"])
    );
    assert_eq!(
        svc("default/kubernetes")["ipFamilyPolicy"],
        "PreferDualStack"
    );
    assert_eq!(
        svc("platform-coredns/platform-coredns")["clusterIP"],
        "10.200.255.254"
    );
    // Same offset (20) from the new networks as from the seed's 10.96.0.0/12.
    assert_eq!(
        svc("platform-traefik/traefik")["clusterIPs"],
        json!(["10.200.0.20", "fd00:10::14"])
    );
    assert_eq!(
        svc("platform-traefik/traefik")["ipFamilies"],
        json!(["IPv4", "IPv6"])
    );
    let ipa = &m["/registry/ipaddresses/10.200.0.20"];
    assert_eq!(ipa["metadata"]["name"], "10.200.0.20");
    assert_eq!(ipa["spec"]["parentRef"]["name"], "traefik");
    assert!(!m.contains_key("/registry/ipaddresses/10.96.0.20"));
    // The single-stack seed's services gain an IPv6 allocation, copied from their IPv4 one
    // with its own name, family label and a UID of its own that a rerun repeats.
    let ipa6 = &m["/registry/ipaddresses/fd00:10::14"];
    assert_eq!(ipa6["metadata"]["name"], "fd00:10::14");
    assert_eq!(ipa6["spec"]["parentRef"], ipa["spec"]["parentRef"]);
    assert_eq!(
        ipa6["metadata"]["labels"]["ipaddress.kubernetes.io/ip-family"],
        "IPv6"
    );
    let uid = ipa6["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 36, "{uid}");
    assert_ne!(Some(uid), ipa["metadata"]["uid"].as_str());
    assert_eq!(
        ipa6["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"],
        "ipallocator.k8s.io"
    );
    // Services whose allocation records carry no labels get IPv6 ones all the same.
    assert_eq!(
        m["/registry/ipaddresses/fd00:10::1"]["spec"]["parentRef"]["name"],
        "kubernetes"
    );
    let (_, again) = by_key(&build(&cfg, &seed, None, None));
    assert_eq!(
        again["/registry/ipaddresses/fd00:10::14"]["metadata"]["uid"],
        uid
    );
    let dns = &m["/registry/helm.toolkit.fluxcd.io/helmreleases/platform-coredns/coredns"]["spec"]
        ["values"]["coredns"]["service"];
    assert_eq!(dns["clusterIP"], "10.200.255.254");
    assert_eq!(
        dns["clusterIPs"],
        svc("platform-coredns/platform-coredns")["clusterIPs"]
    );
    assert_eq!(dns["ipFamilyPolicy"], "PreferDualStack");
}

#[test]
fn dropped_allocations_are_renumbered() {
    // A dual-stack traefik in the seed; a single-stack cluster drops its IPv6 allocation.
    let mut recs = seed_fixture::records(1);
    for r in recs.iter_mut() {
        if r.key == b"/registry/services/specs/platform-traefik/traefik" {
            let mut v: Value = serde_json::from_slice(&r.value).unwrap();
            v["spec"]["clusterIPs"] = json!(["10.96.0.20", "fd00::14"]);
            r.value = serde_json::to_vec(&v).unwrap();
        }
    }
    recs.insert(
        3,
        seed_fixture::rec(
            "/registry/ipaddresses/fd00::14",
            &json!({"kind": "IPAddress", "metadata": {"name": "fd00::14"}}),
        ),
    );
    netsy::renumber(&mut recs, "seed").unwrap();
    let seed = netsy::encode("seed", None, &recs);
    let n_in = recs.len();
    let cfg = config(json!({"kubernetes": {"service_cidr": ["10.200.0.0/16"]}}));
    let (out, m) = by_key(&build(&cfg, &seed, None, None));
    assert_eq!(out.len(), n_in - 1);
    assert!(!m.keys().any(|k| k.contains("fd00")));
    // check_bootstrap (in by_key) proved 1..N; the last revision is the count.
    assert_eq!(out.last().unwrap().revision, out.len() as i64);
    assert_eq!(
        m["/registry/services/specs/platform-traefik/traefik"]["spec"]["ipFamilyPolicy"],
        "SingleStack"
    );
}

#[test]
fn values_merge_derived_then_inline_then_file() {
    let cfg = config(json!({}));
    let inline = "platform:\n  components:\n    apps:\n      csi-aws-ebs:\n        enabled: false\n    keep: inline\n    fromInline: 1\n";
    let file = r#"{"platform": {"components": {"keep": "file"}}}"#;
    let (_, m) = by_key(&build(
        &cfg,
        &seed_fixture::bytes(1),
        Some(inline),
        Some(file),
    ));
    let v = &m["/registry/helm.toolkit.fluxcd.io/helmreleases/platform-components/platform-components"]
        ["spec"]["values"]["platform"]["components"];
    assert_eq!(
        v["apps"]["traefik"]["enabled"], true,
        "the seed's own values stay"
    );
    assert_eq!(
        v["apps"]["csi-aws-ebs"]["enabled"], false,
        "inline beats derived"
    );
    assert_eq!(v["keep"], "file", "the file beats inline");
    assert_eq!(v["fromInline"], 1);
    let zot = &v["values"]["zot-registry"]["platform"]["zotRegistry"];
    assert_eq!(zot["registryHostname"], "registry.example.com");
    assert_eq!(
        zot["storage"],
        json!({"bucket": "c1-123456789012-registry", "region": "us-east-1"})
    );
    assert_eq!(zot["oidc"]["audience"], "c1");
}

#[test]
fn components_source_and_image_mirror() {
    let cfg = config(json!({"components": {
        "source": {"url": "https://git.example.com/c.git", "ref": {"branch": "main"},
                   "secretRef": {"name": "git-auth"}},
        "registry": {"mirror": {"enabled": true}},
    }}));
    let (_, m) = by_key(&build(&cfg, &seed_fixture::bytes(1), None, None));
    let repo = &m["/registry/source.toolkit.fluxcd.io/gitrepositories/platform-components/podplane-components"]
        ["spec"];
    assert_eq!(repo["url"], "https://git.example.com/c.git");
    assert_eq!(repo["ref"], json!({"branch": "main"}));
    assert_eq!(repo["secretRef"], json!({"name": "git-auth"}));
    assert_eq!(repo["interval"], "10m");
    let pod = &m["/registry/deployments/platform-traefik/traefik"]["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/mirror/docker.io/traefik:v3.4.3"
    );
    assert_eq!(
        pod["initContainers"][0]["image"],
        "registry.example.com/mirror/busybox:1.36"
    );
    let v = &m["/registry/helm.toolkit.fluxcd.io/helmreleases/platform-components/platform-components"]
        ["spec"]["values"]["platform"]["components"];
    assert_eq!(
        v["imageMirror"],
        json!({"enabled": true, "hostname": "registry.example.com", "prefix": "mirror"})
    );
}

#[test]
fn a_seed_without_platform_components_is_refused() {
    let recs: Vec<_> = seed_fixture::records(0)
        .into_iter()
        .filter(|r| !r.key.ends_with(b"platform-components/platform-components"))
        .collect();
    let mut recs = recs;
    netsy::renumber(&mut recs, "s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(json!({})));
    let cfg = podplane::config::load(&path).unwrap();
    let seed = dir.path().join("odd.netsy");
    std::fs::write(&seed, netsy::encode("seed", None, &recs)).unwrap();
    let e = command::build(&cfg, &seed, None, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("odd.netsy") && e.contains("platform-components HelmRelease"),
        "{e}"
    );
    // A values file that is not a map names itself.
    let ok = dir.path().join("ok.netsy");
    std::fs::write(&ok, seed_fixture::bytes(0)).unwrap();
    let vf = dir.path().join("v.yaml");
    let e = command::build(&cfg, &ok, None, None, Some(("- a\n- b\n", vf.as_path())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("v.yaml") && e.contains("map of values"), "{e}");
}

#[test]
fn the_bytes_built_from_are_the_bytes_whose_digest_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(json!({})));
    let cfg = podplane::config::load(&path).unwrap();
    let seed = dir.path().join("s.netsy");
    let bytes = seed_fixture::bytes(3);
    std::fs::write(&seed, &bytes).unwrap();
    let pin = |digest: String| Pin {
        name: "recommended".into(),
        version: "1.0.0-1".into(),
        digest,
    };
    let good = pin(podplane::seeds::manifest::sha512(&bytes));
    let out = command::build(&cfg, &seed, Some(&good), None, None).unwrap();
    assert_eq!(out, command::build(&cfg, &seed, None, None, None).unwrap());
    // Another file at the pinned path: refused, naming both digests.
    let wrong = pin(podplane::seeds::manifest::sha512(b"other"));
    let e = command::build(&cfg, &seed, Some(&wrong), None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s.netsy") && e.contains(&wrong.digest) && e.contains(&good.digest),
        "{e}"
    );
    // A corrupted file is reported as not the pinned one, not as a bad CRC somewhere inside.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&seed, &bad).unwrap();
    let e = command::build(&cfg, &seed, Some(&good), None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("digest is") && e.contains(&good.digest), "{e}");
}

#[test]
fn python_reads_the_bootstrap_file() {
    if !tools::available(
        "python3",
        &["-c", "import google.protobuf, grpc_tools, crc"],
    ) {
        return;
    }
    let cfg = config(json!({"kubernetes": {"service_cidr": ["10.200.0.0/16"]}}));
    let bytes = build(&cfg, &seed_fixture::bytes(20), None, None);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bootstrap.netsy");
    std::fs::write(&f, &bytes).unwrap();
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netsy/read_netsy.py"))
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bootstrap_ok"], true);
    assert_eq!(v["leader_id"], "c1");
    assert_eq!(v["records"][0]["key"], "_netsy");
}

/// A deps server publishing the fixture seed as `recommended` version 1.2.3-1.
fn deps_server(seed: &[u8]) -> Mirror {
    let mirror = Mirror::start();
    mirror.add("/seeds/recommended.netsy", seed.to_vec());
    let m = json!({"seeds": {"version": "1.2.3-1", "snapshots": {
        "recommended": {"url": mirror.url("/seeds/recommended.netsy"),
            "digest": seed_fixture::sha512(seed), "size": seed.len()}}}});
    mirror.add("/manifests/seeds.json", serde_json::to_vec(&m).unwrap());
    mirror
}

fn seeded(seed: &[u8]) -> Value {
    config(json!({"seed": {"name": "recommended", "version": "1.2.3-1",
        "digest": seed_fixture::sha512(seed)}}))
}

#[test]
fn dry_run_writes_the_file_and_uploads_nothing() {
    let seed = seed_fixture::bytes(5);
    let mirror = deps_server(&seed);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &seeded(&seed));
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["cluster", "seed", "--dry-run", "-f"])
        .arg(&cfg)
        .env("PODPLANE_DEPS_URL", mirror.base_url())
        .env("PODPLANE_DEPS_CACHE_DIR", cache.path())
        .env("XDG_CONFIG_HOME", cache.path().join("config"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("would upload it to s3://c1-123456789012-netsy/bootstrap.netsy"),
        "{stdout}"
    );
    let (recs, _) = by_key(&std::fs::read(dir.path().join("bootstrap.netsy")).unwrap());
    assert_eq!(recs[0].key, b"_netsy");
    // The seed is cached now.
    assert!(
        cache
            .path()
            .join("seeds/snapshots/recommended/1.2.3-1/recommended.netsy")
            .is_file()
    );
    // Seed none: a clear error.
    let cfg = write_config(dir.path(), &config(json!({"seed": {"name": "none"}})));
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["cluster", "seed", "--dry-run", "-f"])
        .arg(&cfg)
        .env("PODPLANE_DEPS_CACHE_DIR", cache.path())
        .env("XDG_CONFIG_HOME", cache.path().join("config"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to seed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto_server on a free loopback port, or None after printing SKIP.
fn moto() -> Option<Moto> {
    let required = std::env::var("PODPLANE_REQUIRE_MOTO").is_ok_and(|v| v == "1");
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("moto_server").is_file()));
    let boto = Command::new("python3")
        .args(["-c", "import boto3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !on_path || !boto {
        assert!(
            !required,
            "PODPLANE_REQUIRE_MOTO=1 but moto_server/boto3 are missing"
        );
        eprintln!("SKIP: moto_server or boto3 missing (pip install 'moto[server]' boto3)");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto_server did not start"
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
            ("AWS_ENDPOINT_URL", self.url.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Runs boto3 code with `s3` and `arg` bound; returns what it assigns to `result`.
    fn py(&self, code: &str, arg: &Value) -> Value {
        let script = format!(
            "import boto3, json, sys\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1')\n\
             arg = json.loads(sys.argv[1])\nresult = None\n{code}\nprint(json.dumps(result))\n",
            self.url
        );
        let out = Command::new("python3")
            .args(["-c", &script, &arg.to_string()])
            .envs(self.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn versions(&self, bucket: &str, key: &str) -> usize {
        self.py(
            "r = s3.list_object_versions(Bucket=arg['b'], Prefix=arg['k'])\n\
             result = len([v for v in r.get('Versions', []) if v['Key'] == arg['k']])",
            &json!({"b": bucket, "k": key}),
        )
        .as_u64()
        .unwrap() as usize
    }
}

#[test]
fn upload_is_create_only_against_real_s3() {
    let Some(moto) = moto() else { return };
    let seed = seed_fixture::bytes(5);
    let mirror = deps_server(&seed);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &seeded(&seed));
    let cache = tempfile::tempdir().unwrap();
    let deps = Deps {
        base_url: mirror.base_url(),
        dir: cache.path().to_path_buf(),
    };
    let bucket = "c1-123456789012-netsy";
    moto.py(
        "s3.create_bucket(Bucket=arg['b'])\n\
         s3.put_bucket_versioning(Bucket=arg['b'], VersioningConfiguration={'Status': 'Enabled'})\n\
         s3.put_object(Bucket=arg['b'], Key='other/members.json', Body=b'{}')",
        &json!({"b": bucket}),
    );
    let env = EnvSource::Vars(moto.env());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = |prefix: &str| {
        let opts = SeedOptions {
            config: cfg.clone(),
            prefix: prefix.into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        let r = rt.block_on(command::run(&opts, &deps, &env, &mut out));
        r.map(|()| String::from_utf8(out).unwrap())
            .map_err(|e| e.to_string())
    };
    // First seed writes.
    let out = run("c1").unwrap();
    assert!(
        out.contains("Uploaded s3://c1-123456789012-netsy/c1/bootstrap.netsy"),
        "{out}"
    );
    let got = moto.py(
        "result = list(s3.get_object(Bucket=arg['b'], Key='c1/bootstrap.netsy')['Body'].read())",
        &json!({"b": bucket}),
    );
    let got: Vec<u8> = serde_json::from_value(got).unwrap();
    by_key(&got);
    // The same bytes again: success without a write.
    let out = run("c1").unwrap();
    assert!(
        out.contains("already holds this bootstrap snapshot"),
        "{out}"
    );
    assert_eq!(moto.versions(bucket, "c1/bootstrap.netsy"), 1);
    // A prefix with other state: refused.
    let e = run("other").unwrap_err();
    assert!(
        e.contains("s3://c1-123456789012-netsy/other already contains"),
        "{e}"
    );
    assert_eq!(moto.versions(bucket, "other/bootstrap.netsy"), 0);
    // A different bootstrap.netsy already there: refused, not overwritten.
    moto.py(
        "s3.put_object(Bucket=arg['b'], Key='d/bootstrap.netsy', Body=b'not this')",
        &json!({"b": bucket}),
    );
    let e = run("d").unwrap_err();
    assert!(e.contains("refusing to overwrite Netsy state"), "{e}");
    assert_eq!(moto.versions(bucket, "d/bootstrap.netsy"), 1);
    // The S3 client's create-only PUT itself: moto answers 412, which is AlreadyExists.
    let client =
        podplane::aws::Client::new(podplane::aws::Config::from_env("us-east-1", &env).unwrap())
            .unwrap();
    let outcome = rt
        .block_on(client.put_object_if_none_match(bucket, "d/bootstrap.netsy", b"x".to_vec()))
        .unwrap();
    assert_eq!(outcome, podplane::aws::s3::PutOutcome::AlreadyExists);
    let keys = rt.block_on(client.list_objects(bucket, "", 10)).unwrap();
    assert_eq!(
        keys,
        [
            "c1/bootstrap.netsy",
            "d/bootstrap.netsy",
            "other/members.json"
        ]
    );
}

/// The seed cache fixture `cluster create`'s tests read (`tests/fixtures/deps/seeds`): the
/// fixture seed pinned by `tests/fixtures/golden/podplane.cluster.jsonc`. Regenerate with
/// PODPLANE_WRITE_FIXTURES=1.
#[test]
fn the_fixture_seed_cache_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deps/seeds");
    let file = root.join("snapshots/recommended/1.0.0-1/recommended.netsy");
    let seed = seed_fixture::bytes(3);
    let manifest = json!({"seeds": {"version": "1.0.0-1", "components": "1.0.0", "snapshots": {
        "recommended": {"url": "https://deps.podplane.dev/seeds/v1.0.0-1/recommended.netsy",
            "digest": seed_fixture::sha512(&seed), "size": seed.len(), "cached": true}}}});
    if std::env::var("PODPLANE_WRITE_FIXTURES").as_deref() == Ok("1") {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &seed).unwrap();
        std::fs::create_dir_all(root.join("manifests")).unwrap();
        std::fs::write(
            root.join("manifests/seeds.json"),
            serde_json::to_string_pretty(&manifest).unwrap() + "\n",
        )
        .unwrap();
    }
    assert_eq!(std::fs::read(&file).unwrap(), seed);
    let cached: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifests/seeds.json")).unwrap()).unwrap();
    assert_eq!(cached, manifest);
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/podplane.cluster.jsonc"),
    )
    .unwrap();
    assert!(
        golden.contains(&seed_fixture::sha512(&seed)),
        "the golden config pins another digest"
    );
}

/// `cluster create` checks that the pinned seed version and digest are in the cache, naming
/// both digests when they differ (and writing nothing).
#[test]
fn create_checks_the_pinned_seed() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let golden = std::fs::read_to_string(fixtures.join("golden/podplane.cluster.jsonc")).unwrap();
    let seed = seed_fixture::bytes(3);
    let wrong = format!("sha512:{}", "cd".repeat(64));
    let cfg = dir.path().join("podplane.cluster.jsonc");
    std::fs::write(&cfg, golden.replace(&seed_fixture::sha512(&seed), &wrong)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["cluster", "create", "--no-apply", "-f"])
        .arg(&cfg)
        .env("PODPLANE_DEPS_CACHE_DIR", fixtures.join("deps"))
        .env("PODPLANE_DEPS_URL", "http://127.0.0.1:9")
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("failed to prepare seed snapshot \"recommended\"")
            && err.contains(&wrong)
            && err.contains(&seed_fixture::sha512(&seed)),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config")
        .collect();
    assert_eq!(names, ["podplane.cluster.jsonc"], "nothing generated");
}

/// Odd shapes in a seed's records are errors naming the file and record, never a panic.
#[test]
fn hostile_record_shapes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &config(json!({"kubernetes": {"service_cidr": ["10.200.0.0/16"]}})),
    );
    let cfg = podplane::config::load(&path).unwrap();
    let cases: [(&str, Value, &str); 4] = [
        (
            "/registry/servicecidrs/kubernetes",
            json!({"kind": "ServiceCIDR", "spec": "x"}),
            "spec.cidrs has no IPv4 network",
        ),
        (
            "/registry/servicecidrs/kubernetes",
            json!({"kind": "Service"}),
            "expected kind ServiceCIDR",
        ),
        (
            "/registry/helm.toolkit.fluxcd.io/helmreleases/platform-coredns/coredns",
            json!({"kind": "HelmRelease", "spec": {"values": {"coredns": 7}}}),
            "spec.values.coredns is not an object",
        ),
        (
            "/registry/services/specs/platform-traefik/traefik",
            json!({"kind": "Service", "spec": {"clusterIP": "192.168.0.1"}}),
            "outside the seed's service network",
        ),
    ];
    for (key, value, want) in cases {
        let mut recs = seed_fixture::records(0);
        for r in recs.iter_mut() {
            if r.key == key.as_bytes() {
                r.value = serde_json::to_vec(&value).unwrap();
            }
        }
        let seed = dir.path().join("hostile.netsy");
        std::fs::write(&seed, netsy::encode("seed", None, &recs)).unwrap();
        let e = command::build(&cfg, &seed, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hostile.netsy") && e.contains(key) && e.contains(want),
            "{key}: {e}"
        );
    }
}
