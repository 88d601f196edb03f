//! A small OCI distribution client: manifests by digest (bounded, verified) and the Bearer
//! token handshake public registries use; blobs go through vmagent's fetch engine (retries,
//! resume, streaming verification, progress) with the token this client obtained.
//!
//! Written by hand on the workspace's reqwest rather than with `oci-client`: that crate does fit
//! reqwest 0.13, but it brings a second sha2/digest stack, a second `syn` (3.x), `oci-spec`,
//! `chrono` and `regex` (about a hundred more crates to build) for the two requests used here,
//! and its blob pulls have neither resume nor the engine's retry rules, which the blobs need.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};

use super::ImageError;
use super::oci::ACCEPTED_MANIFESTS;
use super::reference::{BlobDigest, ImageRef};

/// Largest manifest or index read (the distribution registry refuses to store more than 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest token answer read.
const MAX_TOKEN_BYTES: usize = 64 << 10;
/// Tries of one manifest request on transport errors and HTTP 408/429/5xx (waits 1 s, 2 s, 4 s).
const ATTEMPTS: u32 = 4;
/// A request that sends nothing for this long is abandoned.
const STALL: Duration = Duration::from_secs(30);

pub struct Registry {
    http: reqwest::Client,
    /// `Authorization` values by `<registry>/<repository>`.
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    pub fn new() -> Result<Registry, ImageError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("podplane/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImageError::Client(e.to_string()))?;
        Ok(Registry {
            http,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The `Authorization` value obtained for this repository, if the registry asked for one.
    pub fn authorization(&self, r: &ImageRef) -> Option<String> {
        self.tokens.lock().ok()?.get(&r.name()).cloned()
    }

    /// The manifest (or index) `digest` of `r`'s repository: its bytes, checked against the
    /// digest, at most [`MAX_MANIFEST_BYTES`].
    pub async fn manifest(
        &self,
        r: &ImageRef,
        digest: &BlobDigest,
    ) -> Result<(Vec<u8>, Option<String>), ImageError> {
        self.get(r, digest.as_str(), Some(digest)).await
    }

    /// The digest a tag points at now (for charts pinned by version only).
    pub async fn resolve_tag(&self, r: &ImageRef, tag: &str) -> Result<BlobDigest, ImageError> {
        let (body, _) = self.get(r, tag, None).await?;
        Ok(BlobDigest::of(&body))
    }

    async fn get(
        &self,
        r: &ImageRef,
        reference: &str,
        digest: Option<&BlobDigest>,
    ) -> Result<(Vec<u8>, Option<String>), ImageError> {
        let url = format!("{}/manifests/{reference}", r.base_url());
        let mut delay = Duration::from_secs(1);
        let mut tries = 0;
        let mut authed = false;
        loop {
            tries += 1;
            let err = match self.get_manifest(r, &url).await {
                Ok(Got::Body(body, ctype)) => {
                    let actual = BlobDigest::of(&body);
                    if let Some(digest) = digest
                        && &actual != digest
                    {
                        return Err(ImageError::ManifestDigest {
                            url,
                            expected: digest.to_string(),
                            actual: actual.to_string(),
                        });
                    }
                    return Ok((body, ctype));
                }
                Ok(Got::Challenge(challenge)) if !authed => {
                    authed = true;
                    self.authenticate(r, &url, &challenge).await?;
                    tries -= 1;
                    continue;
                }
                Ok(Got::Challenge(_)) => {
                    return Err(ImageError::Auth {
                        url,
                        reason: "the registry refused the token it issued (HTTP 401)".into(),
                    });
                }
                Err(e @ ImageError::Status { status, .. })
                    if status == 408 || status == 429 || (500..600).contains(&status) =>
                {
                    e
                }
                Err(e @ ImageError::Transport { .. }) => e,
                Err(e) => return Err(e),
            };
            if tries >= ATTEMPTS {
                return Err(err);
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    async fn get_manifest(&self, r: &ImageRef, url: &str) -> Result<Got, ImageError> {
        let mut req = self
            .http
            .get(url)
            .header(ACCEPT, ACCEPTED_MANIFESTS.join(", "));
        if let Some(auth) = self.authorization(r) {
            req = req.header(AUTHORIZATION, auth);
        }
        let resp = send(req, url).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            return Ok(Got::Challenge(challenge));
        }
        if resp.status() != StatusCode::OK {
            return Err(ImageError::Status {
                url: url.into(),
                status: resp.status().as_u16(),
            });
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let body = read_capped(resp, url, MAX_MANIFEST_BYTES).await?;
        Ok(Got::Body(body, ctype))
    }

    /// The Bearer handshake: the challenge names a token service (`realm`), the `service` and
    /// the `scope`; an anonymous GET there answers `{"token": …}` (or `access_token`).
    async fn authenticate(&self, r: &ImageRef, url: &str, header: &str) -> Result<(), ImageError> {
        let auth_err = |reason: String| ImageError::Auth {
            url: url.into(),
            reason,
        };
        let params = parse_bearer(header).ok_or_else(|| {
            auth_err(format!(
                "the registry asks for credentials ({header:?}); only anonymous pulls and Bearer tokens are supported: mirror the image to a registry that allows anonymous pulls"
            ))
        })?;
        let realm = params
            .get("realm")
            .ok_or_else(|| auth_err("the Bearer challenge names no realm".into()))?;
        let mut realm_url = url::Url::parse(realm)
            .map_err(|e| auth_err(format!("token realm {realm:?} is not a URL: {e}")))?;
        // A token sent in the clear is only acceptable where the registry itself is plain HTTP.
        if realm_url.scheme() != "https"
            && !(realm_url.scheme() == "http" && url.starts_with("http://"))
        {
            return Err(auth_err(format!("token realm {realm:?} is not HTTPS")));
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
        {
            let mut q = realm_url.query_pairs_mut();
            if let Some(s) = params.get("service") {
                q.append_pair("service", s);
            }
            q.append_pair("scope", &scope);
        }
        let token_url = realm_url.to_string();
        let resp = send(self.http.get(&token_url), &token_url).await?;
        if resp.status() != StatusCode::OK {
            return Err(auth_err(format!(
                "the token service {token_url} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let body = read_capped(resp, &token_url, MAX_TOKEN_BYTES).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| auth_err(format!("the token service {token_url} answered: {e}")))?;
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| auth_err(format!("the token service {token_url} sent no token")))?;
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(r.name(), format!("Bearer {token}"));
        }
        Ok(())
    }
}

enum Got {
    Body(Vec<u8>, Option<String>),
    Challenge(String),
}

async fn send(req: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, ImageError> {
    match tokio::time::timeout(STALL, req.send()).await {
        Err(_) => Err(ImageError::Transport {
            url: url.into(),
            reason: format!("no response within {}s", STALL.as_secs()),
        }),
        Ok(Err(e)) => Err(ImageError::Transport {
            url: url.into(),
            reason: vmagent::fetch::describe(&e),
        }),
        Ok(Ok(r)) => Ok(r),
    }
}

async fn read_capped(
    mut resp: reqwest::Response,
    url: &str,
    max: usize,
) -> Result<Vec<u8>, ImageError> {
    let too_large = || ImageError::TooLarge {
        url: url.into(),
        max,
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(STALL, resp.chunk()).await {
            Err(_) => {
                return Err(ImageError::Transport {
                    url: url.into(),
                    reason: format!("no data for {}s", STALL.as_secs()),
                });
            }
            Ok(Err(e)) => {
                return Err(ImageError::Transport {
                    url: url.into(),
                    reason: vmagent::fetch::describe(&e),
                });
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(c))) => c,
        };
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

/// `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`
/// → its parameters; `None` for any other scheme.
fn parse_bearer(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ').unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = HashMap::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, rest) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        s = rest.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        let p = parse_bearer(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/caddy:pull""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/caddy:pull");
        assert!(parse_bearer(r#"Basic realm="x""#).is_none());
        assert!(parse_bearer(r#"Bearer realm="unterminated"#).is_none());
        assert_eq!(
            parse_bearer("Bearer realm=x, service=y").unwrap()["service"],
            "y"
        );
    }
}
