//! Where podplane keeps its files (XDG-aligned) and the `config.json` every command checks.

use std::path::{Path, PathBuf};

/// The four storage directories, each ending in `podplane`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub config: PathBuf,
    pub cache: PathBuf,
    pub data: PathBuf,
    pub runtime: PathBuf,
}

impl Dirs {
    /// From `XDG_CONFIG_HOME`, `XDG_CACHE_HOME`, `XDG_DATA_HOME`, `XDG_RUNTIME_DIR` and `HOME`
    /// as given by `env` (Linux defaults: `~/.config`, `~/.cache`, `~/.local/share`,
    /// `~/.podplane/run`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Dirs {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        let home = var("HOME")
            .or_else(|| var("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let under = |k: &str, default: &[&str]| {
            var(k)
                .map(PathBuf::from)
                .unwrap_or_else(|| default.iter().fold(home.clone(), |p, part| p.join(part)))
        };
        Dirs {
            config: under("XDG_CONFIG_HOME", &[".config"]).join("podplane"),
            cache: under("XDG_CACHE_HOME", &[".cache"]).join("podplane"),
            data: under("XDG_DATA_HOME", &[".local", "share"]).join("podplane"),
            runtime: var("XDG_RUNTIME_DIR")
                .map(|d| PathBuf::from(d).join("podplane"))
                .unwrap_or_else(|| home.join(".podplane").join("run")),
        }
    }

    pub fn from_process_env() -> Dirs {
        Dirs::from_env(|k| std::env::var(k).ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot create {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON ({source}); fix or remove it and rerun", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported config file version: {version} (in {})", path.display())]
    Version { path: PathBuf, version: String },
}

/// Make sure `<config dir>/config.json` exists (creating `{"config":{"version":1}}`) and that
/// its `config.version` is 1.
pub fn ensure_config_file(config_dir: &Path) -> Result<(), ConfigFileError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let body = "{\n  \"config\": {\n    \"version\": 1\n  }\n}\n";
            vmagent::fsutil::write_atomic(&path, body.as_bytes(), Some(0o600))
                .map_err(|source| ConfigFileError::Write { path, source })?;
            return Ok(());
        }
        Err(source) => return Err(ConfigFileError::Read { path, source }),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ConfigFileError::Parse {
            path: path.clone(),
            source,
        })?;
    match v.pointer("/config/version") {
        Some(n) if n.as_u64() == Some(1) => Ok(()),
        other => Err(ConfigFileError::Version {
            path,
            version: other.map_or("missing".into(), |n| n.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_variables_win_and_home_is_the_fallback() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_CACHE_HOME" => Some("/c".to_string()),
            "XDG_CONFIG_HOME" => Some(String::new()),
            _ => None,
        };
        let d = Dirs::from_env(env);
        assert_eq!(d.config, PathBuf::from("/home/u/.config/podplane"));
        assert_eq!(d.cache, PathBuf::from("/c/podplane"));
        assert_eq!(d.data, PathBuf::from("/home/u/.local/share/podplane"));
        assert_eq!(d.runtime, PathBuf::from("/home/u/.podplane/run"));
    }

    #[test]
    fn config_json_is_created_then_checked() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("podplane");
        ensure_config_file(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["config"]["version"], 1);
        ensure_config_file(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"config":{"version":2}}"#).unwrap();
        assert_eq!(
            ensure_config_file(&dir).unwrap_err().to_string(),
            format!(
                "unsupported config file version: 2 (in {})",
                dir.join("config.json").display()
            )
        );
        std::fs::write(dir.join("config.json"), "{").unwrap();
        let err = ensure_config_file(&dir).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        // The JSON error is kept as the cause, not only flattened into the message.
        let cause = std::error::Error::source(&err).map(|c| c.to_string());
        assert!(
            cause
                .as_ref()
                .is_some_and(|c| err.to_string().contains(c.as_str())),
            "{err}"
        );
    }
}
