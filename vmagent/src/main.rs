//! `vmagent`: the node agent's command line. Argument handling and output only; the work is in
//! the library.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use vmagent::apply::Services;
use vmagent::converge;
use vmagent::fetch::{self, FetchOptions, RetryPolicy, Target};
use vmagent::fsutil::under_root;
use vmagent::host::SystemHost;
use vmagent::install::InstallOptions;
use vmagent::manifest::Manifest;

use clap::Parser;
use vmagent::cli::{ApplyArgs, BootstrapArgs, Cli, Command, FetchArgs, InstallArgs, Output};

fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's default is 2, which `plan` uses for
    // "changes pending"); --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    vmagent::logging::init(cli.verbose);
    match &cli.command {
        Command::Bootstrap(a) => return bootstrap_cmd(&cli.root, a),
        Command::Install(a) => return install_cmd(&cli.root, a),
        Command::Plan(a) => return plan_cmd(&cli.root, a.output),
        Command::Apply(a) => return apply_cmd(&cli.root, a),
        Command::Recv(a) => return recv_cmd(&cli.root, a.debounce, &a.services),
        Command::Reconcile(a) => return recv_cmd(&cli.root, Duration::ZERO, &a.services),
        Command::Status(a) => {
            let st = vmagent::status::status(&cli.root, &SystemHost);
            if a.output() == Output::Json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            } else {
                print!("{st}");
            }
            return ExitCode::SUCCESS;
        }
        Command::Fetch(_) => {}
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = runtime.block_on(async {
        tokio::select! {
            r = run(&cli) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => {
                    log::error!("{msg}");
                    ExitCode::FAILURE
                }
            },
            sig = interrupted() => {
                log::error!("interrupted by {sig}; partial downloads removed");
                ExitCode::from(if sig == "SIGTERM" { 143 } else { 130 })
            }
        }
    });
    // Dropping the runtime drops every unfinished task, and with them their temp files.
    drop(runtime);
    code
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Fetch(args) => fetch_cmd(&cli.root, args).await,
        Command::Bootstrap(_)
        | Command::Install(_)
        | Command::Plan(_)
        | Command::Apply(_)
        | Command::Recv(_)
        | Command::Reconcile(_)
        | Command::Status(_) => {
            unreachable!("these commands run without the async runtime")
        }
    }
}

async fn fetch_cmd(root: &Path, a: &FetchArgs) -> Result<(), String> {
    let manifest_path = a
        .manifest
        .clone()
        .unwrap_or_else(|| under_root(root, "/opt/podplane/share/vmconfig-manifest.json"));
    let dir = a
        .dir
        .clone()
        .unwrap_or_else(|| under_root(root, "/opt/podplane/artifacts"));
    if let Some(m) = &a.mirror
        && !(m.starts_with("http://") || m.starts_with("https://"))
    {
        return Err(format!(
            "--mirror {m:?} is not an http:// or https:// URL (e.g. https://deps.podplane.dev)"
        ));
    }
    // Validate everything before waiting or downloading.
    let manifest = Manifest::load(&manifest_path).map_err(|e| e.to_string())?;
    let provider = match &a.provider {
        Some(p) => Some(p.clone()),
        None => user_data_provider(root)?,
    };
    let items = manifest.install_items(provider.as_deref());
    let targets: Vec<Target> = items
        .iter()
        .map(|i| Target::for_item(i, &dir, a.mirror.as_deref()))
        .collect();
    if let Some(addr) = &a.wait_for {
        fetch::wait_for(addr, a.wait_timeout, 1.0)
            .await
            .map_err(|e| e.to_string())?;
    }
    log::info!(
        manifest = manifest_path.display().to_string(), dir = dir.display().to_string(),
        items = targets.len(), provider = provider.as_deref().unwrap_or("any");
        "fetching {} artifacts of {} {} ({}) into {}",
        targets.len(), manifest.vmconfig.kind, manifest.vmconfig.version,
        manifest.vmconfig.os.arch, dir.display()
    );
    let opts = FetchOptions {
        authorization: Vec::new(),
        dir,
        cache: a.cache.clone(),
        concurrency: a.concurrency as usize,
        retry: RetryPolicy {
            max_retries: a.retries,
            base_delay: a.retry_delay,
            stall_timeout: a.stall_timeout,
            budget: a.budget,
            ..RetryPolicy::default()
        },
        progress: !a.no_progress
            && fetch::progress::line_wanted(std::io::stderr().is_terminal(), |k| {
                std::env::var(k).ok()
            }),
    };
    let s = fetch::fetch(targets, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let rate = if s.bytes_received > 0 {
        format!(", {:.1} MB/s", s.mb_per_sec())
    } else {
        String::new()
    };
    log::info!(
        files = s.files, downloaded = s.downloaded, reused = s.reused(),
        bytes = s.bytes_total, received = s.bytes_received, retries = s.retries,
        seconds = s.elapsed.as_secs_f64(), mb_per_s = s.mb_per_sec();
        "fetched {} files ({:.1} MB) in {:.2}s{rate}: {} downloaded, {} reused, {} retries",
        s.files, s.bytes_total as f64 / 1e6, s.elapsed.as_secs_f64(),
        s.downloaded, s.reused(), s.retries
    );
    Ok(())
}

/// Set by SIGINT/SIGTERM while a synchronous command runs; the command stops at its next step.
static STOP: AtomicBool = AtomicBool::new(false);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// The exit code of a failed synchronous command: 143/130 when a signal stopped it, else 1.
fn failure_code() -> ExitCode {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        libc::SIGTERM => ExitCode::from(143),
        libc::SIGINT => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    }
}

/// The multi-threaded runtime for commands that download.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            log::error!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn stop_on_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn install_cmd(root: &Path, a: &InstallArgs) -> ExitCode {
    stop_on_signals();
    let opts = InstallOptions {
        root: root.to_path_buf(),
        manifest: a.manifest.clone(),
        artifacts: a.artifacts.clone(),
        provider: a.provider.clone(),
        lock_timeout: a.lock_timeout,
    };
    match vmagent::install::install(&SystemHost, &opts, &STOP) {
        Ok(r) => {
            let perms = match r.permissions.len() {
                0 => "permissions already in place".to_string(),
                n => format!("{n} permission changes"),
            };
            if r.fast_path {
                log::info!(changes = r.permissions.len(); "already installed; {perms}");
            } else {
                log::info!(debs = r.debs.len(), files = r.files.len(), changes = r.permissions.len();
                    "installed {} debs and {} files; {perms}", r.debs.len(), r.files.len());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            failure_code()
        }
    }
}

/// `vmagent plan -o json`: the plan, and whether it has changes (as the exit code says).
#[derive(serde::Serialize)]
struct PlanReport<'a> {
    changes_pending: bool,
    #[serde(flatten)]
    plan: &'a vmagent::plan::Plan,
}

fn plan_cmd(root: &Path, output: Output) -> ExitCode {
    let overrides = converge::overrides_from_env(&SystemHost);
    match converge::plan(root, &SystemHost, &overrides, &Default::default()) {
        Ok((_, plan)) => {
            match output {
                Output::Text => {
                    print!("{plan}");
                    if plan.is_empty() {
                        println!("no changes");
                    }
                }
                Output::Json => {
                    let report = PlanReport {
                        changes_pending: !plan.is_empty(),
                        plan: &plan,
                    };
                    match serde_json::to_string_pretty(&report) {
                        Ok(j) => println!("{j}"),
                        Err(e) => {
                            log::error!("cannot write the plan as JSON: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            }
            if plan.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn services_mode(s: &str) -> Services {
    if s == "none" {
        Services::None
    } else {
        Services::Systemd
    }
}

fn bootstrap_cmd(root: &Path, a: &BootstrapArgs) -> ExitCode {
    stop_on_signals();
    let opts = vmagent::bootstrap::BootstrapOptions {
        root: root.to_path_buf(),
        facts: a.facts.clone(),
        manifest: a.manifest.clone(),
        mirror: a.mirror.clone(),
        cache: a.cache.clone(),
        no_wait: a.no_wait,
        wait_timeout: a.wait_timeout,
        services: services_mode(&a.services),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = vmagent::bootstrap::bootstrap(&opts, &SystemHost, &STOP) => r.map_err(|e| e.to_string()),
            _ = async { while !STOP.load(Ordering::SeqCst) { tokio::time::sleep(Duration::from_millis(100)).await } } => {
                Err("interrupted; partial downloads removed".to_string())
            }
        }
    });
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("bootstrap: {e}");
            failure_code()
        }
    }
}

fn recv_cmd(root: &Path, debounce: Duration, services: &str) -> ExitCode {
    let opts = vmagent::recv::RecvOptions {
        debounce,
        services: services_mode(services),
    };
    match vmagent::recv::recv(
        root,
        &SystemHost,
        &converge::overrides_from_env(&SystemHost),
        &opts,
    ) {
        Ok(r) => {
            let applied = match &r.applied {
                Some((_, a)) => format!(
                    "{} files written, {} service actions{}",
                    a.written.len(),
                    a.actions.len(),
                    if a.actions.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", a.actions.join(", "))
                    }
                ),
                None => "reconfigure deferred to the next delivery".into(),
            };
            log::info!(installed = r.installed.len(), skipped = r.skipped.len();
                "delivery: {} files installed, {} skipped; {applied}", r.installed.len(), r.skipped.len());
            if let vmagent::recv::MutableOutcome::Refused(e) = &r.mutable {
                log::error!(
                    "the delivered mutable.env was refused and the current settings kept: {e}"
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn apply_cmd(root: &Path, a: &ApplyArgs) -> ExitCode {
    let services = services_mode(&a.services);
    let overrides = converge::overrides_from_env(&SystemHost);
    match converge::apply(root, &SystemHost, &overrides, services, &Default::default()) {
        Ok((plan, report)) => {
            for n in &plan.notes {
                log::warn!("{n}");
            }
            log::info!(accounts = report.accounts.len(), written = report.written.len(), removed = report.removed.len(), actions = report.actions.len();
                "applied: {} account and permission changes, {} files written, {} removed, {} service actions{}",
                report.accounts.len(), report.written.len(), report.removed.len(), report.actions.len(),
                if report.actions.is_empty() { String::new() } else { format!(" ({})", report.actions.join(", ")) });
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `PROVIDER_KIND` from `<root>/opt/podplane/etc/user-data.env`, when that file exists.
fn user_data_provider(root: &Path) -> Result<Option<String>, String> {
    let path = under_root(root, "/opt/podplane/etc/user-data.env");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    Ok(text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("PROVIDER_KIND=")?;
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(v);
        (!v.is_empty()).then(|| v.to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_from_user_data() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(user_data_provider(root.path()).unwrap(), None);
        let etc = root.path().join("opt/podplane/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("user-data.env"),
            "INSTANCE_ID='i-1'\nPROVIDER_KIND='aws'\n",
        )
        .unwrap();
        assert_eq!(
            user_data_provider(root.path()).unwrap().as_deref(),
            Some("aws")
        );
    }
}
