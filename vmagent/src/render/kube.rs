//! Kubernetes: kubelet on every node (env, KubeletConfiguration, kubeconfig, wrapper, unit) and,
//! on knc, the control plane: kube-apiserver, kube-controller-manager and kube-scheduler
//! (upstream's kube.sh plus the units and wrappers it relies on).
//!
//! Each service's inputs are exactly the files it reads, so a settings change restarts only the
//! services whose rendered files changed (e.g. `KUBE_LOG_LEVEL` touches the three control-plane
//! services, never kubelet).

use std::net::IpAddr;

use super::node::{conditions, wrapper};
use super::{
    Desired, Features, Inputs, RenderError, api_server_url, base64_setting, env_file, kubeconfig,
};
use crate::accounts::Kind;
use crate::settings::Settings;

const CA: &str = "/opt/crt/ca.crt";

const KUBELET_ENV: &str = "/opt/env/kubelet.env";
const KUBELET_RUN: &str = "/opt/kubelet/bin/run-kubelet.sh";
const KUBELET_YAML: &str = "/opt/kubelet/etc/kubelet.yaml";
const KUBELET_KUBECONFIG: &str = "/opt/kubelet/etc/kubeconfig";
const KUBELET_CLIENT_CRT: &str = "/opt/crt/kubelet.client.crt";
const KUBELET_CLIENT_KEY: &str = "/opt/key/kubelet/kubelet.client.key";
const KUBELET_SERVER_CRT: &str = "/opt/crt/kubelet.server.crt";
const KUBELET_SERVER_KEY: &str = "/opt/key/kubelet/kubelet.server.key";

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
    kubelet(inp.settings, d)?;
    if inp.kind == Kind::Knc {
        control_plane(inp.settings, d)?;
    }
    Ok(())
}

/// A comma-separated setting (`default` when unset or empty), items trimmed; an empty item is an
/// error naming the key.
fn list<'a>(s: &'a Settings, key: &str, default: &'a str) -> Result<Vec<&'a str>, RenderError> {
    let v = s.get_or(key, default);
    let items: Vec<&str> = v.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(RenderError::Invalid(format!(
            "{key} is {v:?}; it must be a comma-separated list with no empty items"
        )));
    }
    Ok(items)
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

/// A comma-separated list of CIDRs (`default` when unset or empty); returns the items and
/// whether any is IPv4 / IPv6.
fn cidrs<'a>(
    s: &'a Settings,
    key: &str,
    default: &'a str,
) -> Result<(Vec<&'a str>, bool, bool), RenderError> {
    let items = list(s, key, default)?;
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
        format!(
            "[Unit]\nDescription=Kubernetes kubelet\nWants=containerd.service kube-apiserver.service\n\
             After=containerd.service kube-apiserver.service\nStartLimitIntervalSec=0\n{}\n\
             [Service]\nType=exec\nUser=root\nExecStart={KUBELET_RUN}\nRestart=always\nRestartSec=10\n\n\
             [Install]\nWantedBy=multi-user.target\n",
            conditions(&certs)
        ),
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

/// A control-plane unit: `Type=exec`, restarted forever, waiting for its certificates.
fn cp_unit(description: &str, user: &str, after: &str, exec: &str, certs: &[&str]) -> String {
    format!(
        "[Unit]\nDescription={description}\nWants={after}\nAfter={after}\nStartLimitIntervalSec=0\n{}\n\
         [Service]\nType=exec\nUser={user}\nExecStart={exec}\nRestart=always\nRestartSec=10\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        conditions(certs)
    )
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
    let mut exec = format!("for f in \\\n  {}; do\n", APISERVER_FILES.join(" \\\n  "));
    exec.push_str(
        r#"  if [[ ! -f "${f}" ]]; then
    echo "[run-kube-apiserver] missing ${f}; waiting for its delivery" >&2
    sleep 2
    exit 1
  fi
done
"#,
    );
    exec.push_str(&format!(
        r#"args=(
  "--v=${{KUBE_LOG_LEVEL}}"
  "--service-cluster-ip-range=${{KUBE_SERVICE_CLUSTER_IP_RANGE}}"
  --goaway-chance=0
  "--external-hostname=${{KUBE_API_PUBLIC_HOSTNAME}}"
  "--secure-port=${{KUBE_API_PORT}}"
  --etcd-compaction-interval=0
  --watch-cache=false
  "--etcd-servers=${{KUBE_API_ETCD_SERVERS}}"
  --etcd-healthcheck-timeout=5s
  --etcd-readycheck-timeout=5s
  "--service-account-issuer=${{KUBE_SERVICE_ACCOUNT_ISSUER}}"
  "--service-account-jwks-uri=https://${{KUBE_API_PUBLIC_HOSTNAME}}/.well-known/openid-configuration"
  --service-account-key-file={SA_PUB}
  --service-account-signing-key-file={SA_KEY}
  --client-ca-file={CA}
  --etcd-certfile={APISERVER_CLIENT_CRT}
  --etcd-keyfile={APISERVER_CLIENT_KEY}
  --etcd-cafile={CA}
  --tls-cert-file={APISERVER_SERVER_CRT}
  --tls-private-key-file={APISERVER_SERVER_KEY}
  --tls-min-version=VersionTLS13
  --tls-cipher-suites=TLS_AES_256_GCM_SHA384
  --kubelet-client-certificate={APISERVER_CLIENT_CRT}
  --kubelet-client-key={APISERVER_CLIENT_KEY}
  --kubelet-certificate-authority={CA}
  --proxy-client-cert-file={FRONT_PROXY_CRT}
  --proxy-client-key-file={FRONT_PROXY_KEY}
  --requestheader-allowed-names=front-proxy-client
  --requestheader-client-ca-file={CA}
  --requestheader-extra-headers-prefix=X-Remote-Extra-
  --requestheader-group-headers=X-Remote-Group
  --requestheader-uid-headers=X-Remote-Uid
  --requestheader-username-headers=X-Remote-User
  --kubelet-preferred-address-types=InternalIP,InternalDNS
  --anonymous-auth=false
  "--oidc-issuer-url=${{OIDC_ISSUER}}"
  "--oidc-client-id=${{CLUSTER_ID}}"
  --oidc-username-claim=email
  --oidc-username-prefix=
  --oidc-groups-claim=groups
  --oidc-groups-prefix=
  "--oidc-signing-algs=${{OIDC_SIGNING_ALGS}}"
  --authorization-mode=Node,RBAC
  --enable-admission-plugins=NodeRestriction,NamespaceExists,OwnerReferencesPermissionEnforcement
  --allow-privileged=true
)
if [[ -n "${{OIDC_CA_FILE:-}}" && -f "${{OIDC_CA_FILE}}" ]]; then
  args+=("--oidc-ca-file=${{OIDC_CA_FILE}}")
fi
exec /usr/bin/kube-apiserver "${{args[@]}}""#
    ));
    wrapper("kube-apiserver", APISERVER_ENV, &[], &exec)
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
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::render::testutil::*;

    const CP_UNITS: [&str; 3] = [
        "kube-apiserver.service",
        "kube-controller-manager.service",
        "kube-scheduler.service",
    ];

    fn try_render(kind: Kind, s: &Settings) -> Result<Desired, RenderError> {
        let m = manifest();
        let f = Features::of(kind, s).unwrap();
        let mut d = Desired::default();
        render(&inputs(kind, s, &m), &f, &mut d)?;
        Ok(d)
    }

    fn rendered(kind: Kind, s: &Settings) -> Desired {
        try_render(kind, s).unwrap()
    }

    fn text<'a>(d: &'a Desired, path: &str) -> &'a str {
        std::str::from_utf8(
            &d.files
                .get(path)
                .unwrap_or_else(|| panic!("{path} not rendered"))
                .content,
        )
        .unwrap()
    }

    fn keys(env: &str) -> Vec<&str> {
        env.lines().map(|l| l.split_once('=').unwrap().0).collect()
    }

    fn env_value<'a>(env: &'a str, key: &str) -> &'a str {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in env"))
            .trim_matches('\'')
    }

    fn assert_file(d: &Desired, path: &str, mode: u32, owner: &str) {
        let f = d
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not rendered"));
        assert_eq!(f.mode, mode, "{path}");
        assert_eq!(format!("{}:{}", f.user, f.group), owner, "{path}");
        assert!(!f.secret, "{path}");
    }

    fn service_inputs(d: &Desired, unit: &str) -> BTreeSet<String> {
        let svc = d
            .services
            .get(unit)
            .unwrap_or_else(|| panic!("{unit} not declared"));
        assert!(svc.enabled, "{unit}");
        svc.inputs.clone()
    }

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    /// Services whose inputs changed between two renders (what `plan` would restart).
    fn restarted(a: &Desired, b: &Desired) -> BTreeSet<String> {
        let changed: BTreeSet<&String> = a
            .files
            .keys()
            .chain(b.files.keys())
            .filter(|p| a.files.get(*p) != b.files.get(*p))
            .collect();
        b.services
            .values()
            .filter(|s| s.inputs.iter().any(|i| changed.contains(i)))
            .map(|s| s.unit.clone())
            .collect()
    }

    #[test]
    fn kubelet_files_on_both_kinds_and_providers() {
        for kind in [Kind::Knd, Kind::Knc] {
            for provider in ["aws", "local"] {
                let s = settings(kind, provider);
                let d = rendered(kind, &s);
                assert_file(&d, KUBELET_ENV, 0o600, "root:root");
                assert_file(&d, KUBELET_YAML, 0o640, "root:kubelet");
                assert_file(&d, KUBELET_KUBECONFIG, 0o640, "root:kubelet");
                assert_file(&d, KUBELET_RUN, 0o755, "root:root");
                assert_file(
                    &d,
                    "/etc/systemd/system/kubelet.service",
                    0o644,
                    "root:root",
                );
                let env = text(&d, KUBELET_ENV);
                assert_eq!(
                    keys(env),
                    [
                        "PROVIDER_INSTANCE_TYPE",
                        "PROVIDER_REGION",
                        "PROVIDER_ZONE",
                        "INSTANCE_IPV4",
                        "INSTANCE_IPV6",
                        "INSTANCE_ID",
                        "INSTANCE_PROVIDER_ID"
                    ]
                );
                assert_eq!(
                    env_value(env, "INSTANCE_IPV6"),
                    if provider == "aws" {
                        "2a05:d018::23"
                    } else {
                        ""
                    }
                );
                assert_eq!(
                    text(&d, KUBELET_KUBECONFIG),
                    kubeconfig(
                        "kubelet",
                        "https://kube-apiserver.podplane.internal:6443",
                        "/opt/crt/kubelet.client.crt",
                        "/opt/key/kubelet/kubelet.client.key"
                    )
                );
                assert_eq!(
                    service_inputs(&d, "kubelet.service"),
                    set(&[
                        "/etc/systemd/system/kubelet.service",
                        "/opt/env/kubelet.env",
                        "/opt/kubelet/bin/run-kubelet.sh",
                        "/opt/kubelet/etc/kubelet.yaml",
                        "/opt/kubelet/etc/kubeconfig",
                        "/etc/containerd/config.toml",
                        "/opt/crt/ca.crt",
                        "/opt/crt/kubelet.client.crt",
                        "/opt/key/kubelet/kubelet.client.key",
                        "/opt/crt/kubelet.server.crt",
                        "/opt/key/kubelet/kubelet.server.key",
                    ])
                );
                let unit = text(&d, "/etc/systemd/system/kubelet.service");
                for line in [
                    "User=root",
                    "Type=exec",
                    "ExecStart=/opt/kubelet/bin/run-kubelet.sh",
                    "Restart=always",
                    "RestartSec=10",
                    "StartLimitIntervalSec=0",
                    "ConditionPathExists=/opt/crt/ca.crt",
                    "ConditionPathExists=/opt/crt/kubelet.client.crt",
                    "ConditionPathExists=/opt/key/kubelet/kubelet.client.key",
                    "ConditionPathExists=/opt/crt/kubelet.server.crt",
                    "ConditionPathExists=/opt/key/kubelet/kubelet.server.key",
                    "Wants=containerd.service kube-apiserver.service",
                    "After=containerd.service kube-apiserver.service",
                    "WantedBy=multi-user.target",
                ] {
                    assert!(
                        unit.lines().any(|l| l == line),
                        "{line} missing from:\n{unit}"
                    );
                }
                // StartLimitIntervalSec belongs to [Unit].
                assert!(
                    unit.find("StartLimitIntervalSec").unwrap() < unit.find("[Service]").unwrap()
                );
            }
        }
    }

    #[test]
    fn knd_has_no_control_plane() {
        for provider in ["aws", "local"] {
            let mut s = settings(Kind::Knd, provider);
            s.set("OIDC_CA_CERT", "not base64 !!");
            s.set("KUBE_LOG_LEVEL", "99");
            let d = rendered(Kind::Knd, &s);
            assert_eq!(d.services.keys().collect::<Vec<_>>(), ["kubelet.service"]);
            assert_eq!(
                d.files.keys().collect::<Vec<_>>(),
                [
                    "/etc/systemd/system/kubelet.service",
                    "/opt/env/kubelet.env",
                    "/opt/kubelet/bin/run-kubelet.sh",
                    "/opt/kubelet/etc/kubeconfig",
                    "/opt/kubelet/etc/kubelet.yaml",
                ]
            );
            assert!(d.absent.is_empty());
            assert!(d.notes.is_empty());
        }
    }

    #[test]
    fn knc_control_plane_files_modes_owners_and_services() {
        for provider in ["aws", "local"] {
            let s = settings(Kind::Knc, provider);
            let d = rendered(Kind::Knc, &s);
            for (path, mode, owner) in [
                (APISERVER_ENV, 0o640, "root:kube-apiserver"),
                (APISERVER_RUN, 0o755, "root:root"),
                (
                    "/etc/systemd/system/kube-apiserver.service",
                    0o644,
                    "root:root",
                ),
                (KCM_ENV, 0o640, "root:kube-controller-manager"),
                (KCM_RUN, 0o755, "root:root"),
                (KCM_KUBECONFIG, 0o640, "root:kube-controller-manager"),
                (
                    "/etc/systemd/system/kube-controller-manager.service",
                    0o644,
                    "root:root",
                ),
                (SCHEDULER_YAML, 0o640, "root:kube-scheduler"),
                (SCHEDULER_KUBECONFIG, 0o640, "root:kube-scheduler"),
                (
                    "/etc/systemd/system/kube-scheduler.service",
                    0o644,
                    "root:root",
                ),
            ] {
                assert_file(&d, path, mode, owner);
            }
            let mut units: Vec<&str> = CP_UNITS.to_vec();
            units.push("kubelet.service");
            units.sort();
            assert_eq!(d.services.keys().collect::<Vec<_>>(), units);
            // Every declared service has its unit file rendered.
            for unit in d.services.keys() {
                assert!(
                    d.files.contains_key(&format!("/etc/systemd/system/{unit}")),
                    "{unit}"
                );
            }
            // No OIDC CA in the fixture: the file must go.
            assert!(!d.files.contains_key(OIDC_CA));
            assert_eq!(d.absent, set(&[OIDC_CA]));
            assert!(d.notes.is_empty(), "{:?}", d.notes);

            let mut expect: Vec<&str> = vec![
                "/etc/systemd/system/kube-apiserver.service",
                APISERVER_ENV,
                APISERVER_RUN,
            ];
            expect.extend(APISERVER_FILES);
            assert_eq!(service_inputs(&d, "kube-apiserver.service"), set(&expect));
            assert_eq!(
                service_inputs(&d, "kube-controller-manager.service"),
                set(&[
                    "/etc/systemd/system/kube-controller-manager.service",
                    "/opt/env/kube-controller-manager.env",
                    "/opt/kube-controller-manager/bin/run-kube-controller-manager.sh",
                    "/opt/kube-controller-manager/etc/kubeconfig",
                    "/opt/crt/ca.crt",
                    "/opt/crt/kube-controller-manager.client.crt",
                    "/opt/key/kube-controller-manager/kube-controller-manager.client.key",
                ])
            );
            assert_eq!(
                service_inputs(&d, "kube-scheduler.service"),
                set(&[
                    "/etc/systemd/system/kube-scheduler.service",
                    "/opt/kube-scheduler/etc/kube-scheduler.yaml",
                    "/opt/kube-scheduler/etc/kubeconfig",
                    "/opt/crt/ca.crt",
                    "/opt/crt/kube-scheduler.client.crt",
                    "/opt/key/kube-scheduler/kube-scheduler.client.key",
                ])
            );
            // Every input of every service is either rendered here or delivered by Nstance.
            for svc in d.services.values() {
                for i in &svc.inputs {
                    assert!(
                        d.files.contains_key(i)
                            || i.starts_with("/opt/crt/")
                            || i.starts_with("/opt/key/")
                            || i.starts_with("/opt/pub/")
                            || i == "/etc/containerd/config.toml",
                        "{}: {i}",
                        svc.unit
                    );
                }
            }
        }
    }

    #[test]
    fn kube_apiserver_unit() {
        let d = rendered(Kind::Knc, &settings(Kind::Knc, "aws"));
        let unit = text(&d, "/etc/systemd/system/kube-apiserver.service");
        let conds: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.strip_prefix("ConditionPathExists="))
            .collect();
        assert_eq!(conds, APISERVER_FILES);
        for line in [
            "User=kube-apiserver",
            "Type=exec",
            "ExecStart=/opt/kube-apiserver/bin/run-kube-apiserver.sh",
            "Restart=always",
            "Wants=netsy.service",
            "After=netsy.service",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "{line} missing from:\n{unit}"
            );
        }
        let kcm = text(&d, "/etc/systemd/system/kube-controller-manager.service");
        for line in [
            "User=kube-controller-manager",
            "ExecStart=/opt/kube-controller-manager/bin/run-kube-controller-manager.sh",
            "Restart=always",
            "RestartSec=10",
            "StartLimitIntervalSec=0",
            "Wants=kube-apiserver.service",
            "After=kube-apiserver.service",
            "ConditionPathExists=/opt/crt/ca.crt",
            "ConditionPathExists=/opt/crt/kube-controller-manager.client.crt",
            "ConditionPathExists=/opt/key/kube-controller-manager/kube-controller-manager.client.key",
        ] {
            assert!(
                kcm.lines().any(|l| l == line),
                "{line} missing from:\n{kcm}"
            );
        }
    }

    #[test]
    fn kubelet_yaml_fields_and_cluster_dns() {
        let mut s = settings(Kind::Knd, "aws");
        let d = rendered(Kind::Knd, &s);
        let yaml = text(&d, KUBELET_YAML);
        assert!(yaml.contains(
            "clusterDNS:\n- \"198.19.255.254\"\n- \"fdc6::ffff\"\nclusterDomain: cluster.local\n"
        ));
        for line in [
            "apiVersion: kubelet.config.k8s.io/v1beta1",
            "kind: KubeletConfiguration",
            "contentType: application/json",
            "    clientCAFile: /opt/crt/ca.crt",
            "  mode: AlwaysAllow",
            "tlsCertFile: /opt/crt/kubelet.server.crt",
            "tlsPrivateKeyFile: /opt/key/kubelet/kubelet.server.key",
            "tlsMinVersion: VersionTLS13",
            "cgroupDriver: systemd",
            "containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock",
            "shutdownGracePeriod: 30s",
            "shutdownGracePeriodCriticalPods: 10s",
            "readOnlyPort: 0",
            "failCgroupV1: true",
            "serializeImagePulls: false",
            "registryPullQPS: 10",
            "registryBurst: 20",
            "resolvConf: /run/systemd/resolve/resolv.conf",
            "maxPods: 110",
            "evictionPressureTransitionPeriod: 1m",
        ] {
            assert!(
                yaml.lines().any(|l| l == line),
                "{line} missing from:\n{yaml}"
            );
        }
        assert_eq!(yaml.matches("enabled: false").count(), 2);
        assert_eq!(yaml.matches("30s\n").count(), 5);

        s.set("KUBE_CLUSTER_DNS", "10.96.0.10, fd00:0::a");
        let d = rendered(Kind::Knd, &s);
        assert!(
            text(&d, KUBELET_YAML)
                .contains("clusterDNS:\n- \"10.96.0.10\"\n- \"fd00::a\"\nclusterDomain")
        );

        s.set("KUBE_CLUSTER_DNS", "");
        let d = rendered(Kind::Knd, &s);
        assert!(text(&d, KUBELET_YAML).contains("- \"198.19.255.254\"\n- \"fdc6::ffff\"\n"));

        for bad in ["10.96.0.10,kube-dns", "10.96.0.10,", "300.1.1.1"] {
            s.set("KUBE_CLUSTER_DNS", bad);
            let e = try_render(Kind::Knd, &s).unwrap_err().to_string();
            assert!(e.starts_with("KUBE_CLUSTER_DNS "), "{e}");
        }
        s.set("KUBE_CLUSTER_DNS", "10.96.0.10,kube-dns");
        let e = try_render(Kind::Knc, &s).unwrap_err().to_string();
        assert!(e.contains("\"kube-dns\""), "{e}");
    }

    #[test]
    fn kubelet_wrapper_text() {
        let d = rendered(Kind::Knd, &settings(Kind::Knd, "local"));
        let w = text(&d, KUBELET_RUN);
        assert!(w.starts_with("#!/bin/bash\n"));
        assert!(w.contains("set -euo pipefail\nsource /opt/env/kubelet.env\n"));
        for needle in [
            "\"node.kubernetes.io/instance-type=${PROVIDER_INSTANCE_TYPE:-}\"",
            "\"topology.kubernetes.io/region=${PROVIDER_REGION:-}\"",
            "\"topology.kubernetes.io/zone=${PROVIDER_ZONE:-}\"",
            "  if [[ -n \"${label#*=}\" ]]; then\n",
            "node_ip=\"${INSTANCE_IPV4:-}\"\n",
            "  node_ip=\"${node_ip:+${node_ip},}${INSTANCE_IPV6}\"\n",
            "  --config=/opt/kubelet/etc/kubelet.yaml\n",
            "  --kubeconfig=/opt/kubelet/etc/kubeconfig\n",
            "  \"--node-ip=${node_ip}\"\n",
            "  \"--hostname-override=${INSTANCE_ID:-}\"\n",
            "  args+=(\"--node-labels=${labels}\")\n",
            "  args+=(\"--provider-id=${INSTANCE_PROVIDER_ID}\")\n",
        ] {
            assert!(w.contains(needle), "{needle} missing from:\n{w}");
        }
        assert!(w.ends_with("exec /usr/bin/kubelet \"${args[@]}\"\n"));
    }

    /// Run a rendered wrapper under bash with every rendered file (and `present`, as empty files)
    /// below a temp root, and fake binaries in `<root>/usr/bin` that print their arguments.
    fn run_wrapper(d: &Desired, run: &str, present: &[&str]) -> (bool, Vec<String>, String) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap();
        let rebase = |text: &str| {
            text.replace("/opt/", &format!("{root}/opt/"))
                .replace("/usr/bin/", &format!("{root}/usr/bin/"))
                .replace("sleep 2", "sleep 0")
        };
        let write = |path: &str, content: &[u8]| {
            let p = Path::new(root).join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            p
        };
        for (path, f) in &d.files {
            let content = match std::str::from_utf8(&f.content) {
                Ok(t) => rebase(t).into_bytes(),
                Err(_) => f.content.clone(),
            };
            write(path, &content);
        }
        for path in present {
            write(path, b"");
        }
        for bin in ["kubelet", "kube-apiserver", "kube-controller-manager"] {
            let p = write(
                &format!("/usr/bin/{bin}"),
                b"#!/bin/bash\nprintf '%s\\n' \"$@\"\n",
            );
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = Command::new("bash")
            .arg(Path::new(root).join(run.trim_start_matches('/')))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let prefix = format!("{root}/");
        let args = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.replace(&prefix, "/"))
            .collect();
        let stderr = String::from_utf8(out.stderr).unwrap().replace(&prefix, "/");
        (out.status.success(), args, stderr)
    }

    #[test]
    fn kubelet_wrapper_runs() {
        // aws: both addresses, all labels, provider id.
        let s = settings(Kind::Knd, "aws");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(ok, "{err}");
        assert_eq!(
            args,
            [
                "--config=/opt/kubelet/etc/kubelet.yaml",
                "--kubeconfig=/opt/kubelet/etc/kubeconfig",
                "--node-ip=10.0.1.23,2a05:d018::23",
                "--hostname-override=i-0abc123",
                "--node-labels=node.kubernetes.io/instance-type=m7i.large,topology.kubernetes.io/region=eu-west-1,topology.kubernetes.io/zone=eu-west-1a",
                "--provider-id=aws:///eu-west-1a/i-0abc123",
            ]
        );
        assert!(err.contains("[run-kubelet] starting"), "{err}");

        // local: no IPv6 → no trailing comma.
        let s = settings(Kind::Knd, "local");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(ok, "{err}");
        assert!(
            args.contains(&"--node-ip=10.0.1.23".to_string()),
            "{args:?}"
        );

        // Empty labels and provider id are omitted; one label keeps no stray comma.
        let mut s = settings(Kind::Knd, "local");
        s.set("PROVIDER_INSTANCE_TYPE", "");
        s.set("PROVIDER_REGION", "");
        s.set("PROVIDER_ZONE", "");
        s.set("INSTANCE_PROVIDER_ID", "");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(ok, "{err}");
        assert_eq!(
            args,
            [
                "--config=/opt/kubelet/etc/kubelet.yaml",
                "--kubeconfig=/opt/kubelet/etc/kubeconfig",
                "--node-ip=10.0.1.23",
                "--hostname-override=i-0abc123",
            ]
        );
        s.set("PROVIDER_ZONE", "zone a's");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(ok, "{err}");
        assert_eq!(
            args[4],
            "--node-labels=topology.kubernetes.io/zone=zone a's"
        );
        assert_eq!(args.len(), 5);

        // IPv6 only; then no address at all fails loudly.
        s.set("INSTANCE_IPV4", "");
        s.set("INSTANCE_IPV6", "fd00::5");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(ok, "{err}");
        assert_eq!(args[2], "--node-ip=fd00::5");
        s.set("INSTANCE_IPV6", "");
        let (ok, args, err) = run_wrapper(&rendered(Kind::Knd, &s), KUBELET_RUN, &[]);
        assert!(!ok);
        assert!(args.is_empty());
        assert!(
            err.contains("INSTANCE_IPV4 and INSTANCE_IPV6 are both empty"),
            "{err}"
        );
    }

    #[test]
    fn apiserver_env_order_values_and_defaults() {
        let mut s = settings(Kind::Knc, "aws");
        let d = rendered(Kind::Knc, &s);
        let env = text(&d, APISERVER_ENV);
        assert_eq!(
            keys(env),
            [
                "KUBE_LOG_LEVEL",
                "KUBE_API_PUBLIC_HOSTNAME",
                "KUBE_API_PORT",
                "KUBE_API_ETCD_SERVERS",
                "KUBE_SERVICE_CLUSTER_IP_RANGE",
                "OIDC_ISSUER",
                "OIDC_SIGNING_ALGS",
                "CLUSTER_ID",
                "OIDC_CA_FILE",
                "KUBE_SERVICE_ACCOUNT_ISSUER",
            ]
        );
        assert_eq!(
            env_value(env, "KUBE_SERVICE_ACCOUNT_ISSUER"),
            "https://api.c1.example.com:6443"
        );
        assert_eq!(env_value(env, "OIDC_CA_FILE"), "");
        assert_eq!(env_value(env, "CLUSTER_ID"), "c1");
        assert_eq!(
            keys(text(&d, KCM_ENV)),
            [
                "KUBE_LOG_LEVEL",
                "KUBE_CLUSTER_CIDR",
                "KUBE_NODE_CIDR_MASK_SIZE_IPV4",
                "KUBE_NODE_CIDR_MASK_SIZE_IPV6",
                "KUBE_SERVICE_CLUSTER_IP_RANGE",
            ]
        );

        // Empty values fall back to kube.sh's defaults.
        for key in [
            "KUBE_LOG_LEVEL",
            "KUBE_API_PORT",
            "KUBE_API_ETCD_SERVERS",
            "KUBE_CLUSTER_CIDR",
            "KUBE_NODE_CIDR_MASK_SIZE_IPV4",
            "KUBE_NODE_CIDR_MASK_SIZE_IPV6",
            "KUBE_SERVICE_CLUSTER_IP_RANGE",
            "OIDC_SIGNING_ALGS",
            "KUBE_SERVICE_ACCOUNT_ISSUER",
        ] {
            s.set(key, "");
        }
        let d = rendered(Kind::Knc, &s);
        let env = text(&d, APISERVER_ENV);
        assert_eq!(env_value(env, "KUBE_LOG_LEVEL"), "2");
        assert_eq!(env_value(env, "KUBE_API_PORT"), "6443");
        assert_eq!(
            env_value(env, "KUBE_API_ETCD_SERVERS"),
            "https://127.0.0.1:2378"
        );
        assert_eq!(
            env_value(env, "KUBE_SERVICE_CLUSTER_IP_RANGE"),
            "198.18.0.0/15,fdc6::/108"
        );
        assert_eq!(env_value(env, "OIDC_SIGNING_ALGS"), "RS256");
        assert_eq!(
            env_value(env, "KUBE_SERVICE_ACCOUNT_ISSUER"),
            "https://api.c1.example.com"
        );
        let kcm = text(&d, KCM_ENV);
        assert_eq!(
            env_value(kcm, "KUBE_CLUSTER_CIDR"),
            "100.64.0.0/10,fd64::/48"
        );
        assert_eq!(env_value(kcm, "KUBE_NODE_CIDR_MASK_SIZE_IPV4"), "24");
        assert_eq!(env_value(kcm, "KUBE_NODE_CIDR_MASK_SIZE_IPV6"), "64");
        assert_eq!(
            env_value(kcm, "KUBE_SERVICE_CLUSTER_IP_RANGE"),
            "198.18.0.0/15,fdc6::/108"
        );

        // A non-default port reaches the env and every kubeconfig.
        s.set("KUBE_API_PORT", "8443");
        let d = rendered(Kind::Knc, &s);
        assert_eq!(env_value(text(&d, APISERVER_ENV), "KUBE_API_PORT"), "8443");
        for kc in [KUBELET_KUBECONFIG, KCM_KUBECONFIG, SCHEDULER_KUBECONFIG] {
            assert!(
                text(&d, kc).contains("server: https://kube-apiserver.podplane.internal:8443\n"),
                "{kc}"
            );
        }

        // Missing hostname / issuer are notes, not errors.
        s.set("KUBE_API_PUBLIC_HOSTNAME", "");
        s.set("OIDC_ISSUER", "");
        let d = rendered(Kind::Knc, &s);
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
    }

    #[test]
    fn control_plane_validation_names_the_key() {
        for (key, value) in [
            ("KUBE_LOG_LEVEL", "11"),
            ("KUBE_LOG_LEVEL", "two"),
            ("KUBE_API_PORT", "0"),
            ("KUBE_API_PORT", "70000"),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV4", "33"),
            ("KUBE_NODE_CIDR_MASK_SIZE_IPV6", "129"),
            ("KUBE_CLUSTER_CIDR", "100.64.0.0"),
            ("KUBE_CLUSTER_CIDR", "100.64.0.0/33"),
            ("KUBE_CLUSTER_CIDR", "100.64.0.0/10,,fd64::/48"),
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", "fdc6::/129"),
            ("KUBE_SERVICE_CLUSTER_IP_RANGE", "services/12"),
            ("OIDC_CA_CERT", "%%% not base64"),
        ] {
            let mut s = settings(Kind::Knc, "local");
            s.set(key, value);
            let e = try_render(Kind::Knc, &s).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}={value}: {e}");
            // knd neither reads nor validates them, except the API port its kubeconfig uses.
            if key != "KUBE_API_PORT" {
                try_render(Kind::Knd, &s).unwrap();
            }
        }
    }

    #[test]
    fn oidc_ca_written_when_given_and_absent_when_not() {
        use base64::Engine;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let mut s = settings(Kind::Knc, "aws");
        let without = rendered(Kind::Knc, &s);
        s.set(
            "OIDC_CA_CERT",
            &base64::engine::general_purpose::STANDARD.encode(pem),
        );
        let with = rendered(Kind::Knc, &s);
        assert_file(&with, OIDC_CA, 0o640, "root:podplane");
        assert_eq!(text(&with, OIDC_CA), pem);
        assert!(with.absent.is_empty());
        assert_eq!(
            env_value(text(&with, APISERVER_ENV), "OIDC_CA_FILE"),
            OIDC_CA
        );
        assert!(service_inputs(&with, "kube-apiserver.service").contains(OIDC_CA));
        assert!(!service_inputs(&without, "kube-apiserver.service").contains(OIDC_CA));
        // Adding or removing the CA restarts only the API server.
        assert_eq!(restarted(&without, &with), set(&["kube-apiserver.service"]));
        assert_eq!(restarted(&with, &without), set(&["kube-apiserver.service"]));

        s.set("OIDC_CA_CERT", "!!!");
        let e = try_render(Kind::Knc, &s).unwrap_err();
        assert!(matches!(e, RenderError::Invalid(_)));
        assert!(
            e.to_string()
                .starts_with("OIDC_CA_CERT is not valid base64"),
            "{e}"
        );
    }

    #[test]
    fn log_level_change_restarts_exactly_the_control_plane() {
        let mut s = settings(Kind::Knc, "aws");
        let a = rendered(Kind::Knc, &s);
        s.set("KUBE_LOG_LEVEL", "4");
        let b = rendered(Kind::Knc, &s);
        assert_eq!(restarted(&a, &b), set(&CP_UNITS));
        // The changed files are exactly the two env files and the scheduler's unit.
        let changed: Vec<&String> = a
            .files
            .keys()
            .filter(|p| a.files.get(*p) != b.files.get(*p))
            .collect();
        assert_eq!(
            changed,
            [
                "/etc/systemd/system/kube-scheduler.service",
                "/opt/env/kube-apiserver.env",
                "/opt/env/kube-controller-manager.env",
            ]
        );
        assert!(text(&b, "/etc/systemd/system/kube-scheduler.service").contains("--v=4 "));
        assert!(text(&b, KCM_RUN).contains("\"--v=${KUBE_LOG_LEVEL}\""));
        assert!(text(&b, APISERVER_RUN).contains("\"--v=${KUBE_LOG_LEVEL}\""));
        // On knd nothing changes.
        let mut s = settings(Kind::Knd, "aws");
        let a = rendered(Kind::Knd, &s);
        s.set("KUBE_LOG_LEVEL", "4");
        assert_eq!(a, rendered(Kind::Knd, &s));
    }

    #[test]
    fn restarts_follow_what_each_setting_touches() {
        let cases: [(&str, &str, &[&str]); 6] = [
            ("KUBE_CLUSTER_DNS", "10.96.0.10", &["kubelet.service"]),
            ("INSTANCE_IPV6", "fd00::9", &["kubelet.service"]),
            (
                "KUBE_API_PORT",
                "8443",
                &[
                    "kube-apiserver.service",
                    "kube-controller-manager.service",
                    "kube-scheduler.service",
                    "kubelet.service",
                ],
            ),
            (
                "KUBE_CLUSTER_CIDR",
                "100.64.0.0/10",
                &["kube-controller-manager.service"],
            ),
            (
                "KUBE_SERVICE_CLUSTER_IP_RANGE",
                "198.18.0.0/15",
                &["kube-apiserver.service", "kube-controller-manager.service"],
            ),
            (
                "OIDC_ISSUER",
                "https://other.example.com",
                &["kube-apiserver.service"],
            ),
        ];
        for (key, value, expect) in cases {
            let mut s = settings(Kind::Knc, "aws");
            let a = rendered(Kind::Knc, &s);
            s.set(key, value);
            let b = rendered(Kind::Knc, &s);
            assert_eq!(restarted(&a, &b), set(expect), "{key}");
        }
    }

    #[test]
    fn kcm_mask_flags_follow_cluster_cidr_families() {
        let v4 = "\"--node-cidr-mask-size-ipv4=${KUBE_NODE_CIDR_MASK_SIZE_IPV4}\"";
        let v6 = "\"--node-cidr-mask-size-ipv6=${KUBE_NODE_CIDR_MASK_SIZE_IPV6}\"";
        for (cidr, has4, has6) in [
            ("100.64.0.0/10,fd64::/48", true, true),
            ("100.64.0.0/10", true, false),
            ("fd64::/48", false, true),
            ("fd64::/48 , 100.64.0.0/10", true, true),
        ] {
            let mut s = settings(Kind::Knc, "local");
            s.set("KUBE_CLUSTER_CIDR", cidr);
            let d = rendered(Kind::Knc, &s);
            let w = text(&d, KCM_RUN);
            assert_eq!(w.contains(v4), has4, "{cidr}:\n{w}");
            assert_eq!(w.contains(v6), has6, "{cidr}:\n{w}");
            assert!(!w.ends_with("\\\n"), "{w}");
        }

        let d = rendered(Kind::Knc, &settings(Kind::Knc, "local"));
        let (ok, args, err) = run_wrapper(&d, KCM_RUN, &[]);
        assert!(ok, "{err}");
        assert_eq!(
            args,
            [
                "--v=2",
                "--kubeconfig=/opt/kube-controller-manager/etc/kubeconfig",
                "--bind-address=0.0.0.0",
                "--cluster-name=kubernetes",
                "--root-ca-file=/opt/crt/ca.crt",
                "--client-ca-file=/opt/crt/ca.crt",
                "--cluster-cidr=100.64.0.0/10,fd64::/48",
                "--allocate-node-cidrs=true",
                "--service-cluster-ip-range=198.18.0.0/15,fdc6::/108",
                "--use-service-account-credentials=true",
                "--tls-min-version=VersionTLS13",
                "--tls-cipher-suites=TLS_AES_256_GCM_SHA384",
                "--node-cidr-mask-size-ipv4=24",
                "--node-cidr-mask-size-ipv6=64",
            ]
        );
        assert_eq!(
            text(&d, KCM_KUBECONFIG),
            kubeconfig(
                "kube-controller-manager",
                "https://kube-apiserver.podplane.internal:6443",
                "/opt/crt/kube-controller-manager.client.crt",
                "/opt/key/kube-controller-manager/kube-controller-manager.client.key"
            )
        );
    }

    #[test]
    fn apiserver_wrapper_checks_files_and_passes_flags() {
        use base64::Engine;
        let mut s = settings(Kind::Knc, "aws");
        let d = rendered(Kind::Knc, &s);
        let w = text(&d, APISERVER_RUN);
        assert!(w.contains("source /opt/env/kube-apiserver.env\n"));

        // Each missing file is named and the wrapper fails.
        for missing in APISERVER_FILES {
            let present: Vec<&str> = APISERVER_FILES
                .iter()
                .copied()
                .filter(|f| *f != missing)
                .collect();
            let (ok, args, err) = run_wrapper(&d, APISERVER_RUN, &present);
            assert!(!ok, "{missing}");
            assert!(args.is_empty());
            assert!(err.contains(&format!("missing {missing};")), "{err}");
        }

        let expected = [
            "--v=2",
            "--service-cluster-ip-range=198.18.0.0/15,fdc6::/108",
            "--goaway-chance=0",
            "--external-hostname=api.c1.example.com",
            "--secure-port=6443",
            "--etcd-compaction-interval=0",
            "--watch-cache=false",
            "--etcd-servers=https://127.0.0.1:2378",
            "--etcd-healthcheck-timeout=5s",
            "--etcd-readycheck-timeout=5s",
            "--service-account-issuer=https://api.c1.example.com:6443",
            "--service-account-jwks-uri=https://api.c1.example.com/.well-known/openid-configuration",
            "--service-account-key-file=/opt/pub/service-accounts.pub",
            "--service-account-signing-key-file=/opt/key/kube-apiserver/service-accounts.key",
            "--client-ca-file=/opt/crt/ca.crt",
            "--etcd-certfile=/opt/crt/kube-apiserver.client.crt",
            "--etcd-keyfile=/opt/key/kube-apiserver/kube-apiserver.client.key",
            "--etcd-cafile=/opt/crt/ca.crt",
            "--tls-cert-file=/opt/crt/kube-apiserver.server.crt",
            "--tls-private-key-file=/opt/key/kube-apiserver/kube-apiserver.server.key",
            "--tls-min-version=VersionTLS13",
            "--tls-cipher-suites=TLS_AES_256_GCM_SHA384",
            "--kubelet-client-certificate=/opt/crt/kube-apiserver.client.crt",
            "--kubelet-client-key=/opt/key/kube-apiserver/kube-apiserver.client.key",
            "--kubelet-certificate-authority=/opt/crt/ca.crt",
            "--proxy-client-cert-file=/opt/crt/front-proxy.client.crt",
            "--proxy-client-key-file=/opt/key/kube-apiserver/front-proxy.client.key",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-client-ca-file=/opt/crt/ca.crt",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-uid-headers=X-Remote-Uid",
            "--requestheader-username-headers=X-Remote-User",
            "--kubelet-preferred-address-types=InternalIP,InternalDNS",
            "--anonymous-auth=false",
            "--oidc-issuer-url=https://auth.example.com",
            "--oidc-client-id=c1",
            "--oidc-username-claim=email",
            "--oidc-username-prefix=",
            "--oidc-groups-claim=groups",
            "--oidc-groups-prefix=",
            "--oidc-signing-algs=RS256",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,NamespaceExists,OwnerReferencesPermissionEnforcement",
            "--allow-privileged=true",
        ];
        let (ok, args, err) = run_wrapper(&d, APISERVER_RUN, &APISERVER_FILES);
        assert!(ok, "{err}");
        assert_eq!(args, expected);

        // With an OIDC CA rendered, --oidc-ca-file is appended.
        s.set(
            "OIDC_CA_CERT",
            &base64::engine::general_purpose::STANDARD.encode("PEM\n"),
        );
        let mut d = rendered(Kind::Knc, &s);
        let (ok, args, err) = run_wrapper(&d, APISERVER_RUN, &APISERVER_FILES);
        assert!(ok, "{err}");
        assert_eq!(args[..expected.len()], expected);
        assert_eq!(
            args[expected.len()..],
            ["--oidc-ca-file=/opt/crt/oidc-ca.pem"]
        );
        // ... but not when the file is not there (yet).
        d.files.remove(OIDC_CA);
        let (ok, args, err) = run_wrapper(&d, APISERVER_RUN, &APISERVER_FILES);
        assert!(ok, "{err}");
        assert_eq!(args, expected);
    }

    #[test]
    fn scheduler_config_and_unit() {
        let mut s = settings(Kind::Knc, "local");
        s.set("KUBE_LOG_LEVEL", "");
        let d = rendered(Kind::Knc, &s);
        assert_eq!(
            text(&d, SCHEDULER_YAML),
            "# Rendered by vmagent; changes are overwritten.\napiVersion: kubescheduler.config.k8s.io/v1\n\
             kind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /opt/kube-scheduler/etc/kubeconfig\n"
        );
        assert_eq!(
            text(&d, SCHEDULER_KUBECONFIG),
            kubeconfig(
                "kube-scheduler",
                "https://kube-apiserver.podplane.internal:6443",
                "/opt/crt/kube-scheduler.client.crt",
                "/opt/key/kube-scheduler/kube-scheduler.client.key"
            )
        );
        let unit = text(&d, "/etc/systemd/system/kube-scheduler.service");
        assert!(
            unit.contains(
                "ExecStart=/usr/bin/kube-scheduler --v=2 --config=/opt/kube-scheduler/etc/kube-scheduler.yaml \\\n  \
                 --tls-min-version=VersionTLS13 --tls-cipher-suites=TLS_AES_256_GCM_SHA384 \\\n  \
                 --tls-cert-file=/opt/crt/kube-scheduler.client.crt \\\n  \
                 --tls-private-key-file=/opt/key/kube-scheduler/kube-scheduler.client.key\n"
            ),
            "{unit}"
        );
        for line in [
            "User=kube-scheduler",
            "Type=exec",
            "Restart=always",
            "Wants=kube-apiserver.service",
            "After=kube-apiserver.service",
            "ConditionPathExists=/opt/crt/ca.crt",
            "ConditionPathExists=/opt/crt/kube-scheduler.client.crt",
            "ConditionPathExists=/opt/key/kube-scheduler/kube-scheduler.client.key",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "{line} missing from:\n{unit}"
            );
        }
    }
}
