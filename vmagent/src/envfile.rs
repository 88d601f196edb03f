//! Reading `KEY=value` env files as the node's shell scripts and systemd see them:
//! `KEY='single quoted'` (may span lines; `'\''` is a literal quote), `KEY="double quoted"`,
//! or `KEY=bare`. Comments and blank lines are skipped. Validation of values against the
//! mutable.env contract lives with the settings, not here.
//!
//! Hand-written rather than `shlex::split`: a file is a list of assignments with line numbers
//! for errors, not one command line, and shlex would accept shell syntax (`\` escapes outside
//! quotes, several words per line) that systemd's `EnvironmentFile=` reads differently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Parse env-file text. `origin` names the file in errors.
pub fn parse(text: &str, origin: &Path) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut out = BTreeMap::new();
    let mut chars = text.char_indices().peekable();
    let mut line = 1;
    let err = |line, message: String| EnvFileError::Syntax {
        path: origin.to_path_buf(),
        line,
        message,
    };
    while let Some(&(_, c)) = chars.peek() {
        // Start of a line.
        if c == '\n' {
            chars.next();
            line += 1;
            continue;
        }
        if c == '#' || c.is_whitespace() {
            // Comment or indentation: skip to the end of the line unless it is only leading
            // blanks before a key.
            if c == '#' {
                while chars.peek().is_some_and(|&(_, c)| c != '\n') {
                    chars.next();
                }
            } else {
                chars.next();
            }
            continue;
        }
        let start_line = line;
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c == '\n' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let key = key.trim().trim_start_matches("export ").trim().to_string();
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(err(start_line, format!("expected KEY=value, got {key:?}")));
        }
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(err(start_line, format!("invalid key {key:?}")));
        }
        let mut value = String::new();
        loop {
            match chars.peek().map(|&(_, c)| c) {
                None | Some('\n') => break,
                Some('\'') => {
                    chars.next();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            None => {
                                return Err(err(
                                    start_line,
                                    format!("unterminated single quote in {key}"),
                                ));
                            }
                            Some('\'') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                value.push(c);
                            }
                        }
                    }
                }
                Some('"') => {
                    chars.next();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            None => {
                                return Err(err(
                                    start_line,
                                    format!("unterminated double quote in {key}"),
                                ));
                            }
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some(c @ ('"' | '\\' | '$' | '`')) => value.push(c),
                                Some('\n') => line += 1,
                                Some(c) => {
                                    value.push('\\');
                                    value.push(c);
                                }
                                None => {}
                            },
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                value.push(c);
                            }
                        }
                    }
                }
                Some('\\') => {
                    chars.next();
                    if let Some((_, c)) = chars.next() {
                        value.push(c);
                    }
                }
                Some(c) if c.is_whitespace() => {
                    // Trailing blanks or a comment after the value.
                    while chars.peek().is_some_and(|&(_, c)| c != '\n') {
                        chars.next();
                    }
                }
                Some(c) => {
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Read and parse an env file; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<BTreeMap<String, String>>, EnvFileError> {
    match std::fs::read_to_string(path) {
        Ok(t) => parse(&t, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EnvFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> BTreeMap<String, String> {
        parse(t, Path::new("x.env")).unwrap()
    }

    #[test]
    fn single_quoted_values_as_user_data_writes_them() {
        let m = p(
            "INSTANCE_ID='i-123'\nIMMUTABLE_SSH_AUTHORIZED_KEYS='ssh-ed25519 AAA a@b\nssh-rsa BBB it'\\''s me'\nEMPTY=''\n",
        );
        assert_eq!(m["INSTANCE_ID"], "i-123");
        assert_eq!(
            m["IMMUTABLE_SSH_AUTHORIZED_KEYS"],
            "ssh-ed25519 AAA a@b\nssh-rsa BBB it's me"
        );
        assert_eq!(m["EMPTY"], "");
    }

    #[test]
    fn double_quotes_bare_values_comments_and_export() {
        let m = p("# c\n\nA=\"x \\\"y\\\" $z\"\nB=bare # trailing\nexport C=1\n  D='d'\nE=a=\n");
        assert_eq!(m["A"], "x \"y\" $z");
        assert_eq!(m["B"], "bare");
        assert_eq!(m["C"], "1");
        assert_eq!(m["D"], "d");
        assert_eq!(m["E"], "a=");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("A='ok'\nB='open\n", Path::new("/opt/u.env")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/opt/u.env:2: unterminated single quote in B"
        );
        let e = parse("A=1\nnot a pair\n", Path::new("u.env")).unwrap_err();
        assert!(
            e.to_string().starts_with("u.env:2: expected KEY=value"),
            "{e}"
        );
        let e = parse("1A=x\n", Path::new("u.env")).unwrap_err();
        assert!(e.to_string().contains("invalid key"), "{e}");
    }

    #[test]
    fn missing_file_is_none() {
        assert!(read(Path::new("/nonexistent/x.env")).unwrap().is_none());
    }
}
