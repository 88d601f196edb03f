//! Issuer URLs: `OIDC_ISSUER` (kube-apiserver's `--oidc-issuer-url`, from the CLI's
//! `cluster.oidc.issuer_url`) and `KUBE_SERVICE_ACCOUNT_ISSUER` (`--service-account-issuer`).
//!
//! kube-apiserver wants an `https` URL with a host and no user info, query or fragment, and it
//! compares the URL with each token's `iss` claim byte for byte. Nothing normalises the value on
//! the way: the CLI writes it into `mutable.env` as given, the node passes it to kube-apiserver as
//! given. So the rule also refuses every spelling that a URL parser would rewrite (an upper-case
//! scheme or host, a non-canonical IP address, `.` or `..` path segments, an empty or zero-padded
//! port), because such a value names a different issuer from the one it looks like.
//!
//! A trailing slash is kept as written: `https://auth.example.com` and
//! `https://auth.example.com/` are two different issuers, both accepted, and the one configured
//! must be the one the identity provider puts in `iss` (most omit the slash; Auth0 adds it).
//!
//! Characters are limited to ASCII letters, digits and `- . _ / :`, plus `[ ]` around an IPv6
//! host. That covers real issuers (paths such as `/realms/x`, `/oauth2/default`, `/<tenant>/v2.0`)
//! and keeps the value inside what `mutable.env` may carry, so there is no `%`-escaping, `~`,
//! `@`, `?` or `#`.
//!
//! The returned [`Url`] is for inspection only; use the string as written, never
//! `Url::as_str()`, which adds a `/` to an empty path and drops a default port.

pub use ::url::Url;
use ::url::{Host, ParseError};

/// Longest issuer URL accepted.
pub const MAX_ISSUER_LEN: usize = 2048;

/// Why an issuer URL is refused. Each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRuleError {
    #[error("is empty; give the issuer's URL, e.g. https://auth.example.com")]
    Empty,
    #[error("is {len} bytes long; at most {MAX_ISSUER_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "must start with https:// in lower case (kube-apiserver only accepts https issuers, and the URL must match the tokens' iss claim exactly)"
    )]
    NotHttps,
    #[error("has no host; write https://HOST[:PORT][/PATH]")]
    NoHost,
    #[error(
        "has user info (NAME@ before the host); kube-apiserver refuses it: remove everything up to the @"
    )]
    UserInfo,
    #[error("has a query (?...); kube-apiserver refuses it: remove it")]
    Query,
    #[error("has a fragment (#...); kube-apiserver refuses it: remove it")]
    Fragment,
    #[error(
        "contains {ch:?} in the {part}; only letters, digits and - . _ / : are allowed (and [ ] around an IPv6 host)"
    )]
    Char { ch: char, part: &'static str },
    #[error("is not a valid URL: {source}")]
    Parse {
        #[source]
        source: ParseError,
    },
    #[error("host {host:?} must be written in lower case (as the tokens' iss claim has it)")]
    HostCase { host: String },
    #[error(
        "host {host:?} is not a DNS name (dot-separated labels of letters, digits and -, at most 63 characters each) or an IP address"
    )]
    Host { host: String },
    #[error("port {port:?} must be a number from 1 to 65535 without leading zeros")]
    Port { port: String },
    #[error(
        "would be read as {parsed}, which is a different issuer; write it in that form (no . or .. path segments, canonical IP addresses)"
    )]
    NotAsWritten { parsed: String },
}

/// The rule for `OIDC_ISSUER` / `cluster.oidc.issuer_url`. See the module documentation.
pub fn oidc_issuer_url(s: &str) -> Result<Url, UrlRuleError> {
    https_issuer(s)
}

/// The rule for `KUBE_SERVICE_ACCOUNT_ISSUER`: the same as [`oidc_issuer_url`] (the issuer is
/// served for discovery over https and compared with `iss` exactly, like an OIDC issuer).
pub fn service_account_issuer_url(s: &str) -> Result<Url, UrlRuleError> {
    https_issuer(s)
}

fn https_issuer(s: &str) -> Result<Url, UrlRuleError> {
    if s.is_empty() {
        return Err(UrlRuleError::Empty);
    }
    if s.len() > MAX_ISSUER_LEN {
        return Err(UrlRuleError::TooLong { len: s.len() });
    }
    let rest = s.strip_prefix("https://").ok_or(UrlRuleError::NotHttps)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // The query and fragment may start inside what looks like the authority (`https://h?q`).
    let before_query = authority.split(['?', '#']).next().unwrap_or("");
    if before_query.contains('@') {
        return Err(UrlRuleError::UserInfo);
    }
    if s.contains('?') {
        return Err(UrlRuleError::Query);
    }
    if s.contains('#') {
        return Err(UrlRuleError::Fragment);
    }
    if let Some(ch) = authority
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._:[]".contains(*c)))
    {
        return Err(UrlRuleError::Char { ch, part: "host" });
    }
    if let Some(ch) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._/:".contains(*c)))
    {
        return Err(UrlRuleError::Char { ch, part: "path" });
    }
    // `https:///x` would parse with host `x`.
    if authority.is_empty() {
        return Err(UrlRuleError::NoHost);
    }
    let url = Url::parse(s).map_err(|source| match source {
        ParseError::EmptyHost => UrlRuleError::NoHost,
        source => UrlRuleError::Parse { source },
    })?;
    let not_as_written = || UrlRuleError::NotAsWritten {
        parsed: url.as_str().to_string(),
    };

    // Split the authority as written; the parse above vouches for its shape.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']').ok_or_else(not_as_written)?;
            (&authority[..addr.len() + 2], after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    match url.host() {
        Some(Host::Domain(d)) => {
            if d != host {
                return Err(if d == host.to_ascii_lowercase() {
                    UrlRuleError::HostCase { host: host.into() }
                } else {
                    not_as_written()
                });
            }
            if super::check_dns_name(d).is_err() {
                return Err(UrlRuleError::Host { host: host.into() });
            }
        }
        Some(Host::Ipv4(a)) if a.to_string() != host => return Err(not_as_written()),
        Some(Host::Ipv6(a)) if format!("[{a}]") != host => return Err(not_as_written()),
        Some(_) => {}
        None => return Err(UrlRuleError::NoHost),
    }
    if let Some(p) = port {
        let n = p.parse::<u16>().ok().filter(|n| *n > 0);
        if n.is_none() || p.starts_with('0') || n != url.port_or_known_default() {
            return Err(UrlRuleError::Port { port: p.into() });
        }
    }
    if !(path == url.path() || (path.is_empty() && url.path() == "/")) {
        return Err(not_as_written());
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
