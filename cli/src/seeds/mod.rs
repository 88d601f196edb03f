//! Seeded clusters: the Netsy snapshot a cluster's first control-plane node imports
//! (`bootstrap.netsy`), built on this machine from a cached seed.
//!
//! * [`netsy`]: the `.netsy` file format (reader, writer, bootstrap rules);
//! * [`manifest`]: the seeds manifest and the seed cache (`deps download`);
//! * [`pin`]: a cluster's pinned seed resolved against the cache, and the wizard's pin;
//! * [`derived`]: the platform-components values a cluster config implies;
//! * [`interpolate`]: a seed rewritten for one cluster config;
//! * [`images`]: its image-mirror step;
//! * [`upload`]: the create-only upload into the Netsy bucket;
//! * [`command`]: `podplane cluster seed`.

pub mod command;
pub mod derived;
pub mod images;
pub mod interpolate;
pub mod manifest;
pub mod netsy;
pub mod pin;
pub mod upload;
