//! The arch-independent parts of `deps download`, run once after the node manifests: the
//! components and templates manifests, and every image of the node manifests, the components
//! (by arch, provider and addon selection) and the templates, cached in the registry layout
//! ([`super::images`]). The annotated manifests are written last, after what they mark cached.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::catalog::{self, ComponentsFile, Selection, TemplatesFile};
use super::images::{self, Wanted};
use super::{Deps, DepsError};

/// What the arch-independent parts cover.
#[derive(Debug, Clone, Default)]
pub struct PartsOptions {
    /// The node manifests (kind, arch) whose images are cached.
    pub nodes: Vec<(String, String)>,
    pub vmconfig: Option<PathBuf>,
    pub components: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    pub selection: Selection,
    pub dry_run: bool,
    /// Leave the components source's Git mirror alone.
    pub skip_components_git: bool,
}

/// Everything the parts pin: manifests and the images selected from each.
pub struct Plan {
    pub components: ComponentsFile,
    pub components_source: String,
    pub templates: TemplatesFile,
    pub templates_source: String,
    pub vmconfig_images: Vec<Wanted>,
    /// Selected rows (position in the manifest) and their images.
    pub component_images: Vec<(usize, Wanted)>,
    pub template_images: Vec<(usize, Wanted)>,
    /// The templates' OCI charts.
    pub charts: Vec<ChartPin>,
}

/// One OCI chart of the templates manifest: its row, its repository with the version as tag,
/// and its digest when the manifest pins one (else the tag is resolved when downloading).
#[derive(Debug, Clone)]
pub struct ChartPin {
    pub row: usize,
    pub reference: images::reference::ImageRef,
    pub digest: Option<images::reference::BlobDigest>,
}

/// Media type of a Helm chart's content layer.
const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The `type: oci` charts: `url` `oci://<host>/<repository>`, `version` (an OCI tag, with `+`
/// written `_` as Helm does), optional `digest`. Local `type: chart` rows are left out.
pub fn chart_pins(t: &TemplatesFile) -> Result<Vec<ChartPin>, DepsError> {
    let mut out = Vec::new();
    for (row, c) in t.templates.charts.iter().enumerate() {
        if c["type"] != "oci" {
            continue;
        }
        let name = c["name"].as_str().unwrap_or("?");
        let what = format!("template chart {name:?}");
        let url = c["url"].as_str().unwrap_or("");
        let version = c["version"].as_str().unwrap_or("").replace('+', "_");
        let repo = url.strip_prefix("oci://").ok_or_else(|| DepsError::Item {
            name: what.clone(),
            what: "an oci chart needs an oci:// url",
        })?;
        let err = |source| images::ImageError::Ref {
            what: what.clone(),
            source,
        };
        let reference =
            images::reference::ImageRef::parse(&format!("{repo}:{version}")).map_err(err)?;
        if reference.tag.is_none() || reference.digest.is_some() {
            return Err(DepsError::Item {
                name: what,
                what: "an oci chart needs a version and a url without tag or digest",
            });
        }
        let digest = match c["digest"].as_str().filter(|d| !d.is_empty()) {
            Some(d) => Some(images::reference::BlobDigest::parse(d).map_err(err)?),
            None => None,
        };
        out.push(ChartPin {
            row,
            reference,
            digest,
        });
    }
    Ok(out)
}

impl Plan {
    /// Every image once.
    pub fn images(&self) -> Vec<Wanted> {
        let all = self
            .vmconfig_images
            .iter()
            .cloned()
            .chain(self.component_images.iter().map(|(_, w)| w.clone()))
            .chain(self.template_images.iter().map(|(_, w)| w.clone()))
            .collect();
        images::merge(all)
    }
}

/// Load the manifests and select their images.
pub async fn plan(deps: &Deps, o: &PartsOptions) -> Result<Plan, DepsError> {
    let mut vmconfig_images = Vec::new();
    for (kind, arch) in &o.nodes {
        // After a download the node manifest was just cached: read it there, not again.
        let cached = deps.manifest_path(kind, arch);
        let m = match (o.dry_run, cached.exists()) {
            (false, true) => vmagent::manifest::Manifest::load(&cached)?,
            _ => {
                super::load(deps, kind, arch, o.vmconfig.as_deref())
                    .await?
                    .0
            }
        };
        for i in &m.vmconfig.images {
            vmconfig_images.push(catalog::row(
                "vmconfig image",
                &i.image,
                &i.digest,
                i.size,
                i.index.as_deref(),
            )?);
        }
    }
    let (components, components_source): (ComponentsFile, _) =
        catalog::load(deps, "components.json", o.components.as_deref()).await?;
    let (templates, templates_source): (TemplatesFile, _) =
        catalog::load(deps, "templates.json", o.templates.as_deref()).await?;
    let component_images = catalog::component_images(&components.components, &o.selection)?;
    let template_images = catalog::template_images(&templates.templates, &o.selection)?;
    let charts = chart_pins(&templates)?;
    Ok(Plan {
        components,
        components_source,
        templates,
        templates_source,
        vmconfig_images,
        component_images,
        template_images,
        charts,
    })
}

/// `deps download`, the arch-independent parts.
pub async fn download(deps: &Deps, o: &PartsOptions, out: &mut dyn Write) -> Result<(), DepsError> {
    let plan = plan(deps, o).await?;
    let root = images::mirror_dir(&deps.dir);
    let wanted = plan.images();
    if let Some(src) = &plan.components.components.source
        && !o.dry_run
        && !o.skip_components_git
    {
        let _ = writeln!(out, "Mirroring the components source {}...", src.url);
        let path = super::git::mirror(&deps.dir.join("git"), src).await?;
        let _ = writeln!(out, "Components source cached in {}.", path.display());
    }
    if o.dry_run {
        let archs = &o.selection.archs;
        let missing = wanted
            .iter()
            .filter(|w| images::check(&root, w, archs, false).is_err())
            .count();
        let _ = writeln!(out, "Components manifest: {}", plan.components_source);
        let _ = writeln!(out, "Registry cache directory: {}", root.display());
        let _ = writeln!(out, "VMConfig images: {}", plan.vmconfig_images.len());
        let _ = writeln!(out, "Component images: {}", plan.component_images.len());
        let _ = writeln!(out, "Templates manifest: {}", plan.templates_source);
        let _ = writeln!(
            out,
            "Template chart cache directory: {}",
            charts_dir(deps).display()
        );
        let _ = writeln!(out, "Template charts: {}", plan.charts.len());
        let _ = writeln!(out, "Template images: {}", plan.template_images.len());
        let _ = writeln!(out, "Images that would be downloaded: {missing}");
        return Ok(());
    }
    let report = images::download(
        &root,
        &wanted,
        &o.selection.archs,
        super::interactive(),
        out,
    )
    .await?;
    let _ = writeln!(
        out,
        "Images: {} ({} found in cache, {} downloaded: {} blobs, {} bytes).",
        report.images, report.cached, report.downloaded, report.blobs, report.bytes
    );
    let layers = download_charts(deps, &plan.charts, out).await?;
    write_annotated(deps, &plan, &layers)?;
    mark_node_images(deps, &o.nodes)?;
    Ok(())
}

/// `<deps>/templates/charts`: one OCI layout per chart repository, `<host>/<repository>`.
pub fn charts_dir(deps: &Deps) -> PathBuf {
    deps.dir.join("templates/charts")
}

/// Pull the OCI charts into their layouts; returns each chart row's content layer digest.
async fn download_charts(
    deps: &Deps,
    charts: &[ChartPin],
    out: &mut dyn Write,
) -> Result<Vec<(usize, String)>, DepsError> {
    if charts.is_empty() {
        return Ok(Vec::new());
    }
    let registry = images::registry::Registry::new()?;
    let mut wanted = Vec::new();
    for c in charts {
        let digest = match &c.digest {
            Some(d) => d.clone(),
            None => {
                let tag = c.reference.tag.as_deref().unwrap_or_default();
                registry.resolve_tag(&c.reference, tag).await?
            }
        };
        wanted.push(Wanted {
            reference: c.reference.clone(),
            digest,
            children: None,
        });
    }
    let root = charts_dir(deps);
    let report = images::download(&root, &wanted, &[], super::interactive(), out).await?;
    let _ = writeln!(
        out,
        "Template charts: {} ({} found in cache, {} downloaded).",
        report.images, report.cached, report.downloaded
    );
    let mut layers = Vec::new();
    for (c, w) in charts.iter().zip(&wanted) {
        let repo = images::repo_of(&root, &w.reference);
        let layer = repo
            .read_document(&w.digest)
            .ok()
            .and_then(|b| serde_json::from_slice::<images::oci::Document>(&b).ok())
            .and_then(|d| d.layers)
            .and_then(|ls| ls.into_iter().find(|l| l.media_type == HELM_CHART_LAYER))
            .ok_or_else(|| DepsError::Item {
                name: format!("template chart {}", w.label()),
                what: "no Helm chart content layer",
            })?;
        layers.push((c.row, layer.digest));
    }
    Ok(layers)
}

/// Mark the node manifests' images cached in their cached copies (the latest only: the
/// history copy of this run was written by the node part, and `cached` is a local note).
fn mark_node_images(deps: &Deps, nodes: &[(String, String)]) -> Result<(), DepsError> {
    for (kind, arch) in nodes {
        let path = deps.manifest_path(kind, arch);
        let Ok(mut m) = vmagent::manifest::Manifest::load(&path) else {
            continue;
        };
        if m.vmconfig.images.is_empty() {
            continue;
        }
        for i in &mut m.vmconfig.images {
            i.cached = Some(true);
        }
        let text = serde_json::to_string_pretty(&m).map_err(|e| DepsError::Write {
            path: path.clone(),
            source: e.into(),
        })? + "\n";
        vmagent::fsutil::write_atomic(&path, text.as_bytes(), None)
            .map_err(|source| DepsError::Write { path, source })?;
    }
    Ok(())
}

/// The components and templates manifests with `cached` marked on the rows now in the cache.
fn write_annotated(
    deps: &Deps,
    plan: &Plan,
    chart_layers: &[(usize, String)],
) -> Result<(), DepsError> {
    let mut c = catalog::components_unannotated(&plan.components);
    for (n, _) in &plan.component_images {
        c.components.images[*n].cached = Some(true);
    }
    catalog::write_annotated(deps, "components", "components", '-', &c)?;
    let mut t = catalog::templates_unannotated(&plan.templates);
    for (n, _) in &plan.template_images {
        t.templates.images[*n].cached = Some(true);
    }
    for (n, layer) in chart_layers {
        if let Some(c) = t.templates.charts[*n].as_object_mut() {
            c.insert("cached".into(), true.into());
            c.insert("chartLayerDigest".into(), layer.clone().into());
        }
    }
    catalog::write_annotated(deps, "templates", "templates", '_', &t)?;
    Ok(())
}

/// The cached copy of a manifest, if any.
pub fn cached_manifest<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = super::read_capped(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}
