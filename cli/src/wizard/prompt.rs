//! Line-oriented prompting: one question per line of output, one answer per line of input.

use std::io::{BufRead, Write};

use super::WizardError;

/// One line of input, trimmed; `None` at end of input.
fn read_answer(input: &mut impl BufRead) -> Result<Option<String>, WizardError> {
    let mut line = String::new();
    let n = input.read_line(&mut line).map_err(WizardError::Prompt)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_string()))
}

/// Asks `label` until `check` accepts the answer (empty = `default`). End of input → `eof`.
pub(super) fn ask<T>(
    input: &mut impl BufRead,
    out: &mut impl Write,
    label: &str,
    default: &str,
    eof: fn() -> WizardError,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<T, WizardError> {
    loop {
        if default.is_empty() {
            write!(out, "{label}: ")
        } else {
            write!(out, "{label} [{default}]: ")
        }
        .and_then(|()| out.flush())
        .map_err(WizardError::Prompt)?;
        let Some(answer) = read_answer(input)? else {
            writeln!(out).map_err(WizardError::Prompt)?;
            return Err(eof());
        };
        let value = if answer.is_empty() { default } else { &answer };
        match check(value) {
            Ok(v) => return Ok(v),
            Err(rule) => writeln!(out, "error: {label}: {rule}").map_err(WizardError::Prompt)?,
        }
    }
}
