//! Every rendered systemd unit, for knd and knc nodes on aws and local, checked by systemd's own
//! tools and by the rules a Debian admin expects:
//! - `systemd-analyze verify` accepts them (a missing executable is the only complaint allowed:
//!   the binaries exist only on a node);
//! - `systemd-analyze security --offline=true` rates each sandboxed daemon at most 3.0;
//! - a unit names in `Wants=`/`Requires=`/`After=` only services rendered on the same node, or
//!   the system's own, and waits for `network-online.target` with `Wants=`, not `Requires=`;
//! - every service names itself in the journal (`SyslogIdentifier=`), every oneshot has a start
//!   timeout, and `Persistent=` comes only with `OnCalendar=`.
//!
//! systemd-analyze must support `security --offline` (systemd 250 or later); without it the
//! tool checks say SKIP, or fail with `PODPLANE_REQUIRE_TOOLS=1`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::lint::all_renders;

/// The daemons that run as their own user and get the sandbox, with the ceiling they must meet.
const SANDBOXED: [&str; 8] = [
    "kube-apiserver.service",
    "kube-controller-manager.service",
    "kube-scheduler.service",
    "netsy.service",
    "zot.service",
    "nstance-agent.service",
    "fluent-bit.service",
    "kube2iam.service",
];
const CEILING: f64 = 3.0;

/// Services a rendered unit may depend on without rendering them.
const SYSTEM_SERVICES: [&str; 1] = ["dbus.service"];

/// The units of each node shape: name -> text.
fn units() -> Vec<(String, BTreeMap<String, String>)> {
    all_renders()
        .into_iter()
        .map(|(shape, d)| {
            let units = d
                .files
                .iter()
                .filter_map(|(path, f)| {
                    let name = path.strip_prefix("/etc/systemd/system/")?;
                    Some((
                        name.to_string(),
                        String::from_utf8(f.content.clone()).unwrap(),
                    ))
                })
                .collect();
            (shape, units)
        })
        .collect()
}

/// The values of `key=` in a unit, space-separated lists split.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .flat_map(str::split_whitespace)
        .collect()
}

/// Whether this systemd-analyze has `security --offline`; missing or too old fails the test
/// with `PODPLANE_REQUIRE_TOOLS=1`.
fn analyze_available() -> bool {
    if !podplane_testkit::tools::available("systemd-analyze", &["--version"]) {
        return false;
    }
    let help = Command::new("systemd-analyze")
        .args(["security", "--help"])
        .output()
        .unwrap();
    let ok = String::from_utf8_lossy(&help.stdout).contains("--offline");
    if !ok {
        assert!(
            std::env::var("PODPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "systemd-analyze has no `security --offline` (systemd 250 or later is required, \
             PODPLANE_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIP: systemd-analyze is older than systemd 250 (no security --offline)");
    }
    ok
}

fn write_units(dir: &Path, units: &BTreeMap<String, String>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in units {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    if !analyze_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (shape, units) in units() {
        let dir = tmp.path().join(shape.replace('/', "-"));
        write_units(&dir, &units);
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no", "--no-pager"])
            .args(units.keys().map(|n| dir.join(n)))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let complaints: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.contains("is not executable: No such file or directory"))
            .collect();
        assert!(
            complaints.is_empty(),
            "{shape}: systemd-analyze verify complains:\n{}",
            complaints.join("\n")
        );
    }
}

#[test]
fn every_daemon_is_sandboxed_to_an_exposure_of_at_most_3() {
    if !analyze_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rated = BTreeMap::new();
    for (shape, units) in units() {
        let dir = tmp.path().join(shape.replace('/', "-"));
        write_units(&dir, &units);
        for name in SANDBOXED.iter().filter(|n| units.contains_key(**n)) {
            let out = Command::new("systemd-analyze")
                .args(["security", "--offline=true", "--no-pager"])
                .arg(dir.join(name))
                .env("SYSTEMD_LOG_COLOR", "0")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let score: f64 = text
                .lines()
                .find_map(|l| {
                    l.split_once("Overall exposure level for ")?
                        .1
                        .split_once(": ")
                })
                .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "{shape} {name}: no exposure level in:\n{text}{}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            assert!(
                score <= CEILING,
                "{shape} {name}: exposure {score} > {CEILING}; what counts:\n{text}"
            );
            rated.insert(*name, score);
        }
    }
    for name in SANDBOXED {
        assert!(rated.contains_key(name), "{name} was never rendered");
    }
}

#[test]
fn units_depend_only_on_services_of_their_node_and_follow_the_conventions() {
    for (shape, units) in units() {
        for (name, text) in &units {
            for key in ["Wants", "Requires", "After", "BindsTo", "Requisite"] {
                for dep in values(text, key)
                    .into_iter()
                    .filter(|d| d.ends_with(".service"))
                {
                    assert!(
                        units.contains_key(dep) || SYSTEM_SERVICES.contains(&dep),
                        "{shape} {name}: {key}={dep}, which this node does not have"
                    );
                }
            }
            assert!(
                !values(text, "Requires").contains(&"network-online.target"),
                "{shape} {name}: Requires=network-online.target (Wants= with After= instead)"
            );
            if values(text, "After").contains(&"network-online.target") {
                assert!(
                    values(text, "Wants").contains(&"network-online.target"),
                    "{shape} {name}: After=network-online.target without Wants= does not pull it in"
                );
            }
            if name.ends_with(".service") {
                let service = name.trim_end_matches(".service");
                let id = values(text, "SyslogIdentifier");
                assert!(
                    id == [service]
                        || (id == ["vmagent"]
                            && values(text, "ExecStart")[0] == "/usr/bin/vmagent"),
                    "{shape} {name}: SyslogIdentifier={id:?}, expected {service}"
                );
                if values(text, "Type") == ["oneshot"] {
                    assert!(
                        !values(text, "TimeoutStartSec").is_empty(),
                        "{shape} {name}: a oneshot without TimeoutStartSec= can hang forever"
                    );
                }
            }
            if !values(text, "Persistent").is_empty() {
                assert!(
                    !values(text, "OnCalendar").is_empty(),
                    "{shape} {name}: Persistent= does nothing without OnCalendar="
                );
            }
            if name.ends_with(".path") {
                assert_eq!(values(text, "WantedBy"), ["paths.target"], "{shape} {name}");
            }
        }
    }
}
