//! A check that a delivered certificate or key is PEM of the kind its name promises.
//!
//! vmagent never uses the keys or certificates itself: it copies them for the services that do.
//! So all it needs is to refuse what is plainly not the promised file (garbage, a truncated
//! transfer, a public key delivered as a private one) before it lands where a service will choke
//! on it. That is a few dozen lines over the `base64` crate vmagent already has; a PEM or X.509
//! crate would add dependencies to the root agent for parsing it does not need.
//!
//! Accepted, following RFC 7468: explanatory text outside the blocks; `BEGIN`/`END` lines with
//! the same label; a body of standard base64 (with padding) over any number of lines, spaces and
//! CRLF endings ignored; the decoded body a DER SEQUENCE (every certificate and key format here
//! starts with one). Headers inside a block (legacy encrypted keys) are refused: no service here
//! can use an encrypted key.

use base64::Engine;

/// What a delivered name must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    /// `.crt`: one or more `CERTIFICATE` blocks (a chain or a CA bundle).
    Certificates,
    /// `.pub`: one `PUBLIC KEY` block.
    PublicKey,
    /// `.key`: one private key block (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
    PrivateKey,
}

impl PemKind {
    /// The kind a delivered name must hold, by its extension.
    pub fn for_name(name: &str) -> Option<PemKind> {
        if name.ends_with(".crt") {
            Some(PemKind::Certificates)
        } else if name.ends_with(".pub") {
            Some(PemKind::PublicKey)
        } else if name.ends_with(".key") {
            Some(PemKind::PrivateKey)
        } else {
            None
        }
    }

    fn labels(self) -> &'static [&'static str] {
        match self {
            PemKind::Certificates => &["CERTIFICATE"],
            PemKind::PublicKey => &["PUBLIC KEY"],
            PemKind::PrivateKey => &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
        }
    }

    fn expected(self) -> &'static str {
        match self {
            PemKind::Certificates => "one or more CERTIFICATE blocks",
            PemKind::PublicKey => "one PUBLIC KEY block",
            PemKind::PrivateKey => {
                "one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block (unencrypted)"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("byte {offset} is not ASCII: not a PEM file (expected {expected})")]
    NotAscii {
        offset: usize,
        expected: &'static str,
    },
    #[error("no PEM block found (expected {expected})")]
    NoBlock { expected: &'static str },
    #[error("line {line}: a {label} block, but the file must hold {expected}")]
    WrongLabel {
        line: usize,
        label: String,
        expected: &'static str,
    },
    #[error("line {line}: the {label} block that starts here has no END line (truncated?)")]
    Unterminated { line: usize, label: String },
    #[error("line {line}: END {found} does not close BEGIN {label}")]
    Mismatched {
        line: usize,
        label: String,
        found: String,
    },
    #[error("line {line}: an END line without a BEGIN")]
    StrayEnd { line: usize },
    #[error("line {line}: the body of the {label} block is not valid base64: {source}")]
    Base64 {
        line: usize,
        label: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("line {line}: the {label} block does not hold DER data (empty, or not a SEQUENCE)")]
    NotDer { line: usize, label: String },
    #[error("{count} PEM blocks; the file must hold {expected}")]
    TooMany {
        count: usize,
        expected: &'static str,
    },
}

fn armor<'a>(line: &'a str, what: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(what)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

/// Check `bytes` hold PEM of `kind`. Returns the number of blocks.
pub fn check(kind: PemKind, bytes: &[u8]) -> Result<usize, PemError> {
    let expected = kind.expected();
    if let Some(offset) = bytes.iter().position(|b| !b.is_ascii()) {
        return Err(PemError::NotAscii { offset, expected });
    }
    // ASCII, so valid UTF-8.
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let mut blocks = 0;
    // (label, line of BEGIN, base64 body so far)
    let mut open: Option<(&str, usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let l = raw.trim();
        match &mut open {
            None => {
                if let Some(label) = armor(l, "BEGIN") {
                    if !kind.labels().contains(&label) {
                        return Err(PemError::WrongLabel {
                            line,
                            label: label.into(),
                            expected,
                        });
                    }
                    open = Some((label, line, String::new()));
                } else if armor(l, "END").is_some() {
                    return Err(PemError::StrayEnd { line });
                }
                // Anything else is explanatory text.
            }
            Some((label, begin, body)) => {
                if let Some(found) = armor(l, "END") {
                    if found != *label {
                        return Err(PemError::Mismatched {
                            line,
                            label: label.to_string(),
                            found: found.into(),
                        });
                    }
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(body.as_bytes())
                        .map_err(|source| PemError::Base64 {
                            line: *begin,
                            label: label.to_string(),
                            source,
                        })?;
                    if der.first() != Some(&0x30) {
                        return Err(PemError::NotDer {
                            line: *begin,
                            label: label.to_string(),
                        });
                    }
                    blocks += 1;
                    open = None;
                } else if armor(l, "BEGIN").is_some() {
                    return Err(PemError::Unterminated {
                        line: *begin,
                        label: label.to_string(),
                    });
                } else {
                    body.extend(l.chars().filter(|c| !c.is_ascii_whitespace()));
                }
            }
        }
    }
    if let Some((label, begin, _)) = open {
        return Err(PemError::Unterminated {
            line: begin,
            label: label.into(),
        });
    }
    match blocks {
        0 => Err(PemError::NoBlock { expected }),
        1 => Ok(1),
        n if kind == PemKind::Certificates => Ok(n),
        count => Err(PemError::TooMany { count, expected }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    // base64 of 30 03 02 01 00 (a DER SEQUENCE holding INTEGER 0).
    const DER: &str = "MAMCAQA=";

    #[test]
    fn accepts_each_kind_chains_crlf_and_explanatory_text() {
        assert_eq!(
            check(PemKind::Certificates, block("CERTIFICATE", DER).as_bytes()),
            Ok(1)
        );
        let chain = format!(
            "subject=CN=x\r\n{}\r\n{}",
            block("CERTIFICATE", DER).replace('\n', "\r\n"),
            block("CERTIFICATE", "MAMC\nAQA=")
        );
        assert_eq!(check(PemKind::Certificates, chain.as_bytes()), Ok(2));
        assert_eq!(
            check(PemKind::PublicKey, block("PUBLIC KEY", DER).as_bytes()),
            Ok(1)
        );
        for l in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            assert_eq!(
                check(PemKind::PrivateKey, block(l, DER).as_bytes()),
                Ok(1),
                "{l}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_the_promised_pem() {
        let e = |k, s: &str| check(k, s.as_bytes()).unwrap_err().to_string();
        assert!(e(PemKind::Certificates, "x").contains("no PEM block"));
        assert!(e(PemKind::Certificates, "").contains("no PEM block"));
        assert!(
            e(PemKind::PublicKey, &block("CERTIFICATE", DER))
                .contains("a CERTIFICATE block, but the file must hold one PUBLIC KEY block")
        );
        assert!(e(PemKind::PrivateKey, &block("PUBLIC KEY", DER)).contains("PUBLIC KEY block"));
        assert!(e(PemKind::PrivateKey, &block("ENCRYPTED PRIVATE KEY", DER)).contains("line 1"));
        assert!(e(PemKind::Certificates, &block("CERTIFICATE", "!!!!")).contains("base64"));
        assert!(e(PemKind::Certificates, &block("CERTIFICATE", "")).contains("DER"));
        assert!(e(PemKind::Certificates, &block("CERTIFICATE", "AAAA")).contains("DER"));
        assert!(
            e(
                PemKind::Certificates,
                &format!("-----BEGIN CERTIFICATE-----\n{DER}\n")
            )
            .contains("line 1: the CERTIFICATE block that starts here has no END line")
        );
        assert!(
            e(
                PemKind::Certificates,
                &format!("-----BEGIN CERTIFICATE-----\n{DER}\n-----END PUBLIC KEY-----\n")
            )
            .contains("END PUBLIC KEY does not close")
        );
        assert!(e(PemKind::Certificates, "-----END CERTIFICATE-----").contains("without a BEGIN"));
        let two = block("PRIVATE KEY", DER).repeat(2);
        assert!(e(PemKind::PrivateKey, &two).contains("2 PEM blocks"));
        let headers = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n";
        assert!(e(PemKind::PrivateKey, headers).contains("base64"));
        assert!(e(PemKind::Certificates, "root:$y$j9T:19000:0:99999:7:::\n").contains("no PEM"));
        assert!(
            check(PemKind::Certificates, b"\xff\xfe")
                .unwrap_err()
                .to_string()
                .contains("byte 0 is not ASCII")
        );
    }

    #[test]
    fn kinds_by_name() {
        assert_eq!(PemKind::for_name("ca.crt"), Some(PemKind::Certificates));
        assert_eq!(PemKind::for_name("ca.pub"), Some(PemKind::PublicKey));
        assert_eq!(PemKind::for_name("sa.key"), Some(PemKind::PrivateKey));
        assert_eq!(PemKind::for_name("mutable.env"), None);
    }
}
