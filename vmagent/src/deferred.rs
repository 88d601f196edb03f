//! Service actions an apply could not carry out, kept for the next one.
//!
//! `vmagent apply --services none` (the package's postinst runs it while service starts are
//! blocked) writes the files but must not touch systemd; a service action can also fail. Without
//! a record, the next apply would find every file already in place, plan nothing, and never
//! reload systemd or restart the services whose inputs changed. So the actions are written to
//! `/var/lib/vmagent/deferred-actions`, one per line (`daemon-reload`, `restart kubelet.service`),
//! merged into every later plan (so `plan` shows them and exits 2, and `status` lists them) and
//! removed once an apply with services has carried them out.

use std::collections::BTreeSet;
use std::path::Path;

use crate::install::STATE_DIR;
use crate::plan::{Action, Plan, ServicePlan};
use crate::render::Desired;
use crate::safefs::{Perm, Root, SafeFsError};

/// The state file, below the root-only state directory.
pub const DEFERRED: &str = "/var/lib/vmagent/deferred-actions";
/// A record larger than this is not ours (a few lines per unit): it is ignored with a warning.
const MAX_SIZE: u64 = 64 << 10;

/// Deferred actions: a systemd reload and `(unit, action)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deferred {
    pub daemon_reload: bool,
    pub actions: BTreeSet<(String, Action)>,
}

impl Deferred {
    pub fn is_empty(&self) -> bool {
        !self.daemon_reload && self.actions.is_empty()
    }

    /// Every service action of `plan`.
    pub fn from_plan(plan: &Plan) -> Deferred {
        Deferred {
            daemon_reload: plan.daemon_reload,
            actions: plan
                .services
                .iter()
                .flat_map(|s| s.actions.iter().map(|a| (s.unit.clone(), *a)))
                .collect(),
        }
    }

    fn parse(text: &str) -> Deferred {
        let mut d = Deferred::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line == "daemon-reload" {
                d.daemon_reload = true;
                continue;
            }
            let parsed = line.split_once(' ').and_then(|(verb, unit)| {
                let a = match verb {
                    "enable" => Action::Enable,
                    "disable" => Action::Disable,
                    "restart" => Action::Restart,
                    "stop" => Action::Stop,
                    _ => return None,
                };
                valid_unit(unit).then(|| (unit.to_string(), a))
            });
            match parsed {
                Some(p) => {
                    d.actions.insert(p);
                }
                None => log::warn!("{DEFERRED}: ignoring the line {line:?}"),
            }
        }
        d
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if self.daemon_reload {
            out.push_str("daemon-reload\n");
        }
        for (unit, a) in &self.actions {
            out.push_str(&format!("{a} {unit}\n"));
        }
        out
    }

    /// Merge into `plan` what still applies to `desired`: a restart or enable of a unit that is
    /// still wanted enabled, a stop or disable of one that is not.
    pub fn merge_into(&self, plan: &mut Plan, desired: &Desired) {
        if self.is_empty() {
            return;
        }
        plan.daemon_reload |= self.daemon_reload;
        for (unit, action) in &self.actions {
            let Some(svc) = desired.services.values().find(|s| &s.unit == unit) else {
                continue;
            };
            let wanted = match action {
                Action::Enable | Action::Restart => svc.enabled,
                Action::Disable | Action::Stop => !svc.enabled,
            };
            if !wanted || (*action == Action::Restart && svc.enable_only) {
                continue;
            }
            match plan.services.iter_mut().find(|s| &s.unit == unit) {
                Some(sp) => {
                    if !sp.actions.contains(action) {
                        sp.actions.push(*action);
                        sp.actions.sort();
                        sp.reason.push_str("; deferred by an earlier apply");
                    }
                }
                None => plan.services.push(ServicePlan {
                    unit: unit.clone(),
                    actions: vec![*action],
                    reason: "deferred by an earlier apply".into(),
                }),
            }
        }
        for sp in &mut plan.services {
            sp.actions.sort();
            sp.actions.dedup();
        }
    }
}

/// A systemd unit name as vmagent writes them: letters, digits and `-_.@`, with a unit suffix.
fn valid_unit(u: &str) -> bool {
    u.len() <= 128
        && u.contains('.')
        && !u.starts_with('.')
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// The deferred actions recorded below `root` (none when the file is missing or unreadable).
pub fn load(root: &Path) -> Deferred {
    let read = Root::open(root).and_then(|fs| fs.read(DEFERRED, MAX_SIZE));
    match read {
        Ok(Some(bytes)) => Deferred::parse(&String::from_utf8_lossy(&bytes)),
        Ok(None) => Deferred::default(),
        Err(e) => {
            log::warn!("ignoring the deferred service actions: {e}");
            Deferred::default()
        }
    }
}

/// Record `d` below `root` (0600 root:root, atomic), or remove the record when `d` is empty.
pub fn save(root: &Path, d: &Deferred) -> Result<(), SafeFsError> {
    let fs = Root::open(root)?;
    if d.is_empty() {
        if let Some(dir) = fs.open_dir(STATE_DIR)? {
            dir.remove(std::ffi::OsStr::new("deferred-actions"))?;
        }
        return Ok(());
    }
    let perm = Perm {
        mode: 0o600,
        owner: None,
    };
    fs.write_file(
        &crate::host::SystemHost,
        DEFERRED,
        d.render().as_bytes(),
        perm,
    )?
    .sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_lines() {
        let mut d = Deferred {
            daemon_reload: true,
            ..Deferred::default()
        };
        d.actions
            .insert(("kubelet.service".into(), Action::Restart));
        d.actions.insert(("zot.service".into(), Action::Enable));
        assert_eq!(Deferred::parse(&d.render()), d);
        let hostile = "restart ../../x\nrestart a b.service\nreboot now\nrestart \n";
        assert!(Deferred::parse(hostile).is_empty());
    }

    #[test]
    fn save_load_and_clear() {
        let t = tempfile::tempdir().unwrap();
        let mut d = Deferred::default();
        d.actions
            .insert(("containerd.service".into(), Action::Restart));
        save(t.path(), &d).unwrap();
        assert_eq!(load(t.path()), d);
        save(t.path(), &Deferred::default()).unwrap();
        assert!(!t.path().join("var/lib/vmagent/deferred-actions").exists());
        assert!(load(t.path()).is_empty());
    }
}
