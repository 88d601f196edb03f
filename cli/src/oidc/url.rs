//! The OIDC hostname may be given as a URL (`https://auth.example.com:8443/...`). This
//! module splits such a URL into scheme and host; the config types use it to build the
//! issuer URL and the served host, and validation uses it to reject a malformed one.

/// A hostname given as a URL (it contains `://`): `Some(Ok((scheme, host)))` with the scheme
/// lowercased and the host keeping its port but not its user info, `Some(Err(()))` when it
/// does not parse as a URL with a host (the rules of Go's `net/url`, which upstream used:
/// a scheme of `[A-Za-z][A-Za-z0-9+.-]*` right before `://`, no control characters, a valid
/// optional port, host characters allowed by RFC 3986). `None` for a bare hostname.
pub(crate) fn url_parts(s: &str) -> Option<Result<(String, String), ()>> {
    if !s.contains("://") {
        return None;
    }
    Some(parse_url(s))
}

fn parse_url(s: &str) -> Result<(String, String), ()> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(());
    }
    let colon = s.find(':').ok_or(())?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(());
    }
    let rest = s[colon + 1..].strip_prefix("//").ok_or(())?;
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
        return Err(());
    }
    let host = parse_host(host)?;
    if host.is_empty() {
        return Err(());
    }
    Ok((scheme.to_ascii_lowercase(), host))
}

fn valid_optional_port(p: &str) -> bool {
    match p.strip_prefix(':') {
        None => p.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_host(host: &str) -> Result<String, ()> {
    if host.starts_with('[') {
        let end = host.rfind(']').ok_or(())?;
        if !valid_optional_port(&host[end + 1..]) {
            return Err(());
        }
        return Ok(host.to_string());
    }
    if let Some(i) = host.rfind(':')
        && !valid_optional_port(&host[i..])
    {
        return Err(());
    }
    // Percent escapes are accepted only for non-ASCII bytes (and `%25`), as net/url does.
    let b = host.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = host.get(i + 1..i + 3).ok_or(())?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| ())?;
            if v < 0x80 && v != b'%' {
                return Err(());
            }
            out.push(v);
            i += 3;
            continue;
        }
        let ok = c >= 0x80 || c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"-_.~".contains(&c);
        if !ok {
            return Err(());
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Option<Result<(String, String), ()>> {
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
        for bad in [
            "https://",
            "https:///path",
            "://auth.example.com",
            "1https://auth.example.com",
            "a b://auth.example.com",
            "https://auth example.com",
            "https://auth.example.com:80a",
            "https://auth.example.com\n",
            "https://a%41.com",
            "https://[::1",
            "mailto:x://y",
        ] {
            assert_eq!(parts(bad), Some(Err(())), "{bad}");
        }
    }
}
