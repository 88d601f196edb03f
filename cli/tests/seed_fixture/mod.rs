//! A small synthetic seed shaped like Podplane's published ones (a stand-in: the real seeds are
//! exported from a reference cluster): `_netsy` first, the default ServiceCIDR, Services with
//! their IPAddress allocations, the CoreDNS and platform-components HelmReleases, the
//! components GitRepository, a Deployment with images, and `filler` ConfigMaps of ~1 KiB.

#![allow(dead_code)]

use podplane::seeds::netsy::{self, Record, Timestamp};
use serde_json::{Value, json};

pub fn rec(key: &str, value: &Value) -> Record {
    Record {
        key: key.as_bytes().to_vec(),
        created: true,
        version: 1,
        value: if value.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(value).unwrap()
        },
        leader_id: "seed".into(),
        ..Default::default()
    }
}

fn service(ns: &str, name: &str, ips: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ips[0], "clusterIPs": ips, "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "ports": [{"port": 443}]}})
}

fn ipaddress(ip: &str, ns: &str, name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
        "metadata": {"name": ip},
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": name}}})
}

pub fn records(filler: usize) -> Vec<Record> {
    let mut r = vec![
        rec("_netsy", &Value::Null),
        rec(
            "/registry/servicecidrs/kubernetes",
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                "metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12"]}}),
        ),
        rec(
            "/registry/services/specs/default/kubernetes",
            &service("default", "kubernetes", &["10.96.0.1"]),
        ),
        rec(
            "/registry/services/specs/platform-coredns/platform-coredns",
            &service("platform-coredns", "platform-coredns", &["10.111.255.254"]),
        ),
        rec(
            "/registry/services/specs/platform-traefik/traefik",
            &service("platform-traefik", "traefik", &["10.96.0.20"]),
        ),
        rec(
            "/registry/ipaddresses/10.96.0.1",
            &ipaddress("10.96.0.1", "default", "kubernetes"),
        ),
        rec(
            "/registry/ipaddresses/10.111.255.254",
            &ipaddress("10.111.255.254", "platform-coredns", "platform-coredns"),
        ),
        rec(
            "/registry/ipaddresses/10.96.0.20",
            &ipaddress("10.96.0.20", "platform-traefik", "traefik"),
        ),
        rec(
            "/registry/helm.toolkit.fluxcd.io/helmreleases/platform-coredns/coredns",
            &json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "coredns", "namespace": "platform-coredns"},
                "spec": {"values": {"coredns": {"service": {"clusterIP": "10.111.255.254"}}}}}),
        ),
        rec(
            "/registry/helm.toolkit.fluxcd.io/helmreleases/platform-components/platform-components",
            &json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "platform-components", "namespace": "platform-components"},
                "spec": {"values": {"platform": {"components": {
                    "apps": {"traefik": {"enabled": true}}, "keep": "seed"}}}}}),
        ),
        rec(
            "/registry/source.toolkit.fluxcd.io/gitrepositories/platform-components/podplane-components",
            &json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "podplane-components", "namespace": "platform-components"},
                "spec": {"url": "https://github.com/podplane/components.git",
                         "ref": {"tag": "v1.2.3"}, "interval": "10m"}}),
        ),
        rec(
            "/registry/deployments/platform-traefik/traefik",
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "traefik", "namespace": "platform-traefik"},
                "spec": {"template": {"spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                    "containers": [{"name": "traefik", "image": "docker.io/traefik:v3.4.3"}]}}}}),
        ),
    ];
    for i in 0..filler {
        r.push(rec(
            &format!("/registry/configmaps/filler/cm-{i:05}"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i:05}"), "namespace": "filler"},
                "data": {"payload": "x".repeat(1024)}}),
        ));
    }
    netsy::renumber(&mut r, "fixture").unwrap();
    r
}

/// The seed file's bytes.
pub fn bytes(filler: usize) -> Vec<u8> {
    netsy::encode(
        "seed",
        Some(Timestamp {
            seconds: 1_760_000_000,
            nanos: 0,
        }),
        &records(filler),
    )
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", podplane_testkit::sha512_hex(data))
}
