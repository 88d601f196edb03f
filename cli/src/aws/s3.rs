//! S3 GetObject, ListObjectsV2 (one page), and PutObject with `If-Match` or `If-None-Match: *`.

use reqwest::{Method, Url};

use super::sigv4::uri_encode;
use super::{AwsError, Client, ResponseProblem, api_error, xml};

/// What a create-only PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the body.
    Created,
    /// An object already exists at the key (412 Precondition Failed); nothing was written.
    AlreadyExists,
}

impl Client {
    /// URL of an object: path style under an endpoint override (or for bucket names with dots),
    /// virtual-host style otherwise.
    pub fn s3_url(&self, bucket: &str, key: &str) -> Result<Url, AwsError> {
        let key = uri_encode(key, false);
        let text = match &self.config.s3_endpoint {
            Some(ep) => format!("{}/{bucket}/{key}", ep.as_str().trim_end_matches('/')),
            None if bucket.contains('.') => {
                format!(
                    "https://s3.{}.amazonaws.com/{bucket}/{key}",
                    self.config.region
                )
            }
            None => format!(
                "https://{bucket}.s3.{}.amazonaws.com/{key}",
                self.config.region
            ),
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
            .send(
                &what,
                "s3",
                Method::GET,
                url.clone(),
                Vec::new(),
                Vec::new(),
            )
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

    /// Keys under `prefix` (one ListObjectsV2 page of at most `max_keys`).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: u32,
    ) -> Result<Vec<String>, AwsError> {
        let what = format!("LIST s3://{bucket}/{prefix}");
        let base = self.s3_url(bucket, "")?;
        // The query is encoded as SigV4 canonicalises it, so the signed and the sent forms agree.
        let text = format!(
            "{}?list-type=2&max-keys={max_keys}&prefix={}",
            base.as_str().trim_end_matches('/'),
            uri_encode(prefix, true)
        );
        let url = Url::parse(&text).map_err(|source| AwsError::BadUrl {
            what: what.clone(),
            url: text.clone(),
            source,
        })?;
        let resp = self
            .send(
                &what,
                "s3",
                Method::GET,
                url.clone(),
                Vec::new(),
                Vec::new(),
            )
            .await?;
        if resp.status != 200 {
            let hint = match resp.status {
                404 => "check the bucket name and the region",
                _ => "",
            };
            return Err(api_error(&what, &resp, hint));
        }
        let doc = xml::parse(&String::from_utf8_lossy(&resp.body)).map_err(|e| {
            AwsError::BadResponse {
                what: what.clone(),
                url: url.to_string(),
                reason: ResponseProblem::Xml(e),
            }
        })?;
        Ok(doc
            .children_named("Contents")
            .filter_map(|c| c.child_text("Key"))
            .map(str::to_string)
            .take(max_keys as usize)
            .collect())
    }

    /// Create-only PUT with `If-None-Match: *`; a 412 Precondition Failed is Ok(AlreadyExists).
    pub async fn put_object_if_none_match(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<PutOutcome, AwsError> {
        let what = format!("PUT s3://{bucket}/{key}");
        let url = self.s3_url(bucket, key)?;
        let headers = vec![
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
            ("if-none-match".to_string(), "*".to_string()),
        ];
        let resp = self
            .send(&what, "s3", Method::PUT, url, headers, body)
            .await?;
        match resp.status {
            200..=299 => Ok(PutOutcome::Created),
            412 => Ok(PutOutcome::AlreadyExists),
            _ => Err(api_error(&what, &resp, "")),
        }
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
        let url = self.s3_url(bucket, key)?;
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("if-match".to_string(), etag.to_string()),
        ];
        let resp = self
            .send(&what, "s3", Method::PUT, url, headers, body)
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
}

#[cfg(test)]
mod tests {
    use crate::aws::{Client, Config, Credentials};

    fn client(endpoint: Option<&str>) -> Client {
        Client::new(Config {
            region: "eu-west-1".into(),
            credentials: Credentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
                session_token: None,
            },
            s3_endpoint: endpoint.map(|e| e.parse().unwrap()),
            ec2_endpoint: None,
        })
        .unwrap()
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
                .s3_url("b", "a b/c")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/b/a%20b/c"
        );
    }
}
