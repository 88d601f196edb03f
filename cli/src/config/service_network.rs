//! Kubernetes service networks (`cluster.kubernetes.service_cidr`) and the addresses
//! reserved in them: the API service IP (network + 1) and the CoreDNS IP (IPv4: the last
//! usable address, network + 2^(32−bits) − 2; IPv6: network + 0xffff).

use std::fmt;
use std::net::{AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use thiserror::Error;

/// Service networks used when `service_cidr` is empty.
pub const DEFAULT_SERVICE_CIDRS: &[&str] = &["198.18.0.0/15", "fdc6::/108"];

/// Offset of the CoreDNS address inside an IPv6 service network.
const IPV6_DNS_OFFSET: u128 = 0xffff;

/// Why a CIDR does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CidrError {
    #[error("missing \"/\" and prefix length")]
    MissingSlash,
    #[error("invalid IP address {addr:?}")]
    Address {
        addr: String,
        #[source]
        source: AddrParseError,
    },
    #[error("invalid prefix length {bits:?}")]
    PrefixLength { bits: String },
}

/// Parses `addr/bits` strictly into an [`IpNet`] (host bits kept, see [`is_canonical`]): no
/// zone, a decimal prefix length without leading zeros. The address goes through `std` and
/// the prefix through `ipnet`; the split is by hand only to say which half is wrong
/// (`ipnet`'s own parser reports one error for both).
pub fn parse_cidr(s: &str) -> Result<IpNet, CidrError> {
    let Some((addr, bits)) = s.rsplit_once('/') else {
        return Err(CidrError::MissingSlash);
    };
    let ip: IpAddr = addr.parse().map_err(|source| CidrError::Address {
        addr: addr.to_string(),
        source,
    })?;
    let bad_bits = || CidrError::PrefixLength {
        bits: bits.to_string(),
    };
    let valid_digits = !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && (bits == "0" || !bits.starts_with('0'));
    if !valid_digits {
        return Err(bad_bits());
    }
    let n: u8 = bits.parse().map_err(|_| bad_bits())?;
    IpNet::new(ip, n).map_err(|_| bad_bits())
}

/// Whether `net` has no host bits set.
pub fn is_canonical(net: &IpNet) -> bool {
    net.trunc() == *net
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Builds an address of `like`'s family; `None` when `v` does not fit.
fn checked_from_u128(like: IpAddr, v: u128) -> Option<IpAddr> {
    match like {
        IpAddr::V4(_) => u32::try_from(v).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        IpAddr::V6(_) => Some(IpAddr::V6(Ipv6Addr::from(v))),
    }
}

/// Address family, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Why a `service_cidr` list is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ServiceCidrError {
    #[error("service_cidr supports at most two networks")]
    TooMany,
    #[error("service_cidr[{index}] {raw:?} is invalid: {source}")]
    Invalid {
        index: usize,
        raw: String,
        #[source]
        source: CidrError,
    },
    #[error("service_cidr[{index}] {raw:?} is not canonical (use \"{canonical}\")")]
    NotCanonical {
        index: usize,
        raw: String,
        canonical: IpNet,
    },
    #[error("service_cidr contains duplicate {0} networks")]
    DuplicateFamily(Family),
    #[error("service_cidr must be IPv4-primary; IPv6-primary configurations are unsupported")]
    Ipv6Primary,
    #[error(
        "service_cidr {raw:?} has insufficient capacity for the Kubernetes API and DNS services"
    )]
    InsufficientCapacity { raw: String },
}

/// Validated service networks with their reserved addresses, index-aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetwork {
    pub cidrs: Vec<IpNet>,
    /// `kubernetes.default` service IP per network.
    pub api: Vec<IpAddr>,
    /// CoreDNS service IP per network.
    pub dns: Vec<IpAddr>,
}

/// API service IP of a canonical prefix: network + 1.
pub fn api_service_ip(prefix: IpNet) -> Option<IpAddr> {
    let net = prefix.network();
    to_u128(net)
        .checked_add(1)
        .and_then(|v| checked_from_u128(net, v))
        .filter(|a| prefix.contains(a))
}

/// CoreDNS service IP of a canonical prefix (see the module docs); `None` when the prefix
/// is too small to hold it above the API address.
pub fn dns_service_ip(prefix: IpNet) -> Option<IpAddr> {
    let net = prefix.network();
    let offset = match net {
        IpAddr::V4(_) => {
            let host_bits = 32 - u32::from(prefix.prefix_len());
            if host_bits < 2 {
                return None;
            }
            (1u128 << host_bits) - 2
        }
        IpAddr::V6(_) => IPV6_DNS_OFFSET,
    };
    let dns = checked_from_u128(net, to_u128(net).checked_add(offset)?)?;
    let api = api_service_ip(prefix)?;
    (prefix.contains(&dns) && to_u128(dns) > to_u128(api)).then_some(dns)
}

/// Validates `cidrs` (empty means [`DEFAULT_SERVICE_CIDRS`]) and computes the reserved
/// service addresses. Rules, first failure wins: at most two entries; each parses and is
/// canonical; at most one per family; the first is IPv4; each has room for both addresses.
pub fn service_network<S: AsRef<str>>(cidrs: &[S]) -> Result<ServiceNetwork, ServiceCidrError> {
    let list: Vec<&str> = if cidrs.is_empty() {
        DEFAULT_SERVICE_CIDRS.to_vec()
    } else {
        cidrs.iter().map(AsRef::as_ref).collect()
    };
    if list.len() > 2 {
        return Err(ServiceCidrError::TooMany);
    }
    let mut out = ServiceNetwork {
        cidrs: Vec::new(),
        api: Vec::new(),
        dns: Vec::new(),
    };
    let (mut seen4, mut seen6) = (false, false);
    for (index, raw) in list.into_iter().enumerate() {
        let prefix = parse_cidr(raw).map_err(|source| ServiceCidrError::Invalid {
            index,
            raw: raw.to_string(),
            source,
        })?;
        if !is_canonical(&prefix) {
            return Err(ServiceCidrError::NotCanonical {
                index,
                raw: raw.to_string(),
                canonical: prefix.trunc(),
            });
        }
        let is4 = matches!(prefix, IpNet::V4(_));
        if (is4 && seen4) || (!is4 && seen6) {
            let family = if is4 { Family::V4 } else { Family::V6 };
            return Err(ServiceCidrError::DuplicateFamily(family));
        }
        if index == 0 && !is4 {
            return Err(ServiceCidrError::Ipv6Primary);
        }
        seen4 |= is4;
        seen6 |= !is4;
        let insufficient = || ServiceCidrError::InsufficientCapacity {
            raw: raw.to_string(),
        };
        let dns = dns_service_ip(prefix).ok_or_else(insufficient)?;
        let api = api_service_ip(prefix).ok_or_else(insufficient)?;
        out.cidrs.push(prefix);
        out.api.push(api);
        out.dns.push(dns);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[IpAddr]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn golden_default_networks() {
        let net = service_network::<&str>(&[]).unwrap();
        assert_eq!(ips(&net.api), ["198.18.0.1", "fdc6::1"]);
        assert_eq!(ips(&net.dns), ["198.19.255.254", "fdc6::ffff"]);
        assert_eq!(net.cidrs[0].to_string(), "198.18.0.0/15");
        assert_eq!(net.cidrs[1].to_string(), "fdc6::/108");
    }

    #[test]
    fn golden_custom_networks() {
        let net = service_network(&["10.96.0.0/12", "fd00:1234::/108"]).unwrap();
        assert_eq!(ips(&net.api), ["10.96.0.1", "fd00:1234::1"]);
        assert_eq!(ips(&net.dns), ["10.111.255.254", "fd00:1234::ffff"]);
    }

    #[test]
    fn smallest_networks_that_fit() {
        let net = service_network(&["10.0.0.0/30", "fd00::/112"]).unwrap();
        assert_eq!(ips(&net.api), ["10.0.0.1", "fd00::1"]);
        assert_eq!(ips(&net.dns), ["10.0.0.2", "fd00::ffff"]);
        let whole = service_network(&["0.0.0.0/0"]).unwrap();
        assert_eq!(ips(&whole.dns), ["255.255.255.254"]);
    }

    fn err(cidrs: &[&str]) -> String {
        service_network(cidrs).unwrap_err().to_string()
    }

    #[test]
    fn rejections() {
        assert_eq!(
            err(&["10.0.0.0/16", "fd00::/108", "10.1.0.0/16"]),
            "service_cidr supports at most two networks"
        );
        assert_eq!(
            err(&["10.96.0.1/12"]),
            "service_cidr[0] \"10.96.0.1/12\" is not canonical (use \"10.96.0.0/12\")"
        );
        assert_eq!(
            err(&["x"]),
            "service_cidr[0] \"x\" is invalid: missing \"/\" and prefix length"
        );
        assert_eq!(
            err(&["10.0.0.0/16", "10.0.0.0/33"]),
            "service_cidr[1] \"10.0.0.0/33\" is invalid: invalid prefix length \"33\""
        );
        assert_eq!(
            err(&["10.0.0.0/016"]),
            "service_cidr[0] \"10.0.0.0/016\" is invalid: invalid prefix length \"016\""
        );
        assert_eq!(
            err(&["10.0.0/16"]),
            "service_cidr[0] \"10.0.0/16\" is invalid: invalid IP address \"10.0.0\""
        );
        assert_eq!(
            err(&["10.0.0.0/16", "10.1.0.0/16"]),
            "service_cidr contains duplicate IPv4 networks"
        );
        assert_eq!(
            err(&["fd00::/108"]),
            "service_cidr must be IPv4-primary; IPv6-primary configurations are unsupported"
        );
        // Two IPv6 networks: the IPv4-primary rule fires on the first entry.
        assert_eq!(
            err(&["fd00::/108", "fd01::/108"]),
            "service_cidr must be IPv4-primary; IPv6-primary configurations are unsupported"
        );
        assert_eq!(
            err(&["10.0.0.0/31"]),
            "service_cidr \"10.0.0.0/31\" has insufficient capacity for the Kubernetes API and DNS services"
        );
        assert_eq!(
            err(&["10.0.0.0/32"]),
            "service_cidr \"10.0.0.0/32\" has insufficient capacity for the Kubernetes API and DNS services"
        );
        assert_eq!(
            err(&["10.0.0.0/16", "fd00::/113"]),
            "service_cidr \"fd00::/113\" has insufficient capacity for the Kubernetes API and DNS services"
        );
    }

    /// The parse failure is kept typed as the error's source, not flattened into the text.
    #[test]
    fn invalid_cidr_keeps_its_cause() {
        let e = service_network(&["10.0.0/16"]).unwrap_err();
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "invalid IP address \"10.0.0\"");
        assert!(matches!(
            parse_cidr("10.0.0/16"),
            Err(CidrError::Address { .. })
        ));
        assert_eq!(
            parse_cidr("10.0.0.0/16").unwrap().to_string(),
            "10.0.0.0/16"
        );
        assert!(!is_canonical(&parse_cidr("10.0.0.1/16").unwrap()));
        assert_eq!(
            parse_cidr("10.0.0.0/01"),
            Err(CidrError::PrefixLength { bits: "01".into() })
        );
    }
}
