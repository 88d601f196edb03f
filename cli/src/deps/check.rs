//! `deps status` beyond the node manifest (the components and templates manifests against the
//! published ones, the images they mark cached against the registry layout) and `deps verify`
//! (every cached artifact and image blob re-hashed, each problem named with the command that
//! repairs it).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::{self, ComponentsFile, TemplatesFile};
use super::images::{self, Wanted};
use super::parts::cached_manifest;
use super::{CacheState, Deps, DepsError};

/// How one cached part compares with what is published.
#[derive(Debug, Clone, Serialize)]
pub struct PartStatus {
    /// `components`, `templates` or `images`.
    pub part: String,
    pub state: CacheState,
    /// What differs, for people.
    pub detail: String,
}

fn components_path(deps: &Deps) -> PathBuf {
    deps.dir.join("components/manifests/components.json")
}

fn templates_path(deps: &Deps) -> PathBuf {
    deps.dir.join("templates/manifests/templates.json")
}

/// The components and templates manifests against the published ones, and the images they
/// mark cached against the layout (sizes only; `verify` hashes).
pub async fn parts_status(deps: &Deps) -> Result<Vec<PartStatus>, DepsError> {
    let mut out = Vec::new();
    let (pc, url): (ComponentsFile, _) = catalog::load(deps, "components.json", None).await?;
    let cc: Option<ComponentsFile> = cached_manifest(&components_path(deps));
    out.push(compare(
        "components",
        &url,
        cc.as_ref().map(catalog::components_unannotated),
        catalog::components_unannotated(&pc),
    ));
    let (pt, url): (TemplatesFile, _) = catalog::load(deps, "templates.json", None).await?;
    let ct: Option<TemplatesFile> = cached_manifest(&templates_path(deps));
    out.push(compare(
        "templates",
        &url,
        ct.as_ref().map(catalog::templates_unannotated),
        catalog::templates_unannotated(&pt),
    ));
    let root = images::mirror_dir(&deps.dir);
    let marked = marked_images(&node_manifests(deps), cc.as_ref(), ct.as_ref());
    let missing = marked
        .iter()
        .filter(|w| check_written(&root, w, false).is_err())
        .count();
    out.push(PartStatus {
        part: "images".into(),
        state: if missing == 0 {
            CacheState::UpToDate
        } else {
            CacheState::UpdatesAvailable
        },
        detail: if missing == 0 {
            format!("{} cached images present", marked.len())
        } else {
            format!("{missing} of {} cached images missing", marked.len())
        },
    });
    Ok(out)
}

fn compare<T: PartialEq>(part: &str, url: &str, cached: Option<T>, published: T) -> PartStatus {
    let (state, detail) = match cached {
        None => (CacheState::NotCached, format!("not cached yet ({url})")),
        Some(c) if c == published => (CacheState::UpToDate, format!("same as {url}")),
        Some(_) => (CacheState::UpdatesAvailable, format!("{url} differs")),
    };
    PartStatus {
        part: part.into(),
        state,
        detail,
    }
}

/// The images the cached manifests mark cached (rows that do not parse are skipped: a download
/// refused them).
fn marked_images(
    nodes: &[NodeManifest],
    c: Option<&ComponentsFile>,
    t: Option<&TemplatesFile>,
) -> Vec<Wanted> {
    let mut out = Vec::new();
    for n in nodes {
        if let Ok(m) = &n.manifest {
            for i in m.vmconfig.images.iter().filter(|i| i.cached == Some(true)) {
                if let Ok(w) =
                    Wanted::from_row("vmconfig image", &i.image, &i.digest, i.index.as_deref())
                {
                    out.push(w);
                }
            }
        }
    }
    if let Some(c) = c {
        for i in c
            .components
            .images
            .iter()
            .filter(|i| i.cached == Some(true))
        {
            if let Ok(w) =
                Wanted::from_row("component image", &i.image, &i.digest, i.index.as_deref())
            {
                out.push(w);
            }
        }
    }
    if let Some(t) = t {
        for i in t.templates.images.iter().filter(|i| i.cached == Some(true)) {
            if let Ok(w) =
                Wanted::from_row("template image", &i.image, &i.digest, i.index.as_deref())
            {
                out.push(w);
            }
        }
    }
    images::merge(out)
}

/// The image is whole as written: its entry, and every platform manifest its repository's
/// `index.json` lists from the pinned index, with their blobs.
fn check_written(root: &Path, w: &Wanted, hash: bool) -> Result<(), images::layout::Missing> {
    let repo = images::repo_of(root, &w.reference);
    let listed: Vec<String> = repo
        .read_index()
        .map(|i| i.manifests.into_iter().map(|d| d.digest).collect())
        .unwrap_or_default();
    let keep = |d: &images::oci::Descriptor| listed.contains(&d.digest);
    repo.check_image(&w.digest, &keep, hash)
}

/// A cached node manifest (the latest copy of one kind and arch).
struct NodeManifest {
    kind: String,
    arch: String,
    path: PathBuf,
    manifest: Result<vmagent::manifest::Manifest, String>,
}

/// Every `<deps>/vmconfig/manifests/vmconfig_<kind>_debian-13_<arch>.json` (history copies,
/// which have a timestamp after the arch, are left out).
fn node_manifests(deps: &Deps) -> Vec<NodeManifest> {
    let dir = deps.dir.join("vmconfig/manifests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(stem) = name
            .strip_prefix("vmconfig_")
            .and_then(|s| s.strip_suffix(".json"))
        else {
            continue;
        };
        let parts: Vec<&str> = stem.split('_').collect();
        let [kind, "debian-13", arch] = parts[..] else {
            continue;
        };
        let path = dir.join(&name);
        out.push(NodeManifest {
            kind: kind.to_string(),
            arch: arch.to_string(),
            manifest: vmagent::manifest::Manifest::load(&path).map_err(|e| e.to_string()),
            path,
        });
    }
    out
}

/// One thing `verify` found wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub what: String,
    pub why: String,
    pub repair: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; repair: {}", self.what, self.why, self.repair)
    }
}

/// Re-hash everything the cached manifests mark cached: node artifacts and image blobs.
/// Returns how many items were checked and what is wrong.
pub async fn verify(deps: &Deps) -> Result<(usize, Vec<Problem>), DepsError> {
    let mut checked = 0;
    let mut problems = Vec::new();
    let dir = deps.dir.join("vmconfig/manifests");
    let nodes = node_manifests(deps);
    for n in &nodes {
        let (kind, arch) = (&n.kind, &n.arch);
        let repair = format!("podplane deps download --arch {arch}");
        let m = match &n.manifest {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem {
                    what: n.path.display().to_string(),
                    why: e.clone(),
                    repair: repair.clone(),
                });
                continue;
            }
        };
        let mut items: Vec<(String, vmagent::manifest::Dependency)> = m
            .vmconfig
            .dependencies
            .iter()
            .filter(|(_, d)| d.cached == Some(true))
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect();
        if let Some(img) = m
            .vmconfig
            .os
            .image
            .as_ref()
            .filter(|i| i.cached == Some(true))
        {
            items.push(("os-image".into(), img.clone()));
        }
        for (key, dep) in items {
            checked += 1;
            let path = match deps.artifact_path(&key, &dep) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(Problem {
                        what: format!("{kind} {arch} {key}"),
                        why: e.to_string(),
                        repair: repair.clone(),
                    });
                    continue;
                }
            };
            if !super::in_cache(&path, &dep) {
                let why = if path.exists() {
                    "corrupt (digest or size differs)"
                } else {
                    "missing"
                };
                problems.push(Problem {
                    what: path.display().to_string(),
                    why: why.into(),
                    repair: repair.clone(),
                });
            }
        }
    }
    let found_node = !nodes.is_empty();
    if !found_node {
        problems.push(Problem {
            what: dir.display().to_string(),
            why: "no node manifest cached".into(),
            repair: "podplane deps download".into(),
        });
    }
    let cc: Option<ComponentsFile> = cached_manifest(&components_path(deps));
    let ct: Option<TemplatesFile> = cached_manifest(&templates_path(deps));
    for (path, present) in [
        (components_path(deps), cc.is_some()),
        (templates_path(deps), ct.is_some()),
    ] {
        if !present {
            problems.push(Problem {
                what: path.display().to_string(),
                why: "missing or unreadable".into(),
                repair: "podplane deps download".into(),
            });
        }
    }
    if let Some(src) = cc.as_ref().and_then(|c| c.components.source.as_ref()) {
        checked += 1;
        if let Err(e) = super::git::verify(&deps.dir.join("git"), src).await {
            problems.push(Problem {
                what: format!("components source {}", src.url),
                why: e.to_string(),
                repair: "podplane deps download".into(),
            });
        }
    }
    // Template charts marked cached: the entry their version tags, with its blobs.
    if let Some(t) = &ct
        && let Ok(pins) = super::parts::chart_pins(t)
    {
        let root = super::parts::charts_dir(deps);
        for c in pins
            .iter()
            .filter(|c| t.templates.charts[c.row]["cached"] == true)
        {
            checked += 1;
            let repo = images::repo_of(&root, &c.reference);
            let tagged = repo.read_index().ok().and_then(|i| {
                i.manifests
                    .into_iter()
                    .find(|d| d.tag() == c.reference.tag.as_deref())
            });
            let found = tagged
                .as_ref()
                .and_then(|d| images::reference::BlobDigest::parse(&d.digest).ok());
            let result = match found {
                None => Err("no index.json entry for its version".to_string()),
                Some(d) => repo
                    .check_image(&d, &|_| false, true)
                    .map_err(|m| m.to_string()),
            };
            if let Err(why) = result {
                problems.push(Problem {
                    what: format!(
                        "template chart {}:{}",
                        c.reference.name(),
                        c.reference.tag.as_deref().unwrap_or("")
                    ),
                    why,
                    repair: "podplane deps download".into(),
                });
            }
        }
    }
    let root = images::mirror_dir(&deps.dir);
    for w in marked_images(&nodes, cc.as_ref(), ct.as_ref()) {
        checked += 1;
        if let Err(m) = check_written(&root, &w, true) {
            problems.push(Problem {
                what: w.label(),
                why: m.to_string(),
                repair: "podplane deps download".into(),
            });
        }
    }
    Ok((checked, problems))
}
