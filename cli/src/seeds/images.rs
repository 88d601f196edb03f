//! The image-mirror step of seeding: every string field named `image`, at any depth of a
//! record's JSON, gets the mirror's `<host>/<prefix>/` in front (unless it has it already).
//!
//! A seed holds thousands of records and most of the ones naming images are large workload
//! objects, so parsing each into a `serde_json::Value` and writing it back was most of
//! `cluster seed`'s time. Instead, a record is checked to be valid JSON without building
//! anything (`IgnoredAny`), then scanned once for `"image": "…"` pairs, and the prefix is
//! inserted into the original bytes: every other byte of the record stays as written. No
//! JSON crate offers "byte offsets of the values of a key", hence the small scanner below.
//! Whenever the raw bytes and the decoded text could differ (an escape in a key or in an
//! image value) the record goes the slow, exact way through `Value`.

use serde_json::Value;

/// Prefixes the images of one record's JSON value; `None` when nothing changes (not JSON,
/// no image field, or every image prefixed already).
pub fn prefix_record(value: &[u8], lead: &str) -> Option<Vec<u8>> {
    // Cheap test first: most records name no image. (A key can also be spelled with
    // escapes, as `"im\u0061ge"`, so a record with a backslash is looked at closely.)
    if value.first() != Some(&b'{')
        || (memchr::memmem::find(value, b"\"image\"").is_none()
            && memchr::memchr(b'\\', value).is_none())
    {
        return None;
    }
    if lead_is_plain(lead)
        && serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok()
        && let Some(spans) = image_spans(value)
    {
        return splice(value, &spans, lead);
    }
    let mut v: Value = serde_json::from_slice(value).ok()?;
    // Serialising a Value cannot fail.
    prefix_value(&mut v, lead).then(|| serde_json::to_vec(&v).unwrap_or_default())
}

/// Whether `lead` can be put into a JSON string as it is (no quote, backslash or control
/// character to escape).
fn lead_is_plain(lead: &str) -> bool {
    !lead.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The `[start, end)` byte ranges of the contents of every string value whose key is
/// exactly `image`, in order; `None` when a key or one of those values holds an escape
/// (the caller then decodes the record properly). `json` must be valid JSON.
fn image_spans(json: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let mut i = 0;
    // Set right after a string followed by `:`, i.e. while reading that key's value.
    let mut after_image_key = false;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                let (end, escaped) = string_end(json, start)?;
                i = end + 1;
                let j = skip_ws(json, i);
                if json.get(j) == Some(&b':') {
                    if escaped {
                        return None;
                    }
                    after_image_key = &json[start..end] == b"image";
                    i = j + 1;
                    continue;
                }
                if after_image_key {
                    if escaped {
                        return None;
                    }
                    spans.push((start, end));
                }
                after_image_key = false;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                after_image_key = false;
                i += 1;
            }
        }
    }
    Some(spans)
}

/// The index of the quote closing the string whose contents start at `start`, and whether
/// the contents hold an escape.
fn string_end(json: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut i = start;
    loop {
        let k = i + memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[k] == b'"' {
            return Some((k, escaped));
        }
        escaped = true;
        i = k + 2;
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `json` with `lead` inserted at the start of each span not empty and not already led by it.
fn splice(json: &[u8], spans: &[(usize, usize)], lead: &str) -> Option<Vec<u8>> {
    let todo: Vec<usize> = spans
        .iter()
        .filter(|(s, e)| e > s && !json[*s..*e].starts_with(lead.as_bytes()))
        .map(|(s, _)| *s)
        .collect();
    if todo.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() + todo.len() * lead.len());
    let mut from = 0;
    for at in todo {
        out.extend_from_slice(&json[from..at]);
        out.extend_from_slice(lead.as_bytes());
        from = at;
    }
    out.extend_from_slice(&json[from..]);
    Some(out)
}

/// The exact way: prefixes every string field named `image` in a decoded value; whether
/// anything changed.
pub fn prefix_value(v: &mut Value, lead: &str) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "image" => {
                        if !s.starts_with(lead) && !s.is_empty() {
                            *s = format!("{lead}{s}");
                            changed = true;
                        }
                    }
                    _ => changed |= prefix_value(child, lead),
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                changed |= prefix_value(child, lead);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
