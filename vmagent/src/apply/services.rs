//! The service half of an apply: what the plan says to enable, disable, stop and restart, told to
//! systemd in as few calls as possible.
//!
//! Each verb is one `systemctl` call naming every unit it applies to, in this order:
//! `disable --no-reload` and `enable --no-reload` (links only), then one `daemon-reload` when a
//! unit file or a link changed, then `stop`, then `restart`. One `restart` call hands systemd a
//! single transaction, so independent units start in parallel instead of one after another, and
//! systemd is reloaded once instead of once per enabled unit (a plain `systemctl enable` reloads
//! the manager each time; a first boot enables about a dozen units).
//!
//! When a batched call fails, the same verb is run again for each of its units alone, so the
//! failure names the unit that failed and only that unit is kept for the next apply. Offline
//! (`--root` other than `/`) only the links are made; nothing is reloaded, started or stopped.

use std::path::Path;

use crate::apply::ApplyReport;
use crate::deferred::Deferred;
use crate::host::{Cmd, Host};
use crate::plan::{Action, Plan};

/// The order verbs are carried out in; `Enable`/`Disable` only touch links.
const LINK_VERBS: [Action; 2] = [Action::Disable, Action::Enable];
const RUN_VERBS: [Action; 2] = [Action::Stop, Action::Restart];

/// Carry out the plan's service actions; returns what failed (kept for the next apply) and
/// records what ran and what failed in `report`.
pub(super) fn run(
    plan: &Plan,
    live: bool,
    root: &Path,
    host: &dyn Host,
    report: &mut ApplyReport,
) -> Deferred {
    let mut remaining = Deferred::default();
    let systemctl = |args: &[&str]| {
        let mut c = Cmd::new("systemctl");
        if !live {
            c = c.arg(format!("--root={}", root.display()));
        }
        c.args(args.iter().copied())
    };
    let units_for = |verb: Action| -> Vec<&str> {
        plan.services
            .iter()
            .filter(|s| s.actions.contains(&verb))
            .map(|s| s.unit.as_str())
            .collect()
    };

    let mut links_changed = false;
    for verb in LINK_VERBS {
        let units = units_for(verb);
        let flags: &[&str] = if live { &["--no-reload"] } else { &[] };
        links_changed |= batch(
            verb,
            flags,
            &units,
            &systemctl,
            host,
            report,
            &mut remaining,
        );
    }
    if !live {
        return remaining;
    }
    if plan.daemon_reload || links_changed {
        match host.run(&systemctl(&["daemon-reload"])) {
            Ok(_) => report.actions.push("daemon-reload".into()),
            Err(e) => {
                log::error!("daemon-reload failed: {e}");
                report.failed.push(format!("daemon-reload: {e}"));
                remaining.daemon_reload = true;
            }
        }
    }
    for verb in RUN_VERBS {
        let units = units_for(verb);
        batch(verb, &[], &units, &systemctl, host, report, &mut remaining);
    }
    remaining
}

/// One `systemctl VERB FLAGS UNITS…` call; on failure, one call per unit to find which failed.
/// Returns whether any unit succeeded.
fn batch(
    verb: Action,
    flags: &[&str],
    units: &[&str],
    systemctl: &dyn Fn(&[&str]) -> Cmd,
    host: &dyn Host,
    report: &mut ApplyReport,
    remaining: &mut Deferred,
) -> bool {
    if units.is_empty() {
        return false;
    }
    let verb_s = verb.to_string();
    let call = |units: &[&str]| {
        let mut args = vec![verb_s.as_str()];
        args.extend_from_slice(flags);
        args.extend_from_slice(units);
        host.run(&systemctl(&args))
    };
    match call(units) {
        Ok(_) => {
            report
                .actions
                .extend(units.iter().map(|u| format!("{verb_s} {u}")));
            return true;
        }
        Err(e) if units.len() > 1 => {
            log::warn!(
                "{verb_s} of {} units failed ({e}); trying each alone",
                units.len()
            );
        }
        Err(_) => {}
    }
    let mut any = false;
    for unit in units {
        match call(&[unit]) {
            Ok(_) => {
                report.actions.push(format!("{verb_s} {unit}"));
                any = true;
            }
            Err(e) => {
                log::error!(unit = *unit; "{verb_s} {unit} failed: {e}");
                report.failed.push(format!("{verb_s} {unit}: {e}"));
                remaining.actions.insert((unit.to_string(), verb));
            }
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostError, Output, RecordingHost};
    use crate::plan::ServicePlan;

    fn plan(services: &[(&str, &[Action])], daemon_reload: bool) -> Plan {
        Plan {
            daemon_reload,
            services: services
                .iter()
                .map(|(u, a)| ServicePlan {
                    unit: u.to_string(),
                    actions: a.to_vec(),
                    reason: "test".into(),
                })
                .collect(),
            ..Plan::default()
        }
    }

    fn first_boot() -> Plan {
        plan(
            &[
                ("containerd.service", &[Action::Enable, Action::Restart]),
                ("kubelet.service", &[Action::Enable, Action::Restart]),
                ("vmagent-recv.path", &[Action::Enable]),
                ("old.service", &[Action::Disable, Action::Stop]),
            ],
            true,
        )
    }

    #[test]
    fn a_first_boot_is_five_calls_with_one_reload() {
        let host = RecordingHost::new();
        let mut report = ApplyReport::default();
        let left = run(&first_boot(), true, Path::new("/"), &host, &mut report);
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            host.lines(),
            [
                "systemctl disable --no-reload old.service",
                "systemctl enable --no-reload containerd.service kubelet.service vmagent-recv.path",
                "systemctl daemon-reload",
                "systemctl stop old.service",
                "systemctl restart containerd.service kubelet.service",
            ]
        );
        assert!(
            report
                .actions
                .contains(&"restart kubelet.service".to_string())
        );
        assert!(
            report
                .actions
                .contains(&"enable vmagent-recv.path".to_string())
        );
        assert!(report.failed.is_empty());
    }

    #[test]
    fn a_failed_batch_names_and_keeps_only_the_unit_that_failed() {
        // kubelet cannot start: the batched restart fails, and so does kubelet alone.
        let host = RecordingHost::with_responder(|c: &Cmd| {
            let line = c.display().to_string();
            if line.starts_with("systemctl restart") && line.contains("kubelet") {
                Err(HostError::Failed {
                    cmd: line,
                    status: "exit status: 1".into(),
                    stderr: "Job for kubelet.service failed".into(),
                })
            } else {
                Ok(Output::default())
            }
        });
        let mut report = ApplyReport::default();
        let left = run(&first_boot(), true, Path::new("/"), &host, &mut report);
        let lines = host.lines();
        assert!(
            lines.contains(&"systemctl restart containerd.service".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"systemctl restart kubelet.service".to_string()),
            "{lines:?}"
        );
        assert_eq!(
            left.actions.into_iter().collect::<Vec<_>>(),
            [("kubelet.service".to_string(), Action::Restart)]
        );
        assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
        assert!(
            report.failed[0].starts_with("restart kubelet.service:"),
            "{:?}",
            report.failed
        );
        assert!(
            report
                .actions
                .contains(&"restart containerd.service".to_string())
        );
    }

    #[test]
    fn offline_only_links_are_made_without_reload() {
        let host = RecordingHost::new();
        let mut report = ApplyReport::default();
        let left = run(
            &first_boot(),
            false,
            Path::new("/tmp/r"),
            &host,
            &mut report,
        );
        assert!(left.is_empty());
        assert_eq!(
            host.lines(),
            [
                "systemctl --root=/tmp/r disable old.service",
                "systemctl --root=/tmp/r enable containerd.service kubelet.service vmagent-recv.path",
            ]
        );
    }

    #[test]
    fn nothing_to_do_runs_nothing() {
        let host = RecordingHost::new();
        let mut report = ApplyReport::default();
        run(&plan(&[], false), true, Path::new("/"), &host, &mut report);
        assert!(host.lines().is_empty());
        // A changed unit file alone still reloads systemd.
        run(&plan(&[], true), true, Path::new("/"), &host, &mut report);
        assert_eq!(host.lines(), ["systemctl daemon-reload"]);
    }
}
