// podplane's command line: the clap definitions only, no behaviour. Included (`include!`) by
// main.rs, which runs them, and by xtask, which generates the man pages and shell completions
// from them, so the documentation always matches the program. The includer brings `Parser`,
// `Subcommand`, `PathBuf` and `podplane::config` into scope.

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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
