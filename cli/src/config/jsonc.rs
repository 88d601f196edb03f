//! JSONC → JSON: blanks out `//` and `/* */` comments and trailing commas.
//!
//! Removed bytes are replaced by spaces (newlines inside block comments are kept), so the
//! line and column numbers that `serde_json` reports still point into the original file.
//! Comment markers inside strings are left alone, and backslash escapes inside strings are
//! honoured (`"a\"//b"` is one string).

use thiserror::Error;

/// A JSONC construct that cannot be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsoncError {
    /// A `/*` without its closing `*/`.
    #[error("unterminated /* comment starting at line {line} column {column}")]
    UnterminatedComment { line: usize, column: usize },
}

/// Returns `input` as plain JSON, or the first construct that cannot be converted.
pub fn to_json(input: &str) -> Result<String, JsoncError> {
    let mut bytes = input.as_bytes().to_vec();
    strip_comments(&mut bytes)?;
    strip_trailing_commas(&mut bytes);
    // Only ASCII bytes were overwritten with ASCII spaces, and whole comments (including any
    // multi-byte characters in them) were blanked byte by byte, so the buffer is still UTF-8.
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
}

/// Position (1-based line and byte column) of byte `offset`.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

fn strip_comments(bytes: &mut [u8]) -> Result<(), JsoncError> {
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1, // skip the escaped byte
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => {
                in_string = true;
                i += 1;
            }
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    if bytes[i] != b'\r' {
                        bytes[i] = b' ';
                    }
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                let start = i;
                let Some(len) = bytes[i + 2..].windows(2).position(|w| w == b"*/") else {
                    let (line, column) = position(bytes, start);
                    return Err(JsoncError::UnterminatedComment { line, column });
                };
                let end = i + 2 + len + 2;
                for byte in &mut bytes[start..end] {
                    if *byte != b'\n' && *byte != b'\r' {
                        *byte = b' ';
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Blanks every comma whose next non-whitespace byte closes an object or array.
/// Runs after [`strip_comments`], so comments between the comma and the bracket are spaces.
fn strip_trailing_commas(bytes: &mut [u8]) {
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..]
                .iter()
                .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_line_and_block_comments() {
        let out = to_json("{ // c\n \"a\": /* x\ny */ 1 }").unwrap();
        assert_eq!(out, "{     \n \"a\":     \n     1 }");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn keeps_comment_markers_inside_strings() {
        let src = r#"{"a": "http://x/*y*/", "b": "q\"//not a comment", "c": "\\"} // end"#;
        let v: serde_json::Value = serde_json::from_str(&to_json(src).unwrap()).unwrap();
        assert_eq!(v["a"], "http://x/*y*/");
        assert_eq!(v["b"], "q\"//not a comment");
        assert_eq!(v["c"], "\\");
    }

    #[test]
    fn removes_trailing_commas_even_before_comments() {
        let src = "{\"a\": [1, 2, /* last */ ], \"b\": {\"c\": 1, // trailing\n},}";
        let v: serde_json::Value = serde_json::from_str(&to_json(src).unwrap()).unwrap();
        assert_eq!(v["a"], serde_json::json!([1, 2]));
        assert_eq!(v["b"]["c"], 1);
    }

    #[test]
    fn comma_inside_string_before_bracket_is_kept() {
        let v: serde_json::Value = serde_json::from_str(&to_json(r#"["a,]"]"#).unwrap()).unwrap();
        assert_eq!(v[0], "a,]");
    }

    #[test]
    fn multibyte_text_in_comments_stays_valid() {
        let out = to_json("{\"a\": 1 /* héllo ✓ */}").unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }

    #[test]
    fn unterminated_block_comment_is_an_error() {
        assert_eq!(
            to_json("{\n  /* open").unwrap_err().to_string(),
            "unterminated /* comment starting at line 2 column 3"
        );
    }
}
