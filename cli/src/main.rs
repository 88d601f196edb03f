//! `podplane`: the cluster CLI. Argument handling and output only; the commands live in the
//! `podplane` library, on top of the shared `vmagent` library (manifest model, fetch).

/// mimalloc instead of glibc's malloc: `cluster seed` decodes and rewrites thousands of small
/// JSON objects, and glibc's fastbin consolidation on the frees made a third of its time
/// (`tests/bench/cluster-seed`: 125 ms with glibc, 80 ms with mimalloc, same binary otherwise).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::Parser;
use podplane::args::{
    Cli, ClusterCommand, Command, DepsCommand, HooksCommand, LoginArgs, LogoutArgs, OidcCommand,
    Output, UserdataArgs,
};
use podplane::config;
use podplane::userdata;

/// Commit of this build, when the build injects it (`PODPLANE_COMMIT=<hash> cargo build`).
const COMMIT: &str = match option_env!("PODPLANE_COMMIT") {
    Some(c) => c,
    None => "",
};

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
        (Some(id), _) => {
            login::check_cluster_arg(&id).map_err(|e| e.to_string())?;
            id
        }
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

/// `install`, `uninstall`, `components`.
fn run_components(command: Command) -> Result<(), String> {
    use podplane::args::{KubeTarget, TableOrJson};
    use podplane::components::{self, Io, cluster::Target};
    use std::io::IsTerminal as _;
    let target = |t: KubeTarget| Target {
        kubeconfig: t.kubeconfig,
        context: t.context,
        request_timeout: t.request_timeout,
    };
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout();
    let terminal = stdout.is_terminal()
        && std::env::var("TERM").as_deref() != Ok("dumb")
        && std::env::var("CI").as_deref() != Ok("true");
    let mut io = Io {
        stdin: &mut stdin,
        out: &mut stdout,
        terminal,
    };
    let r = match command {
        Command::Install(a) => {
            components::install(&target(a.target), &a.component, a.yes, a.timeout, &mut io)
        }
        Command::Uninstall(a) => {
            components::uninstall(&target(a.target), &a.component, a.yes, &mut io)
        }
        Command::Components(a) => {
            let rows = components::list(&target(a.target)).map_err(|e| e.to_string())?;
            match a.output {
                TableOrJson::Table => print!("{}", components::table(&rows)),
                TableOrJson::Json => println!("{}", json(&rows)),
            }
            Ok(())
        }
        _ => Ok(()),
    };
    r.map_err(|e| e.to_string())
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

/// Pretty JSON of a report (serialising these plain structs cannot fail).
fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
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
        DepsCommand::Verify => match runtime.block_on(podplane::deps::check::verify(&deps)) {
            Ok((checked, problems)) if problems.is_empty() => {
                println!("All {checked} cached items verified.");
                ExitCode::SUCCESS
            }
            Ok((checked, problems)) => {
                for p in &problems {
                    println!("missing or corrupt: {p}");
                }
                eprintln!(
                    "Error: {} of the cache's items are missing or corrupt ({checked} checked).",
                    problems.len()
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("Error verifying the dependency cache: {e}");
                ExitCode::FAILURE
            }
        },
        DepsCommand::Status { output } => {
            if output == Output::Text {
                println!("Fetching latest dependency manifest...");
            }
            let report = runtime.block_on(podplane::deps::status(
                &deps,
                vmagent::contract::Kind::Knc.name(),
                &podplane::deps::host_arch(),
            ));
            match report {
                Ok(r) => {
                    match output {
                        Output::Text => println!("{r}"),
                        Output::Json => println!("{}", json(&r)),
                    }
                    ExitCode::from(r.exit_code())
                }
                Err(e) => {
                    eprintln!("Error checking for new packages: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        DepsCommand::Download {
            arch,
            mut providers,
            vmconfig,
            components,
            templates,
            addons,
            skip_components_git,
            dry_run,
            cluster_config,
            seeds,
            skip_seeds,
        } => {
            let targets: Vec<(String, String)> = match &cluster_config {
                None => {
                    let arches = if arch.is_empty() {
                        vec![podplane::deps::host_arch()]
                    } else {
                        arch.iter().map(|a| a.name().to_string()).collect()
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
                        .filter(|(_, a)| arch.is_empty() || arch.iter().any(|x| x.name() == a))
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
            // Once for every arch: the components and templates manifests and all images.
            let mut archs: Vec<String> = Vec::new();
            for (_, a) in &targets {
                if !archs.contains(a) {
                    archs.push(a.clone());
                }
            }
            let parts = podplane::deps::parts::PartsOptions {
                nodes: targets.clone(),
                vmconfig,
                components,
                templates,
                selection: podplane::deps::catalog::Selection {
                    archs,
                    providers,
                    addons,
                },
                dry_run,
                skip_components_git,
            };
            if let Err(e) =
                runtime.block_on(podplane::deps::parts::download(&deps, &parts, &mut out))
            {
                eprintln!("Error downloading the latest dependency files: {e}");
                return ExitCode::FAILURE;
            }
            if !skip_seeds {
                let source = match &seeds {
                    Some(f) => podplane::seeds::manifest::Source::File(f),
                    None => podplane::seeds::manifest::Source::Published,
                };
                let r = runtime.block_on(podplane::seeds::manifest::download(
                    &deps,
                    source,
                    dry_run,
                    podplane::deps::interactive(),
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

fn run_userdata(a: UserdataArgs) -> Result<(), String> {
    let manifest = vmagent::manifest::Manifest::load(&a.manifest).map_err(|e| e.to_string())?;
    let mut facts = match &a.instance {
        None => userdata::Facts::nstance_placeholders(a.provider.name()),
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
                provider_kind: a.provider.name().to_string(),
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

/// The config `cluster create` works on. A file named with `-f` must exist. Without `-f`, a
/// missing default file starts the wizard, but only on a terminal: a script or CI job gets an
/// error instead of a prompt that waits for input nobody gives.
fn config_or_wizard(file: Option<PathBuf>) -> Result<PathBuf, String> {
    use std::io::IsTerminal;
    let given = file.is_some();
    let file = file.unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_FILE));
    let file = std::path::absolute(&file).unwrap_or(file);
    if file.exists() {
        return Ok(file);
    }
    if given {
        return Err(format!(
            "cluster config {} does not exist; check the path, or run `podplane cluster init -f {}` to write one",
            file.display(),
            file.display()
        ));
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "no cluster config at {} and no terminal to ask on; run `podplane cluster init` on a terminal (or pipe its answers to it), or pass -f FILE",
            file.display()
        ));
    }
    wizard(&file)
}

/// The wizard, writing a config at `file` (or another path it offers); returns that path.
fn wizard(file: &std::path::Path) -> Result<PathBuf, String> {
    let stdin = std::io::stdin();
    let deps = podplane::deps::Deps::from_env();
    let mut pin_seed = |name: &str| -> Result<(String, String), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let pin = runtime
            .block_on(podplane::seeds::pin::pin_for(
                &deps,
                name,
                &mut std::io::stdout(),
            ))
            .map_err(|e| e.to_string())?;
        Ok((pin.version, pin.digest))
    };
    podplane::wizard::create_config_interactively(
        file,
        &mut stdin.lock(),
        &mut std::io::stdout(),
        &mut pin_seed,
    )
    .map_err(|e| e.to_string())
}

/// `cluster validate`. With `-o json` the verdict is a JSON object on stdout, and a problem is
/// said on stderr too (the exit code is 1 either way).
fn validate(file: &std::path::Path, output: Output) -> Result<(), String> {
    let result = podplane::tfgen::load_and_validate(file);
    if output == Output::Json {
        let report = match &result {
            Ok(_) => serde_json::json!({ "valid": true, "file": file.display().to_string() }),
            Err(e) => {
                // Read again for the line of a field a check refused; unreadable: no line.
                let text = std::fs::read_to_string(file).unwrap_or_default();
                let at = e.location_in(&text);
                serde_json::json!({
                    "valid": false,
                    "file": at.file,
                    "line": at.line,
                    "column": at.column,
                    "path": at.path,
                    "message": e.problem(),
                })
            }
        };
        println!("{}", json(&report));
    }
    result.map_err(|e| e.to_string())?;
    if output == Output::Text {
        println!("{} is valid", file.display());
    }
    Ok(())
}

/// Runs a `cluster` subcommand; the error is the user-facing message.
fn run_cluster(command: ClusterCommand) -> Result<(), String> {
    match command {
        ClusterCommand::Validate { file, output } => validate(&file, output)?,
        ClusterCommand::Schema => print!("{}", config::schema_json()),
        ClusterCommand::Init { file } => {
            let file = std::path::absolute(&file).unwrap_or(file);
            wizard(&file)?;
        }
        ClusterCommand::Create {
            file,
            no_apply,
            auto_approve,
        } => {
            let deps = podplane::deps::Deps::from_env();
            let file = config_or_wizard(file)?;
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
        ClusterCommand::Seed {
            file,
            values_file,
            dry_run,
            output,
            bucket,
            prefix,
        } => {
            let opts = podplane::seeds::command::SeedOptions {
                config: file,
                values_file,
                // Inline values (the generated Terraform's ACME overlay) come in the environment.
                values: std::env::var("PODPLANE_SEED_VALUES")
                    .ok()
                    .filter(|v| !v.trim().is_empty()),
                dry_run,
                output,
                bucket,
                prefix,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            runtime
                .block_on(podplane::seeds::command::run(
                    &opts,
                    &podplane::deps::Deps::from_env(),
                    &podplane::aws::EnvSource::Process,
                    &mut std::io::stdout(),
                ))
                .map_err(|e| e.to_string())?;
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
            opts.profile = provider.profile.clone();
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
    use std::io::IsTerminal;
    let no_color = podplane::tfrun::no_color_wanted(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stdout().is_terminal(),
    );
    Ok(podplane::tfrun::Runner::new(exe, dir.to_path_buf()).with_no_color(no_color))
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
    // Commands that keep state work against the user's config directory; its config.json is
    // created on first use and must be version 1. The read-only commands never write it, so
    // they work with a read-only or missing home.
    if cli.command.as_ref().is_some_and(Command::uses_config_dir) {
        let dirs = podplane::dirs::Dirs::from_process_env();
        if let Err(e) = podplane::dirs::ensure_config_file(&dirs.config) {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match cli.command {
        Some(Command::Version {
            output: Output::Text,
        }) => {
            println!("Version: {version} ({COMMIT})")
        }
        Some(Command::Version {
            output: Output::Json,
        }) => println!(
            "{}",
            json(&serde_json::json!({ "version": version, "commit": COMMIT }))
        ),
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
        Some(c @ (Command::Install(_) | Command::Uninstall(_) | Command::Components(_))) => {
            if let Err(message) = run_components(c) {
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
