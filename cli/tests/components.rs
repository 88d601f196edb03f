//! `podplane components`, `install` and `uninstall` against the testkit's STAND-IN Kubernetes
//! API server (`podplane_testkit::kubeapi`: loopback HTTP, discovery, GET/LIST/WATCH and
//! merge-PATCH for Secrets and HelmReleases; no Kubernetes runs on these machines). The tests
//! play Flux: after the patch they put the child HelmReleases, not Ready and then Ready. Real
//! `kubectl` is a second client of the same stand-in: the object it shows must carry the patch.
//!
//! The Helm release record is built the way Helm stores it (a Secret
//! `sh.helm.release.v1.platform-components.v<N>`, data.release = base64 of gzip of the release
//! JSON) from a fixture of the platform-components chart's default values.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use podplane::components::release::encode_record;
use podplane_testkit::kubeapi::{HELM_GV, KubeApi};
use serde_json::{Value, json};

const NS: &str = "platform-components";

fn chart_values() -> Value {
    serde_json::from_str(include_str!("fixtures/components/chart-values.json")).unwrap()
}

fn helmrelease(ns: &str, name: &str, ready: Option<(&str, &str)>) -> Value {
    let mut o = json!({"apiVersion": HELM_GV, "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns}, "spec": {"interval": "10m"}});
    if let Some((status, message)) = ready {
        o["status"] = json!({"conditions": [{"type": "Ready", "status": status,
            "reason": "Stand-in", "message": message}]});
    }
    o
}

fn record_secret(version: u64, config: &Value) -> Value {
    let release = json!({"name": NS, "namespace": NS, "version": version,
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": NS, "version": "0.1.0"}, "values": chart_values()},
        "config": config});
    let data = base64::engine::general_purpose::STANDARD.encode(encode_record(&release));
    json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{NS}.v{version}"), "namespace": NS,
            "labels": {"owner": "helm", "name": NS, "status": "deployed", "version": version.to_string()}},
        "data": {"release": data}})
}

struct Cluster {
    api: KubeApi,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A seeded cluster: the release's own values are `config` over the chart defaults; every
    /// enabled component has a Ready HelmRelease.
    fn seeded(config: Value) -> Cluster {
        let c = Cluster::bare();
        // An older revision with other values: the newest one must win.
        c.api.put(
            "secrets",
            record_secret(
                1,
                &json!({"platform": {"components": {"apps": {"traefik": {"enabled": true}}}}}),
            ),
        );
        c.api.put("secrets", record_secret(2, &config));
        c.api.put(
            "helmreleases",
            helmrelease(NS, NS, Some(("True", "Helm install succeeded"))),
        );
        let cat = podplane::components::catalogue::Catalogue::from_values(&{
            let mut v = chart_values();
            merge(&mut v, &config);
            v
        })
        .unwrap();
        for comp in cat.components.values().filter(|c| c.enabled) {
            c.api.put(
                "helmreleases",
                helmrelease(
                    comp.release_namespace(),
                    &comp.name,
                    Some(("True", "Helm install succeeded")),
                ),
            );
        }
        c
    }

    fn bare() -> Cluster {
        let api = KubeApi::start();
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster { api, dir };
        c.write_kubeconfig("user:\n    token: t0");
        c
    }

    fn write_kubeconfig(&self, user: &str) {
        let kc = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: standin\nclusters:\n- name: standin\n  cluster:\n    server: {}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: u\nusers:\n- name: u\n  {user}\n",
            self.api.url()
        );
        std::fs::write(self.kubeconfig(), kc).unwrap();
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn podplane(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    fn control_values(&self) -> Value {
        self.api.get("helmreleases", NS, NS).unwrap()["spec"]["values"].clone()
    }

    fn patches(&self) -> usize {
        self.api
            .seen()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count()
    }

    /// Plays Flux after the first PATCH: each of `releases` appears not Ready, reports
    /// progress, then becomes Ready (unless listed in `stuck`).
    fn flux(&self, releases: &[(&str, &str)], stuck: &[&str]) -> thread::JoinHandle<()> {
        let api = self.api.clone_handle();
        let releases: Vec<(String, String)> = releases
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let stuck: Vec<String> = stuck.iter().map(|s| s.to_string()).collect();
        thread::spawn(move || {
            assert!(api.wait_for("PATCH", Duration::from_secs(20)));
            for (ns, n) in &releases {
                api.put("helmreleases", helmrelease(ns, n, None));
                thread::sleep(Duration::from_millis(50));
                api.put(
                    "helmreleases",
                    helmrelease(ns, n, Some(("Unknown", "Reconciliation in progress"))),
                );
            }
            thread::sleep(Duration::from_millis(100));
            for (ns, n) in &releases {
                let r = if stuck.contains(n) {
                    (
                        "False",
                        "install retries exhausted: context deadline exceeded",
                    )
                } else {
                    ("True", "Helm install succeeded")
                };
                api.put("helmreleases", helmrelease(ns, n, Some(r)));
                thread::sleep(Duration::from_millis(50));
            }
        })
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[track_caller]
fn fails(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stderr)
}

#[test]
fn components_table_and_json() {
    let c = Cluster::seeded(json!({}));
    let out = ok(&c.podplane(&["components", "-o", "json"], ""));
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let row = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(row("cilium")["enabled"], true);
    assert_eq!(row("cilium")["ready"], true);
    assert_eq!(row("cilium")["dependsOn"], json!(["cilium-crds"]));
    assert_eq!(
        row("cilium-crds")["release"],
        "platform-cluster/cilium-crds"
    );
    // The older revision enabled traefik; the newest one does not.
    assert_eq!(row("traefik")["enabled"], false);
    assert_eq!(row("traefik")["status"], Value::Null);
    let table = ok(&c.podplane(&["components"], ""));
    assert!(table.starts_with("NAME "), "{table}");
    let line = table.lines().find(|l| l.starts_with("coredns ")).unwrap();
    for w in ["app", "yes", "platform-coredns", "cilium", "ready"] {
        assert!(line.contains(w), "{line}");
    }
}

#[test]
fn install_enables_the_transitive_set_and_waits_for_ready() {
    let c = Cluster::seeded(json!({}));
    let set = [
        ("platform-cert-manager", "cert-manager"),
        ("platform-cluster", "cert-manager-crds"),
        ("platform-certs", "platform-certs"),
        ("platform-traefik", "traefik"),
        ("platform-cluster", "traefik-crds"),
    ];
    let flux = c.flux(&set, &[]);
    let out = ok(&c.podplane(&["install", "traefik", "-y", "--timeout", "30s"], ""));
    flux.join().unwrap();
    assert!(out.contains("Installing \"traefik\" will also enable the following dependencies:\n  cert-manager, cert-manager-crds, platform-certs, traefik-crds\n"), "{out}");
    assert!(
        out.contains("platform-traefik/traefik: not ready: Reconciliation in progress"),
        "{out}"
    );
    assert!(
        out.contains(
            "✓ Installed \"traefik\".\n   Watch progress with: kubectl -n platform-traefik get all"
        ),
        "{out}"
    );
    assert_eq!(
        c.control_values(),
        json!({"platform": {"components": {
            "apps": {"cert-manager": {"enabled": true}, "platform-certs": {"enabled": true}, "traefik": {"enabled": true}},
            "crds": {"cert-manager-crds": {"enabled": true}, "traefik-crds": {"enabled": true}}}}})
    );
    assert_eq!(c.patches(), 1);
    // Every request carried the kubeconfig's token.
    assert!(
        c.api
            .seen()
            .iter()
            .all(|s| s.token.as_deref() == Some("t0"))
    );
    kubectl_sees_the_patch(&c);
}

/// Real kubectl, a second client of the stand-in, shows the patched object.
fn kubectl_sees_the_patch(c: &Cluster) {
    let has = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var("PODPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "kubectl is needed (PODPLANE_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIP: kubectl check (no kubectl)");
        return;
    }
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args(["get", "helmrelease", NS, "-n", NS, "-o", "json"])
        .env("HOME", c.dir.path())
        .output()
        .unwrap();
    let obj: Value = serde_json::from_slice(&ok(&out).into_bytes()).unwrap();
    assert_eq!(obj["kind"], "HelmRelease");
    assert_eq!(
        obj["spec"]["values"]["platform"]["components"]["apps"]["traefik"]["enabled"],
        true
    );
    assert_eq!(
        obj["spec"]["interval"], "10m",
        "the merge kept the rest of the spec"
    );
}

#[test]
fn install_asks_and_no_means_no_patch() {
    let c = Cluster::seeded(json!({}));
    let o = c.podplane(&["install", "platform-certs"], "n\n");
    let err = fails(&o);
    assert!(err.contains("install cancelled"), "{err}");
    assert!(
        text(&o.stdout).contains("Continue? [y/N]"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(c.patches(), 0);
}

#[test]
fn already_installed_is_success_without_a_patch() {
    let c = Cluster::seeded(
        json!({"platform": {"components": {"apps": {"cert-manager": {"enabled": true}}, "crds": {"cert-manager-crds": {"enabled": true}}}}}),
    );
    let out = ok(&c.podplane(&["install", "cert-manager"], ""));
    assert_eq!(out, "Component \"cert-manager\" is already installed.\n");
    assert_eq!(c.patches(), 0);
}

#[test]
fn unknown_name_and_unknown_dependency() {
    let c = Cluster::seeded(json!({"platform": {"components": {"apps": {
        "broken": {"enabled": false, "namespace": "x", "dependsOn": ["cert-manager", "ghost"]}}}}}));
    let err = fails(&c.podplane(&["install", "trafik"], ""));
    assert!(err.contains("unknown component \"trafik\": the platform-components HelmRelease does not define a component with that name; did you mean traefik"), "{err}");
    assert!(err.contains("context \"standin\""), "{err}");
    let err = fails(&c.podplane(&["install", "broken"], ""));
    assert!(
        err.contains("component \"broken\" has an unknown dependency: \"ghost\""),
        "{err}"
    );
    let err = fails(&c.podplane(&["uninstall", "trafik", "-y"], ""));
    assert!(err.contains("did you mean traefik"), "{err}");
    assert_eq!(c.patches(), 0);
}

#[test]
fn uninstall_refusals_and_success() {
    let c = Cluster::seeded(json!({"platform": {"components": {
        "apps": {"cert-manager": {"enabled": true}, "platform-certs": {"enabled": true}},
        "crds": {"cert-manager-crds": {"enabled": true}}}}}));
    let err = fails(&c.podplane(&["uninstall", "cert-manager-crds", "-y"], ""));
    assert!(
        err.contains("is a CRD chart; CRDs are not uninstalled"),
        "{err}"
    );
    let err = fails(&c.podplane(&["uninstall", "cilium", "-y"], ""));
    assert!(
        err.contains("component \"cilium\" is a core component and cannot be uninstalled"),
        "{err}"
    );
    let err = fails(&c.podplane(&["uninstall", "cert-manager", "-y"], ""));
    assert!(err.contains("cannot uninstall \"cert-manager\" because it is required by: platform-certs. Uninstall those first"), "{err}");
    let out = ok(&c.podplane(&["uninstall", "traefik", "-y"], ""));
    assert_eq!(out, "Component \"traefik\" is not installed.\n");
    assert_eq!(c.patches(), 0);
    let err = fails(&c.podplane(&["uninstall", "platform-certs"], "no\n"));
    assert!(err.contains("uninstall cancelled"), "{err}");
    assert_eq!(c.patches(), 0);
    let out = ok(&c.podplane(&["uninstall", "platform-certs"], "y\n"));
    assert!(out.contains("✓ Patched platform-components to uninstall \"platform-certs\". Flux CD is removing the component."), "{out}");
    assert_eq!(
        c.control_values(),
        json!({"platform": {"components": {"apps": {"platform-certs": {"enabled": false}}}}})
    );
}

#[test]
fn timeout_names_the_releases_not_ready_and_their_message() {
    let c = Cluster::seeded(json!({}));
    let flux = c.flux(
        &[
            ("platform-cert-manager", "cert-manager"),
            ("platform-cluster", "cert-manager-crds"),
        ],
        &["cert-manager"],
    );
    let err = fails(&c.podplane(&["install", "cert-manager", "-y", "--timeout", "3s"], ""));
    flux.join().unwrap();
    assert!(err.contains("timed out after 3s waiting for HelmReleases to be Ready: platform-cert-manager/cert-manager (not ready: install retries exhausted: context deadline exceeded)"), "{err}");
    assert!(!err.contains("cert-manager-crds"), "{err}");
}

#[test]
fn api_server_going_away_mid_wait() {
    let c = Cluster::seeded(json!({}));
    let api = c.api.clone_handle();
    let stopper = thread::spawn(move || {
        assert!(api.wait_for("PATCH", Duration::from_secs(20)));
        thread::sleep(Duration::from_millis(300));
        api.stop();
    });
    let started = std::time::Instant::now();
    let err = fails(&c.podplane(&["install", "snapshot", "-y", "--timeout", "60s"], ""));
    stopper.join().unwrap();
    assert!(err.contains("lost the API server while waiting"), "{err}");
    assert!(err.contains("the patch is applied"), "{err}");
    assert!(
        err.contains(&c.api.url().replace("http://", "")),
        "names the server: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up in time"
    );
}

#[test]
fn bare_cluster_explains() {
    let c = Cluster::bare();
    let err = fails(&c.podplane(&["components"], ""));
    assert!(err.contains("platform-components is not installed in this cluster; this looks like a bare Podplane cluster."), "{err}");
}

#[test]
fn rbac_denied_and_expired_login() {
    let c = Cluster::seeded(json!({}));
    c.api.forbid(&format!("/api/v1/namespaces/{NS}/secrets"));
    let err = fails(&c.podplane(&["install", "traefik", "-y"], ""));
    assert!(
        err.contains("context \"standin\": RBAC denied list the Helm release records"),
        "{err}"
    );
    assert!(err.contains("stand-in RBAC"), "{err}");
    let c = Cluster::seeded(json!({}));
    c.api.accept_tokens(&["another"]);
    let err = fails(&c.podplane(&["components"], ""));
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(
        err.contains("run `podplane login -f <podplane.cluster.jsonc>`"),
        "{err}"
    );
}

#[test]
fn unreachable_api_server() {
    let c = Cluster::seeded(json!({}));
    c.api.stop();
    let err = fails(&c.podplane(&["components"], ""));
    assert!(err.contains("cannot reach the API server"), "{err}");
}

#[test]
fn hostile_release_record_is_refused() {
    let c = Cluster::bare();
    // A gzip bomb: 40 MiB of spaces, a few dozen KiB packed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..40 {
        gz.write_all(&vec![b' '; 1 << 20]).unwrap();
    }
    let inner = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let mut s = record_secret(1, &json!({}));
    s["data"]["release"] = base64::engine::general_purpose::STANDARD
        .encode(inner)
        .into();
    c.api.put("secrets", s);
    let err = fails(&c.podplane(&["components"], ""));
    assert!(
        err.contains(
            "sh.helm.release.v1.platform-components.v1: the release record is over 32 MiB"
        ),
        "{err}"
    );
}

fn jwt(sub: &str, exp: u64) -> String {
    let b = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b(json!({"alg": "RS256", "typ": "JWT"})),
        b(json!({"sub": sub, "email": "dev@example.com", "exp": exp, "iss": "stand-in"}))
    )
}

/// The kubeconfig's user runs the real `podplane hooks kubectl-auth`; the stored ID token has
/// expired, so the hook refreshes it at the (stand-in) issuer, and the API server, which now
/// accepts only the new token, lets the command through.
#[test]
fn expired_token_is_refreshed_through_the_exec_plugin() {
    use podplane::login::{meta, store};
    let c = Cluster::seeded(json!({}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (old, new) = (jwt("dev-sub", now - 3600), jwt("dev-sub", now + 3600));
    let issuer = format!("{}/issuer", c.api.url());
    c.api.fixed(
        "/issuer/.well-known/openid-configuration",
        json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/auth"),
               "token_endpoint": format!("{issuer}/token")}),
    );
    c.api.fixed(
        "/issuer/token",
        json!({"id_token": new, "refresh_token": "r2", "access_token": "a", "token_type": "Bearer"}),
    );
    c.api.accept_tokens(&[&new]);
    let config_dir = c.dir.path().join(".config/podplane");
    std::fs::create_dir_all(&config_dir).unwrap();
    let key = store::entry_key("dev-sub", "standin");
    meta::update(&config_dir, |m| {
        m.insert(
            key.clone(),
            meta::AuthRecord {
                sub: "dev-sub".into(),
                cluster_id: "standin".into(),
                cluster_name: "standin".into(),
                issuer: issuer.clone(),
                client_id: "standin".into(),
                user_email: String::new(),
                issuer_ca_pem: String::new(),
                callback_port: 8000,
                headless: true,
                registry_host: String::new(),
                store: store::Backend::File,
            },
        )
    })
    .unwrap();
    store::FileStore::open(&config_dir, Some("test-pass"))
        .unwrap()
        .set(
            &key,
            &store::Tokens {
                id_token: old.clone(),
                refresh_token: "r1".into(),
            },
        )
        .unwrap();
    c.write_kubeconfig(&format!(
        "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      args: [hooks, kubectl-auth, --cluster, standin, --user, dev-sub]\n      env:\n      - name: PODPLANE_KEYRING_PASS\n        value: test-pass\n      interactiveMode: Never",
        env!("CARGO_BIN_EXE_podplane")
    ));
    let out = ok(&c.podplane(&["components", "-o", "json"], ""));
    assert!(out.contains("\"cilium\""), "{out}");
    let seen = c.api.seen();
    assert_eq!(
        seen.iter().filter(|s| s.target == "/issuer/token").count(),
        1
    );
    let token_req = seen.iter().find(|s| s.target == "/issuer/token").unwrap();
    assert!(
        text(&token_req.body).contains("refresh_token=r1"),
        "{}",
        text(&token_req.body)
    );
    assert!(
        seen.iter()
            .filter(|s| s.target.starts_with("/api"))
            .all(|s| s.token.as_deref() == Some(new.as_str()))
    );
    let stored = store::FileStore::open(&config_dir, Some("test-pass"))
        .unwrap()
        .get(&key)
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.id_token, stored.refresh_token),
        (new, "r2".to_string())
    );
}

#[test]
fn oversized_list_is_refused() {
    let c = Cluster::seeded(json!({}));
    let mut big = helmrelease("platform-x", "big", None);
    big["spec"]["padding"] = "x".repeat(17 << 20).into();
    c.api.put("helmreleases", big);
    let err = fails(&c.podplane(&["components"], ""));
    assert!(
        err.contains("list HelmReleases in all namespaces: the response is over 16 MiB"),
        "{err}"
    );
}

#[test]
fn unknown_context_lists_the_known_ones() {
    let c = Cluster::seeded(json!({}));
    let err = fails(&c.podplane(&["components", "--context", "nope"], ""));
    assert!(
        err.contains("has no context \"nope\" (it has: standin); pass one of those to --context"),
        "{err}"
    );
    assert!(c.api.seen().is_empty(), "nothing was sent");
}

/// No login stored for the kubeconfig's user: the real hook fails, and the error says to log in.
#[test]
fn credential_plugin_failure_says_to_log_in() {
    let c = Cluster::seeded(json!({}));
    c.write_kubeconfig(&format!(
        "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      args: [hooks, kubectl-auth, --cluster, standin, --user, nobody]\n      interactiveMode: Never",
        env!("CARGO_BIN_EXE_podplane")
    ));
    let err = fails(&c.podplane(&["install", "traefik", "-y"], ""));
    assert!(
        err.contains(
            "context \"standin\": getting a token with the kubeconfig's credential plugin failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("run `podplane login -f <podplane.cluster.jsonc>`"),
        "{err}"
    );
    assert!(c.api.seen().is_empty(), "no request without a token");
}

#[test]
fn a_stalled_api_server_times_out() {
    let c = Cluster::seeded(json!({}));
    c.api.stall("/api/v1/namespaces");
    let started = std::time::Instant::now();
    let err = fails(&c.podplane(&["components", "--request-timeout", "2s"], ""));
    assert!(
        err.contains("no complete answer from the API server within 2s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// The server ends the watch with 410 Gone mid-wait: the command lists again and carries on.
#[test]
fn an_expired_watch_is_listed_again() {
    let c = Cluster::seeded(json!({}));
    let api = c.api.clone_handle();
    let flux = thread::spawn(move || {
        assert!(api.wait_for("PATCH", Duration::from_secs(20)));
        thread::sleep(Duration::from_millis(300));
        api.expire_watches("helmreleases");
        thread::sleep(Duration::from_millis(300));
        api.put(
            "helmreleases",
            helmrelease("platform-cluster", "snapshot-crds", Some(("True", "ok"))),
        );
        api.put(
            "helmreleases",
            helmrelease("platform-snapshot", "snapshot", Some(("True", "ok"))),
        );
    });
    let out = ok(&c.podplane(&["install", "snapshot", "-y", "--timeout", "20s"], ""));
    flux.join().unwrap();
    assert!(out.contains("✓ Installed \"snapshot\"."), "{out}");
    let lists = c
        .api
        .seen()
        .iter()
        .filter(|s| {
            s.target
                .starts_with(&format!("/apis/{HELM_GV}/helmreleases"))
                && !s.target.contains("watch")
        })
        .count();
    assert!(lists >= 2, "listed again after the 410: {lists}");
}
