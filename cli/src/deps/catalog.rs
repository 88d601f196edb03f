//! The components and templates manifests (`components.json`, `templates.json`): their schema,
//! which of their images a cache keeps (by arch, provider and addon selection), and their
//! annotated copies in the cache (`<deps>/components/manifests/components.json`,
//! `<deps>/templates/manifests/templates.json`, each with timestamped history copies).
//! Unknown keys are kept, so the cached copy says everything the published one did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::images::Wanted;
use super::{Deps, DepsError};

/// Addons cached unless `--addons` adds others (or `all`).
pub const RECOMMENDED_ADDONS: [&str; 7] = [
    "agent-sandbox",
    "cert-manager",
    "platform-certs",
    "podplane-operator",
    "secrets-store-csi-driver",
    "traefik",
    "trust-manager",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentsFile {
    pub components: Components,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Components {
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default)]
    pub images: Vec<ComponentImage>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: GitRef,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GitRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentImage {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    pub image: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub addon: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatesFile {
    pub templates: Templates,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Templates {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub charts: Vec<Value>,
    #[serde(default)]
    pub images: Vec<TemplateImage>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateImage {
    pub image: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Which images a cache keeps.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub archs: Vec<String>,
    /// Provider names, or `all`.
    pub providers: Vec<String>,
    /// Addons beyond the recommended ones, or `all`.
    pub addons: Vec<String>,
}

impl Selection {
    /// `os/arch[/variant]`: kept when its arch is requested; no platform: always.
    fn arch_ok(&self, platform: Option<&str>) -> bool {
        match platform.and_then(|p| p.split('/').nth(1)) {
            None => true,
            Some(a) => self.archs.iter().any(|x| x == a),
        }
    }

    fn provider_ok(&self, providers: &[String]) -> bool {
        providers.iter().all(|p| p.trim().is_empty())
            || self.providers.iter().any(|p| p == "all")
            || self
                .providers
                .iter()
                .any(|p| vmagent::manifest::provider_matches(providers, p))
    }

    fn addon_ok(&self, components: &[String]) -> bool {
        self.addons.iter().any(|a| a == "all")
            || components.iter().any(|c| {
                RECOMMENDED_ADDONS.contains(&c.as_str()) || self.addons.iter().any(|a| a == c)
            })
    }

    pub fn component_image(&self, i: &ComponentImage) -> bool {
        self.arch_ok(i.platform.as_deref())
            && self.provider_ok(&i.providers)
            && (!i.addon || self.addon_ok(&i.components))
    }

    pub fn template_image(&self, i: &TemplateImage) -> bool {
        self.arch_ok(i.platform.as_deref())
    }
}

/// The selected rows as images to cache, with their positions in the manifest.
pub fn component_images(
    c: &Components,
    sel: &Selection,
) -> Result<Vec<(usize, Wanted)>, DepsError> {
    let mut out = Vec::new();
    for (n, i) in c.images.iter().enumerate() {
        if sel.component_image(i) {
            out.push((
                n,
                row(
                    "component image",
                    &i.image,
                    &i.digest,
                    i.size,
                    i.index.as_deref(),
                )?,
            ));
        }
    }
    Ok(out)
}

pub fn template_images(t: &Templates, sel: &Selection) -> Result<Vec<(usize, Wanted)>, DepsError> {
    let mut out = Vec::new();
    for (n, i) in t.images.iter().enumerate() {
        if sel.template_image(i) {
            out.push((
                n,
                row(
                    "template image",
                    &i.image,
                    &i.digest,
                    i.size,
                    i.index.as_deref(),
                )?,
            ));
        }
    }
    Ok(out)
}

/// One image row, checked: image, digest and size present.
pub fn row(
    what: &str,
    image: &str,
    digest: &str,
    size: u64,
    index: Option<&str>,
) -> Result<Wanted, DepsError> {
    if size == 0 {
        return Err(DepsError::Item {
            name: format!("{what} {image:?}"),
            what: "missing size",
        });
    }
    Ok(Wanted::from_row(what, image, digest, index)?)
}

/// Read a manifest from a file or the deps server, parsed into `T`.
pub async fn load<T: serde::de::DeserializeOwned>(
    deps: &Deps,
    name: &str,
    file: Option<&Path>,
) -> Result<(T, String), DepsError> {
    let (bytes, source) = match file {
        Some(f) => {
            let bytes = super::read_capped(f).map_err(|source| DepsError::Read {
                path: f.to_path_buf(),
                source,
            })?;
            (bytes, f.display().to_string())
        }
        None => {
            let url = format!("{}/manifests/{name}", deps.base_url.trim_end_matches('/'));
            (vmagent::fetch::get_document(&url, 4).await?, url)
        }
    };
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let v = serde_path_to_error::deserialize(de).map_err(|e| DepsError::Parse {
        source_name: source.clone(),
        path: e.path().to_string(),
        reason: e.into_inner().to_string(),
    })?;
    Ok((v, source))
}

/// `<deps>/<part>/manifests/<name>.json` and a history copy `<name><sep><UTC><sep><sha12>.json`.
pub fn write_annotated(
    deps: &Deps,
    part: &str,
    name: &str,
    sep: char,
    value: &impl Serialize,
) -> Result<PathBuf, DepsError> {
    let latest = deps.dir.join(format!("{part}/manifests/{name}.json"));
    let text = serde_json::to_string_pretty(value).map_err(|e| DepsError::Write {
        path: latest.clone(),
        source: e.into(),
    })? + "\n";
    let hex = super::images::reference::BlobDigest::of(text.as_bytes())
        .hex()
        .to_string();
    let history = latest.with_file_name(format!(
        "{name}{sep}{}{sep}{}.json",
        super::utc_stamp(),
        &hex[..12]
    ));
    for path in [&latest, &history] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| DepsError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        vmagent::fsutil::write_atomic(path, text.as_bytes(), None).map_err(|source| {
            DepsError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(latest)
}

/// The components manifest with its local annotations cleared, for comparison.
pub fn components_unannotated(c: &ComponentsFile) -> ComponentsFile {
    let mut c = c.clone();
    for i in &mut c.components.images {
        i.cached = None;
    }
    c
}

pub fn templates_unannotated(t: &TemplatesFile) -> TemplatesFile {
    let mut t = t.clone();
    for i in &mut t.templates.images {
        i.cached = None;
    }
    for c in &mut t.templates.charts {
        if let Some(o) = c.as_object_mut() {
            o.remove("cached");
            o.remove("chartLayerDigest");
        }
    }
    t
}
