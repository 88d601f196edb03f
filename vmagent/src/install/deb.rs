//! Debian packages: one `dpkg -i` for all debs, with service starts blocked by a `policy-rc.d`
//! that exits 101. The guard puts back whatever was there before when it is dropped, and
//! [`recover`] does the same at the start of the next run if vmagent was killed in between; it
//! also finishes an interrupted dpkg run with `dpkg --configure -a`.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::host::{Cmd, Host, HostError, in_root, inside};

pub const POLICY_RC: &str = "/usr/sbin/policy-rc.d";
pub const POLICY_RC_BACKUP: &str = "/usr/sbin/policy-rc.d.podplane-bak";
/// Our policy-rc.d. The marker line tells a leftover of ours from an administrator's script.
pub const OUR_POLICY_RC: &str = "#!/bin/sh\n# vmagent: blocks service starts while it installs packages; removed afterwards.\nexit 101\n";

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("cannot set up {}: {source}", path.display())]
    PolicyRc { path: PathBuf, source: io::Error },
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

/// Start-of-run recovery: restore policy-rc.d, then finish an interrupted dpkg run (services
/// still blocked). Returns what was done, for the log.
pub fn recover(root: &Path, host: &dyn Host) -> Result<Vec<String>, DebError> {
    let mut done = Vec::new();
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

/// Install all `debs` (paths below `root`) in one `dpkg -i`, services blocked.
pub fn install(root: &Path, debs: &[PathBuf], host: &dyn Host) -> Result<(), DebError> {
    if debs.is_empty() {
        return Ok(());
    }
    let guard = PolicyRcGuard::block(root)?;
    let args = debs
        .iter()
        .map(|p| inside(root, p).to_string_lossy().into_owned());
    host.run(&dpkg(root).arg("-i").args(args))
        .map_err(DebError::Dpkg)?;
    restore(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RecordingHost;

    #[test]
    fn guard_saves_and_restores_an_existing_policy() {
        let root = tempfile::tempdir().unwrap();
        let policy = root.path().join("usr/sbin/policy-rc.d");
        std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
        std::fs::write(&policy, "#!/bin/sh\nexit 0\n").unwrap();
        let g = PolicyRcGuard::block(root.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), OUR_POLICY_RC);
        assert!(
            root.path()
                .join("usr/sbin/policy-rc.d.podplane-bak")
                .exists()
        );
        drop(g);
        assert_eq!(
            std::fs::read_to_string(&policy).unwrap(),
            "#!/bin/sh\nexit 0\n"
        );
        assert!(
            !root
                .path()
                .join("usr/sbin/policy-rc.d.podplane-bak")
                .exists()
        );
    }

    #[test]
    fn leftovers_of_a_killed_run_are_recovered() {
        let root = tempfile::tempdir().unwrap();
        let g = PolicyRcGuard::block(root.path()).unwrap();
        std::mem::forget(g); // as if killed
        let policy = root.path().join("usr/sbin/policy-rc.d");
        assert!(policy.exists());
        let host = RecordingHost::new();
        let done = recover(root.path(), &host).unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(!policy.exists());
        assert!(host.actions().is_empty());
    }

    #[test]
    fn interrupted_dpkg_is_configured_with_services_blocked() {
        let root = tempfile::tempdir().unwrap();
        let updates = root.path().join("var/lib/dpkg/updates");
        std::fs::create_dir_all(&updates).unwrap();
        std::fs::write(updates.join("0001"), "x").unwrap();
        let policy = root.path().join("usr/sbin/policy-rc.d");
        let p2 = policy.clone();
        let host = RecordingHost::with_responder(move |_| {
            assert!(is_ours(&p2), "services are blocked while dpkg runs");
            Ok(Default::default())
        });
        recover(root.path(), &host).unwrap();
        let r = root.path().display().to_string();
        assert_eq!(host.lines(), [format!("chroot {r} dpkg --configure -a")]);
        assert!(!policy.exists());
    }

    #[test]
    fn one_dpkg_call_for_all_debs_and_restore_on_failure() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("opt/podplane/artifacts/libpq5.deb");
        let b = root.path().join("opt/podplane/artifacts/fluent-bit.deb");
        let host = RecordingHost::new();
        install(root.path(), &[b.clone(), a.clone()], &host).unwrap();
        let r = root.path().display().to_string();
        assert_eq!(
            host.lines(),
            [format!(
                "chroot {r} dpkg -i /opt/podplane/artifacts/fluent-bit.deb /opt/podplane/artifacts/libpq5.deb"
            )]
        );
        match &host.actions()[0] {
            crate::host::Action::Run(c) => {
                assert!(
                    c.env
                        .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into()))
                )
            }
            other => panic!("{other}"),
        }

        let failing = RecordingHost::with_responder(|c| {
            Err(HostError::Failed {
                cmd: c.display(),
                status: "exit status: 1".into(),
                stderr: "dpkg: error processing archive".into(),
            })
        });
        let err = install(root.path(), &[a], &failing).unwrap_err();
        assert!(
            err.to_string().contains("dpkg: error processing archive"),
            "{err}"
        );
        assert!(!root.path().join("usr/sbin/policy-rc.d").exists());
    }
}
