//! Image references from the manifests (`registry.k8s.io/pause:3.10`, `caddy`,
//! `127.0.0.1:5000/team/app:v1@sha256:…`), checked against the distribution grammar before any
//! part becomes a URL or a path: the manifests come from the deps server, which is not trusted
//! with the filesystem.

use std::fmt;

/// Longest reference accepted (the distribution spec caps repository names at 255 bytes).
const MAX_REF_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("image reference {0:?}: {1}")]
    Bad(String, &'static str),
    #[error("digest {0:?} is not sha256:<64 lower-case hex digits>")]
    Digest(String),
}

/// A sha256 digest in the only form used in a repository's `blobs/sha256/<hex>` layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobDigest(String);

impl BlobDigest {
    pub fn parse(s: &str) -> Result<BlobDigest, RefError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| RefError::Digest(s.into()))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(RefError::Digest(s.into()));
        }
        Ok(BlobDigest(s.to_string()))
    }

    /// The 64 hex digits: a safe file name.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As the fetch engine's digest type.
    pub fn engine(&self) -> vmagent::manifest::Digest {
        vmagent::manifest::Digest {
            algorithm: vmagent::manifest::Algorithm::Sha256,
            hex: self.hex().to_string(),
        }
    }

    pub fn of(bytes: &[u8]) -> BlobDigest {
        use sha2::Digest as _;
        BlobDigest(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed reference: registry host (normalised: `docker.io` for Docker Hub), repository path
/// (normalised: `library/<name>` for Docker Hub's official images), optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<BlobDigest>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, RefError> {
        let bad = |why| RefError::Bad(s.to_string(), why);
        if s.is_empty() || s.len() > MAX_REF_LEN {
            return Err(bad("empty or longer than 512 bytes"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(BlobDigest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a registry port comes before).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(
                "its tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
            ));
        }
        let (first, remainder) = match name.split_once('/') {
            Some((f, r)) => (f, Some(r)),
            None => (name, None),
        };
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        let (registry, repository) = match (is_host, remainder) {
            (true, Some(r)) => (first.to_string(), r.to_string()),
            (_, Some(_)) => ("docker.io".to_string(), name.to_string()),
            (_, None) => ("docker.io".to_string(), format!("library/{name}")),
        };
        if !valid_host(&registry) {
            return Err(bad(
                "its registry must be a host name or IPv4 address with an optional :port",
            ));
        }
        if repository.len() > 255 || !repository.split('/').all(valid_path_component) {
            return Err(bad(
                "its repository path components must be lower-case [a-z0-9] separated by . _ __ or -",
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `docker.io` is served by `registry-1.docker.io`.
    pub fn endpoint_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// Plain HTTP only for registries on this machine's loopback (as Docker treats
    /// `127.0.0.0/8`); every other registry over HTTPS.
    pub fn base_url(&self) -> String {
        let host = self.endpoint_host();
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = name == "localhost"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        let scheme = if loopback { "http" } else { "https" };
        format!("{scheme}://{host}/v2/{}", self.repository)
    }

    /// The mirror repository: `mirror/<registry>/<repository>`, as the cluster's registry
    /// serves it (`caddy` → `mirror/docker.io/library/caddy`).
    pub fn mirror_repository(&self) -> String {
        format!("mirror/{}/{}", self.registry, self.repository)
    }

    /// `<registry>/<repository>`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// `host[:port]`: DNS labels of `[A-Za-z0-9-]` (not starting or ending with `-`), or an IPv4
/// address; the port all digits. (IPv6 literals are not accepted: `:` in a path would be
/// ambiguous, and no published image uses one.)
fn valid_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: never empty, never `.` or `..`, no `/`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-"+, between alphanumerics.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(s: &str) -> String {
        ImageRef::parse(s).unwrap().mirror_repository()
    }

    #[test]
    fn mirror_naming() {
        assert_eq!(mirror("caddy:latest"), "mirror/docker.io/library/caddy");
        assert_eq!(
            mirror("coredns/coredns:1.11.3"),
            "mirror/docker.io/coredns/coredns"
        );
        assert_eq!(
            mirror("docker.io/traefik:v3.4.3"),
            "mirror/docker.io/traefik"
        );
        assert_eq!(
            mirror("localhost:5000/example/app:tag"),
            "mirror/localhost:5000/example/app"
        );
        assert_eq!(
            mirror("registry.k8s.io/pause:3.10"),
            "mirror/registry.k8s.io/pause"
        );
    }

    #[test]
    fn parts() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/a/b:v1@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_ref().unwrap().as_str(), d);
        assert_eq!(r.base_url(), "http://127.0.0.1:5000/v2/a/b");
        let hub = ImageRef::parse("caddy").unwrap();
        assert_eq!(
            hub.base_url(),
            "https://registry-1.docker.io/v2/library/caddy"
        );
        assert_eq!(hub.tag, None);
    }

    #[test]
    fn hostile_references_are_refused() {
        for bad in [
            "",
            "example.com/../../etc:x",
            "example.com/a/./b",
            "example.com/a//b",
            "example.com/A/b",
            "example.com/a/b:../x",
            "example.com/a/b:.hidden",
            "exa mple.com/a",
            "example.com:99999x/a",
            "-bad.com/a",
            "example.com/a\0b",
            "example.com/a%2fb",
            "example.com/a/b@sha256:abc",
            "example.com/a/b@sha512:00",
            "..:1/a",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(BlobDigest::parse(&upper).is_err());
        assert!(BlobDigest::parse(&format!("sha256:{}/..", "a".repeat(62))).is_err());
    }

    #[test]
    fn separators() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1.b2-c3"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a..b", "a___b", "-a", "a-", "a._b", "_a"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
    }
}
