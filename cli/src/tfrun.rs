//! Finding and running the OpenTofu/Terraform executable (`tofu`, else `terraform`).

use std::ffi::OsStr;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Limit for `init`, `apply` and `destroy`.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// Limit for `output -json`.
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, thiserror::Error)]
pub enum TfError {
    #[error(
        "PODPLANE_TF_CMD command {cmd:?} not found: {reason}; set PODPLANE_TF_CMD to an executable name on PATH or a path, or unset it"
    )]
    OverrideNotFound {
        cmd: String,
        #[source]
        reason: OverrideProblem,
    },
    #[error("OpenTofu/Terraform executable not found on PATH; install tofu or terraform")]
    NotFound,
    #[error(
        "run OpenTofu/Terraform [{cmd}] in {dir}: cannot start {exe}: {source}; check PODPLANE_TF_CMD or install tofu or terraform"
    )]
    Spawn {
        cmd: String,
        dir: PathBuf,
        exe: PathBuf,
        source: io::Error,
    },
    #[error("run OpenTofu/Terraform [{cmd}] in {dir}: {status}")]
    Exit {
        cmd: String,
        dir: PathBuf,
        status: String,
    },
    #[error(
        "run OpenTofu/Terraform [{cmd}] in {dir}: timed out after {after:?} and was killed; check for a stuck lock or prompt and rerun"
    )]
    Timeout {
        cmd: String,
        dir: PathBuf,
        after: Duration,
    },
    #[error("run OpenTofu/Terraform [{cmd}] in {dir}: waiting for the process failed: {source}")]
    Wait {
        cmd: String,
        dir: PathBuf,
        source: io::Error,
    },
    #[error(
        "run OpenTofu/Terraform [output -json] in {dir}: stdout is not JSON ({reason}); run `tofu output -json` there to inspect it"
    )]
    OutputJson {
        dir: PathBuf,
        #[source]
        reason: OutputProblem,
    },
}

/// Why the `PODPLANE_TF_CMD` command cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OverrideProblem {
    #[error("{0}")]
    Stat(#[source] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("file is not executable")]
    NotExecutable,
    #[error("no executable of that name on PATH")]
    NotOnPath,
}

/// Why `output -json` gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum OutputProblem {
    #[error("reading stdout: {0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Json(#[source] serde_json::Error),
}

/// Resolves the executable: `env_override` (the value of `PODPLANE_TF_CMD`) when set, else
/// `tofu`, else `terraform`, searched in `path_var` (the value of `PATH`).
pub fn locate(env_override: Option<&str>, path_var: Option<&OsStr>) -> Result<PathBuf, TfError> {
    if let Some(cmd) = env_override.filter(|c| !c.trim().is_empty()) {
        let not_found = |reason: OverrideProblem| TfError::OverrideNotFound {
            cmd: cmd.to_string(),
            reason,
        };
        if cmd.contains('/') {
            // Absolute: commands run in the cluster directory, not where this was resolved.
            let p = std::path::absolute(cmd).unwrap_or_else(|_| PathBuf::from(cmd));
            return match std::fs::metadata(&p) {
                Err(e) => Err(not_found(OverrideProblem::Stat(e))),
                Ok(m) if !m.is_file() => Err(not_found(OverrideProblem::NotAFile)),
                Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                    Err(not_found(OverrideProblem::NotExecutable))
                }
                Ok(_) => Ok(p),
            };
        }
        return search_path(cmd, path_var).ok_or_else(|| not_found(OverrideProblem::NotOnPath));
    }
    search_path("tofu", path_var)
        .or_else(|| search_path("terraform", path_var))
        .ok_or(TfError::NotFound)
}

fn search_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .map(|p| std::path::absolute(&p).unwrap_or(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs OpenTofu/Terraform commands in one directory.
#[derive(Debug, Clone)]
pub struct Runner {
    exe: PathBuf,
    dir: PathBuf,
    run_timeout: Duration,
    output_timeout: Duration,
    no_color: bool,
}

/// Whether OpenTofu/Terraform should run with `-no-color`: when `NO_COLOR` is set to anything
/// non-empty (<https://no-color.org>) or when stdout is not a terminal (a log file or a CI
/// console would otherwise fill with escape codes).
pub fn no_color_wanted(no_color_env: Option<&OsStr>, stdout_is_terminal: bool) -> bool {
    no_color_env.is_some_and(|v| !v.is_empty()) || !stdout_is_terminal
}

impl Runner {
    pub fn new(exe: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Runner {
            exe: exe.into(),
            dir: dir.into(),
            run_timeout: RUN_TIMEOUT,
            output_timeout: OUTPUT_TIMEOUT,
            no_color: false,
        }
    }

    /// Pass `-no-color` to every command that prints for people (see [`no_color_wanted`]).
    pub fn with_no_color(mut self, no_color: bool) -> Self {
        self.no_color = no_color;
        self
    }

    /// Replaces the default limits (2 h for init/apply/destroy, 30 min for output).
    pub fn with_timeouts(mut self, run: Duration, output: Duration) -> Self {
        self.run_timeout = run;
        self.output_timeout = output;
        self
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn init(&self) -> Result<(), TfError> {
        self.run(&["init"])
    }

    pub fn apply(&self, auto_approve: bool) -> Result<(), TfError> {
        self.run(if auto_approve {
            &["apply", "-auto-approve"]
        } else {
            &["apply"]
        })
    }

    pub fn destroy(&self, auto_approve: bool) -> Result<(), TfError> {
        self.run(if auto_approve {
            &["destroy", "-auto-approve"]
        } else {
            &["destroy"]
        })
    }

    /// `output -json` with stdout captured and parsed.
    pub fn output_json(&self) -> Result<serde_json::Value, TfError> {
        let args = ["output", "-json"];
        let mut child = self.spawn(&args, true)?;
        let mut stdout = child.stdout.take();
        // Drain stdout on a thread so a large output cannot block the child.
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let r = stdout.as_mut().map(|s| s.read_to_end(&mut buf));
            (buf, r)
        });
        // On timeout the reader is left behind: a grandchild may still hold the pipe open.
        let status = self.wait(&mut child, &args, self.output_timeout)?;
        let (buf, read) = reader.join().unwrap_or_default();
        self.check(&args, status)?;
        if let Some(Err(e)) = read {
            return Err(TfError::OutputJson {
                dir: self.dir.clone(),
                reason: OutputProblem::Read(e),
            });
        }
        serde_json::from_slice(&buf).map_err(|e| TfError::OutputJson {
            dir: self.dir.clone(),
            reason: OutputProblem::Json(e),
        })
    }

    fn run(&self, args: &[&str]) -> Result<(), TfError> {
        // Ctrl-C reaches OpenTofu too (same process group): it stops gracefully and releases its
        // state lock, and this process waits for it instead of leaving it orphaned.
        let _guard = IgnoreInterrupt::new();
        let mut with_flag: Vec<&str> = args.to_vec();
        if self.no_color {
            // Options follow the subcommand: `apply -no-color -auto-approve`.
            with_flag.insert(1.min(args.len()), "-no-color");
        }
        let args = &with_flag[..];
        let mut child = self.spawn(args, false)?;
        let status = self.wait(&mut child, args, self.run_timeout)?;
        self.check(args, status)
    }

    /// Starts the command; `capture` pipes its stdout instead of inheriting it.
    fn spawn(&self, args: &[&str], capture: bool) -> Result<Child, TfError> {
        let mut attempt = 0;
        loop {
            let mut cmd = Command::new(&self.exe);
            // The generated seed provisioner runs `$PODPLANE_BIN cluster seed`: the same podplane
            // binary that runs tofu, not whichever one PATH finds. A user's own value wins.
            if std::env::var_os("PODPLANE_BIN").is_none()
                && let Ok(me) = std::env::current_exe()
            {
                cmd.env("PODPLANE_BIN", me);
            }
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGINT, libc::SIG_DFL);
                    Ok(())
                });
            }
            let result = cmd
                .args(args)
                .current_dir(&self.dir)
                .stdin(Stdio::inherit())
                .stdout(if capture {
                    Stdio::piped()
                } else {
                    Stdio::inherit()
                })
                .stderr(Stdio::inherit())
                .spawn();
            match result {
                // ETXTBSY: the executable was just written and another thread's fork still holds
                // it open for writing; that clears within moments.
                Err(e) if e.raw_os_error() == Some(26) && attempt < 10 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(TfError::Spawn {
                        cmd: args.join(" "),
                        dir: self.dir.clone(),
                        exe: self.exe.clone(),
                        source,
                    });
                }
                Ok(child) => return Ok(child),
            }
        }
    }

    fn wait(
        &self,
        child: &mut Child,
        args: &[&str],
        limit: Duration,
    ) -> Result<ExitStatus, TfError> {
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if started.elapsed() >= limit => {
                    // Interrupt first (OpenTofu then releases its state lock), kill after 30 s.
                    // SAFETY: plain kill(2) on our own child's pid.
                    unsafe {
                        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
                    }
                    let grace = Instant::now();
                    while grace.elapsed() < INTERRUPT_GRACE {
                        if let Ok(Some(_)) = child.try_wait() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TfError::Timeout {
                        cmd: args.join(" "),
                        dir: self.dir.clone(),
                        after: limit,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(source) => {
                    let _ = child.kill();
                    return Err(TfError::Wait {
                        cmd: args.join(" "),
                        dir: self.dir.clone(),
                        source,
                    });
                }
            }
        }
    }

    fn check(&self, args: &[&str], status: ExitStatus) -> Result<(), TfError> {
        if status.success() {
            return Ok(());
        }
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => status.to_string(),
        };
        Err(TfError::Exit {
            cmd: args.join(" "),
            dir: self.dir.clone(),
            status,
        })
    }
}

/// How long a timed-out command gets after SIGINT before it is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(30);

/// Ignores SIGINT in this process while it lives (children get the default back).
struct IgnoreInterrupt(libc::sighandler_t);

impl IgnoreInterrupt {
    fn new() -> IgnoreInterrupt {
        // SAFETY: swapping the disposition of SIGINT; restored on drop.
        IgnoreInterrupt(unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) })
    }
}

impl Drop for IgnoreInterrupt {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved in `new`.
        unsafe {
            libc::signal(libc::SIGINT, self.0);
        }
    }
}

/// Asks `<question> [y/N]: ` and reads one line; `y`/`yes` (any case) is yes, anything else or
/// end of input is no. `auto_yes` answers yes without asking.
pub fn confirm(
    question: &str,
    auto_yes: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> io::Result<bool> {
    if auto_yes {
        return Ok(true);
    }
    write!(out, "{question} [y/N]: ")?;
    out.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        writeln!(out)?;
        return Ok(false);
    }
    let answer = line.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(input: &str, auto: bool) -> (bool, String) {
        let mut out = Vec::new();
        let yes = confirm("Go?", auto, &mut input.as_bytes(), &mut out).unwrap();
        (yes, String::from_utf8(out).unwrap())
    }

    #[test]
    fn confirm_answers() {
        assert_eq!(ask("y\n", false), (true, "Go? [y/N]: ".into()));
        assert!(ask("YES\n", false).0);
        assert!(ask(" Yes \n", false).0);
        assert!(!ask("n\n", false).0);
        assert!(!ask("\n", false).0);
        assert!(!ask("yep\n", false).0);
        assert!(!ask("", false).0);
        assert_eq!(ask("", true), (true, String::new()));
    }
}
