//! Access to the cluster's API server with kube-rs: the kubeconfig (and its exec credential
//! plugin, `podplane hooks kubectl-auth` after `podplane login`), TLS and HTTP are kube-rs's;
//! every response body is read here with a size cap (kube-rs's own helpers read bodies whole)
//! and every failure becomes an error naming the context, the object and the fix.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::BodyExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::core::params::{ListParams, Patch, PatchParams, WatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind, ObjectList, Request, WatchEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::catalogue::{CONTROL_NAMESPACE, CONTROL_RELEASE};
use super::release;

/// The largest response body read (a LIST of Helm records or HelmReleases).
pub const MAX_BODY: usize = 16 << 20;
/// The longest single watch event line.
pub const MAX_EVENT: usize = 4 << 20;
/// How long one request (and reading its answer) may take by default, and how long connecting
/// may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server keeps one watch open before we list again.
pub const WATCH_SECONDS: u32 = 50;

/// Which cluster: the kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`) and the
/// context in it (default: its current context).
#[derive(Debug, Clone)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// How long one request may take (`--request-timeout`).
    pub request_timeout: Duration,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            kubeconfig: None,
            context: None,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// The upstream message for a cluster without the control release.
pub const BARE_CLUSTER: &str = "platform-components is not installed in this cluster; this looks like a bare Podplane cluster. App deploys and component installs require a cluster seeded with the minimal or recommended platform components. Bootstrap platform-components manually or recreate the cluster with minimal/recommended components, then retry.";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "read the kubeconfig {path}: {source}; run `podplane login -f <podplane.cluster.jsonc>` to write one, or pass --kubeconfig"
    )]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "the kubeconfig {path} has no context {context:?} (it has: {}); pass one of those to --context, or run `podplane login -f <podplane.cluster.jsonc>` to add the cluster's",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    NoContext {
        path: String,
        context: String,
        known: Vec<String>,
    },
    #[error("context {context:?}: cannot build a client: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "context {context:?}: getting a token with the kubeconfig's credential plugin failed: {source}; your login may have expired: run `podplane login -f <podplane.cluster.jsonc>` for this cluster"
    )]
    Credentials {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "context {context:?}: cannot reach the API server at {server} ({what}): {source}; check the network, the kubeconfig's server address, and that the cluster is running"
    )]
    Unreachable {
        context: String,
        server: String,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "context {context:?}: the API server rejected the credentials ({what}: 401 Unauthorized); the login has expired or is for another cluster: run `podplane login -f <podplane.cluster.jsonc>` for this cluster"
    )]
    Unauthorized { context: String, what: String },
    #[error(
        "context {context:?}: RBAC denied {what} (403 Forbidden: {message}); ask a cluster admin to grant your user that access, or use a context with it"
    )]
    Forbidden {
        context: String,
        what: String,
        message: String,
    },
    #[error(
        "context {context:?}: {what}: no complete answer from the API server within {}; it is overloaded or the network is failing: retry, or allow more with --request-timeout",
        human(*after)
    )]
    Slow {
        context: String,
        what: String,
        after: Duration,
    },
    #[error("context {context:?}: {what}: HTTP {code}: {message}")]
    Status {
        context: String,
        what: String,
        code: u16,
        message: String,
    },
    #[error("context {context:?}: {what}: the response is over {} MiB; refusing it", MAX_BODY >> 20)]
    TooBig { context: String, what: String },
    #[error(
        "context {context:?}: {what}: the response is not what the Kubernetes API sends: {source}"
    )]
    Decode {
        context: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("context {context:?}: {what}: the connection broke while reading: {source}")]
    Read {
        context: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("context {context:?}: {source}")]
    Record {
        context: String,
        #[source]
        source: release::RecordError,
    },
    #[error("context {context:?}: {BARE_CLUSTER}")]
    Bare { context: String },
    #[error("context {context:?}: build the request for {what}: {message}")]
    Request {
        context: String,
        what: String,
        message: String,
    },
}

/// The Flux HelmRelease resource (`helm.toolkit.fluxcd.io/v2`).
pub fn helmrelease_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
        "helmreleases",
    )
}

/// A connected client and the name of its context (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub context: String,
    pub server: String,
    pub request_timeout: Duration,
}

impl Cluster {
    pub async fn connect(t: &Target) -> Result<Cluster, KubeError> {
        let (kc, path) = match &t.kubeconfig {
            Some(p) => (
                kube::config::Kubeconfig::read_from(p),
                p.display().to_string(),
            ),
            None => (
                kube::config::Kubeconfig::read(),
                "($KUBECONFIG or ~/.kube/config)".to_string(),
            ),
        };
        let kc = kc.map_err(|source| KubeError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        if let Some(want) = &t.context
            && !kc.contexts.iter().any(|c| &c.name == want)
        {
            return Err(KubeError::NoContext {
                path,
                context: want.clone(),
                known: kc.contexts.iter().map(|c| c.name.clone()).collect(),
            });
        }
        let context = t
            .context
            .clone()
            .or_else(|| kc.current_context.clone())
            .unwrap_or_default();
        let opts = kube::config::KubeConfigOptions {
            context: t.context.clone(),
            ..Default::default()
        };
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|source| KubeError::Kubeconfig { path, source })?;
        cfg.connect_timeout = Some(CONNECT_TIMEOUT);
        cfg.read_timeout = Some(Duration::from_secs(u64::from(WATCH_SECONDS) + 20));
        cfg.write_timeout = Some(t.request_timeout);
        cfg.reset_reader_on_write = true;
        // Errors are reported, not retried behind the user's back.
        cfg.default_retry = false;
        let server = cfg.cluster_url.to_string();
        // The credential plugin runs here, when the client is built.
        let client = kube::Client::try_from(cfg).map_err(|source| match source {
            kube::Error::Auth(_) => KubeError::Credentials {
                context: context.clone(),
                source,
            },
            source => KubeError::Client {
                context: context.clone(),
                source,
            },
        })?;
        Ok(Cluster {
            client,
            context,
            server,
            request_timeout: t.request_timeout,
        })
    }

    fn slow(&self, what: &str) -> KubeError {
        KubeError::Slow {
            context: self.context.clone(),
            what: what.into(),
            after: self.request_timeout,
        }
    }

    /// Sends a request; a non-2xx status becomes the matching error. Returns the body.
    async fn send(&self, what: &str, req: http::Request<Vec<u8>>) -> Result<Body, KubeError> {
        let res = tokio::time::timeout(self.request_timeout, self.client.send(req.map(Body::from)))
            .await
            .map_err(|_| self.slow(what))?
            .map_err(|e| self.send_error(what, e))?;
        let (parts, body) = res.into_parts();
        if parts.status.is_success() {
            return Ok(body);
        }
        let code = parts.status.as_u16();
        // The Status object's message; the body is capped like any other.
        let message = tokio::time::timeout(self.request_timeout, read_capped(body, 64 << 10))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| parts.status.canonical_reason().unwrap_or("").to_string());
        let (context, what) = (self.context.clone(), what.to_string());
        Err(match code {
            401 => KubeError::Unauthorized { context, what },
            403 => KubeError::Forbidden {
                context,
                what,
                message,
            },
            _ => KubeError::Status {
                context,
                what,
                code,
                message,
            },
        })
    }

    fn send_error(&self, what: &str, e: kube::Error) -> KubeError {
        match e {
            kube::Error::Auth(_) => KubeError::Credentials {
                context: self.context.clone(),
                source: e,
            },
            e => KubeError::Unreachable {
                context: self.context.clone(),
                server: self.server.clone(),
                what: what.into(),
                source: e,
            },
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        req: http::Request<Vec<u8>>,
    ) -> Result<T, KubeError> {
        let body = self.send(what, req).await?;
        let read = tokio::time::timeout(self.request_timeout, read_capped(body, MAX_BODY));
        let bytes = read
            .await
            .map_err(|_| self.slow(what))?
            .map_err(|e| match e {
                ReadError::TooBig => KubeError::TooBig {
                    context: self.context.clone(),
                    what: what.into(),
                },
                ReadError::Body(source) => KubeError::Read {
                    context: self.context.clone(),
                    what: what.into(),
                    source,
                },
            })?;
        serde_json::from_slice(&bytes).map_err(|source| KubeError::Decode {
            context: self.context.clone(),
            what: what.into(),
            source,
        })
    }

    fn req_error(&self, what: &str, e: impl std::fmt::Display) -> KubeError {
        KubeError::Request {
            context: self.context.clone(),
            what: what.into(),
            message: e.to_string(),
        }
    }

    /// The computed values of the control release, from its newest Helm release record.
    pub async fn control_values(&self) -> Result<Value, KubeError> {
        let what = format!(
            "list the Helm release records of {CONTROL_RELEASE} (Secrets in namespace {CONTROL_NAMESPACE})"
        );
        let req = Request::new(format!("/api/v1/namespaces/{CONTROL_NAMESPACE}/secrets"))
            .list(&ListParams::default().labels(&format!("owner=helm,name={CONTROL_RELEASE}")))
            .map_err(|e| self.req_error(&what, e))?;
        let list: ObjectList<Secret> = self.json(&what, req).await?;
        let newest = list
            .items
            .iter()
            .filter_map(|s| {
                let name = s.metadata.name.as_deref()?;
                Some((release::revision(name, CONTROL_RELEASE)?, name, s))
            })
            .max_by_key(|(rev, _, _)| *rev);
        let Some((_, name, secret)) = newest else {
            return Err(KubeError::Bare {
                context: self.context.clone(),
            });
        };
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .ok_or_else(|| KubeError::Record {
                context: self.context.clone(),
                source: release::RecordError::NoData {
                    secret: format!("{CONTROL_NAMESPACE}/{name}"),
                },
            })?;
        release::computed_values(&format!("{CONTROL_NAMESPACE}/{name}"), &data.0).map_err(
            |source| KubeError::Record {
                context: self.context.clone(),
                source,
            },
        )
    }

    /// Merge-patches the control HelmRelease.
    pub async fn patch_control(&self, patch: &Value) -> Result<(), KubeError> {
        let what = format!("patch HelmRelease {CONTROL_NAMESPACE}/{CONTROL_RELEASE}");
        let ar = helmrelease_resource();
        let req = Request::new(format!(
            "/apis/{}/namespaces/{CONTROL_NAMESPACE}/{}",
            ar.api_version, ar.plural
        ))
        .patch(
            CONTROL_RELEASE,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .map_err(|e| self.req_error(&what, e))?;
        match self.json::<DynamicObject>(&what, req).await {
            Err(KubeError::Status { code: 404, .. }) => Err(KubeError::Bare {
                context: self.context.clone(),
            }),
            r => r.map(|_| ()),
        }
    }

    fn all_helmreleases(&self) -> Request {
        let ar = helmrelease_resource();
        Request::new(format!("/apis/{}/{}", ar.api_version, ar.plural))
    }

    /// Every HelmRelease in the cluster, and the list's resourceVersion (to watch from).
    pub async fn list_helmreleases(&self) -> Result<(Vec<DynamicObject>, String), KubeError> {
        let what = "list HelmReleases in all namespaces";
        let req = self
            .all_helmreleases()
            .list(&ListParams::default())
            .map_err(|e| self.req_error(what, e))?;
        let list: ObjectList<DynamicObject> = self.json(what, req).await?;
        Ok((
            list.items,
            list.metadata.resource_version.unwrap_or_default(),
        ))
    }

    /// Opens a watch of every HelmRelease from `version`.
    pub async fn watch_helmreleases(&self, version: &str) -> Result<EventStream, KubeError> {
        let what = "watch HelmReleases in all namespaces";
        let req = self
            .all_helmreleases()
            .watch(&WatchParams::default().timeout(WATCH_SECONDS), version)
            .map_err(|e| self.req_error(what, e))?;
        let body = self.send(what, req).await?;
        Ok(EventStream {
            body,
            buf: Vec::new(),
            context: self.context.clone(),
        })
    }
}

/// The watch's events, one JSON document per line, each line capped.
pub struct EventStream {
    body: Body,
    buf: Vec<u8>,
    context: String,
}

impl EventStream {
    /// The next event; None when the server ended the watch.
    pub async fn next(&mut self) -> Result<Option<WatchEvent<DynamicObject>>, KubeError> {
        let what = "watch HelmReleases in all namespaces";
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line).map(Some).map_err(|source| {
                    KubeError::Decode {
                        context: self.context.clone(),
                        what: what.into(),
                        source,
                    }
                });
            }
            if self.buf.len() > MAX_EVENT {
                return Err(KubeError::TooBig {
                    context: self.context.clone(),
                    what: what.into(),
                });
            }
            match self.body.frame().await {
                None if self.buf.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                // A last event without its newline.
                None => self.buf.push(b'\n'),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => {
                    return Err(KubeError::Read {
                        context: self.context.clone(),
                        what: what.into(),
                        source: e.into(),
                    });
                }
            }
        }
    }
}

enum ReadError {
    TooBig,
    Body(Box<dyn std::error::Error + Send + Sync>),
}

async fn read_capped(mut body: Body, cap: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| ReadError::Body(e.into()))?;
        if let Ok(d) = f.into_data() {
            if out.len() + d.len() > cap {
                return Err(ReadError::TooBig);
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(out)
}

/// A duration as the flags take it (`10m`, `1m30s`, `3s`), for messages.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
