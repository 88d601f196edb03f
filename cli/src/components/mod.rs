//! `podplane components`, `install` and `uninstall`: the platform components of a running
//! cluster, managed through its `platform-components` Flux HelmRelease.
//!
//! Parts: [`catalogue`] (the components the release's values define, and the plans made from
//! them), [`release`] (the Helm release record that gives the computed values), [`cluster`]
//! (the API server through kube-rs, with the kubeconfig `podplane login` writes), [`wait`]
//! (watching HelmReleases until Ready, with progress).

pub mod catalogue;
pub mod cluster;
pub mod release;
pub mod wait;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use serde::Serialize;

use catalogue::{Catalogue, CatalogueError, Kind, UninstallError, UninstallPlan};
use cluster::{Cluster, KubeError, Target};
use wait::{State, WaitError};

/// How long `install` waits for Ready by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ComponentsError {
    #[error(transparent)]
    Kube(Box<KubeError>),
    #[error("context {context:?}: {source}")]
    Catalogue {
        context: String,
        #[source]
        source: CatalogueError,
    },
    #[error("context {context:?}: {source}")]
    Uninstall {
        context: String,
        #[source]
        source: UninstallError,
    },
    #[error("context {context:?}: {source}")]
    Wait {
        context: String,
        #[source]
        source: Box<WaitError>,
    },
    #[error("{0} cancelled")]
    Cancelled(&'static str),
    #[error("read the answer: {0}")]
    Answer(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl From<KubeError> for ComponentsError {
    fn from(e: KubeError) -> Self {
        ComponentsError::Kube(Box::new(e))
    }
}

/// Where the commands read answers and write output.
pub struct Io<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub out: &'a mut dyn Write,
    /// Whether `out` is a terminal (redrawn progress) or not (plain lines).
    pub terminal: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, ComponentsError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ComponentsError::Runtime)
}

async fn read(t: &Target) -> Result<(Cluster, Catalogue), ComponentsError> {
    let cluster = Cluster::connect(t).await?;
    let values = cluster.control_values().await?;
    let cat = Catalogue::from_values(&values).map_err(|source| ComponentsError::Catalogue {
        context: cluster.context.clone(),
        source,
    })?;
    Ok((cluster, cat))
}

/// One row of `podplane components`.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub component: catalogue::Component,
    /// The HelmRelease's `namespace/name`.
    pub release: String,
    /// The HelmRelease's state when enabled: "ready", "not ready: …", or "waiting for
    /// HelmRelease to be created"; null when disabled.
    pub status: Option<String>,
    pub ready: Option<bool>,
}

/// `podplane components`: every component with its HelmRelease state.
pub fn list(t: &Target) -> Result<Vec<Row>, ComponentsError> {
    runtime()?.block_on(async {
        let (cluster, cat) = read(t).await?;
        let (items, _) = cluster.list_helmreleases().await?;
        let mut states = BTreeMap::new();
        for o in items {
            if let (Some(ns), Some(n)) = (o.metadata.namespace, o.metadata.name) {
                let status = serde_json::json!({ "status": o.data.get("status").cloned().unwrap_or_default() });
                states.insert((ns, n), wait::state_of(&status));
            }
        }
        Ok(cat
            .components
            .into_values()
            .map(|c| {
                let key = (c.release_namespace().to_string(), c.name.clone());
                let state = c
                    .enabled
                    .then(|| states.get(&key).cloned().unwrap_or(State::Missing));
                Row {
                    release: format!("{}/{}", key.0, key.1),
                    ready: state.as_ref().map(|s| matches!(s, State::Ready(_))),
                    status: state.map(|s| s.text()),
                    component: c,
                }
            })
            .collect())
    })
}

/// The table of `podplane components`.
pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "NAME".to_string(),
        "KIND".into(),
        "ENABLED".into(),
        "CORE".into(),
        "NAMESPACE".into(),
        "DEPENDS ON".into(),
        "STATUS".into(),
    ]];
    for r in rows {
        let c = &r.component;
        lines.push([
            c.name.clone(),
            match c.kind {
                Kind::App => "app".into(),
                Kind::Crd => "crd".into(),
            },
            if c.enabled { "yes" } else { "no" }.into(),
            if c.core { "yes" } else { "no" }.into(),
            c.release_namespace().into(),
            if c.depends_on.is_empty() {
                "-".into()
            } else {
                c.depends_on.join(",")
            },
            r.status.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut widths = [0usize; 7];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, (cell, w)) in l.iter().zip(widths).enumerate() {
            if i + 1 == l.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `podplane install <name>`.
pub fn install(
    t: &Target,
    name: &str,
    yes: bool,
    timeout: Duration,
    io: &mut Io<'_>,
) -> Result<(), ComponentsError> {
    runtime()?.block_on(async {
        let (cluster, cat) = read(t).await?;
        let ctx = || cluster.context.clone();
        let set = cat
            .install_set(name)
            .map_err(|source| ComponentsError::Catalogue {
                context: ctx(),
                source,
            })?;
        let out = &mut *io.out;
        if set.is_empty() {
            let _ = writeln!(out, "Component {name:?} is already installed.");
            return Ok(());
        }
        if set.iter().any(|c| c.name != name) {
            let others: Vec<&str> = set
                .iter()
                .filter(|c| c.name != name)
                .map(|c| c.name.as_str())
                .collect();
            let _ = writeln!(
                out,
                "Installing {name:?} will also enable the following dependencies:\n  {}",
                others.join(", ")
            );
            let ok = crate::tfrun::confirm("Continue?", yes, &mut io.stdin, &mut &mut *out)
                .map_err(ComponentsError::Answer)?;
            if !ok {
                return Err(ComponentsError::Cancelled("install"));
            }
        }
        cluster
            .patch_control(&catalogue::enable_patch(&set, true))
            .await?;
        let _ = writeln!(
            out,
            "Patched {}/{} to enable: {}",
            catalogue::CONTROL_NAMESPACE,
            catalogue::CONTROL_RELEASE,
            set.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let refs: Vec<wait::Ref> = set
            .iter()
            .map(|c| (c.release_namespace().to_string(), c.name.clone()))
            .collect();
        let mut progress = wait::Progress::new(out, io.terminal);
        wait::wait_ready(&cluster, &refs, timeout, &mut progress)
            .await
            .map_err(|source| ComponentsError::Wait {
                context: ctx(),
                source: Box::new(source),
            })?;
        let _ = writeln!(out, "✓ Installed {name:?}.");
        if let Ok(c) = cat.get(name)
            && c.kind == Kind::App
            && !c.namespace.is_empty()
        {
            let _ = writeln!(
                out,
                "   Watch progress with: kubectl -n {} get all",
                c.namespace
            );
        }
        Ok(())
    })
}

/// `podplane uninstall <name>`.
pub fn uninstall(
    t: &Target,
    name: &str,
    yes: bool,
    io: &mut Io<'_>,
) -> Result<(), ComponentsError> {
    runtime()?.block_on(async {
        let (cluster, cat) = read(t).await?;
        let plan = cat
            .uninstall_plan(name)
            .map_err(|source| ComponentsError::Uninstall {
                context: cluster.context.clone(),
                source,
            })?;
        let out = &mut *io.out;
        if plan == UninstallPlan::NotInstalled {
            let _ = writeln!(out, "Component {name:?} is not installed.");
            return Ok(());
        }
        let ok = crate::tfrun::confirm(
            &format!("Uninstall component {name:?}?"),
            yes,
            &mut io.stdin,
            &mut &mut *out,
        )
        .map_err(ComponentsError::Answer)?;
        if !ok {
            return Err(ComponentsError::Cancelled("uninstall"));
        }
        let c = cat.get(name).map_err(|source| ComponentsError::Catalogue {
            context: cluster.context.clone(),
            source,
        })?;
        cluster
            .patch_control(&catalogue::enable_patch(&[c], false))
            .await?;
        let _ = writeln!(
            out,
            "✓ Patched platform-components to uninstall {name:?}. Flux CD is removing the component."
        );
        Ok(())
    })
}
