//! What podplane remembers about each login, apart from its tokens: `config.json`'s `auth`
//! map, keyed by the flat `<sub>:<cluster id>` (a `sub` with dots stays one key). Enough for
//! the hook to refresh or log in again without the cluster config file. No secret goes here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRecord {
    pub sub: String,
    pub cluster_id: String,
    #[serde(default)]
    pub cluster_name: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub user_email: String,
    /// PEM of the issuer's CA, when it has a private one (a public certificate, not a secret).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer_ca_pem: String,
    /// How to log in again from the hook: the callback port and whether headless.
    #[serde(default = "default_port")]
    pub callback_port: u16,
    #[serde(default)]
    pub headless: bool,
    /// The cluster registry's hostname, for the docker credential helper.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registry_host: String,
    /// Where the tokens are: `"keyring"` (the OS keyring) or, when absent, the file store.
    #[serde(default, skip_serializing_if = "super::store::Backend::is_file")]
    pub store: super::store::Backend,
}

fn default_port() -> u16 {
    8000
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}; fix or remove it and run `podplane login` again", path.display())]
    Parse { path: PathBuf, reason: String },
}

fn read(path: &Path) -> Result<serde_json::Value, MetaError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| MetaError::Parse {
            path: path.into(),
            reason: format!("not valid JSON ({e})"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(serde_json::json!({"config": {"version": 1}}))
        }
        Err(source) => Err(MetaError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Every login record of `<config_dir>/config.json`.
pub fn all(config_dir: &Path) -> Result<BTreeMap<String, AuthRecord>, MetaError> {
    let path = config_dir.join("config.json");
    let v = read(&path)?;
    match v.get("auth") {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(a) => serde_json::from_value(a.clone()).map_err(|e| MetaError::Parse {
            path,
            reason: format!("auth: {e}"),
        }),
    }
}

/// One record, if any.
pub fn get(config_dir: &Path, key: &str) -> Result<Option<AuthRecord>, MetaError> {
    Ok(all(config_dir)?.remove(key))
}

/// Rewrites `config.json` (atomically, 0600) with `edit` applied to its `auth` map; every
/// other key is kept.
pub fn update<T>(
    config_dir: &Path,
    edit: impl FnOnce(&mut BTreeMap<String, AuthRecord>) -> T,
) -> Result<T, MetaError> {
    let path = config_dir.join("config.json");
    let mut v = read(&path)?;
    let mut auth = all(config_dir)?;
    let out = edit(&mut auth);
    let parse = |e: serde_json::Error| MetaError::Parse {
        path: path.clone(),
        reason: e.to_string(),
    };
    let obj = v.as_object_mut().ok_or_else(|| MetaError::Parse {
        path: path.clone(),
        reason: "not a JSON object".into(),
    })?;
    if auth.is_empty() {
        obj.remove("auth");
    } else {
        obj.insert("auth".into(), serde_json::to_value(&auth).map_err(parse)?);
    }
    let mut text = serde_json::to_string_pretty(&v).map_err(parse)?;
    text.push('\n');
    vmagent::fsutil::write_atomic(&path, text.as_bytes(), Some(0o600))
        .map_err(|source| MetaError::Io { path, source })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sub: &str) -> AuthRecord {
        AuthRecord {
            sub: sub.into(),
            cluster_id: "c1".into(),
            cluster_name: String::new(),
            issuer: "https://i.example".into(),
            client_id: "c1".into(),
            user_email: String::new(),
            issuer_ca_pem: String::new(),
            callback_port: 8000,
            headless: false,
            registry_host: String::new(),
            store: crate::login::store::Backend::File,
        }
    }

    #[test]
    fn records_are_flat_and_other_keys_survive() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("config.json"),
            r#"{"config":{"version":1},"clusters":{"x":{"id":"x"}}}"#,
        )
        .unwrap();
        update(t.path(), |a| {
            a.insert("a.b@c.d:c1".into(), record("a.b@c.d"))
        })
        .unwrap();
        let text = std::fs::read_to_string(t.path().join("config.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auth"]["a.b@c.d:c1"]["sub"], "a.b@c.d");
        assert_eq!(v["clusters"]["x"]["id"], "x");
        assert_eq!(v["config"]["version"], 1);
        assert_eq!(
            get(t.path(), "a.b@c.d:c1").unwrap(),
            Some(record("a.b@c.d"))
        );
        // The backend is recorded only when it is the OS keyring.
        assert!(v["auth"]["a.b@c.d:c1"].get("store").is_none());
        let mut in_keyring = record("k");
        in_keyring.store = crate::login::store::Backend::Keyring;
        update(t.path(), |a| a.insert("k:c1".into(), in_keyring.clone())).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auth"]["k:c1"]["store"], "keyring");
        assert_eq!(get(t.path(), "k:c1").unwrap(), Some(in_keyring));
        update(t.path(), |a| a.clear()).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap();
        assert!(v.get("auth").is_none());
        std::fs::write(t.path().join("config.json"), r#"{"auth":{"k":{"sub":1}}}"#).unwrap();
        let e = all(t.path()).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("auth:"), "{e}");
    }
}
