//! EC2 Query API: DescribeInstances (all pages) and TerminateInstances.

use percent_encoding::utf8_percent_encode;
use reqwest::{Method, Url};

use super::s3::QUERY_SET;
use super::send::{Call, api_error};
use super::{AwsError, Client, ResponseProblem, xml};

const VERSION: &str = "2016-11-15";
/// The largest response read (a DescribeInstances page is at most 1000 instances).
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// A DescribeInstances filter, e.g. `tag:nstance:cluster-id` = `[id]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: name.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// One instance; `name`, `shard` and `group` come from the `Name`, `nstance:shard` and
/// `nstance:group` tags and are empty when the tag is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub state: String,
    pub shard: String,
    pub group: String,
}

impl Client {
    fn ec2_url(&self) -> Result<Url, AwsError> {
        let text = match &self.config.ec2_endpoint {
            Some(ep) => return Ok(ep.clone()),
            None => format!("https://ec2.{}.amazonaws.com/", self.config.region),
        };
        Url::parse(&text).map_err(|source| AwsError::BadUrl {
            what: "EC2".into(),
            url: text.clone(),
            source,
        })
    }

    async fn ec2_call<T: for<'de> serde::Deserialize<'de>>(
        &self,
        action: &str,
        params: &[(String, String)],
        hint: &str,
    ) -> Result<T, AwsError> {
        let what = format!("EC2 {action} in {}", self.config.region);
        let url = self.ec2_url()?;
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), VERSION.to_string()),
        ];
        form.extend_from_slice(params);
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY_SET),
                    utf8_percent_encode(v, QUERY_SET)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let resp = self
            .send(Call {
                what: &what,
                service: "ec2",
                method: Method::POST,
                url: url.clone(),
                headers,
                body: body.into_bytes(),
                max_body: MAX_RESPONSE_BYTES,
            })
            .await?;
        if resp.status != 200 {
            return Err(api_error(&what, &resp, hint));
        }
        xml::parse(&resp.body).map_err(|e| AwsError::BadResponse {
            what,
            url: url.to_string(),
            reason: ResponseProblem::Xml(e),
        })
    }

    /// All instances matching `filters`, following `nextToken` pages.
    pub async fn describe_instances(&self, filters: &[Filter]) -> Result<Vec<Instance>, AwsError> {
        let mut params = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            params.push((format!("Filter.{}.Name", i + 1), f.name.clone()));
            for (j, v) in f.values.iter().enumerate() {
                params.push((format!("Filter.{}.Value.{}", i + 1, j + 1), v.clone()));
            }
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut p = params.clone();
            if let Some(t) = &token {
                p.push(("NextToken".to_string(), t.clone()));
            }
            let doc: xml::DescribeInstancesResponse = self
                .ec2_call(
                    "DescribeInstances",
                    &p,
                    "the caller needs ec2:DescribeInstances",
                )
                .await?;
            token = doc
                .next_token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            out.extend(instances(doc));
            if token.is_none() {
                return Ok(out);
            }
        }
        Err(AwsError::BadResponse {
            what: format!("EC2 DescribeInstances in {}", self.config.region),
            url: self.ec2_url()?.to_string(),
            reason: ResponseProblem::EndlessPages,
        })
    }

    /// Terminates the instances (in batches of 1000).
    pub async fn terminate_instances(&self, ids: &[String]) -> Result<(), AwsError> {
        for chunk in ids.chunks(1000) {
            let params: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone()))
                .collect();
            // The body is not needed, only that it is the XML of a success.
            let _: serde::de::IgnoredAny = self
                .ec2_call(
                    "TerminateInstances",
                    &params,
                    "the caller needs ec2:TerminateInstances",
                )
                .await?;
        }
        Ok(())
    }
}

fn instances(doc: xml::DescribeInstancesResponse) -> Vec<Instance> {
    let mut out = Vec::new();
    for r in doc.reservation_set.items {
        for i in r.instances_set.items {
            let tag = |key: &str| -> String {
                i.tag_set
                    .items
                    .iter()
                    .find(|t| t.key.trim() == key)
                    .map(|t| t.value.trim().to_string())
                    .unwrap_or_default()
            };
            out.push(Instance {
                id: i.instance_id.trim().to_string(),
                name: tag("Name"),
                state: i
                    .instance_state
                    .as_ref()
                    .map(|s| s.name.trim().to_string())
                    .unwrap_or_default(),
                shard: tag("nstance:shard"),
                group: tag("nstance:group"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_describe_instances() {
        let doc: xml::DescribeInstancesResponse = xml::parse(
            br#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r</requestId>
  <reservationSet>
    <item><reservationId>r-1</reservationId>
      <instancesSet>
        <item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState>
          <groupSet><item><groupId>sg-1</groupId></item></groupSet>
          <tagSet><item><key>Name</key><value>web</value></item><item><key>nstance:shard</key><value>eu-west-1a</value></item><item><key>nstance:group</key><value>default/workers</value></item></tagSet>
        </item>
        <item><instanceId>i-2</instanceId><instanceState><name>stopped</name></instanceState></item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>abc</nextToken>
</DescribeInstancesResponse>"#,
        )
        .unwrap();
        assert_eq!(doc.next_token.as_deref(), Some("abc"));
        let got = instances(doc);
        assert_eq!(
            got,
            [
                Instance {
                    id: "i-1".into(),
                    name: "web".into(),
                    state: "running".into(),
                    shard: "eu-west-1a".into(),
                    group: "default/workers".into()
                },
                Instance {
                    id: "i-2".into(),
                    name: String::new(),
                    state: "stopped".into(),
                    shard: String::new(),
                    group: String::new()
                },
            ]
        );
    }

    /// A one-shot HTTP server on 127.0.0.1 that answers the first request with 200 and `body`
    /// (a real socket and a real client: only the AWS side is a stand-in).
    fn serve_once(body: &'static str) -> reqwest::Url {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the headers and the form body, so the client sees a complete exchange.
            loop {
                let n = conn.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if req.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(resp.as_bytes()).unwrap();
        });
        format!("http://{addr}/").parse().unwrap()
    }

    #[test]
    fn broken_xml_is_a_bad_response_that_keeps_its_cause() {
        let env = crate::aws::EnvSource::Vars(
            [
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let mut config = crate::aws::Config::from_env("eu-west-1", &env).unwrap();
        config.ec2_endpoint = Some(serve_once("<DescribeInstancesResponse><reservationSet>"));
        let client = Client::new(config).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(client.describe_instances(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "EC2 DescribeInstances in eu-west-1: unexpected response from http://127.0.0.1:"
            ),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("a typed cause");
        assert!(source.to_string().starts_with("invalid XML: "), "{source}");
        assert!(matches!(
            err,
            AwsError::BadResponse {
                reason: ResponseProblem::Xml(_),
                ..
            }
        ));
    }
}
