//! Where a config path (`cluster.providers[0].zones`) is in the file's text, so an error found
//! on the parsed model can still name a line and column. A small scanner over the JSON that
//! [`super::jsonc::to_json`] makes (it keeps every byte offset of the original text); it never
//! fails loudly: text it cannot follow gives `None`.

use super::jsonc;

/// One step of a config path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[0].c` as steps; `None` for an empty or malformed path.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key));
        } else if out.is_empty() || rest.is_empty() {
            return None;
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Past a string starting at the cursor; its raw contents (escapes kept).
    fn string(&mut self) -> Option<&[u8]> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        while let Some(&c) = self.b.get(i) {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    self.i = i + 1;
                    return self.b.get(start..i);
                }
                _ => i += 1,
            }
        }
        None
    }

    /// Past the value starting at the cursor.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Moves to the start of member `key` of the object at the cursor.
    fn member(&mut self, key: &str) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        self.i += 1;
        loop {
            self.ws();
            let raw = self.string()?;
            // Keys with escapes are compared unescaped.
            let found = if raw.contains(&b'\\') {
                let quoted = [b"\"", raw, b"\""].concat();
                serde_json::from_slice::<String>(&quoted).ok()? == key
            } else {
                raw == key.as_bytes()
            };
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            if found {
                return Some(());
            }
            self.skip_value()?;
            self.ws();
            if self.peek()? != b',' {
                return None;
            }
            self.i += 1;
        }
    }

    /// Moves to the start of element `n` of the array at the cursor.
    fn element(&mut self, n: usize) -> Option<()> {
        if self.peek()? != b'[' {
            return None;
        }
        self.i += 1;
        for _ in 0..n {
            self.ws();
            self.skip_value()?;
            self.ws();
            if self.peek()? != b',' {
                return None;
            }
            self.i += 1;
        }
        self.ws();
        (self.peek()? != b']').then_some(())
    }
}

/// 1-based line and column where the value at config `path` starts in the JSONC `text`; when
/// the path is not in the file (a required field left out), where its nearest enclosing value
/// that is starts. `None` when the text or the path cannot be followed.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let json = jsonc::to_json(text).ok()?;
    let mut s = Scanner {
        b: json.as_bytes(),
        i: 0,
    };
    s.ws();
    s.peek()?;
    let mut found = s.i;
    for step in steps(path)? {
        let ok = match step {
            Step::Key(k) => s.member(k),
            Step::Index(n) => s.element(n),
        };
        if ok.is_none() {
            break;
        }
        found = s.i;
    }
    Some(position(text.as_bytes(), found))
}

/// 1-based line and column (in characters) of byte `offset`.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n  // the cluster\n  \"cluster\": {\n    \"id\": \"c1\",\n    \"providers\": [\n      {\"kind\": \"aws\", \"zones\": {\"a\": [\"x\"]}},\n      {\"kind\": \"é\", \"zones\": {}},\n    ],\n    \"pools\": {\"w.x\": 1, \"q\\\"k\": {\"size\": -2}}\n  }\n}\n";

    #[test]
    fn finds_keys_indices_and_escaped_keys() {
        assert_eq!(locate(TEXT, "cluster"), Some((3, 14)));
        assert_eq!(locate(TEXT, "cluster.id"), Some((4, 11)));
        assert_eq!(locate(TEXT, "cluster.providers[0].zones"), Some((6, 32)));
        assert_eq!(
            locate(TEXT, "cluster.providers[0].zones.a[0]"),
            Some((6, 39))
        );
        // Columns count characters: "é" is two bytes.
        assert_eq!(locate(TEXT, "cluster.providers[1].zones"), Some((7, 30)));
        assert_eq!(locate(TEXT, "cluster.pools.q\"k.size"), Some((9, 42)));
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_parent() {
        // Not there: the providers' array is the nearest value that is.
        assert_eq!(locate(TEXT, "cluster.providers[2].kind"), Some((5, 18)));
        assert_eq!(locate(TEXT, "cluster.oidc.issuer_url"), Some((3, 14)));
    }

    #[test]
    fn unfollowable_input_gives_none() {
        assert_eq!(locate("{", "cluster.id"), Some((1, 1)));
        assert_eq!(locate("", "cluster.id"), None);
        assert_eq!(locate("{/* open", "cluster"), None);
        assert_eq!(locate(TEXT, ""), None);
        assert_eq!(locate(TEXT, "cluster.providers[x]"), None);
        assert_eq!(
            steps("a.b[0][1].c"),
            Some(vec![
                Step::Key("a"),
                Step::Key("b"),
                Step::Index(0),
                Step::Index(1),
                Step::Key("c")
            ])
        );
    }
}
