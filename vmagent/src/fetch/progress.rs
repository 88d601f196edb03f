//! Shared counters for a fetch, and an optional progress line on a terminal.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether a live progress line belongs on stderr: only on a terminal, and not under
/// `CI=true`, `TERM=dumb` (terminals without cursor control) or the journal (`JOURNAL_STREAM`,
/// set by systemd for a unit's output). One rule for both programs; `env` reads a variable.
pub fn line_wanted(stderr_is_terminal: bool, env: impl Fn(&str) -> Option<String>) -> bool {
    stderr_is_terminal
        && env("CI").as_deref() != Some("true")
        && env("TERM").as_deref() != Some("dumb")
        && env("JOURNAL_STREAM").is_none()
}

pub struct Progress {
    files: usize,
    total: u64,
    started: Instant,
    done: AtomicUsize,
    /// Bytes received over the network, including discarded ones.
    received: AtomicU64,
    /// Bytes that count towards `total` (received minus discarded on restarts).
    kept: AtomicU64,
    retries: AtomicU32,
}

impl Progress {
    pub fn new(files: usize, total: u64) -> Progress {
        Progress {
            files,
            total,
            started: Instant::now(),
            done: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            retries: AtomicU32::new(0),
        }
    }

    pub fn add(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
        self.kept.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes thrown away by a restart from byte 0.
    pub fn discard(&self, n: u64) {
        self.kept
            .fetch_sub(n.min(self.kept.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    pub fn file_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The progress line, without terminal control characters.
    pub fn line(&self) -> String {
        let kept = self.kept.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut s = format!(
            "fetch: {}/{} files  {:.1}/{:.1} MB  {:.1} MB/s",
            self.done.load(Ordering::Relaxed),
            self.files,
            kept as f64 / 1e6,
            self.total as f64 / 1e6,
            self.received() as f64 / 1e6 / secs
        );
        let r = self.retries();
        if r > 0 {
            s.push_str(&format!("  {r} retries"));
        }
        s
    }

    /// Redraw the line on stderr every `every` until the task is aborted.
    pub fn draw_every(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{}", self.line());
                let _ = err.flush();
            }
        })
    }

    pub fn clear_line(&self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod line_tests {
    use super::line_wanted;

    #[test]
    fn only_on_a_terminal_that_is_not_dumb_ci_or_the_journal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(line_wanted(true, env(&[("TERM", "xterm")])));
        assert!(!line_wanted(false, env(&[])));
        assert!(!line_wanted(true, env(&[("TERM", "dumb")])));
        assert!(!line_wanted(true, env(&[("CI", "true")])));
        assert!(!line_wanted(true, env(&[("JOURNAL_STREAM", "8:1")])));
    }
}
