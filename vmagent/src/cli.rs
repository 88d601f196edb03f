// vmagent's command line: the clap definitions only, no behaviour. Included (`include!`) by
// main.rs, which runs them, and by packaging/docgen, which generates the man page and the shell completions
// from them at package-build time, so the documentation always matches the program. The
// includer brings `Args`, `Parser`, `Subcommand`, `PathBuf` and `Duration` into scope.

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
    after_long_help = "Files: /opt/podplane/etc/{user-data,detected,mutable}.env (settings), \
                       /opt/env/*.env, /etc/systemd/system/* (written by vmagent), \
                       /var/lib/vmagent/ (its state). See /usr/share/doc/vmagent/README.md."
)]
struct Cli {
    /// Treat DIR as the node's root filesystem: default paths are taken below it.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Log debug details.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Plan,
    /// Write the node's configuration and enable/restart only the services whose inputs changed.
    Apply(ApplyArgs),
    /// Apply what Nstance delivered to /opt/nstance-agent/recv (certificates, keys, mutable.env),
    /// then reconfigure, restarting only the affected services.
    Recv(RecvArgs),
    /// The boot pass: pending deliveries, then the configuration (recv without the wait).
    Reconcile(ApplyArgs),
    /// Installed versions, last apply, pending changes and deliveries, unit states.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct BootstrapArgs {
    /// The pinned manifest (userdata carries it).
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    #[command(flatten)]
    facts: vmagent::contract::InstanceFacts,
    /// Download from this deps mirror instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Do not wait for the registration address.
    #[arg(long)]
    no_wait: bool,
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    wait_timeout: Duration,
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    services: String,
}

#[derive(Args)]
struct RecvArgs {
    /// Wait this long after taking the trigger, so a burst of deliveries is one pass.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    debounce: Duration,
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    services: String,
}

#[derive(Args)]
struct ApplyArgs {
    /// `systemd`: run service actions; `none`: only write files.
    #[arg(long, value_name = "MODE", default_value = "systemd", value_parser = ["systemd", "none"])]
    services: String,
}

#[derive(Args)]
struct InstallArgs {
    /// The manifest to install [default: <root>/opt/podplane/share/vmconfig-manifest.json].
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// The verified artifacts [default: <root>/opt/podplane/artifacts].
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Only items for this provider [default: PROVIDER_KIND of user-data.env, else no filter].
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// How long to wait for another vmagent holding the agent lock.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    lock_timeout: Duration,
}

#[derive(Args)]
struct FetchArgs {
    /// The pinned manifest [default: <root>/opt/podplane/share/vmconfig-manifest.json].
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Where artifacts go, as <key><ext> [default: <root>/opt/podplane/artifacts].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Download from <URL>/vmconfig/artifacts/<key>/<version>/<file> instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Only items for this provider (aws, google, proxmox, local) [default: PROVIDER_KIND of
    /// <root>/opt/podplane/etc/user-data.env, else no filter].
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// Keep verified files here by digest and reuse them across runs.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Wait until HOST:PORT accepts TCP connections before downloading.
    #[arg(long, value_name = "HOST:PORT")]
    wait_for: Option<String>,
    /// Give up waiting for --wait-for after this long.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    wait_timeout: Duration,
    /// Downloads in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Failed attempts in a row (without progress) per artifact before giving up.
    #[arg(long, value_name = "N", default_value_t = 10)]
    retries: u32,
    /// Overall time budget for the downloads.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    budget: Duration,
    /// Abandon and retry an attempt that receives nothing for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// First retry delay (doubles up to 30s, with jitter).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    retry_delay: Duration,
    /// Never draw the progress line (it is drawn only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

/// Longest duration any flag accepts.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What people type (`500ms`, `30s`, `1m30s`, `2h`, `1d`, parsed by `humantime`) or plain
/// seconds (`1.5`); at most [`MAX_DURATION`] (7 days).
fn parse_duration(s: &str) -> Result<Duration, String> {
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
            e => format!(
                "{s:?} is not a duration ({e}); e.g. 500ms, 30s, 1m30s, 2h, at most 7 days"
            ),
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}
