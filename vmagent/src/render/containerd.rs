//! containerd: `/etc/containerd/config.toml` (v3 schema for containerd 2.x, systemd cgroups, the
//! manifest's single pause image as the pinned sandbox, mirrored through the cluster registry
//! when it is enabled) and its unit.

use super::{Desired, Features, Inputs, RenderError};

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
    let host = inp.settings.get("REGISTRY_HOSTNAME");
    Ok(if f.zot {
        format!("{host}/mirror/{}", pauses[0])
    } else {
        pauses[0].to_string()
    })
}

pub fn render(inp: &Inputs, f: &Features, d: &mut Desired) -> Result<(), RenderError> {
    let sandbox = sandbox_image(inp, f)?;
    d.file(
        CONFIG,
        0o644,
        "root:root",
        format!(
            r#"# Rendered by vmagent; changes are overwritten.
version = 3
oom_score = -999

[plugins."io.containerd.cri.v1.images"]
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{sandbox}"
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
        ),
    );
    d.file(
        "/etc/systemd/system/containerd.service",
        0o644,
        "root:root",
        "[Unit]\nDescription=containerd container runtime\nAfter=network.target local-fs.target dbus.service\n\n\
         [Service]\nType=notify\nEnvironment=CONTAINERD_CONFIG=/etc/containerd/config.toml\n\
         ExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/local/bin/containerd --config ${CONTAINERD_CONFIG}\n\
         ExecStartPost=-/bin/chgrp containerd /run/containerd/containerd.sock\n\
         Restart=always\nRestartSec=5\nDelegate=yes\nKillMode=process\nLimitNPROC=infinity\nLimitCORE=infinity\n\
         TasksMax=infinity\nOOMScoreAdjust=-999\n\n\
         [Install]\nWantedBy=multi-user.target\n",
    );
    d.service("containerd.service", true, &[CONFIG]);
    Ok(())
}
