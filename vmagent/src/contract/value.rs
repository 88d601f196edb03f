//! The rule each settings value must pass ([`Check::validate`]), one function per rule. recv
//! applies it to a delivered mutable.env and the typed settings parse applies it to every layer,
//! so a key is never checked by two different rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::Check;
use super::url::UrlRuleError;

/// A key of one of the node's env files: its name, the file it lives in, its default and its
/// rule.
pub trait EnvKey: Copy {
    /// The file the key belongs to (`user-data.env`, `detected.env`, `mutable.env`).
    const FILE: &'static str;
    fn name(self) -> &'static str;
    /// The value used when the key is unset or empty ("" when it has none).
    fn default(self) -> &'static str;
    fn check(self) -> Check;
}

/// Why a value fails its [`Check`]. Each message says what the value must look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("it must be exactly true or false")]
    Bool,
    #[error("it must be a port from 1 to 65535")]
    Port,
    #[error("it must be a whole number from 0 to {max}")]
    Number { max: u32 },
    #[error("it {0} (a DNS name: lowercase letters, digits, - and dots)")]
    Hostname(#[source] DnsNameError),
    #[error("the issuer URL {0}")]
    Issuer(#[source] UrlRuleError),
    #[error("{item:?} is not a URL: {source}")]
    Url {
        item: String,
        #[source]
        source: url::ParseError,
    },
    #[error("{item:?}: the scheme must be http or https")]
    Scheme { item: String },
    #[error("{item:?}: {why}")]
    UrlShape { item: String, why: &'static str },
    #[error("it must be a host name or an http(s):// URL")]
    S3Endpoint,
    #[error("{item:?} is not an IP address")]
    Ip { item: String },
    #[error("it must be one IPv4 address")]
    Ipv4,
    #[error("it must be one IPv6 address")]
    Ipv6,
    #[error("{item:?} is not ADDRESS/PREFIX: {source}")]
    Cidr {
        item: String,
        #[source]
        source: ipnet::AddrParseError,
    },
    #[error("{item:?} is not a service name (lowercase name,name,...)")]
    ServiceName { item: String },
    #[error("it must be base64 (a base64-encoded PEM)")]
    Base64,
    #[error(transparent)]
    Name(#[from] super::UnknownName),
    #[error(transparent)]
    Otlp(#[from] super::otlp::OtlpError),
}

/// Why a value is not a DNS name. Each message completes "NAME ..." with what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsNameError {
    #[error("is required")]
    Required,
    #[error("must be at most 253 characters")]
    TooLong,
    #[error("must be lowercase and must not end with a dot")]
    NotLowercaseOrTrailingDot,
    #[error("must be a DNS hostname, not an IP address")]
    IpAddress,
    #[error("must contain only DNS labels")]
    BadLabel,
}

/// One DNS label: lowercase ASCII letters, digits and `-`, not `-` at either end, at most 63
/// bytes.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The DNS-name rule of both programs (the CLI's hostnames and zones, the node's hostname keys,
/// the host of a URL): non-empty, at most 253 bytes, lowercase, no trailing dot, not an IP
/// literal, and dot-separated [`is_dns_label`] labels. A single label passes. Lowercase only,
/// because the names are compared as written (certificate SANs, the tokens' `iss`, directory
/// names under `/etc/containerd/certs.d`).
pub fn check_dns_name(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Err(DnsNameError::Required);
    }
    if name.len() > 253 {
        return Err(DnsNameError::TooLong);
    }
    if name != name.to_lowercase() || name.ends_with('.') {
        return Err(DnsNameError::NotLowercaseOrTrailingDot);
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(DnsNameError::IpAddress);
    }
    if !name.split('.').all(is_dns_label) {
        return Err(DnsNameError::BadLabel);
    }
    Ok(())
}

/// A checked DNS name ([`check_dns_name`]), kept as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Hostname {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Hostname, CheckError> {
        check_dns_name(s).map_err(CheckError::Hostname)?;
        Ok(Hostname(s.to_string()))
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `http(s)://host[:port][/path]` URL, parsed by the `url` crate. The host must be a DNS
/// name ([`check_dns_name`]) or an IP address (the crate also accepts `_` and other characters in
/// names), and user info and port 0 are refused.
pub fn http_url(item: &str) -> Result<url::Url, CheckError> {
    let u = url::Url::parse(item).map_err(|source| CheckError::Url {
        item: item.into(),
        source,
    })?;
    let shape = |why| CheckError::UrlShape {
        item: item.into(),
        why,
    };
    if !matches!(u.scheme(), "http" | "https") {
        return Err(CheckError::Scheme { item: item.into() });
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(shape("user info (NAME@) is not allowed"));
    }
    match u.host() {
        Some(url::Host::Domain(d)) if check_dns_name(d).is_err() => {
            return Err(shape("the host is not a valid name or address"));
        }
        None => return Err(shape("the URL has no host")),
        _ => {}
    }
    if u.port() == Some(0) {
        return Err(shape("the port must be 1-65535"));
    }
    Ok(u)
}

/// Comma-separated `ADDRESS/PREFIX` networks.
pub fn cidrs(v: &str) -> Result<Vec<ipnet::IpNet>, CheckError> {
    v.split(',')
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .map_err(|source| CheckError::Cidr {
                    item: item.into(),
                    source,
                })
        })
        .collect()
}

/// Comma-separated IP addresses.
pub fn ip_list(v: &str) -> Result<Vec<IpAddr>, CheckError> {
    v.split(',')
        .map(|item| {
            item.parse::<IpAddr>()
                .map_err(|_| CheckError::Ip { item: item.into() })
        })
        .collect()
}

/// Comma-separated systemd unit names: lowercase letters and digits, then also `- _ .`.
pub fn service_names(v: &str) -> Result<Vec<&str>, CheckError> {
    v.split(',')
        .map(|s| {
            let ok = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if ok {
                Ok(s)
            } else {
                Err(CheckError::ServiceName { item: s.into() })
            }
        })
        .collect()
}

impl Check {
    /// Check `v` against the rule. Empty values always pass: they mean "default" or "off".
    pub fn validate(self, v: &str) -> Result<(), CheckError> {
        if v.is_empty() {
            return Ok(());
        }
        match self {
            Check::Text => {}
            Check::Bool if v != "true" && v != "false" => return Err(CheckError::Bool),
            Check::Bool => {}
            Check::Port
                if !matches!(v.parse::<u16>(), Ok(n) if n > 0)
                    || !v.bytes().all(|b| b.is_ascii_digit()) =>
            {
                return Err(CheckError::Port);
            }
            Check::Port => {}
            Check::Number(max) => match v.parse::<u32>() {
                Ok(n) if n <= max && v.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => return Err(CheckError::Number { max }),
            },
            Check::Hostname => drop(v.parse::<Hostname>()?),
            // The same rule the CLI applies to cluster.oidc.issuer_url (one function for both).
            Check::OidcIssuer => drop(super::oidc_issuer_url(v).map_err(CheckError::Issuer)?),
            Check::ServiceAccountIssuer => {
                drop(super::service_account_issuer_url(v).map_err(CheckError::Issuer)?)
            }
            Check::HttpUrl => drop(http_url(v)?),
            // An S3 endpoint may also be a bare HOST[:PORT], the form S3 clients take when the
            // scheme is configured separately.
            Check::S3Endpoint => {
                if v.contains("://") {
                    http_url(v)?;
                } else {
                    let host = v.split(':').next().unwrap_or("");
                    if host.parse::<IpAddr>().is_err() && check_dns_name(host).is_err() {
                        return Err(CheckError::S3Endpoint);
                    }
                }
            }
            Check::UrlList => {
                for s in v.split(',') {
                    http_url(s)?;
                }
            }
            Check::IpList => drop(ip_list(v)?),
            Check::Cidrs => drop(cidrs(v)?),
            Check::ServiceNames => drop(service_names(v)?),
            Check::Base64
                if !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) =>
            {
                return Err(CheckError::Base64);
            }
            Check::Base64 => {}
            Check::Provider => drop(v.parse::<super::Provider>()?),
            Check::Kind => drop(v.parse::<super::Kind>()?),
            Check::Ipv4 => drop(v.parse::<Ipv4Addr>().map_err(|_| CheckError::Ipv4)?),
            Check::Ipv6 => drop(v.parse::<Ipv6Addr>().map_err(|_| CheckError::Ipv6)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_accept_and_refuse() {
        assert!(Check::Port.validate("6443").is_ok());
        assert_eq!(Check::Port.validate("0"), Err(CheckError::Port));
        assert_eq!(Check::Port.validate("+1"), Err(CheckError::Port));
        assert!(Check::HttpUrl.validate("http://[fd00::1]:4318/v1").is_ok());
        assert!(Check::HttpUrl.validate("https://u@h").is_err());
        assert!(Check::HttpUrl.validate("https://h:0").is_err());
        assert!(Check::HttpUrl.validate("ftp://h").is_err());
        assert!(Check::HttpUrl.validate("https://a_b").is_err());
        assert!(Check::Cidrs.validate("100.64.0.0/10,fd64::/48").is_ok());
        assert!(Check::Cidrs.validate("10.0.0.0/33").is_err());
        assert!(Check::Cidrs.validate("10.0.0.0").is_err());
        assert!(Check::S3Endpoint.validate("minio:9000").is_ok());
        assert!(Check::Provider.validate("azure").is_err());
        assert!(Check::Ipv4.validate("::1").is_err());
        assert!(Check::ServiceNames.validate("a,,b").is_err());
        assert!(Check::S3Endpoint.validate("10.0.0.9:9000").is_ok());
        assert!(Check::S3Endpoint.validate("bad_host:9000").is_err());
        assert_eq!(
            "Bad_Host".parse::<Hostname>(),
            Err(CheckError::Hostname(
                DnsNameError::NotLowercaseOrTrailingDot
            ))
        );
        assert_eq!(
            "10.0.0.1".parse::<Hostname>(),
            Err(CheckError::Hostname(DnsNameError::IpAddress))
        );
        assert_eq!(check_dns_name("a..b"), Err(DnsNameError::BadLabel));
        assert_eq!(check_dns_name(&"a".repeat(64)), Err(DnsNameError::BadLabel));
        assert_eq!(check_dns_name("node-1"), Ok(()));
        assert_eq!(
            "registry.example.com".parse::<Hostname>().unwrap().as_str(),
            "registry.example.com"
        );
    }
}
