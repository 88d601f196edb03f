//! Names a manifest puts into paths (a dependency key, a version, the file name at the end of
//! a URL): [`check_name`] accepts only one safe path component, and [`NameError`] says why a
//! name is refused.

/// Longest key, version or file name a manifest may use (bytes).
pub const MAX_NAME_LEN: usize = 128;

/// Why a manifest-derived name (a dependency key, a version, the file name at the end of a URL)
/// cannot be used as a single path component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_NAME_LEN} bytes ({0})")]
    TooLong(usize),
    #[error("is \".\" or \"..\" or starts with \".\"")]
    Dot,
    #[error("contains {0:?} (no \"/\", \"\\\", \"?\", \"#\", white space or control characters)")]
    BadChar(char),
    #[error("contains a %-escape {0:?} that stands for a path separator or a dot")]
    Escape(String),
}

/// Check that `s` is one safe path component: 1 to [`MAX_NAME_LEN`] bytes, not `.` or `..` and
/// no leading dot, no `/`, `\`, `?`, `#`, white space or control characters, and no `%`-escape
/// of a dot, slash or backslash (a URL built from it must not gain a dot segment either).
pub fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(s.len()));
    }
    if s.starts_with('.') {
        return Err(NameError::Dot);
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(NameError::BadChar(c));
    }
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        if let Some(hex) = bytes.get(i + 1..i + 3)
            && matches!(
                hex.to_ascii_lowercase().as_slice(),
                b"2e" | b"2f" | b"5c" | b"00"
            )
        {
            return Err(NameError::Escape(s[i..i + 3].to_string()));
        }
    }
    Ok(())
}
