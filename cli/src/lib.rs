//! Library side of the `podplane` CLI: the pieces the binary's commands are built from.

pub mod config;
pub mod deps;
pub mod userdata;
