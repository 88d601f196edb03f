//! AWS Signature Version 4 over headers (`Authorization: AWS4-HMAC-SHA256 …`).

use sha2::{Digest, Sha256};

use super::Credentials;

/// What gets signed: the method, host (with `:port` when not the default), the URI-encoded path,
/// the raw query pairs, extra headers and the hex SHA-256 of the body.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
}

/// The headers to add to the request: `x-amz-date`, `x-amz-content-sha256`, the session token
/// when there is one, and `authorization`. `amz_date` is `YYYYMMDDTHHMMSSZ`.
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    let mut added = vec![
        (
            "x-amz-content-sha256".to_string(),
            req.payload_sha256.to_string(),
        ),
        ("x-amz-date".to_string(), amz_date.to_string()),
    ];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let mut all: Vec<(String, String)> = req
        .headers
        .iter()
        .chain(added.iter())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    all.push(("host".to_string(), req.host.to_string()));
    all.sort();
    let signed_headers = all
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = all.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();

    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        canonical_headers,
        signed_headers,
        req.payload_sha256
    );
    let date = &amz_date[..amz_date.len().min(8)];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    added.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
            creds.access_key_id
        ),
    ));
    added
}

/// Sorted `key=value` pairs, both URI-encoded, joined by `&`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything except RFC 3986 unreserved characters (and `/` unless
/// `encode_slash`). Kept by hand: SigV4 fixes this exact set (upper-case hex, `~` kept), and
/// the `url` crate's serialisers use the WHATWG sets, which differ.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104), from the RustCrypto `hmac` crate over `sha2`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::Mac as _;
    // HMAC takes a key of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch (UTC).
pub fn amz_date(unix_secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = vmagent::clock::utc_parts(unix_secs);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn example_creds() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn authorization(headers: &[(String, String)]) -> &str {
        &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
    }

    /// "GET Object" example from the S3 SigV4 header-signing documentation.
    #[test]
    fn s3_get_object_example() {
        let headers = [("range".to_string(), "bytes=0-9".to_string())];
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let out = sign(
            &req,
            &example_creds(),
            "us-east-1",
            "s3",
            "20130524T000000Z",
        );
        assert_eq!(
            authorization(&out),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(out.contains(&("x-amz-date".into(), "20130524T000000Z".into())));
        assert!(!out.iter().any(|(k, _)| k == "x-amz-security-token"));
    }

    /// "GET Bucket (List Objects)" example from the same page: query parameters are sorted and
    /// encoded.
    #[test]
    fn s3_list_objects_example() {
        let query = [
            ("prefix".to_string(), "J".to_string()),
            ("max-keys".to_string(), "2".to_string()),
        ];
        let req = Request {
            method: "GET",
            host: "examplebucket.s3.amazonaws.com",
            path: "/",
            query: &query,
            headers: &[],
            payload_sha256: EMPTY_SHA256,
        };
        let out = sign(
            &req,
            &example_creds(),
            "us-east-1",
            "s3",
            "20130524T000000Z",
        );
        assert!(
            authorization(&out).ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            authorization(&out)
        );
    }

    #[test]
    fn session_token_is_signed() {
        let mut creds = example_creds();
        creds.session_token = Some("tok".into());
        let req = Request {
            method: "GET",
            host: "h",
            path: "/",
            query: &[],
            headers: &[],
            payload_sha256: EMPTY_SHA256,
        };
        let out = sign(&req, &creds, "us-east-1", "ec2", "20130524T000000Z");
        assert!(out.contains(&("x-amz-security-token".into(), "tok".into())));
        assert!(
            authorization(&out).contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
            )
        );
    }

    /// RFC 4231 test cases 2 and 6 (short key; key longer than a block).
    #[test]
    fn hmac_rfc4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_827_696), "20000229T123456Z");
        assert_eq!(uri_encode("a b/c~d*", false), "a%20b/c~d%2A");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
    }
}
