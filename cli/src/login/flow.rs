//! The OpenID Connect client: discovery, authorization code with PKCE (S256) and state, the
//! loopback callback or the headless redirect walk, the code and refresh-token grants, and the
//! ID token's claims.
//!
//! Hand-written on the CLI's reqwest (about 300 lines) rather than the `openidconnect` crate:
//! that crate brings its own HTTP and JOSE stacks, while podplane needs only two endpoints and
//! never verifies the token's signature itself (the API server does).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Scopes asked for: identity, email, and a refresh token.
pub const SCOPES: &str = "openid profile email offline_access";

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("issuer CA {what}: {reason}")]
    Ca { what: String, reason: String },
    #[error("{what} {url}: {reason}")]
    Request {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("{what} {url}: HTTP {status}: {body}")]
    Status {
        what: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("discovery {url}: {reason}; check oidc.issuer_url")]
    Discovery { url: String, reason: String },
    #[error(
        "token endpoint {url} returned no id_token (fields: {fields}); does the client ask for the openid scope?"
    )]
    NoIdToken { url: String, fields: String },
    #[error("authorize error: {error}: {description}")]
    Authorize { error: String, description: String },
    #[error("authorize state mismatch: the callback did not come from this login; try again")]
    StateMismatch,
    #[error("authorize callback missing code")]
    MissingCode,
    #[error("listen on callback port {port}: {source}; pick another with --callback-port")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("callback: {0}")]
    Callback(String),
    #[error("headless login: {0}")]
    Headless(String),
    #[error("id_token: {0}")]
    IdToken(String),
    #[error("no login callback within {0} s; run `podplane login` again")]
    Timeout(u64),
}

/// What discovery says about the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

/// An HTTP client trusting the system roots plus `ca_pem` (the issuer's private CA) if given.
/// `follow` = follow redirects (off for the headless walk, which reads each `Location`).
pub fn http_client(ca_pem: Option<&[u8]>, follow: bool) -> Result<reqwest::Client, FlowError> {
    // rustls is built without a default provider; choose ring once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("podplane/", env!("CARGO_PKG_VERSION")));
    if !follow {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| FlowError::Ca {
            what: "PEM".into(),
            reason: e.to_string(),
        })?;
        if certs.is_empty() {
            return Err(FlowError::Ca {
                what: "PEM".into(),
                reason: "contained no usable certificates".into(),
            });
        }
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| FlowError::Client(e.to_string()))
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn get_json(
    client: &reqwest::Client,
    what: &'static str,
    url: &str,
) -> Result<serde_json::Value, FlowError> {
    let req = |e: reqwest::Error| FlowError::Request {
        what,
        url: url.to_string(),
        reason: describe(&e),
    };
    let resp = client.get(url).send().await.map_err(req)?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(req)?;
    if status != 200 {
        return Err(FlowError::Status {
            what,
            url: url.into(),
            status,
            body: excerpt(&body),
        });
    }
    serde_json::from_str(&body).map_err(|e| FlowError::Request {
        what,
        url: url.into(),
        reason: format!("not JSON: {e}"),
    })
}

/// The start of a response body, on one line (errors are one line on stderr).
fn excerpt(body: &str) -> String {
    let t = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.as_str();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// GET `<issuer>/.well-known/openid-configuration`; both endpoints must be there.
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Endpoints, FlowError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(client, "discovery", &url).await?;
    let field = |k: &str| match doc.get(k).and_then(|v| v.as_str()) {
        Some(s) if s.starts_with("https://") || s.starts_with("http://") => Ok(s.to_string()),
        Some(s) => Err(FlowError::Discovery {
            url: url.clone(),
            reason: format!("{k} {s:?} is not an http(s) URL"),
        }),
        None => Err(FlowError::Discovery {
            url: url.clone(),
            reason: format!("no {k}"),
        }),
    };
    Ok(Endpoints {
        authorization: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
    })
}

/// One login attempt's secrets: the PKCE verifier (and its S256 challenge) and the state.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
    pub state: String,
}

impl Pkce {
    pub fn new() -> Result<Pkce, FlowError> {
        let mut v = [0u8; 32];
        let mut s = [0u8; 16];
        getrandom::getrandom(&mut v)
            .and_then(|()| getrandom::getrandom(&mut s))
            .map_err(|e| FlowError::Client(format!("no random numbers: {e}")))?;
        let verifier = URL_SAFE_NO_PAD.encode(v);
        Ok(Pkce {
            challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            verifier,
            state: URL_SAFE_NO_PAD.encode(s),
        })
    }
}

/// The loopback redirect URI for `port`.
pub fn redirect_uri(port: u16) -> String {
    format!("http://localhost:{port}/callback")
}

/// The authorization request URL.
pub fn authorize_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Result<String, FlowError> {
    let mut url = url::Url::parse(endpoint).map_err(|e| FlowError::Discovery {
        url: endpoint.into(),
        reason: format!("authorization_endpoint: {e}"),
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPES)
        // OIDC Core ignores offline_access (no refresh token) unless the user is asked for
        // consent; without a refresh token kubectl would need a browser login every hour.
        .append_pair("prompt", "consent")
        .append_pair("state", &pkce.state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

/// The code from a redirect's query, after checking `error` and `state`.
pub fn code_from_query(query: &str, state: &str) -> Result<String, FlowError> {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if let Some(error) = q.get("error") {
        return Err(FlowError::Authorize {
            error: error.clone(),
            description: q.get("error_description").cloned().unwrap_or_default(),
        });
    }
    if q.get("state").map(String::as_str) != Some(state) {
        return Err(FlowError::StateMismatch);
    }
    match q.get("code") {
        Some(c) if !c.is_empty() => Ok(c.clone()),
        _ => Err(FlowError::MissingCode),
    }
}

/// Binds the loopback callback listener (before the URL is shown, so a busy port fails first).
pub async fn listen(port: u16) -> Result<TcpListener, FlowError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| FlowError::Listen { port, source })
}

/// Serves `/callback` on `listener` until one arrives (other paths get 404), answers the
/// browser, and returns the code or the callback's error.
pub async fn wait_callback(
    listener: TcpListener,
    state: &str,
    timeout: Duration,
) -> Result<String, FlowError> {
    let serve = async {
        loop {
            let (mut sock, _) = listener
                .accept()
                .await
                .map_err(|e| FlowError::Callback(format!("accept: {e}")))?;
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&head);
            let target = line
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if path != "/callback" {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let result = code_from_query(query, state);
            let (status, text) = match &result {
                Ok(_) => (
                    "200 OK",
                    "Logged in to Podplane. You can close this tab.".to_string(),
                ),
                Err(e) => ("400 Bad Request", format!("Podplane login failed: {e}")),
            };
            let body = format!(
                "<!doctype html><title>Podplane</title><p>{}</p>\n",
                text.replace('&', "&amp;").replace('<', "&lt;")
            );
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
            return result;
        }
    };
    tokio::time::timeout(timeout, serve)
        .await
        .map_err(|_| FlowError::Timeout(timeout.as_secs()))?
}

/// Headless: walks the authorization request's redirects (keeping the issuer's cookies, as a
/// browser would, without running any page) until one points at `redirect_uri`, and takes the
/// code from it. Works with issuers that approve without a form (a trusted client whose
/// consent needs no page); one that shows a page answers 200 and gets a clear error.
pub async fn headless_code(
    client: &reqwest::Client,
    authorize_url: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<String, FlowError> {
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = url::Url::parse(authorize_url)
        .map_err(|e| FlowError::Headless(format!("{authorize_url}: {e}")))?;
    for _ in 0..20 {
        let mut req = client.get(url.as_str());
        if !cookies.is_empty() {
            let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(reqwest::header::COOKIE, c.join("; "));
        }
        let resp = req.send().await.map_err(|e| FlowError::Request {
            what: "authorize",
            url: url.to_string(),
            reason: describe(&e),
        })?;
        for sc in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(sc) = sc.to_str() else { continue };
            let pair = sc.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let status = resp.status();
        if !status.is_redirection() {
            return Err(FlowError::Headless(format!(
                "{url} answered HTTP {} instead of redirecting back; the issuer wants a browser here: run `podplane login` without --headless",
                status.as_u16()
            )));
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| FlowError::Headless(format!("{url}: redirect without Location")))?;
        let next = url
            .join(location)
            .map_err(|e| FlowError::Headless(format!("{url}: bad Location {location:?}: {e}")))?;
        if next.as_str().starts_with(redirect_uri) {
            return code_from_query(next.query().unwrap_or(""), state);
        }
        url = next;
    }
    Err(FlowError::Headless(
        "more than 20 redirects without reaching the callback".into(),
    ))
}

/// What a token endpoint returns that podplane keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub id_token: String,
    /// Empty when the issuer sent none.
    pub refresh_token: String,
}

async fn token_request(
    client: &reqwest::Client,
    token_endpoint: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, FlowError> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        ser.append_pair(k, v);
    }
    let req = |e: reqwest::Error| FlowError::Request {
        what: "token endpoint",
        url: token_endpoint.into(),
        reason: describe(&e),
    };
    let resp = client
        .post(token_endpoint)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(ser.finish())
        .send()
        .await
        .map_err(req)?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(req)?;
    if status != 200 {
        return Err(FlowError::Status {
            what: "token endpoint",
            url: token_endpoint.into(),
            status,
            body: excerpt(&body),
        });
    }
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| FlowError::Request {
        what: "token endpoint",
        url: token_endpoint.into(),
        reason: format!("not JSON: {e}"),
    })?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let id_token = s("id_token");
    if id_token.is_empty() {
        // Field names only: the body carries an access token.
        let fields = v
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        return Err(FlowError::NoIdToken {
            url: token_endpoint.into(),
            fields,
        });
    }
    Ok(TokenResponse {
        id_token,
        refresh_token: s("refresh_token"),
    })
}

/// The authorization-code grant with the PKCE verifier.
pub async fn exchange_code(
    client: &reqwest::Client,
    token_endpoint: &str,
    code: &str,
    redirect_uri: &str,
    client_id: &str,
    verifier: &str,
) -> Result<TokenResponse, FlowError> {
    token_request(
        client,
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The refresh-token grant.
pub async fn refresh(
    client: &reqwest::Client,
    token_endpoint: &str,
    refresh_token: &str,
    client_id: &str,
) -> Result<TokenResponse, FlowError> {
    token_request(
        client,
        token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}

/// The ID token claims podplane reads (the signature is the API server's to check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub email: String,
    /// Seconds since the epoch; 0 when absent.
    pub exp: u64,
}

impl Claims {
    /// `email`, else `sub`: how the user is named in messages.
    pub fn display(&self) -> &str {
        if self.email.is_empty() {
            &self.sub
        } else {
            &self.email
        }
    }
}

/// Decodes the payload of a JWT (no signature check).
pub fn claims(id_token: &str) -> Result<Claims, FlowError> {
    let payload = id_token
        .split('.')
        .nth(1)
        .ok_or_else(|| FlowError::IdToken("not a JWT (no payload part)".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .or_else(|_| STANDARD_NO_PAD.decode(payload.trim_end_matches('=')))
        .map_err(|e| FlowError::IdToken(format!("payload is not base64: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| FlowError::IdToken(format!("payload is not JSON: {e}")))?;
    let sub = v.get("sub").and_then(|s| s.as_str()).unwrap_or("");
    if sub.is_empty() {
        return Err(FlowError::IdToken("id_token has no `sub` claim".into()));
    }
    Ok(Claims {
        sub: sub.into(),
        email: v.get("email").and_then(|s| s.as_str()).unwrap_or("").into(),
        exp: v.get("exp").and_then(|e| e.as_u64()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let p = Pkce::new().unwrap();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(p.state.len(), 22);
        let again = URL_SAFE_NO_PAD.encode(Sha256::digest(p.verifier.as_bytes()));
        assert_eq!(p.challenge, again);
        assert_ne!(Pkce::new().unwrap().verifier, p.verifier);
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorize_url_carries_every_parameter() {
        let p = Pkce::new().unwrap();
        let u = authorize_url("https://i.example/auth?x=1", "c1", &redirect_uri(8000), &p).unwrap();
        let u = url::Url::parse(&u).unwrap();
        let q: BTreeMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["x"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "c1");
        assert_eq!(q["redirect_uri"], "http://localhost:8000/callback");
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["state"], p.state);
        assert_eq!(q["code_challenge"], p.challenge);
        assert_eq!(q["code_challenge_method"], "S256");
    }

    #[test]
    fn callback_query_checks() {
        assert_eq!(code_from_query("code=abc&state=s", "s").unwrap(), "abc");
        assert!(matches!(
            code_from_query("code=abc&state=t", "s"),
            Err(FlowError::StateMismatch)
        ));
        assert!(matches!(
            code_from_query("state=s", "s"),
            Err(FlowError::MissingCode)
        ));
        let e = code_from_query("error=access_denied&error_description=no+way&state=s", "s")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "authorize error: access_denied: no way");
    }

    #[test]
    fn claims_from_a_jwt() {
        let p = URL_SAFE_NO_PAD.encode(br#"{"sub":"a.b","email":"a@b.c","exp":42}"#);
        let c = claims(&format!("h.{p}.s")).unwrap();
        assert_eq!((c.sub.as_str(), c.display(), c.exp), ("a.b", "a@b.c", 42));
        let p = URL_SAFE_NO_PAD.encode(br#"{"email":"a@b.c"}"#);
        assert!(
            claims(&format!("h.{p}.s"))
                .unwrap_err()
                .to_string()
                .contains("sub")
        );
        assert!(claims("garbage").is_err());
    }
}
