//! The pinned vmconfig manifest: its types, validation, install items, local file names and
//! mirror URLs. Shared by `vmagent` and the `podplane` CLI; nothing here does I/O except
//! [`Manifest::load`].
//!
//! The JSON shape is upstream's (`{"vmconfig": {...}}`); unknown fields are ignored so newer
//! manifests still load. Parsing is split in two steps: serde reads the raw document (errors name
//! the JSON path), then [`Manifest::validate`] checks the contract and returns the first problem as
//! a typed [`ManifestError`] naming the dependency key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole manifest document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub vmconfig: VmConfig,
}

/// The `vmconfig` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub os: Os,
    /// Keyed by dependency name; a `BTreeMap` keeps byte order, which keeps rendered output stable.
    /// A key given twice is an error (serde_json alone would keep the last one silently).
    #[serde(default, deserialize_with = "unique_keys")]
    pub dependencies: BTreeMap<String, Dependency>,
    /// Runtime container images; absent in older manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arch: String,
    /// The OS disk image (type `qcow2`); never downloaded by a VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Dependency>,
    /// Direct-kernel-boot metadata, used by the CLI's QEMU boot only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<Boot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    #[serde(default)]
    pub cmdline: String,
    pub kernel: BootFile,
    pub initrd: BootFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootFile {
    pub partition: u32,
    pub path: String,
    pub digest: String,
}

/// The kind of a dependency, which decides its local file name and how it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DepType {
    #[serde(rename = "binary")]
    Binary,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "deb")]
    Deb,
    #[serde(rename = "qcow2")]
    Qcow2,
}

impl DepType {
    /// Extension of the local file name under the artifacts directory.
    pub fn extension(self) -> &'static str {
        match self {
            DepType::Binary | DepType::Qcow2 => "",
            DepType::TarGz => ".tar.gz",
            DepType::Deb => ".deb",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DepType::Binary => "binary",
            DepType::TarGz => "tar.gz",
            DepType::Deb => "deb",
            DepType::Qcow2 => "qcow2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub url: String,
    #[serde(rename = "type")]
    pub kind: DepType,
    #[serde(default)]
    pub digest: String,
    /// Bytes. Required (non-zero) for every entry a VM or the CLI downloads: downloads stop at it
    /// and are checked against it.
    #[serde(default)]
    pub size: u64,
    /// Providers this dependency applies to; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// CLI-local cache marker; meaningless on a VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub image: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

/// A digest algorithm accepted in manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A parsed `<algo>:<hex>` digest, hex normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Why a digest string is not acceptable. Each case is its own error so callers and tests can
/// tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest is missing (expected \"sha256:<64 hex>\" or \"sha512:<128 hex>\")")]
    Missing,
    #[error("digest {0:?} has no \":\" between algorithm and hex (expected \"sha256:<hex>\")")]
    NoColon(String),
    #[error("digest algorithm {0:?} is not supported (use sha256 or sha512)")]
    UnknownAlgorithm(String),
    #[error("{algorithm} digest has {actual} hex characters, expected {expected}")]
    WrongLength {
        algorithm: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("digest hex {0:?} contains characters that are not hexadecimal")]
    NotHex(String),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if s.is_empty() {
            return Err(DigestError::Missing);
        }
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::NoColon(s.to_string()));
        };
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::UnknownAlgorithm(other.to_string())),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                algorithm: algorithm.name(),
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::NotHex(hex.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}

/// A contract violation in a manifest. Every variant names what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "manifest {path} is larger than {max} bytes; a vmconfig manifest is a few KiB: check that the path names a manifest"
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error(
        "manifest {path} is not valid: at JSON path `{json_path}`: {message} (expected upstream's {{\"vmconfig\": {{...}}}} manifest)"
    )]
    Json {
        path: PathBuf,
        json_path: String,
        message: String,
    },
    #[error("manifest is missing `vmconfig.{field}` (a non-empty string is required)")]
    MissingField { field: &'static str },
    #[error("manifest `vmconfig.kind` is {0:?}; expected \"knd\" or \"knc\"")]
    BadKind(String),
    #[error("manifest `vmconfig.os.arch` is {0:?}; expected \"amd64\" or \"arm64\"")]
    BadArch(String),
    #[error("dependency {key:?} has no `version`")]
    MissingVersion { key: String },
    #[error("dependency {key:?} has no `url`")]
    MissingUrl { key: String },
    #[error("dependency {key:?} has url {url:?}, which is not an http:// or https:// URL")]
    BadUrl { key: String, url: String },
    #[error("dependency {key:?}: {source}")]
    Digest { key: String, source: DigestError },
    #[error(
        "dependency {key:?} has no `size` (or size 0); every artifact must declare its size in bytes: add it to the manifest"
    )]
    MissingSize { key: String },
    #[error(
        "{at} is {value:?}, which {source}; it is used in file names and paths, so it must be a single path component: fix the manifest"
    )]
    UnsafeName {
        /// Where in the JSON, e.g. ``the key in `vmconfig.dependencies` `` or
        /// `` `vmconfig.dependencies.runc.version` ``.
        at: String,
        value: String,
        #[source]
        source: NameError,
    },
    #[error(
        "dependencies {first:?} and {second:?} would both be stored as {local_name:?}; rename one of them in the manifest"
    )]
    NameClash {
        first: String,
        second: String,
        local_name: String,
    },
}

/// Longest key, version or file name a manifest may use (bytes).
pub const MAX_NAME_LEN: usize = 128;

/// Largest manifest file [`Manifest::load`] reads.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Why a manifest-derived name (a dependency key, a version, the file name at the end of a URL)
/// cannot be used as a single path component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_NAME_LEN} bytes ({0})")]
    TooLong(usize),
    #[error("is \".\" or \"..\" or starts with \".\"")]
    Dot,
    #[error("contains {0:?} (no \"/\", \"\\\", \"?\", \"#\", white space or control characters)")]
    BadChar(char),
    #[error("contains a %-escape {0:?} that stands for a path separator or a dot")]
    Escape(String),
}

/// Check that `s` is one safe path component: 1 to [`MAX_NAME_LEN`] bytes, not `.` or `..` and
/// no leading dot, no `/`, `\`, `?`, `#`, white space or control characters, and no `%`-escape
/// of a dot, slash or backslash (a URL built from it must not gain a dot segment either).
pub fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.len()));
    }
    if s.starts_with('.') {
        return Err(NameError::Dot);
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(NameError::BadChar(c));
    }
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        if let Some(hex) = bytes.get(i + 1..i + 3)
            && matches!(
                hex.to_ascii_lowercase().as_slice(),
                b"2e" | b"2f" | b"5c" | b"00"
            )
        {
            return Err(NameError::Escape(s[i..i + 3].to_string()));
        }
    }
    Ok(())
}

fn check_name_at(at: String, value: &str) -> Result<(), ManifestError> {
    check_name(value).map_err(|source| ManifestError::UnsafeName {
        at,
        value: value.to_string(),
        source,
    })
}

/// Deserialize a JSON object into a map, refusing a key that appears twice.
fn unique_keys<'de, D, V>(de: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of dependencies keyed by name")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format_args!(
                        "dependency key {key:?} appears twice; each key may appear once: remove one of the entries"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    de.deserialize_map(Unique(std::marker::PhantomData))
}

impl ManifestError {
    /// Prefix the error with the manifest file it came from.
    pub fn in_file(self, path: &Path) -> ManifestFileError {
        ManifestFileError {
            path: path.to_path_buf(),
            source: self,
        }
    }
}

/// A [`ManifestError`] together with the file it was found in.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ManifestFileError {
    pub path: PathBuf,
    pub source: ManifestError,
}

/// One thing to download and install on a VM, derived from a dependency entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallItem {
    pub key: String,
    pub version: String,
    pub kind: DepType,
    /// The upstream URL from the manifest.
    pub url: String,
    pub digest: Digest,
    /// Expected size in bytes (never 0 in a validated manifest).
    pub size: u64,
}

impl InstallItem {
    /// The file name under the artifacts directory: `<key><ext>`, whatever the URL ends in
    /// (`cni-plugins.tar.gz` for a `.tgz` URL).
    pub fn local_name(&self) -> String {
        format!("{}{}", self.key, self.kind.extension())
    }

    /// Where to download from: the mirror form when a mirror base is given, else the manifest URL.
    pub fn source_url(&self, mirror: Option<&str>) -> String {
        match mirror {
            Some(base) => mirror_url(base, &self.key, &self.version, &self.url),
            None => self.url.clone(),
        }
    }
}

/// `<base>/vmconfig/artifacts/<key>/<version>/<basename(url)>`.
pub fn mirror_url(base: &str, key: &str, version: &str, upstream_url: &str) -> String {
    format!(
        "{}/vmconfig/artifacts/{}/{}/{}",
        base.trim_end_matches('/'),
        key,
        version,
        url_basename(upstream_url)
    )
}

/// The last path segment of a URL, without query or fragment, as written. Not through
/// `url::Url`: it percent-encodes and resolves `.` segments, while the mirror layout (and the
/// userdata template's regex `([^/?#]*)(?:[?#].*)?$`, which must agree byte for byte) uses the
/// segment exactly as the manifest spells it.
pub fn url_basename(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    path.rsplit('/').next().unwrap_or(path)
}

/// Does a dependency's provider list include `provider`? Empty list (or `all`) means every
/// provider; comparison is trimmed and case-insensitive, and comma-separated values are split.
pub fn provider_matches(providers: &[String], provider: &str) -> bool {
    let wanted = provider.trim();
    if providers.iter().all(|p| p.trim().is_empty()) {
        return true;
    }
    providers
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .any(|p| p.eq_ignore_ascii_case(wanted) || p.eq_ignore_ascii_case("all"))
}

impl Dependency {
    /// The "unreleased stub": the agent's own entry (`vmconfig` upstream, `vmagent` here) with
    /// no url and no digest, as embedded in its own tarball.
    pub fn is_unreleased_stub(&self, key: &str) -> bool {
        matches!(key, "vmconfig" | "vmagent") && self.url.is_empty() && self.digest.is_empty()
    }
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

    /// The items a VM of `provider` downloads and installs, sorted by key (byte order). `None`
    /// applies no provider filter.
    pub fn install_items(&self, provider: Option<&str>) -> Vec<InstallItem> {
        self.vmconfig
            .dependencies
            .iter()
            .filter(|(key, dep)| dep.kind != DepType::Qcow2 && !dep.is_unreleased_stub(key))
            .filter(|(_, dep)| provider.is_none_or(|p| provider_matches(&dep.providers, p)))
            .filter_map(|(key, dep)| {
                // validate() has checked every digest; an unvalidated manifest with a bad digest
                // simply yields no item for that key rather than a panic.
                let digest = Digest::parse(&dep.digest).ok()?;
                Some(InstallItem {
                    key: key.clone(),
                    version: dep.version.clone(),
                    kind: dep.kind,
                    url: dep.url.clone(),
                    digest,
                    size: dep.size,
                })
            })
            .collect()
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

#[cfg(test)]
mod tests;
