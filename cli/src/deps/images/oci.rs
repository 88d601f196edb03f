//! The OCI documents read and written: descriptors, image manifests and indexes (Docker's v2
//! schema 2 and manifest lists are the same shapes under other media types), and a layout's
//! `index.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// The annotation that names a tag in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Most entries a manifest or index may list (real ones have tens).
pub const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn tag(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
    }
}

/// A manifest or an index, told apart by media type (or, without one, by shape).
#[derive(Debug, Clone, Deserialize)]
pub struct Document {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
}

pub enum Kind {
    Index(Vec<Descriptor>),
    Manifest {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

impl Document {
    /// What the document is, and its media type (from the document, else the `Content-Type`).
    pub fn classify(self, content_type: Option<&str>) -> Result<(Kind, String), String> {
        let mt = self
            .media_type
            .clone()
            .or(content_type.map(str::to_string))
            .unwrap_or_default();
        let kind = match (mt.as_str(), self.manifests, self.config, self.layers) {
            (OCI_INDEX | DOCKER_LIST | "", Some(m), None, None) => Kind::Index(m),
            (OCI_MANIFEST | DOCKER_MANIFEST | "", None, Some(config), layers) => Kind::Manifest {
                config,
                layers: layers.unwrap_or_default(),
            },
            _ => {
                return Err(format!(
                    "not an image manifest or index (media type {mt:?})"
                ));
            }
        };
        let n = match &kind {
            Kind::Index(m) => m.len(),
            Kind::Manifest { layers, .. } => layers.len(),
        };
        if n > MAX_ENTRIES {
            return Err(format!("lists {n} entries (at most {MAX_ENTRIES})"));
        }
        let mt = if mt.is_empty() {
            match kind {
                Kind::Index(_) => OCI_INDEX.to_string(),
                Kind::Manifest { .. } => OCI_MANIFEST.to_string(),
            }
        } else {
            mt
        };
        Ok((kind, mt))
    }
}

/// A layout's `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Default for LayoutIndex {
    fn default() -> Self {
        LayoutIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
        }
    }
}
