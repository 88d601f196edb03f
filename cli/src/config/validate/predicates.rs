//! Format rules for single values: cluster IDs, DNS names, AWS regions and zones, email
//! addresses, HTTPS URLs (`url`) and IPv4 CIDRs (`ipnet`). They know nothing about the rest of the config.

use thiserror::Error;

use ipnet::{IpNet, Ipv4Net};

use crate::config::service_network::parse_cidr;

/// Why a cluster ID is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("is required")]
    Required,
    #[error("must be at most 32 characters")]
    TooLong,
    #[error("must not contain consecutive hyphens")]
    ConsecutiveHyphens,
    #[error("must be lowercase alphanumeric with hyphens, no leading/trailing hyphens")]
    Charset,
    #[error("{0:?} is reserved")]
    Reserved(String),
}

/// The DNS-name rule (hostnames, zones) is the contract's, so a name the CLI accepts is one the
/// node accepts too.
pub use vmagent::contract::{DnsNameError, check_dns_name};

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, at most 63 bytes: one DNS label, the contract's rule.
pub(super) use vmagent::contract::is_dns_label as is_label;

/// Cluster ID rule (also used for `local --id`).
pub fn check_cluster_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Required);
    }
    if id.len() > 32 {
        return Err(IdError::TooLong);
    }
    if id.contains("--") {
        return Err(IdError::ConsecutiveHyphens);
    }
    if !is_label(id) {
        return Err(IdError::Charset);
    }
    if matches!(id, "local" | "k8s" | "oidc") {
        return Err(IdError::Reserved(id.to_string()));
    }
    Ok(())
}

/// `^[a-z]{2}(?:-[a-z0-9]+)+-[1-9][0-9]*$` (e.g. `us-west-2`, `us-gov-west-1`).
pub fn is_aws_region(region: &str) -> bool {
    let b = region.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_lowercase() || !b[1].is_ascii_lowercase() || b[2] != b'-' {
        return false;
    }
    let parts: Vec<&str> = region[3..].split('-').collect();
    let Some((last, middle)) = parts.split_last() else {
        return false;
    };
    !middle.is_empty()
        && middle.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && last.starts_with(|c: char| ('1'..='9').contains(&c))
        && last.bytes().all(|c| c.is_ascii_digit())
}

/// A zone belongs to `region` when it is the region plus one letter (`us-west-2a`) or the
/// region plus `-…` (local zone, `us-west-2-lax-1a`).
pub fn is_zone_in_region(region: &str, zone: &str) -> bool {
    let Some(suffix) = zone.strip_prefix(region) else {
        return false;
    };
    let standard = suffix.len() == 1 && suffix.as_bytes()[0].is_ascii_lowercase();
    // Local and Wavelength zones: `us-west-2-lax-1a`, lowercase letters, digits and hyphens.
    let local = suffix.len() > 1
        && suffix.starts_with('-')
        && !suffix.ends_with('-')
        && suffix[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    standard || local
}

/// A bare RFC 5322 `local@domain` address with dot-atom parts (no display name, no angle
/// brackets, no quoted local part, no comments).
pub fn is_bare_email(s: &str) -> bool {
    fn dot_atom(s: &str) -> bool {
        const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
        !s.is_empty()
            && s.split('.').all(|atom| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
            })
    }
    match s.rsplit_once('@') {
        Some((local, domain)) => dot_atom(local) && dot_atom(domain),
        None => false,
    }
}

/// An absolute `https://host[:port][/path]` URL with a non-empty host, parsed. Two things are
/// refused before the `url` crate sees the text, because the URL standard it follows would
/// repair them silently: whitespace and control characters (some are dropped), and anything
/// but `https://` followed by the host (`https:host` and `https:///host` parse as `host`).
pub(super) fn https_url(s: &str) -> Option<url::Url> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let authority = s
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("https://"))
        .and_then(|_| s.get(8..))?;
    if authority.is_empty() || authority.starts_with(['/', '\\', '?', '#']) {
        return None;
    }
    url::Url::parse(s)
        .ok()
        .filter(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()))
}

/// Parses a canonical IPv4 CIDR (no host bits set), as strictly as the service networks.
pub(super) fn canonical_v4(s: &str) -> Option<Ipv4Net> {
    match parse_cidr(s) {
        Ok(IpNet::V4(net)) if net.trunc() == net => Some(net),
        _ => None,
    }
}
