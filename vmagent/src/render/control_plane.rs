//! The control plane, on knc only: kube-apiserver, kube-controller-manager and kube-scheduler
//! (their env files, wrappers, kubeconfigs, scheduler config and units).
//!
//! Each service's inputs are exactly the files it reads, so a settings change restarts only the
//! services whose rendered files changed (e.g. `KUBE_LOG_LEVEL` touches the three control-plane
//! services, never kubelet).

use ipnet::IpNet;

use super::node::wrapper;
use super::template::fill;
use super::unit::{Sandbox, Unit};
use super::{CA, Desired, Features, Inputs, RenderError, api_server_url, env_file, kubeconfig};
use crate::contract::Kind;
use crate::settings::NodeSettings;

const APISERVER_ENV: &str = "/opt/env/kube-apiserver.env";
const APISERVER_RUN: &str = "/opt/kube-apiserver/bin/run-kube-apiserver.sh";
const SA_PUB: &str = "/opt/pub/service-accounts.pub";
const SA_KEY: &str = "/opt/key/kube-apiserver/service-accounts.key";
const APISERVER_CLIENT_CRT: &str = "/opt/crt/kube-apiserver.client.crt";
const APISERVER_CLIENT_KEY: &str = "/opt/key/kube-apiserver/kube-apiserver.client.key";
const APISERVER_SERVER_CRT: &str = "/opt/crt/kube-apiserver.server.crt";
const APISERVER_SERVER_KEY: &str = "/opt/key/kube-apiserver/kube-apiserver.server.key";
const FRONT_PROXY_CRT: &str = "/opt/crt/front-proxy.client.crt";
const FRONT_PROXY_KEY: &str = "/opt/key/kube-apiserver/front-proxy.client.key";
pub const OIDC_CA: &str = "/opt/crt/oidc-ca.pem";

/// Every file kube-apiserver needs before it can start (unit conditions and wrapper check).
const APISERVER_FILES: [&str; 9] = [
    SA_PUB,
    SA_KEY,
    CA,
    APISERVER_CLIENT_CRT,
    APISERVER_CLIENT_KEY,
    APISERVER_SERVER_CRT,
    APISERVER_SERVER_KEY,
    FRONT_PROXY_CRT,
    FRONT_PROXY_KEY,
];

const KCM_ENV: &str = "/opt/env/kube-controller-manager.env";
const KCM_RUN: &str = "/opt/kube-controller-manager/bin/run-kube-controller-manager.sh";
const KCM_KUBECONFIG: &str = "/opt/kube-controller-manager/etc/kubeconfig";
const KCM_CRT: &str = "/opt/crt/kube-controller-manager.client.crt";
const KCM_KEY: &str = "/opt/key/kube-controller-manager/kube-controller-manager.client.key";

const SCHEDULER_YAML: &str = "/opt/kube-scheduler/etc/kube-scheduler.yaml";
const SCHEDULER_KUBECONFIG: &str = "/opt/kube-scheduler/etc/kubeconfig";
const SCHEDULER_CRT: &str = "/opt/crt/kube-scheduler.client.crt";
const SCHEDULER_KEY: &str = "/opt/key/kube-scheduler/kube-scheduler.client.key";

pub fn render(inp: &Inputs, _f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    if inp.kind == Kind::Knc {
        control_plane(&inp.settings, d)?;
    }
    Ok(())
}

/// A control-plane unit: `Type=exec`, restarted forever, waiting for its certificates. The
/// user and the service have the same name. Sandboxed with nothing writable: each reads its
/// certificates, keys and configuration and keeps its state in netsy (kube-apiserver) or in the
/// API server (the others); their serving certificates are given, so none writes a cert dir;
/// all ports are above 1024. kube-apiserver also gets netlink: without `--advertise-address` it
/// finds the address it advertises from the node's interfaces.
fn cp_unit(description: &str, user: &str, after: &str, exec: &str, certs: &[&str]) -> String {
    Unit::new(description)
        .set("Wants", after)
        .set("After", after)
        .set("StartLimitIntervalSec", "0")
        .condition_paths(certs)
        .section("Service")
        .set("Type", "exec")
        .set("User", user)
        .set("ExecStart", exec)
        .set("SyslogIdentifier", user)
        .set("Restart", "always")
        .set("RestartSec", "10")
        .sandbox(&Sandbox {
            netlink: user == "kube-apiserver",
            memory_deny_write_execute: true,
            ..Sandbox::default()
        })
        .wanted_by("multi-user.target")
}

fn control_plane(s: &NodeSettings, d: &mut Desired) -> Result<(), RenderError> {
    // Checked and defaulted when the settings were parsed: every value below is the
    // effective one.
    let k = &s.kube;
    let server = api_server_url(s);
    let port = k.api_port.to_string();
    let log_level = k.log_level.to_string();
    let cluster_cidr = &k.cluster_cidr.text;
    let has_v4 = k
        .cluster_cidr
        .value
        .iter()
        .any(|n| matches!(n, IpNet::V4(_)));
    let has_v6 = k
        .cluster_cidr
        .value
        .iter()
        .any(|n| matches!(n, IpNet::V6(_)));
    let mask_v4 = k.node_cidr_mask_size_ipv4.to_string();
    let mask_v6 = k.node_cidr_mask_size_ipv6.to_string();
    let service_range = &k.service_cluster_ip_range.text;
    let signing_algs = &s.oidc.signing_algs;
    let etcd = &k.api_etcd_servers.text;
    let hostname = k.api_public_hostname.as_ref().map_or("", |h| h.as_str());
    let issuer = match &k.service_account_issuer {
        None => format!("https://{hostname}"),
        Some(v) => v.text.clone(),
    };
    let oidc_issuer = s.oidc.issuer.as_ref().map_or("", |i| i.text.as_str());
    if hostname.is_empty() {
        d.notes.push(
            "KUBE_API_PUBLIC_HOSTNAME is empty (mutable.env): kube-apiserver cannot start until a delivery sets it"
                .into(),
        );
    }
    if oidc_issuer.is_empty() {
        d.notes.push("OIDC_ISSUER is empty (mutable.env): kube-apiserver cannot start until a delivery sets it".into());
    }

    // OIDC CA: written when given, removed when not.
    let oidc_ca_file = match &s.oidc.ca_cert {
        None => {
            d.absent.insert(OIDC_CA.to_string());
            ""
        }
        Some(pem) => {
            d.file(OIDC_CA, 0o640, "root:podplane", pem.clone());
            OIDC_CA
        }
    };

    // kube-apiserver
    d.file(
        APISERVER_ENV,
        0o640,
        "root:kube-apiserver",
        env_file(&[
            ("KUBE_LOG_LEVEL", &log_level),
            ("KUBE_API_PUBLIC_HOSTNAME", hostname),
            ("KUBE_API_PORT", &port),
            ("KUBE_API_ETCD_SERVERS", etcd),
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", service_range),
            ("OIDC_ISSUER", oidc_issuer),
            ("OIDC_SIGNING_ALGS", signing_algs),
            ("CLUSTER_ID", s.cluster_id_text()),
            ("OIDC_CA_FILE", oidc_ca_file),
            ("KUBE_SERVICE_ACCOUNT_ISSUER", &issuer),
        ]),
    );
    d.file(APISERVER_RUN, 0o755, "root:root", apiserver_wrapper());
    d.file(
        "/etc/systemd/system/kube-apiserver.service",
        0o644,
        "root:root",
        cp_unit(
            "Kubernetes API server",
            "kube-apiserver",
            "netsy.service",
            APISERVER_RUN,
            &APISERVER_FILES,
        ),
    );
    let mut inputs = vec![APISERVER_ENV, APISERVER_RUN];
    if !oidc_ca_file.is_empty() {
        inputs.push(OIDC_CA);
    }
    inputs.extend(APISERVER_FILES);
    d.service("kube-apiserver.service", true, &inputs);

    // kube-controller-manager
    d.file(
        KCM_ENV,
        0o640,
        "root:kube-controller-manager",
        env_file(&[
            ("KUBE_LOG_LEVEL", &log_level),
            ("KUBE_CLUSTER_CIDR", cluster_cidr),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV4", &mask_v4),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV6", &mask_v6),
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", service_range),
        ]),
    );
    d.file(
        KCM_KUBECONFIG,
        0o640,
        "root:kube-controller-manager",
        kubeconfig("kube-controller-manager", &server, KCM_CRT, KCM_KEY),
    );
    d.file(KCM_RUN, 0o755, "root:root", kcm_wrapper(has_v4, has_v6));
    let kcm_certs = [CA, KCM_CRT, KCM_KEY];
    d.file(
        "/etc/systemd/system/kube-controller-manager.service",
        0o644,
        "root:root",
        cp_unit(
            "Kubernetes controller manager",
            "kube-controller-manager",
            "kube-apiserver.service",
            KCM_RUN,
            &kcm_certs,
        ),
    );
    let mut inputs = vec![KCM_ENV, KCM_RUN, KCM_KUBECONFIG];
    inputs.extend(kcm_certs);
    d.service("kube-controller-manager.service", true, &inputs);

    // kube-scheduler
    d.file(
        SCHEDULER_YAML,
        0o640,
        "root:kube-scheduler",
        format!(
            "# Rendered by vmagent; changes are overwritten.\napiVersion: kubescheduler.config.k8s.io/v1\n\
             kind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: {SCHEDULER_KUBECONFIG}\n"
        ),
    );
    d.file(
        SCHEDULER_KUBECONFIG,
        0o640,
        "root:kube-scheduler",
        kubeconfig("kube-scheduler", &server, SCHEDULER_CRT, SCHEDULER_KEY),
    );
    let scheduler_certs = [CA, SCHEDULER_CRT, SCHEDULER_KEY];
    d.file(
        "/etc/systemd/system/kube-scheduler.service",
        0o644,
        "root:root",
        cp_unit(
            "Kubernetes scheduler",
            "kube-scheduler",
            "kube-apiserver.service",
            &format!(
                "/usr/bin/kube-scheduler --v={log_level} --config={SCHEDULER_YAML} \\\n  \
                 --tls-min-version=VersionTLS13 --tls-cipher-suites=TLS_AES_256_GCM_SHA384 \\\n  \
                 --tls-cert-file={SCHEDULER_CRT} \\\n  --tls-private-key-file={SCHEDULER_KEY}"
            ),
            &scheduler_certs,
        ),
    );
    let mut inputs = vec![SCHEDULER_YAML, SCHEDULER_KUBECONFIG];
    inputs.extend(scheduler_certs);
    d.service("kube-scheduler.service", true, &inputs);
    Ok(())
}

/// run-kube-apiserver.sh: refuse to start (and let systemd retry) until every certificate and
/// key is delivered; `--oidc-ca-file` only when the CA is configured and present.
fn apiserver_wrapper() -> String {
    let exec = fill(
        include_str!("../../templates/run-kube-apiserver.body.sh"),
        &[
            ("APISERVER_FILES", &APISERVER_FILES.join(" \\\n  ")),
            ("SA_PUB", SA_PUB),
            ("SA_KEY", SA_KEY),
            ("CA", CA),
            ("APISERVER_CLIENT_CRT", APISERVER_CLIENT_CRT),
            ("APISERVER_CLIENT_KEY", APISERVER_CLIENT_KEY),
            ("APISERVER_SERVER_CRT", APISERVER_SERVER_CRT),
            ("APISERVER_SERVER_KEY", APISERVER_SERVER_KEY),
            ("FRONT_PROXY_CRT", FRONT_PROXY_CRT),
            ("FRONT_PROXY_KEY", FRONT_PROXY_KEY),
        ],
    );
    wrapper("kube-apiserver", APISERVER_ENV, &[], exec.trim_end())
}

/// run-kube-controller-manager.sh; the node CIDR mask flags are rendered only for the address
/// families `KUBE_CLUSTER_CIDR` has (kube-controller-manager rejects a mask for a missing one).
fn kcm_wrapper(has_v4: bool, has_v6: bool) -> String {
    let mut exec = format!(
        "exec /usr/bin/kube-controller-manager \\\n  \"--v=${{KUBE_LOG_LEVEL}}\" \\\n  \
         --kubeconfig={KCM_KUBECONFIG} \\\n  --bind-address=0.0.0.0 \\\n  --cluster-name=kubernetes \\\n  \
         --root-ca-file={CA} \\\n  --client-ca-file={CA} \\\n  \"--cluster-cidr=${{KUBE_CLUSTER_CIDR}}\" \\\n  \
         --allocate-node-cidrs=true \\\n  \"--service-cluster-ip-range=${{KUBE_SERVICE_CLUSTER_IP_RANGE}}\" \\\n  \
         --use-service-account-credentials=true \\\n  --tls-min-version=VersionTLS13 \\\n  \
         --tls-cipher-suites=TLS_AES_256_GCM_SHA384"
    );
    if has_v4 {
        exec.push_str(" \\\n  \"--node-cidr-mask-size-ipv4=${KUBE_NODE_CIDR_MASK_SIZE_IPV4}\"");
    }
    if has_v6 {
        exec.push_str(" \\\n  \"--node-cidr-mask-size-ipv6=${KUBE_NODE_CIDR_MASK_SIZE_IPV6}\"");
    }
    wrapper("kube-controller-manager", KCM_ENV, &[], &exec)
}

#[cfg(test)]
#[path = "control_plane/tests.rs"]
mod tests;
