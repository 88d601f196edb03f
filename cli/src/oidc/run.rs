//! The `oidc create` / `oidc delete` steps the binary strings together: generate and write the
//! files next to the config, then init/confirm/apply, or confirm/destroy.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::tffile;
use crate::tfrun::{Runner, TfError, confirm};

use super::load::{OidcConfigError, load};
use super::types::OidcConfig;
use super::validate::{ValidOidc, ValidationError};

/// Printed by `oidc delete --no-apply`.
pub const NO_APPLY_DELETE_MESSAGE: &str =
    "--no-apply set; OIDC config validated and no destroy was run.";
/// Printed after apply when the DNS record is not managed.
pub const MANUAL_DNS_NOTICE: &str =
    "Manual DNS configuration may be required for the generated OIDC endpoint.";
/// Printed after a successful destroy.
pub const DESTROY_DONE_MESSAGE: &str =
    "OIDC destroy completed. Config and generated .tf files were left in place.";
/// Question asked before apply.
pub const APPLY_QUESTION: &str = "Apply generated OpenTofu/Terraform changes?";
/// Question asked before destroy.
pub const DESTROY_QUESTION: &str = "Destroy OpenTofu/Terraform-managed resources?";

/// What [`generate_files`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Absolute path of the config.
    pub config_path: PathBuf,
    /// Directory the files were written to (the config's).
    pub dir: PathBuf,
    /// The validated config.
    pub config: ValidOidc,
    /// Names of the files written, in order.
    pub files: Vec<String>,
}

impl Generated {
    /// The issuer URL the server will have (what `cluster.oidc.issuer_url` should be).
    pub fn issuer_url(&self) -> &str {
        self.config.issuer_url()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Config(#[from] OidcConfigError),
    #[error("OIDC config {}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: ValidationError,
    },
    #[error(transparent)]
    Write(#[from] tffile::WriteError),
}

/// `oidc create` up to "Generated …": make `config_path` absolute, load and fully validate it
/// (a missing file is [`OidcConfigError::Missing`]), generate the files and write them next to
/// it as a set. Other files in the directory are not touched.
pub fn generate_files(config_path: &Path) -> Result<Generated, CreateError> {
    let path = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let config = load(&path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let config = super::validate(&config).map_err(|source| CreateError::Invalid {
        path: path.clone(),
        source,
    })?;
    let files = super::render(&config);
    tffile::write(&dir, &files, "podplane oidc create")?;
    Ok(Generated {
        config_path: path,
        dir,
        config,
        files: files.into_iter().map(|f| f.name).collect(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tf(#[from] TfError),
    #[error("read the answer: {0}")]
    Prompt(#[source] std::io::Error),
    /// `apply cancelled` / `destroy cancelled`.
    #[error("{0} cancelled")]
    Cancelled(&'static str),
}

/// `oidc create` after generation: `init`, confirm [`APPLY_QUESTION`] (yes when
/// `auto_approve`), `apply [-auto-approve]`; then, whether apply succeeded or not,
/// [`MANUAL_DNS_NOTICE`] when the DNS record is not managed.
pub fn apply(
    runner: &Runner,
    cfg: &OidcConfig,
    auto_approve: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), RunError> {
    runner.init()?;
    if !confirm(APPLY_QUESTION, auto_approve, input, out).map_err(RunError::Prompt)? {
        return Err(RunError::Cancelled("apply"));
    }
    let result = runner.apply(auto_approve);
    if !cfg.dns_managed() {
        let _ = writeln!(out, "{MANUAL_DNS_NOTICE}");
    }
    Ok(result?)
}

/// `oidc delete` after loading: confirm [`DESTROY_QUESTION`] (yes when `auto_approve`),
/// `destroy [-auto-approve]` (no `init`, as upstream), then [`DESTROY_DONE_MESSAGE`].
pub fn destroy(
    runner: &Runner,
    auto_approve: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), RunError> {
    if !confirm(DESTROY_QUESTION, auto_approve, input, out).map_err(RunError::Prompt)? {
        return Err(RunError::Cancelled("destroy"));
    }
    // Init first (upstream podplane did not): a fresh checkout can otherwise destroy nothing.
    runner.init()?;
    runner.destroy(auto_approve)?;
    let _ = writeln!(out, "{DESTROY_DONE_MESSAGE}");
    Ok(())
}
