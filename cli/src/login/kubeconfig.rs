//! The kubeconfig entries podplane makes: cluster `podplane-<id>`, user `podplane-<id>-<sub>`
//! (an exec credential plugin running `podplane hooks kubectl-auth`), context `<id>`.
//!
//! Typed serde structs of the kubeconfig v1 schema, only as deep as podplane needs: the named
//! lists are typed, each entry's body and every other top-level key are kept as YAML values
//! (`flatten` into a map), so entries podplane does not own survive a rewrite in meaning.
//! Chosen over kube-rs' `Kubeconfig`, whose crate brings k8s-openapi and its own HTTP stack,
//! minutes of build on two cores, for three lists of named maps.
//!
//! Podplane's entries carry an extension named [`MARK`]; an existing same-named entry without
//! it is someone else's and is left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_norway::{Mapping, Value};

/// The extension name that marks an entry as made by podplane.
pub const MARK: &str = "podplane.dev/managed";

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("kubeconfig {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kubeconfig {}: not a kubeconfig: {reason}; fix the file or point KUBECONFIG elsewhere", path.display())]
    Parse { path: PathBuf, reason: String },
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A `{name, <body key>: {...}}` item of `clusters`, `users` or `contexts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
    #[serde(flatten)]
    pub body: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default = "v1")]
    pub api_version: String,
    #[serde(default = "config_kind")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub clusters: Vec<Named>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub users: Vec<Named>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub contexts: Vec<Named>,
    #[serde(
        rename = "current-context",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub current_context: String,
    /// `preferences`, `extensions` and anything newer.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn v1() -> String {
    "v1".into()
}
fn config_kind() -> String {
    "Config".into()
}

/// The three entry names of one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub cluster: String,
    pub user: String,
    pub context: String,
}

impl Names {
    pub fn new(cluster_id: &str, sub: &str) -> Names {
        Names {
            cluster: format!("podplane-{cluster_id}"),
            user: format!("podplane-{cluster_id}-{sub}"),
            context: cluster_id.to_string(),
        }
    }
}

/// What login wants in the kubeconfig.
#[derive(Debug, Clone)]
pub struct Access {
    pub cluster_id: String,
    pub sub: String,
    pub server: String,
    /// PEM of the API server's CA, embedded as `certificate-authority-data`.
    pub ca_pem: Option<Vec<u8>>,
    /// Absolute path of the podplane binary.
    pub command: String,
}

fn mark() -> Value {
    let mut ext = Mapping::new();
    ext.insert("name".into(), MARK.into());
    ext.insert("extension".into(), Value::Mapping(Mapping::new()));
    Value::Sequence(vec![Value::Mapping(ext)])
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(k.into(), v);
    }
    Value::Mapping(m)
}

fn is_ours(entry: &Named, body_key: &str) -> bool {
    entry
        .body
        .get(body_key)
        .and_then(|b| b.get("extensions"))
        .and_then(|e| e.as_sequence())
        .is_some_and(|s| {
            s.iter()
                .any(|x| x.get("name").and_then(|n| n.as_str()) == Some(MARK))
        })
}

/// The `--cluster` argument of a user's exec hook.
fn hook_cluster(entry: &Named) -> Option<String> {
    let args = entry
        .body
        .get("user")?
        .get("exec")?
        .get("args")?
        .as_sequence()?;
    let mut it = args.iter().filter_map(|a| a.as_str());
    while let Some(a) = it.next() {
        if a == "--cluster" {
            return it.next().map(str::to_string);
        }
    }
    None
}

/// Puts `entry` into `list`, replacing podplane's own same-named entry; `false` (list
/// unchanged) when a same-named entry is someone else's.
fn upsert(list: &mut Vec<Named>, body_key: &str, entry: Named) -> bool {
    match list.iter_mut().find(|e| e.name == entry.name) {
        Some(e) if is_ours(e, body_key) => {
            *e = entry;
            true
        }
        Some(_) => false,
        None => {
            list.push(entry);
            true
        }
    }
}

impl Kubeconfig {
    /// Adds or refreshes podplane's three entries; returns a message per entry left alone.
    pub fn add_access(&mut self, a: &Access) -> Vec<String> {
        let names = Names::new(&a.cluster_id, &a.sub);
        let mut cluster = vec![("server", Value::from(a.server.clone()))];
        if let Some(pem) = &a.ca_pem {
            use base64::Engine;
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            cluster.push(("certificate-authority-data", data.into()));
        }
        cluster.push(("extensions", mark()));
        let exec = map(vec![
            ("apiVersion", "client.authentication.k8s.io/v1beta1".into()),
            ("command", a.command.clone().into()),
            (
                "args",
                Value::Sequence(
                    [
                        "hooks",
                        "kubectl-auth",
                        "--cluster",
                        &a.cluster_id,
                        "--user",
                        &a.sub,
                    ]
                    .into_iter()
                    .map(Value::from)
                    .collect(),
                ),
            ),
            ("interactiveMode", "IfAvailable".into()),
            ("provideClusterInfo", false.into()),
        ]);
        let user = map(vec![("exec", exec), ("extensions", mark())]);
        let context = map(vec![
            ("cluster", names.cluster.clone().into()),
            ("user", names.user.clone().into()),
            ("namespace", "default".into()),
            ("extensions", mark()),
        ]);
        let mut skipped = Vec::new();
        let mut put = |list: &mut Vec<Named>, kind: &str, key: &str, name: &str, body: Value| {
            let entry = Named {
                name: name.to_string(),
                body: BTreeMap::from([(key.to_string(), body)]),
            };
            if !upsert(list, key, entry) {
                skipped.push(format!(
                    "kubeconfig {kind} {name:?} exists and was not made by podplane; left alone (rename or remove it and log in again)"
                ));
            }
        };
        put(
            &mut self.clusters,
            "cluster",
            "cluster",
            &names.cluster,
            map(cluster),
        );
        put(&mut self.users, "user", "user", &names.user, user);
        put(
            &mut self.contexts,
            "context",
            "context",
            &names.context,
            context,
        );
        skipped
    }

    /// Removes podplane's entries for `cluster_id` (every user of it); returns how many.
    pub fn remove_access(&mut self, cluster_id: &str) -> usize {
        let names = Names::new(cluster_id, "");
        let before = self.clusters.len() + self.users.len() + self.contexts.len();
        self.clusters
            .retain(|e| !(e.name == names.cluster && is_ours(e, "cluster")));
        // Users by their hook's `--cluster` argument: a name prefix would also match the users
        // of a cluster whose id extends this one (`a` and `a-b`).
        self.users
            .retain(|e| !(is_ours(e, "user") && hook_cluster(e).as_deref() == Some(cluster_id)));
        let ctx_gone = self
            .contexts
            .iter()
            .any(|e| e.name == names.context && is_ours(e, "context"));
        self.contexts
            .retain(|e| !(e.name == names.context && is_ours(e, "context")));
        if ctx_gone && self.current_context == names.context {
            self.current_context.clear();
        }
        before - (self.clusters.len() + self.users.len() + self.contexts.len())
    }

    /// The cluster name a context points at.
    pub fn context_cluster(&self, context: &str) -> Option<String> {
        self.contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.body.get("context"))
            .and_then(|b| b.get("cluster"))
            .and_then(|c| c.as_str())
            .map(str::to_string)
    }
}

/// The kubeconfig file podplane writes: the first path of `KUBECONFIG` (kubectl writes new
/// entries there too), else `~/.kube/config`.
pub fn default_path(kubeconfig_env: Option<&str>, home: &Path) -> PathBuf {
    kubeconfig_env
        .and_then(|v| v.split(':').find(|p| !p.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".kube").join("config"))
}

/// Reads `path`; a missing or empty file is an empty kubeconfig.
pub fn load(path: &Path) -> Result<Kubeconfig, KubeconfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(KubeconfigError::Io {
                path: path.into(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(Kubeconfig {
            api_version: v1(),
            kind: config_kind(),
            ..Default::default()
        });
    }
    serde_norway::from_str(&text).map_err(|e| KubeconfigError::Parse {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Writes `cfg` to `path` atomically with mode 0600.
pub fn save(path: &Path, cfg: &Kubeconfig) -> Result<(), KubeconfigError> {
    let text = serde_norway::to_string(cfg).map_err(|e| KubeconfigError::Parse {
        path: path.into(),
        reason: e.to_string(),
    })?;
    vmagent::fsutil::write_atomic(path, text.as_bytes(), Some(0o600)).map_err(|source| {
        KubeconfigError::Io {
            path: path.into(),
            source,
        }
    })
}

#[cfg(test)]
#[path = "kubeconfig/tests.rs"]
mod tests;
