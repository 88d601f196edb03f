//! The OS keyring backend of the token store, through the `keyring` crate: the Secret Service
//! over D-Bus on Linux (GNOME Keyring, KWallet, KeePassXC), the login Keychain on macOS, the
//! Credential Manager on Windows.
//!
//! One keyring entry per login: service `podplane`, user the flat `<sub>:<cluster id>` key,
//! secret the JSON `{"id_token","refresh_token"}`. Whether a login went to the keyring or to
//! the encrypted file store is recorded with the login (`config.json`'s `auth` map), so the
//! hook never probes: it asks the store the login used.
//!
//! On Linux the Secret Service is reached through libdbus, built into the binary (the crate's
//! `vendored` feature), so podplane starts on machines without libdbus and without a session
//! bus. Whether a bus can be there at all is decided from the environment before any D-Bus
//! call ([`bus_reachable`]), so a headless box falls back to the file store without waiting
//! and without libdbus trying to auto-launch a bus.

use std::path::Path;

use super::tokens::Tokens;

/// The keyring service name of every podplane entry.
pub const SERVICE: &str = "podplane";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("OS keyring entry {key:?}: {source}")]
    Access {
        key: String,
        #[source]
        source: keyring::Error,
    },
    #[error(
        "OS keyring entry {key:?} (service {SERVICE}): not a podplane token entry ({reason}); run `podplane logout` and `podplane login` again"
    )]
    Format { key: String, reason: String },
}

/// Whether an OS keyring can be reachable from this process, from the environment alone:
/// `Err(reason)` when there is no D-Bus session bus for the Secret Service
/// (`DBUS_SESSION_BUS_ADDRESS` unset and no `$XDG_RUNTIME_DIR/bus` socket), or when this
/// build has no keyring for the OS (the crate would silently use an in-memory store there).
/// The Keychain and the Credential Manager need no bus.
pub fn bus_reachable(var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return Ok(());
    }
    if !cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )) {
        return Err("this build of podplane has no OS keyring for this system".into());
    }
    if var("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return Ok(());
    }
    match var("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) if Path::new(&dir).join("bus").exists() => Ok(()),
        _ => Err("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus)".into()),
    }
}

fn entry(key: &str) -> Result<keyring::Entry, KeyringError> {
    keyring::Entry::new(SERVICE, key).map_err(|source| KeyringError::Access {
        key: key.into(),
        source,
    })
}

/// The tokens of `key`, or `None` when the keyring has no such entry.
pub fn get(key: &str) -> Result<Option<Tokens>, KeyringError> {
    let secret = match entry(key)?.get_password() {
        Ok(s) => s,
        Err(keyring::Error::NoEntry) => return Ok(None),
        Err(source) => {
            return Err(KeyringError::Access {
                key: key.into(),
                source,
            });
        }
    };
    serde_json::from_str(&secret)
        .map(Some)
        .map_err(|e| KeyringError::Format {
            key: key.into(),
            reason: e.to_string(),
        })
}

/// Stores (replacing) the tokens of `key`.
pub fn set(key: &str, tokens: &Tokens) -> Result<(), KeyringError> {
    let secret = serde_json::to_string(tokens).map_err(|e| KeyringError::Format {
        key: key.into(),
        reason: e.to_string(),
    })?;
    entry(key)?
        .set_password(&secret)
        .map_err(|source| KeyringError::Access {
            key: key.into(),
            source,
        })
}

/// Removes the entry; `false` when there was none.
pub fn delete(key: &str) -> Result<bool, KeyringError> {
    match entry(key)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(source) => Err(KeyringError::Access {
            key: key.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn no_session_bus_is_seen_from_the_environment() {
        let t = tempfile::tempdir().unwrap();
        let runtime = t.path().display().to_string();
        let env = |addr: Option<&str>, rt: Option<&str>| {
            let (addr, rt) = (addr.map(String::from), rt.map(String::from));
            move |k: &str| match k {
                "DBUS_SESSION_BUS_ADDRESS" => addr.clone(),
                "XDG_RUNTIME_DIR" => rt.clone(),
                _ => None,
            }
        };
        let e = bus_reachable(env(None, None)).unwrap_err();
        assert!(e.contains("DBUS_SESSION_BUS_ADDRESS"), "{e}");
        assert!(bus_reachable(env(Some(""), Some(&runtime))).is_err());
        bus_reachable(env(Some("unix:path=/run/user/1000/bus"), None)).unwrap();
        std::fs::write(t.path().join("bus"), "").unwrap();
        bus_reachable(env(None, Some(&runtime))).unwrap();
    }
}
