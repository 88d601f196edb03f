use super::*;
use crate::render::kube_testutil::*;
use crate::render::kubelet::KUBELET_KUBECONFIG;
use crate::render::testutil::settings;

const CP_UNITS: [&str; 3] = [
    "kube-apiserver.service",
    "kube-controller-manager.service",
    "kube-scheduler.service",
];

#[test]
fn knd_has_no_control_plane() {
    for provider in ["aws", "local"] {
        // Control-plane settings are parsed on every node (one parse), but knd renders none.
        let mut s = settings(Kind::Knd, provider);
        s.set("KUBE_LOG_LEVEL", "9");
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
        // The settings are parsed once, whatever the node kind: a bad value is refused on
        // every node, naming the key and its file.
        for kind in [Kind::Knc, Kind::Knd] {
            let e = try_render(kind, &s).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}={value}: {e}");
            assert!(e.contains("(mutable.env)"), "{key}={value}: {e}");
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

    s.set("OIDC_CA_CERT", "abc");
    let e = try_render(Kind::Knc, &s).unwrap_err();
    assert!(matches!(e, RenderError::Settings(_)));
    assert!(
        e.to_string()
            .starts_with("OIDC_CA_CERT (mutable.env) is not valid base64"),
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
        ("fd64::/48,100.64.0.0/10", true, true),
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
