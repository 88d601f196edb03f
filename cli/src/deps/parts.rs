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
    Ok(Plan {
        components,
        components_source,
        templates,
        templates_source,
        vmconfig_images,
        component_images,
        template_images,
    })
}

/// `deps download`, the arch-independent parts.
pub async fn download(deps: &Deps, o: &PartsOptions, out: &mut dyn Write) -> Result<(), DepsError> {
    let plan = plan(deps, o).await?;
    let root = images::registry_dir(&deps.dir);
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
    write_annotated(deps, &plan)?;
    mark_node_images(deps, &o.nodes)?;
    Ok(())
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
fn write_annotated(deps: &Deps, plan: &Plan) -> Result<(), DepsError> {
    let mut c = catalog::components_unannotated(&plan.components);
    for (n, _) in &plan.component_images {
        c.components.images[*n].cached = Some(true);
    }
    catalog::write_annotated(deps, "components", "components", '-', &c)?;
    let mut t = catalog::templates_unannotated(&plan.templates);
    for (n, _) in &plan.template_images {
        t.templates.images[*n].cached = Some(true);
    }
    catalog::write_annotated(deps, "templates", "templates", '_', &t)?;
    Ok(())
}

/// The cached copy of a manifest, if any.
pub fn cached_manifest<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = super::read_capped(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}
