//! vmagent: Podplane's node agent, as a library.
//!
//! The binary in `main.rs` is a thin layer of argument parsing over these modules.

pub mod fetch;
pub mod fsutil;
pub mod logging;
pub mod manifest;
