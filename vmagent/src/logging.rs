//! Logging: the `log` facade, to journald (with structured fields) when started by systemd, to
//! stderr otherwise.

use std::io::{IsTerminal, Write};

use log::kv::{Key, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Install the logger. Under systemd (`JOURNAL_STREAM` set and the journal reachable) records go to
/// journald with their key-values as fields; otherwise one line per record to stderr.
pub fn init(verbose: bool) {
    let level = if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && systemd_journal_logger::connected_to_journal()
        && let Ok(j) = systemd_journal_logger::JournalLog::new()
        && j.with_syslog_identifier("vmagent".into()).install().is_ok()
    {
        log::set_max_level(level);
        return;
    }
    let tty = std::io::stderr().is_terminal();
    if log::set_boxed_logger(Box::new(Stderr { tty })).is_ok() {
        log::set_max_level(level);
    }
}

struct Stderr {
    /// Clear a progress line before each record.
    tty: bool,
}

impl Log for Stderr {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug | Level::Trace => "debug: ",
        };
        let mut line = format!("vmagent: {level}{}", record.args());
        if record.level() >= Level::Debug {
            let mut kv = KvLine(String::new());
            let _ = record.key_values().visit(&mut kv);
            line.push_str(&kv.0);
        }
        let mut err = std::io::stderr().lock();
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        let _ = writeln!(err, "{clear}{line}");
    }

    fn flush(&self) {}
}

struct KvLine(String);

impl<'kvs> VisitSource<'kvs> for KvLine {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}
