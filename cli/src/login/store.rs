//! Where the ID and refresh tokens live: the OS keyring ([`super::oskeyring`]) when one is
//! reachable at login and `PODPLANE_KEYRING_PASS` is not set, else an encrypted file store under
//! the config directory. Which one a login used is recorded with it ([`Backend`]), and
//! [`TokenStore`] opens that one.
//!
//! The file store: one file per entry, `<config>/keyring/<sha256(key)>.json` (mode 0600,
//! directory 0700), holding XChaCha20-Poly1305 ciphertext of `{"id_token","refresh_token"}`
//! with the entry key as associated data, so a file cannot be swapped for another entry's. The
//! key is flat: a `sub` with dots is one key, never nested.
//!
//! The file store's encryption key is Argon2id of `PODPLANE_KEYRING_PASS` (salt in
//! `keyring/salt`) when that is set, else 32 random bytes in `keyring/key` (0600). The second
//! mode guards against a token file leaking on its own (a backup, a paste), not against someone
//! who can read the whole config directory as this user; the OS keyring does.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The environment variable whose value unlocks the file store.
pub const PASS_ENV: &str = "PODPLANE_KEYRING_PASS";

pub use super::tokens::Tokens;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("token store {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "token store {}: cannot decrypt it (wrong {PASS_ENV}, or a damaged file); set the password used at login, or remove the file and run `podplane login` again",
        path.display()
    )]
    Decrypt { path: PathBuf },
    #[error(
        "token store {}: made {made}, but {now} now; {hint}",
        path.display()
    )]
    KeyMode {
        path: PathBuf,
        made: &'static str,
        now: &'static str,
        hint: &'static str,
    },
    #[error("token store {}: not a podplane token file ({reason}); remove it and run `podplane login` again", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("token store: cannot derive the key from {PASS_ENV}: {0}")]
    Kdf(String),
    #[error("token store: no random numbers from the system: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Keyring(#[from] super::oskeyring::KeyringError),
    #[error(
        "token store: this login's tokens are in the OS keyring, but {reason}; run podplane where the keyring is reachable, or `podplane login` again here to use the encrypted file store"
    )]
    KeyringUnreachable { reason: String },
}

/// Which store holds a login's tokens (recorded with the login in `config.json`; records
/// made before there was a choice are the file store's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    File,
    Keyring,
}

impl Backend {
    pub fn is_file(&self) -> bool {
        *self == Backend::File
    }
}

/// The store one login uses: the OS keyring or the file store, with the per-entry refresh
/// lock in `<config>/keyring/` either way.
pub enum TokenStore {
    File(FileStore),
    Keyring { dir: PathBuf },
}

impl TokenStore {
    /// Opens `backend` for `config_dir`; `passphrase` is [`PASS_ENV`]'s value (file store
    /// only). The keyring is refused at once, without a D-Bus call, when no bus is reachable.
    pub fn open(
        config_dir: &Path,
        backend: Backend,
        passphrase: Option<&str>,
    ) -> Result<TokenStore, StoreError> {
        match backend {
            Backend::File => FileStore::open(config_dir, passphrase).map(TokenStore::File),
            Backend::Keyring => {
                super::oskeyring::bus_reachable(|k| std::env::var(k).ok())
                    .map_err(|reason| StoreError::KeyringUnreachable { reason })?;
                Ok(TokenStore::Keyring {
                    dir: store_dir(config_dir)?,
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TokenStore::File(_) => Backend::File,
            TokenStore::Keyring { .. } => Backend::Keyring,
        }
    }

    pub fn get(&self, key: &str) -> Result<Option<Tokens>, StoreError> {
        match self {
            TokenStore::File(f) => f.get(key),
            TokenStore::Keyring { .. } => Ok(super::oskeyring::get(key)?),
        }
    }

    pub fn set(&self, key: &str, tokens: &Tokens) -> Result<(), StoreError> {
        match self {
            TokenStore::File(f) => f.set(key, tokens),
            TokenStore::Keyring { .. } => Ok(super::oskeyring::set(key, tokens)?),
        }
    }

    /// Removes the entry; `false` when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            TokenStore::File(f) => f.delete(key),
            TokenStore::Keyring { .. } => Ok(super::oskeyring::delete(key)?),
        }
    }

    /// See [`FileStore::lock`]; the keyring's entries are locked the same way.
    pub fn lock(
        &self,
        key: &str,
        timeout: std::time::Duration,
    ) -> Result<vmagent::fsutil::DirLock, StoreError> {
        match self {
            TokenStore::File(f) => lock_in(&f.dir, key, timeout),
            TokenStore::Keyring { dir } => lock_in(dir, key, timeout),
        }
    }
}

/// `<config_dir>/keyring`, created 0700.
fn store_dir(config_dir: &Path) -> Result<PathBuf, StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = config_dir.join("keyring");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    Ok(dir)
}

fn lock_in(
    dir: &Path,
    key: &str,
    timeout: std::time::Duration,
) -> Result<vmagent::fsutil::DirLock, StoreError> {
    let name = format!("{}.lock", hex::encode(Sha256::digest(key)));
    vmagent::fsutil::DirLock::acquire(dir, &name, timeout).map_err(|source| StoreError::Io {
        path: dir.join(name),
        source,
    })
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    /// `argon2id` (PODPLANE_KEYRING_PASS) or `keyfile`.
    kdf: String,
    nonce: String,
    ciphertext: String,
}

/// The encrypted file store of one config directory.
pub struct FileStore {
    dir: PathBuf,
    cipher: XChaCha20Poly1305,
    kdf: &'static str,
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(StoreError::Random)?;
    Ok(b)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `path`, or creates it with `N` random bytes (mode 0600) when missing.
fn read_or_create_secret<const N: usize>(path: &Path) -> Result<[u8; N], StoreError> {
    match std::fs::read(path) {
        Ok(b) => b.try_into().map_err(|b: Vec<u8>| StoreError::Format {
            path: path.to_path_buf(),
            reason: format!("{} bytes, expected {N}", b.len()),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let b = random::<N>()?;
            vmagent::fsutil::write_atomic(path, &b, Some(0o600)).map_err(io(path))?;
            Ok(b)
        }
        Err(e) => Err(io(path)(e)),
    }
}

impl FileStore {
    /// Opens (creating) `<config_dir>/keyring`; `passphrase` is [`PASS_ENV`]'s value if set.
    pub fn open(config_dir: &Path, passphrase: Option<&str>) -> Result<FileStore, StoreError> {
        let dir = store_dir(config_dir)?;
        let (key, kdf) = match passphrase {
            Some(pass) => {
                let salt = read_or_create_secret::<16>(&dir.join("salt"))?;
                let mut key = [0u8; 32];
                argon2::Argon2::default()
                    .hash_password_into(pass.as_bytes(), &salt, &mut key)
                    .map_err(|e| StoreError::Kdf(e.to_string()))?;
                (key, "argon2id")
            }
            None => (read_or_create_secret::<32>(&dir.join("key"))?, "keyfile"),
        };
        Ok(FileStore {
            dir,
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
            kdf,
        })
    }

    /// From the process environment.
    pub fn open_from_env(config_dir: &Path) -> Result<FileStore, StoreError> {
        let pass = std::env::var(PASS_ENV).ok().filter(|p| !p.is_empty());
        FileStore::open(config_dir, pass.as_deref())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", hex::encode(Sha256::digest(key))))
    }

    pub fn get(&self, key: &str) -> Result<Option<Tokens>, StoreError> {
        let path = self.path(key);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let format = |reason: String| StoreError::Format {
            path: path.clone(),
            reason,
        };
        let sealed: Sealed = serde_json::from_slice(&text).map_err(|e| format(e.to_string()))?;
        if sealed.version != 1 {
            return Err(format(format!("version {}", sealed.version)));
        }
        if sealed.kdf != self.kdf {
            let (made, now, hint) = if self.kdf == "keyfile" {
                (
                    "with a password",
                    "PODPLANE_KEYRING_PASS is unset",
                    "set it to the password used at login",
                )
            } else {
                (
                    "without a password",
                    "PODPLANE_KEYRING_PASS is set",
                    "unset it, or run `podplane login` again with it set",
                )
            };
            return Err(StoreError::KeyMode {
                path,
                made,
                now,
                hint,
            });
        }
        let nonce = B64
            .decode(&sealed.nonce)
            .map_err(|e| format(format!("nonce: {e}")))?;
        if nonce.len() != 24 {
            return Err(format(format!("nonce of {} bytes", nonce.len())));
        }
        let ct = B64
            .decode(&sealed.ciphertext)
            .map_err(|e| format(format!("ciphertext: {e}")))?;
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Decrypt { path: path.clone() })?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| format(e.to_string()))
    }

    pub fn set(&self, key: &str, tokens: &Tokens) -> Result<(), StoreError> {
        let path = self.path(key);
        let plain = serde_json::to_vec(tokens).map_err(|e| StoreError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let nonce = random::<24>()?;
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Decrypt { path: path.clone() })?;
        let sealed = Sealed {
            version: 1,
            kdf: self.kdf.to_string(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
        };
        let body = serde_json::to_vec(&sealed).map_err(|e| StoreError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        vmagent::fsutil::write_atomic(&path, &body, Some(0o600)).map_err(io(&path))
    }

    /// Serialises refreshes of one entry across processes (kubectl may run several hooks at
    /// once; with rotating refresh tokens only the first refresh would succeed). Held until
    /// dropped; waits up to `timeout`.
    pub fn lock(
        &self,
        key: &str,
        timeout: std::time::Duration,
    ) -> Result<vmagent::fsutil::DirLock, StoreError> {
        lock_in(&self.dir, key, timeout)
    }

    /// Removes the entry; `false` when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

/// The store key of one login: `<sub>:<cluster id>`, flat.
pub fn entry_key(sub: &str, cluster_id: &str) -> String {
    format!("{sub}:{cluster_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tokens(id: &str) -> Tokens {
        Tokens {
            id_token: id.into(),
            refresh_token: format!("r-{id}"),
        }
    }

    #[test]
    fn round_trip_flat_keys_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::open(t.path(), None).unwrap();
        let dotted = entry_key("a.b@example.com", "c1");
        s.set(&dotted, &tokens("one")).unwrap();
        s.set(&entry_key("a", "c1"), &tokens("two")).unwrap();
        // A fresh open (another process) reads what the first wrote.
        let s2 = FileStore::open(t.path(), None).unwrap();
        assert_eq!(s2.get(&dotted).unwrap(), Some(tokens("one")));
        assert_eq!(s2.get(&entry_key("a", "c1")).unwrap(), Some(tokens("two")));
        assert_eq!(s2.get(&entry_key("a", "c2")).unwrap(), None);
        let dir = t.path().join("keyring");
        assert_eq!(dir.metadata().unwrap().permissions().mode() & 0o777, 0o700);
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
            let text = std::fs::read(e.path()).unwrap();
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains("one") && !text.contains("r-two"), "{text}");
        }
        assert!(s2.delete(&dotted).unwrap());
        assert!(!s2.delete(&dotted).unwrap());
        assert_eq!(s2.get(&dotted).unwrap(), None);
    }

    #[test]
    fn password_mode_refuses_the_wrong_password_and_the_other_mode() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::open(t.path(), Some("right")).unwrap();
        s.set("u:c", &tokens("x")).unwrap();
        assert_eq!(
            FileStore::open(t.path(), Some("right"))
                .unwrap()
                .get("u:c")
                .unwrap(),
            Some(tokens("x"))
        );
        let wrong = FileStore::open(t.path(), Some("wrong")).unwrap();
        assert!(matches!(wrong.get("u:c"), Err(StoreError::Decrypt { .. })));
        let none = FileStore::open(t.path(), None).unwrap();
        let e = none.get("u:c").unwrap_err().to_string();
        assert!(e.contains("PODPLANE_KEYRING_PASS is unset"), "{e}");
    }

    #[test]
    fn refresh_lock_is_exclusive_per_entry() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::open(t.path(), None).unwrap();
        let short = std::time::Duration::from_millis(200);
        let held = s.lock("u:c", short).unwrap();
        assert!(s.lock("u:c", short).is_err());
        s.lock("v:c", short).unwrap();
        drop(held);
        s.lock("u:c", short).unwrap();
    }

    #[test]
    fn a_file_moved_to_another_entry_does_not_decrypt() {
        let t = tempfile::tempdir().unwrap();
        let s = FileStore::open(t.path(), None).unwrap();
        s.set("alice:c", &tokens("alice")).unwrap();
        std::fs::copy(s.path("alice:c"), s.path("mallory:c")).unwrap();
        assert!(matches!(
            s.get("mallory:c"),
            Err(StoreError::Decrypt { .. })
        ));
        std::fs::write(s.path("alice:c"), "{").unwrap();
        assert!(matches!(s.get("alice:c"), Err(StoreError::Format { .. })));
    }
}
