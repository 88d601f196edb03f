//! `podplane`: the cluster CLI. Argument handling and output only.
//!
//! This first version carries the command tree's root and `version`; the cluster, deps, login
//! and component commands land on top of the shared `vmagent` library (manifest model, fetch).

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use podplane::config;
use podplane::userdata;

/// Commit of this build, when the build injects it (`PODPLANE_COMMIT=<hash> cargo build`).
const COMMIT: &str = match option_env!("PODPLANE_COMMIT") {
    Some(c) => c,
    None => "",
};

#[derive(Parser)]
#[command(
    name = "podplane",
    about = "Kubernetes clusters on plain cloud VMs",
    disable_version_flag = true
)]
struct Cli {
    /// Print `podplane CLI <version>` and exit.
    #[arg(long)]
    version: bool,
    /// More output (with --version: build details).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version and commit of this build.
    Version,
    /// Work with the cluster config file.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print a node's first-boot userdata for a pinned release manifest.
    ///
    /// Without --instance-id the per-instance values are Nstance placeholders
    /// (`{{ .Instance.ID }}` …) for nstance-server to fill in, as production uses it. Upstream
    /// rendered userdata only inside Terraform; this command shows and tests the same output.
    Userdata(UserdataArgs),
    /// The dependency cache: the published node manifest and the artifacts it pins.
    Deps {
        #[command(subcommand)]
        command: DepsCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum DepsCommand {
    /// Download and verify the node manifest and its artifacts into the cache.
    Download {
        /// Comma-separated: amd64, arm64 [default: this machine's, or PODPLANE_ARCH].
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
        /// Provider-specific artifacts to include too (comma-separated, or all).
        #[arg(long, value_delimiter = ',')]
        providers: Vec<String>,
        /// Use this manifest file instead of the published one.
        #[arg(long, value_name = "FILE")]
        vmconfig: Option<PathBuf>,
        /// Say what would be downloaded; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare the published node manifest with the cached one (always exits 0).
    Status,
}

fn run_deps(command: DepsCommand) -> ExitCode {
    let deps = podplane::deps::Deps::from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        DepsCommand::Status => {
            println!("Fetching latest dependency manifest...");
            let msg = runtime.block_on(podplane::deps::status(
                &deps,
                "knc",
                &podplane::deps::host_arch(),
            ));
            println!("{msg}");
            ExitCode::SUCCESS
        }
        DepsCommand::Download {
            arch,
            providers,
            vmconfig,
            dry_run,
        } => {
            let arches = if arch.is_empty() {
                vec![podplane::deps::host_arch()]
            } else {
                arch
            };
            let mut out = std::io::stdout();
            for a in &arches {
                let r = runtime.block_on(podplane::deps::download(
                    &deps,
                    "knc",
                    a,
                    vmconfig.as_deref(),
                    &providers,
                    dry_run,
                    &mut out,
                ));
                if let Err(e) = r {
                    eprintln!("Error downloading the latest dependency files: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}

#[derive(clap::Args)]
struct UserdataArgs {
    /// The standalone release manifest (its vmagent entry pins the agent's tarball).
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// local, aws, google or proxmox.
    #[arg(long)]
    provider: String,
    /// Download from this deps mirror instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    #[arg(long, default_value = "")]
    aws_account_id: String,
    #[arg(long, default_value = "")]
    google_project_id: String,
    /// File of SSH public keys for the admin user (immutable: changing them replaces VMs).
    #[arg(long, value_name = "FILE")]
    ssh_authorized_keys_file: Option<PathBuf>,
    /// Concrete instance values instead of Nstance placeholders (local VMs, tests):
    /// ID,CLUSTER,REGION,ZONE,TYPE,REGISTRATION_ADDR,AGENT_ADDR,NONCE,CA_CERT_BASE64.
    #[arg(long, value_name = "VALUES")]
    instance: Option<String>,
}

fn run_userdata(a: UserdataArgs) -> Result<(), String> {
    let manifest = vmagent::manifest::Manifest::load(&a.manifest).map_err(|e| e.to_string())?;
    let mut facts = match &a.instance {
        None => userdata::Facts::nstance_placeholders(&a.provider),
        Some(v) => {
            let f: Vec<&str> = v.split(',').collect();
            if f.len() != 9 {
                return Err(format!(
                    "--instance needs 9 comma-separated values (ID,CLUSTER,REGION,ZONE,TYPE,REGISTRATION_ADDR,AGENT_ADDR,NONCE,CA_CERT_BASE64), got {}",
                    f.len()
                ));
            }
            userdata::Facts {
                instance_id: f[0].into(),
                cluster_id: f[1].into(),
                provider_kind: a.provider.clone(),
                region: f[2].into(),
                zone: f[3].into(),
                instance_type: f[4].into(),
                registration_addr: f[5].into(),
                agent_addr: f[6].into(),
                nonce: f[7].into(),
                cluster_ca_cert: f[8].into(),
                aws_account_id: String::new(),
                google_project_id: String::new(),
                ssh_authorized_keys: String::new(),
            }
        }
    };
    facts.aws_account_id = a.aws_account_id;
    facts.google_project_id = a.google_project_id;
    if let Some(path) = &a.ssh_authorized_keys_file {
        facts.ssh_authorized_keys = std::fs::read_to_string(path)
            .map_err(|e| format!("read {}: {e}", path.display()))?
            .trim_end()
            .to_string();
    }
    let script =
        userdata::render(&manifest, &facts, a.mirror.as_deref()).map_err(|e| e.to_string())?;
    print!("{script}");
    Ok(())
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Load and fully validate a cluster config, printing the first problem found.
    ///
    /// Not part of the upstream CLI (which validated only inside `cluster create`): added so
    /// a config can be checked without generating anything.
    Validate {
        /// Cluster config file.
        #[arg(short = 'f', long = "file", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
    },
    /// Print the JSON schema of the cluster config file.
    Schema,
}

/// Runs a `cluster` subcommand; the error is the user-facing message.
fn run_cluster(command: ClusterCommand) -> Result<(), String> {
    match command {
        ClusterCommand::Validate { file } => {
            config::load_and_validate(&file).map_err(|e| e.to_string())?;
            println!("{} is valid", file.display());
        }
        ClusterCommand::Schema => print!("{}", config::schema_json()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let version = env!("CARGO_PKG_VERSION");
    match cli.command {
        Some(Command::Version) => println!("Version: {version} ({COMMIT})"),
        Some(Command::Cluster { command }) => {
            if let Err(message) = run_cluster(command) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        Some(Command::Deps { command }) => return run_deps(command),
        Some(Command::Completion { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "podplane",
                &mut std::io::stdout(),
            );
        }
        Some(Command::Userdata(a)) => {
            if let Err(message) = run_userdata(a) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        None if cli.version => {
            println!("podplane CLI {version}");
            if cli.verbose {
                println!("Commit: {COMMIT}");
            }
        }
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            println!();
        }
    }
    ExitCode::SUCCESS
}
