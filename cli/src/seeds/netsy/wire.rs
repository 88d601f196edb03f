//! The few protobuf wire-format steps prost does not offer on raw bytes: split off one
//! length-delimited message without trusting its length, and drop one field from a message's
//! bytes (its `crc`) while keeping every other field as written, unknown ones included, so
//! a CRC is checked over exactly what the writer hashed.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated: the data ends inside a message or its length prefix")]
    Truncated,
    #[error("length prefix {len} is larger than the {left} bytes left")]
    TooLong { len: u64, left: usize },
    #[error("malformed varint")]
    BadVarint,
    #[error("unsupported wire type {0}")]
    WireType(u8),
}

/// Reads an unsigned LEB128 varint (at most 10 bytes).
pub fn varint(input: &mut &[u8]) -> Result<u64, WireError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some((&b, rest)) = input.split_first() else {
            return Err(WireError::Truncated);
        };
        *input = rest;
        if i == 9 && b > 1 {
            return Err(WireError::BadVarint);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError::BadVarint)
}

/// Takes `n` bytes off `input`, checking first that they are there.
fn take<'a>(input: &mut &'a [u8], n: u64) -> Result<&'a [u8], WireError> {
    let left = input.len();
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n <= left)
        .ok_or(WireError::TooLong { len: n, left })?;
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Splits the next `[varint len][message]` off `input`: a slice of the input, never a buffer
/// sized by the (untrusted) length.
pub fn next_delimited<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let len = varint(input)?;
    take(input, len)
}

/// `msg` without its top-level fields numbered `field` (borrowed when there are none).
pub fn without_field(msg: &[u8], field: u32) -> Result<Cow<'_, [u8]>, WireError> {
    let mut input = msg;
    // Fields dropped at the very start need no copy (Go and prost put `crc` = 1 first).
    let mut skip = 0;
    let mut out: Option<Vec<u8>> = None;
    while !input.is_empty() {
        let start = msg.len() - input.len();
        let key = varint(&mut input)?;
        match key & 7 {
            0 => {
                varint(&mut input)?;
            }
            1 => {
                take(&mut input, 8)?;
            }
            2 => {
                let len = varint(&mut input)?;
                take(&mut input, len)?;
            }
            5 => {
                take(&mut input, 4)?;
            }
            t => return Err(WireError::WireType(t as u8)),
        }
        let end = msg.len() - input.len();
        if key >> 3 == u64::from(field) {
            if start == skip && out.is_none() {
                skip = end;
            } else {
                out.get_or_insert_with(|| msg[skip..start].to_vec());
            }
        } else if let Some(o) = out.as_mut() {
            o.extend_from_slice(&msg[start..end]);
        }
    }
    Ok(match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(&msg[skip..]),
    })
}
