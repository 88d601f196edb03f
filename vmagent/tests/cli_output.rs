//! The `vmagent` binary's command-line contract for scripts: exit codes (usage errors 1, so
//! `plan`'s 2 only ever means "changes pending"; help and version 0) and the `-o json` output
//! of `plan` and `status`, parsed as JSON.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn vmagent(root: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmagent"));
    c.env_remove("JOURNAL_STREAM");
    if let Some(root) = root {
        c.arg("--root").arg(root);
    }
    c.args(args);
    for (k, v) in facts("aws") {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_1_help_and_version_exit_0() {
    for args in [
        &["plan", "--no-such-flag"][..],
        &["plna"],
        &["plan", "-o", "yaml"],
        &["status", "--json", "-o", "text"],
        &["fetch", "--wait-timeout", "soon"],
        &[],
    ] {
        let (code, out, err) = vmagent(None, args);
        assert_eq!(code, 1, "vmagent {args:?}: {out}{err}");
        assert!(err.contains("--help"), "vmagent {args:?}: {err}");
    }
    let (code, _, err) = vmagent(None, &["plna"]);
    assert_eq!(code, 1);
    assert!(err.contains("similar subcommand"), "{err}");
    for args in [&["--help"][..], &["plan", "--help"], &["help"], &["-V"]] {
        let (code, out, err) = vmagent(None, args);
        assert_eq!(code, 0, "vmagent {args:?}: {err}");
        assert!(!out.is_empty(), "vmagent {args:?} printed nothing");
    }
    let (_, out, _) = vmagent(None, &["--version"]);
    assert_eq!(out, format!("vmagent {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn plan_and_status_as_json() {
    if !podplane_testkit::tools::available("systemctl", &["--version"]) {
        return;
    }
    let root = node("knc", "aws");
    let r = root.path();

    // Everything to do: exit 2, and the JSON lists what the text does.
    let (code, out, err) = vmagent(Some(r), &["plan", "-o", "json"]);
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["changes_pending"], true);
    let files = v["files"].as_array().unwrap();
    let containerd = files
        .iter()
        .find(|f| f["path"] == "/etc/containerd/config.toml")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(containerd["action"], "create");
    let services = v["services"].as_array().unwrap();
    let svc = services
        .iter()
        .find(|s| s["unit"] == "containerd.service")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        svc["actions"]
            .as_array()
            .unwrap()
            .contains(&"enable".into()),
        "{svc}"
    );
    assert!(
        svc["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{svc}"
    );
    assert!(v["accounts"].is_array() && v["dirs"].is_array(), "{out}");
    assert_eq!(v["daemon_reload"], true);

    // The same run as text names the same file, and says nothing about JSON.
    let (code, text, _) = vmagent(Some(r), &["plan"]);
    assert_eq!(code, 2);
    assert!(
        text.contains("create /etc/containerd/config.toml"),
        "{text}"
    );

    apply(r, "aws");
    let (code, out, err) = vmagent(Some(r), &["plan", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["changes_pending"], false);
    assert_eq!(v["files"], serde_json::json!([]));

    // One setting changed: an update with what differs, a secret never shown, a restart
    // with its reason.
    set_mutable(r, "KUBE_LOG_LEVEL", "4");
    set_mutable(r, "NETSY_BUCKET", "c1-netsy");
    set_mutable(r, "NETSY_SECRET_ACCESS_KEY", "s3cr3t-value");
    let (code, out, _) = vmagent(Some(r), &["plan", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("s3cr3t-value"), "secrets never shown: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let file = |p: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} not in {out}"))
    };
    let apiserver = file("/opt/env/kube-apiserver.env");
    assert_eq!(apiserver["action"], "update");
    assert_eq!(apiserver["content"], true);
    assert!(
        apiserver["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+KUBE_LOG_LEVEL='4'")),
        "{apiserver}"
    );
    let netsy = file("/opt/env/netsy.env");
    assert_eq!(
        (&netsy["action"], &netsy["secret"]),
        (&"create".into(), &true.into())
    );
    let restart = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["unit"] == "kube-scheduler.service")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(restart["actions"], serde_json::json!(["restart"]));
    assert!(
        restart["reason"]
            .as_str()
            .unwrap()
            .contains("inputs changed")
    );

    // status: `-o json` and the older `--json` print the same object.
    let (code, a, err) = vmagent(Some(r), &["status", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let (code, b, _) = vmagent(Some(r), &["status", "--json"]);
    assert_eq!(code, 0);
    let a: serde_json::Value = serde_json::from_str(&a).unwrap();
    let b: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(a["install"], "installed");
    assert_eq!(a["pending_files"], v["files"].as_array().unwrap().len());
    assert_eq!(a, b);

    // An error stays exit 1, with nothing on stdout to mistake for a plan.
    std::fs::remove_file(r.join("opt/podplane/etc/user-data.env")).unwrap();
    let (code, out, err) = vmagent(Some(r), &["plan", "-o", "json"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains("user-data.env is missing"), "{err}");
}
