//! EC2 Query API: DescribeInstances (all pages) and TerminateInstances.

use reqwest::{Method, Url};

use super::sigv4::uri_encode;
use super::xml::{self, Element};
use super::{AwsError, Client, ResponseProblem, api_error};

const VERSION: &str = "2016-11-15";

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

    async fn ec2_call(
        &self,
        action: &str,
        params: &[(String, String)],
        hint: &str,
    ) -> Result<Element, AwsError> {
        let what = format!("EC2 {action} in {}", self.config.region);
        let url = self.ec2_url()?;
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), VERSION.to_string()),
        ];
        form.extend_from_slice(params);
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect::<Vec<_>>()
            .join("&");
        let headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let resp = self
            .send(
                &what,
                "ec2",
                Method::POST,
                url.clone(),
                headers,
                body.into_bytes(),
            )
            .await?;
        if resp.status != 200 {
            return Err(api_error(&what, &resp, hint));
        }
        xml::parse(&String::from_utf8_lossy(&resp.body)).map_err(|e| AwsError::BadResponse {
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
            let doc = self
                .ec2_call(
                    "DescribeInstances",
                    &p,
                    "the caller needs ec2:DescribeInstances",
                )
                .await?;
            out.extend(parse_instances(&doc));
            token = doc
                .child_text("nextToken")
                .filter(|t| !t.is_empty())
                .map(str::to_string);
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
            self.ec2_call(
                "TerminateInstances",
                &params,
                "the caller needs ec2:TerminateInstances",
            )
            .await?;
        }
        Ok(())
    }
}

fn parse_instances(doc: &Element) -> Vec<Instance> {
    let mut out = Vec::new();
    let Some(reservations) = doc.child("reservationSet") else {
        return out;
    };
    for r in reservations.children_named("item") {
        let Some(set) = r.child("instancesSet") else {
            continue;
        };
        for i in set.children_named("item") {
            let tag = |key: &str| -> String {
                i.child("tagSet")
                    .into_iter()
                    .flat_map(|t| t.children_named("item"))
                    .find(|t| t.child_text("key") == Some(key))
                    .and_then(|t| t.child_text("value"))
                    .unwrap_or_default()
                    .to_string()
            };
            out.push(Instance {
                id: i.child_text("instanceId").unwrap_or_default().to_string(),
                name: tag("Name"),
                state: i
                    .child("instanceState")
                    .and_then(|s| s.child_text("name"))
                    .unwrap_or_default()
                    .to_string(),
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
        let doc = xml::parse(
            r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
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
        let got = parse_instances(&doc);
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
        assert_eq!(doc.child_text("nextToken"), Some("abc"));
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
        let config = crate::aws::Config {
            region: "eu-west-1".into(),
            credentials: crate::aws::Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            },
            s3_endpoint: None,
            ec2_endpoint: Some(serve_once("<DescribeInstancesResponse><reservationSet>")),
        };
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
        assert_eq!(
            source.to_string(),
            "invalid XML: <DescribeInstancesResponse> is not closed"
        );
        assert!(matches!(
            err,
            AwsError::BadResponse {
                reason: ResponseProblem::Xml(crate::aws::XmlError::NotClosed(_)),
                ..
            }
        ));
    }
}
