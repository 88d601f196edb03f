//! VM userdata: the first-boot script a node runs from cloud-init.
//!
//! Upstream rendered a long Bash script that downloaded, verified and installed everything
//! itself. Here the script is short: it writes the pinned manifest, downloads the vmagent release
//! tarball the manifest pins (by sha256, with retries) into the very path `vmagent fetch` would
//! use (so fetch finds it verified in place), unpacks the binary, and hands over to
//! `vmagent bootstrap` with the instance facts. Everything else (waiting for Nstance, parallel
//! verified downloads, install, configuration) is vmagent's.
//!
//! For production the instance facts are Nstance template placeholders (`{{ .Instance.ID }}` …)
//! that nstance-server substitutes per instance; the rest is concrete. Rendering is byte-stable,
//! and the result must fit EC2's 16 KB userdata limit.

use std::fmt::Write;

use vmagent::manifest::{DepType, Manifest};

/// EC2's limit on userdata.
pub const MAX_BYTES: usize = 16 * 1024;

/// The instance facts: concrete values, or Nstance placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub cluster_id: String,
    pub cluster_ca_cert: String,
    pub provider_kind: String,
    pub region: String,
    pub zone: String,
    pub instance_id: String,
    pub instance_type: String,
    pub registration_addr: String,
    pub agent_addr: String,
    pub nonce: String,
    pub aws_account_id: String,
    pub google_project_id: String,
    /// One key per line; immutable for the VM's life.
    pub ssh_authorized_keys: String,
}

impl Facts {
    /// Production userdata for `provider`: Nstance fills in the per-instance values.
    pub fn nstance_placeholders(provider: &str) -> Facts {
        let p = |s: &str| format!("{{{{ {s} }}}}");
        Facts {
            cluster_id: p(".Cluster.ID"),
            cluster_ca_cert: p(".Cluster.CACert"),
            provider_kind: provider.to_string(),
            region: p(".Provider.Region"),
            zone: p(".Provider.Zone"),
            instance_id: p(".Instance.ID"),
            instance_type: p(".Instance.Type"),
            registration_addr: p(".Server.RegistrationAddr"),
            agent_addr: p(".Server.AgentAddr"),
            nonce: p(".Nonce"),
            aws_account_id: String::new(),
            google_project_id: String::new(),
            ssh_authorized_keys: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserdataError {
    #[error(
        "{field} must not contain a single quote, CR or LF (it is interpolated into the script)"
    )]
    Unsafe { field: &'static str },
    #[error("the SSH keys must not contain NUL or CR")]
    UnsafeKeys,
    #[error("{field} is required")]
    Required { field: &'static str },
    #[error("provider kind {0:?} is not one of local, aws, google, proxmox")]
    Provider(String),
    #[error(
        "the manifest has no released vmagent entry (type tar.gz with url and sha256 digest); use the standalone release manifest (packaging/release)"
    )]
    NoVmagent,
    #[error("the userdata is {0} bytes; EC2 allows at most {MAX_BYTES}")]
    TooLarge(usize),
}

const PROVIDERS: &[&str] = &["local", "aws", "google", "proxmox"];

fn validate(f: &Facts) -> Result<(), UserdataError> {
    if !(PROVIDERS.contains(&f.provider_kind.as_str()) || f.provider_kind.contains("{{")) {
        return Err(UserdataError::Provider(f.provider_kind.clone()));
    }
    for (field, v) in [
        ("cluster id", &f.cluster_id),
        ("instance id", &f.instance_id),
    ] {
        if v.is_empty() {
            return Err(UserdataError::Required { field });
        }
    }
    for (field, v) in [
        ("cluster id", &f.cluster_id),
        ("cluster CA certificate", &f.cluster_ca_cert),
        ("provider kind", &f.provider_kind),
        ("provider region", &f.region),
        ("provider zone", &f.zone),
        ("instance id", &f.instance_id),
        ("instance type", &f.instance_type),
        ("registration address", &f.registration_addr),
        ("agent address", &f.agent_addr),
        ("nonce", &f.nonce),
        ("AWS account id", &f.aws_account_id),
        ("Google project id", &f.google_project_id),
    ] {
        if v.contains(['\'', '\n', '\r']) {
            return Err(UserdataError::Unsafe { field });
        }
    }
    if f.ssh_authorized_keys.contains(['\0', '\r']) {
        return Err(UserdataError::UnsafeKeys);
    }
    Ok(())
}

/// `'value'` for the shell (a `'` inside is written `'\''`).
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// Render the userdata for `manifest` (the standalone release manifest, whose `vmagent` entry
/// carries the tarball's url and digest).
pub fn render(
    manifest: &Manifest,
    facts: &Facts,
    mirror: Option<&str>,
) -> Result<String, UserdataError> {
    validate(facts)?;
    let items = manifest.install_items(if facts.provider_kind.contains("{{") {
        None
    } else {
        Some(facts.provider_kind.as_str())
    });
    let agent = items
        .iter()
        .find(|i| i.key == "vmagent" && i.kind == DepType::TarGz)
        .filter(|i| i.digest.algorithm == vmagent::manifest::Algorithm::Sha256)
        .ok_or(UserdataError::NoVmagent)?;
    let url = agent.source_url(mirror);
    // Compact JSON: the manifest travels inside the script.
    let json = serde_json::to_string(manifest).expect("a manifest serialises");
    let v = &manifest.vmconfig;
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Podplane node first boot: {} {} {} {}; provider {}{}",
        v.kind,
        v.version,
        v.os.name,
        v.os.arch,
        facts.provider_kind,
        mirror
            .map(|m| format!("; deps mirror {m}"))
            .unwrap_or_default()
    );
    s.push_str(
        "set -euo pipefail\nlog() { printf '[userdata] %s\\tts=%s\\n' \"$*\" \"$EPOCHREALTIME\" >&2; }\n",
    );
    s.push_str("mkdir -p /opt/podplane/share /opt/podplane/artifacts\n");
    s.push_str("cat > /opt/podplane/share/vmconfig-pinned.json <<'PODPLANE_MANIFEST'\n");
    s.push_str(&json);
    s.push_str("\nPODPLANE_MANIFEST\n");
    let _ = writeln!(s, "agent=/opt/podplane/artifacts/{}", agent.local_name());
    let _ = writeln!(s, "log \"fetching vmagent {}\"", agent.version);
    let _ = writeln!(
        s,
        "curl -fsSL --retry 20 --retry-all-errors --retry-delay 2 --retry-max-time 900 -o \"$agent.part\" {}",
        quote(&url)
    );
    let _ = writeln!(
        s,
        "echo {} | sha256sum -c --quiet - || {{ log \"vmagent does not match its pinned digest\"; rm -f \"$agent.part\"; exit 1; }}",
        quote(&format!(
            "{}  /opt/podplane/artifacts/{}.part",
            agent.digest.hex,
            agent.local_name()
        ))
    );
    s.push_str("mv \"$agent.part\" \"$agent\"\n");
    s.push_str("tar -xzf \"$agent\" -C / usr/bin/vmagent\n");
    s.push_str("log \"starting vmagent bootstrap\"\n");
    let mut args = vec![
        "--manifest /opt/podplane/share/vmconfig-pinned.json".to_string(),
        format!("--instance-id {}", quote(&facts.instance_id)),
        format!("--cluster-id {}", quote(&facts.cluster_id)),
        format!("--provider {}", quote(&facts.provider_kind)),
        format!("--region {}", quote(&facts.region)),
        format!("--zone {}", quote(&facts.zone)),
        format!("--instance-type {}", quote(&facts.instance_type)),
        format!("--nstance-ca-cert {}", quote(&facts.cluster_ca_cert)),
        format!("--registration-addr {}", quote(&facts.registration_addr)),
        format!("--agent-addr {}", quote(&facts.agent_addr)),
        format!("--nonce {}", quote(&facts.nonce)),
    ];
    if !facts.aws_account_id.is_empty() {
        args.push(format!("--aws-account-id {}", quote(&facts.aws_account_id)));
    }
    if !facts.google_project_id.is_empty() {
        args.push(format!(
            "--google-project-id {}",
            quote(&facts.google_project_id)
        ));
    }
    if !facts.ssh_authorized_keys.is_empty() {
        args.push(format!(
            "--ssh-authorized-keys {}",
            quote(&facts.ssh_authorized_keys)
        ));
    }
    if let Some(m) = mirror {
        args.push(format!("--mirror {}", quote(m)));
    }
    s.push_str("exec /usr/bin/vmagent bootstrap \\\n");
    let n = args.len();
    for (i, a) in args.into_iter().enumerate() {
        let _ = writeln!(s, "  {a}{}", if i + 1 < n { " \\" } else { "" });
    }
    if s.len() > MAX_BYTES {
        return Err(UserdataError::TooLarge(s.len()));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
