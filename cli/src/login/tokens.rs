//! The secrets of one login, as both token stores (the OS keyring and the encrypted file) keep
//! them.

use serde::{Deserialize, Serialize};

/// The secrets of one login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub id_token: String,
    #[serde(default)]
    pub refresh_token: String,
}
