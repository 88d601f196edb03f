//! Where each install item goes. Debs go to dpkg; binaries to `/usr/bin/<key>` (runc to
//! `/usr/local/sbin`, kube2iam to `/opt/kube2iam/bin`); tarballs by a fixed per-key rule. A
//! tarball key without a rule is an error before anything is installed.

use crate::manifest::{DepType, InstallItem};

/// Keys of the agent's own package (the manifest's self-entry). It is unpacked by first boot,
/// before install runs, so install leaves it alone.
pub const SELF_KEYS: &[&str] = &["vmconfig", "vmagent"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Installed with the other debs in one `dpkg -i`.
    Deb,
    /// Copied to this absolute path, 0755 root:root.
    Binary(String),
    /// Members of a tarball into a directory.
    Tarball(TarRule),
    /// The agent's own package: nothing to do here.
    SelfPackage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarRule {
    /// `(member path in the archive, destination path)`; `None` = every member, below `dir`.
    pub members: Option<&'static [(&'static str, &'static str)]>,
    /// Destination directory for `members: None`.
    pub dir: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "dependency {key:?} is a tar.gz without an extract rule (known: containerd, crictl, netsy, nstance-agent, cni-plugins); nothing was installed"
)]
pub struct NoRule {
    pub key: String,
}

const CONTAINERD: &[(&str, &str)] = &[
    ("bin/containerd", "/usr/local/bin/containerd"),
    (
        "bin/containerd-shim-runc-v2",
        "/usr/local/bin/containerd-shim-runc-v2",
    ),
    ("bin/ctr", "/usr/local/bin/ctr"),
];
const CRICTL: &[(&str, &str)] = &[("crictl", "/usr/local/bin/crictl")];
const NETSY: &[(&str, &str)] = &[("netsy", "/opt/netsy/bin/netsy")];
const NSTANCE_AGENT: &[(&str, &str)] = &[("nstance-agent", "/opt/nstance-agent/bin/nstance-agent")];

pub fn placement(item: &InstallItem) -> Result<Placement, NoRule> {
    let key = item.key.as_str();
    if SELF_KEYS.contains(&key) {
        return Ok(Placement::SelfPackage);
    }
    Ok(match item.kind {
        DepType::Deb => Placement::Deb,
        DepType::Binary => Placement::Binary(match key {
            "runc" => "/usr/local/sbin/runc".into(),
            "kube2iam" => "/opt/kube2iam/bin/kube2iam".into(),
            _ => format!("/usr/bin/{key}"),
        }),
        DepType::TarGz => Placement::Tarball(match key {
            "containerd" => TarRule {
                members: Some(CONTAINERD),
                dir: "/usr/local/bin",
            },
            "crictl" => TarRule {
                members: Some(CRICTL),
                dir: "/usr/local/bin",
            },
            "netsy" => TarRule {
                members: Some(NETSY),
                dir: "/opt/netsy/bin",
            },
            "nstance-agent" => TarRule {
                members: Some(NSTANCE_AGENT),
                dir: "/opt/nstance-agent/bin",
            },
            "cni-plugins" => TarRule {
                members: None,
                dir: "/opt/cni/bin",
            },
            _ => return Err(NoRule { key: key.into() }),
        }),
        // Never an install item (filtered by the manifest), but say so if it were.
        DepType::Qcow2 => return Err(NoRule { key: key.into() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Digest;

    fn item(key: &str, kind: DepType) -> InstallItem {
        InstallItem {
            key: key.into(),
            version: "1".into(),
            kind,
            url: "https://x/y".into(),
            digest: Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap(),
            size: 1,
        }
    }

    #[test]
    fn binaries() {
        assert_eq!(
            placement(&item("runc", DepType::Binary)).unwrap(),
            Placement::Binary("/usr/local/sbin/runc".into())
        );
        assert_eq!(
            placement(&item("kubelet", DepType::Binary)).unwrap(),
            Placement::Binary("/usr/bin/kubelet".into())
        );
        assert_eq!(
            placement(&item("kube2iam", DepType::Binary)).unwrap(),
            Placement::Binary("/opt/kube2iam/bin/kube2iam".into())
        );
    }

    #[test]
    fn tarballs_and_unknown_keys() {
        let Placement::Tarball(r) = placement(&item("containerd", DepType::TarGz)).unwrap() else {
            panic!()
        };
        assert_eq!(r.members.unwrap().len(), 3);
        let Placement::Tarball(r) = placement(&item("cni-plugins", DepType::TarGz)).unwrap() else {
            panic!()
        };
        assert_eq!((r.members, r.dir), (None, "/opt/cni/bin"));
        assert_eq!(
            placement(&item("vmconfig", DepType::TarGz)).unwrap(),
            Placement::SelfPackage
        );
        let e = placement(&item("registry", DepType::TarGz)).unwrap_err();
        assert!(e.to_string().contains("\"registry\""), "{e}");
        assert_eq!(
            placement(&item("uidmap", DepType::Deb)).unwrap(),
            Placement::Deb
        );
    }
}
