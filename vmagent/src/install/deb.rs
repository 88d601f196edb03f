//! Debian packages: one `dpkg -i` for all debs, with service starts blocked by a `policy-rc.d`
//! that exits 101. The guard puts back whatever was there before when it is dropped, and
//! [`recover`] does the same at the start of the next run if vmagent was killed in between; it
//! also finishes an interrupted dpkg run with `dpkg --configure -a`.
//!
//! A killed vmagent can leave its dpkg child running. Before it touches `policy-rc.d` or runs
//! dpkg, install waits (up to its lock timeout) until nobody holds dpkg's locks
//! ([`DPKG_LOCKS`], fcntl record locks that dpkg and apt take), so services are never unblocked
//! while that dpkg is mid-run, and dpkg is never started only to fail on its lock.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fsutil;
use crate::host::{Cmd, Host, HostError, in_root, inside};

pub const POLICY_RC: &str = "/usr/sbin/policy-rc.d";
pub const POLICY_RC_BACKUP: &str = "/usr/sbin/policy-rc.d.podplane-bak";
/// Our policy-rc.d. The marker line tells a leftover of ours from an administrator's script.
pub const OUR_POLICY_RC: &str = "#!/bin/sh\n# vmagent: blocks service starts while it installs packages; removed afterwards.\nexit 101\n";

/// The locks dpkg (and apt, as dpkg's frontend) hold while they run.
pub const DPKG_LOCKS: [&str; 2] = ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"];

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("cannot set up {}: {source}", path.display())]
    PolicyRc { path: PathBuf, source: io::Error },
    #[error(
        "{}: not a usable Debian package: {reason}; fetch it again (`vmagent fetch`). Nothing was installed",
        deb.display()
    )]
    Bad { deb: PathBuf, reason: String },
    #[error("{}: cannot read it: {source}", deb.display())]
    Read { deb: PathBuf, source: io::Error },
    #[error(
        "{} is still held by {holder} (a dpkg or apt run, perhaps one an interrupted install started) after waiting {}s; nothing was changed, and a policy-rc.d left by an interrupted install keeps blocking service starts until it is done. Let it finish (`fuser -v {}` shows it) and run `vmagent install` again, or wait longer with --lock-timeout",
        lock.display(), waited.as_secs(), lock.display()
    )]
    Busy {
        lock: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error("cannot check {} for a running dpkg: {source}", lock.display())]
    LockCheck { lock: PathBuf, source: io::Error },
    #[error("dpkg failed: {0}")]
    Dpkg(#[source] HostError),
    #[error("finishing an interrupted dpkg run (dpkg --configure -a) failed: {0}")]
    Configure(#[source] HostError),
}

/// Blocks service starts until dropped (or [`PolicyRcGuard::restore`]d).
#[derive(Debug)]
pub struct PolicyRcGuard {
    root: PathBuf,
    active: bool,
}

impl PolicyRcGuard {
    pub fn block(root: &Path) -> Result<PolicyRcGuard, DebError> {
        let policy = fsutil::under_root(root, POLICY_RC);
        let backup = fsutil::under_root(root, POLICY_RC_BACKUP);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DebError::PolicyRc { path, source }
        };
        std::fs::create_dir_all(policy.parent().expect("has a parent")).map_err(err(&policy))?;
        if std::fs::symlink_metadata(&policy).is_ok() && !is_ours(&policy) {
            std::fs::rename(&policy, &backup).map_err(err(&backup))?;
        }
        fsutil::write_atomic(&policy, OUR_POLICY_RC.as_bytes(), Some(0o755))
            .map_err(err(&policy))?;
        Ok(PolicyRcGuard {
            root: root.to_path_buf(),
            active: true,
        })
    }

    /// Put the previous policy-rc.d back (or none), reporting errors.
    pub fn restore(mut self) -> io::Result<()> {
        self.active = false;
        recover_policy_rc(&self.root).map(|_| ())
    }
}

impl Drop for PolicyRcGuard {
    fn drop(&mut self) {
        if self.active
            && let Err(e) = recover_policy_rc(&self.root)
        {
            log::error!("cannot restore {POLICY_RC}: {e}; it still blocks service starts");
        }
    }
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t == OUR_POLICY_RC)
}

/// Remove our policy-rc.d and put back the saved one. Returns whether anything was changed.
pub fn recover_policy_rc(root: &Path) -> io::Result<bool> {
    let policy = fsutil::under_root(root, POLICY_RC);
    let backup = fsutil::under_root(root, POLICY_RC_BACKUP);
    let mut changed = false;
    if is_ours(&policy) {
        std::fs::remove_file(&policy)?;
        changed = true;
    }
    if std::fs::symlink_metadata(&backup).is_ok() {
        if std::fs::symlink_metadata(&policy).is_ok() {
            log::warn!(
                "{} and {} both exist; leaving both for an administrator to sort out",
                policy.display(),
                backup.display()
            );
        } else {
            std::fs::rename(&backup, &policy)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Was a dpkg run interrupted (journal entries left in `/var/lib/dpkg/updates`)?
pub fn dpkg_interrupted(root: &Path) -> bool {
    std::fs::read_dir(fsutil::under_root(root, "/var/lib/dpkg/updates"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

fn dpkg(root: &Path) -> Cmd {
    in_root(root, "dpkg").env("DEBIAN_FRONTEND", "noninteractive")
}

/// Who holds `lock` (a system path below `root`), if anyone: `Some("pid N")`, or
/// `Some("another process")` for an open-file-description lock, whose owner has no pid.
pub fn lock_holder(root: &Path, lock: &str) -> Result<Option<String>, DebError> {
    use std::os::fd::AsRawFd;
    let full = fsutil::under_root(root, lock);
    let err = |source| DebError::LockCheck {
        lock: full.clone(),
        source,
    };
    let fs = crate::safefs::Root::open(root).map_err(|e| err(e.into_io()))?;
    let Some((file, _)) = fs.open_file(lock).map_err(|e| err(e.into_io()))? else {
        return Ok(None);
    };
    // SAFETY: a zeroed flock is a valid value; fcntl only writes into it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // F_OFD_GETLK reports conflicting locks of every kind, including classic fcntl locks of
    // other processes (dpkg's) and of this one.
    // SAFETY: F_OFD_GETLK on a descriptor we own, with a properly sized flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(if fl.l_pid > 0 {
        format!("pid {}", fl.l_pid)
    } else {
        "another process".to_string()
    }))
}

/// Wait until no process holds dpkg's locks, polling, for at most `timeout`.
pub fn wait_for_dpkg(root: &Path, timeout: Duration) -> Result<(), DebError> {
    let start = Instant::now();
    let mut told = false;
    loop {
        let mut busy = None;
        for lock in DPKG_LOCKS {
            if let Some(holder) = lock_holder(root, lock)? {
                busy = Some((lock, holder));
                break;
            }
        }
        let Some((lock, holder)) = busy else {
            return Ok(());
        };
        if start.elapsed() >= timeout {
            return Err(DebError::Busy {
                lock: fsutil::under_root(root, lock),
                holder,
                waited: timeout,
            });
        }
        if !told {
            log::warn!(
                "{lock} is held by {holder} (a dpkg or apt run); waiting up to {}s for it to finish",
                timeout.as_secs()
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Did an interrupted run leave something to repair: our policy-rc.d, a saved one, or dpkg's
/// journal?
fn leftovers(root: &Path) -> bool {
    is_ours(&fsutil::under_root(root, POLICY_RC))
        || std::fs::symlink_metadata(fsutil::under_root(root, POLICY_RC_BACKUP)).is_ok()
        || dpkg_interrupted(root)
}

/// Start-of-run recovery: once no dpkg runs (waiting up to `timeout` for one an interrupted
/// run may have left), restore policy-rc.d, then finish an interrupted dpkg run (services
/// still blocked). Returns what was done, for the log.
pub fn recover(root: &Path, host: &dyn Host, timeout: Duration) -> Result<Vec<String>, DebError> {
    let mut done = Vec::new();
    if !leftovers(root) {
        return Ok(done);
    }
    wait_for_dpkg(root, timeout)?;
    if recover_policy_rc(root).map_err(|source| DebError::PolicyRc {
        path: fsutil::under_root(root, POLICY_RC),
        source,
    })? {
        done.push(format!("restored {POLICY_RC} left by an interrupted run"));
    }
    if dpkg_interrupted(root) {
        let guard = PolicyRcGuard::block(root)?;
        host.run(&dpkg(root).args(["--configure", "-a"]))
            .map_err(DebError::Configure)?;
        restore(guard)?;
        done.push("finished an interrupted dpkg run (dpkg --configure -a)".into());
    }
    Ok(done)
}

fn restore(guard: PolicyRcGuard) -> Result<(), DebError> {
    let path = guard.root.join(POLICY_RC.trim_start_matches('/'));
    guard
        .restore()
        .map_err(|source| DebError::PolicyRc { path, source })
}

/// Is `deb` a Debian binary package on its face: an ar archive whose members fit in the file,
/// `debian-binary` (format 2.x) first, then `control.tar*` and `data.tar*` (members named
/// `_*` are allowed anywhere after the first)? Checked before dpkg runs, so one bad deb does
/// not leave the others installed without it.
pub fn check(deb: &Path) -> Result<(), DebError> {
    let bad = |reason: String| DebError::Bad {
        deb: deb.to_path_buf(),
        reason,
    };
    let rerr = |source| DebError::Read {
        deb: deb.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(deb).map_err(rerr)?;
    let len = f.metadata().map_err(rerr)?.len();
    let mut magic = [0u8; 8];
    if f.read_exact(&mut magic).is_err() || &magic != b"!<arch>\n" {
        return Err(bad("it is not an ar archive".into()));
    }
    let mut pos = 8u64;
    let mut names: Vec<String> = Vec::new();
    while pos < len {
        let mut h = [0u8; 60];
        f.read_exact(&mut h)
            .map_err(|_| bad(format!("truncated member header at byte {pos}")))?;
        if &h[58..60] != b"`\n" {
            return Err(bad(format!("corrupt member header at byte {pos}")));
        }
        let name = String::from_utf8_lossy(&h[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&h[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad(format!("member {name:?} has no valid size")))?;
        pos += 60;
        if size > len - pos {
            return Err(bad(format!(
                "member {name:?} claims {size} bytes, past the end of the file"
            )));
        }
        if names.is_empty() {
            let mut v = vec![0u8; size.min(16) as usize];
            f.read_exact(&mut v).map_err(rerr)?;
            if name != "debian-binary" || !v.starts_with(b"2.") {
                return Err(bad(
                    "its first member is not debian-binary with format 2.x".into()
                ));
            }
        }
        pos += size + size % 2;
        f.seek(SeekFrom::Start(pos)).map_err(rerr)?;
        names.push(name);
    }
    let main: Vec<&str> = names
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|n| !n.starts_with('_'))
        .collect();
    match main.as_slice() {
        [c, d] if c.starts_with("control.tar") && d.starts_with("data.tar") => Ok(()),
        _ => Err(bad(format!(
            "members {names:?}, expected debian-binary, control.tar*, data.tar*"
        ))),
    }
}

/// Install all `debs` (paths below `root`) in one `dpkg -i`, services blocked, once no other
/// dpkg runs (waiting up to `timeout`).
pub fn install(
    root: &Path,
    debs: &[PathBuf],
    host: &dyn Host,
    timeout: Duration,
) -> Result<(), DebError> {
    if debs.is_empty() {
        return Ok(());
    }
    wait_for_dpkg(root, timeout)?;
    let guard = PolicyRcGuard::block(root)?;
    let args = debs
        .iter()
        .map(|p| inside(root, p).to_string_lossy().into_owned());
    host.run(&dpkg(root).arg("-i").args(args))
        .map_err(DebError::Dpkg)?;
    restore(guard)
}

#[cfg(test)]
#[path = "deb/tests.rs"]
mod tests;
