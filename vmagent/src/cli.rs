//! vmagent's command line: the clap definitions only, no behaviour. `main.rs` runs them and
//! `packaging/docgen` generates the man pages and shell completions from them at package-build
//! time, so the documentation always matches the program.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "vmagent",
    version,
    about = "Podplane's node agent",
    long_about = "Podplane's node agent: turns a Debian VM into a Podplane Kubernetes node and keeps \
                  it configured. It fetches the pinned artifacts (verified by digest), installs \
                  them, creates the service accounts and directories, writes every unit and \
                  configuration file from its settings, and applies Nstance deliveries, \
                  restarting only the services whose inputs changed.",
    after_long_help = "Exit status: 0 success; 1 any error, a usage error included; 2 only from \
                       `plan`: changes pending.\n\n\
                       Files: /opt/podplane/etc/{user-data,detected,mutable}.env (settings), \
                       /opt/env/*.env, /etc/systemd/system/* (written by vmagent), \
                       /var/lib/vmagent/ (its state). See /usr/share/doc/vmagent/README.md."
)]
pub struct Cli {
    /// Treat DIR as the node's root filesystem: default paths are taken below it.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Log debug details.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// First boot, as VM userdata runs it: record the instance facts, wait for Nstance, then
    /// fetch, install and configure the node.
    Bootstrap(Box<BootstrapArgs>),
    /// Download every install item of the manifest into the artifacts directory, verified.
    Fetch(FetchArgs),
    /// Install the verified artifacts (debs, tarballs, binaries), then users, groups and
    /// directories. Running it again changes nothing.
    Install(InstallArgs),
    /// Show every file that would be created, changed or removed and every service action,
    /// with reasons. Exit 0: nothing to do; 2: changes pending; 1: error.
    ///
    /// Example: `vmagent plan -o json`
    Plan(PlanArgs),
    /// Write the node's configuration and enable/restart only the services whose inputs changed.
    Apply(ApplyArgs),
    /// Apply what Nstance delivered to /opt/nstance-agent/recv (certificates, keys, mutable.env),
    /// then reconfigure, restarting only the affected services.
    Recv(RecvArgs),
    /// The boot pass: pending deliveries, then the configuration (recv without the wait).
    Reconcile(ApplyArgs),
    /// Installed versions, last apply, pending changes and deliveries, unit states.
    ///
    /// Example: `vmagent status -o json`
    Status(StatusArgs),
}

/// `-o/--output`: for people, or for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Output format: `json` prints the plan as one JSON object (exit codes stay the same).
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Same as `-o json`.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
}

impl StatusArgs {
    /// The format asked for, by `-o` or by `--json`.
    pub fn output(&self) -> Output {
        if self.json { Output::Json } else { self.output }
    }
}

#[derive(Args)]
pub struct BootstrapArgs {
    /// The pinned manifest (userdata carries it).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub facts: crate::contract::InstanceFacts,
    /// Download from this deps mirror instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Do not wait for the registration address.
    #[arg(long)]
    pub no_wait: bool,
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    pub services: String,
}

#[derive(Args)]
pub struct RecvArgs {
    /// Wait this long after taking the trigger, so a burst of deliveries is one pass.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub debounce: Duration,
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    pub services: String,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    pub services: String,
}

#[derive(Args)]
pub struct InstallArgs {
    /// The manifest to install [default: <root>/opt/podplane/share/vmconfig-manifest.json].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// The verified artifacts [default: <root>/opt/podplane/artifacts].
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Only items for this provider [default: PROVIDER_KIND of user-data.env, else no filter].
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// How long to wait for another vmagent holding the agent lock.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Args)]
pub struct FetchArgs {
    /// The pinned manifest [default: <root>/opt/podplane/share/vmconfig-manifest.json].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Where artifacts go, as <key><ext> [default: <root>/opt/podplane/artifacts].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Download from <URL>/vmconfig/artifacts/<key>/<version>/<file> instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Only items for this provider (aws, google, proxmox, local) [default: PROVIDER_KIND of
    /// <root>/opt/podplane/etc/user-data.env, else no filter].
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Keep verified files here by digest and reuse them across runs.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Wait until HOST:PORT accepts TCP connections before downloading.
    #[arg(long, value_name = "HOST:PORT")]
    pub wait_for: Option<String>,
    /// Give up waiting for --wait-for after this long.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Downloads in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Failed attempts in a row (without progress) per artifact before giving up.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub retries: u32,
    /// Overall time budget for the downloads.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub budget: Duration,
    /// Abandon and retry an attempt that receives nothing for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// First retry delay (doubles up to 30s, with jitter).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub retry_delay: Duration,
    /// Never draw the progress line (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// Longest duration any flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What people type (`500ms`, `30s`, `1m30s`, `2h`, `1d`, parsed by `humantime`) or plain
/// seconds (`1.5`); at most [`MAX_DURATION`] (7 days).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let too_long =
        || format!("{s:?} is longer than the maximum of 7 days (168h); use a shorter duration");
    let d = if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds (e.g. 1.5)"))?;
        // Checked before converting: a huge value would overflow `Duration` (a panic).
        if !secs.is_finite() || secs > MAX_DURATION.as_secs_f64() {
            return Err(too_long());
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            e => {
                format!("{s:?} is not a duration ({e}); e.g. 500ms, 30s, 1m30s, 2h, at most 7 days")
            }
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h 5m").unwrap(), Duration::from_secs(7500));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("8d").unwrap_err().contains("7 days"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn huge_durations_are_refused_not_panicking() {
        assert_eq!(
            parse_duration("168h").unwrap(),
            Duration::from_secs(7 * 24 * 3600)
        );
        for huge in [
            "168.001h",
            "604801",
            "99999999999999h",
            "999999999999999999999h",
            "9999999999999999999999999999999999999999ms",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(
                err.contains(huge) && err.contains("7 days"),
                "{huge}: {err}"
            );
        }
    }
}
