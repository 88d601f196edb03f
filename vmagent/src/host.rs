//! The one seam between vmagent and the outside world: running system programs (dpkg, useradd,
//! systemctl, …), changing file ownership, and the probes that depend on the machine rather than
//! on `--root` (DNS, this process's capabilities, its environment). [`SystemHost`] does it for
//! real; [`RecordingHost`] records what would be done and answers the probes from what a test
//! gave it, so the logic above can be tested without privileges and plans deterministically.
//!
//! Everything else vmagent does to files happens below `--root` with plain filesystem calls.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use crate::userdb::UserDb;

/// A program to run, with its arguments and extra environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The command line as a shell would show it (for logs and errors).
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|s| {
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("'{}'", s.replace('\'', "'\\''"))
                } else {
                    s.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished program printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed ({status}){}", tail(stderr))]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("cannot change the owner of {} to {owner}: {reason}", path.display())]
    Chown {
        path: PathBuf,
        owner: String,
        reason: String,
    },
}

fn tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        let last: Vec<&str> = t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .rev()
            .take(8)
            .collect();
        format!(
            ": {}",
            last.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )
    }
}

/// The outside world, as vmagent needs it.
pub trait Host: Send + Sync {
    /// Run a program to completion. A non-zero exit is an error carrying its stderr.
    fn run(&self, cmd: &Cmd) -> Result<Output, HostError>;

    /// Set the owner and group of the open file `file` (shown as `path`), by name, as the account
    /// database below `root` defines them. Always through the descriptor: a path could be
    /// swapped for a link between opening and changing it.
    fn chown(
        &self,
        root: &Path,
        file: BorrowedFd<'_>,
        path: &Path,
        user: &str,
        group: &str,
    ) -> Result<(), HostError>;

    /// The addresses `name` resolves to; empty when it does not resolve.
    fn resolve(&self, name: &str) -> Vec<IpAddr>;

    /// Can this process lower OOM scores? Only with CAP_SYS_RESOURCE in its bounding set, which
    /// unprivileged containers and some sandboxes drop.
    fn can_lower_oom_scores(&self) -> bool;

    /// A variable of this process's environment.
    fn env_var(&self, key: &str) -> Option<String>;
}

/// Is CAP_SYS_RESOURCE (24) in the bounding set of a `/proc/<pid>/status` text? Unknown (no
/// readable `CapBnd:` line) counts as yes.
pub fn bounding_set_allows_oom_adjust(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_none_or(|bnd| bnd & (1 << 24) != 0)
}

/// The real thing.
#[derive(Debug, Default)]
pub struct SystemHost;

impl Host for SystemHost {
    fn run(&self, cmd: &Cmd) -> Result<Output, HostError> {
        log::debug!(cmd = cmd.display().as_str(); "running {}", cmd.display());
        let out = std::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HostError::Spawn {
                cmd: cmd.display(),
                source,
            })?;
        let output = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if !out.status.success() {
            return Err(HostError::Failed {
                cmd: cmd.display(),
                status: out.status.to_string(),
                stderr: output.stderr,
            });
        }
        Ok(output)
    }

    fn chown(
        &self,
        root: &Path,
        file: BorrowedFd<'_>,
        path: &Path,
        user: &str,
        group: &str,
    ) -> Result<(), HostError> {
        let err = |reason: String| HostError::Chown {
            path: path.to_path_buf(),
            owner: format!("{user}:{group}"),
            reason,
        };
        let db = UserDb::load(root).map_err(|e| err(e.to_string()))?;
        let uid = db
            .uid(user)
            .ok_or_else(|| err(format!("no user {user:?} in {}/etc/passwd", root.display())))?;
        let gid = db.gid(group).ok_or_else(|| {
            err(format!(
                "no group {group:?} in {}/etc/group",
                root.display()
            ))
        })?;
        rustix::fs::fchown(
            file,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| err(e.to_string()))
    }

    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        (name, 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }

    fn can_lower_oom_scores(&self) -> bool {
        std::fs::read_to_string("/proc/self/status")
            .map(|s| bounding_set_allows_oom_adjust(&s))
            .unwrap_or(true)
    }

    fn env_var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

/// One thing a [`RecordingHost`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Run(Cmd),
    Chown {
        path: PathBuf,
        user: String,
        group: String,
    },
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recorded::Run(c) => write!(f, "{}", c.display()),
            Recorded::Chown { path, user, group } => {
                write!(f, "chown {user}:{group} {}", path.display())
            }
        }
    }
}

type Responder = Box<dyn Fn(&Cmd) -> Result<Output, HostError> + Send + Sync>;

/// Records every action and succeeds (or answers through a responder), for tests. Probes are
/// answered from what the test set: no name resolves, OOM scores can be lowered, the environment
/// is empty.
pub struct RecordingHost {
    actions: Mutex<Vec<Recorded>>,
    responder: Option<Responder>,
    names: BTreeMap<String, Vec<IpAddr>>,
    oom_adjust: bool,
    env: BTreeMap<String, String>,
}

impl Default for RecordingHost {
    fn default() -> RecordingHost {
        RecordingHost {
            actions: Mutex::new(Vec::new()),
            responder: None,
            names: BTreeMap::new(),
            oom_adjust: true,
            env: BTreeMap::new(),
        }
    }
}

impl RecordingHost {
    pub fn new() -> RecordingHost {
        RecordingHost::default()
    }

    /// Answer `run` calls with `f` instead of an empty success.
    pub fn with_responder(
        f: impl Fn(&Cmd) -> Result<Output, HostError> + Send + Sync + 'static,
    ) -> RecordingHost {
        RecordingHost {
            responder: Some(Box::new(f)),
            ..RecordingHost::default()
        }
    }

    /// Resolve `name` to `addrs`.
    pub fn with_name(mut self, name: &str, addrs: &[IpAddr]) -> RecordingHost {
        self.names.insert(name.into(), addrs.to_vec());
        self
    }

    /// Answer [`Host::can_lower_oom_scores`] with `yes`.
    pub fn with_oom_adjust(mut self, yes: bool) -> RecordingHost {
        self.oom_adjust = yes;
        self
    }

    /// Set an environment variable.
    pub fn with_env(mut self, key: &str, value: &str) -> RecordingHost {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn actions(&self) -> Vec<Recorded> {
        self.actions.lock().unwrap().clone()
    }

    /// The recorded actions as display lines.
    pub fn lines(&self) -> Vec<String> {
        self.actions().iter().map(ToString::to_string).collect()
    }
}

impl Host for RecordingHost {
    fn run(&self, cmd: &Cmd) -> Result<Output, HostError> {
        self.actions
            .lock()
            .unwrap()
            .push(Recorded::Run(cmd.clone()));
        match &self.responder {
            Some(f) => f(cmd),
            None => Ok(Output::default()),
        }
    }

    fn chown(
        &self,
        _root: &Path,
        _file: BorrowedFd<'_>,
        path: &Path,
        user: &str,
        group: &str,
    ) -> Result<(), HostError> {
        self.actions.lock().unwrap().push(Recorded::Chown {
            path: path.to_path_buf(),
            user: user.into(),
            group: group.into(),
        });
        Ok(())
    }

    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        self.names.get(name).cloned().unwrap_or_default()
    }

    fn can_lower_oom_scores(&self) -> bool {
        self.oom_adjust
    }

    fn env_var(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }
}

/// `program` run inside `root`: as is when `root` is `/`, else through `chroot`.
pub fn in_root(root: &Path, program: &str) -> Cmd {
    if root == Path::new("/") {
        Cmd::new(program)
    } else {
        Cmd::new("chroot").arg(root.to_string_lossy()).arg(program)
    }
}

/// Path as seen from inside `root` (`<root>/opt/x` → `/opt/x`).
pub fn inside(root: &Path, path: &Path) -> OsString {
    match path.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel).into_os_string(),
        Err(_) => path.as_os_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_needs_it() {
        let c = Cmd::new("usermod").args(["-G", "", "it's", "a b"]);
        assert_eq!(c.display(), "usermod -G '' 'it'\\''s' 'a b'");
    }

    #[test]
    fn system_host_reports_failures_with_stderr() {
        let h = SystemHost;
        let out = h.run(&Cmd::new("sh").args(["-c", "echo hi"])).unwrap();
        assert_eq!(out.stdout, "hi\n");
        let err = h
            .run(&Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("boom"),
            "{msg}"
        );
        let err = h.run(&Cmd::new("/nonexistent/prog")).unwrap_err();
        assert!(matches!(err, HostError::Spawn { .. }));
    }

    #[test]
    fn recording_host_records_in_order() {
        let h = RecordingHost::new();
        h.run(&Cmd::new("dpkg").arg("-i")).unwrap();
        let f = std::fs::File::open("/").unwrap();
        h.chown(
            Path::new("/"),
            std::os::fd::AsFd::as_fd(&f),
            Path::new("/opt/x"),
            "kubelet",
            "podplane",
        )
        .unwrap();
        assert_eq!(h.lines(), ["dpkg -i", "chown kubelet:podplane /opt/x"]);
    }

    #[test]
    fn cap_sys_resource_in_the_bounding_set() {
        let status = |bnd: &str| format!("Name:\tvmagent\nCapBnd:\t{bnd}\nCapAmb:\t0\n");
        assert!(bounding_set_allows_oom_adjust(&status("000001ffffffffff")));
        assert!(bounding_set_allows_oom_adjust(&status("0000000001000000")));
        assert!(!bounding_set_allows_oom_adjust(&status("00000000a80425fb")));
        assert!(bounding_set_allows_oom_adjust("Name:\tvmagent\n"));
    }

    #[test]
    fn recording_host_answers_probes_from_the_test() {
        let lb: IpAddr = "10.0.0.7".parse().unwrap();
        let h = RecordingHost::new()
            .with_name("api.internal", &[lb])
            .with_oom_adjust(false)
            .with_env("INSTANCE_IPV4", "10.0.1.5");
        assert_eq!(h.resolve("api.internal"), [lb]);
        assert!(h.resolve("localhost").is_empty());
        assert!(!h.can_lower_oom_scores());
        assert_eq!(h.env_var("INSTANCE_IPV4").as_deref(), Some("10.0.1.5"));
        assert_eq!(h.env_var("PATH"), None);
        assert!(h.lines().is_empty());
        assert!(RecordingHost::new().can_lower_oom_scores());
    }

    #[test]
    fn root_helpers() {
        assert_eq!(in_root(Path::new("/"), "dpkg").display(), "dpkg");
        assert_eq!(
            in_root(Path::new("/tmp/r"), "dpkg").display(),
            "chroot /tmp/r dpkg"
        );
        assert_eq!(
            inside(Path::new("/tmp/r"), Path::new("/tmp/r/opt/a.deb")),
            OsString::from("/opt/a.deb")
        );
    }
}
