//! The Nstance certificate templates in `podplane.cluster.main.tf` and the certificate files
//! each node kind receives.

use crate::config;
use crate::tfgen::hcl::{Value, field, ident, raw, str, strs};

/// One Nstance certificate template.
struct Cert {
    name: &'static str,
    kind: &'static str,
    cn: &'static str,
    org: Option<&'static str>,
    uri: Option<&'static str>,
}

const CERTS: &[Cert] = &[
    Cert {
        name: "containerd.client",
        kind: "client",
        cn: "containerd.client",
        org: None,
        uri: None,
    },
    Cert {
        name: "front-proxy.client",
        kind: "client",
        cn: "front-proxy-client",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-apiserver.client",
        kind: "client",
        cn: "kube-apiserver.client",
        org: Some("system:masters"),
        uri: Some("netsy://{{ .Cluster.ID }}/client/kube-apiserver"),
    },
    Cert {
        name: "kube-apiserver.server",
        kind: "server",
        cn: "kube-apiserver.server",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-controller-manager.client",
        kind: "client",
        cn: "system:kube-controller-manager",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube-scheduler.client",
        kind: "client",
        cn: "system:kube-scheduler",
        org: None,
        uri: None,
    },
    Cert {
        name: "kube2iam.client",
        kind: "client",
        cn: "kube2iam.client",
        org: None,
        uri: None,
    },
    Cert {
        name: "kubelet.client",
        kind: "client",
        cn: "system:node:{{ .Instance.ID }}",
        org: Some("system:nodes"),
        uri: None,
    },
    Cert {
        name: "kubelet.server",
        kind: "server",
        cn: "kubelet.server",
        org: None,
        uri: None,
    },
    Cert {
        name: "netsy.client",
        kind: "client",
        cn: "netsy.client",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        name: "netsy.server",
        kind: "server",
        cn: "netsy.server",
        org: None,
        uri: Some("netsy://{{ .Cluster.ID }}/peer/{{ .Instance.ID }}"),
    },
    Cert {
        name: "registry.server",
        kind: "server",
        cn: "registry.server",
        org: None,
        uri: None,
    },
];

/// Certificate files Nstance delivers to a node of `kind`, in delivery order.
pub fn certificate_files(kind: &str) -> Vec<&'static str> {
    let mut v = vec![
        "containerd.client",
        "kube2iam.client",
        "kubelet.client",
        "kubelet.server",
        "registry.server",
    ];
    if kind == "knc" {
        v.extend([
            "front-proxy.client",
            "kube-apiserver.client",
            "kube-apiserver.server",
            "kube-controller-manager.client",
            "kube-scheduler.client",
            "netsy.client",
            "netsy.server",
        ]);
    }
    v
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
        if c.name == "kube-apiserver.server" {
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
        fields.push(field(c.name, Value::Inline(f)));
    }
    Value::Object(fields)
}
