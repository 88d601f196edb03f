//! Static texts kept as files under `vmagent/templates/` (compiled in with `include_str!`),
//! with their few variable parts written `{{NAME}}`.
//!
//! No template engine: each template has a handful of fields, all filled with constants (file
//! paths) or values the renderer has already validated, and there are no loops or conditionals
//! (optional parts stay in Rust). [`fill`] is one explicit pass over the text: a field's value is
//! never scanned again, and a field with no value is left as written, which the render tests
//! catch (no rendered file may contain `{{`).

/// `template` with every `{{NAME}}` that `values` names replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, end + 2))
        });
        match value {
            Some((v, used)) => {
                out.push_str(v);
                rest = &after[used..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_named_fields_once_and_leaves_unknown_ones() {
        assert_eq!(
            fill(
                "a={{A}} b={{B}} a={{A}} ${x} {{UNKNOWN}} {{",
                &[("A", "{{B}}"), ("B", "2")]
            ),
            "a={{B}} b=2 a={{B}} ${x} {{UNKNOWN}} {{"
        );
        assert_eq!(fill("no fields\n", &[("A", "1")]), "no fields\n");
    }
}
