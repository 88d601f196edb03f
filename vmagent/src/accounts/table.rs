//! The permissions table: the service users and their groups, the managed directories with
//! their owner and mode, and the files and directories whose contents must be executable, for
//! each node kind. A pure function of the kind, whether an admin is configured and the multiarch
//! library directory; nothing here reads or changes the disk.

use crate::contract::Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: &'static str,
    /// System user (`useradd -r`); kubelet is the exception.
    pub system: bool,
    pub shell: &'static str,
    pub home: Option<&'static str>,
    /// Exact supplementary groups.
    pub groups: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirSpec {
    pub path: &'static str,
    pub mode: u32,
    pub user: &'static str,
    pub group: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub users: Vec<UserSpec>,
    pub dirs: Vec<DirSpec>,
    /// Files that get `+x` when they exist.
    pub executables: Vec<String>,
    /// Directories whose every file gets `+x`.
    pub executable_dirs: Vec<&'static str>,
    /// Shared libraries set to 0755 when present.
    pub libraries: Vec<String>,
    /// Whether the `admin` login user and its sudoers file exist.
    pub admin: bool,
}

const NOLOGIN: &str = "/usr/sbin/nologin";

fn service(name: &'static str, groups: &[&'static str]) -> UserSpec {
    UserSpec {
        name,
        system: true,
        shell: NOLOGIN,
        home: None,
        groups: groups.to_vec(),
    }
}

fn dirs(
    mode: u32,
    user: &'static str,
    group: &'static str,
    paths: &[&'static str],
) -> Vec<DirSpec> {
    paths
        .iter()
        .map(|&path| DirSpec {
            path,
            mode,
            user,
            group,
        })
        .collect()
}

/// The permissions table for a node. `admin`: SSH keys are configured. `lib_dir`: the
/// multiarch library directory (`/usr/lib/x86_64-linux-gnu`).
pub fn spec(kind: Kind, admin: bool, lib_dir: &str) -> Spec {
    let mut users = vec![
        service("podplane", &[]),
        service("nstance-agent", &["podplane"]),
        service("fluent-bit", &["podplane", "systemd-journal"]),
        service("kube2iam", &["podplane"]),
        service("containerd", &["podplane"]),
        UserSpec {
            name: "kubelet",
            system: false,
            shell: NOLOGIN,
            home: None,
            groups: vec!["podplane", "containerd"],
        },
        service("zot", &["podplane"]),
    ];
    if admin {
        users.push(UserSpec {
            name: "admin",
            system: false,
            shell: "/bin/bash",
            home: Some("/home/admin"),
            groups: vec![],
        });
    }
    let mut d = Vec::new();
    d.extend(dirs(
        0o755,
        "root",
        "root",
        &["/etc", "/etc/containerd", "/etc/containerd/certs.d"],
    ));
    d.extend(dirs(0o750, "root", "podplane", &["/opt", "/opt/podplane"]));
    d.extend(dirs(
        0o755,
        "root",
        "root",
        &[
            "/opt/podplane/bin",
            "/opt/podplane/lib",
            "/opt/podplane/lib/configure",
            "/opt/podplane/share",
            "/opt/podplane/share/defaults",
        ],
    ));
    d.extend(dirs(
        0o700,
        "root",
        "root",
        &["/opt/podplane/etc", "/opt/bin", "/opt/versions", "/opt/cni"],
    ));
    d.extend(dirs(
        0o750,
        "root",
        "podplane",
        &["/opt/crt", "/opt/pub", "/opt/env"],
    ));
    d.extend(dirs(0o710, "root", "podplane", &["/opt/key"]));
    d.extend(dirs(
        0o700,
        "nstance-agent",
        "nstance-agent",
        &[
            "/opt/nstance-agent",
            "/opt/nstance-agent/identity",
            "/opt/nstance-agent/keys",
            "/opt/nstance-agent/recv",
        ],
    ));
    d.extend(dirs(
        0o700,
        "fluent-bit",
        "fluent-bit",
        &["/opt/fluent-bit", "/var/lib/fluent-bit"],
    ));
    d.extend(dirs(0o700, "kube2iam", "kube2iam", &["/opt/kube2iam"]));
    d.extend(dirs(0o750, "root", "kube2iam", &["/opt/key/kube2iam"]));
    d.extend(dirs(0o700, "kubelet", "kubelet", &["/opt/kubelet"]));
    d.extend(dirs(0o750, "root", "kubelet", &["/opt/key/kubelet"]));
    d.extend(dirs(0o750, "root", "containerd", &["/opt/key/containerd"]));
    d.extend(dirs(
        0o750,
        "kubelet",
        "kubelet",
        &["/var/lib/kubelet", "/var/log/containers", "/var/log/pods"],
    ));
    d.extend(dirs(
        0o700,
        "zot",
        "zot",
        &["/opt/zot", "/opt/zot/etc", "/opt/zot/storage"],
    ));
    d.extend(dirs(0o750, "root", "zot", &["/opt/key/registry"]));

    let mut executables: Vec<String> = [
        "/opt/nstance-agent/bin/nstance-agent",
        "/opt/nstance-agent/bin/run-nstance-agent.sh",
        "/opt/fluent-bit/bin/fluent-bit",
        "/opt/fluent-bit/bin/run-fluent-bit.sh",
        "/opt/kube2iam/bin/kube2iam",
        "/opt/kube2iam/bin/run-kube2iam.sh",
        "/usr/bin/getsubids",
        "/usr/local/bin/containerd",
        "/usr/local/bin/containerd-shim-runc-v2",
        "/usr/local/bin/crictl",
        "/usr/local/bin/ctr",
        "/usr/local/sbin/runc",
        "/opt/kubelet/bin/run-kubelet.sh",
        "/usr/bin/kubelet",
        "/usr/bin/zot",
        "/opt/zot/bin/run-zot.sh",
    ]
    .map(String::from)
    .to_vec();

    if kind == Kind::Knc {
        for name in [
            "netsy",
            "kube-apiserver",
            "kube-scheduler",
            "kube-controller-manager",
        ] {
            users.push(service(name, &["podplane"]));
        }
        d.extend(dirs(0o700, "netsy", "netsy", &["/opt/data", "/opt/netsy"]));
        d.extend(dirs(
            0o750,
            "root",
            "netsy",
            &["/opt/netsy/etc", "/opt/key/netsy"],
        ));
        for (svc, home, key) in [
            (
                "kube-apiserver",
                "/opt/kube-apiserver",
                "/opt/key/kube-apiserver",
            ),
            (
                "kube-scheduler",
                "/opt/kube-scheduler",
                "/opt/key/kube-scheduler",
            ),
            (
                "kube-controller-manager",
                "/opt/kube-controller-manager",
                "/opt/key/kube-controller-manager",
            ),
        ] {
            d.extend(dirs(0o700, svc, svc, &[home]));
            d.extend(dirs(0o750, "root", svc, &[key]));
        }
        executables.extend(
            [
                "/opt/netsy/bin/netsy",
                "/opt/netsy/bin/run-netsy.sh",
                "/opt/kube-apiserver/bin/run-kube-apiserver.sh",
                "/opt/kube-controller-manager/bin/run-kube-controller-manager.sh",
                "/usr/bin/kube-apiserver",
                "/usr/bin/kube-scheduler",
                "/usr/bin/kube-controller-manager",
            ]
            .map(String::from),
        );
    }
    Spec {
        users,
        dirs: d,
        executables,
        executable_dirs: vec!["/opt/cni/bin"],
        libraries: vec![
            format!("{lib_dir}/libpq.so.5"),
            format!("{lib_dir}/libsubid.so.5"),
        ],
        admin,
    }
}
