//! Just enough XML for AWS responses: elements, text and the five entities; attributes,
//! comments and declarations are skipped, namespace prefixes dropped.

/// Why a response is not the XML expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A construct with no end: "CDATA section", "comment", "declaration", "end tag",
    /// "start tag", "entity".
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    #[error("unexpected </{0}>")]
    UnexpectedEnd(String),
    #[error("</{close}> closes <{open}>")]
    Mismatch { close: String, open: String },
    #[error("start tag without a name")]
    NoName,
    #[error("unknown entity &{0};")]
    UnknownEntity(String),
    #[error("<{0}> is not closed")]
    NotClosed(String),
    #[error("no root element")]
    NoRoot,
}

#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// First descendant (depth first, self included) with this name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

pub fn parse(s: &str) -> Result<Element, XmlError> {
    let mut stack: Vec<Element> = Vec::new();
    let mut rest = s;
    loop {
        let Some(lt) = rest.find('<') else {
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&unescape(rest)?);
            }
            break;
        };
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(&rest[..lt])?);
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r
                .find("]]>")
                .ok_or(XmlError::Unterminated("CDATA section"))?;
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&r[..end]);
            }
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or(XmlError::Unterminated("comment"))?;
            rest = &r[end + 3..];
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            let end = rest
                .find('>')
                .ok_or(XmlError::Unterminated("declaration"))?;
            rest = &rest[end + 1..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or(XmlError::Unterminated("end tag"))?;
            let name = local_name(r[..end].trim());
            let el = stack
                .pop()
                .ok_or_else(|| XmlError::UnexpectedEnd(name.clone()))?;
            if el.name != name {
                return Err(XmlError::Mismatch {
                    close: name,
                    open: el.name,
                });
            }
            rest = &r[end + 1..];
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None => return Ok(el),
            }
        } else {
            let end = tag_end(rest).ok_or(XmlError::Unterminated("start tag"))?;
            let inner = &rest[1..end];
            let (inner, empty) = match inner.strip_suffix('/') {
                Some(i) => (i, true),
                None => (inner, false),
            };
            let name = local_name(
                inner
                    .split(|c: char| c.is_ascii_whitespace())
                    .next()
                    .unwrap_or(""),
            );
            if name.is_empty() {
                return Err(XmlError::NoName);
            }
            let el = Element {
                name,
                ..Element::default()
            };
            rest = &rest[end + 1..];
            if empty {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            } else {
                stack.push(el);
            }
        }
    }
    match stack.first() {
        Some(el) => Err(XmlError::NotClosed(el.name.clone())),
        None => Err(XmlError::NoRoot),
    }
}

/// Index of the `>` ending the tag at the start of `s`, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn local_name(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_string()
}

fn unescape(s: &str) -> Result<String, XmlError> {
    if !s.contains('&') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let r = &rest[amp + 1..];
        let semi = r.find(';').ok_or(XmlError::Unterminated("entity"))?;
        let ent = &r[..semi];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code =
                    if let Some(hex) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = ent.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                code.and_then(char::from_u32)
                    .ok_or_else(|| XmlError::UnknownEntity(ent.to_string()))?
            }
        };
        out.push(c);
        rest = &r[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_items() {
        let doc = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<R xmlns="http://x/"><set><item><id>a&amp;b</id><t a="x>y"/></item><item><id><![CDATA[<c>]]></id></item></set><!-- c --><n>&#65;&#x42;</n></R>"#,
        )
        .unwrap();
        assert_eq!(doc.name, "R");
        let ids: Vec<_> = doc
            .child("set")
            .unwrap()
            .children_named("item")
            .map(|i| i.child_text("id").unwrap())
            .collect();
        assert_eq!(ids, ["a&b", "<c>"]);
        assert_eq!(doc.child_text("n"), Some("AB"));
        assert!(doc.find("t").is_some());
    }

    #[test]
    fn rejects_broken_documents() {
        let mismatch = parse("<a><b></a>").unwrap_err();
        assert_eq!(mismatch.to_string(), "</a> closes <b>");
        assert_eq!(parse("<a>").unwrap_err(), XmlError::NotClosed("a".into()));
        assert_eq!(parse("plain text").unwrap_err(), XmlError::NoRoot);
        assert_eq!(
            parse("<a>&bogus;</a>").unwrap_err().to_string(),
            "unknown entity &bogus;"
        );
        assert_eq!(
            parse("<a>&amp</a>").unwrap_err(),
            XmlError::Unterminated("entity")
        );
    }
}
