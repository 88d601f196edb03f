//! vmagent: Podplane's node agent, as a library.
//!
//! The binary in `main.rs` is a thin layer of argument parsing over these modules.

pub mod accounts;
pub mod apply;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod contract;
pub mod converge;
pub mod deferred;
pub mod diff;
pub mod envfile;
pub mod facts;
pub mod fetch;
pub mod fsutil;
pub mod host;
pub mod install;
pub mod logging;
pub mod manifest;
pub mod plan;
pub mod recv;
pub mod render;
pub mod safefs;
pub mod settings;
pub mod status;
pub mod userdb;
