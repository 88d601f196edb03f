//! The desired state of a node: every file vmagent manages (path, mode, owner, content, whether
//! it is secret) and every systemd unit with whether it is enabled and which files it reads.
//! [`render`] is a pure function of its [`Inputs`]: no I/O, so it is table- and golden-tested,
//! and `plan` diffs its result against the disk.
//!
//! One submodule per component. A component adds its files and declares its services' inputs;
//! restart sets are derived from those declarations, never listed by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::contract::Kind;
use crate::contract::Provider;
use crate::manifest::Manifest;
use crate::settings::{NodeSettings, SettingsError};

pub mod containerd;
pub mod control_plane;
pub mod hosts;
pub mod kubelet;
pub mod netsy;
pub mod node;
pub mod registry;
pub mod telemetry;
pub mod template;
pub mod unit;

/// Everything rendering depends on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub kind: Kind,
    /// The node's settings, parsed once.
    pub settings: NodeSettings,
    pub manifest: &'a Manifest,
    /// Current `/etc/hosts`, `/etc/subuid`, `/etc/subgid` (merged, not clobbered).
    pub etc_hosts: &'a str,
    pub subuid: &'a str,
    pub subgid: &'a str,
    /// Addresses of `KUBE_API_INTERNAL_LB_HOSTNAME`, resolved by the caller (knd only).
    pub api_lb_addrs: Vec<IpAddr>,
    /// The host can lower OOM scores (CAP_SYS_RESOURCE in the bounding set). Without it,
    /// containerd's -999 makes every container's init fail, so it is left out.
    pub oom_adjust: bool,
}

/// One managed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub mode: u32,
    pub user: String,
    pub group: String,
    pub content: Vec<u8>,
    /// Content is never shown in plans or logs.
    pub secret: bool,
}

/// One systemd unit vmagent manages the state of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// `containerd.service`, `hosts-refresh.timer`, …
    pub unit: String,
    pub enabled: bool,
    /// Files it reads (its unit file, wrapper, env file, configs, certificates): a change to any
    /// of them restarts it.
    pub inputs: BTreeSet<String>,
    /// Enable it, but never restart it on a change (the boot reconcile unit runs vmagent
    /// itself: restarting it from an apply would wait on that apply's own lock).
    pub enable_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub files: BTreeMap<String, FileSpec>,
    /// Paths that must not exist (e.g. a registry hosts.toml once the registry is disabled).
    pub absent: BTreeSet<String>,
    /// Directories created (when missing) with this mode and owner before the files; most
    /// directories come from the permissions table instead.
    pub dirs: BTreeMap<String, (u32, String, String)>,
    pub services: BTreeMap<String, ServiceSpec>,
    /// Things worth telling the operator that are not errors (e.g. the registry is enabled but
    /// has no hostname yet, so zot stays off and the sandbox image is not mirrored).
    pub notes: Vec<String>,
}

impl Desired {
    pub fn file(&mut self, path: &str, mode: u32, owner: &str, content: impl Into<Vec<u8>>) {
        let (user, group) = owner.split_once(':').unwrap_or((owner, owner));
        self.files.insert(
            path.to_string(),
            FileSpec {
                mode,
                user: user.into(),
                group: group.into(),
                content: content.into(),
                secret: false,
            },
        );
    }

    /// Like [`Desired::file`], for content that must not be shown (keys, credentials).
    pub fn secret(&mut self, path: &str, mode: u32, owner: &str, content: impl Into<Vec<u8>>) {
        self.file(path, mode, owner, content);
        self.files.get_mut(path).expect("just inserted").secret = true;
    }

    /// Declare a unit. Its own unit file is always one of its inputs.
    pub fn service(&mut self, unit: &str, enabled: bool, inputs: &[&str]) {
        let mut set: BTreeSet<String> = inputs.iter().map(|s| s.to_string()).collect();
        set.insert(format!("/etc/systemd/system/{unit}"));
        self.services.insert(
            unit.to_string(),
            ServiceSpec {
                unit: unit.to_string(),
                enabled,
                inputs: set,
                enable_only: false,
            },
        );
    }

    /// Declare a unit that is enabled but never started or restarted by an apply.
    pub fn enable_only(&mut self, unit: &str) {
        self.service(unit, true, &[]);
        self.services
            .get_mut(unit)
            .expect("just inserted")
            .enable_only = true;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(
        "the manifest has {0} pause images (registry.k8s.io/pause:*); exactly one is needed to pin containerd's sandbox image"
    )]
    PauseImages(usize),
    #[error("{0}")]
    Invalid(String),
}

/// Feature flags (upstream's features.sh), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub fluent_bit: bool,
    pub zot: bool,
    pub netsy: bool,
    pub kube2iam: bool,
    pub registry: bool,
}

impl Features {
    pub fn of(kind: Kind, s: &NodeSettings) -> Features {
        let registry = s.registry.enabled;
        Features {
            fluent_bit: s.telemetry.enabled,
            zot: registry && s.registry.hostname.is_some() && s.registry.bucket.bucket.is_some(),
            netsy: kind == Kind::Knc && s.netsy.bucket.is_some(),
            kube2iam: s.provider == Provider::Aws,
            registry,
        }
    }
}

/// The cluster CA every component trusts (delivered by Nstance).
pub const CA: &str = "/opt/crt/ca.crt";

/// `s` as a double-quoted string literal with JSON escapes. The same syntax is a valid JSON
/// string, YAML double-quoted scalar and TOML basic string, so every rendered config quotes its
/// variable strings with this one function.
pub fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `KEY='value'` lines; a `'` inside a value is written `'\''`.
///
/// Hand-written on purpose, not `shlex::try_quote`: shlex leaves a safe value unquoted and
/// quotes a `'` with double quotes, while these files are read by both systemd's
/// `EnvironmentFile=` and bash `source`, and their exact bytes (always single quotes) are what
/// plans diff and the golden renders pin.
pub fn env_file(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}='{}'\n", v.replace('\'', "'\\''")))
        .collect()
}

/// The API server as every node-local client reaches it: the fixed internal name (a SAN of the
/// API server certificate; `/etc/hosts` maps it) and `KUBE_API_PORT`.
pub fn api_server_url(s: &NodeSettings) -> String {
    format!("https://{}:{}", hosts::API_NAME, s.kube.api_port)
}

/// A kubeconfig for one client certificate.
pub fn kubeconfig(name: &str, server: &str, cert: &str, key: &str) -> String {
    format!(
        "# Rendered by vmagent; changes are overwritten.
apiVersion: v1
kind: Config
clusters:
- name: podplane
  cluster:
    server: {server}
    certificate-authority: /opt/crt/ca.crt
users:
- name: {name}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: {name}
  context:
    cluster: podplane
    user: {name}
current-context: {name}
"
    )
}

/// The whole desired state of the node.
pub fn render(inp: &Inputs) -> Result<Desired, RenderError> {
    // The settings were checked when parsed (NodeSettings::parse): render only formats.
    let features = Features::of(inp.kind, &inp.settings);
    let mut d = Desired::default();
    hosts::render(inp, &mut d)?;
    node::render(inp, &features, &mut d)?;
    containerd::render(inp, &features, &mut d)?;
    kubelet::render(inp, &features, &mut d)?;
    control_plane::render(inp, &features, &mut d)?;
    telemetry::render(inp, &features, &mut d)?;
    registry::render(inp, &features, &mut d)?;
    netsy::render(inp, &features, &mut d)?;
    Ok(d)
}

#[cfg(test)]
mod golden;
#[cfg(test)]
mod kube_testutil;
#[cfg(test)]
mod lint;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
#[cfg(test)]
mod unit_check;
