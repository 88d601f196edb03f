use super::*;

pub(crate) fn rec(rev: i64, key: &str, value: &str) -> Record {
    Record {
        revision: rev,
        key: key.as_bytes().to_vec(),
        created: true,
        create_revision: rev,
        version: 1,
        value: value.as_bytes().to_vec(),
        leader_id: "seed".into(),
        ..Default::default()
    }
}

fn sample() -> Vec<Record> {
    vec![
        rec(1, "_netsy", ""),
        rec(2, "/registry/namespaces/default", r#"{"kind":"Namespace"}"#),
        rec(
            3,
            "/registry/services/specs/default/kubernetes",
            r#"{"kind":"Service"}"#,
        ),
    ]
}

fn problem(bytes: &[u8]) -> NetsyError {
    decode(bytes, "t.netsy").expect_err("must be refused")
}

#[test]
fn crc64_xz_check_value() {
    assert_eq!(CRC64.checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
}

#[test]
fn round_trip_and_bootstrap_rules() {
    let bytes = encode(
        "cluster-1",
        Some(Timestamp {
            seconds: 5,
            nanos: 6,
        }),
        &sample(),
    );
    let s = decode(&bytes, "t.netsy").unwrap();
    assert_eq!(s.header.leader_id, "cluster-1");
    assert_eq!(s.header.records_count, 3);
    assert_eq!(s.header.compression, Compression::None as i32);
    assert_eq!(s.records.len(), 3);
    assert_eq!(s.records[1].key, b"/registry/namespaces/default");
    check_bootstrap(&s, "t.netsy").unwrap();
    // Writing what was read gives the same bytes.
    assert_eq!(encode("cluster-1", s.header.created_at, &s.records), bytes);
}

#[test]
fn zstd_bodies_are_read() {
    let plain = encode("x", None, &sample());
    let mut input = &plain[..];
    let header = wire::next_delimited(&mut input).unwrap();
    let mut h = FileHeader::decode(header).unwrap();
    h.compression = Compression::Zstd as i32;
    h.crc = 0;
    h.crc = CRC64.checksum(&h.encode_to_vec());
    let mut z = Vec::new();
    h.encode_length_delimited(&mut z).unwrap();
    z.extend(zstd::encode_all(input, 3).unwrap());
    let s = decode(&z, "z.netsy").unwrap();
    assert_eq!(s.records, decode(&plain, "p").unwrap().records);
    // A corrupt zstd stream names the problem.
    let n = z.len();
    z[n - 3] ^= 0xff;
    let e = problem(&z);
    assert!(
        matches!(
            e.problem,
            Problem::Zstd(_) | Problem::Crc { .. } | Problem::Wire(_) | Problem::Decode(_)
        ),
        "{e}"
    );
}

#[test]
fn bad_crcs_name_the_record() {
    let mut recs = sample();
    recs[1].value = b"{\"a\":1}".to_vec();
    let bytes = encode("x", None, &recs);
    // Flip one byte of the second record's value.
    let pos = bytes.windows(7).position(|w| w == b"{\"a\":1}").unwrap();
    let mut bad = bytes.clone();
    bad[pos + 5] = b'2';
    let e = problem(&bad);
    assert!(matches!(e.problem, Problem::Crc { .. }), "{e}");
    assert_eq!(
        e.place,
        Place::Record {
            index: 2,
            key: Some("/registry/namespaces/default".into())
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("t.netsy") && text.contains("record 2"),
        "{text}"
    );
}

#[test]
fn unknown_fields_count_in_the_crc() {
    // A record with an extra field 20 (varint 7), CRC computed by hand over the bytes without
    // field 1, as a newer writer would produce.
    let mut r = rec(1, "_netsy", "");
    r.crc = 0;
    let mut body = r.encode_to_vec();
    body.extend([0xa0, 0x01, 0x07]);
    let crc = CRC64.checksum(&body);
    let mut with_crc = vec![0x08];
    prost::encoding::encode_varint(crc, &mut with_crc);
    with_crc.extend(&body);
    let header = FileHeader {
        kind: 1,
        compression: 1,
        records_count: 1,
        ..Default::default()
    };
    let mut h = header.clone();
    h.crc = CRC64.checksum(&header.encode_to_vec());
    let mut file = Vec::new();
    h.encode_length_delimited(&mut file).unwrap();
    prost::encoding::encode_varint(with_crc.len() as u64, &mut file);
    file.extend(&with_crc);
    let mut f = FileFooter {
        records_crc: CRC64.checksum(&body),
        first_revision: 1,
        last_revision: 1,
        crc: 0,
    };
    f.crc = CRC64.checksum(&f.encode_to_vec());
    f.encode_length_delimited(&mut file).unwrap();
    let s = decode(&file, "u.netsy").unwrap();
    assert_eq!(s.records[0].key, b"_netsy");
}

#[test]
fn header_problems() {
    let good = encode("x", None, &sample());
    // Not a Netsy file at all (there is no magic: the header fails to parse).
    let e = problem(b"PK\x03\x04 this is a zip");
    assert_eq!(e.place, Place::Header, "{e}");
    // A huge length prefix is refused before anything is allocated.
    let mut huge = Vec::new();
    prost::encoding::encode_varint(u64::MAX >> 1, &mut huge);
    huge.extend(b"abc");
    let e = problem(&huge);
    assert!(
        matches!(e.problem, Problem::Wire(WireError::TooLong { .. })),
        "{e}"
    );
    // Kind CHUNK.
    for (kind, compression, want) in [(2, 1, "kind is CHUNK"), (1, 0, "compression is UNKNOWN")] {
        let mut h = FileHeader {
            kind,
            compression,
            ..Default::default()
        };
        h.crc = CRC64.checksum(&h.encode_to_vec());
        let mut b = Vec::new();
        h.encode_length_delimited(&mut b).unwrap();
        let e = problem(&b).to_string();
        assert!(e.contains(want), "{e}");
    }
    // A header CRC off by one.
    let mut input = &good[..];
    let raw = wire::next_delimited(&mut input).unwrap();
    let mut h = FileHeader::decode(raw).unwrap();
    h.crc ^= 1;
    let mut b = Vec::new();
    h.encode_length_delimited(&mut b).unwrap();
    b.extend(input);
    let e = problem(&b);
    assert!(
        matches!(e.problem, Problem::Crc { .. }) && e.place == Place::Header,
        "{e}"
    );
}

fn with_count(records: &[Record], count: i64) -> Vec<u8> {
    let good = encode("x", None, records);
    let mut input = &good[..];
    let raw = wire::next_delimited(&mut input).unwrap();
    let mut h = FileHeader::decode(raw).unwrap();
    h.records_count = count;
    h.crc = 0;
    h.crc = CRC64.checksum(&h.encode_to_vec());
    let mut b = Vec::new();
    h.encode_length_delimited(&mut b).unwrap();
    b.extend(input);
    b
}

#[test]
fn count_mismatches() {
    let e = problem(&with_count(&sample(), 5)).to_string();
    assert!(e.contains("header says 5 records, the file holds 3"), "{e}");
    let e = problem(&with_count(&sample(), 1)).to_string();
    assert!(e.contains("header says 1 records, the file holds 3"), "{e}");
    // A huge count allocates nothing up front.
    let e = problem(&with_count(&sample(), i64::MAX)).to_string();
    assert!(e.contains("the file holds 3"), "{e}");
}

#[test]
fn footer_revisions_and_trailing_bytes() {
    let mut b = encode("x", None, &sample());
    b.push(0x00);
    // A zero-length message after the footer is one more message: the count is off.
    assert!(decode(&b, "t").is_err());
    let mut b = encode("x", None, &sample());
    b.push(0x85);
    let e = problem(&b).to_string();
    assert!(e.contains("bytes after the footer"), "{e}");
}

#[test]
fn every_truncation_is_an_error() {
    let good = encode("x", Some(Timestamp::now()), &sample());
    for n in 0..good.len() {
        assert!(
            decode(&good[..n], "t").is_err(),
            "accepted {n} of {} bytes",
            good.len()
        );
    }
}

#[test]
fn mutations_never_panic() {
    // A fixed-seed xorshift: every run mutates the same way.
    let good = encode("x", Some(Timestamp::now()), &sample());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..=(next() % 4) {
            let i = (next() as usize) % b.len();
            match next() % 3 {
                0 => b[i] = next() as u8,
                1 => b[i] ^= 1 << (next() % 8),
                _ => {
                    b.insert(i, next() as u8);
                }
            }
        }
        if decode(&b, "m").is_ok() {
            accepted += 1;
        }
    }
    // CRCs catch nearly every change; a mutation that only touches a CRC-free spot (none
    // exist) or cancels out is rare.
    assert!(accepted < 20, "{accepted} mutated files accepted");
}

#[test]
fn renumbering_restores_the_rules() {
    let mut recs = vec![
        rec(4, "/registry/a", "{}"),
        rec(1, "_netsy", ""),
        rec(9, "/registry/b", "{}"),
    ];
    renumber(&mut recs, "s").unwrap();
    let keys: Vec<_> = recs.iter().map(|r| key_text(&r.key)).collect();
    assert_eq!(keys, ["_netsy", "/registry/a", "/registry/b"]);
    assert_eq!(
        recs.iter()
            .map(|r| (r.revision, r.create_revision))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 3)]
    );
    let s = decode(&encode("c", None, &recs), "s").unwrap();
    check_bootstrap(&s, "s").unwrap();

    let mut gap = sample();
    gap.remove(1);
    let s = decode(&encode("c", None, &gap), "g").unwrap();
    let e = check_bootstrap(&s, "g").unwrap_err().to_string();
    assert!(e.contains("revision 3, expected 2"), "{e}");

    let mut no_netsy = sample();
    no_netsy.remove(0);
    let e = renumber(&mut no_netsy, "n").unwrap_err().to_string();
    assert!(e.contains("no \"_netsy\" record"), "{e}");
    let e = check_bootstrap(
        &Snapshot {
            header: FileHeader::default(),
            records: vec![],
        },
        "e",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("at least one record"), "{e}");
}

#[test]
fn records_are_written_as_prost_writes_them_with_their_crc() {
    // The encoder composes each record from its crc-less bytes; the result must be exactly
    // prost's own encoding of the record with that crc set, whatever crc a record came with.
    let mut recs = sample();
    recs[1].crc = 0xdead_beef;
    let bytes = encode("c", None, &recs);
    let mut input = &bytes[..];
    wire::next_delimited(&mut input).unwrap();
    for r in &recs {
        let raw = wire::next_delimited(&mut input).unwrap();
        let mut want = r.clone();
        want.crc = 0;
        want.crc = CRC64.checksum(&want.encode_to_vec());
        assert_ne!(want.crc, 0);
        assert_eq!(raw, want.encode_to_vec().as_slice(), "record {:?}", r.key);
    }
}
