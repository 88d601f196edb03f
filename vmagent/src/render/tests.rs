use super::testutil::*;
use super::*;

#[test]
fn renders_are_deterministic() {
    let m = manifest();
    let s = settings(Kind::Knc, "aws");
    let a = render(&inputs(Kind::Knc, &s, &m)).unwrap();
    let b = render(&inputs(Kind::Knc, &s, &m)).unwrap();
    assert_eq!(a, b);
    // Every service's unit file is rendered.
    for unit in a.services.keys() {
        assert!(
            a.files.contains_key(&format!("/etc/systemd/system/{unit}")),
            "{unit}"
        );
    }
}

#[test]
fn quoted_escapes_what_would_end_or_break_the_string() {
    assert_eq!(quoted("plain.example.com"), "\"plain.example.com\"");
    assert_eq!(
        quoted("a\"b\\c\nd\te\u{1}"),
        "\"a\\\"b\\\\c\\nd\\te\\u0001\""
    );
}

#[test]
fn no_template_field_is_left_unfilled() {
    let m = manifest();
    for kind in [Kind::Knd, Kind::Knc] {
        for provider in ["aws", "local"] {
            let s = settings(kind, provider);
            let d = render(&inputs(kind, &s, &m)).unwrap();
            for (path, f) in &d.files {
                let text = String::from_utf8_lossy(&f.content);
                assert!(!text.contains("{{"), "{provider} {path}:\n{text}");
            }
        }
    }
}
