//! What can be wrong with a manifest: [`ManifestError`], each variant naming what is wrong and
//! where (the JSON path or the dependency key), and [`ManifestFileError`], the same with the
//! file it was found in.

use std::path::{Path, PathBuf};

use super::digest::DigestError;
use super::name::NameError;

/// A contract violation in a manifest. Every variant names what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "manifest {path} is larger than {max} bytes; a vmconfig manifest is a few KiB: check that the path names a manifest"
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error(
        "manifest {path} is not valid: at JSON path `{json_path}`: {message} (expected upstream's {{\"vmconfig\": {{...}}}} manifest)"
    )]
    Json {
        path: PathBuf,
        json_path: String,
        message: String,
    },
    #[error("manifest is missing `vmconfig.{field}` (a non-empty string is required)")]
    MissingField { field: &'static str },
    #[error("manifest `vmconfig.kind` is {0:?}; expected \"knd\" or \"knc\"")]
    BadKind(String),
    #[error("manifest `vmconfig.os.arch` is {0:?}; expected \"amd64\" or \"arm64\"")]
    BadArch(String),
    #[error("dependency {key:?} has no `version`")]
    MissingVersion { key: String },
    #[error("dependency {key:?} has no `url`")]
    MissingUrl { key: String },
    #[error("dependency {key:?} has url {url:?}, which is not an http:// or https:// URL")]
    BadUrl { key: String, url: String },
    #[error("dependency {key:?}: {source}")]
    Digest { key: String, source: DigestError },
    #[error(
        "dependency {key:?} has no `size` (or size 0); every artifact must declare its size in bytes: add it to the manifest"
    )]
    MissingSize { key: String },
    #[error(
        "{at} is {value:?}, which {source}; it is used in file names and paths, so it must be a single path component: fix the manifest"
    )]
    UnsafeName {
        /// Where in the JSON, e.g. ``the key in `vmconfig.dependencies` `` or
        /// `` `vmconfig.dependencies.runc.version` ``.
        at: String,
        value: String,
        #[source]
        source: NameError,
    },
    #[error(
        "dependencies {first:?} and {second:?} would both be stored as {local_name:?}; rename one of them in the manifest"
    )]
    NameClash {
        first: String,
        second: String,
        local_name: String,
    },
}

impl ManifestError {
    /// Prefix the error with the manifest file it came from.
    pub fn in_file(self, path: &Path) -> ManifestFileError {
        ManifestFileError {
            path: path.to_path_buf(),
            source: self,
        }
    }
}

/// A [`ManifestError`] together with the file it was found in.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ManifestFileError {
    pub path: PathBuf,
    pub source: ManifestError,
}
