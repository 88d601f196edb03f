//! podplane's command line: the clap definitions only, no behaviour. `main.rs` runs them and
//! `packaging/docgen` generates the man pages and shell completions from them, so the
//! documentation always matches the program.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config;

#[derive(Parser)]
#[command(
    name = "podplane",
    about = "Kubernetes clusters on plain cloud VMs",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print `podplane CLI <version>` and exit (with -v: the build's commit too).
    #[arg(short = 'V', long)]
    pub version: bool,
    /// With --version: build details too.
    #[arg(short, long, requires = "version")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the version and commit of this build (`-o json` for scripts).
    Version {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Create, delete, validate a cluster (OpenTofu/Terraform on AWS).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print a node's first-boot userdata for a pinned release manifest.
    ///
    /// Without --instance the per-instance values are placeholders (`{{ .Instance.ID }}` …)
    /// that Nstance fills in when it starts the VM; with --instance they are given, for a
    /// local VM or a test. This is the same script `cluster create` puts in the generated
    /// files.
    ///
    /// Example: `podplane userdata --manifest vmconfig.json --provider aws`
    Userdata(UserdataArgs),
    /// Deploy an Easy OIDC server (OpenTofu/Terraform) from podplane.oidc.jsonc.
    Oidc {
        #[command(subcommand)]
        command: OidcCommand,
    },
    /// Log in to a cluster's OIDC issuer and set up kubectl access (context = cluster id).
    ///
    /// Example: `podplane login -f podplane.cluster.jsonc` then `kubectl --context <id> get nodes`
    Login(LoginArgs),
    /// Remove a cluster's stored tokens and the kubeconfig entries login made.
    ///
    /// Example: `podplane logout --cluster my-cluster -y`
    Logout(LogoutArgs),
    /// Plumbing run by kubectl and docker, not by people.
    #[command(hide = true)]
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// The dependency cache: the published node manifest and the artifacts it pins.
    Deps {
        #[command(subcommand)]
        command: DepsCommand,
    },
    /// Enable a platform component (and the components it depends on) on a running cluster,
    /// and wait until their HelmReleases are Ready.
    ///
    /// Example: `podplane install traefik --context my-cluster`
    Install(InstallArgs),
    /// Disable a platform component on a running cluster (Flux removes it).
    ///
    /// Example: `podplane uninstall traefik -y`
    Uninstall(UninstallArgs),
    /// List the cluster's platform components: enabled, core, namespace, dependencies, status.
    ///
    /// Example: `podplane components -o json`
    Components(ComponentsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: `podplane completion bash > ~/.local/share/bash-completion/completions/podplane`
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the command reads or writes the user's config directory. New commands default
    /// to yes; the read-only ones (printing, validating) are listed.
    pub fn uses_config_dir(&self) -> bool {
        !matches!(
            self,
            Command::Version { .. }
                | Command::Completion { .. }
                | Command::Userdata(_)
                | Command::Cluster {
                    command: ClusterCommand::Validate { .. } | ClusterCommand::Schema
                }
                | Command::Oidc {
                    command: OidcCommand::Schema
                }
        )
    }
}

#[derive(Subcommand)]
pub enum OidcCommand {
    /// Generate podplane.oidc.*.tf next to the config, then init and apply.
    ///
    /// Example: `podplane oidc create -f podplane.oidc.jsonc`
    Create {
        /// OIDC config file.
        #[arg(short = 'f', long = "oidc-config", default_value = crate::oidc::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Generate the files only; do not run OpenTofu/Terraform.
        #[arg(long)]
        no_apply: bool,
        /// Apply without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Validate the config, confirm, and destroy the OIDC server.
    ///
    /// Example: `podplane oidc delete -y`
    Delete {
        /// OIDC config file.
        #[arg(short = 'f', long = "oidc-config", default_value = crate::oidc::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Validate the config only; destroy nothing.
        #[arg(long)]
        no_apply: bool,
        /// Destroy without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Print the JSON schema of the OIDC config file.
    ///
    /// Example: `podplane oidc schema > podplane.oidc.schema.json`
    Schema,
}

/// `-o/--output`: for people, or for scripts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum DepsCommand {
    /// Download and verify into the cache: the node manifests and artifacts, the components and
    /// templates manifests, every image they pin, the template charts and the components source.
    ///
    /// Example: `podplane deps download -f podplane.cluster.jsonc`
    Download {
        /// Comma-separated architectures [default: this machine's, or PODPLANE_ARCH].
        #[arg(long, value_delimiter = ',', value_enum)]
        arch: Vec<vmagent::contract::Arch>,
        /// Provider-specific artifacts to include too (comma-separated, or all).
        #[arg(long, value_delimiter = ',', value_parser = provider_names())]
        providers: Vec<String>,
        /// Use this manifest file instead of the published one.
        #[arg(long, value_name = "FILE")]
        vmconfig: Option<PathBuf>,
        /// Use this components manifest instead of the published one.
        #[arg(long, value_name = "FILE")]
        components: Option<PathBuf>,
        /// Use this templates manifest instead of the published one.
        #[arg(long, value_name = "FILE")]
        templates: Option<PathBuf>,
        /// Addon images to cache beyond the recommended addons (comma-separated, or all).
        #[arg(long, value_delimiter = ',')]
        addons: Vec<String>,
        /// Do not mirror the components source's Git repository.
        #[arg(long)]
        skip_components_git: bool,
        /// Say what would be downloaded; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Cache what this cluster needs: the node kinds and arches of its pools (unless
        /// --arch narrows them) and its providers' artifacts.
        #[arg(short = 'f', long = "cluster-config", value_name = "FILE")]
        cluster_config: Option<PathBuf>,
        /// Use this seeds manifest instead of the published one (its snapshots may be files
        /// relative to it).
        #[arg(long, value_name = "FILE", conflicts_with = "skip_seeds")]
        seeds: Option<PathBuf>,
        /// Do not cache the seeds manifest and snapshots.
        #[arg(long)]
        skip_seeds: bool,
    },
    /// Compare the published manifests with the cached ones, and the cached images with the
    /// registry layout.
    ///
    /// Exits 0 when the cache is up to date, 2 when `deps download` would fetch something,
    /// 1 on an error (said on stderr). Example: `podplane deps status -o json`.
    Status {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Re-hash everything the cache holds and name what is missing or corrupt.
    ///
    /// Exits 0 when all is well, 1 when something is wrong (each line says the command that
    /// repairs it). Example: `podplane deps verify`.
    Verify,
}

/// The provider names and `all`, listed by help and completion.
pub fn provider_names() -> clap::builder::PossibleValuesParser {
    let mut names = vmagent::contract::Provider::NAMES.to_vec();
    names.push("all");
    clap::builder::PossibleValuesParser::new(names)
}

#[derive(clap::Args)]
pub struct UserdataArgs {
    /// The standalone release manifest (its vmagent entry pins the agent's tarball).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Where the node runs.
    #[arg(long, value_enum)]
    pub provider: vmagent::contract::Provider,
    /// Download from this deps mirror instead of upstream URLs.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    #[arg(long, default_value = "")]
    pub aws_account_id: String,
    #[arg(long, default_value = "")]
    pub google_project_id: String,
    /// File of SSH public keys for the admin user (immutable: changing them replaces VMs).
    #[arg(long, value_name = "FILE")]
    pub ssh_authorized_keys_file: Option<PathBuf>,
    /// Concrete instance values instead of Nstance placeholders (local VMs, tests):
    /// ID,CLUSTER,REGION,ZONE,TYPE,REGISTRATION_ADDR,AGENT_ADDR,NONCE,CA_CERT_BASE64.
    #[arg(long, value_name = "VALUES")]
    pub instance: Option<String>,
    /// AWS: install and start the SSM agent on the node.
    #[arg(long)]
    pub enable_ssm: bool,
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Load and fully validate a cluster config, printing the first problem found.
    ///
    /// Generates and writes nothing.
    ///
    /// With `-o json`, prints `{"valid": true, "file": ...}`, or the problem as an object
    /// with its file, line, column, config path and message (exit 1).
    ///
    /// Example: `podplane cluster validate -f podplane.cluster.jsonc -o json`
    Validate {
        /// Cluster config file.
        #[arg(short = 'f', long = "cluster-config", visible_alias = "file", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the JSON schema of the cluster config file.
    ///
    /// Example: `podplane cluster schema > podplane.cluster.schema.json`
    Schema,
    /// Ask for the essentials and write a new cluster config (the wizard).
    ///
    /// Example: `podplane cluster init` then `podplane cluster create`.
    Init {
        /// Where to write it (when it exists, the wizard offers another name).
        #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
    },
    /// Generate the cluster's OpenTofu/Terraform files next to the config, then init and apply.
    ///
    /// Without a config file (and on a terminal), the wizard asks for the essentials and
    /// writes one first.
    ///
    /// Writes podplane.cluster.*.tf, the pinned node manifests, the userdata template and the
    /// schema copy; other files in the directory are left alone. The node manifests come from
    /// the deps cache (fetched when missing). OpenTofu is `$PODPLANE_TF_CMD`, else `tofu`, else
    /// `terraform`.
    ///
    /// Example: `podplane cluster create --no-apply`
    Create {
        /// Cluster config file [default: podplane.cluster.jsonc; when it does not exist and
        /// this is a terminal, the wizard writes it].
        #[arg(short = 'f', long = "cluster-config", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Generate the files only; do not run OpenTofu/Terraform.
        #[arg(long)]
        no_apply: bool,
        /// Apply without asking.
        #[arg(short = 'y', long)]
        auto_approve: bool,
    },
    /// Write the cluster's bootstrap.netsy from its pinned seed and upload it create-only.
    ///
    /// The seed (cluster.seed name, version, digest) comes from the deps cache, fetched when
    /// missing. It is interpolated for the config (service network, platform-components
    /// values, components source, image mirror) and uploaded to <prefix>/bootstrap.netsy in
    /// the Netsy bucket only if that prefix is empty (If-None-Match: *); the identical file
    /// already there counts as done. Netsy state is never overwritten. AWS credentials as for
    /// `cluster delete`. The generated Terraform runs this once the bucket exists.
    ///
    /// Example: `podplane cluster seed --dry-run`
    Seed {
        /// Cluster config file.
        #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
        file: PathBuf,
        /// Platform-components values applied last (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        values_file: Option<PathBuf>,
        /// Write bootstrap.netsy locally and say where it would go; upload nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where --dry-run writes the file [default: bootstrap.netsy next to the config].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The Netsy bucket [default: <id>-<account>-netsy from the AWS provider's account].
        #[arg(long)]
        bucket: Option<String>,
        /// Key prefix in the bucket.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Scale the Nstance groups to zero, wait for their VMs to go, then destroy the cluster.
    ///
    /// Reads the outputs of the applied configuration; AWS credentials come from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
    ///
    /// Example: `podplane cluster delete -f podplane.cluster.jsonc`
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

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Cluster config file.
    #[arg(short = 'f', long = "cluster-config", default_value = config::DEFAULT_CONFIG_FILE)]
    pub file: PathBuf,
    /// The API server's CA: a file path, an http(s) URL or inline PEM.
    #[arg(long, value_name = "PATH|URL|PEM")]
    pub ca_cert: Option<String>,
    /// Loopback port of the login callback (http://localhost:PORT/callback).
    #[arg(long, default_value_t = 8000)]
    pub callback_port: u16,
    /// Take the code from the issuer's redirect without a browser (issuers that approve
    /// without a form).
    #[arg(long)]
    pub headless: bool,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// Log out without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Cluster id.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Cluster config file (its id).
    #[arg(short = 'f', long = "cluster-config")]
    pub file: Option<PathBuf>,
    /// Kube context whose cluster to log out of [default: the current context].
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file [default: first of KUBECONFIG, else ~/.kube/config].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum HooksCommand {
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

/// Which cluster the component commands talk to.
#[derive(clap::Args)]
pub struct KubeTarget {
    /// The kube context (default: the kubeconfig's current context).
    #[arg(long)]
    pub context: Option<String>,
    /// The kubeconfig (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How long one request to the API server may take (e.g. 5s, 1m).
    #[arg(long, default_value = "30s", value_parser = vmagent::cli::parse_duration)]
    pub request_timeout: std::time::Duration,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// The component's name (`podplane components` lists them).
    pub component: String,
    #[command(flatten)]
    pub target: KubeTarget,
    /// Enable the dependencies too without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How long to wait for the HelmReleases to be Ready (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = vmagent::cli::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    /// The component's name.
    pub component: String,
    #[command(flatten)]
    pub target: KubeTarget,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(clap::Args)]
pub struct ComponentsArgs {
    #[command(flatten)]
    pub target: KubeTarget,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TableOrJson::Table)]
    pub output: TableOrJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}
