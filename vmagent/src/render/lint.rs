//! Rendered files checked by the tools that read them: every `run-*.sh` wrapper passes
//! `shellcheck`, and every YAML file (configs and kubeconfigs) parses, for knd and knc nodes on
//! aws and local.

use std::process::Command;

use super::testutil::*;
use super::*;

/// Every rendered file, as text, for the four node shapes.
pub(super) fn all_renders() -> Vec<(String, Desired)> {
    let m = manifest();
    let mut out = Vec::new();
    for kind in [Kind::Knd, Kind::Knc] {
        for provider in ["aws", "local"] {
            let s = settings(kind, provider);
            let d = render(&inputs(kind, &s, &m)).unwrap();
            out.push((format!("{kind:?}/{provider}"), d));
        }
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[test]
fn every_run_wrapper_passes_shellcheck() {
    if !podplane_testkit::tools::available("shellcheck", &["--version"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = BTreeSet::new();
    for (shape, d) in all_renders() {
        for (path, f) in &d.files {
            let name = file_name(path);
            if !(name.starts_with("run-") && name.ends_with(".sh")) {
                continue;
            }
            let file = tmp.path().join(name);
            std::fs::write(&file, &f.content).unwrap();
            // SC1090/SC1091: the sourced env file exists only on the node. SC2054: commas inside
            // an argument array are flag values (`--authorization-mode=Node,RBAC`), not typos.
            // SC2163: `export "${v}"` exports the variable named by v, as intended.
            let out = Command::new("shellcheck")
                .args(["--shell=bash", "--exclude=SC1090,SC1091,SC2054,SC2163"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{shape} {path} fails shellcheck:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            checked.insert(name.to_string());
        }
    }
    for wrapper in [
        "run-kubelet.sh",
        "run-kube-apiserver.sh",
        "run-kube-controller-manager.sh",
        "run-nstance-agent.sh",
        "run-netsy.sh",
        "run-zot.sh",
        "run-fluent-bit.sh",
        "run-kube2iam.sh",
    ] {
        assert!(checked.contains(wrapper), "{wrapper} was not rendered");
    }
}

#[test]
fn every_yaml_file_parses() {
    let mut checked = BTreeSet::new();
    for (shape, d) in all_renders() {
        for (path, f) in &d.files {
            let name = file_name(path);
            if !(name.ends_with(".yaml") || name.ends_with(".yml") || name == "kubeconfig") {
                continue;
            }
            let text = std::str::from_utf8(&f.content).unwrap();
            let v: serde_norway::Value = serde_norway::from_str(text)
                .unwrap_or_else(|e| panic!("{shape} {path} is not YAML: {e}\n{text}"));
            assert!(
                v.is_mapping(),
                "{shape} {path} is not a YAML mapping:\n{text}"
            );
            checked.insert(path.clone());
            if name == "kubelet.yaml" {
                let dns: Vec<&str> = v["clusterDNS"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|ip| ip.as_str().unwrap())
                    .collect();
                assert_eq!(dns, ["198.19.255.254", "fdc6::ffff"], "{shape}");
                assert_eq!(v["clusterDomain"].as_str(), Some("cluster.local"));
            }
        }
    }
    for path in [
        "/opt/kubelet/etc/kubelet.yaml",
        "/opt/kubelet/etc/kubeconfig",
        "/opt/kube-scheduler/etc/kube-scheduler.yaml",
        "/opt/kube-scheduler/etc/kubeconfig",
        "/opt/kube-controller-manager/etc/kubeconfig",
        "/opt/fluent-bit/etc/fluent-bit.yml",
    ] {
        assert!(checked.contains(path), "{path} was not rendered");
    }
    assert!(
        checked
            .iter()
            .any(|p| p.ends_with("/zot.yml") || p.ends_with("/zot.yaml")),
        "no zot config was rendered: {checked:?}"
    );
}
