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
        reason: String,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}
