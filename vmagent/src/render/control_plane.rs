//! The control plane, on knc only: kube-apiserver, kube-controller-manager and kube-scheduler
//! (their env files, wrappers, kubeconfigs, scheduler config and units).
//!
//! Each service's inputs are exactly the files it reads, so a settings change restarts only the
//! services whose rendered files changed (e.g. `KUBE_LOG_LEVEL` touches the three control-plane
//! services, never kubelet).

use std::net::IpAddr;

use super::node::wrapper;
use super::template::fill;
use super::unit::{Sandbox, Unit};
use super::{
    CA, Desired, Features, Inputs, RenderError, api_server_url, base64_setting, env_file,
    kubeconfig, setting_list,
};
use crate::accounts::Kind;
use crate::settings::Settings;

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
        control_plane(inp.settings, d)?;
    }
    Ok(())
}

/// A comma-separated list of CIDRs (`default` when unset or empty); returns the items and
/// whether any is IPv4 / IPv6.
fn cidrs<'a>(
    s: &'a Settings,
    key: &str,
    default: &'a str,
) -> Result<(Vec<&'a str>, bool, bool), RenderError> {
    let items = setting_list(s, key, default)?;
    let (mut v4, mut v6) = (false, false);
    for item in &items {
        let parsed = item.split_once('/').and_then(|(addr, len)| {
            let addr = addr.parse::<IpAddr>().ok()?;
            let len = len
                .parse::<u8>()
                .ok()
                .filter(|_| len.bytes().all(|b| b.is_ascii_digit()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (len <= max).then_some(addr)
        });
        match parsed {
            Some(IpAddr::V4(_)) => v4 = true,
            Some(IpAddr::V6(_)) => v6 = true,
            None => {
                return Err(RenderError::Invalid(format!(
                    "{key} has {item:?}, which is not a CIDR; it must be a comma-separated list like 100.64.0.0/10,fd64::/48"
                )));
            }
        }
    }
    Ok((items, v4, v6))
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

fn control_plane(s: &Settings, d: &mut Desired) -> Result<(), RenderError> {
    // Validation and defaults (kube.sh): every value below is the effective one.
    let server = api_server_url(s)?;
    let port = s.number("KUBE_API_PORT", 6443, 65535)?.to_string();
    let log_level = s.number("KUBE_LOG_LEVEL", 2, 10)?.to_string();
    let (cluster_cidr, has_v4, has_v6) = cidrs(s, "KUBE_CLUSTER_CIDR", "100.64.0.0/10,fd64::/48")?;
    let cluster_cidr = cluster_cidr.join(",");
    let mask_v4 = s
        .number("KUBE_NODE_CIDR_MASK_SIZE_IPV4", 24, 32)?
        .to_string();
    let mask_v6 = s
        .number("KUBE_NODE_CIDR_MASK_SIZE_IPV6", 64, 128)?
        .to_string();
    let service_range = cidrs(
        s,
        "KUBE_SERVICE_CLUSTER_IP_RANGE",
        "198.18.0.0/15,fdc6::/108",
    )?
    .0
    .join(",");
    let signing_algs = s.get_or("OIDC_SIGNING_ALGS", "RS256");
    let etcd = s.get_or("KUBE_API_ETCD_SERVERS", "https://127.0.0.1:2378");
    let hostname = s.get("KUBE_API_PUBLIC_HOSTNAME");
    let issuer = match s.get("KUBE_SERVICE_ACCOUNT_ISSUER") {
        "" => format!("https://{hostname}"),
        v => v.to_string(),
    };
    if hostname.is_empty() {
        d.notes.push(
            "KUBE_API_PUBLIC_HOSTNAME is empty (mutable.env): kube-apiserver cannot start until a delivery sets it"
                .into(),
        );
    }
    if s.get("OIDC_ISSUER").is_empty() {
        d.notes.push("OIDC_ISSUER is empty (mutable.env): kube-apiserver cannot start until a delivery sets it".into());
    }

    // OIDC CA: written when given, removed when not.
    let oidc_ca_file = if s.get("OIDC_CA_CERT").is_empty() {
        d.absent.insert(OIDC_CA.to_string());
        ""
    } else {
        let pem = base64_setting(s, "OIDC_CA_CERT")?;
        d.file(OIDC_CA, 0o640, "root:podplane", pem);
        OIDC_CA
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
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", &service_range),
            ("OIDC_ISSUER", s.get("OIDC_ISSUER")),
            ("OIDC_SIGNING_ALGS", signing_algs),
            ("CLUSTER_ID", s.get("CLUSTER_ID")),
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
            ("KUBE_CLUSTER_CIDR", &cluster_cidr),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV4", &mask_v4),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV6", &mask_v6),
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", &service_range),
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
