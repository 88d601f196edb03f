//! `podplane`: the cluster CLI. Argument handling and output only.
//!
//! This first version carries the command tree's root and `version`; the cluster, deps, login
//! and component commands land on top of the shared `vmagent` library (manifest model, fetch).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let version = env!("CARGO_PKG_VERSION");
    match cli.command {
        Some(Command::Version) => println!("Version: {version} ({COMMIT})"),
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
