//! `mutable.env` deliveries: parse, validate and merge into the node's current settings.
//!
//! Parsing follows upstream's update-mutable-env.sh, with its quirks decided explicitly: each line
//! is trimmed and split at the first `=`; blank lines and `#` comments are skipped; the key must
//! be `[A-Za-z_][A-Za-z0-9_]*` and in the contract; one surrounding pair of `'` or `"` is
//! stripped (nothing is unescaped); a value may only hold ASCII letters, digits, space and
//! `- . / _ : + = # @ , [ ]` and at most 4096 characters (upstream's set plus the brackets of IPv6
//! literals in URLs, which are inert inside the single quotes the files use); later duplicates
//! win; `K=a=` keeps `a=`
//! (bash would drop the `=`); a line without `=` is an error (bash would read an empty value).
//! The allow-list keeps the files safe to `source` from bash.
//!
//! Files saved by Windows tools are accepted: a leading UTF-8 byte order mark is dropped and CRLF
//! line endings read as LF (the merged file is written with LF). Bytes that are not UTF-8 are
//! refused naming the line, like any other bad line.
//!
//! Then every value is checked for its type (booleans, numbers, ports, hostnames, URLs, IP
//! lists, CIDRs, service names, base64), so a bad setting is refused when it arrives rather
//! than breaking a service later. A refused file changes nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::contract::{Check, MutableKey};

pub const MAX_VALUE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutableError {
    #[error(
        "line {line}: byte {column} is not valid UTF-8; save the file as UTF-8 (values may only hold ASCII)"
    )]
    NotUtf8 { line: usize, column: usize },
    #[error("line {line}: expected KEY=value")]
    NoEquals { line: usize },
    #[error(
        "line {line}: {key:?} is not a valid key (letters, digits and _; not starting with a digit)"
    )]
    BadKey { line: usize, key: String },
    #[error(
        "line {line}: {key} is not in the mutable.env contract (known keys: the defaults of vmagent's settings)"
    )]
    Unknown { line: usize, key: String },
    #[error("line {line}: {key} has {len} characters; at most {MAX_VALUE} are allowed")]
    TooLong {
        line: usize,
        key: String,
        len: usize,
    },
    #[error(
        "line {line}: {key} contains {ch:?}, which is not allowed (only letters, digits, space and - . / _ : + = # @ , [ ])"
    )]
    BadChar { line: usize, key: String, ch: char },
    #[error("{key}={value:?}: {why}")]
    BadValue {
        key: String,
        value: String,
        why: String,
    },
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || " -./_:+=#@,[]".contains(c)
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn in_contract(k: &str) -> bool {
    MutableKey::parse(k).is_some()
}

/// Parse a delivered mutable.env as it arrived: bytes that are not UTF-8 are refused with
/// their line and column; then as [`parse`].
pub fn parse_bytes(bytes: &[u8]) -> Result<BTreeMap<String, String>, MutableError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let bad = e.valid_up_to();
        let start = bytes[..bad]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        MutableError::NotUtf8 {
            line: bytes[..bad].iter().filter(|b| **b == b'\n').count() + 1,
            column: bad - start + 1,
        }
    })?;
    parse(text)
}

/// Parse a delivered (or current) mutable.env. Errors name the line and key.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, MutableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = BTreeMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        // CRLF endings: the \r is the line ending's, not the value's.
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(MutableError::NoEquals { line });
        };
        let key = k.trim();
        if !valid_key(key) {
            return Err(MutableError::BadKey {
                line,
                key: key.into(),
            });
        }
        if !in_contract(key) {
            return Err(MutableError::Unknown {
                line,
                key: key.into(),
            });
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('\'') && v.ends_with('\''))
                || (v.starts_with('"') && v.ends_with('"')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        let len = v.chars().count();
        if len > MAX_VALUE {
            return Err(MutableError::TooLong {
                line,
                key: key.into(),
                len,
            });
        }
        if let Some(ch) = v.chars().find(|c| !allowed(*c)) {
            return Err(MutableError::BadChar {
                line,
                key: key.into(),
                ch,
            });
        }
        out.insert(key.to_string(), v.to_string());
    }
    Ok(out)
}

fn bad(key: &str, value: &str, why: impl Into<String>) -> MutableError {
    MutableError::BadValue {
        key: key.into(),
        value: value.into(),
        why: why.into(),
    }
}

fn is_hostname(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `scheme://host[:port][/path]` with `scheme` one of `schemes`.
fn check_url(key: &str, v: &str, schemes: &[&str]) -> Result<(), MutableError> {
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(bad(
            key,
            v,
            format!(
                "it must be a URL starting with {}://",
                schemes.join(":// or ")
            ),
        ));
    };
    if !schemes.contains(&scheme) {
        return Err(bad(
            key,
            v,
            format!("the scheme must be {}", schemes.join(" or ")),
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| bad(key, v, "unclosed [ in the host"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(key, v, "the bracketed host is not an IPv6 address"));
        }
        (h, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !(is_hostname(host) || host.parse::<IpAddr>().is_ok() || authority.starts_with('[')) {
        return Err(bad(key, v, "the host is not a valid name or address"));
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err(bad(key, v, "the port must be 1-65535"));
    }
    Ok(())
}

fn check_cidrs(key: &str, v: &str) -> Result<(), MutableError> {
    for item in v.split(',') {
        let (ip, prefix) = item
            .split_once('/')
            .ok_or_else(|| bad(key, v, format!("{item:?} is not ADDRESS/PREFIX")))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| bad(key, v, format!("{ip:?} is not an IP address")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if !matches!(prefix.parse::<u8>(), Ok(n) if n <= max) {
            return Err(bad(
                key,
                v,
                format!("{item:?} has a prefix outside 0-{max}"),
            ));
        }
    }
    Ok(())
}

/// Type checks for the keys that have a type ([`MutableKey::check`]); a key outside the
/// contract has none. Empty values are allowed everywhere (they mean "default" or "off").
pub fn check(key: &str, v: &str) -> Result<(), MutableError> {
    if v.is_empty() {
        return Ok(());
    }
    let Some(check) = MutableKey::parse(key).map(MutableKey::check) else {
        return Ok(());
    };
    match check {
        Check::Text => {}
        Check::Bool if v != "true" && v != "false" => {
            return Err(bad(key, v, "it must be exactly true or false"));
        }
        Check::Bool => {}
        Check::Port
            if !matches!(v.parse::<u16>(), Ok(n) if n > 0)
                || !v.bytes().all(|b| b.is_ascii_digit()) =>
        {
            return Err(bad(key, v, "it must be a port from 1 to 65535"));
        }
        Check::Port => {}
        Check::Number(max) => match v.parse::<u32>() {
            Ok(n) if n <= max && v.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => {
                return Err(bad(
                    key,
                    v,
                    format!("it must be a whole number from 0 to {max}"),
                ));
            }
        },
        Check::Hostname if !is_hostname(v) => {
            return Err(bad(
                key,
                v,
                "it must be a DNS name (letters, digits, - and dots)",
            ));
        }
        Check::Hostname => {}
        // The same rule the CLI applies to cluster.oidc.issuer_url (one function for both).
        Check::OidcIssuer => crate::contract::oidc_issuer_url(v)
            .map(drop)
            .map_err(|e| bad(key, v, e.to_string()))?,
        Check::ServiceAccountIssuer => crate::contract::service_account_issuer_url(v)
            .map(drop)
            .map_err(|e| bad(key, v, e.to_string()))?,
        Check::HttpUrl => check_url(key, v, &["http", "https"])?,
        // S3 endpoints may also be given as a bare host (upstream's default form).
        Check::S3Endpoint => {
            if v.contains("://") {
                check_url(key, v, &["http", "https"])?;
            } else if !is_hostname(v.split(':').next().unwrap_or("")) {
                return Err(bad(key, v, "it must be a host name or an http(s):// URL"));
            }
        }
        Check::UrlList => {
            for s in v.split(',') {
                check_url(key, s, &["https", "http"])?;
            }
        }
        Check::IpList => {
            for ip in v.split(',') {
                if ip.parse::<IpAddr>().is_err() {
                    return Err(bad(key, v, format!("{ip:?} is not an IP address")));
                }
            }
        }
        Check::Cidrs => check_cidrs(key, v)?,
        Check::ServiceNames => {
            for s in v.split(',') {
                let ok = s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !ok {
                    return Err(bad(
                        key,
                        v,
                        format!("{s:?} is not a service name (lowercase name,name,...)"),
                    ));
                }
            }
        }
        Check::Base64
            if !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
        {
            return Err(bad(key, v, "it must be base64 (a base64-encoded PEM)"));
        }
        Check::Base64 => {}
    }
    Ok(())
}

/// The new mutable.env: the contract's keys, each from the delivery, else the current file, else
/// the default; checked; as `KEY='value'` lines sorted by key.
pub fn merge(
    current: &BTreeMap<String, String>,
    delivered: &BTreeMap<String, String>,
) -> Result<String, MutableError> {
    for (k, v) in delivered {
        check(k, v)?;
    }
    let mut out = String::new();
    // ALL is sorted by name.
    for key in MutableKey::ALL {
        let k = key.name();
        let v = delivered
            .get(k)
            .or_else(|| current.get(k))
            .map_or(key.default(), String::as_str);
        out.push_str(&format!("{k}='{v}'\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
