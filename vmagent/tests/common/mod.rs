//! Shared by the configure and recv tests: a root that looks like an installed node.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vmagent::accounts;
use vmagent::apply::Services;
use vmagent::contract::Kind;
use vmagent::converge;
use vmagent::host::SystemHost;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifests");

pub const USERS: &[&str] = &[
    "root",
    "podplane",
    "nstance-agent",
    "fluent-bit",
    "kube2iam",
    "containerd",
    "kubelet",
    "zot",
    "netsy",
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    "admin",
];

/// A root that looks installed: accounts (all mapped to this process's ids, so no privilege is
/// needed), the installed marker, user-data.env and the cloud instance ID.
pub fn node(kind: &str, provider: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // As root every account gets its own ids, so ownership is really checked; otherwise all
    // map to this process's ids (chown to them needs no privilege).
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let distinct = uid == 0;
    let id_of = |i: usize, base: u32| if distinct { 2000 + i as u32 } else { base };
    let w = |p: &str, c: &str| {
        let full = r.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    };
    // Accounts exactly as the permissions step wants them, so it changes nothing here.
    let k = if kind == "knc" { Kind::Knc } else { Kind::Knd };
    let spec = accounts::spec(k, true, "/usr/lib/x86_64-linux-gnu");
    let mut passwd = format!("root:x:{uid}:{gid}:root:/root:/bin/bash\n");
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    groups.insert("root", vec![]);
    for (i, u) in spec.users.iter().enumerate() {
        let id = id_of(i + 1, uid);
        passwd.push_str(&format!(
            "{}:x:{id}:{}::{}:{}\n",
            u.name,
            id_of(i + 1, gid),
            u.home.unwrap_or("/nonexistent"),
            u.shell
        ));
        groups.entry(u.name).or_default();
        for g in &u.groups {
            groups.entry(g).or_default().push(u.name);
        }
    }
    for name in USERS {
        groups.entry(name).or_default();
    }
    let user_index = |g: &str| spec.users.iter().position(|u| u.name == g);
    let group: String = groups
        .iter()
        .enumerate()
        .map(|(j, (g, members))| {
            let id = match (*g, user_index(g)) {
                ("root", _) => gid,
                (_, Some(i)) => id_of(i + 1, gid),
                (_, None) => id_of(100 + j, gid),
            };
            format!("{g}:x:{id}:{}\n", members.join(","))
        })
        .collect();
    w("/etc/passwd", &passwd);
    w("/etc/group", &group);
    w("/etc/hosts", "127.0.0.1 localhost\n");
    w("/etc/subuid", "debian:100000:65536\n");
    w("/etc/subgid", "debian:100000:65536\n");
    let mut m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(FIXTURES).join(format!("{kind}.debian-13.amd64.json"))).unwrap(),
    )
    .unwrap();
    m["vmconfig"]["version"] = "test".into();
    w(
        "/opt/podplane/share/vmconfig-installed.json",
        &m.to_string(),
    );
    let aws = provider == "aws";
    w(
        "/opt/podplane/etc/user-data.env",
        &format!(
            "INSTANCE_ID='i-0abc123'\nCLUSTER_ID='c1'\nPROVIDER_KIND='{provider}'\nPROVIDER_REGION='{}'\nPROVIDER_ZONE='{}'\nPROVIDER_INSTANCE_TYPE='m7i.large'\nAWS_ACCOUNT_ID='{}'\nNSTANCE_CA_CERT='LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=='\nNSTANCE_SERVER_REGISTRATION_ADDR='10.0.0.5:8990'\nNSTANCE_SERVER_AGENT_ADDR='10.0.0.5:8991'\nIMMUTABLE_SSH_AUTHORIZED_KEYS='ssh-ed25519 AAAAC3 ops@example'\n",
            if aws { "eu-west-1" } else { "local" },
            if aws { "eu-west-1a" } else { "local" },
            if aws { "123456789012" } else { "" },
        ),
    );
    w("/var/lib/cloud/data/instance-id", "i-0abc123\n");
    root
}

pub fn facts(provider: &str) -> BTreeMap<String, String> {
    let mut f: BTreeMap<String, String> = [
        ("INSTANCE_NETDEV", "ens5"),
        ("INSTANCE_IPV4", "10.0.1.23"),
        ("INSTANCE_IPV6", ""),
        ("INSTANCE_HOSTNAME", "i-0abc123"),
        ("INSTANCE_FQDN", "i-0abc123.localdomain"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if provider == "aws" {
        f.insert(
            "INSTANCE_PROVIDER_ID".into(),
            "aws:///eu-west-1a/i-0abc123".into(),
        );
    }
    f
}

pub fn apply(root: &Path, provider: &str) -> (vmagent::plan::Plan, vmagent::apply::ApplyReport) {
    converge::apply(
        root,
        &SystemHost,
        &facts(provider),
        Services::Systemd,
        &BTreeSet::new(),
    )
    .unwrap_or_else(|e| panic!("apply: {e}"))
}

pub fn plan(root: &Path, provider: &str) -> vmagent::plan::Plan {
    converge::plan(root, &SystemHost, &facts(provider), &BTreeSet::new())
        .unwrap_or_else(|e| panic!("plan: {e}"))
        .1
}

/// Every path below `root`, for "nothing was written" checks.
pub fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                stack.push(e.path());
            }
        }
        out.insert(p);
    }
    out
}

/// Set one mutable.env key (the file stays otherwise as bootstrap seeded it).
pub fn set_mutable(root: &Path, key: &str, value: &str) {
    let path = root.join("opt/podplane/etc/mutable.env");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut found = false;
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key}=")) {
                found = true;
                format!("{key}='{value}'\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    if !found {
        out.push_str(&format!("{key}='{value}'\n"));
    }
    std::fs::write(path, out).unwrap();
}
