//! `vmagent status`: what is installed (kind, manifest version, every component's pinned
//! version), when vmagent last applied, what an apply would change now, deliveries waiting for a
//! reconfigure, and the state of every unit vmagent manages. Reads only; `--json` for machines.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::converge;
use crate::fsutil::under_root;
use crate::host::{Cmd, Host};
use crate::install::{INSTALLED, MANIFEST, STATE_DIR};
use crate::manifest::Manifest;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// `installed`, `install incomplete` or `not installed`.
    pub install: String,
    pub kind: Option<String>,
    pub version: Option<String>,
    /// Component → pinned version.
    pub components: BTreeMap<String, String>,
    pub last_apply: Option<String>,
    /// Files an apply would create, change or remove now; `None` when it cannot be planned.
    pub pending_files: Option<usize>,
    /// Service actions an apply would run now.
    pub pending_actions: Vec<String>,
    /// Why planning failed, if it did.
    pub plan_error: Option<String>,
    /// Delivered files whose reconfigure is still pending.
    pub pending_deliveries: Vec<String>,
    /// Unit → state (`active`, `inactive`, `failed`, … or `unknown` off a live system).
    pub units: BTreeMap<String, String>,
}

pub fn status(root: &Path, host: &dyn Host) -> Status {
    let installed = under_root(root, INSTALLED);
    let manifest = Manifest::load(&installed).ok();
    let install = if manifest.is_some() {
        "installed"
    } else if under_root(root, MANIFEST).exists() {
        "install incomplete"
    } else {
        "not installed"
    };
    let components = manifest
        .as_ref()
        .map(|m| {
            m.vmconfig
                .dependencies
                .iter()
                .filter(|(k, d)| !d.is_unreleased_stub(k))
                .map(|(k, d)| (k.clone(), d.version.clone()))
                .collect()
        })
        .unwrap_or_default();
    // The state files are vmagent's own, but read them as carefully as anything else: no link
    // followed, no FIFO opened, a size cap.
    let state = |name: &str| {
        crate::safefs::Root::open(root)
            .and_then(|fs| fs.read(&format!("{STATE_DIR}/{name}"), 4 << 20))
            .ok()
            .flatten()
    };
    let last_apply = state("last-apply.json")
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["applied_at"].as_str().map(String::from));
    let pending_deliveries = state("pending-changes")
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut st = Status {
        install: install.into(),
        kind: manifest.as_ref().map(|m| m.vmconfig.kind.clone()),
        version: manifest.as_ref().map(|m| m.vmconfig.version.clone()),
        components,
        last_apply,
        pending_files: None,
        pending_actions: Vec::new(),
        plan_error: None,
        pending_deliveries,
        units: BTreeMap::new(),
    };
    if manifest.is_none() {
        return st;
    }
    match converge::plan(
        root,
        host,
        &converge::overrides_from_env(host),
        &Default::default(),
    ) {
        Ok((prepared, plan)) => {
            st.pending_files = Some(plan.accounts.len() + plan.files.len() + plan.dirs.len());
            st.pending_actions = plan
                .daemon_reload
                .then(|| "daemon-reload".to_string())
                .into_iter()
                .chain(plan.services.iter().map(|s| {
                    let acts: Vec<String> = s.actions.iter().map(ToString::to_string).collect();
                    format!("{} {}", acts.join("+"), s.unit)
                }))
                .collect();
            let live = root == Path::new("/");
            for unit in prepared.desired.services.keys() {
                let state = if live {
                    host.run(&Cmd::new("systemctl").args([
                        "show",
                        "-p",
                        "ActiveState",
                        "--value",
                        unit,
                    ]))
                    .map(|o| o.stdout.trim().to_string())
                    .unwrap_or_else(|_| "unknown".into())
                } else {
                    "unknown (not the running system)".to_string()
                };
                st.units.insert(unit.clone(), state);
            }
        }
        Err(e) => st.plan_error = Some(e.to_string()),
    }
    st
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.version) {
            (Some(k), Some(v)) => writeln!(f, "install: {} ({k} {v})", self.install)?,
            _ => writeln!(f, "install: {}", self.install)?,
        }
        if !self.components.is_empty() {
            let list: Vec<String> = self
                .components
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "components: {}", list.join(", "))?;
        }
        writeln!(
            f,
            "last apply: {}",
            self.last_apply.as_deref().unwrap_or("never")
        )?;
        match (&self.pending_files, &self.plan_error) {
            (_, Some(e)) => writeln!(f, "pending: cannot plan: {e}")?,
            (Some(n), None) => writeln!(
                f,
                "pending: {n} files, {} service actions{}",
                self.pending_actions.len(),
                if self.pending_actions.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.pending_actions.join(", "))
                }
            )?,
            (None, None) => {}
        }
        if !self.pending_deliveries.is_empty() {
            writeln!(
                f,
                "deliveries awaiting reconfigure: {}",
                self.pending_deliveries.join(", ")
            )?;
        }
        for (u, s) in &self.units {
            writeln!(f, "  {u}: {s}")?;
        }
        Ok(())
    }
}
