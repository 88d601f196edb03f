//! `mutable.env` deliveries: parse, validate and merge into the node's current settings.
//!
//! Parsing accepts what upstream's update-mutable-env.sh accepted, with each edge case decided
//! here rather than left to bash: each line is trimmed and split at the first `=`; blank lines
//! and `#` comments are skipped; the key must be `[A-Za-z_][A-Za-z0-9_]*` and in the contract;
//! one surrounding pair of `'` or `"` is stripped (nothing is unescaped); a value may only hold
//! ASCII letters, digits, space and `- . / _ : + = # @ , [ ]` and at most 4096 characters
//! (upstream's set plus the brackets of IPv6 literals in URLs, which are inert inside the single
//! quotes the files use); later duplicates win; `K=a=` keeps `a=` (bash would drop the `=`); a
//! line without `=` is an error (bash would read an empty value).
//! The allow-list keeps the files safe to `source` from bash.
//!
//! Files saved by Windows tools are accepted: a leading UTF-8 byte order mark is dropped and CRLF
//! line endings read as LF (the merged file is written with LF). Bytes that are not UTF-8 are
//! refused naming the line, like any other bad line.
//!
//! Then every value is checked for its type (booleans, numbers, ports, hostnames, URLs, IP
//! lists, CIDRs, service names, base64), so a bad setting is refused when it arrives rather
//! than breaking a service later. A refused file changes nothing.

use crate::contract::{CheckError, MutableKey};
use std::collections::BTreeMap;

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
    #[error("{key}={value:?}: {source}")]
    BadValue {
        key: String,
        value: String,
        #[source]
        source: CheckError,
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

/// Type checks for the keys that have a type ([`MutableKey::check`], the rule the typed settings
/// parse applies too); a key outside the contract has none. Empty values are allowed everywhere
/// (they mean "default" or "off").
pub fn check(key: &str, v: &str) -> Result<(), MutableError> {
    let Some(check) = MutableKey::parse(key).map(MutableKey::check) else {
        return Ok(());
    };
    check.validate(v).map_err(|source| MutableError::BadValue {
        key: key.into(),
        value: v.into(),
        source,
    })
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
