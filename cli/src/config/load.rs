//! Reading, parsing and light validation of `podplane.cluster.jsonc`.

use std::path::Path;

use thiserror::Error;

use super::jsonc::{self, JsoncError};
use super::types::ClusterConfig;
use super::validate::{
    ComponentsError, IdError, SeedError, ValidationError, check_cluster_id, check_components,
    check_seed,
};

/// Why the JSONC text could not be turned into a [`ClusterConfig`].
#[derive(Debug, Error)]
pub enum ParseError {
    #[error(transparent)]
    Jsonc(#[from] JsoncError),
    /// A JSON syntax or type error; `at` is the field path (`cluster.pools.main.size`)
    /// when the error is inside the document.
    #[error("{}{source}", at.as_deref().map(|a| format!("at {a}: ")).unwrap_or_default())]
    Json {
        at: Option<String>,
        #[source]
        source: serde_json::Error,
    },
}

/// A failed light check, in the order they run after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadProblem {
    #[error("missing cluster.id")]
    MissingId,
    #[error("invalid cluster.id: {0}")]
    Id(#[source] IdError),
    #[error("missing cluster.oidc.issuer_url")]
    MissingIssuerUrl,
    #[error("invalid cluster.seed: {0}")]
    Seed(#[source] SeedError),
    #[error("invalid cluster.components: {0}")]
    Components(#[source] ComponentsError),
}

/// Any failure to load a cluster config. `Display` is the user-facing message.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("read cluster config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parse cluster config {path}: {source}")]
    Parse { path: String, source: ParseError },
    /// Light-load check failures.
    #[error("cluster config {path}: {problem}")]
    Invalid { path: String, problem: LoadProblem },
    /// Full validation failures.
    #[error("cluster config {path}: {source}")]
    Validation {
        path: String,
        source: ValidationError,
    },
}

/// Parses JSONC text into the model (no validation). Unknown keys, duplicate keys and type
/// mismatches are errors naming the field path.
pub fn parse_str(text: &str) -> Result<ClusterConfig, ParseError> {
    parse_jsonc(text)
}

/// Parses JSONC text into any of the CLI's strict config models (the cluster and OIDC files),
/// naming the field path of the first problem (`at cluster.pools.main: unknown field …`).
pub fn parse_jsonc<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let json = jsonc::to_json(text)?;
    let mut de = serde_json::Deserializer::from_str(&json);
    let cfg: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ParseError::Json {
            at: (path != ".").then_some(path),
            source: e.into_inner(),
        }
    })?;
    de.end()
        .map_err(|source| ParseError::Json { at: None, source })?;
    Ok(cfg)
}

/// Light checks used by every command that reads the file: id, issuer, seed, components.
pub fn light_check(cfg: &ClusterConfig) -> Result<(), LoadProblem> {
    let c = &cfg.cluster;
    if c.id.is_empty() {
        return Err(LoadProblem::MissingId);
    }
    check_cluster_id(&c.id).map_err(LoadProblem::Id)?;
    if c.oidc.issuer_url.is_empty() {
        return Err(LoadProblem::MissingIssuerUrl);
    }
    check_seed(&c.seed).map_err(LoadProblem::Seed)?;
    check_components(&c.components).map_err(LoadProblem::Components)?;
    Ok(())
}

/// Reads, parses and light-checks the file at `path` (the light load every command does).
pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let cfg = parse_str(&text).map_err(|source| ConfigError::Parse {
        path: shown.clone(),
        source,
    })?;
    light_check(&cfg).map_err(|problem| ConfigError::Invalid {
        path: shown,
        problem,
    })?;
    Ok(cfg)
}

/// Where a config problem is, for tools: the file, the 1-based line and column when the
/// problem is a syntax or type error at a known place in the text, and the config path of the
/// field (`cluster.providers[0].zones`) when it is about one field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorLocation {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: Option<String>,
}

impl ParseError {
    /// 1-based line and column in the file, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ParseError::Jsonc(JsoncError::UnterminatedComment { line, column }) => {
                Some((*line, *column))
            }
            // serde_json counts lines from 1 and reports 0 when there is no position.
            ParseError::Json { source, .. } => {
                (source.line() > 0).then(|| (source.line(), source.column()))
            }
        }
    }

    /// The config path of the field the error is in, when inside the document.
    pub fn field(&self) -> Option<&str> {
        match self {
            ParseError::Jsonc(_) => None,
            ParseError::Json { at, .. } => at.as_deref(),
        }
    }
}

impl LoadProblem {
    /// The config path of the field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            LoadProblem::MissingId | LoadProblem::Id(_) => "cluster.id",
            LoadProblem::MissingIssuerUrl => "cluster.oidc.issuer_url",
            LoadProblem::Seed(_) => "cluster.seed",
            LoadProblem::Components(_) => "cluster.components",
        }
    }
}

impl ConfigError {
    /// The file, position and field of the problem.
    pub fn location(&self) -> ErrorLocation {
        let (file, position, path) = match self {
            ConfigError::Read { path, .. } => (path, None, None),
            ConfigError::Parse { path, source } => {
                (path, source.position(), source.field().map(String::from))
            }
            ConfigError::Invalid { path, problem } => {
                (path, None, Some(problem.field().to_string()))
            }
            ConfigError::Validation { path, source } => {
                (path, None, Some(source.field().to_string()))
            }
        };
        ErrorLocation {
            file: file.clone(),
            line: position.map(|(l, _)| l),
            column: position.map(|(_, c)| c),
            path,
        }
    }

    /// [`ConfigError::location`], with the line and column of the field filled in from the
    /// file's `text` when the error came from a check on the parsed config (those carry the
    /// field's path, not its place). A field that is missing points at its nearest parent.
    pub fn location_in(&self, text: &str) -> ErrorLocation {
        let mut at = self.location();
        if at.line.is_none()
            && let Some((line, column)) = at.path.as_deref().and_then(|p| super::locate(text, p))
        {
            at.line = Some(line);
            at.column = Some(column);
        }
        at
    }

    /// The problem itself, without the `cluster config <file>:` prefix of `Display`.
    pub fn problem(&self) -> String {
        match self {
            ConfigError::Read { source, .. } => format!("cannot read the file: {source}"),
            ConfigError::Parse { source, .. } => source.to_string(),
            ConfigError::Invalid { problem, .. } => problem.to_string(),
            ConfigError::Validation { source, .. } => source.to_string(),
        }
    }
}
