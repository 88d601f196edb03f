//! kubelet, on every node: its env file, KubeletConfiguration, kubeconfig, run wrapper and
//! unit. Each of them is an input of `kubelet.service`, so a change to any restarts kubelet and
//! nothing else.

use std::net::IpAddr;

use super::node::wrapper;
use super::unit::Unit;
use super::{
    CA, Desired, Features, Inputs, RenderError, api_server_url, env_file, kubeconfig, list,
};
use crate::settings::Settings;

pub(super) const KUBELET_ENV: &str = "/opt/env/kubelet.env";
pub(super) const KUBELET_RUN: &str = "/opt/kubelet/bin/run-kubelet.sh";
pub(super) const KUBELET_YAML: &str = "/opt/kubelet/etc/kubelet.yaml";
pub(super) const KUBELET_KUBECONFIG: &str = "/opt/kubelet/etc/kubeconfig";
pub(super) const KUBELET_CLIENT_CRT: &str = "/opt/crt/kubelet.client.crt";
pub(super) const KUBELET_CLIENT_KEY: &str = "/opt/key/kubelet/kubelet.client.key";
pub(super) const KUBELET_SERVER_CRT: &str = "/opt/crt/kubelet.server.crt";
pub(super) const KUBELET_SERVER_KEY: &str = "/opt/key/kubelet/kubelet.server.key";

pub fn render(inp: &Inputs, _f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    kubelet(inp.settings, d)
}

/// `KUBE_CLUSTER_DNS`: the cluster DNS service addresses kubelet hands to pods.
fn cluster_dns(s: &Settings) -> Result<Vec<IpAddr>, RenderError> {
    list(s, "KUBE_CLUSTER_DNS", "198.19.255.254,fdc6::ffff")?
        .into_iter()
        .map(|item| {
            item.parse::<IpAddr>().map_err(|_| {
                RenderError::Invalid(format!(
                    "KUBE_CLUSTER_DNS has {item:?}, which is not an IP address; it must be a comma-separated list of IPv4/IPv6 addresses"
                ))
            })
        })
        .collect()
}

fn kubelet(s: &Settings, d: &mut Desired) -> Result<(), RenderError> {
    d.file(
        KUBELET_ENV,
        0o600,
        "root:root",
        env_file(&[
            ("PROVIDER_INSTANCE_TYPE", s.get("PROVIDER_INSTANCE_TYPE")),
            ("PROVIDER_REGION", s.get("PROVIDER_REGION")),
            ("PROVIDER_ZONE", s.get("PROVIDER_ZONE")),
            ("INSTANCE_IPV4", s.get("INSTANCE_IPV4")),
            ("INSTANCE_IPV6", s.get("INSTANCE_IPV6")),
            ("INSTANCE_ID", s.get("INSTANCE_ID")),
            ("INSTANCE_PROVIDER_ID", s.get("INSTANCE_PROVIDER_ID")),
        ]),
    );
    d.file(
        KUBELET_YAML,
        0o640,
        "root:kubelet",
        kubelet_yaml(&cluster_dns(s)?),
    );
    d.file(
        KUBELET_KUBECONFIG,
        0o640,
        "root:kubelet",
        kubeconfig(
            "kubelet",
            &api_server_url(s)?,
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
    d.file(
        "/etc/systemd/system/kubelet.service",
        0o644,
        "root:root",
        Unit::new("Kubernetes kubelet")
            .set("Wants", "containerd.service kube-apiserver.service")
            .set("After", "containerd.service kube-apiserver.service")
            .set("StartLimitIntervalSec", "0")
            .condition_paths(&certs)
            .section("Service")
            .set("Type", "exec")
            .set("User", "root")
            .set("ExecStart", KUBELET_RUN)
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
    let dns: String = dns.iter().map(|ip| format!("- \"{ip}\"\n")).collect();
    format!(
        r#"# Rendered by vmagent; changes are overwritten.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
contentType: application/json
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {CA}
authorization:
  mode: AlwaysAllow
tlsCertFile: {KUBELET_SERVER_CRT}
tlsPrivateKeyFile: {KUBELET_SERVER_KEY}
tlsMinVersion: VersionTLS13
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock
shutdownGracePeriod: 30s
shutdownGracePeriodCriticalPods: 10s
readOnlyPort: 0
failCgroupV1: true
serializeImagePulls: false
registryPullQPS: 10
registryBurst: 20
resolvConf: /run/systemd/resolve/resolv.conf
clusterDNS:
{dns}clusterDomain: cluster.local
maxPods: 110
kubeReserved:
  cpu: 200m
  memory: 256Mi
systemReserved:
  cpu: 200m
  memory: 256Mi
evictionHard:
  memory.available: 50Mi
  nodefs.available: "5%"
  nodefs.inodesFree: "2%"
  imagefs.available: "5%"
evictionSoft:
  memory.available: 100Mi
  nodefs.available: "10%"
  nodefs.inodesFree: "5%"
  imagefs.available: "10%"
evictionSoftGracePeriod:
  memory.available: 30s
  nodefs.available: 30s
  nodefs.inodesFree: 30s
  imagefs.available: 30s
evictionPressureTransitionPeriod: 1m
"#
    )
}

/// run-kubelet.sh: every decision is made from kubelet.env at start, so the env file alone
/// drives the flags.
fn kubelet_wrapper() -> String {
    let exec = format!(
        r#"labels=""
for label in \
  "node.kubernetes.io/instance-type=${{PROVIDER_INSTANCE_TYPE:-}}" \
  "topology.kubernetes.io/region=${{PROVIDER_REGION:-}}" \
  "topology.kubernetes.io/zone=${{PROVIDER_ZONE:-}}"; do
  if [[ -n "${{label#*=}}" ]]; then
    labels="${{labels:+${{labels}},}}${{label}}"
  fi
done
node_ip="${{INSTANCE_IPV4:-}}"
if [[ -n "${{INSTANCE_IPV6:-}}" ]]; then
  node_ip="${{node_ip:+${{node_ip}},}}${{INSTANCE_IPV6}}"
fi
if [[ -z "${{node_ip}}" ]]; then
  echo "[run-kubelet] INSTANCE_IPV4 and INSTANCE_IPV6 are both empty in {KUBELET_ENV}" >&2
  sleep 2
  exit 1
fi
args=(
  --config={KUBELET_YAML}
  --kubeconfig={KUBELET_KUBECONFIG}
  "--node-ip=${{node_ip}}"
  "--hostname-override=${{INSTANCE_ID:-}}"
)
if [[ -n "${{labels}}" ]]; then
  args+=("--node-labels=${{labels}}")
fi
if [[ -n "${{INSTANCE_PROVIDER_ID:-}}" ]]; then
  args+=("--provider-id=${{INSTANCE_PROVIDER_ID}}")
fi
exec /usr/bin/kubelet "${{args[@]}}""#
    );
    wrapper("kubelet", KUBELET_ENV, &[], &exec)
}

#[cfg(test)]
#[path = "kubelet/tests.rs"]
mod tests;
