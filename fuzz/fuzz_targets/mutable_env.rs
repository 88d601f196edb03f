//! Fuzz the mutable.env parser and merge: never a panic, and whatever is accepted renders to a
//! file that parses back to the same values and contains no character a shell would interpret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use vmagent::recv::mutable::{merge, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse(text) else { return };
    let Ok(out) = merge(&BTreeMap::new(), &parsed) else { return };
    for line in out.lines() {
        let (_, v) = line.split_once('=').expect("KEY='value'");
        let inner = &v[1..v.len() - 1];
        assert!(v.starts_with('\'') && v.ends_with('\''), "{line}");
        assert!(!inner.contains(['\'', '$', '`', '\\', ';', '"', '\n']), "{line}");
    }
    let again = parse(&out).expect("rendered output parses");
    for (k, v) in &parsed {
        assert_eq!(again.get(k), Some(v), "{k}");
    }
});
