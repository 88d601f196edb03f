//! The Nstance certificate templates in `podplane.cluster.main.tf` and the certificate files
//! each node kind receives.

use vmagent::contract::Kind;
use vmagent::contract::certs::{self, Delivery};

use crate::config;
use crate::hcl::{Value, field, ident, raw, str, strs};

/// One Nstance certificate template.
struct Cert {
    /// The delivered certificate this template issues.
    cert: Delivery,
    kind: &'static str,
    cn: &'static str,
    org: Option<&'static str>,
    uri: Option<&'static str>,
}

const CERTS: &[Cert] = &[
    Cert {
        cert: certs::CONTAINERD_CLIENT,
        kind: "client",
        cn: "containerd.client",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::FRONT_PROXY_CLIENT,
        kind: "client",
        cn: "front-proxy-client",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::KUBE_APISERVER_CLIENT,
        kind: "client",
        cn: "kube-apiserver.client",
        org: Some("system:masters"),
        uri: Some("netsy://{{ .Cluster.ID }}/client/kube-apiserver"),
    },
    Cert {
        cert: certs::KUBE_APISERVER_SERVER,
        kind: "server",
        cn: "kube-apiserver.server",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::KUBE_CONTROLLER_MANAGER_CLIENT,
        kind: "client",
        cn: "system:kube-controller-manager",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::KUBE_SCHEDULER_CLIENT,
        kind: "client",
        cn: "system:kube-scheduler",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::KUBE2IAM_CLIENT,
        kind: "client",
        cn: "kube2iam.client",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::KUBELET_CLIENT,
        kind: "client",
        cn: "system:node:{{ .Instance.ID }}",
        org: Some("system:nodes"),
        uri: None,
    },
    Cert {
        cert: certs::KUBELET_SERVER,
        kind: "server",
        cn: "kubelet.server",
        org: None,
        uri: None,
    },
    Cert {
        cert: certs::NETSY_CLIENT,
        kind: "client",
        cn: "netsy.client",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        cert: certs::NETSY_SERVER,
        kind: "server",
        cn: "netsy.server",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        cert: certs::REGISTRY_SERVER,
        kind: "server",
        cn: "registry.server",
        org: None,
        uri: None,
    },
];

/// The certificates Nstance issues to a node of `kind` from the templates above (by template
/// name), in delivery order: the node's side of the same table installs exactly these.
pub fn certificate_files(kind: Kind) -> Vec<&'static str> {
    certs::issued_to(kind).map(|d| d.stem()).collect()
}

pub(super) fn certificates(network: &config::ServiceNetwork) -> Value {
    let mut fields = Vec::new();
    for c in CERTS {
        let mut dns = vec![str("{{ .Instance.Hostname }}"), str("localhost")];
        let mut ip: Vec<Value> = [
            "{{ .Instance.IP4 }}",
            "{{ .Instance.IP6 }}",
            "127.0.0.1",
            "::1",
        ]
        .into_iter()
        .map(str)
        .collect();
        if c.cert == certs::KUBE_APISERVER_SERVER {
            dns.push(str("kube-apiserver.podplane.internal"));
            dns.push(raw("var.kubernetes_api_hostname"));
            ip.extend(network.api.iter().map(|a| str(a.to_string())));
        }
        let mut f = vec![
            ident("kind", str(c.kind)),
            ident("cn", str(c.cn)),
            ident("dns", Value::List(dns)),
            ident("ip", Value::List(ip)),
            ident("ttl", Value::Num(8760)),
        ];
        if let Some(o) = c.org {
            f.push(ident("organization", strs(&[o])));
        }
        if let Some(u) = c.uri {
            f.push(ident("uri", strs(&[u])));
        }
        fields.push(field(c.cert.stem(), Value::Inline(f)));
    }
    Value::Object(fields)
}
