//! Reading, parsing and full validation of `podplane.oidc.jsonc`.

use std::path::{Path, PathBuf};

use crate::config::ParseError;

use super::types::OidcConfig;
use super::validate::{ValidationError, validate};

/// Any failure to load an OIDC config. `Display` is the user-facing message.
#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    /// There is no wizard: the file has to be written by hand.
    #[error(
        "OIDC config {} does not exist; write it first: a JSONC file {{\"oidc\": {{…}}}} setting at least oidc.provider.kind and .region, oidc.hostname, oidc.connector.kind and .client_secret_arn, and oidc.signing_key_secret_arn",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("read OIDC config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parse OIDC config {path}: {source}")]
    Parse { path: String, source: ParseError },
    #[error("OIDC config {path}: {source}")]
    Invalid {
        path: String,
        source: ValidationError,
    },
}

/// Parses JSONC text into the model (no validation). Unknown keys, duplicate keys and type
/// mismatches are errors naming the field path (`at oidc.connector: unknown field …`).
pub fn parse_str(text: &str) -> Result<OidcConfig, ParseError> {
    crate::config::parse_jsonc(text)
}

/// Reads, parses and fully validates the file at `path`. A missing file is
/// [`OidcConfigError::Missing`], which tells the user to write it.
pub fn load(path: &Path) -> Result<OidcConfig, OidcConfigError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OidcConfigError::Missing(path.to_path_buf()));
        }
        Err(source) => {
            return Err(OidcConfigError::Read {
                path: shown,
                source,
            });
        }
    };
    let cfg = parse_str(&text).map_err(|source| OidcConfigError::Parse {
        path: shown.clone(),
        source,
    })?;
    validate(&cfg).map_err(|source| OidcConfigError::Invalid {
        path: shown,
        source,
    })?;
    Ok(cfg)
}
