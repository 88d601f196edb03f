//! `podplane login`, `logout`, and the hooks kubectl and docker run: OpenID Connect against the
//! cluster's issuer, tokens in the OS keyring or the encrypted file store, kubeconfig entries
//! whose user runs `podplane hooks kubectl-auth`.
//!
//! Parts: [`flow`] (the OIDC client), [`store`] (tokens; [`oskeyring`] its OS keyring
//! backend), [`meta`] (the non-secret login records in `config.json`), [`kubeconfig`] (the
//! entries), [`docker`] (credential helper).

pub mod docker;
pub mod flow;
pub mod kubeconfig;
pub mod meta;
pub mod oskeyring;
pub mod store;
pub mod tokens;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use flow::{FlowError, TokenResponse};
use meta::AuthRecord;
use store::{Backend, TokenStore, Tokens};

/// A cached ID token is used while it has more than this left.
pub const MIN_VALIDITY_SECS: u64 = 60;
/// How long a browser login may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("login records in {0}")]
    Meta(#[from] meta::MetaError),
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::KubeconfigError),
    #[error("{what} {value}: {reason}")]
    Ca {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "no login for {sub:?} on cluster {cluster:?}; run `podplane login -f <podplane.cluster.jsonc>` for this cluster"
    )]
    NotLoggedIn { sub: String, cluster: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// What login needs from a cluster config.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster_id: String,
    pub cluster_name: String,
    pub issuer: String,
    /// `oidc.client_id`, else the cluster id.
    pub client_id: String,
    /// `oidc.ca_cert` as written: inline PEM, http(s) URL or file path; empty for none.
    pub issuer_ca: String,
    pub server: String,
    pub registry_host: String,
}

impl Target {
    pub fn from_config(cfg: &crate::config::ClusterConfig) -> Target {
        let c = &cfg.cluster;
        let port = if c.kubernetes.api_port > 0 {
            c.kubernetes.api_port
        } else {
            6443
        };
        Target {
            cluster_id: c.id.clone(),
            cluster_name: c.name.clone(),
            issuer: c.oidc.issuer_url.clone(),
            client_id: c.oidc_client_id().to_string(),
            issuer_ca: c.oidc.ca_cert.clone(),
            server: format!("https://{}:{port}", c.kubernetes.api_hostname),
            registry_host: c.registry.hostname.clone(),
        }
    }
}

/// Where login reads and writes.
#[derive(Debug, Clone)]
pub struct Env {
    pub config_dir: PathBuf,
    pub home: PathBuf,
    /// The kubeconfig file to write.
    pub kubeconfig: PathBuf,
    /// This binary's absolute path, for the kubeconfig's exec entry.
    pub exe: PathBuf,
    /// `PODPLANE_KEYRING_PASS`, if set.
    pub passphrase: Option<String>,
}

impl Env {
    pub fn from_process(kubeconfig: Option<PathBuf>) -> Env {
        let dirs = crate::dirs::Dirs::from_process_env();
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let kubeconfig = kubeconfig.unwrap_or_else(|| {
            kubeconfig::default_path(std::env::var("KUBECONFIG").ok().as_deref(), &home)
        });
        Env {
            config_dir: dirs.config,
            exe: std::env::current_exe()
                .ok()
                .and_then(|p| std::fs::canonicalize(&p).ok().or(Some(p)))
                .unwrap_or_else(|| PathBuf::from("podplane")),
            home,
            kubeconfig,
            passphrase: std::env::var(store::PASS_ENV)
                .ok()
                .filter(|p| !p.is_empty()),
        }
    }

    fn store(&self, backend: Backend) -> Result<TokenStore, store::StoreError> {
        TokenStore::open(&self.config_dir, backend, self.passphrase.as_deref())
    }

    /// Stores a new login's tokens: in the OS keyring when one is reachable and no
    /// [`store::PASS_ENV`] is set, else (saying why, in one line on `out`) in the encrypted
    /// file store. A copy an earlier login of `key` left in the other store is removed.
    fn store_login(
        &self,
        key: &str,
        tokens: &Tokens,
        previous: Option<Backend>,
        out: &mut dyn Write,
    ) -> Result<Backend, LoginError> {
        let mut backend = Backend::File;
        if self.passphrase.is_none() {
            let stored = oskeyring::bus_reachable(|k| std::env::var(k).ok())
                .and_then(|()| oskeyring::set(key, tokens).map_err(|e| e.to_string()));
            match stored {
                Ok(()) => backend = Backend::Keyring,
                Err(reason) => {
                    let _ = writeln!(
                        out,
                        "No OS keyring available ({reason}); keeping the tokens in the encrypted file store {}",
                        self.config_dir.join("keyring").display()
                    );
                }
            }
        }
        if backend == Backend::File {
            self.store(Backend::File)?.set(key, tokens)?;
        }
        if let Some(old) = previous.filter(|old| *old != backend) {
            // Best effort: the old store may be unreachable now (that is why it changed).
            if let Ok(s) = self.store(old) {
                let _ = s.delete(key);
            }
        }
        Ok(backend)
    }
}

/// Login flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--ca-cert`: the API server's CA (inline PEM, http(s) URL or file path).
    pub api_ca: Option<String>,
    pub callback_port: u16,
    pub headless: bool,
}

/// A CA given as inline PEM, an http(s) URL (fetched with the system roots) or a file path.
pub fn resolve_pem(what: &'static str, value: &str) -> Result<Vec<u8>, LoginError> {
    let err = |reason: String| LoginError::Ca {
        what,
        value: if value.contains("-----BEGIN") {
            "(inline PEM)".into()
        } else {
            value.into()
        },
        reason,
    };
    let pem = if value.contains("-----BEGIN") {
        value.as_bytes().to_vec()
    } else if value.starts_with("https://") || value.starts_with("http://") {
        runtime()?.block_on(async {
            let client = flow::http_client(None, true)?;
            let resp = client
                .get(value)
                .send()
                .await
                .map_err(|e| err(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(err(format!("HTTP {}", resp.status().as_u16())));
            }
            Ok(resp.bytes().await.map_err(|e| err(e.to_string()))?.to_vec())
        })?
    } else {
        std::fs::read(value).map_err(|e| err(e.to_string()))?
    };
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(c) if !c.is_empty() => Ok(pem),
        _ => Err(err("contained no usable certificates".into())),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, LoginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoginError::Runtime)
}

/// The issuer side of a login: where, as whom, trusting what.
struct Issuer<'a> {
    issuer: &'a str,
    client_id: &'a str,
    ca_pem: Option<&'a [u8]>,
}

/// Opens `url` in a browser when this session has one; failures are ignored (the URL is
/// printed anyway).
fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        Some("open")
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        Some("xdg-open")
    } else {
        None
    };
    if let Some(cmd) = cmd {
        let _ = std::process::Command::new(cmd)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// The full authorization-code flow; messages for the user go to `out`.
async fn authenticate(
    iss: &Issuer<'_>,
    callback_port: u16,
    headless: bool,
    out: &mut dyn Write,
) -> Result<TokenResponse, FlowError> {
    let client = flow::http_client(iss.ca_pem, true)?;
    let endpoints = flow::discover(&client, iss.issuer).await?;
    let pkce = flow::Pkce::new()?;
    let redirect = flow::redirect_uri(callback_port);
    let url = flow::authorize_url(&endpoints.authorization, iss.client_id, &redirect, &pkce)?;
    let code = if headless {
        let walker = flow::http_client(iss.ca_pem, false)?;
        flow::headless_code(&walker, &url, &redirect, &pkce.state).await?
    } else {
        let listener = flow::listen(callback_port).await?;
        let _ = writeln!(out, "Open this URL in a browser to log in:\n  {url}");
        let _ = out.flush();
        open_browser(&url);
        flow::wait_callback(listener, &pkce.state, LOGIN_TIMEOUT).await?
    };
    flow::exchange_code(
        &client,
        &endpoints.token,
        &code,
        &redirect,
        iss.client_id,
        &pkce.verifier,
    )
    .await
}

/// `podplane login`: authenticate, store the tokens and the record, write the kubeconfig and
/// the docker credential helper entry.
pub fn login(
    env: &Env,
    target: &Target,
    opts: &Options,
    out: &mut dyn Write,
) -> Result<(), LoginError> {
    let issuer_ca = if target.issuer_ca.is_empty() {
        None
    } else {
        Some(resolve_pem("oidc.ca_cert", &target.issuer_ca)?)
    };
    let api_ca = match &opts.api_ca {
        Some(v) => Some(resolve_pem("--ca-cert", v)?),
        None => None,
    };
    let iss = Issuer {
        issuer: &target.issuer,
        client_id: &target.client_id,
        ca_pem: issuer_ca.as_deref(),
    };
    let tokens = runtime()?.block_on(authenticate(&iss, opts.callback_port, opts.headless, out))?;
    let claims = flow::claims(&tokens.id_token)?;
    let key = store::entry_key(&claims.sub, &target.cluster_id);
    let previous = meta::get(&env.config_dir, &key)?.map(|r| r.store);
    let backend = env.store_login(
        &key,
        &Tokens {
            id_token: tokens.id_token,
            refresh_token: tokens.refresh_token,
        },
        previous,
        out,
    )?;
    let record = AuthRecord {
        sub: claims.sub.clone(),
        cluster_id: target.cluster_id.clone(),
        cluster_name: target.cluster_name.clone(),
        issuer: target.issuer.clone(),
        client_id: target.client_id.clone(),
        user_email: claims.email.clone(),
        issuer_ca_pem: issuer_ca
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        callback_port: opts.callback_port,
        headless: opts.headless,
        registry_host: target.registry_host.clone(),
        store: backend,
    };
    meta::update(&env.config_dir, |auth| auth.insert(key, record))?;

    let mut kc = kubeconfig::load(&env.kubeconfig)?;
    let skipped = kc.add_access(&kubeconfig::Access {
        cluster_id: target.cluster_id.clone(),
        sub: claims.sub.clone(),
        server: target.server.clone(),
        ca_pem: api_ca,
        command: env.exe.display().to_string(),
    });
    for s in &skipped {
        let _ = writeln!(out, "{s}");
    }
    kubeconfig::save(&env.kubeconfig, &kc)?;
    if !target.registry_host.is_empty()
        && docker::add_cred_helper(&env.home, &target.registry_host)
            .map_err(|e| LoginError::Other(e.to_string()))?
    {
        let _ = writeln!(
            out,
            "Configured Docker credential helper for {}",
            target.registry_host
        );
    }
    let _ = writeln!(
        out,
        "Logged in to cluster \"{}\" as {}",
        target.cluster_id,
        claims.display()
    );
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A current ID token for `sub` on `cluster_id`: the cached one while it has more than
/// [`MIN_VALIDITY_SECS`] left, else a refresh (keeping the old refresh token if none comes
/// back), else a full login. Messages go to `err` (stdout belongs to the caller's protocol).
pub fn current_token(
    env: &Env,
    cluster_id: &str,
    sub: &str,
    err: &mut dyn Write,
) -> Result<(String, flow::Claims), LoginError> {
    let key = store::entry_key(sub, cluster_id);
    let not_logged_in = || LoginError::NotLoggedIn {
        sub: sub.into(),
        cluster: cluster_id.into(),
    };
    let record = meta::get(&env.config_dir, &key)?.ok_or_else(not_logged_in)?;
    let store = env.store(record.store)?;
    let valid = |t: &Option<Tokens>| {
        t.as_ref().and_then(|t| {
            flow::claims(&t.id_token)
                .ok()
                .filter(|c| c.exp > now_secs() + MIN_VALIDITY_SECS)
                .map(|c| (t.id_token.clone(), c))
        })
    };
    if let Some(hit) = valid(&store.get(&key)?) {
        return Ok(hit);
    }
    // One refresh at a time; whoever waited finds the token the other one stored.
    let _lock = store.lock(&key, LOGIN_TIMEOUT + Duration::from_secs(60))?;
    let cached = store.get(&key)?;
    if let Some(hit) = valid(&cached) {
        return Ok(hit);
    }
    let ca = (!record.issuer_ca_pem.is_empty()).then_some(record.issuer_ca_pem.as_bytes());
    let iss = Issuer {
        issuer: &record.issuer,
        client_id: &record.client_id,
        ca_pem: ca,
    };
    let old_refresh = cached.map(|t| t.refresh_token).unwrap_or_default();
    let fresh = runtime()?.block_on(async {
        if !old_refresh.is_empty() {
            let client = flow::http_client(iss.ca_pem, true)?;
            let endpoints = flow::discover(&client, iss.issuer).await?;
            match flow::refresh(&client, &endpoints.token, &old_refresh, iss.client_id).await {
                Ok(t) => return Ok::<_, FlowError>(t),
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "podplane: token refresh failed ({e}); logging in again"
                    );
                }
            }
        }
        authenticate(&iss, record.callback_port, record.headless, err).await
    })?;
    let claims = flow::claims(&fresh.id_token)?;
    if claims.sub != sub {
        return Err(LoginError::Other(format!(
            "the issuer logged in {:?}, but this kubeconfig user is {sub:?}; run `podplane login` as that user",
            claims.sub
        )));
    }
    let refresh_token = if fresh.refresh_token.is_empty() {
        old_refresh
    } else {
        fresh.refresh_token
    };
    store.set(
        &key,
        &Tokens {
            id_token: fresh.id_token.clone(),
            refresh_token,
        },
    )?;
    Ok((fresh.id_token, claims))
}

/// RFC 3339 UTC for an epoch second.
fn rfc3339(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = vmagent::clock::utc_parts(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// `podplane hooks kubectl-auth`: the `ExecCredential` kubectl reads from stdout.
pub fn exec_credential(
    env: &Env,
    cluster_id: &str,
    sub: &str,
    err: &mut dyn Write,
) -> Result<String, LoginError> {
    let (token, claims) = current_token(env, cluster_id, sub, err)?;
    let mut status = serde_json::json!({ "token": token });
    if claims.exp > 0 {
        status["expirationTimestamp"] = rfc3339(claims.exp).into();
    }
    let v = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": status,
    });
    serde_json::to_string_pretty(&v).map_err(|e| LoginError::Other(e.to_string()))
}

/// Which cluster `logout` means: `--cluster`, else the id in `-f`, else the kube context's
/// cluster (`podplane-<id>` gives `<id>`; any other name gives the context's own name).
pub fn cluster_from_context(
    kc: &kubeconfig::Kubeconfig,
    context: Option<&str>,
) -> Result<String, LoginError> {
    let name = match context {
        Some(c) => c.to_string(),
        None if !kc.current_context.is_empty() => kc.current_context.clone(),
        None => {
            return Err(LoginError::Other(
                "no kubeconfig context selected; pass --context, --cluster or -f".into(),
            ));
        }
    };
    let cluster = kc
        .context_cluster(&name)
        .ok_or_else(|| LoginError::Other(format!("kubeconfig context {name:?} not found")))?;
    Ok(cluster
        .strip_prefix("podplane-")
        .map(str::to_string)
        .unwrap_or(name))
}

/// `logout --cluster ID`: the id must follow the cluster-id rule of `cluster.id`, so a typo
/// is named instead of answered with "no cached credentials".
pub fn check_cluster_arg(id: &str) -> Result<(), LoginError> {
    crate::config::check_cluster_id(id).map_err(|e| {
        LoginError::Other(format!(
            "--cluster {id:?}: a cluster id {e} (the cluster.id rule: 1 to 32 lowercase letters, digits and hyphens, no leading, trailing or double hyphen, not local, k8s or oidc)"
        ))
    })
}

/// `podplane logout` once confirmed: the cluster's tokens and records, then its kubeconfig
/// entries. Does not revoke anything at the issuer.
pub fn logout(env: &Env, cluster_id: &str, out: &mut dyn Write) -> Result<(), LoginError> {
    let removed = meta::update(&env.config_dir, |auth| {
        let keys: Vec<String> = auth
            .iter()
            .filter(|(_, r)| r.cluster_id == cluster_id)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| auth.remove(&k).map(|r| (k, r)))
            .collect::<Vec<_>>()
    })?;
    for (key, r) in &removed {
        // The record is gone already; tokens left in an unreachable keyring are named so the
        // user can remove them, and the kubeconfig is still cleaned.
        if let Err(e) = env.store(r.store).and_then(|s| s.delete(key).map(drop)) {
            let hint = match r.store {
                Backend::Keyring => format!(
                    "; remove the keyring entry (service {}, user {key:?}) by hand",
                    oskeyring::SERVICE
                ),
                Backend::File => String::new(),
            };
            let _ = writeln!(
                out,
                "Could not remove the stored tokens of {key:?}: {e}{hint}"
            );
        }
        let who = if r.user_email.is_empty() {
            &r.sub
        } else {
            &r.user_email
        };
        let _ = writeln!(out, "Cleared credentials for {who} on cluster {cluster_id}");
    }
    if removed.is_empty() {
        let _ = writeln!(out, "No cached credentials for cluster \"{cluster_id}\"");
    }
    let mut kc = kubeconfig::load(&env.kubeconfig)?;
    if kc.remove_access(cluster_id) > 0 {
        kubeconfig::save(&env.kubeconfig, &kc)?;
    }
    let _ = writeln!(out, "Cleared kubectl access for cluster \"{cluster_id}\"");
    Ok(())
}
