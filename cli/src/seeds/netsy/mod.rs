//! Netsy data files (`*.netsy`): the snapshot format Netsy imports from `bootstrap.netsy`.
//!
//! A file is a sequence of length-delimited protobuf messages (an unsigned LEB128 varint byte
//! length, then the message):
//!
//! ```text
//! [len][FileHeader]                  always uncompressed
//! [len][Record] × records_count      raw (compression NONE) or one zstd stream (ZSTD) …
//! [len][FileFooter]                  … that also holds the footer
//! ```
//!
//! There is no magic number. Every message carries a CRC-64/XZ (Go's `crc64.ECMA`) of itself
//! serialised without its `crc` field; the footer also holds one running CRC over every record's
//! crc-less bytes and the first and last revision. The reader checks all of these against the
//! bytes as written (the `crc` field cut out of the raw message), so fields this code does not
//! know still count, as they do for Netsy. The writer emits prost's canonical encoding (fields
//! in tag order, defaults omitted), which is what Go's protobuf emits too.
//!
//! A bootstrap snapshot has extra rules, which Netsy enforces when it imports one: at least one
//! record, revisions exactly `1..=N`, `records_count == last_revision == N`, and the record at
//! revision 1 is Netsy's own `_netsy` key. [`renumber`] restores them after records were
//! dropped or reordered; [`check_bootstrap`] checks them.
//!
//! Inputs are untrusted (a seed comes from a deps server): every length is checked against the
//! bytes actually present before anything is sliced, nothing is allocated from a length
//! prefix, and the decompressed body is capped.

mod wire;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;

use prost::Message;

pub use wire::WireError;

/// Netsy's `netsy.FileKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FileKind {
    Unknown = 0,
    Snapshot = 1,
    Chunk = 2,
}

/// Netsy's `netsy.Compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Compression {
    Unknown = 0,
    None = 1,
    Zstd = 2,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        }
    }
}

/// `netsy.FileHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileHeader {
    #[prost(uint64, tag = "1")]
    pub crc: u64,
    #[prost(uint32, tag = "2")]
    pub schema_version: u32,
    #[prost(enumeration = "FileKind", tag = "3")]
    pub kind: i32,
    #[prost(enumeration = "Compression", tag = "4")]
    pub compression: i32,
    #[prost(int64, tag = "5")]
    pub records_count: i64,
    #[prost(string, tag = "6")]
    pub leader_id: String,
    #[prost(message, optional, tag = "7")]
    pub created_at: Option<Timestamp>,
}

/// `netsy.Record`: one key's state at one revision. Seed values are JSON Kubernetes objects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(uint64, tag = "1")]
    pub crc: u64,
    #[prost(int64, tag = "2")]
    pub revision: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub created: bool,
    #[prost(bool, tag = "5")]
    pub deleted: bool,
    #[prost(int64, tag = "6")]
    pub create_revision: i64,
    #[prost(int64, tag = "7")]
    pub prev_revision: i64,
    #[prost(int64, tag = "8")]
    pub version: i64,
    #[prost(int64, tag = "9")]
    pub lease: i64,
    #[prost(int64, tag = "10")]
    pub dek: i64,
    #[prost(bytes = "vec", tag = "11")]
    pub value: Vec<u8>,
    #[prost(message, optional, tag = "12")]
    pub created_at: Option<Timestamp>,
    #[prost(message, optional, tag = "13")]
    pub compacted_at: Option<Timestamp>,
    #[prost(string, tag = "14")]
    pub leader_id: String,
    #[prost(message, optional, tag = "15")]
    pub replicated_at: Option<Timestamp>,
}

/// `netsy.FileFooter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileFooter {
    #[prost(uint64, tag = "2")]
    pub records_crc: u64,
    #[prost(int64, tag = "3")]
    pub first_revision: i64,
    #[prost(int64, tag = "4")]
    pub last_revision: i64,
    #[prost(uint64, tag = "8")]
    pub crc: u64,
}

/// CRC-64/XZ: Go's `hash/crc64` with the ECMA table (reflected, init and xor-out all ones).
/// Slice-by-16 tables (32 KiB, built at compile time): every byte of a seed is hashed twice on
/// read and twice on write, and the byte-at-a-time table made the CRC most of
/// `cluster seed`'s time (see `tests/bench/cluster-seed`).
pub const CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);

/// The key Netsy writes first into every store; a bootstrap snapshot starts with it.
pub const NETSY_KEY: &[u8] = b"_netsy";

/// The largest file read (a seed is a few MB) and the largest decompressed body.
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// A parsed snapshot: the header as read, and the records in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub header: FileHeader,
    pub records: Vec<Record>,
}

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File,
    Header,
    /// 1-based position in the file, and the key when it was readable.
    Record {
        index: usize,
        key: Option<String>,
    },
    Footer,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File => f.write_str("file"),
            Place::Header => f.write_str("header"),
            Place::Record { index, key: None } => write!(f, "record {index}"),
            Place::Record {
                index,
                key: Some(k),
            } => write!(f, "record {index} (key {k:?})"),
            Place::Footer => f.write_str("footer"),
        }
    }
}

/// What is wrong at a [`Place`].
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read it: {0}")]
    Io(#[source] std::io::Error),
    #[error("larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("not a valid protobuf message: {0}")]
    Decode(#[source] prost::DecodeError),
    #[error("CRC mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Crc { stored: u64, computed: u64 },
    #[error("kind is {got}, expected {want}")]
    Kind { got: String, want: &'static str },
    #[error("compression is {0} (expected NONE or ZSTD)")]
    Compression(String),
    #[error("the zstd stream is corrupt: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("header says {header} records, the file holds {read}")]
    Count { header: i64, read: i64 },
    #[error("records CRC mismatch: footer says {stored:#018x}, records give {computed:#018x}")]
    RecordsCrc { stored: u64, computed: u64 },
    #[error("{which} revision is {stored} in the footer, {computed} in the records")]
    Revision {
        which: &'static str,
        stored: i64,
        computed: i64,
    },
    #[error("{0} bytes after the footer")]
    Trailing(usize),
    #[error("a bootstrap snapshot needs at least one record")]
    Empty,
    #[error("revision {got}, expected {want}: a bootstrap snapshot's revisions run 1, 2, … N")]
    NotContiguous { got: i64, want: i64 },
    #[error("the first record must be Netsy's own \"_netsy\" key")]
    NoNetsyFirst,
    #[error("it holds no \"_netsy\" record, which every Netsy store starts with")]
    NoNetsyKey,
}

/// A bad snapshot file: which file, where in it, and what.
#[derive(Debug, thiserror::Error)]
#[error("Netsy snapshot {file}: {place}: {problem}")]
pub struct NetsyError {
    pub file: String,
    pub place: Place,
    #[source]
    pub problem: Problem,
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Reads a snapshot file (at most [`MAX_FILE_BYTES`]).
pub fn read_file(path: &std::path::Path) -> Result<Snapshot, NetsyError> {
    decode(&read_bytes(path)?, &path.display().to_string())
}

/// A snapshot file's bytes (at most [`MAX_FILE_BYTES`]), read into one buffer of the file's
/// size.
pub fn read_bytes(path: &std::path::Path) -> Result<Vec<u8>, NetsyError> {
    let err = |problem| NetsyError {
        file: path.display().to_string(),
        place: Place::File,
        problem,
    };
    let f = std::fs::File::open(path).map_err(|e| err(Problem::Io(e)))?;
    let size = f.metadata().map_or(0, |m| m.len()).min(MAX_FILE_BYTES);
    // One spare byte, so reading to the end of a file of the size seen needs no regrowth.
    let mut bytes = Vec::with_capacity(size as usize + 1);
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(Problem::Io(e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(Problem::TooLarge {
            max: MAX_FILE_BYTES,
        }));
    }
    Ok(bytes)
}

/// Parses a snapshot from bytes, checking kind, compression, every CRC, the record count and
/// the footer's revisions.
pub fn decode(bytes: &[u8], name: &str) -> Result<Snapshot, NetsyError> {
    let at = |place: Place| {
        let file = name.to_string();
        move |problem: Problem| NetsyError {
            file: file.clone(),
            place: place.clone(),
            problem,
        }
    };
    let mut input = bytes;
    let raw = wire::next_delimited(&mut input).map_err(|e| at(Place::Header)(e.into()))?;
    let header = FileHeader::decode(raw).map_err(|e| at(Place::Header)(Problem::Decode(e)))?;
    check_crc(raw, 1, header.crc).map_err(at(Place::Header))?;
    if header.kind != FileKind::Snapshot as i32 {
        return Err(at(Place::Header)(Problem::Kind {
            got: enum_name::<FileKind>(header.kind),
            want: "SNAPSHOT",
        }));
    }
    let body: std::borrow::Cow<[u8]> = match Compression::try_from(header.compression) {
        Ok(Compression::None) => input.into(),
        Ok(Compression::Zstd) => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(input)
                .map_err(|e| at(Place::File)(Problem::Zstd(e)))?
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| at(Place::File)(Problem::Zstd(e)))?;
            if out.len() as u64 > MAX_FILE_BYTES {
                return Err(at(Place::File)(Problem::TooLarge {
                    max: MAX_FILE_BYTES,
                }));
            }
            out.into()
        }
        _ => {
            return Err(at(Place::Header)(Problem::Compression(enum_name::<
                Compression,
            >(
                header.compression,
            ))));
        }
    };
    let mut input: &[u8] = &body;
    let count = header.records_count.max(0);
    let mut records = Vec::new();
    let mut records_crc = CRC64.digest();
    let mut first = 0i64;
    for i in 0..count {
        let place = Place::Record {
            index: i as usize + 1,
            key: None,
        };
        let raw = wire::next_delimited(&mut input).map_err(|e| at(place.clone())(e.into()))?;
        if input.is_empty() {
            // This was the last message, so the footer: the header promised more records.
            return Err(at(Place::Header)(Problem::Count {
                header: header.records_count,
                read: i,
            }));
        }
        let rec = Record::decode(raw).map_err(|e| at(place.clone())(Problem::Decode(e)))?;
        let place = Place::Record {
            index: i as usize + 1,
            key: Some(key_text(&rec.key)),
        };
        let zeroed = wire::without_field(raw, 1).map_err(|e| at(place.clone())(e.into()))?;
        let computed = CRC64.checksum(&zeroed);
        if computed != rec.crc {
            return Err(at(place)(Problem::Crc {
                stored: rec.crc,
                computed,
            }));
        }
        records_crc.update(&zeroed);
        if first == 0 {
            first = rec.revision;
        }
        records.push(rec);
    }
    let raw = wire::next_delimited(&mut input).map_err(|e| at(Place::Footer)(e.into()))?;
    if !input.is_empty() {
        // More messages after the one in the footer's place: the header promised too few.
        let more = count_rest(input);
        return Err(if more > 0 {
            at(Place::Header)(Problem::Count {
                header: header.records_count,
                read: count + more,
            })
        } else {
            at(Place::File)(Problem::Trailing(input.len()))
        });
    }
    let footer = FileFooter::decode(raw).map_err(|e| at(Place::Footer)(Problem::Decode(e)))?;
    check_crc(raw, 8, footer.crc).map_err(at(Place::Footer))?;
    let computed = records_crc.finalize();
    if computed != footer.records_crc {
        return Err(at(Place::Footer)(Problem::RecordsCrc {
            stored: footer.records_crc,
            computed,
        }));
    }
    let last = records.last().map_or(0, |r| r.revision);
    for (which, stored, computed) in [
        ("first", footer.first_revision, first),
        ("last", footer.last_revision, last),
    ] {
        if stored != computed {
            return Err(at(Place::Footer)(Problem::Revision {
                which,
                stored,
                computed,
            }));
        }
    }
    Ok(Snapshot { header, records })
}

/// How many delimited messages `input` holds exactly (0 when it is not a sequence of them);
/// for an error message only.
fn count_rest(mut input: &[u8]) -> i64 {
    let mut n = 0;
    while !input.is_empty() {
        if wire::next_delimited(&mut input).is_err() {
            return 0;
        }
        n += 1;
    }
    n
}

fn enum_name<E: TryFrom<i32> + fmt::Debug>(v: i32) -> String {
    match E::try_from(v) {
        Ok(e) => format!("{e:?}").to_uppercase(),
        Err(_) => format!("unknown value {v}"),
    }
}

fn check_crc(raw: &[u8], field: u32, stored: u64) -> Result<(), Problem> {
    let computed = CRC64.checksum(&wire::without_field(raw, field)?);
    if computed == stored {
        Ok(())
    } else {
        Err(Problem::Crc { stored, computed })
    }
}

/// Writes an uncompressed SNAPSHOT file of `records` (their CRCs are computed here).
pub fn encode(leader_id: &str, created_at: Option<Timestamp>, records: &[Record]) -> Vec<u8> {
    let mut header = FileHeader {
        crc: 0,
        schema_version: 0,
        kind: FileKind::Snapshot as i32,
        compression: Compression::None as i32,
        records_count: records.len() as i64,
        leader_id: leader_id.to_string(),
        created_at,
    };
    header.crc = CRC64.checksum(&header.encode_to_vec());
    let size: usize = records
        .iter()
        .map(|r| r.encoded_len() + r.key.len() + 32)
        .sum();
    let mut out = Vec::with_capacity(size + 128);
    // Writing into a Vec cannot run out of room.
    let _ = header.encode_length_delimited(&mut out);
    let mut records_crc = CRC64.digest();
    let mut first = 0i64;
    let mut full = Vec::new();
    let mut tag = Vec::with_capacity(11);
    for r in records {
        // The record as prost writes it, less its `crc` (field 1, written first when set):
        // the bytes the CRCs cover, found without copying the record.
        full.clear();
        let _ = r.encode(&mut full);
        let zeroed = wire::without_field(&full, 1).unwrap_or_default();
        records_crc.update(&zeroed);
        let crc = CRC64.checksum(&zeroed);
        // What prost writes for the record with this crc: field 1 first (omitted when zero,
        // as proto3 omits defaults), then the rest as above.
        tag.clear();
        if crc != 0 {
            tag.push(0x08);
            prost::encoding::encode_varint(crc, &mut tag);
        }
        prost::encoding::encode_varint((tag.len() + zeroed.len()) as u64, &mut out);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&zeroed);
        if first == 0 {
            first = r.revision;
        }
    }
    let mut footer = FileFooter {
        records_crc: records_crc.finalize(),
        first_revision: first,
        last_revision: records.last().map_or(0, |r| r.revision),
        crc: 0,
    };
    footer.crc = CRC64.checksum(&footer.encode_to_vec());
    let _ = footer.encode_length_delimited(&mut out);
    out
}

/// Restores the bootstrap rules after records were dropped or reordered: `_netsy` first, then
/// the others in their order, revisions `1..=N`, each record its own creation
/// (`create_revision = revision`, no previous revision).
pub fn renumber(records: &mut Vec<Record>, file: &str) -> Result<(), NetsyError> {
    let pos = records
        .iter()
        .position(|r| r.key == NETSY_KEY)
        .ok_or_else(|| NetsyError {
            file: file.to_string(),
            place: Place::File,
            problem: Problem::NoNetsyKey,
        })?;
    let netsy = records.remove(pos);
    records.insert(0, netsy);
    for (i, r) in records.iter_mut().enumerate() {
        let rev = i as i64 + 1;
        r.revision = rev;
        r.create_revision = rev;
        r.prev_revision = 0;
        r.created = true;
        r.deleted = false;
    }
    Ok(())
}

/// The rules Netsy applies before importing a bootstrap snapshot (beyond [`decode`]'s checks).
pub fn check_bootstrap(s: &Snapshot, file: &str) -> Result<(), NetsyError> {
    check_bootstrap_records(&s.records, file)
}

/// [`check_bootstrap`] on records about to be written by [`encode`] (whose CRCs, count and
/// footer are right by construction).
pub fn check_bootstrap_records(records: &[Record], file: &str) -> Result<(), NetsyError> {
    let err = |place, problem| NetsyError {
        file: file.to_string(),
        place,
        problem,
    };
    if records.is_empty() {
        return Err(err(Place::File, Problem::Empty));
    }
    for (i, r) in records.iter().enumerate() {
        let want = i as i64 + 1;
        let place = Place::Record {
            index: i + 1,
            key: Some(key_text(&r.key)),
        };
        if r.revision != want {
            return Err(err(
                place,
                Problem::NotContiguous {
                    got: r.revision,
                    want,
                },
            ));
        }
        if i == 0 && r.key != NETSY_KEY {
            return Err(err(place, Problem::NoNetsyFirst));
        }
    }
    Ok(())
}
