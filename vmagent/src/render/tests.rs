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
