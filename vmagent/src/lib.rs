//! vmagent: Podplane's node agent, as a library.
//!
//! The binary in `main.rs` is a thin layer of argument parsing over these modules.

pub mod manifest;
