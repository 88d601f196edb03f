//! kubelet, on every node: its env file, KubeletConfiguration, kubeconfig, run wrapper and
//! unit. Each of them is an input of `kubelet.service`, so a change to any restarts kubelet and
//! nothing else.

use std::net::IpAddr;

use super::node::wrapper;
use super::template::fill;
use super::unit::Unit;
use super::{CA, Desired, Features, Inputs, RenderError, api_server_url, env_file, kubeconfig};
use crate::contract::Kind;
use crate::settings::NodeSettings;

pub(super) const KUBELET_ENV: &str = "/opt/env/kubelet.env";
pub(super) const KUBELET_RUN: &str = "/opt/kubelet/bin/run-kubelet.sh";
pub(super) const KUBELET_YAML: &str = "/opt/kubelet/etc/kubelet.yaml";
pub(super) const KUBELET_KUBECONFIG: &str = "/opt/kubelet/etc/kubeconfig";
pub(super) const KUBELET_CLIENT_CRT: &str = "/opt/crt/kubelet.client.crt";
pub(super) const KUBELET_CLIENT_KEY: &str = "/opt/key/kubelet/kubelet.client.key";
pub(super) const KUBELET_SERVER_CRT: &str = "/opt/crt/kubelet.server.crt";
pub(super) const KUBELET_SERVER_KEY: &str = "/opt/key/kubelet/kubelet.server.key";

pub fn render(inp: &Inputs, _f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    kubelet(&inp.settings, inp.kind == Kind::Knc, d)
}

fn kubelet(s: &NodeSettings, control_plane: bool, d: &mut Desired) -> Result<(), RenderError> {
    d.file(
        KUBELET_ENV,
        0o600,
        "root:root",
        env_file(&[
            ("PROVIDER_INSTANCE_TYPE", &s.instance_type),
            ("PROVIDER_REGION", &s.region),
            ("PROVIDER_ZONE", &s.zone),
            ("INSTANCE_IPV4", &s.ipv4_text()),
            ("INSTANCE_IPV6", &s.ipv6_text()),
            ("INSTANCE_ID", s.instance_id_text()),
            ("INSTANCE_PROVIDER_ID", &s.instance_provider_id),
        ]),
    );
    d.file(
        KUBELET_YAML,
        0o640,
        "root:kubelet",
        kubelet_yaml(&s.kube.cluster_dns),
    );
    d.file(
        KUBELET_KUBECONFIG,
        0o640,
        "root:kubelet",
        kubeconfig(
            "kubelet",
            &api_server_url(s),
            KUBELET_CLIENT_CRT,
            KUBELET_CLIENT_KEY,
        ),
    );
    d.file(KUBELET_RUN, 0o755, "root:root", kubelet_wrapper());
    let certs = [
        CA,
        KUBELET_CLIENT_CRT,
        KUBELET_CLIENT_KEY,
        KUBELET_SERVER_CRT,
        KUBELET_SERVER_KEY,
    ];
    // On a control-plane node the kubelet waits for the local API server too; a worker has
    // none.
    let after = if control_plane {
        "containerd.service kube-apiserver.service"
    } else {
        "containerd.service"
    };
    // No sandbox: the kubelet is root by design. It mounts volumes, manages cgroups, runs
    // containers through containerd, reads devices and writes /var/lib/kubelet, the pod logs
    // and the node's sysctls; a mount namespace or read-only /sys of its own would break pods.
    d.file(
        "/etc/systemd/system/kubelet.service",
        0o644,
        "root:root",
        Unit::new("Kubernetes kubelet")
            .set("Wants", after)
            .set("After", after)
            .set("StartLimitIntervalSec", "0")
            .condition_paths(&certs)
            .section("Service")
            .set("Type", "exec")
            .set("User", "root")
            .set("ExecStart", KUBELET_RUN)
            .set("SyslogIdentifier", "kubelet")
            .set("Restart", "always")
            .set("RestartSec", "10")
            .wanted_by("multi-user.target"),
    );
    let mut inputs = vec![
        KUBELET_ENV,
        KUBELET_RUN,
        KUBELET_YAML,
        KUBELET_KUBECONFIG,
        super::containerd::CONFIG,
    ];
    inputs.extend(certs);
    d.service("kubelet.service", true, &inputs);
    Ok(())
}

fn kubelet_yaml(dns: &[IpAddr]) -> String {
    let dns: Vec<String> = dns.iter().map(|ip| format!("- \"{ip}\"")).collect();
    fill(
        include_str!("../../templates/kubelet.yaml"),
        &[
            ("CA", CA),
            ("KUBELET_SERVER_CRT", KUBELET_SERVER_CRT),
            ("KUBELET_SERVER_KEY", KUBELET_SERVER_KEY),
            ("CLUSTER_DNS", &dns.join("\n")),
        ],
    )
}

/// run-kubelet.sh: every decision is made from kubelet.env at start, so the env file alone
/// drives the flags.
fn kubelet_wrapper() -> String {
    let exec = fill(
        include_str!("../../templates/run-kubelet.body.sh"),
        &[
            ("KUBELET_ENV", KUBELET_ENV),
            ("KUBELET_YAML", KUBELET_YAML),
            ("KUBELET_KUBECONFIG", KUBELET_KUBECONFIG),
        ],
    );
    wrapper("kubelet", KUBELET_ENV, &[], exec.trim_end())
}

#[cfg(test)]
#[path = "kubelet/tests.rs"]
mod tests;
