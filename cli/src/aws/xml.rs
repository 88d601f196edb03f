//! The AWS XML we read, as typed structs deserialized by quick-xml: error bodies, EC2
//! DescribeInstances and S3 ListObjectsV2. Unknown elements are ignored; every field we need
//! has a default so a sparse (but well-formed) response still parses.

use serde::Deserialize;

/// `<ItemSet><item>…</item>…</ItemSet>`, the EC2 list shape.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(super) struct Items<T> {
    #[serde(default, rename = "item")]
    pub items: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { items: Vec::new() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeInstancesResponse {
    #[serde(default)]
    pub reservation_set: Items<Reservation>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Reservation {
    #[serde(default)]
    pub instances_set: Items<Instance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Instance {
    #[serde(default)]
    pub instance_id: String,
    #[serde(default)]
    pub instance_state: Option<State>,
    #[serde(default)]
    pub tag_set: Items<Tag>,
}

#[derive(Debug, Deserialize)]
pub(super) struct State {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Tag {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// S3 ListObjectsV2's `<ListBucketResult>`.
#[derive(Debug, Deserialize)]
pub(super) struct ListBucketResult {
    #[serde(default, rename = "Contents")]
    pub contents: Vec<Contents>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Contents {
    #[serde(rename = "Key")]
    pub key: String,
}

/// Both error shapes: S3's `<Error><Code/><Message/></Error>` and the query APIs'
/// `<Response><Errors><Error>…</Error></Errors></Response>`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "Code")]
    code: String,
    #[serde(default, rename = "Message")]
    message: String,
    #[serde(default, rename = "Errors")]
    errors: Option<Errors>,
}

#[derive(Debug, Default, Deserialize)]
struct Errors {
    #[serde(default, rename = "Error")]
    error: Vec<ErrorBody>,
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, quick_xml::DeError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| quick_xml::DeError::Custom(format!("not UTF-8: {e}")))?;
    quick_xml::de::from_str(text)
}

/// The error code and message of an AWS error body; empty strings when it has none.
pub(super) fn error_code(body: &[u8]) -> (String, String) {
    let Ok(doc) = parse::<ErrorBody>(body) else {
        return (String::new(), String::new());
    };
    let first = doc
        .errors
        .and_then(|e| e.error.into_iter().next())
        .unwrap_or_default();
    let pick = |a: String, b: String| {
        let a = a.trim().to_string();
        if a.is_empty() {
            b.trim().to_string()
        } else {
            a
        }
    };
    (pick(doc.code, first.code), pick(doc.message, first.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_both_shapes() {
        let s3 = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>r</RequestId></Error>";
        assert_eq!(
            error_code(s3),
            (
                "SlowDown".to_string(),
                "Please reduce your request rate.".to_string()
            )
        );
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(error_code(ec2).0, "RequestLimitExceeded");
        assert_eq!(error_code(b"<html>busy</html>").0, "");
        assert_eq!(error_code(b"\xff\xfe").0, "");
        assert_eq!(
            error_code(b"<Error><Code>A &amp; B</Code></Error>").0,
            "A & B"
        );
    }

    #[test]
    fn list_bucket_result() {
        let doc: ListBucketResult = parse(
            b"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><KeyCount>2</KeyCount>\
              <Contents><Key>p/a &lt;1&gt;</Key><Size>3</Size></Contents><Contents><Key>p/b</Key></Contents></ListBucketResult>",
        )
        .unwrap();
        let keys: Vec<_> = doc.contents.into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["p/a <1>", "p/b"]);
        let empty: ListBucketResult =
            parse(b"<ListBucketResult><Name>b</Name></ListBucketResult>").unwrap();
        assert!(empty.contents.is_empty());
        assert!(parse::<ListBucketResult>(b"<ListBucketResult><Contents>").is_err());
    }
}
