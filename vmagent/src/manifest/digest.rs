//! Manifest digests: the accepted [`Algorithm`]s and a parsed [`Digest`] (`<algo>:<hex>`, hex
//! normalised to lower case), with a [`DigestError`] for each way a digest string can be wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A digest algorithm accepted in manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A parsed `<algo>:<hex>` digest, hex normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Why a digest string is not acceptable. Each case is its own error so callers and tests can
/// tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest is missing (expected \"sha256:<64 hex>\" or \"sha512:<128 hex>\")")]
    Missing,
    #[error("digest {0:?} has no \":\" between algorithm and hex (expected \"sha256:<hex>\")")]
    NoColon(String),
    #[error("digest algorithm {0:?} is not supported (use sha256 or sha512)")]
    UnknownAlgorithm(String),
    #[error("{algorithm} digest has {actual} hex characters, expected {expected}")]
    WrongLength {
        algorithm: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("digest hex {0:?} contains characters that are not hexadecimal")]
    NotHex(String),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if s.is_empty() {
            return Err(DigestError::Missing);
        }
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::NoColon(s.to_string()));
        };
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::UnknownAlgorithm(other.to_string())),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                algorithm: algorithm.name(),
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::NotHex(hex.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_ascii_lowercase(),
        })
    }
}
