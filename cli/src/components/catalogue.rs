//! The component catalogue as the cluster defines it: `platform.components.apps` and `.crds` of
//! the `platform-components` release's computed values, and the plans made from it (the
//! transitive set an install enables, the refusals of an uninstall, the closest names to an
//! unknown one). Pure: no I/O, so every rule is tested on plain values.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// The namespace the chart puts every CRD chart's HelmRelease in.
pub const CRD_NAMESPACE: &str = "platform-cluster";
/// The namespace of the control release, and of an app whose entry names none.
pub const CONTROL_NAMESPACE: &str = "platform-components";
/// The control HelmRelease's name (also the Helm release's).
pub const CONTROL_RELEASE: &str = "platform-components";
/// More dependencies than this in one entry is not a catalogue but an attack.
const MAX_DEPENDS: usize = 256;
/// The longest component name accepted (a Kubernetes object name).
const MAX_NAME: usize = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    App,
    Crd,
}

/// One entry of `platform.components.{apps,crds}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub name: String,
    pub kind: Kind,
    pub enabled: bool,
    pub core: bool,
    /// The entry's `namespace`; empty when it names none.
    pub namespace: String,
    #[serde(rename = "dependsOn")]
    pub depends_on: Vec<String>,
}

impl Component {
    /// Where the chart puts this component's HelmRelease: CRD charts in `platform-cluster`, apps
    /// in their own namespace (or the control namespace when the entry names none).
    pub fn release_namespace(&self) -> &str {
        match self.kind {
            Kind::Crd => CRD_NAMESPACE,
            Kind::App if self.namespace.is_empty() => CONTROL_NAMESPACE,
            Kind::App => &self.namespace,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error(
        "platform-components values are missing platform.components: the release's values do not describe any component; check the platform-components chart version in the cluster"
    )]
    Missing,
    #[error(
        "platform-components values: platform.components.{key} is not a {want}; fix the platform-components HelmRelease values"
    )]
    Shape { key: String, want: &'static str },
    #[error(
        "platform-components values: {name:?} is both an app and a CRD chart; rename one of them in the platform-components HelmRelease values"
    )]
    Duplicate { name: String },
    #[error(
        "unknown component {name:?}: the platform-components HelmRelease does not define a component with that name{}",
        closest_hint(closest)
    )]
    Unknown { name: String, closest: Vec<String> },
    #[error(
        "component {name:?} has an unknown dependency: {dependency:?} is not an app or CRD chart in the platform-components HelmRelease values; fix its dependsOn"
    )]
    UnknownDependency { name: String, dependency: String },
}

fn closest_hint(closest: &[String]) -> String {
    if closest.is_empty() {
        "; run `podplane components` to list them".into()
    } else {
        format!(
            "; did you mean {}? (`podplane components` lists them all)",
            closest.join(", ")
        )
    }
}

/// Every component, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    pub components: BTreeMap<String, Component>,
}

impl Catalogue {
    /// Reads the catalogue from a release's computed values (the whole values document).
    pub fn from_values(values: &Value) -> Result<Catalogue, CatalogueError> {
        let comps = values
            .get("platform")
            .and_then(|p| p.get("components"))
            .filter(|c| !c.is_null())
            .ok_or(CatalogueError::Missing)?;
        let comps = comps.as_object().ok_or_else(|| CatalogueError::Shape {
            key: String::new(),
            want: "map",
        })?;
        let mut components = BTreeMap::new();
        for (key, kind) in [("crds", Kind::Crd), ("apps", Kind::App)] {
            let Some(group) = comps.get(key).filter(|g| !g.is_null()) else {
                continue;
            };
            let group = group.as_object().ok_or_else(|| CatalogueError::Shape {
                key: key.into(),
                want: "map of components",
            })?;
            for (name, entry) in group {
                let c = parse_entry(key, name, kind, entry)?;
                if components.insert(name.clone(), c).is_some() {
                    return Err(CatalogueError::Duplicate { name: name.clone() });
                }
            }
        }
        Ok(Catalogue { components })
    }

    /// The component called `name`, or the error naming the closest names.
    pub fn get(&self, name: &str) -> Result<&Component, CatalogueError> {
        self.components
            .get(name)
            .ok_or_else(|| CatalogueError::Unknown {
                name: name.into(),
                closest: self.closest(name),
            })
    }

    /// Up to three known names nearest to `name` (edit distance, or a prefix/substring match).
    pub fn closest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(usize, &String)> = self
            .components
            .keys()
            .filter_map(|k| {
                let d = strsim::levenshtein(name, k);
                let near = d <= (name.chars().count().max(4) / 3).max(2)
                    || (name.len() >= 3 && (k.contains(name) || name.contains(k.as_str())));
                near.then_some((d, k))
            })
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
    }

    /// What `install name` enables: every component reached from it through `dependsOn`
    /// (itself included) that is not enabled yet, sorted by name. Empty: already installed.
    /// A cycle ends the walk (each component is visited once).
    pub fn install_set(&self, name: &str) -> Result<Vec<&Component>, CatalogueError> {
        let root = self.get(name)?;
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        let mut out = BTreeMap::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c.name.as_str()) {
                continue;
            }
            if !c.enabled {
                out.insert(c.name.as_str(), c);
            }
            for d in &c.depends_on {
                let dep =
                    self.components
                        .get(d)
                        .ok_or_else(|| CatalogueError::UnknownDependency {
                            name: c.name.clone(),
                            dependency: d.clone(),
                        })?;
                stack.push(dep);
            }
        }
        Ok(out.into_values().collect())
    }

    /// The enabled components that list `name` in their `dependsOn`, sorted.
    pub fn enabled_dependents(&self, name: &str) -> Vec<&str> {
        self.components
            .values()
            .filter(|c| c.enabled && c.depends_on.iter().any(|d| d == name))
            .map(|c| c.name.as_str())
            .collect()
    }
}

fn parse_entry(
    group: &str,
    name: &str,
    kind: Kind,
    entry: &Value,
) -> Result<Component, CatalogueError> {
    // The name may be hostile: escaped for the message.
    let shown = name.escape_debug();
    let shape = |field: &str, want: &'static str| CatalogueError::Shape {
        key: if field.is_empty() {
            format!("{group}.{shown}")
        } else {
            format!("{group}.{shown}.{field}")
        },
        want,
    };
    // The chart names a HelmRelease after each component, so a real one is a Kubernetes
    // object name; anything else (escape sequences for the terminal included) is refused.
    if !is_object_name(name, MAX_NAME) {
        return Err(shape(
            "",
            "component with a Kubernetes object name (lowercase letters, digits, '-', '.'; at most 253 characters)",
        ));
    }
    let obj = entry.as_object().ok_or_else(|| shape("", "map"))?;
    let flag = |field: &str| -> Result<bool, CatalogueError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(shape(field, "boolean")),
        }
    };
    let namespace = match obj.get("namespace") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.is_empty() || (is_object_name(s, 63) && !s.contains('.')) => {
            s.clone()
        }
        Some(_) => {
            return Err(shape(
                "namespace",
                "namespace name (lowercase letters, digits, '-'; at most 63 characters)",
            ));
        }
    };
    let depends_on = match obj.get("dependsOn") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_DEPENDS => a
            .iter()
            .map(|d| {
                d.as_str()
                    .filter(|s| !s.is_empty() && s.len() <= MAX_NAME)
                    .map(str::to_owned)
                    .ok_or_else(|| shape("dependsOn", "list of component names"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(shape("dependsOn", "list of component names")),
    };
    Ok(Component {
        name: name.into(),
        kind,
        enabled: flag("enabled")?,
        core: flag("core")?,
        namespace,
        depends_on,
    })
}

/// A DNS-1123 name as Kubernetes objects have: lowercase alphanumerics, '-' and '.', starting
/// and ending with an alphanumeric.
fn is_object_name(s: &str, max: usize) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| alnum(b) || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(alnum)
        && s.bytes().last().is_some_and(alnum)
}

/// Why `uninstall` will not, or that there is nothing to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UninstallRefusal {
    #[error(
        "component {0:?} is a CRD chart; CRDs are not uninstalled via `podplane uninstall` to avoid deleting custom resource data. To remove the chart manually, set its `enabled` field to false in the platform-components HelmRelease values"
    )]
    Crd(String),
    #[error("component {0:?} is a core component and cannot be uninstalled")]
    Core(String),
    #[error(
        "cannot uninstall {name:?} because it is required by: {}. Uninstall those first",
        dependents.join(", ")
    )]
    Required {
        name: String,
        dependents: Vec<String>,
    },
}

/// What `uninstall name` does.
#[derive(Debug, PartialEq, Eq)]
pub enum UninstallPlan {
    NotInstalled,
    Disable,
}

impl Catalogue {
    /// The checks of an uninstall, in upstream's order: unknown, CRD chart, core, not enabled,
    /// enabled dependents.
    pub fn uninstall_plan(&self, name: &str) -> Result<UninstallPlan, UninstallError> {
        let c = self.get(name)?;
        if c.kind == Kind::Crd {
            return Err(UninstallRefusal::Crd(name.into()).into());
        }
        if c.core {
            return Err(UninstallRefusal::Core(name.into()).into());
        }
        if !c.enabled {
            return Ok(UninstallPlan::NotInstalled);
        }
        let dependents = self.enabled_dependents(name);
        if !dependents.is_empty() {
            return Err(UninstallRefusal::Required {
                name: name.into(),
                dependents: dependents.into_iter().map(str::to_owned).collect(),
            }
            .into());
        }
        Ok(UninstallPlan::Disable)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UninstallError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Refused(#[from] UninstallRefusal),
}

/// The merge patch of the control HelmRelease that sets `enabled` on these components
/// (`apps`/`crds` keys only when they have entries).
pub fn enable_patch(components: &[&Component], enabled: bool) -> Value {
    let mut apps = serde_json::Map::new();
    let mut crds = serde_json::Map::new();
    for c in components {
        let m = match c.kind {
            Kind::App => &mut apps,
            Kind::Crd => &mut crds,
        };
        m.insert(c.name.clone(), serde_json::json!({ "enabled": enabled }));
    }
    let mut comps = serde_json::Map::new();
    if !apps.is_empty() {
        comps.insert("apps".into(), Value::Object(apps));
    }
    if !crds.is_empty() {
        comps.insert("crds".into(), Value::Object(crds));
    }
    serde_json::json!({ "spec": { "values": { "platform": { "components": comps } } } })
}

#[cfg(test)]
mod tests;
