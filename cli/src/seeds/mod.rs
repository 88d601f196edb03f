//! Seeded clusters: the Netsy snapshot a cluster's first control-plane node imports
//! (`bootstrap.netsy`), built on this machine from a cached seed.
//!
//! * [`netsy`]: the `.netsy` file format (reader, writer, bootstrap rules).

pub mod netsy;
