//! Scaling a shard config (the Nstance server's JSON object in S3) to zero: every
//! `groups.<tenant>.<group>.size` becomes 0, written back in place so key order and formatting
//! survive.

use serde_json::Value;

/// Why a shard config cannot be scaled.
#[derive(Debug, thiserror::Error)]
pub enum ShardConfigError {
    #[error("{0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object")]
    NotAnObject,
}

/// Sets `groups.<tenant>.<group>.size` to 0 for every group object; true when anything changed.
pub fn scale_to_zero(doc: &mut Value) -> bool {
    let Some(groups) = doc.get_mut("groups").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    for tenant in groups.values_mut().filter_map(Value::as_object_mut) {
        for group in tenant.values_mut().filter_map(Value::as_object_mut) {
            if group.get("size").and_then(Value::as_f64) != Some(0.0) {
                group.insert("size".to_string(), Value::from(0));
                changed = true;
            }
        }
    }
    changed
}

/// The scaled shard config text, or `None` when it is already at zero. Only the size values are
/// rewritten in place, so key order and formatting survive; if that edit cannot be proven equal
/// to [`scale_to_zero`], the document is re-serialized instead.
pub fn scale_text(text: &str) -> Result<Option<String>, ShardConfigError> {
    let doc: Value = serde_json::from_str(text)?;
    if !doc.is_object() {
        return Err(ShardConfigError::NotAnObject);
    }
    let mut scaled = doc;
    if !scale_to_zero(&mut scaled) {
        return Ok(None);
    }
    let mut scan = Scan {
        s: text.as_bytes(),
        i: 0,
        edits: Vec::new(),
    };
    if scan.value(Level::Root).is_some() {
        let mut edited = text.to_string();
        for (start, end, with) in scan.edits.iter().rev() {
            edited.replace_range(*start..*end, with);
        }
        if serde_json::from_str::<Value>(&edited).is_ok_and(|v| v == scaled) {
            return Ok(Some(edited));
        }
    }
    Ok(Some(serde_json::to_string_pretty(&scaled)? + "\n"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Groups,
    Tenant,
    Group,
    Other,
}

/// A JSON walker that records byte edits for the size values (`None` on malformed input).
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    edits: Vec<(usize, usize, &'static str)>,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, level: Level) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(level),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(Level::Other)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i));
                }
                _ => self.i += 1,
            }
        }
    }

    fn object(&mut self, level: Level) -> Option<()> {
        let open = self.i;
        self.i += 1;
        self.ws();
        let mut has_size = false;
        let empty = self.peek()? == b'}';
        if empty {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let (ks, ke) = self.string()?;
                let key: String = serde_json::from_slice(&self.s[ks..ke]).ok()?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                let child = match (level, key.as_str()) {
                    (Level::Root, "groups") => Level::Groups,
                    (Level::Groups, _) => Level::Tenant,
                    (Level::Tenant, _) => Level::Group,
                    _ => Level::Other,
                };
                if level == Level::Group && key == "size" {
                    has_size = true;
                    self.ws();
                    let start = self.i;
                    self.value(Level::Other)?;
                    let raw = &self.s[start..self.i];
                    let zero = serde_json::from_slice::<Value>(raw)
                        .ok()
                        .and_then(|v| v.as_f64())
                        == Some(0.0);
                    if !zero {
                        self.edits.push((start, self.i, "0"));
                    }
                } else {
                    self.value(child)?;
                }
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if level == Level::Group && !has_size {
            let with = if empty {
                "\"size\": 0"
            } else {
                "\"size\": 0, "
            };
            self.edits.push((open + 1, open + 1, with));
        }
        Some(())
    }
}
