use serde_json::{Value, json};

use super::*;

const LEAD: &str = "mirror.example.com/mirror/";

/// What the exact (decode, rewrite, encode) way gives, as a value.
fn exact(doc: &[u8]) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(doc).ok()?;
    prefix_value(&mut v, LEAD).then_some(v)
}

/// The fast way's output must decode to exactly what the exact way gives, and be `None`
/// exactly when that one changes nothing.
fn agrees(doc: &str) {
    let fast = prefix_record(doc.as_bytes(), LEAD);
    let want = exact(doc.as_bytes());
    match (&fast, &want) {
        (None, None) => {}
        (Some(f), Some(w)) => {
            let got: Value = serde_json::from_slice(f).unwrap_or_else(|e| {
                panic!("output is not JSON ({e}): {}", String::from_utf8_lossy(f))
            });
            assert_eq!(&got, w, "for {doc}");
        }
        _ => panic!("for {doc}: fast {fast:?}, exact {want:?}"),
    }
}

#[test]
fn images_at_any_depth_are_prefixed_once() {
    let doc = r#"{"kind":"Deployment","spec":{"template":{"spec":{
        "initContainers":[{"name":"init","image":"busybox:1.36"}],
        "containers":[{"name":"main", "image" : "ghcr.io/x/app:v1", "env":[{"name":"image","value":"image"}]},
                      {"name":"done","image":"mirror.example.com/mirror/nginx"}]}}}}"#;
    agrees(doc);
    let out = prefix_record(doc.as_bytes(), LEAD).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""image":"mirror.example.com/mirror/busybox:1.36""#));
    assert!(text.contains(r#""image" : "mirror.example.com/mirror/ghcr.io/x/app:v1""#));
    assert!(text.contains(r#""image":"mirror.example.com/mirror/nginx""#));
    // `image` as a value, or as a name inside env, is left alone; the rest is byte for byte.
    assert!(text.contains(r#"{"name":"image","value":"image"}"#));
    assert_eq!(text.len(), doc.len() + 2 * LEAD.len());
    // Doing it again changes nothing.
    assert_eq!(prefix_record(text.as_bytes(), LEAD), None);
}

#[test]
fn the_fast_way_agrees_with_the_exact_way() {
    for doc in [
        r#"{"image":"a"}"#,
        r#"{"image":""}"#,
        r#"{"image":null,"x":{"image":1}}"#,
        r#"{"image":["a","b"],"y":{"image":{"image":"c"}}}"#,
        r#"{"a":"\"image\"","b":"say \"image\": \"x\""}"#,
        r#"{"a":"x\\","image":"y"}"#,
        r#"{"image":"esc\u0061ped"}"#,
        r#"{"im\u0061ge":"escaped-key"}"#,
        r#"{"image":"a","image":"b"}"#,
        "{ \"image\"\n:\t\"spaced\" }",
        r#"{"list":[{"image":"a"},{"image":"b"},"image",{"image":"mirror.example.com/mirror/c"}]}"#,
        r#"{"image":"a","#,
        r#"{"image":"a"} trailing"#,
        r#"["image"]"#,
        r#"{"kind":"ConfigMap","data":{"x":"no images here"}}"#,
        r#"{"image":"ünïcödé/äpp"}"#,
    ] {
        agrees(doc);
    }
}

#[test]
fn generated_documents_agree() {
    // Objects built from a small alphabet of keys and values, nested a few levels, written
    // compact and pretty: a cheap exhaustive-ish sweep over shapes.
    let keys = ["image", "name", "im\"age", "images", "x\\y"];
    let leaves = [
        json!("nginx"),
        json!(""),
        json!("mirror.example.com/mirror/a"),
        json!(7),
        json!(null),
        json!(["image", {"image": "z"}]),
        json!("a\"b"),
    ];
    let mut n = 0;
    for (i, k1) in keys.iter().enumerate() {
        for (j, k2) in keys.iter().enumerate() {
            for (l, leaf) in leaves.iter().enumerate() {
                let inner = json!({ *k2: leaf, "sibling": leaves[(l + i) % leaves.len()] });
                let doc =
                    json!({ *k1: inner, "image": leaves[(j + l) % leaves.len()], "arr": [inner] });
                agrees(&serde_json::to_string(&doc).unwrap());
                agrees(&serde_json::to_string_pretty(&doc).unwrap());
                n += 2;
            }
        }
    }
    assert_eq!(n, keys.len() * keys.len() * leaves.len() * 2);
}

#[test]
fn a_lead_that_needs_escaping_takes_the_exact_way() {
    let lead = "we\"ird/";
    let out = prefix_record(br#"{"image":"a"}"#, lead).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["image"], "we\"ird/a");
}

#[test]
fn spans_are_refused_when_raw_and_decoded_text_could_differ() {
    assert_eq!(image_spans(br#"{"image":"a\"b"}"#), None);
    assert_eq!(image_spans(br#"{"k\u0065y":"a"}"#), None);
    // An escape in a value that is not an image does not matter.
    assert_eq!(
        image_spans(br#"{"other":"a\"b","image":"c"}"#),
        Some(vec![(25, 26)])
    );
}
