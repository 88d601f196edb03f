//! The manifest document as serde reads it: [`Manifest`] and its `vmconfig` object, the OS
//! image, boot files, and each [`Dependency`] with its [`DepType`]. Unknown fields are ignored
//! and a dependency key that appears twice is refused; checking the contract is `load`'s job.

use std::collections::BTreeMap;
use std::fmt;

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

impl Dependency {
    /// The "unreleased stub": the agent's own entry (`vmconfig` upstream, `vmagent` here) with
    /// no url and no digest, as embedded in its own tarball.
    pub fn is_unreleased_stub(&self, key: &str) -> bool {
        matches!(key, "vmconfig" | "vmagent") && self.url.is_empty() && self.digest.is_empty()
    }
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
