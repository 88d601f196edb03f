//! A small HCL writer: a value/block model, the raw rendering, and the alignment pass that
//! makes the output what `terraform fmt` would print.
//!
//! Generation happens in two steps. [`Doc::raw`] renders with single spaces around `=`,
//! one attribute per line, a blank line between top-level blocks and before every nested
//! block after the first item. [`align`] then pads the `=` of every run of consecutive
//! one-line assignments to a common column, which is the only change `terraform fmt` makes to
//! such text. A line opens a multi-line value (more opening than closing brackets after its
//! `=`), closes one, or is blank, a comment or a block header: each of those ends the run.
//! The tests run the machine's `terraform fmt -check` over every generated file to hold this.

use std::fmt::Write;

/// An object key: a bare identifier or a quoted string.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Ident(String),
    Quoted(String),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Inserted verbatim (references, function calls, `for` expressions). Embedded newlines
    /// are re-indented to the attribute's level.
    Raw(String),
    /// A string literal from data: quoted and escaped, `${` and `%{` included.
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
    /// One line: `[a, b]`.
    List(Vec<Value>),
    /// One field per line.
    Object(Vec<(Key, Value)>),
    /// One line: `{ a = 1, b = 2 }`.
    Inline(Vec<(Key, Value)>),
}

pub fn raw(s: impl Into<String>) -> Value {
    Value::Raw(s.into())
}
pub fn str(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}
pub fn strs<S: AsRef<str>>(items: &[S]) -> Value {
    Value::List(items.iter().map(|s| str(s.as_ref())).collect())
}
/// A field with a bare identifier key.
pub fn ident(k: &str, v: Value) -> (Key, Value) {
    (Key::Ident(k.to_string()), v)
}
/// A field with a quoted key.
pub fn field(k: &str, v: Value) -> (Key, Value) {
    (Key::Quoted(k.to_string()), v)
}

/// `"…"` for HCL: `\` `"` and control characters escaped, and `${` / `%{` doubled so that
/// user data never turns into a template interpolation or directive.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Terraform identifier from parts: joined with `_`, anything outside `[A-Za-z0-9_]`
/// becomes `_`, outer `_` trimmed, lowercased; `default` when nothing is left.
pub fn safe_name(parts: &[&str]) -> String {
    let joined: String = parts
        .join("_")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let t = joined.trim_matches('_');
    if t.is_empty() {
        "default".into()
    } else {
        t.to_ascii_lowercase()
    }
}

impl Value {
    fn render(&self, indent: usize, out: &mut String) {
        match self {
            Value::Raw(s) => {
                let pad = format!("\n{}", " ".repeat(indent));
                out.push_str(&s.replace('\n', &pad));
            }
            Value::Str(s) => out.push_str(&quote(s)),
            Value::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => out.push_str("null"),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render(indent, out);
                }
                out.push(']');
            }
            Value::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Value::Object(fields) => {
                out.push_str("{\n");
                for (k, v) in fields {
                    out.push_str(&" ".repeat(indent + 2));
                    k.render(out);
                    out.push_str(" = ");
                    v.render(indent + 2, out);
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
            Value::Inline(fields) if fields.is_empty() => out.push_str("{}"),
            Value::Inline(fields) => {
                out.push_str("{ ");
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.render(out);
                    out.push_str(" = ");
                    v.render(indent, out);
                }
                out.push_str(" }");
            }
        }
    }
}

impl Key {
    fn render(&self, out: &mut String) {
        match self {
            Key::Ident(k) => out.push_str(k),
            Key::Quoted(k) => out.push_str(&quote(k)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Attr(String, Value),
    Block(Block),
}

/// A block: `type "label" … { body }`, with optional `#` comment lines above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    kind: String,
    labels: Vec<String>,
    comments: Vec<String>,
    items: Vec<Item>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Block {
        Block {
            kind: kind.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            comments: Vec::new(),
            items: Vec::new(),
        }
    }

    pub fn comment(mut self, line: &str) -> Block {
        self.comments.push(line.into());
        self
    }

    pub fn attr(&mut self, name: &str, value: Value) -> &mut Block {
        self.items.push(Item::Attr(name.into(), value));
        self
    }

    pub fn with(mut self, name: &str, value: Value) -> Block {
        self.attr(name, value);
        self
    }

    pub fn block(&mut self, b: Block) -> &mut Block {
        self.items.push(Item::Block(b));
        self
    }

    pub fn with_block(mut self, b: Block) -> Block {
        self.block(b);
        self
    }

    fn render(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        for c in &self.comments {
            let _ = writeln!(out, "{pad}# {c}");
        }
        out.push_str(&pad);
        out.push_str(&self.kind);
        for l in &self.labels {
            out.push(' ');
            out.push_str(&quote(l));
        }
        out.push_str(" {\n");
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Attr(name, v) => {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(name);
                    out.push_str(" = ");
                    v.render(indent + 2, out);
                    out.push('\n');
                }
                Item::Block(b) => {
                    if i > 0 {
                        out.push('\n');
                    }
                    b.render(indent + 2, out);
                }
            }
        }
        out.push_str(&pad);
        out.push_str("}\n");
    }
}

/// A file: comment header lines, then blocks separated by blank lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    pub header: Vec<String>,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    /// The raw rendering (single spaces around `=`).
    pub fn raw(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            let _ = writeln!(out, "# {h}");
        }
        if !self.header.is_empty() && !self.blocks.is_empty() {
            out.push('\n');
        }
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            b.render(0, &mut out);
        }
        out
    }
}

/// Where a line's assignment `=` is, when the value after it is complete on the line.
fn assignment(line: &str) -> Option<usize> {
    enum Ctx {
        Str,
        Interp(u32),
    }
    let b = line.as_bytes();
    let start = b.iter().position(|c| *c != b' ')?;
    let mut stack: Vec<Ctx> = Vec::new();
    let mut eq = None;
    let mut depth: i64 = 0;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match stack.last_mut() {
            Some(Ctx::Str) => match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' | b'%' if next == Some(c) && b.get(i + 2) == Some(&b'{') => i += 2,
                b'$' | b'%' if next == Some(b'{') => {
                    stack.push(Ctx::Interp(0));
                    i += 1;
                }
                _ => {}
            },
            Some(Ctx::Interp(d)) => match c {
                b'"' => stack.push(Ctx::Str),
                b'{' | b'[' | b'(' => *d += 1,
                b'}' if *d == 0 => {
                    stack.pop();
                }
                b'}' | b']' | b')' => *d = d.saturating_sub(1),
                _ => {}
            },
            None => match c {
                b'"' => stack.push(Ctx::Str),
                b'#' => break,
                b'/' if next == Some(b'/') => break,
                b'{' | b'[' | b'(' if eq.is_some() => depth += 1,
                b'}' | b']' | b')' if eq.is_some() => depth -= 1,
                b'=' | b'!' | b'<' | b'>' if next == Some(b'=') => i += 1,
                b'=' if next == Some(b'>') => i += 1,
                b'=' if eq.is_none() && i > start => eq = Some(i),
                _ => {}
            },
        }
        i += 1;
    }
    match eq {
        Some(e) if depth == 0 => Some(e),
        _ => None,
    }
}

/// Columns as `terraform fmt` counts them: grapheme clusters (`e` + combining accent is one).
fn columns(s: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    s.graphemes(true).count()
}

/// Pad the `=` of runs of consecutive one-line assignments to one column (`terraform fmt`).
pub fn align(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut cells: Vec<Option<(String, String)>> = Vec::with_capacity(lines.len());
    for line in &lines {
        cells.push(assignment(line).map(|e| {
            (
                line[..e].trim_end().to_string(),
                line[e + 1..].trim_start().to_string(),
            )
        }));
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut i = 0;
    while i < lines.len() {
        if cells[i].is_none() {
            out.push_str(lines[i]);
            if i + 1 < lines.len() {
                out.push('\n');
            }
            i += 1;
            continue;
        }
        let mut j = i;
        let mut width = 0;
        while j < lines.len() {
            match &cells[j] {
                Some((lead, _)) => width = width.max(columns(lead)),
                None => break,
            }
            j += 1;
        }
        // Every cell in `i..j` is `Some` (the run stops at the first `None`).
        for (lead, rest) in cells[i..j].iter().flatten() {
            let pad = width - columns(lead);
            let _ = write!(out, "{lead}{} = {rest}", " ".repeat(pad));
            if rest.is_empty() {
                out.truncate(out.trim_end().len());
            }
            out.push('\n');
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_templates_and_controls() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("${x} %{if} $x %"), "\"$${x} %%{if} $x %\"");
        assert_eq!(quote("l1\nl2\t\u{7}"), "\"l1\\nl2\\t\\u0007\"");
        assert_eq!(quote("{{ .Instance.ID }}"), "\"{{ .Instance.ID }}\"");
        assert_eq!(quote("héllo"), "\"héllo\"");
    }

    #[test]
    fn safe_names() {
        assert_eq!(
            safe_name(&["account", "123456789012", "us-east-1"]),
            "account_123456789012_us_east_1"
        );
        assert_eq!(
            safe_name(&["account", "", "us-east-1"]),
            "account__us_east_1"
        );
        assert_eq!(safe_name(&["shard", "us-west-2a"]), "shard_us_west_2a");
        assert_eq!(safe_name(&["-", ""]), "default");
        assert_eq!(safe_name(&["Knc", "ARM64"]), "knc_arm64");
    }

    #[test]
    fn assignment_detection() {
        assert_eq!(assignment("  a = 1"), Some(4));
        assert_eq!(assignment("  a = {"), None);
        assert_eq!(assignment("  a = { b = 1 }"), Some(4));
        assert_eq!(assignment("  }"), None);
        assert_eq!(assignment(""), None);
        assert_eq!(assignment("resource \"x\" \"y\" {"), None);
        assert_eq!(assignment("  c = x == null ? 1 : 2"), Some(4));
        assert_eq!(assignment("  \"a=b\" = \"${x}={\""), Some(8));
        assert_eq!(assignment("  } : key => value if value != null }"), None);
        assert_eq!(assignment("  m = { for k, v in {"), None);
    }

    #[test]
    fn align_pads_runs_and_breaks_on_blocks() {
        let raw =
            "locals {\n  a = 1\n  long_name = 2\n  m = {\n    x = 1\n    yy = 2\n  }\n  b = 3\n}\n";
        let want = "locals {\n  a         = 1\n  long_name = 2\n  m = {\n    x  = 1\n    yy = 2\n  }\n  b = 3\n}\n";
        assert_eq!(align(raw), want);
    }

    #[test]
    fn blocks_render_with_blank_lines_before_nested_blocks() {
        let mut d = Doc {
            header: vec!["h".into()],
            ..Doc::default()
        };
        let mut b = Block::new("resource", &["t", "n"]);
        b.attr("x", str("v"));
        b.block(Block::new("inner", &[]).with("y", Value::Bool(true)));
        d.push(b);
        d.push(Block::new("data", &["e", "f"]));
        assert_eq!(
            d.raw(),
            "# h\n\nresource \"t\" \"n\" {\n  x = \"v\"\n\n  inner {\n    y = true\n  }\n}\n\ndata \"e\" \"f\" {\n}\n"
        );
    }
}
