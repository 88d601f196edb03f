//! Rules shared by the CLI and the node. A value the CLI accepts is written into the node's
//! settings, and the node checks it again when it arrives; when the two checks differ, a cluster
//! the CLI called valid breaks on the node (or the node refuses what the CLI never allowed). So
//! each such rule lives here, once, and both sides call it.

pub mod certs;
pub mod node;
pub mod url;

pub use self::node::{Arch, Kind, Provider, UnknownName};
pub use self::url::{MAX_ISSUER_LEN, UrlRuleError, oidc_issuer_url, service_account_issuer_url};
