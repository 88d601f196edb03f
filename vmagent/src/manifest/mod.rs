//! The pinned vmconfig manifest: its types, validation, install items, local file names and
//! mirror URLs. Shared by `vmagent` and the `podplane` CLI; nothing here does I/O except
//! [`Manifest::load`].
//!
//! The JSON shape is upstream's (`{"vmconfig": {...}}`); unknown fields are ignored so newer
//! manifests still load. Parsing is split in two steps: serde reads the raw document (errors name
//! the JSON path), then [`Manifest::validate`] checks the contract and returns the first problem as
//! a typed [`ManifestError`] naming the dependency key.
//!
//! The parts: [`document`] holds the document's types as serde reads them; [`digest`] the
//! `<algo>:<hex>` digests, [`name`] the rule for names that end up in paths, [`error`] the typed
//! errors, `load` reading and validating a manifest, and `items` the install items derived from
//! it with their local names and mirror URLs.

mod digest;
mod document;
mod error;
mod items;
mod load;
mod name;

pub use digest::{Algorithm, Digest, DigestError};
pub use document::{Boot, BootFile, DepType, Dependency, Image, Manifest, Os, VmConfig};
pub use error::{ManifestError, ManifestFileError};
pub use items::{InstallItem, mirror_url, provider_matches, url_basename};
pub use load::MAX_MANIFEST_BYTES;
pub use name::{MAX_NAME_LEN, NameError, check_name};

#[cfg(test)]
mod tests;
