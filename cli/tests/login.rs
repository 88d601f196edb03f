//! `podplane login`, `logout` and the hooks against a real OpenID Connect provider (the npm
//! package oidc-provider, started here on loopback HTTPS with a private CA and short token
//! lifetimes) and a real `kubectl` using the written kubeconfig against a stand-in API server
//! (`/readyz`, 200 only for a current ID token of that provider; in the same node script).
//!
//! Needs node, the oidc-provider package (`tests/run-all` installs it under
//! /var/cache/podplane-tests/oidc-provider, or PODPLANE_OIDC_PROVIDER_DIR), openssl, curl and
//! kubectl; a SKIP line is printed when one is missing, a failure when
//! `PODPLANE_REQUIRE_TOOLS=1`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USER: &str = "dev.user@example.com";

fn required() -> bool {
    std::env::var("PODPLANE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// The node_modules with oidc-provider, or None (SKIP) when this machine lacks a tool.
fn tools() -> Option<PathBuf> {
    let dir = std::env::var("PODPLANE_OIDC_PROVIDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/var/cache/podplane-tests/oidc-provider"))
        .join("node_modules");
    let mut missing = Vec::new();
    if !dir.join("oidc-provider/package.json").exists() {
        missing.push(format!("oidc-provider (in {})", dir.display()));
    }
    for (tool, arg) in [
        ("node", "--version"),
        ("openssl", "version"),
        ("curl", "--version"),
        ("kubectl", "version"),
    ] {
        let ok = Command::new(tool)
            .arg(arg)
            .args(if tool == "kubectl" {
                &["--client"][..]
            } else {
                &[][..]
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return Some(dir);
    }
    assert!(
        !required(),
        "login tests need {} (PODPLANE_REQUIRE_TOOLS=1)",
        missing.join(", ")
    );
    eprintln!("SKIP: login tests need {}", missing.join(", "));
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A private CA and a server certificate for 127.0.0.1 and localhost, by openssl.
fn pki(dir: &Path) {
    let o = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(dir));
    };
    o(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=podplane login test CA",
    ]);
    o(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    o(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// One test's world: a HOME with its config dir and kubeconfig, the PKI, the ports.
struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    modules: PathBuf,
    port: u16,
    api_port: u16,
    callback_port: u16,
}

struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl World {
    fn new(modules: PathBuf) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        pki(&dir);
        std::fs::create_dir_all(dir.join("home/.kube")).unwrap();
        World {
            _tmp: tmp,
            dir,
            modules,
            port: free_port(),
            api_port: free_port(),
            callback_port: free_port(),
        }
    }

    fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("home/.kube/config")
    }

    fn api_log(&self) -> Vec<(u16, String)> {
        std::fs::read_to_string(self.dir.join("api.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (s, t) = l.split_once(' ').unwrap();
                (s.parse().unwrap(), t.to_string())
            })
            .collect()
    }

    /// Starts the provider and the stand-in API server; `extra` overrides the defaults.
    fn provider(&self, id_ttl: u64, extra: Value) -> Provider {
        let mut cfg = json!({
            "dir": self.modules,
            "port": self.port,
            "api_port": self.api_port,
            "cert": self.dir.join("server.pem"),
            "key": self.dir.join("server.key"),
            "client_id": "c1",
            "redirect_uris": [format!("http://localhost:{}/callback", self.callback_port)],
            "id_ttl": id_ttl,
            "api_log": self.dir.join("api.log"),
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/login/oidc.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("TEST_OIDC", cfg.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let provider = Provider(child);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the oidc-provider script did not start");
        assert_eq!(line, "ready");
        provider
    }

    /// The cluster config: the provider's issuer and CA, the stand-in API server.
    fn cluster_config(&self, oidc_ca: bool) -> PathBuf {
        let ca = if oidc_ca {
            format!(
                ", \"ca_cert\": {:?}",
                self.dir.join("ca.pem").display().to_string()
            )
        } else {
            String::new()
        };
        let text = format!(
            r#"{{ "cluster": {{
                "id": "c1",
                "oidc": {{ "issuer_url": "{}"{ca} }},
                "registry": {{ "hostname": "registry.c1.example" }},
                "kubernetes": {{ "api_hostname": "127.0.0.1", "api_port": {} }}
            }} }}"#,
            self.issuer(),
            self.api_port
        );
        let path = self.dir.join("podplane.cluster.jsonc");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(&self, cmd: &mut Command) {
        let home = self.dir.join("home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("KUBECONFIG", self.kubeconfig())
            .current_dir(&self.dir);
    }

    fn podplane(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podplane"));
        cmd.args(args);
        self.env(&mut cmd);
        cmd
    }

    fn kubectl_readyz(&self) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(["--context", "c1", "get", "--raw", "/readyz"]);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }

    fn login_args(&self, cfg: &Path) -> Vec<String> {
        vec![
            "login".into(),
            "-f".into(),
            cfg.display().to_string(),
            "--callback-port".into(),
            self.callback_port.to_string(),
            "--ca-cert".into(),
            self.dir.join("ca.pem").display().to_string(),
        ]
    }

    /// Starts a browser-flow login and returns it with the authorization URL it printed.
    fn start_browser_login(&self, cfg: &Path) -> (Child, String) {
        let args = self.login_args(cfg);
        let mut child = self
            .podplane(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            assert!(Instant::now() < deadline, "no authorization URL printed");
            let line = lines
                .next()
                .expect("login ended before printing a URL")
                .unwrap();
            if let Some(u) = line.trim().strip_prefix("https://") {
                break format!("https://{u}");
            }
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            for l in lines.map_while(Result::ok) {
                rest.push_str(&l);
                rest.push('\n');
            }
            rest
        });
        (child, url)
    }

    /// What a browser does with the URL: follow the redirects (with cookies) to the callback.
    fn browser(&self, url: &str) -> Output {
        Command::new("curl")
            .args(["-sS", "-L", "--max-redirs", "10", "-b", "", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .arg(url)
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn token_in(credential: &[u8]) -> String {
    let v: Value = serde_json::from_slice(credential).unwrap();
    assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(v["kind"], "ExecCredential");
    assert!(
        v["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    v["status"]["token"].as_str().unwrap().to_string()
}

fn sha(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Browser flow (callback driven by an HTTP client), kubectl through the exec plugin, then a
/// refresh between two kubectl calls once the cached token is within a minute of expiry.
#[test]
fn browser_login_then_kubectl_with_a_refresh_between_calls() {
    let Some(modules) = tools() else { return };
    let w = World::new(modules);
    // 80 s: cached for the first call (even on a slow machine), within the 60 s margin
    // twenty seconds later.
    let _p = w.provider(80, json!({}));
    let cfg = w.cluster_config(true);
    std::fs::write(
        w.kubeconfig(),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other.example\ncurrent-context: ''\n",
    )
    .unwrap();
    let (login, url) = w.start_browser_login(&cfg);
    let page = w.browser(&url);
    assert!(
        text(&page.stdout).contains("You can close this tab"),
        "{} {}",
        text(&page.stdout),
        text(&page.stderr)
    );
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let first = w.kubectl_readyz();
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout), "ok");
    std::thread::sleep(Duration::from_secs(21));
    let second = w.kubectl_readyz();
    assert!(second.status.success(), "{}", text(&second.stderr));
    let log = w.api_log();
    let ok: Vec<_> = log.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(ok.len(), 2, "{log:?}");
    assert_ne!(
        ok[0].1, ok[1].1,
        "the second call must carry a refreshed token"
    );
    // The other cluster survived; the kubeconfig is private.
    let kc = std::fs::read_to_string(w.kubeconfig()).unwrap();
    assert!(
        kc.contains("https://other.example") && kc.contains("podplane-c1"),
        "{kc}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        w.kubeconfig().metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No token in config.json or the kubeconfig.
    let current =
        text(&run(&mut w.podplane(&["hooks", "kubectl-auth", "-c", "c1", "-u", USER])).stdout);
    let token = token_in(current.as_bytes());
    let config_json =
        std::fs::read_to_string(w.dir.join("home/.config/podplane/config.json")).unwrap();
    assert!(!config_json.contains(&token) && !kc.contains(&token));
    assert!(
        config_json.contains(&format!("\"{USER}:c1\"")),
        "{config_json}"
    );
}

/// `--headless`, the docker helper, a refresh the issuer rejects (it restarted and forgot its
/// grants) falling back to a full login, then logout.
#[test]
fn headless_login_rejected_refresh_relogin_docker_helper_and_logout() {
    let Some(modules) = tools() else { return };
    let w = World::new(modules);
    let p = w.provider(70, json!({}));
    let cfg = w.cluster_config(true);
    let mut args = w.login_args(&cfg);
    args.push("--headless".into());
    let out = run(&mut w.podplane(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("Logged in to cluster \"c1\" as {USER}")),
        "{stdout}"
    );
    assert!(stdout.contains("Configured Docker credential helper for registry.c1.example"));
    // No session bus here (the environment is cleared): one line says so, the tokens are in
    // the encrypted file store and the login record says where they are.
    let fallback: Vec<_> = stdout
        .lines()
        .filter(|l| l.starts_with("No OS keyring available"))
        .collect();
    assert_eq!(fallback.len(), 1, "{stdout}");
    assert!(fallback[0].contains("no D-Bus session bus"), "{stdout}");
    let keyring = w.dir.join("home/.config/podplane/keyring");
    let token_files = std::fs::read_dir(&keyring)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    assert_eq!(token_files, 1);
    assert!(keyring.join("key").exists());
    let config_json: Value = serde_json::from_slice(
        &std::fs::read(w.dir.join("home/.config/podplane/config.json")).unwrap(),
    )
    .unwrap();
    assert!(
        config_json["auth"][format!("{USER}:c1")]
            .get("store")
            .is_none()
    );
    let docker: Value =
        serde_json::from_slice(&std::fs::read(w.dir.join("home/.docker/config.json")).unwrap())
            .unwrap();
    assert_eq!(docker["credHelpers"]["registry.c1.example"], "podplane");

    // The helper under its docker name.
    let helper = w.dir.join("docker-credential-podplane");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_podplane"), &helper).unwrap();
    let mut get = Command::new(&helper);
    get.arg("get");
    w.env(&mut get);
    let mut child = get
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"https://registry.c1.example/\n")
        .unwrap();
    let got = child.wait_with_output().unwrap();
    assert!(got.status.success());
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["ServerURL"], "registry.c1.example");
    let first_token = got["Secret"].as_str().unwrap().to_string();

    // The provider restarts: its grants and keys are gone, the refresh token is refused.
    drop(p);
    let _p = w.provider(70, json!({}));
    std::thread::sleep(Duration::from_secs(11));
    let hook = run(&mut w.podplane(&["hooks", "kubectl-auth", "--cluster", "c1", "--user", USER]));
    assert!(
        text(&hook.stderr).contains("token refresh failed"),
        "{}",
        text(&hook.stderr)
    );
    let second_token = token_in(&hook.stdout);
    assert_ne!(second_token, first_token);
    let ready = w.kubectl_readyz();
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    assert_eq!(w.api_log().last().unwrap(), &(200, sha(&second_token)));

    let out = run(&mut w.podplane(&["logout", "-y", "--context", "c1"]));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("Cleared credentials for {USER} on cluster c1")),
        "{stdout}"
    );
    let kc = std::fs::read_to_string(w.kubeconfig()).unwrap();
    assert!(
        !kc.contains("podplane-c1") && !kc.contains("kubectl-auth"),
        "{kc}"
    );
    let hook = w
        .podplane(&["hooks", "kubectl-auth", "--cluster", "c1", "--user", USER])
        .output()
        .unwrap();
    assert!(!hook.status.success());
    let err = text(&hook.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("Error: no login for"), "{err}");
    assert!(hook.stdout.is_empty());
}

fn login_fails(w: &World, cfg: &Path, headless: bool) -> String {
    let mut args = w.login_args(cfg);
    if headless {
        args.push("--headless".into());
    }
    let out = w
        .podplane(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn callback_with_a_wrong_state_or_an_error_fails_the_login() {
    let Some(modules) = tools() else { return };
    let w = World::new(modules);
    let cfg = w.cluster_config(true);
    {
        let _p = w.provider(300, json!({}));
        let (login, _url) = w.start_browser_login(&cfg);
        let page = Command::new("curl")
            .args([
                "-sS",
                &format!(
                    "http://localhost:{}/callback?code=x&state=forged",
                    w.callback_port
                ),
            ])
            .output()
            .unwrap();
        assert!(
            text(&page.stdout).contains("state mismatch"),
            "{}",
            text(&page.stdout)
        );
        let out = login.wait_with_output().unwrap();
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("authorize state mismatch"),
            "{}",
            text(&out.stderr)
        );
    }
    let _p = w.provider(300, json!({"deny": true}));
    let (login, url) = w.start_browser_login(&cfg);
    w.browser(&url);
    let out = login.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("authorize error: access_denied: the test provider said no"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.kubeconfig().exists());
}

#[test]
fn token_response_without_id_token_and_an_untrusted_issuer() {
    let Some(modules) = tools() else { return };
    let w = World::new(modules);
    let _p = w.provider(300, json!({"strip_id_token": true}));
    let err = login_fails(&w, &w.cluster_config(true), true);
    assert!(err.contains("returned no id_token (fields: "), "{err}");
    assert!(err.contains("access_token"), "{err}");
    // Without oidc.ca_cert the private CA is not trusted.
    let err = login_fails(&w, &w.cluster_config(false), true);
    assert!(err.contains("discovery https://127.0.0.1:"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn issuer_down_and_discovery_without_endpoints() {
    let Some(modules) = tools() else { return };
    let w = World::new(modules);
    // Nothing listens on the issuer's port.
    let err = login_fails(&w, &w.cluster_config(true), true);
    assert!(
        err.contains(&format!(
            "discovery {}/.well-known/openid-configuration",
            w.issuer()
        )),
        "{err}"
    );
    // A discovery document without endpoints.
    let mirror = podplane_testkit::Mirror::start();
    mirror.add(
        "/.well-known/openid-configuration",
        br#"{"issuer":"x"}"#.to_vec(),
    );
    let cfg = w.cluster_config(true);
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&w.issuer(), &mirror.base_url());
    std::fs::write(&cfg, text_cfg).unwrap();
    let err = login_fails(&w, &cfg, true);
    assert!(
        err.contains("no authorization_endpoint; check oidc.issuer_url"),
        "{err}"
    );
}

/// `logout --cluster` names the cluster-id rule for an id that cannot be one, before asking.
#[test]
fn logout_rejects_a_cluster_id_that_breaks_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    for (id, why) in [
        ("Prod", "lowercase"),
        ("a--b", "consecutive hyphens"),
        ("oidc", "reserved"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_podplane"))
            .args(["logout", "-y", "--cluster", id])
            .env_clear()
            .env("HOME", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join(".config"))
            .env("KUBECONFIG", tmp.path().join("kubeconfig"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{id}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("--cluster {id:?}")), "{err}");
        assert!(
            err.contains(why) && err.contains("cluster.id rule"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_podplane"))
        .args(["logout", "-y", "--cluster", "prod-1"])
        .env_clear()
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join(".config"))
        .env("KUBECONFIG", tmp.path().join("kubeconfig"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("No cached credentials for cluster \"prod-1\""));
}
