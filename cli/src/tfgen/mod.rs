//! OpenTofu/Terraform generation for `podplane cluster create`.
//!
//! [`cluster::generate`] turns a validated cluster config and the pinned node manifests into
//! the files of a cluster directory; it is a pure function (no disk, no clock), so the same
//! inputs give the same bytes. [`write`] puts them next to the config atomically and never
//! touches other files there (`terraform.tfvars`, `custom.tf`, state). The HCL writer
//! ([`crate::hcl`]) and the file set writer ([`crate::tffile`]) are shared with `oidc`.

pub mod cluster;
mod rules;

pub use crate::hcl;
pub use crate::tffile::{File, HEADER, WriteError, tf_file, write};
pub use rules::{load_and_validate, validate_for_terraform};

/// A node manifest pinned for one (kind, arch): the cached file's exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedManifest {
    pub kind: String,
    pub arch: String,
    pub json: Vec<u8>,
}

impl PinnedManifest {
    /// `vmconfig_<kind>_debian-13_<arch>.json`, the cache's name for it.
    pub fn file_name(kind: &str, arch: &str) -> String {
        format!("vmconfig_{kind}_debian-13_{arch}.json")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Invalid(#[from] crate::config::ValidationError),
    #[error(
        "no pinned node manifest for {kind}/{arch} (needed by pool {pool:?}); run podplane deps download --arch {arch}"
    )]
    MissingManifest {
        kind: String,
        arch: String,
        pool: String,
    },
    #[error("the pinned node manifest {name} is not usable: {reason}")]
    BadManifest {
        kind: String,
        arch: String,
        name: String,
        #[source]
        reason: Box<ManifestProblem>,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Why a pinned node manifest cannot be used for generation.
#[derive(Debug, thiserror::Error)]
pub enum ManifestProblem {
    #[error("{0}")]
    Parse(#[source] vmagent::manifest::ManifestError),
    #[error("it is for {got_kind}/{got_arch}, not {kind}/{arch}")]
    WrongTarget {
        got_kind: String,
        got_arch: String,
        kind: String,
        arch: String,
    },
    #[error("{0}")]
    Userdata(#[source] crate::userdata::UserdataError),
    #[error("{0}")]
    Serialize(#[source] serde_json::Error),
    #[error(
        "the userdata it makes is {size} bytes, over EC2's {max} (compact the JSON or drop entries)"
    )]
    TooBig { size: usize, max: usize },
}
