//! Rules shared by the CLI and the node. A value the CLI accepts is written into the node's
//! settings, and the node checks it again when it arrives; when the two checks differ, a cluster
//! the CLI called valid breaks on the node (or the node refuses what the CLI never allowed). So
//! each such rule lives here, once, and both sides call it.
//!
//! The same goes for the names the two programs exchange: provider kinds, node kinds and
//! arches ([`node`]), the certificates Nstance delivers and where a node installs them
//! ([`certs`]), the `mutable.env` keys with their defaults and checks ([`env`]), the `user-data.env` and
//! `detected.env` keys ([`user_data`]), the rule each value must pass ([`value`]), and the
//! instance facts userdata passes to `vmagent bootstrap` ([`facts`]). The CLI
//! (`podplane`) and the node agent (`vmagent`) both refer to them through these types, so a
//! renamed key, kind or certificate fails to compile on both sides instead of failing a VM's
//! boot.

pub mod certs;
pub mod env;
pub mod facts;
pub mod node;
pub mod otlp;
pub mod url;
pub mod user_data;
pub mod value;

pub use self::env::{Check, MutableKey};
pub use self::facts::InstanceFacts;
pub use self::node::{Arch, Kind, Provider, UnknownName};
pub use self::url::{MAX_ISSUER_LEN, UrlRuleError, oidc_issuer_url, service_account_issuer_url};
pub use self::user_data::{DetectedKey, FactError, UserDataKey};
pub use self::value::{CheckError, DnsNameError, EnvKey, Hostname, check_dns_name, is_dns_label};
