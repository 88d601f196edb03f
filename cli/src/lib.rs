//! Library side of the `podplane` CLI: the pieces the binary's commands are built from.

pub mod args;
pub mod aws;
pub mod components;
pub mod config;
pub mod create;
pub mod delete;
pub mod deps;
pub mod dirs;
pub mod hcl;
pub mod login;
pub mod oidc;
pub mod seeds;
pub mod tffile;
pub mod tfgen;
pub mod tfrun;
pub mod userdata;
pub mod wizard;
