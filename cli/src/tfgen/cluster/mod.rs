//! The AWS cluster files: main, buckets, dns, roles, the three impact-level input files,
//! outputs, the pinned node manifests, the userdata template and the schema copy.
//!
//! Each generated `.tf` file has its own module here (`main_tf`, `buckets`, `dns`, `roles`,
//! `inputs_runtime`, `inputs_vm`, `inputs_infra`, `outputs`); `certificates` holds the Nstance
//! certificate templates `main.tf` embeds and `shared` the helpers several files use.
//! [`generate`] validates the config and hands it to [`render`], which puts the files together
//! from the [`Validated`] config (its parsed values, not the strings again).

mod buckets;
mod certificates;
mod dns;
mod inputs_infra;
mod inputs_runtime;
mod inputs_vm;
mod main_tf;
mod outputs;
mod roles;
mod shared;

use std::collections::BTreeMap;

use super::{File, GenerateError, ManifestProblem, PinnedManifest, tf_file as tf};
use crate::config::{self, ClusterConfig, Validated};
use crate::hcl::safe_name;
use vmagent::contract::Kind;

pub use certificates::certificate_files;

/// File name of the userdata template shared by every (kind, arch).
pub const USERDATA_TEMPLATE: &str = "podplane.cluster.userdata.sh.tftpl";

/// Inputs besides the config.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base name of the config file (the seed resource reads it next to the `.tf` files).
    pub config_file_name: String,
    /// The deps mirror VMs download from (`PODPLANE_DEPS_URL`).
    pub deps_mirror_url: String,
    /// Cached manifests; the ones the pools need are pinned.
    pub manifests: Vec<PinnedManifest>,
}

/// `knc` for the `control-plane` pool, `knd` for any other.
pub fn pool_kind(pool: &str) -> Kind {
    if pool == "control-plane" {
        Kind::Knc
    } else {
        Kind::Knd
    }
}

/// The distinct (kind, arch) the pools need, sorted, with the first pool needing each.
pub fn required_targets(cfg: &ClusterConfig) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (name, pool) in &cfg.cluster.pools {
        out.entry((pool_kind(name).name().to_string(), pool.arch.clone()))
            .or_insert_with(|| name.clone());
    }
    out
}

/// Generate every file of the cluster directory. The config is fully validated first.
pub fn generate(cfg: &ClusterConfig, opts: &Options) -> Result<Vec<File>, GenerateError> {
    render(&super::validate_for_terraform(cfg)?, opts)
}

/// Every file of the cluster directory for a config that passed
/// [`validate_for_terraform`](super::validate_for_terraform).
pub fn render(valid: &Validated, opts: &Options) -> Result<Vec<File>, GenerateError> {
    let cfg = valid.config();
    let provider = &valid.provider().config;
    let network = valid.service_network();
    let account = safe_name(&["account", &provider.account, &provider.region]);
    let net = safe_name(&["network", &provider.account, &provider.region]);
    let targets = required_targets(cfg);
    let mut pinned = Vec::new();
    for ((kind, arch), pool) in &targets {
        let m = opts
            .manifests
            .iter()
            .find(|m| &m.kind == kind && &m.arch == arch)
            .ok_or_else(|| GenerateError::MissingManifest {
                kind: kind.clone(),
                arch: arch.clone(),
                pool: pool.clone(),
            })?;
        check_manifest(m, &opts.deps_mirror_url)?;
        pinned.push(m);
    }

    let mut files = vec![
        tf(
            "podplane.cluster.main.tf",
            &main_tf::doc(cfg, provider, opts, network, &account, &net),
        ),
        tf("podplane.cluster.buckets.tf", &buckets::doc()),
        tf("podplane.cluster.dns.tf", &dns::doc(cfg, &net)),
        tf("podplane.cluster.roles.tf", &roles::doc(cfg, &account)),
        tf(
            "podplane.cluster.inputs.runtime.tf",
            &inputs_runtime::doc(valid),
        ),
        tf("podplane.cluster.inputs.vm.tf", &inputs_vm::doc(cfg)),
        tf(
            "podplane.cluster.inputs.infra.tf",
            &inputs_infra::doc(cfg, provider),
        ),
        tf(
            "podplane.cluster.outputs.tf",
            &outputs::doc(cfg, provider, &net),
        ),
    ];
    for m in pinned {
        files.push(File {
            name: format!(
                "podplane.cluster.{}",
                PinnedManifest::file_name(&m.kind, &m.arch)
            ),
            content: m.json.clone(),
        });
    }
    files.push(File {
        name: USERDATA_TEMPLATE.into(),
        content: crate::userdata::tf_template().into_bytes(),
    });
    files.push(File {
        name: config::SCHEMA_FILE.into(),
        content: schema_copy().into_bytes(),
    });
    Ok(files)
}

/// The manifest must parse and pin a released vmagent (the userdata downloads it by digest).
fn check_manifest(m: &PinnedManifest, mirror: &str) -> Result<(), GenerateError> {
    let name = PinnedManifest::file_name(&m.kind, &m.arch);
    let bad = |reason: ManifestProblem| GenerateError::BadManifest {
        kind: m.kind.clone(),
        arch: m.arch.clone(),
        name: name.clone(),
        reason: Box::new(reason),
    };
    let manifest = vmagent::manifest::Manifest::from_slice(&m.json, std::path::Path::new(&name))
        .map_err(|e| bad(ManifestProblem::Parse(e.source)))?;
    if manifest.vmconfig.kind != m.kind || manifest.vmconfig.os.arch != m.arch {
        return Err(bad(ManifestProblem::WrongTarget {
            got_kind: manifest.vmconfig.kind.clone(),
            got_arch: manifest.vmconfig.os.arch.clone(),
            kind: m.kind.clone(),
            arch: m.arch.clone(),
        }));
    }
    let mut facts = crate::userdata::Facts::nstance_placeholders("aws");
    facts.enable_ssm = true;
    facts.aws_account_id = "123456789012".into();
    let mirror = (!mirror.is_empty()).then_some(mirror);
    let script = crate::userdata::render(&manifest, &facts, mirror)
        .map_err(|e| bad(ManifestProblem::Userdata(e)))?;
    // The template embeds the file as written, not the compact form `render` uses.
    let compact =
        serde_json::to_string(&manifest).map_err(|e| bad(ManifestProblem::Serialize(e)))?;
    let raw_len = String::from_utf8_lossy(&m.json).trim().len();
    let size = script.len() - compact.len() + raw_len;
    if size > crate::userdata::MAX_BYTES {
        return Err(bad(ManifestProblem::TooBig {
            size,
            max: crate::userdata::MAX_BYTES,
        }));
    }
    Ok(())
}

/// The schema with a `$comment` saying it is a generated support file.
pub fn schema_copy() -> String {
    config::schema::with_comment(
        &config::schema_json(),
        "Generated support file written by the podplane CLI next to podplane.cluster.jsonc for editor validation; its source is the CLI's config types (podplane cluster schema).",
    )
}
