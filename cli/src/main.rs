//! `podplane`: the cluster CLI. Argument handling and output only.
//!
//! This first version carries the command tree's root and `version`; the cluster, deps, login
//! and component commands land on top of the shared `vmagent` library (manifest model, fetch).

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use podplane::config;

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
