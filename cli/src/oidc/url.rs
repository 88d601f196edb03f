//! The OIDC hostname may be given as a URL (`https://auth.example.com:8443/...`). This
//! module splits such a URL into scheme and host; the config types use it to build the
//! issuer URL and the served host, and validation uses it to reject a malformed one.
//!
//! The split is by hand, not with the `url` crate, on purpose: the host text is published as
//! the issuer and compared with `iss` byte for byte, and `url` (the WHATWG URL standard)
//! rewrites it: it lowercases and IDNA-encodes the host, decodes percent escapes, drops a
//! default port (`:443`) and repairs `https:///host`. The rules here are those of Go's
//! `net/url`, which upstream used, so the host stays as written.

/// Why a hostname given as a URL is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlPartsError {
    #[error("contains a control character")]
    ControlCharacter,
    #[error("has no valid scheme ([A-Za-z][A-Za-z0-9+.-]*) before \"://\"")]
    Scheme,
    #[error("the scheme is not followed by \"//\"")]
    NoAuthority,
    #[error("has invalid characters in its user info")]
    UserInfo,
    #[error("has an unclosed \"[\" in its host")]
    UnclosedBracket,
    #[error("has an invalid port")]
    Port,
    #[error("has a percent escape that is not allowed in a host")]
    PercentEscape,
    #[error("has a character not allowed in a host")]
    HostCharacter,
    #[error("has no host")]
    EmptyHost,
}

/// A hostname given as a URL (it contains `://`): `Some(Ok((scheme, host)))` with the scheme
/// lowercased and the host keeping its port but not its user info, `Some(Err(_))` when it
/// does not parse as a URL with a host (the rules of Go's `net/url`, which upstream used:
/// a scheme of `[A-Za-z][A-Za-z0-9+.-]*` right before `://`, no control characters, a valid
/// optional port, host characters allowed by RFC 3986). `None` for a bare hostname.
pub(crate) fn url_parts(s: &str) -> Option<Result<(String, String), UrlPartsError>> {
    if !s.contains("://") {
        return None;
    }
    Some(parse_url(s))
}

fn parse_url(s: &str) -> Result<(String, String), UrlPartsError> {
    use UrlPartsError as E;
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(E::ControlCharacter);
    }
    let colon = s.find(':').ok_or(E::Scheme)?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(E::Scheme);
    }
    let rest = s[colon + 1..].strip_prefix("//").ok_or(E::NoAuthority)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(u) = userinfo
        && !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c) || !c.is_ascii())
    {
        return Err(E::UserInfo);
    }
    let host = parse_host(host)?;
    if host.is_empty() {
        return Err(E::EmptyHost);
    }
    Ok((scheme.to_ascii_lowercase(), host))
}

fn valid_optional_port(p: &str) -> bool {
    match p.strip_prefix(':') {
        None => p.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_host(host: &str) -> Result<String, UrlPartsError> {
    use UrlPartsError as E;
    if host.starts_with('[') {
        let end = host.rfind(']').ok_or(E::UnclosedBracket)?;
        if !valid_optional_port(&host[end + 1..]) {
            return Err(E::Port);
        }
        return Ok(host.to_string());
    }
    if let Some(i) = host.rfind(':')
        && !valid_optional_port(&host[i..])
    {
        return Err(E::Port);
    }
    // Percent escapes are accepted only for non-ASCII bytes (and `%25`), as net/url does.
    let b = host.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = host.get(i + 1..i + 3).ok_or(E::PercentEscape)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| E::PercentEscape)?;
            if v < 0x80 && v != b'%' {
                return Err(E::PercentEscape);
            }
            out.push(v);
            i += 3;
            continue;
        }
        let ok = c >= 0x80 || c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c);
        if !ok {
            return Err(E::HostCharacter);
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Option<Result<(String, String), UrlPartsError>> {
        url_parts(s)
    }

    #[test]
    fn hostnames_and_urls() {
        assert_eq!(parts("auth.example.com"), None);
        let ok = |scheme: &str, host: &str| Some(Ok((scheme.to_string(), host.to_string())));
        assert_eq!(
            parts("https://auth.example.com"),
            ok("https", "auth.example.com")
        );
        assert_eq!(
            parts("HTTPS://auth.example.com/x?y#z"),
            ok("https", "auth.example.com")
        );
        assert_eq!(
            parts("https://u:p@auth.example.com:8443"),
            ok("https", "auth.example.com:8443")
        );
        assert_eq!(parts("https://[::1]:443/"), ok("https", "[::1]:443"));
        use UrlPartsError as E;
        for (bad, why) in [
            ("https://", E::EmptyHost),
            ("https:///path", E::EmptyHost),
            ("://auth.example.com", E::Scheme),
            ("1https://auth.example.com", E::Scheme),
            ("a b://auth.example.com", E::Scheme),
            ("https://auth example.com", E::HostCharacter),
            ("https://auth.example.com:80a", E::Port),
            ("https://auth.example.com\n", E::ControlCharacter),
            ("https://a%41.com", E::PercentEscape),
            ("https://[::1", E::UnclosedBracket),
            ("mailto:x://y", E::NoAuthority),
            ("https://a b@auth.example.com", E::UserInfo),
        ] {
            assert_eq!(parts(bad), Some(Err(why)), "{bad}");
        }
    }
}
