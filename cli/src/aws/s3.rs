//! S3 GetObject and PutObject with `If-Match`.

use reqwest::{Method, Url};

use super::sigv4::uri_encode;
use super::{AwsError, Client, ResponseProblem, api_error};

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
