//! Fuzz the mutable.env parser and merge on raw bytes, as nstance-agent delivers them (invalid
//! UTF-8, a BOM, CRLF): never a panic; bytes that are not UTF-8 are refused with a line inside
//! the input; whatever is accepted renders to a file that parses back to the same values and
//! contains no character a shell would interpret. The same bytes also go through the PEM check
//! of delivered certificates and keys, which must never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use vmagent::recv::mutable::{MutableError, merge, parse, parse_bytes};
use vmagent::recv::pem::{self, PemKind};

fuzz_target!(|data: &[u8]| {
    for kind in [PemKind::Certificates, PemKind::PublicKey, PemKind::PrivateKey] {
        let _ = pem::check(kind, data);
    }
    let parsed = match parse_bytes(data) {
        Ok(p) => p,
        Err(MutableError::NotUtf8 { line, column }) => {
            assert!(std::str::from_utf8(data).is_err());
            assert!(line >= 1 && line <= data.split(|b| *b == b'\n').count(), "{line}");
            assert!(column >= 1, "{column}");
            return;
        }
        Err(_) => return,
    };
    let text = std::str::from_utf8(data).expect("accepted bytes are UTF-8");
    assert_eq!(parse(text).as_ref(), Ok(&parsed));
    let Ok(out) = merge(&BTreeMap::new(), &parsed) else { return };
    for line in out.lines() {
        let (_, v) = line.split_once('=').expect("KEY='value'");
        assert!(v.starts_with('\'') && v.ends_with('\''), "{line}");
        let inner = &v[1..v.len() - 1];
        assert!(!inner.contains(['\'', '$', '`', '\\', ';', '"', '\n', '\r']), "{line}");
    }
    let again = parse(&out).expect("rendered output parses");
    for (k, v) in &parsed {
        assert_eq!(again.get(k), Some(v), "{k}");
    }
});
