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
    /// Create, delete, validate a cluster (OpenTofu/Terraform on AWS).
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
    /// Deploy an Easy OIDC server (OpenTofu/Terraform) from podplane.oidc.jsonc.
    Oidc {
        #[command(subcommand)]
        command: OidcCommand,
    },
    /// The dependency cache: the published node manifest and the artifacts it pins.
    Deps {
        #[command(subcommand)]
        command: DepsCommand,
    },
    /// Log in to a cluster's OIDC issuer and set up kubectl access (context = cluster id).
    Login(LoginArgs),
    /// Remove a cluster's stored tokens and the kubeconfig entries login made.
    Logout(LogoutArgs),
    /// Plumbing run by kubectl and docker, not by people.
    #[command(hide = true)]
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct LoginArgs {
    /// Cluster config file.
    #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
    file: PathBuf,
    /// The API server's CA: a file path, an http(s) URL or inline PEM.
    #[arg(long, value_name = "PATH|URL|PEM")]
    ca_cert: Option<String>,
    /// Loopback port of the login callback (http://localhost:PORT/callback).
    #[arg(long, default_value_t = 8000)]
    callback_port: u16,
    /// Take the code from the issuer's redirect without a browser (issuers that approve
    /// without a form).
    #[arg(long)]
    headless: bool,
}

#[derive(clap::Args)]
struct LogoutArgs {
    /// Log out without asking.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Cluster id.
    #[arg(long)]
    cluster: Option<String>,
    /// Cluster config file (its id).
    #[arg(short = 'f', long = "cluster-config")]
    file: Option<PathBuf>,
    /// Kube context whose cluster to log out of [default: the current context].
    #[arg(long)]
    context: Option<String>,
    /// Kubeconfig file [default: first of KUBECONFIG, else ~/.kube/config].
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand)]
enum HooksCommand {
    /// kubectl exec credential plugin: print an ExecCredential with a current ID token.
    KubectlAuth {
        #[arg(short = 'c', long)]
        cluster: String,
        /// The user's `sub`.
        #[arg(short = 'u', long)]
        user: String,
    },
    /// Docker credential helper protocol (also run as `docker-credential-podplane`).
    DockerCredentials {
        /// get, store, erase or list.
        action: String,
    },
}

fn run_login(a: LoginArgs) -> Result<(), String> {
    use podplane::login;
    let path = std::path::absolute(&a.file).unwrap_or(a.file);
    let cfg = config::load(&path).map_err(|e| e.to_string())?;
    let env = login::Env::from_process(None);
    let opts = login::Options {
        api_ca: a.ca_cert,
        callback_port: a.callback_port,
        headless: a.headless,
    };
    login::login(
        &env,
        &login::Target::from_config(&cfg),
        &opts,
        &mut std::io::stdout(),
    )
    .map_err(|e| e.to_string())
}

fn run_logout(a: LogoutArgs) -> Result<(), String> {
    use podplane::login;
    let env = login::Env::from_process(a.kubeconfig);
    let id = match (a.cluster, a.file) {
        (Some(id), _) => id,
        (None, Some(file)) => {
            let path = std::path::absolute(&file).unwrap_or(file);
            config::load(&path).map_err(|e| e.to_string())?.cluster.id
        }
        (None, None) => {
            let kc = login::kubeconfig::load(&env.kubeconfig).map_err(|e| e.to_string())?;
            login::cluster_from_context(&kc, a.context.as_deref()).map_err(|e| e.to_string())?
        }
    };
    let stdin = std::io::stdin();
    let ok = podplane::tfrun::confirm(
        &format!("Log out of Podplane cluster \"{id}\"?"),
        a.yes,
        &mut stdin.lock(),
        &mut std::io::stdout(),
    )
    .map_err(|e| format!("read the answer: {e}"))?;
    if !ok {
        return Err("logout cancelled".into());
    }
    login::logout(&env, &id, &mut std::io::stdout()).map_err(|e| e.to_string())
}

fn run_hooks(command: HooksCommand) -> Result<(), String> {
    use podplane::login;
    let env = login::Env::from_process(None);
    match command {
        HooksCommand::KubectlAuth { cluster, user } => {
            let json = login::exec_credential(&env, &cluster, &user, &mut std::io::stderr())
                .map_err(|e| e.to_string())?;
            // kubectl may close the pipe early: an error, not a panic.
            use std::io::Write as _;
            writeln!(std::io::stdout(), "{json}").map_err(|e| format!("write stdout: {e}"))?;
        }
        HooksCommand::DockerCredentials { action } => {
            login::docker::run(
                &env,
                &action,
                &mut std::io::stdin(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum OidcCommand {
    /// Generate podplane.oidc.*.tf next to the config, then init and apply.
    Create {
        /// OIDC config file.
        #[arg(short = 'f', long = "oidc-config", default_value = podplane::oidc::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Generate the files only; do not run OpenTofu/Terraform.
        #[arg(long)]
        no_apply: bool,
        /// Apply without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Validate the config, confirm, and destroy the OIDC server.
    Delete {
        /// OIDC config file.
        #[arg(short = 'f', long = "oidc-config", default_value = podplane::oidc::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Validate the config only; destroy nothing.
        #[arg(long)]
        no_apply: bool,
        /// Destroy without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Print the JSON schema of the OIDC config file.
    Schema,
}

fn run_oidc(command: OidcCommand) -> Result<(), String> {
    use podplane::oidc;
    match command {
        OidcCommand::Create {
            file,
            no_apply,
            auto_approve,
        } => {
            let g = oidc::generate_files(&file).map_err(|e| e.to_string())?;
            println!(
                "Generated Podplane OpenTofu/Terraform files in {}",
                g.dir.display()
            );
            if no_apply {
                return Ok(());
            }
            let runner = tf_runner(&g.dir)?;
            let stdin = std::io::stdin();
            oidc::apply(
                &runner,
                &g.config,
                auto_approve,
                &mut stdin.lock(),
                &mut std::io::stdout(),
            )
            .map_err(|e| e.to_string())?;
        }
        OidcCommand::Delete {
            file,
            no_apply,
            auto_approve,
        } => {
            let path = std::path::absolute(&file).unwrap_or(file);
            oidc::load(&path).map_err(|e| e.to_string())?;
            if no_apply {
                println!("{}", oidc::NO_APPLY_DELETE_MESSAGE);
                return Ok(());
            }
            let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let runner = tf_runner(&dir)?;
            let stdin = std::io::stdin();
            oidc::destroy(
                &runner,
                auto_approve,
                &mut stdin.lock(),
                &mut std::io::stdout(),
            )
            .map_err(|e| e.to_string())?;
        }
        OidcCommand::Schema => print!("{}", oidc::schema_json()),
    }
    Ok(())
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
        /// Cache what this cluster needs: the node kinds and arches of its pools (unless
        /// --arch narrows them) and its providers' artifacts.
        #[arg(short = 'f', long = "cluster-config", value_name = "FILE")]
        cluster_config: Option<PathBuf>,
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
                vmagent::contract::Kind::Knc.name(),
                &podplane::deps::host_arch(),
            ));
            println!("{msg}");
            ExitCode::SUCCESS
        }
        DepsCommand::Download {
            arch,
            mut providers,
            vmconfig,
            dry_run,
            cluster_config,
        } => {
            let targets: Vec<(String, String)> = match &cluster_config {
                None => {
                    let arches = if arch.is_empty() {
                        vec![podplane::deps::host_arch()]
                    } else {
                        arch
                    };
                    arches
                        .into_iter()
                        .map(|a| (vmagent::contract::Kind::Knc.name().to_string(), a))
                        .collect()
                }
                Some(path) => {
                    let cfg = match config::load(path) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("Error: {e}");
                            return ExitCode::FAILURE;
                        }
                    };
                    for p in podplane::deps::cluster_providers(&cfg) {
                        if !providers.contains(&p) {
                            providers.push(p);
                        }
                    }
                    podplane::tfgen::cluster::required_targets(&cfg)
                        .into_keys()
                        .filter(|(_, a)| arch.is_empty() || arch.contains(a))
                        .collect()
                }
            };
            let mut out = std::io::stdout();
            for (kind, a) in &targets {
                let r = runtime.block_on(podplane::deps::download(
                    &deps,
                    kind,
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
    /// AWS: install and start the SSM agent on the node.
    #[arg(long)]
    enable_ssm: bool,
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
                enable_ssm: false,
            }
        }
    };
    facts.enable_ssm = a.enable_ssm;
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
        #[arg(short = 'f', long = "cluster-config", visible_alias = "file", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
    },
    /// Print the JSON schema of the cluster config file.
    Schema,
    /// Generate the cluster's OpenTofu/Terraform files next to the config, then init and apply.
    ///
    /// Without a config file, a wizard asks for the essentials and writes one first.
    ///
    /// Writes podplane.cluster.*.tf, the pinned node manifests, the userdata template and the
    /// schema copy; other files in the directory are left alone. The node manifests come from
    /// the deps cache (fetched when missing). OpenTofu is `$PODPLANE_TF_CMD`, else `tofu`, else
    /// `terraform`.
    Create {
        /// Cluster config file.
        #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Generate the files only; do not run OpenTofu/Terraform.
        #[arg(long)]
        no_apply: bool,
        /// Apply without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Scale the Nstance groups to zero, wait for their VMs to go, then destroy the cluster.
    ///
    /// Reads the outputs of the applied configuration; AWS credentials come from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
    Delete {
        /// Cluster config file.
        #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Validate the config only; destroy nothing.
        #[arg(long)]
        no_apply: bool,
        /// Destroy without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
}

/// Runs a `cluster` subcommand; the error is the user-facing message.
fn run_cluster(command: ClusterCommand) -> Result<(), String> {
    match command {
        ClusterCommand::Validate { file } => {
            podplane::tfgen::load_and_validate(&file).map_err(|e| e.to_string())?;
            println!("{} is valid", file.display());
        }
        ClusterCommand::Schema => print!("{}", config::schema_json()),
        ClusterCommand::Create {
            file,
            no_apply,
            auto_approve,
        } => {
            let deps = podplane::deps::Deps::from_env();
            let mut file = std::path::absolute(&file).unwrap_or(file);
            if !file.exists() {
                // No config yet: the wizard writes one (possibly in another directory).
                let stdin = std::io::stdin();
                file = podplane::wizard::create_config_interactively(
                    &file,
                    &mut stdin.lock(),
                    &mut std::io::stdout(),
                )
                .map_err(|e| e.to_string())?;
            }
            let dir = podplane::create::generate(&file, &deps).map_err(|e| e.to_string())?;
            println!(
                "Generated Podplane OpenTofu/Terraform files in {}",
                dir.display()
            );
            if no_apply {
                return Ok(());
            }
            let runner = tf_runner(&dir)?;
            runner.init().map_err(|e| e.to_string())?;
            let stdin = std::io::stdin();
            let ok = podplane::tfrun::confirm(
                "Apply generated OpenTofu/Terraform changes?",
                auto_approve,
                &mut stdin.lock(),
                &mut std::io::stdout(),
            )
            .map_err(|e| format!("read the answer: {e}"))?;
            if !ok {
                return Err("apply cancelled".into());
            }
            runner.apply(auto_approve).map_err(|e| e.to_string())?;
        }
        ClusterCommand::Delete {
            file,
            no_apply,
            auto_approve,
        } => {
            let path = std::path::absolute(&file).unwrap_or(file);
            let cfg = config::load(&path).map_err(|e| e.to_string())?;
            if no_apply {
                println!("--no-apply set; cluster config validated and no destroy was run.");
                return Ok(());
            }
            let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let runner = tf_runner(&dir)?;
            let provider = cfg
                .cluster
                .providers
                .first()
                .ok_or("cluster delete requires at least one provider")?;
            if provider.kind != "aws" {
                return Err("cluster delete currently supports AWS clusters only".into());
            }
            let mut opts = podplane::delete::DeleteOptions::new(&cfg.cluster.id, &provider.region);
            opts.auto_approve = auto_approve;
            let stdin = std::io::stdin();
            podplane::delete::delete_cluster(
                &runner,
                &opts,
                &mut stdin.lock(),
                &mut std::io::stdout(),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// OpenTofu/Terraform for `dir`: `$PODPLANE_TF_CMD`, else `tofu`, else `terraform`.
fn tf_runner(dir: &std::path::Path) -> Result<podplane::tfrun::Runner, String> {
    let over = std::env::var("PODPLANE_TF_CMD")
        .ok()
        .filter(|v| !v.is_empty());
    let exe = podplane::tfrun::locate(over.as_deref(), std::env::var_os("PATH").as_deref())
        .map_err(|e| e.to_string())?;
    Ok(podplane::tfrun::Runner::new(exe, dir.to_path_buf()))
}

fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's default is 2); help exits 0.
    // Installed as `docker-credential-podplane`, this binary is the docker credential helper.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        == Some(std::ffi::OsStr::new("docker-credential-podplane"))
    {
        args.splice(1..1, ["hooks".into(), "docker-credentials".into()]);
    }
    let cli = match Cli::try_parse_from(args) {
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
    let version = env!("CARGO_PKG_VERSION");
    // Every command but `completion` works against the user's config directory; its
    // config.json is created on first use and must be version 1.
    if !matches!(cli.command, Some(Command::Completion { .. })) {
        let dirs = podplane::dirs::Dirs::from_process_env();
        if let Err(e) = podplane::dirs::ensure_config_file(&dirs.config) {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match cli.command {
        Some(Command::Version) => println!("Version: {version} ({COMMIT})"),
        Some(Command::Cluster { command }) => {
            if let Err(message) = run_cluster(command) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        Some(Command::Deps { command }) => return run_deps(command),
        Some(Command::Oidc { command }) => {
            if let Err(message) = run_oidc(command) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        Some(Command::Login(a)) => {
            if let Err(message) = run_login(a) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        Some(Command::Logout(a)) => {
            if let Err(message) = run_logout(a) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
        Some(Command::Hooks { command }) => {
            if let Err(message) = run_hooks(command) {
                eprintln!("Error: {message}");
                return ExitCode::FAILURE;
            }
        }
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
            if cli.verbose || std::env::var_os("PODPLANE_DEBUG").is_some_and(|v| !v.is_empty()) {
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
