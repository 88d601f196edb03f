//! containerd: `/etc/containerd/config.toml` (the v3 schema for containerd 2.x, v2 for 1.x;
//! systemd cgroups; the manifest's single pause image as the pinned sandbox, mirrored through the
//! cluster registry when zot runs) and its unit.

use super::unit::Unit;
use super::{Desired, Features, Inputs, RenderError, quoted};

pub const CONFIG: &str = "/etc/containerd/config.toml";
const PAUSE_PREFIX: &str = "registry.k8s.io/pause:";

/// The sandbox image: the manifest's one pause image, through `<REGISTRY_HOSTNAME>/mirror/`
/// when the cluster registry (zot) runs.
pub fn sandbox_image(inp: &Inputs, f: &Features) -> Result<String, RenderError> {
    let mut pauses: Vec<&str> = inp
        .manifest
        .vmconfig
        .images
        .iter()
        .map(|i| i.image.as_str())
        .filter(|i| i.starts_with(PAUSE_PREFIX))
        .collect();
    pauses.sort_unstable();
    pauses.dedup();
    if pauses.len() != 1 {
        return Err(RenderError::PauseImages(pauses.len()));
    }
    // Mirrored only when the local registry actually runs (enabled, named and with a bucket):
    // otherwise there is no hosts.toml and the name would be pulled from directly.
    Ok(match &inp.settings.registry.hostname {
        Some(host) if f.zot => format!("{host}/mirror/{}", pauses[0]),
        _ => pauses[0].to_string(),
    })
}

/// The config schema the pinned containerd reads: version 3 for containerd 2.x (the CRI plugin
/// split into images and runtime), version 2 for 1.x (Debian's containerd 1.7, for one).
pub fn config_version(inp: &Inputs) -> u8 {
    let v = inp
        .manifest
        .vmconfig
        .dependencies
        .get("containerd")
        .map(|d| d.version.as_str())
        .unwrap_or("2");
    match v
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
    {
        Some(major) if major < 2 => 2,
        _ => 3,
    }
}

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    let sandbox = quoted(&sandbox_image(inp, f)?);
    let oom = if inp.oom_adjust {
        "oom_score = -999\n"
    } else {
        d.notes.push(
            "this host cannot lower OOM scores (no CAP_SYS_RESOURCE): containerd keeps the default OOM score".into(),
        );
        ""
    };
    let config = if config_version(inp) == 2 {
        format!(
            r#"# Rendered by vmagent; changes are overwritten.
version = 2
{oom}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/local/sbin/runc"
        SystemdCgroup = true
"#
        )
    } else {
        format!(
            r#"# Rendered by vmagent; changes are overwritten.
version = 3
{oom}
[plugins."io.containerd.cri.v1.images"]
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = {sandbox}
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "/etc/containerd/certs.d"

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/local/sbin/runc"
      SystemdCgroup = true
"#
        )
    };
    d.file(CONFIG, 0o644, "root:root", config);
    // No sandbox: containerd creates namespaces, mounts, cgroups (Delegate=yes) and devices
    // for every container; any restriction here would apply to the containers' runtime too.
    d.file(
        "/etc/systemd/system/containerd.service",
        0o644,
        "root:root",
        Unit::new("containerd container runtime")
            .set("After", "network.target local-fs.target dbus.service")
            .section("Service")
            .set("Type", "notify")
            .set(
                "Environment",
                "CONTAINERD_CONFIG=/etc/containerd/config.toml",
            )
            .set("ExecStartPre", "-/sbin/modprobe overlay")
            .set(
                "ExecStart",
                "/usr/local/bin/containerd --config ${CONTAINERD_CONFIG}",
            )
            .set("SyslogIdentifier", "containerd")
            .set(
                "ExecStartPost",
                "-/bin/chgrp containerd /run/containerd/containerd.sock",
            )
            .set("Restart", "always")
            .set("RestartSec", "5")
            .set("Delegate", "yes")
            .set("KillMode", "process")
            .set("LimitNPROC", "infinity")
            .set("LimitCORE", "infinity")
            .set("TasksMax", "infinity")
            .set_if("OOMScoreAdjust", inp.oom_adjust.then_some("-999"))
            .wanted_by("multi-user.target"),
    );
    d.service("containerd.service", true, &[CONFIG]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Kind;
    use crate::render::testutil::*;

    #[test]
    fn schema_follows_the_pinned_containerd() {
        let s = settings(Kind::Knd, "local");
        let mut m = manifest();
        let inputs = |m: &crate::manifest::Manifest| {
            let f = crate::render::Features::of(Kind::Knd, &typed(&s));
            let inp = Inputs {
                kind: Kind::Knd,
                settings: typed(&s),
                manifest: m,
                etc_hosts: ETC_HOSTS,
                subuid: SUBUID,
                subgid: SUBUID,
                api_lb_addrs: vec![],

                oom_adjust: true,
            };
            let mut d = Desired::default();
            render(&inp, &f, &mut d).unwrap();
            String::from_utf8(d.files[CONFIG].content.clone()).unwrap()
        };
        let v3 = inputs(&m);
        assert!(
            v3.contains("version = 3\n") && v3.contains("pinned_images"),
            "{v3}"
        );
        m.vmconfig
            .dependencies
            .get_mut("containerd")
            .unwrap()
            .version = "1.7.24".into();
        let v2 = inputs(&m);
        assert!(v2.contains("version = 2\n"), "{v2}");
        assert!(
            v2.contains(
                "sandbox_image = \"registry.c1.example.com/mirror/registry.k8s.io/pause:3.10.2\""
            ),
            "{v2}"
        );
        assert!(v2.contains("SystemdCgroup = true"));
    }
}

#[cfg(test)]
mod oom_tests {
    use super::*;
    use crate::contract::Kind;
    use crate::render::testutil::*;

    #[test]
    fn without_cap_sys_resource_no_oom_adjustment_and_a_note() {
        let s = settings(Kind::Knd, "local");
        let m = manifest();
        let f = crate::render::Features::of(Kind::Knd, &typed(&s));
        let inp = Inputs {
            kind: Kind::Knd,
            settings: typed(&s),
            manifest: &m,
            etc_hosts: ETC_HOSTS,
            subuid: SUBUID,
            subgid: SUBUID,
            api_lb_addrs: vec![],
            oom_adjust: false,
        };
        let mut d = Desired::default();
        render(&inp, &f, &mut d).unwrap();
        let config = String::from_utf8(d.files[CONFIG].content.clone()).unwrap();
        let unit = String::from_utf8(
            d.files["/etc/systemd/system/containerd.service"]
                .content
                .clone(),
        )
        .unwrap();
        assert!(!config.contains("oom_score"), "{config}");
        assert!(!unit.contains("OOMScoreAdjust"), "{unit}");
        assert!(
            d.notes.iter().any(|n| n.contains("CAP_SYS_RESOURCE")),
            "{:?}",
            d.notes
        );
    }
}
