//! S3: GetObject, ListObjectsV2 (one page), and PutObject with `If-Match` or `If-None-Match: *`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, Url};

use super::send::{Call, api_error};
use super::{AwsError, Client, ResponseProblem, xml};

/// The largest object `get_object` reads (shard configs and seeds are far smaller).
pub const MAX_OBJECT_BYTES: usize = 64 << 20;
/// The largest XML or error response read.
const MAX_XML_BYTES: usize = 16 << 20;

/// Characters S3 wants percent-encoded in a key: all but the unreserved ones; `/` stays.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// The same for query values, `/` included.
pub(super) const QUERY_SET: &AsciiSet = &KEY_SET.add(b'/');

/// What a create-only PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the body.
    Created,
    /// An object was already there (412 Precondition Failed); nothing was written.
    AlreadyExists,
}

/// Why a bucket or key cannot be put in a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("a bucket name has only lower-case letters, digits, '.' and '-'")]
    BucketChars,
    #[error("a \".\" or \"..\" path segment would address another object after URL normalization")]
    DotSegment,
}

impl Client {
    /// URL of an object (`key` may be empty for bucket-level calls): path style under an
    /// endpoint override (or for bucket names with dots), virtual-host style otherwise.
    pub fn s3_url(&self, bucket: &str, key: &str) -> Result<Url, AwsError> {
        let bad = |reason| AwsError::BadName {
            bucket: bucket.to_string(),
            key: key.to_string(),
            reason,
        };
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(bad(NameProblem::BucketChars));
        }
        if bucket.split('.').all(|p| p.is_empty()) || key.split('/').any(|s| s == "." || s == "..")
        {
            return Err(bad(NameProblem::DotSegment));
        }
        let key = utf8_percent_encode(key, KEY_SET).to_string();
        let region = &self.config.region;
        let text = match &self.config.s3_endpoint {
            Some(ep) => format!("{}/{bucket}/{key}", ep.as_str().trim_end_matches('/')),
            None if bucket.contains('.') => {
                format!("https://s3.{region}.amazonaws.com/{bucket}/{key}")
            }
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"),
        };
        Url::parse(&text).map_err(|source| AwsError::BadUrl {
            what: format!("s3://{bucket}/{key}"),
            url: text.clone(),
            source,
        })
    }

    /// Returns the object's bytes and its ETag (as sent by S3, quotes included).
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, String), AwsError> {
        let what = format!("GET s3://{bucket}/{key}");
        let url = self.s3_url(bucket, key)?;
        let resp = self
            .send(Call {
                what: &what,
                service: "s3",
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                body: Vec::new(),
                max_body: MAX_OBJECT_BYTES,
            })
            .await?;
        if resp.status != 200 {
            let hint = match resp.status {
                404 => "check the nstance_bucket/nstance_shards outputs and the region",
                _ => "",
            };
            return Err(api_error(&what, &resp, hint));
        }
        let etag = resp
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| AwsError::BadResponse {
                what: what.clone(),
                url: url.to_string(),
                reason: ResponseProblem::NoEtag,
            })?;
        Ok((resp.body, etag))
    }

    /// Keys under `prefix` (one ListObjectsV2 page of at most `max_keys`, capped at S3's 1000).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: u32,
    ) -> Result<Vec<String>, AwsError> {
        let what = format!("LIST s3://{bucket}/{prefix}");
        let mut url = self.s3_url(bucket, "")?;
        let query = format!(
            "list-type=2&max-keys={}&prefix={}",
            max_keys.min(1000),
            utf8_percent_encode(prefix, QUERY_SET)
        );
        url.set_query(Some(&query));
        let resp = self
            .send(Call {
                what: &what,
                service: "s3",
                method: Method::GET,
                url: url.clone(),
                headers: Vec::new(),
                body: Vec::new(),
                max_body: MAX_XML_BYTES,
            })
            .await?;
        if resp.status != 200 {
            let hint = match resp.status {
                404 => "check the bucket name and the region",
                _ => "the caller needs s3:ListBucket",
            };
            return Err(api_error(&what, &resp, hint));
        }
        let doc: xml::ListBucketResult =
            xml::parse(&resp.body).map_err(|e| AwsError::BadResponse {
                what,
                url: url.to_string(),
                reason: ResponseProblem::Xml(e),
            })?;
        Ok(doc.contents.into_iter().map(|c| c.key).collect())
    }

    async fn put(
        &self,
        what: &str,
        bucket: &str,
        key: &str,
        condition: (&str, &str),
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<super::send::Response, AwsError> {
        let url = self.s3_url(bucket, key)?;
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            (condition.0.to_string(), condition.1.to_string()),
        ];
        self.send(Call {
            what,
            service: "s3",
            method: Method::PUT,
            url,
            headers,
            body,
            max_body: MAX_XML_BYTES,
        })
        .await
    }

    /// Replaces the object only if its ETag is still `etag`; a 412 becomes
    /// [`AwsError::PreconditionFailed`].
    pub async fn put_object_if_match(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        etag: &str,
    ) -> Result<(), AwsError> {
        let what = format!("PUT s3://{bucket}/{key}");
        let resp = self
            .put(
                &what,
                bucket,
                key,
                ("if-match", etag),
                "application/json",
                body,
            )
            .await?;
        match resp.status {
            200..=299 => Ok(()),
            // 409 ConditionalRequestConflict: a competing write is in flight.
            412 | 409 => Err(AwsError::PreconditionFailed {
                what,
                etag: etag.to_string(),
            }),
            _ => Err(api_error(&what, &resp, "")),
        }
    }

    /// Create-only PUT with `If-None-Match: *`; a 412 Precondition Failed is
    /// `Ok(AlreadyExists)`.
    pub async fn put_object_if_none_match(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<PutOutcome, AwsError> {
        let what = format!("PUT s3://{bucket}/{key} (create only)");
        let resp = self
            .put(
                &what,
                bucket,
                key,
                ("if-none-match", "*"),
                "application/octet-stream",
                body,
            )
            .await?;
        match resp.status {
            200..=299 => Ok(PutOutcome::Created),
            412 => Ok(PutOutcome::AlreadyExists),
            409 => Err(api_error(
                &what,
                &resp,
                "another upload of the same key is in flight; rerun to see its result",
            )),
            _ => Err(api_error(&what, &resp, "the caller needs s3:PutObject")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::{AwsError, Client, Config, EnvSource};

    use super::NameProblem;

    fn client(endpoint: Option<&str>) -> Client {
        let mut config =
            Config::from_env("eu-west-1", &EnvSource::Vars(Default::default())).unwrap();
        config.s3_endpoint = endpoint.map(|e| e.parse().unwrap());
        Client::new(config).unwrap()
    }

    #[test]
    fn object_urls() {
        assert_eq!(
            client(None)
                .s3_url("b", "shards/eu-west-1a.json")
                .unwrap()
                .as_str(),
            "https://b.s3.eu-west-1.amazonaws.com/shards/eu-west-1a.json"
        );
        assert_eq!(
            client(None).s3_url("b.c", "k").unwrap().as_str(),
            "https://s3.eu-west-1.amazonaws.com/b.c/k"
        );
        assert_eq!(
            client(Some("http://127.0.0.1:9000/"))
                .s3_url("b", "a b/c+d?e#f%g")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/b/a%20b/c%2Bd%3Fe%23f%25g"
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        let c = client(Some("http://127.0.0.1:9000/"));
        for (bucket, key, reason) in [
            ("other/x", "k", NameProblem::BucketChars),
            ("b?x=1", "k", NameProblem::BucketChars),
            ("", "k", NameProblem::BucketChars),
            ("..", "k", NameProblem::DotSegment),
            ("b", "../other-bucket/k", NameProblem::DotSegment),
            ("b", "a/./k", NameProblem::DotSegment),
            ("b", "a/..", NameProblem::DotSegment),
        ] {
            match c.s3_url(bucket, key) {
                Err(AwsError::BadName { reason: r, .. }) => assert_eq!(r, reason, "{bucket} {key}"),
                other => panic!("{bucket} {key}: {other:?}"),
            }
        }
        // Dots inside a segment are ordinary key characters.
        assert!(c.s3_url("b", "a/..b/.c").is_ok());
    }
}
