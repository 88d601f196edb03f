//! Snapshots written by `podplane::seeds::netsy` read back by an independent reader: Python's
//! protobuf runtime with `fixtures/netsy/netsy.proto` compiled by grpcio-tools, and the `crc`
//! package for CRC-64/XZ (`fixtures/netsy/read_netsy.py`).
//!
//! python3 with protobuf, grpcio-tools and crc is optional locally (SKIP) and required under
//! `PODPLANE_REQUIRE_TOOLS=1` (tests/run-all installs them into its venv).

use std::path::{Path, PathBuf};
use std::process::Command;

use podplane::seeds::netsy::{self, Record, Timestamp};
use podplane_testkit::tools;
use serde_json::Value;

fn reader() -> Option<PathBuf> {
    tools::available(
        "python3",
        &["-c", "import google.protobuf, grpc_tools, crc"],
    )
    .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netsy/read_netsy.py"))
}

fn read_back(script: &Path, file: &Path) -> Value {
    let out = Command::new("python3")
        .arg(script)
        .arg(file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the Python reader refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the reader")
}

fn rec(rev: i64, key: &str, value: &str) -> Record {
    Record {
        revision: rev,
        key: key.as_bytes().to_vec(),
        created: true,
        create_revision: rev,
        version: 1,
        value: value.as_bytes().to_vec(),
        leader_id: "seed".into(),
        created_at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        ..Default::default()
    }
}

#[test]
fn python_computes_the_crc64_xz_check_value() {
    let Some(script) = reader() else { return };
    let out = Command::new("python3")
        .arg(&script)
        .arg("--check-crc")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"], "0x995dc9bbdf1939fa");
    assert_eq!(netsy::CRC64.checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
}

#[test]
fn written_snapshots_read_back_in_python() {
    let Some(script) = reader() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Records out of order with a gap (as after dropping one): renumbered before writing.
    let mut records = vec![
        rec(
            7,
            "/registry/namespaces/kube-system",
            r#"{"kind":"Namespace","é":"ü"}"#,
        ),
        rec(1, "_netsy", ""),
        rec(9, "/registry/configmaps/default/big", &"x".repeat(70_000)),
    ];
    netsy::renumber(&mut records, "test").unwrap();
    let bytes = netsy::encode(
        "my-cluster",
        Some(Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        &records,
    );
    let file = dir.path().join("bootstrap.netsy");
    std::fs::write(&file, &bytes).unwrap();
    let v = read_back(&script, &file);
    assert_eq!(v["leader_id"], "my-cluster");
    assert_eq!(v["records_count"], 3);
    assert_eq!(v["created_at"], 1_800_000_000);
    assert_eq!(v["bootstrap_ok"], true);
    let recs = v["records"].as_array().unwrap();
    let keys: Vec<_> = recs.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "_netsy",
            "/registry/namespaces/kube-system",
            "/registry/configmaps/default/big"
        ]
    );
    assert_eq!(recs[1]["value"], r#"{"kind":"Namespace","é":"ü"}"#);
    assert_eq!(recs[2]["revision"], 3);
    assert_eq!(recs[2]["create_revision"], 3);
    assert_eq!(recs[2]["value"].as_str().unwrap().len(), 70_000);
    // And the Rust reader agrees.
    let s = netsy::read_file(&file).unwrap();
    netsy::check_bootstrap(&s, "bootstrap.netsy").unwrap();
}

#[test]
fn python_refuses_a_corrupted_snapshot() {
    let Some(script) = reader() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = netsy::encode(
        "c",
        None,
        &[rec(1, "_netsy", ""), rec(2, "/k", "{\"v\":1}")],
    );
    let pos = bytes.windows(3).position(|w| w == b"\"v\"").unwrap();
    bytes[pos + 1] = b'w';
    let file = dir.path().join("bad.netsy");
    std::fs::write(&file, &bytes).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("record 2 CRC mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = netsy::read_file(&file).unwrap_err().to_string();
    assert!(e.contains("bad.netsy") && e.contains("record 2"), "{e}");
}
