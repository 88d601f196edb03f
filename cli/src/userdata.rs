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

use vmagent::contract::UserDataKey as K;
use vmagent::contract::facts::flag;
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
    /// AWS only: install and start the SSM agent.
    pub enable_ssm: bool,
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
            enable_ssm: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserdataError {
    #[error(
        "{field} must not contain a single quote, CR or LF (it is interpolated into the script)"
    )]
    Unsafe { field: &'static str },
    #[error("the SSH keys must not contain NUL or CR")]
    UnsafeKeys,
    #[error("{field} is required")]
    Required { field: &'static str },
    /// A concrete fact its `user-data.env` key's rule refuses (the node would refuse it too).
    #[error(transparent)]
    Fact(#[from] vmagent::contract::FactError),
    #[error("cannot write the manifest into the userdata as JSON: {0}")]
    ManifestJson(#[source] serde_json::Error),
    #[error(
        "the manifest has no released vmagent entry (type tar.gz with url and sha256 digest); use the standalone release manifest (packaging/release)"
    )]
    NoVmagent,
    #[error("the userdata is {0} bytes; EC2 allows at most {MAX_BYTES}")]
    TooLarge(usize),
}

impl Facts {
    /// Each fact with the `user-data.env` key that records it on the node, named as errors
    /// name it. The nonce is no setting and has no key.
    fn keyed(&self) -> [(&'static str, K, &str); 12] {
        [
            ("cluster id", K::ClusterId, &self.cluster_id),
            (
                "cluster CA certificate",
                K::NstanceCaCert,
                &self.cluster_ca_cert,
            ),
            ("provider kind", K::ProviderKind, &self.provider_kind),
            ("provider region", K::ProviderRegion, &self.region),
            ("provider zone", K::ProviderZone, &self.zone),
            ("instance id", K::InstanceId, &self.instance_id),
            (
                "instance type",
                K::ProviderInstanceType,
                &self.instance_type,
            ),
            (
                "registration address",
                K::NstanceServerRegistrationAddr,
                &self.registration_addr,
            ),
            ("agent address", K::NstanceServerAgentAddr, &self.agent_addr),
            ("AWS account id", K::AwsAccountId, &self.aws_account_id),
            (
                "Google project id",
                K::GoogleProjectId,
                &self.google_project_id,
            ),
            (
                "SSH keys",
                K::ImmutableSshAuthorizedKeys,
                &self.ssh_authorized_keys,
            ),
        ]
    }
}

fn validate(f: &Facts) -> Result<(), UserdataError> {
    for (field, v) in [
        ("cluster id", &f.cluster_id),
        ("instance id", &f.instance_id),
        ("provider kind", &f.provider_kind),
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
    // The rule `vmagent bootstrap` applies to the same value; a placeholder is Nstance's to fill.
    for (field, key, v) in f.keyed() {
        if !v.contains("{{") {
            key.validate(field, v)?;
        }
    }
    Ok(())
}

/// `'value'` for the shell (a `'` inside is written `'\''`). Kept by hand rather than
/// `shlex::try_quote`: that leaves safe words bare and switches to `"…"` for some values, while
/// every value here is written in the one `'…'` form the scripts (and their golden copies) use.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// Which output a [`Script`] builds: the finished script, or an OpenTofu/Terraform template
/// (`templatefile()`) whose values come from the configuration at plan time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Concrete,
    Template,
}

/// The script under construction: literal text (escaped for templates) and values.
struct Script {
    mode: Mode,
    out: String,
}

impl Script {
    fn lit(&mut self, text: &str) {
        match self.mode {
            Mode::Concrete => self.out.push_str(text),
            Mode::Template => self
                .out
                .push_str(&text.replace("${", "$${").replace("%{", "%%{")),
        }
    }

    /// A value: `concrete` for the script, `template` (an interpolation) for the template.
    fn value(&mut self, concrete: &str, template: &str) {
        match self.mode {
            Mode::Concrete => self.out.push_str(concrete),
            Mode::Template => self.out.push_str(template),
        }
    }

    /// Lines kept when `concrete` holds, or (template) when `condition` is true at plan time.
    fn when(&mut self, concrete: bool, condition: &str, body: impl FnOnce(&mut Script)) {
        match self.mode {
            Mode::Concrete if concrete => body(self),
            Mode::Concrete => {}
            Mode::Template => {
                let _ = writeln!(self.out, "%{{ if {condition} ~}}");
                body(self);
                self.out.push_str("%{ endif ~}\n");
            }
        }
    }
}

/// A shell-quoted template interpolation of `expr`.
fn tq(expr: &str) -> String {
    format!("'${{replace({expr}, \"'\", \"'\\\\''\")}}'")
}

/// What the script needs from the manifest.
#[derive(Default)]
struct Pinned {
    json: String,
    kind: String,
    version: String,
    os: String,
    arch: String,
    agent_version: String,
    agent_url: String,
    agent_sha256: String,
}

/// Template expressions for the manifest values (`manifest_json` is the pinned file).
const M: &str = "jsondecode(manifest_json)";

fn build(mode: Mode, p: &Pinned, facts: &Facts, mirror: Option<&str>) -> String {
    let mut s = Script {
        mode,
        out: String::new(),
    };
    let agent = format!("{M}.vmconfig.dependencies.vmagent");
    s.lit("#!/bin/bash\n# Podplane node first boot: fetch vmagent by its pinned digest, run vmagent bootstrap.\nset -euo pipefail\nlog() { printf '[userdata] %s\\tts=%s\\n' \"$*\" \"$EPOCHREALTIME\" >&2; }\nlog first boot:");
    // Manifest values only ever reach the shell quoted.
    for (concrete, field) in [
        (&p.kind, "kind"),
        (&p.version, "version"),
        (&p.os, "os.name"),
        (&p.arch, "os.arch"),
    ] {
        s.lit(" ");
        s.value(&quote(concrete), &tq(&format!("{M}.vmconfig.{field}")));
    }
    s.lit(" provider ");
    s.value(&quote(&facts.provider_kind), &tq("provider_kind"));
    s.when(mirror.is_some(), "deps_mirror_url != \"\"", |s| {
        s.lit(" deps mirror ");
        s.value(&quote(mirror.unwrap_or_default()), &tq("deps_mirror_url"));
    });
    s.lit("\n");
    s.when(
        facts.enable_ssm && facts.provider_kind == "aws",
        "enable_ssm && provider_kind == \"aws\"",
        |s| {
            s.lit("# AWS Systems Manager agent (enable_ssm): started in the background, never fatal.\n(\n  if ! systemctl cat amazon-ssm-agent.service >/dev/null 2>&1; then\n    ssm=/tmp/amazon-ssm-agent.deb\n    curl -fsSL --retry 10 --retry-all-errors -o \"$ssm\" \"https://s3.amazonaws.com/ec2-downloads-windows/SSMAgent/latest/debian_$(dpkg --print-architecture)/amazon-ssm-agent.deb\"\n    dpkg -i \"$ssm\"\n    rm -f \"$ssm\"\n  fi\n  systemctl enable --now amazon-ssm-agent.service\n) || log \"the SSM agent could not be installed or started\" &\n");
        },
    );
    s.lit("mkdir -p /opt/podplane/share /opt/podplane/artifacts\ncat > /opt/podplane/share/vmconfig-pinned.json <<'PODPLANE_MANIFEST'\n");
    s.value(&p.json, "${trimspace(manifest_json)}");
    s.lit(
        "\nPODPLANE_MANIFEST\nagent=/opt/podplane/artifacts/vmagent.tar.gz\nlog fetching vmagent ",
    );
    s.value(&quote(&p.agent_version), &tq(&format!("{agent}.version")));
    s.lit("\ncurl -fsSL --retry 20 --retry-all-errors --retry-delay 2 --retry-max-time 900 -o \"$agent.part\" ");
    let url_expr = format!(
        "deps_mirror_url == \"\" ? {agent}.url : \"${{replace(deps_mirror_url, \"//+$/\", \"\")}}/vmconfig/artifacts/vmagent/${{{agent}.version}}/${{regex(\"([^/?#]*)(?:[?#].*)?$\", {agent}.url)[0]}}\""
    );
    s.value(&quote(&p.agent_url), &tq(&url_expr));
    s.lit("\necho ");
    s.value(
        &quote(&format!(
            "{}  /opt/podplane/artifacts/vmagent.tar.gz.part",
            p.agent_sha256
        )),
        &tq(&format!(
            // A pinned copy edited to anything but a sha256 digest fails the plan here.
            "\"${{regex(\"^sha256:([0-9a-f]{{64}})$\", lower({agent}.digest))[0]}}  /opt/podplane/artifacts/vmagent.tar.gz.part\""
        )),
    );
    s.lit(" | sha256sum -c --quiet - || { log \"vmagent does not match its pinned digest\"; rm -f \"$agent.part\"; exit 1; }\nmv \"$agent.part\" \"$agent\"\ntar -xzf \"$agent\" -C / usr/bin/vmagent\nlog \"starting vmagent bootstrap\"\nexec /usr/bin/vmagent bootstrap \\\n");
    // The user-data.env keys travel as `vmagent bootstrap` flags (the nonce is no setting).
    for (key, v) in [
        (Some(K::InstanceId), &facts.instance_id),
        (Some(K::ClusterId), &facts.cluster_id),
        (Some(K::ProviderRegion), &facts.region),
        (Some(K::ProviderZone), &facts.zone),
        (Some(K::ProviderInstanceType), &facts.instance_type),
        (Some(K::NstanceCaCert), &facts.cluster_ca_cert),
        (
            Some(K::NstanceServerRegistrationAddr),
            &facts.registration_addr,
        ),
        (Some(K::NstanceServerAgentAddr), &facts.agent_addr),
        (None, &facts.nonce),
    ] {
        let flag = key.map_or(flag::NONCE, K::flag);
        s.lit(&format!("  --{flag} {} \\\n", quote(v)));
    }
    s.lit(&format!("  --{} ", K::ProviderKind.flag()));
    s.value(&quote(&facts.provider_kind), &tq("provider_kind"));
    s.lit(" \\\n");
    s.when(
        !facts.aws_account_id.is_empty(),
        "aws_account_id != \"\"",
        |s| {
            s.lit(&format!("  --{} ", K::AwsAccountId.flag()));
            s.value(&quote(&facts.aws_account_id), &tq("aws_account_id"));
            s.lit(" \\\n");
        },
    );
    if mode == Mode::Concrete && !facts.google_project_id.is_empty() {
        s.lit(&format!(
            "  --{} {} \\\n",
            K::GoogleProjectId.flag(),
            quote(&facts.google_project_id)
        ));
    }
    s.when(
        !facts.ssh_authorized_keys.is_empty(),
        "immutable_ssh_authorized_keys != \"\"",
        |s| {
            s.lit(&format!("  --{} ", K::ImmutableSshAuthorizedKeys.flag()));
            s.value(
                &quote(&facts.ssh_authorized_keys),
                &tq("immutable_ssh_authorized_keys"),
            );
            s.lit(" \\\n");
        },
    );
    s.when(mirror.is_some(), "deps_mirror_url != \"\"", |s| {
        s.lit("  --mirror ");
        s.value(&quote(mirror.unwrap_or_default()), &tq("deps_mirror_url"));
        s.lit(" \\\n");
    });
    s.lit("  --manifest /opt/podplane/share/vmconfig-pinned.json\n");
    s.out
}

/// The OpenTofu/Terraform template of the production userdata, for `templatefile()` with the
/// variables `manifest_json` (the pinned manifest file's text), `deps_mirror_url`,
/// `provider_kind`, `aws_account_id`, `immutable_ssh_authorized_keys` and `enable_ssm`.
/// Rendered with the same values it is byte-for-byte what [`render`] prints (tested), so
/// editing a pinned manifest copy takes effect at the next plan, as upstream's data source did.
pub fn tf_template() -> String {
    let facts = Facts::nstance_placeholders("aws");
    // Every manifest value is a template expression: nothing pinned goes in.
    build(Mode::Template, &Pinned::default(), &facts, None)
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
    let v = &manifest.vmconfig;
    let pinned = Pinned {
        // Compact JSON: the manifest travels inside the script.
        json: serde_json::to_string(manifest).map_err(UserdataError::ManifestJson)?,
        kind: v.kind.clone(),
        version: v.version.clone(),
        os: v.os.name.clone(),
        arch: v.os.arch.clone(),
        agent_version: agent.version.clone(),
        agent_url: agent.source_url(mirror),
        agent_sha256: agent.digest.hex.to_ascii_lowercase(),
    };
    let s = build(Mode::Concrete, &pinned, facts, mirror);
    if s.len() > MAX_BYTES {
        return Err(UserdataError::TooLarge(s.len()));
    }
    Ok(s)
}

#[cfg(test)]
mod tests;
