use super::*;
use crate::contract::Kind;
use crate::render::kube_testutil::*;
use crate::render::kubeconfig;
use crate::render::testutil::settings;

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
                "SyslogIdentifier=kubelet",
                "WantedBy=multi-user.target",
            ] {
                assert!(
                    unit.lines().any(|l| l == line),
                    "{line} missing from:\n{unit}"
                );
            }
            // Only a control-plane node has a local API server to wait for.
            let deps = if kind == Kind::Knc {
                "containerd.service kube-apiserver.service"
            } else {
                "containerd.service"
            };
            for line in [format!("Wants={deps}"), format!("After={deps}")] {
                assert!(
                    unit.lines().any(|l| l == line),
                    "{line} missing from:\n{unit}"
                );
            }
            // StartLimitIntervalSec belongs to [Unit].
            assert!(unit.find("StartLimitIntervalSec").unwrap() < unit.find("[Service]").unwrap());
        }
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

    s.set("KUBE_CLUSTER_DNS", "10.96.0.10,fd00:0::a");
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
