//! Line diffs for `vmagent plan` and the golden-file tests.
//!
//! Myers' algorithm in linear space (the `similar` crate) with a deadline, so that a large or
//! pathological file (a 100,000-line `/etc/hosts`) can neither exhaust memory nor hang `plan`:
//! when the deadline passes, the rest is shown as removed + added lines. The lines are borrowed
//! from the two texts, never copied, and at most [`MAX_SHOWN`] changed lines are printed per
//! file; the rest are only counted.

use std::ops::Range;
use std::time::{Duration, Instant};

use similar::algorithms::{DiffHook, myers};

/// Changed lines printed per file; the rest are counted in one closing line.
pub const MAX_SHOWN: usize = 200;

/// How long one file's diff may search for a minimal script before it settles for a coarser
/// (still correct) one.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// Changed lines between two texts, `-` removed, `+` added (removals of a changed block before
/// its additions). At most [`MAX_SHOWN`] of them, then a line saying how many were left out.
pub fn line_diff(old: &str, new: &str) -> String {
    diff_with(old, new, MAX_SHOWN, DEADLINE)
}

fn diff_with(old: &str, new: &str, max_shown: usize, budget: Duration) -> String {
    let (a, b) = (lines(old), lines(new));
    let started = Instant::now();
    let (mut text, mut shown, mut left_out) = (String::new(), 0usize, 0usize);
    script(&a, &b, started.checked_add(budget), |sign, range| {
        let lines = if sign == '-' { &a[range] } else { &b[range] };
        let room = max_shown.saturating_sub(shown).min(lines.len());
        for line in &lines[..room] {
            text.push(sign);
            text.push_str(line);
            text.push('\n');
        }
        shown += room;
        left_out += lines.len() - room;
    });
    if left_out > 0 {
        text.push_str(&format!(
            "... {left_out} more changed lines not shown (at most {max_shown} per file)\n"
        ));
    }
    if started.elapsed() > budget {
        text.push_str(&format!(
            "... (diff took longer than {} s: some unchanged lines may be shown as removed and added)\n",
            budget.as_secs_f32()
        ));
    }
    text
}

/// The lines of `text` as slices of it, in a vector sized once (no regrowth copies).
fn lines(text: &str) -> Vec<&str> {
    let n = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut v = Vec::with_capacity(n);
    v.extend(text.lines());
    v
}

/// Runs the diff and calls `emit('-', range of a)` / `emit('+', range of b)` for each changed
/// block, in order, removals first.
fn script(a: &[&str], b: &[&str], deadline: Option<Instant>, emit: impl FnMut(char, Range<usize>)) {
    let mut hook = Blocks {
        emit,
        del: 0..0,
        ins: 0..0,
    };
    let Ok(()) = myers::diff_deadline(&mut hook, a, 0..a.len(), b, 0..b.len(), deadline);
}

/// Between two equal runs, the algorithm's deletions cover one contiguous range of the old
/// lines and its insertions one of the new: they are gathered and emitted removals first,
/// whatever order the algorithm reported them in.
struct Blocks<F> {
    emit: F,
    del: Range<usize>,
    ins: Range<usize>,
}

impl<F: FnMut(char, Range<usize>)> Blocks<F> {
    fn flush(&mut self) {
        let del = std::mem::replace(&mut self.del, 0..0);
        let ins = std::mem::replace(&mut self.ins, 0..0);
        if !del.is_empty() {
            (self.emit)('-', del);
        }
        if !ins.is_empty() {
            (self.emit)('+', ins);
        }
    }

    /// Adds `start..start + len` of one side to the pending block (flushing first if it does
    /// not continue it, which the algorithms never do but costs nothing to allow).
    fn add(&mut self, removed: bool, start: usize, len: usize) {
        let pending = if removed { &self.del } else { &self.ins };
        if !pending.is_empty() && pending.end != start {
            self.flush();
        }
        let pending = if removed {
            &mut self.del
        } else {
            &mut self.ins
        };
        if pending.start == pending.end {
            *pending = start..start + len;
        } else {
            pending.end += len;
        }
    }
}

impl<F: FnMut(char, Range<usize>)> DiffHook for Blocks<F> {
    type Error = std::convert::Infallible;

    fn equal(&mut self, _old: usize, _new: usize, _len: usize) -> Result<(), Self::Error> {
        self.flush();
        Ok(())
    }

    fn delete(&mut self, old: usize, len: usize, _new: usize) -> Result<(), Self::Error> {
        self.add(true, old, len);
        Ok(())
    }

    fn insert(&mut self, _old: usize, new: usize, len: usize) -> Result<(), Self::Error> {
        self.add(false, new, len);
        Ok(())
    }

    fn replace(
        &mut self,
        old: usize,
        old_len: usize,
        new: usize,
        new_len: usize,
    ) -> Result<(), Self::Error> {
        self.add(true, old, old_len);
        self.add(false, new, new_len);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Self::Error> {
        self.flush();
        Ok(())
    }
}

#[cfg(test)]
#[path = "diff/tests.rs"]
mod tests;
