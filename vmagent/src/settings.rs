//! The node's settings: the three env layers read in upstream's order (user-data.env, then
//! detected.env, then mutable.env; later files win), with the mutable.env contract's defaults
//! ([`MutableKey`]) underneath ([`Settings`], the raw merge), and [`NodeSettings`], the same
//! settings parsed once into types, which is what rendering reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::contract::MutableKey;

mod typed;
use crate::envfile::{self, EnvFileError};
use crate::fsutil::under_root;
pub use typed::{AsWritten, Bucket, Kube, NodeSettings, Oidc, Registry, Telemetry, or_empty};

pub const USER_DATA_ENV: &str = "/opt/podplane/etc/user-data.env";
pub const DETECTED_ENV: &str = "/opt/podplane/etc/detected.env";
pub const MUTABLE_ENV: &str = "/opt/podplane/etc/mutable.env";
pub const BOOTSTRAP_DONE: &str = "/opt/podplane/bootstrap.done";

/// The default mutable.env, as bootstrap seeds it: `KEY='value'` lines, sorted.
pub fn default_mutable_env() -> String {
    MutableKey::ALL
        .iter()
        .map(|k| format!("{}='{}'\n", k.name(), k.default()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    EnvFile(#[from] EnvFileError),
    #[error("{} is missing; first boot writes it (vmagent bootstrap) before configure can run", path.display())]
    Missing { path: PathBuf },
    #[error(
        "{} exists but {} is missing or empty; bootstrap ran before and will not silently run again: restore the file or remove {} to re-detect",
        done.display(), path.display(), done.display()
    )]
    BootstrapIncomplete { done: PathBuf, path: PathBuf },
    #[error("{key} is empty; {why}")]
    Required { key: String, why: String },
    #[error("{key} is {value:?} ({file}); {source}")]
    Bad {
        key: &'static str,
        file: &'static str,
        value: String,
        #[source]
        source: crate::contract::CheckError,
    },
    #[error("{key} ({file}) is not valid base64 ({source}); it must be a base64-encoded PEM")]
    Base64 {
        key: &'static str,
        file: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error(
        "TELEMETRY_ENABLED is true but there is nothing to collect: TELEMETRY_LOG_SERVICES is empty and TELEMETRY_LOG_CLOUDINIT is false (mutable.env); name units to collect, or set TELEMETRY_ENABLED=false"
    )]
    NothingToCollect,
    #[error(
        "{key} is not a key of user-data.env, detected.env or mutable.env; remove it from the file that sets it"
    )]
    Unknown { key: String },
}

/// The merged layers as text (missing keys read as empty); [`NodeSettings::parse`] types them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Layers in order (later wins), over the mutable defaults.
    pub fn from_layers<'a>(
        layers: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
    ) -> Settings {
        let mut values: BTreeMap<String, String> = MutableKey::ALL
            .iter()
            .map(|k| (k.name().to_string(), k.default().to_string()))
            .collect();
        for layer in layers {
            for (k, v) in layer {
                values.insert(k.clone(), v.clone());
            }
        }
        Settings { values }
    }

    /// Read the three layers below `root`. user-data.env is required; detected.env and
    /// mutable.env are required once bootstrap is done.
    pub fn load(root: &Path) -> Result<Settings, SettingsError> {
        let ud_path = under_root(root, USER_DATA_ENV);
        let ud = envfile::read(&ud_path)?.ok_or(SettingsError::Missing { path: ud_path })?;
        let done = under_root(root, BOOTSTRAP_DONE);
        let mut layers = vec![ud];
        for f in [DETECTED_ENV, MUTABLE_ENV] {
            let path = under_root(root, f);
            match envfile::read(&path)? {
                Some(m) if !m.is_empty() => layers.push(m),
                _ if done.exists() => {
                    return Err(SettingsError::BootstrapIncomplete { done, path });
                }
                _ => {}
            }
        }
        Ok(Settings::from_layers(layers.iter()))
    }

    /// The value, or "" when unset.
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_string(), value.to_string());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_override_in_order_over_defaults() {
        let s = Settings::from_layers([
            &m(&[("INSTANCE_ID", "i-1"), ("KUBE_LOG_LEVEL", "3")]),
            &m(&[("INSTANCE_IPV4", "10.0.0.5")]),
            &m(&[("KUBE_LOG_LEVEL", "4")]),
        ]);
        assert_eq!(s.get("INSTANCE_ID"), "i-1");
        assert_eq!(s.get("KUBE_LOG_LEVEL"), "4");
        assert_eq!(s.get("KUBE_API_PORT"), "6443");
        assert_eq!(s.get("NOPE"), "");
    }

    #[test]
    fn load_requires_user_data_and_consistent_bootstrap() {
        let root = tempfile::tempdir().unwrap();
        let err = Settings::load(root.path()).unwrap_err();
        assert!(
            err.to_string().contains("user-data.env is missing"),
            "{err}"
        );
        let etc = root.path().join("opt/podplane/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("user-data.env"), "INSTANCE_ID='i-9'\n").unwrap();
        assert_eq!(
            Settings::load(root.path()).unwrap().get("INSTANCE_ID"),
            "i-9"
        );
        std::fs::write(
            root.path().join("opt/podplane/bootstrap.done"),
            "completed_at=x\n",
        )
        .unwrap();
        let err = Settings::load(root.path()).unwrap_err();
        assert!(
            matches!(err, SettingsError::BootstrapIncomplete { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("detected.env"), "{err}");
    }

    #[test]
    fn default_mutable_env_is_sorted_and_parses_back() {
        let text = default_mutable_env();
        let keys: Vec<_> = MutableKey::ALL.iter().map(|k| k.name()).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        let parsed = envfile::parse(&text, Path::new("mutable.env")).unwrap();
        assert_eq!(parsed.len(), MutableKey::ALL.len());
        assert_eq!(parsed["KUBE_CLUSTER_DNS"], "198.19.255.254,fdc6::ffff");
    }
}
