//! `vmagent bootstrap`: what VM userdata runs at first boot. It records the instance facts
//! Nstance rendered into the userdata (upstream's user-data.sh), then runs the whole node flow:
//! hostname = instance ID; the `admin` login user with its keys and sudoers when SSH keys are
//! given (first, so an early failure can be debugged); `user-data.env` (0600); the Nstance nonce
//! and CA; the pinned manifest; then wait for the Nstance registration address, fetch, install
//! and apply. Re-running it converges: install's marker and apply's diff make it idempotent.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::accounts::{self, Spec, UserSpec};
use crate::apply::Services;
use crate::contract::{Provider, UserDataKey};
use crate::fsutil::under_root;
use crate::host::Host;
use crate::install::{self, INSTALLED, InstallOptions, MANIFEST};
use crate::manifest::Manifest;
use crate::safefs::{Perm, Root};
use crate::settings::USER_DATA_ENV;

pub use crate::contract::InstanceFacts;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fact(#[from] crate::contract::FactError),
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error(transparent)]
    SafeFs(#[from] crate::safefs::SafeFsError),
    #[error(transparent)]
    Accounts(#[from] accounts::AccountsError),
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestFileError),
    #[error(transparent)]
    Wait(#[from] crate::fetch::WaitError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    Install(#[from] install::InstallError),
    #[error(transparent)]
    Configure(#[from] crate::converge::ConfigureError),
}

impl InstanceFacts {
    /// The checks the CLI makes when it renders userdata, made again here: each fact against its
    /// `user-data.env` key's rule (the contract's, the one the CLI applies), and the quoting
    /// rules, as the facts end up single-quoted in a file that shell scripts may source.
    pub fn validate(&self) -> Result<(), BootstrapError> {
        let bad = |m: String| Err(BootstrapError::Invalid(m));
        for (flag, v) in [
            ("--instance-id", &self.instance_id),
            ("--cluster-id", &self.cluster_id),
            ("--provider", &self.provider),
        ] {
            if v.is_empty() {
                return bad(format!("{flag} is required"));
            }
        }
        for k in UserDataKey::ALL {
            k.validate(&format!("--{}", k.flag()), k.value_in(self))?;
        }
        for (flag, v) in [
            ("--cluster-id", &self.cluster_id),
            ("--region", &self.region),
            ("--zone", &self.zone),
            ("--instance-type", &self.instance_type),
            ("--aws-account-id", &self.aws_account_id),
            ("--google-project-id", &self.google_project_id),
            ("--nstance-ca-cert", &self.nstance_ca_cert),
            ("--registration-addr", &self.registration_addr),
            ("--agent-addr", &self.agent_addr),
            ("--nonce", &self.nonce),
        ] {
            if v.contains(['\'', '\n', '\r']) {
                return bad(format!("{flag} must not contain a quote or a line break"));
            }
        }
        if self.ssh_authorized_keys.contains(['\0', '\r']) {
            return bad("--ssh-authorized-keys must not contain NUL or CR".into());
        }
        if self.provider == Provider::Aws.name() && self.aws_account_id.is_empty() {
            return bad("--aws-account-id is required on aws".into());
        }
        Ok(())
    }

    /// `user-data.env`: each [`UserDataKey`] with the value of the flag that carries it, in the
    /// contract's order (upstream's).
    pub fn user_data_env(&self) -> String {
        let pairs: Vec<(&str, &str)> = UserDataKey::ALL
            .iter()
            .map(|k| (k.name(), k.value_in(self)))
            .collect();
        crate::render::env_file(&pairs)
    }
}

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub root: PathBuf,
    pub facts: InstanceFacts,
    /// The pinned manifest (userdata carries it).
    pub manifest: PathBuf,
    pub mirror: Option<String>,
    pub cache: Option<PathBuf>,
    /// Skip the wait for the registration address (tests, local experiments).
    pub no_wait: bool,
    pub wait_timeout: Duration,
    pub services: Services,
}

/// Write a root-owned file, never through a link (the nonce goes below nstance-agent's home).
fn write(root: &Path, path: &str, mode: u32, content: &[u8]) -> Result<(), BootstrapError> {
    let fs = Root::open(root)?;
    let perm = Perm { mode, owner: None };
    fs.write_file(&crate::host::SystemHost, path, content, perm)?
        .sync()?;
    Ok(())
}

fn write_owned(
    root: &Path,
    host: &dyn Host,
    path: &str,
    mode: u32,
    (user, group): (&str, &str),
    content: &[u8],
) -> Result<(), BootstrapError> {
    let fs = Root::open(root)?;
    let perm = Perm {
        mode,
        owner: Some((user, group)),
    };
    fs.write_file(host, path, content, perm)?.sync()?;
    Ok(())
}

/// Record the instance facts (steps that need no download).
pub fn record_facts(root: &Path, f: &InstanceFacts, host: &dyn Host) -> Result<(), BootstrapError> {
    f.validate()?;
    // The host name is the instance ID.
    write(
        root,
        "/etc/hostname",
        0o644,
        format!("{}\n", f.instance_id).as_bytes(),
    )?;
    if root == Path::new("/")
        && let Err(e) = host.run(&crate::host::Cmd::new("hostname").arg(&f.instance_id))
    {
        // /etc/hostname holds it for the next boot either way.
        log::warn!("cannot set the running host name: {e}");
    }
    // The admin user first, so a failure later can be debugged over SSH.
    let keys: Vec<&str> = f
        .ssh_authorized_keys
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !keys.is_empty() {
        let spec = Spec {
            users: vec![UserSpec {
                name: "admin",
                system: false,
                shell: "/bin/bash",
                home: Some("/home/admin"),
                groups: vec![],
            }],
            dirs: vec![],
            executables: vec![],
            executable_dirs: vec![],
            libraries: vec![],
            admin: true,
        };
        accounts::ensure(root, &spec, host)?;
        // The admin account owns its home: never follow a link it may have planted there.
        let fs = Root::open(root)?;
        fs.create_dir_all("/home/admin/.ssh")?;
        fs.set_perm(
            host,
            "/home/admin/.ssh",
            Some(("admin", "admin")),
            Some(0o700),
        )?;
        let text = format!("{}\n", keys.join("\n"));
        write_owned(
            root,
            host,
            "/home/admin/.ssh/authorized_keys",
            0o600,
            ("admin", "admin"),
            text.as_bytes(),
        )?;
    }
    write(root, USER_DATA_ENV, 0o600, f.user_data_env().as_bytes())?;
    if !f.nonce.is_empty() {
        write(
            root,
            "/opt/nstance-agent/identity/nonce.jwt",
            0o600,
            format!("{}\n", f.nonce).as_bytes(),
        )?;
    }
    Ok(())
}

/// The whole first boot.
pub async fn bootstrap(
    opts: &BootstrapOptions,
    host: &dyn Host,
    stop: &AtomicBool,
) -> Result<(), BootstrapError> {
    let root = opts.root.as_path();
    record_facts(root, &opts.facts, host)?;
    let installed = under_root(root, INSTALLED).exists();
    if !installed {
        let manifest = Manifest::load(&opts.manifest)?;
        let bytes = std::fs::read(&opts.manifest).map_err(|source| BootstrapError::Write {
            path: opts.manifest.display().to_string(),
            source,
        })?;
        if under_root(root, MANIFEST) != opts.manifest {
            write(root, MANIFEST, 0o644, &bytes)?;
        }
        if !opts.no_wait && !opts.facts.registration_addr.is_empty() {
            crate::fetch::wait_for(&opts.facts.registration_addr, opts.wait_timeout, 1.0).await?;
        }
        let dir = under_root(root, install::ARTIFACTS);
        let targets: Vec<_> = manifest
            .install_items(Some(&opts.facts.provider))
            .iter()
            .map(|i| crate::fetch::Target::for_item(i, &dir, opts.mirror.as_deref()))
            .collect();
        let mut fo = crate::fetch::FetchOptions::new(&dir);
        fo.cache = opts.cache.clone();
        let s = crate::fetch::fetch(targets, &fo).await?;
        log::info!(files = s.files, downloaded = s.downloaded; "bootstrap: {} artifacts ready ({} downloaded)", s.files, s.downloaded);
        let io = InstallOptions {
            provider: Some(opts.facts.provider.clone()),
            ..InstallOptions::new(root)
        };
        install::install(host, &io, stop)?;
    }
    let (_, report) = crate::converge::apply(
        root,
        host,
        &crate::converge::overrides_from_env(host),
        opts.services,
        &Default::default(),
    )?;
    log::info!(written = report.written.len(), actions = report.actions.len();
        "bootstrap: node configured ({} files, {} service actions)", report.written.len(), report.actions.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> InstanceFacts {
        InstanceFacts {
            instance_id: "i-0abc".into(),
            cluster_id: "c1".into(),
            provider: "aws".into(),
            region: "eu-west-1".into(),
            zone: "eu-west-1a".into(),
            instance_type: "m7i.large".into(),
            aws_account_id: "123456789012".into(),
            nstance_ca_cert: "LS0tCg==".into(),
            registration_addr: "10.0.0.5:8990".into(),
            agent_addr: "10.0.0.5:8991".into(),
            nonce: "eyJhbGciOi.x.y".into(),
            ssh_authorized_keys: "ssh-ed25519 AAAA a@b\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn facts_are_validated() {
        facts().validate().unwrap();
        let mut f = facts();
        f.provider = "azure".into();
        assert!(
            f.validate()
                .unwrap_err()
                .to_string()
                .contains("--provider \"azure\" is refused (PROVIDER_KIND in user-data.env)")
        );
        let mut f = facts();
        f.provider.clear();
        assert!(f.validate().unwrap_err().to_string().contains("--provider"));
        let mut f = facts();
        f.zone = "a'b".into();
        assert!(
            f.validate()
                .unwrap_err()
                .to_string()
                .contains("--zone must not contain")
        );
        let mut f = facts();
        f.instance_id = "i 1".into();
        assert!(matches!(
            f.validate(),
            Err(BootstrapError::Fact(e)) if e.key == UserDataKey::InstanceId
        ));
        let mut f = facts();
        f.aws_account_id.clear();
        assert!(
            f.validate()
                .unwrap_err()
                .to_string()
                .contains("--aws-account-id")
        );
        let mut f = facts();
        f.ssh_authorized_keys = "a\rb".into();
        assert!(f.validate().is_err());
    }

    #[test]
    fn user_data_env_has_upstreams_keys() {
        let text = facts().user_data_env();
        let m = crate::envfile::parse(&text, Path::new("u.env")).unwrap();
        assert_eq!(m["INSTANCE_ID"], "i-0abc");
        assert_eq!(m["NSTANCE_SERVER_AGENT_ADDR"], "10.0.0.5:8991");
        assert_eq!(m["IMMUTABLE_SSH_AUTHORIZED_KEYS"], "ssh-ed25519 AAAA a@b\n");
        assert_eq!(m.len(), 12);
    }

    #[test]
    fn record_facts_writes_files_with_modes() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        // admin exists already, so no account tool runs.
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nadmin:x:1000:\n").unwrap();
        let host = crate::host::RecordingHost::new();
        record_facts(root.path(), &facts(), &host).unwrap();
        let mode = |p: &str| std::fs::metadata(root.path().join(p)).unwrap().mode() & 0o777;
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
            "i-0abc\n"
        );
        assert_eq!(mode("opt/podplane/etc/user-data.env"), 0o600);
        assert_eq!(mode("opt/nstance-agent/identity/nonce.jwt"), 0o600);
        assert_eq!(mode("home/admin/.ssh"), 0o700);
        assert_eq!(mode("home/admin/.ssh/authorized_keys"), 0o600);
        assert_eq!(mode("etc/sudoers.d/admin"), 0o440);
        let lines = host.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("chown admin:admin") && l.ends_with("/home/admin/.ssh")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("useradd")), "{lines:?}");
    }
}
