//! `TELEMETRY_OTLP_ENDPOINT`: where fluent-bit sends logs over OTLP/HTTP, split into the parts
//! its `opentelemetry` output takes (host, port, logs URI, TLS).
//!
//! The `url` crate checks the value first ([`super::value::http_url`], the key's rule); the split
//! below stays hand-written because fluent-bit needs what the crate does not give back as
//! written: the host as given (an IPv6 literal without its brackets, for getaddrinfo) and the
//! path and query exactly as given (`Url` percent-encodes and resolves `.` segments).

/// Why an OTLP endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OtlpError(pub &'static str);

/// Where OTLP logs go, parsed from `TELEMETRY_OTLP_ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// Host name or IP address; an IPv6 literal is given without its brackets (fluent-bit
    /// resolves the host with getaddrinfo, which wants the bare address).
    pub host: String,
    pub port: u16,
    /// The request path, e.g. `/v1/logs`.
    pub logs_uri: String,
    pub tls: bool,
}

/// Parse `TELEMETRY_OTLP_ENDPOINT`: `http://` or `https://`, a host name, IPv4 address or
/// bracketed IPv6 literal, an optional port (default 80 / 443) and an optional path (default
/// `/v1/logs`; a query string is kept, a fragment dropped). Credentials in the URL are refused.
pub fn otlp_endpoint(endpoint: &str) -> Result<Otlp, OtlpError> {
    let bad = OtlpError;
    let lower = endpoint.to_ascii_lowercase();
    let (rest, tls) = if lower.starts_with("https://") {
        (&endpoint["https://".len()..], true)
    } else if lower.starts_with("http://") {
        (&endpoint["http://".len()..], false)
    } else {
        return Err(bad("it must start with http:// or https://"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let Some((inside, tail)) = after.split_once(']') else {
            return Err(bad("an IPv6 address needs a closing ]"));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the bracketed host is not an IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(bad("only :<port> may follow the IPv6 address")),
            },
        };
        (inside, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => {
                if p.contains(':') {
                    return Err(bad(
                        "an IPv6 address must be written in brackets, e.g. https://[fd00::1]:4318",
                    ));
                }
                (h, Some(p))
            }
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let name_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !name_ok {
        return Err(bad(
            "the host may only contain letters, digits, '.', '-' and '_'",
        ));
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    let logs_uri = match path {
        "" | "/" => "/v1/logs".to_string(),
        p if p.starts_with('?') => format!("/v1/logs{p}"),
        p => p.to_string(),
    };
    if logs_uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("the path may not contain whitespace"));
    }
    Ok(Otlp {
        host: host.to_string(),
        port,
        logs_uri,
        tls,
    })
}
