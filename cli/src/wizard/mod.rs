//! Interactive creation of `podplane.cluster.jsonc` (`podplane cluster create` when the file
//! does not exist yet): the cloud provider and OIDC issuer questions, the cluster questions,
//! the output directory choice and writing the file.
//!
//! The upstream CLI uses a full-screen form; this one is line oriented so that it works the
//! same on a terminal, in a pipe and in tests. Every question is printed as
//! `Label [default]: ` (`Label: ` without a default) and reads one line:
//!
//! * an empty line takes the default;
//! * an invalid answer prints `error: <Label>: <rule>` and asks the same question again;
//! * end of input cancels (`cluster config creation cancelled`; `creation cancelled` in the
//!   output directory menu).
//!
//! There is no "back" key: answers are given in order, hidden questions are skipped.
//!
//! Deliberate differences from upstream podplane:
//!
//! * **Seeds.** The components question offers `recommended` (default), `minimal` and
//!   `none`; for a seed, the caller's `pin_seed` (the seeds manifest, cached by `podplane deps
//!   download` or fetched) supplies the version and digest written into `cluster.seed`.
//! * **Stricter checks** so that every accepted answer set yields a config that passes
//!   [`light_check`](crate::config::light_check) and
//!   [`validate_for_terraform`](crate::tfgen::validate_for_terraform): the ACME email must
//!   be a bare address, and the domain must leave room for `registry.<domain>` within 253
//!   characters.
//! * **Zone default** follows the region answered (`<region>a`) instead of a fixed
//!   `us-east-1a`, which would be rejected for any other region.
//! * **Continue in this directory** is refused when that directory already holds a file with
//!   the config's name, so the wizard never overwrites an existing config.
//!
//! The code is in three parts: `prompt` asks one question on a line-oriented input and
//! output, `answers` is the pure mapping from the answers to the config (and the config
//! file's bytes), testable without any I/O, and `flow` runs the questions in order, picks the
//! output directory and writes the file.

mod answers;
mod flow;
mod prompt;

use std::io;
use std::path::PathBuf;

use crate::config::{LoadProblem, ValidationError};

pub use answers::{Answers, config_from_answers, config_json};
pub use flow::{
    COMPONENTS_LABEL, PinSeed, ask_issuer, ask_provider, choose_output, choose_output_from,
    create_config_interactively, run_wizard, write_config,
};

/// Why interactive config creation stopped. `Display` is the user-facing message.
#[derive(Debug, thiserror::Error)]
pub enum WizardError {
    /// End of input during the provider, issuer or wizard questions.
    #[error("cluster config creation cancelled")]
    Cancelled,
    /// "Cancel" (or end of input) in the output directory menu.
    #[error("creation cancelled")]
    OutputCancelled,
    #[error("google cloud cluster creation is not supported yet")]
    GoogleUnsupported,
    #[error(
        "cluster creation requires an OIDC issuer URL; provide an existing issuer or run podplane oidc create first"
    )]
    IssuerRequired,
    /// The seed chosen could not be pinned (the seeds manifest is unreachable, or lacks it).
    #[error("pin the seed: {0}")]
    Seed(String),
    /// Reading the answers or writing the questions failed.
    #[error("cluster config prompt: {0}")]
    Prompt(#[source] io::Error),
    #[error("create directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("write cluster config {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// The answers produced a config that fails the light checks. Not reachable through the
    /// prompts (they validate every answer); kept as a safety net.
    #[error("generated cluster config is invalid: {0}")]
    Light(#[source] LoadProblem),
    /// As [`WizardError::Light`], for full validation.
    #[error("generated cluster config is invalid: {0}")]
    Invalid(#[source] ValidationError),
}
