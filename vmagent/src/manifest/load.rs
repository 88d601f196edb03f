//! Reading a manifest: [`Manifest::load`] (bounded by [`MAX_MANIFEST_BYTES`]) and
//! [`Manifest::from_slice`] parse the document with serde, then [`Manifest::validate`] checks the
//! contract (names, digests, sizes, URLs) and returns the first problem, naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use super::digest::Digest;
use super::document::{DepType, Dependency, Manifest};
use super::error::{ManifestError, ManifestFileError};
use super::items::url_basename;
use super::name::check_name;

/// Largest manifest file [`Manifest::load`] reads.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

fn check_name_at(at: String, value: &str) -> Result<(), ManifestError> {
    check_name(value).map_err(|source| ManifestError::UnsafeName {
        at,
        value: value.to_string(),
        source,
    })
}

impl Manifest {
    /// Parse and validate a manifest from JSON bytes. `origin` names the file in errors.
    pub fn from_slice(bytes: &[u8], origin: &Path) -> Result<Manifest, ManifestFileError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let json_path = e.path().to_string();
            let inner = e.into_inner();
            ManifestError::Json {
                path: origin.to_path_buf(),
                json_path: if json_path.is_empty() || json_path == "." {
                    "(document)".into()
                } else {
                    json_path
                },
                message: inner.to_string(),
            }
            .in_file(origin)
        })?;
        manifest.validate().map_err(|e| e.in_file(origin))?;
        Ok(manifest)
    }

    /// Read, parse and validate a manifest file of at most [`MAX_MANIFEST_BYTES`].
    pub fn load(path: &Path) -> Result<Manifest, ManifestFileError> {
        use std::io::Read;
        let read_err = |source| {
            ManifestError::Read {
                path: path.to_path_buf(),
                source,
            }
            .in_file(path)
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                path: path.to_path_buf(),
                max: MAX_MANIFEST_BYTES,
            }
            .in_file(path));
        }
        Manifest::from_slice(&bytes, path)
    }

    /// Check the contract: required top-level fields; every name used in a path (each key, and
    /// every version and URL file name that is given) is one safe path component; then every
    /// dependency that a VM could install (all but the OS image type and the unreleased vmconfig
    /// stub), in key order, and that no two of them share a local file name.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let v = &self.vmconfig;
        for (field, value) in [
            ("version", &v.version),
            ("kind", &v.kind),
            ("os.name", &v.os.name),
            ("os.arch", &v.os.arch),
        ] {
            if value.trim().is_empty() {
                return Err(ManifestError::MissingField { field });
            }
        }
        if crate::contract::Kind::parse(&v.kind).is_none() {
            return Err(ManifestError::BadKind(v.kind.clone()));
        }
        if crate::contract::Arch::parse(&v.os.arch).is_none() {
            return Err(ManifestError::BadArch(v.os.arch.clone()));
        }
        if let Some(image) = &v.os.image {
            check_names("vmconfig.os.image", image)?;
        }
        for (key, dep) in &v.dependencies {
            check_name_at("the key in `vmconfig.dependencies`".into(), key)?;
            check_names(&format!("vmconfig.dependencies.{key}"), dep)?;
        }
        let mut local_names: BTreeMap<String, &str> = BTreeMap::new();
        for (key, dep) in &v.dependencies {
            if dep.kind == DepType::Qcow2 || dep.is_unreleased_stub(key) {
                continue;
            }
            check_dependency(key, dep)?;
            let local_name = format!("{key}{}", dep.kind.extension());
            if let Some(first) = local_names.insert(local_name.clone(), key) {
                return Err(ManifestError::NameClash {
                    first: first.to_string(),
                    second: key.clone(),
                    local_name,
                });
            }
        }
        Ok(())
    }
}

/// The names of an entry that end up in paths: its version and the file name of its URL, when
/// given (whether they are required is [`check_dependency`]'s business).
fn check_names(at: &str, dep: &Dependency) -> Result<(), ManifestError> {
    if !dep.version.is_empty() {
        check_name_at(format!("`{at}.version`"), &dep.version)?;
    }
    if !dep.url.is_empty() {
        check_name_at(
            format!("the file name at the end of `{at}.url`"),
            url_basename(&dep.url),
        )?;
    }
    Ok(())
}

fn check_dependency(key: &str, dep: &Dependency) -> Result<(), ManifestError> {
    if dep.version.trim().is_empty() {
        return Err(ManifestError::MissingVersion { key: key.into() });
    }
    if dep.url.trim().is_empty() {
        return Err(ManifestError::MissingUrl { key: key.into() });
    }
    if !(dep.url.starts_with("http://") || dep.url.starts_with("https://")) {
        return Err(ManifestError::BadUrl {
            key: key.into(),
            url: dep.url.clone(),
        });
    }
    Digest::parse(&dep.digest).map_err(|source| ManifestError::Digest {
        key: key.into(),
        source,
    })?;
    if dep.size == 0 {
        return Err(ManifestError::MissingSize { key: key.into() });
    }
    Ok(())
}
