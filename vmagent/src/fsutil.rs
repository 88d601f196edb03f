//! Small filesystem helpers with the guarantees the agent relies on: temp files that never outlive
//! their owner and cannot be hijacked, atomic renames with fsync, free-space queries and an
//! exclusive directory lock. For paths below directories an unprivileged account owns, see
//! [`crate::safefs`].

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, Mode, OFlags};

/// Marker in the names of our temp files: `.<final name>.vmagent-<16 random hex>.part`.
pub const TEMP_MARKER: &str = ".vmagent-";
const TEMP_SUFFIX: &str = ".part";

/// A file being written next to its final path, in a directory held open by descriptor. The
/// name is unpredictable and the file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode
/// 0600, so nothing planted in the directory (a link to `/etc/shadow`, a file another account
/// keeps open) can be opened in its place, and nobody else can read what is written before the
/// caller sets the final mode. It is removed when dropped unless [`TempFile::persist`] renamed it
/// into place (`renameat` relative to the same directory).
#[derive(Debug)]
pub struct TempFile {
    dir: Option<OwnedFd>,
    /// The temp file's name in `dir`.
    name: OsString,
    /// The name it is renamed to.
    final_name: OsString,
    /// `<dir>/<name>`, for messages.
    path: PathBuf,
    file: Option<File>,
}

/// How many fresh names to try when one is taken (a collision of 64 random bits means someone
/// is planting names; give up rather than loop).
const NAME_TRIES: usize = 8;

fn temp_name(final_name: &OsStr) -> OsString {
    let mut n = OsString::from(".");
    n.push(final_name);
    n.push(format!(
        "{TEMP_MARKER}{:016x}{TEMP_SUFFIX}",
        fastrand::u64(..)
    ));
    n
}

fn split_final(final_path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = final_path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: no file name", final_path.display()),
        )
    })?;
    let parent = match final_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl TempFile {
    /// Create the temp file for `final_path`, in the same directory. The directory path is
    /// followed as given: use this for directories only root can change; below directories an
    /// unprivileged account owns, open the directory with [`crate::safefs`] and use
    /// [`crate::safefs::Dir::create_temp`].
    pub fn create_for(final_path: &Path) -> io::Result<TempFile> {
        let (parent, name) = split_final(final_path)?;
        let dir = open_dir(parent)?;
        TempFile::create_in(&dir, &parent.to_string_lossy(), name)
    }

    /// Create a temp file for `final_name` in the open directory `dir` (shown as `dir_path`).
    pub fn create_in(dir: &OwnedFd, dir_path: &str, final_name: &OsStr) -> io::Result<TempFile> {
        let dir = dir.try_clone()?;
        for _ in 0..NAME_TRIES {
            let name = temp_name(final_name);
            match rustix::fs::openat(
                &dir,
                &name,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    let path = Path::new(dir_path).join(&name);
                    return Ok(TempFile {
                        dir: Some(dir),
                        name,
                        final_name: final_name.to_os_string(),
                        path,
                        file: Some(File::from(fd)),
                    });
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{dir_path}: {NAME_TRIES} random temp file names were all taken; something is planting names there"
            ),
        ))
    }

    /// A symlink to `target` at a fresh temp name for `final_name` in the open directory `dir`
    /// (shown as `dir_path`), to be renamed into place.
    pub fn symlink_in(
        dir: &OwnedFd,
        dir_path: &str,
        final_name: &OsStr,
        target: &Path,
    ) -> io::Result<TempFile> {
        let dir = dir.try_clone()?;
        for _ in 0..NAME_TRIES {
            let name = temp_name(final_name);
            match rustix::fs::symlinkat(target, &dir, &name) {
                Ok(()) => {
                    return Ok(TempFile {
                        path: Path::new(dir_path).join(&name),
                        dir: Some(dir),
                        name,
                        final_name: final_name.to_os_string(),
                        file: None,
                    });
                }
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{dir_path}: no free temp name"),
        ))
    }

    /// Rename into place a temp file whose data the caller has already synced (or a link).
    pub fn persist_synced(mut self) -> io::Result<()> {
        drop(self.file.take());
        self.rename()
    }

    fn rename(&mut self) -> io::Result<()> {
        let dir = self.dir.as_ref().expect("a live temp file has a directory");
        rustix::fs::renameat(dir, &self.name, dir, &self.final_name)?;
        // Renamed: nothing left to clean up.
        self.dir = None;
        Ok(())
    }

    /// A guard that owns nothing, to stand in for one that was persisted.
    pub fn detached() -> TempFile {
        TempFile {
            dir: None,
            name: OsString::new(),
            final_name: OsString::new(),
            path: PathBuf::new(),
            file: None,
        }
    }

    /// The open temp file's descriptor (for `fchown`).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.file
            .as_ref()
            .expect("temp file is open until persisted")
            .as_fd()
    }

    /// The temp file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("temp file is open until persisted")
    }

    /// Ask the kernel to start writing `[offset, offset + len)` to disk now, without waiting, so
    /// the fsync at [`TempFile::persist`] has little left to do. Errors are ignored: this is only
    /// a hint, and the fsync reports real failures.
    pub fn start_writeback(&mut self, offset: u64, len: u64) {
        if let Some(f) = &self.file {
            // SAFETY: sync_file_range on an fd we own; no memory is passed.
            unsafe {
                libc::sync_file_range(
                    f.as_raw_fd(),
                    offset as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
    }

    /// Reserve `len` bytes of disk for the file without changing its size: the filesystem
    /// allocates once instead of piecemeal, and a full disk shows up now instead of mid-download.
    /// Filesystems without `fallocate` are fine; other errors (ENOSPC) are returned.
    pub fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let fd = self.file().as_raw_fd();
        // SAFETY: fallocate on an fd we own; no memory is passed.
        let r = unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, len as libc::off_t) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
            _ => Err(err),
        }
    }

    /// Empty the file and rewind, for a restart from byte 0.
    pub fn reset(&mut self) -> io::Result<()> {
        use std::io::Seek;
        let f = self.file();
        f.set_len(0)?;
        f.rewind()?;
        Ok(())
    }

    /// fsync the data, then rename over the final name. The directory entry is made durable by
    /// [`fsync_dir`], once per directory, by the caller.
    pub fn persist(mut self) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        self.rename()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = rustix::fs::unlinkat(dir, &self.name, AtFlags::empty());
        }
    }
}

/// Write `content` to `path` atomically: parent directories created, a temp file beside it
/// written, given `mode` (else the default), fsynced and renamed into place.
pub fn write_atomic(path: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut t = TempFile::create_for(path)?;
    if let Some(m) = mode {
        t.file().set_permissions(fs::Permissions::from_mode(m))?;
    }
    t.file().write_all(content)?;
    t.persist()
}

/// Is `name` one of our temp files (of any process)?
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER) && name.ends_with(TEMP_SUFFIX)
}

/// Remove temp files left in `dir` by earlier runs that were killed: any entry with a temp name
/// that is not a directory, links included (unlinked, never followed). Call with the directory
/// lock held. Returns how many were removed.
pub fn sweep_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_temp_name(&entry.file_name().to_string_lossy()) && !entry.file_type()?.is_dir() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// fsync a directory so renames into it survive a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes available to an unprivileged writer on the filesystem holding `path`.
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// An exclusive advisory lock on `<dir>/<name>`, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Take the lock, waiting up to `timeout` for another holder to finish.
    pub fn acquire(dir: &Path, name: &str, timeout: Duration) -> io::Result<DirLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir.join(name))?;
        let start = Instant::now();
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(DirLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err);
            }
            if start.elapsed() >= timeout {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another vmagent holds {} (waited {}s)",
                        dir.join(name).display(),
                        timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Join an absolute system path below `root` (`/` leaves it unchanged).
pub fn under_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let fin = dir.path().join("kubelet");
        let t = TempFile::create_for(&fin).unwrap();
        let tp = t.path().to_path_buf();
        assert!(tp.exists());
        assert!(is_temp_name(&tp.file_name().unwrap().to_string_lossy()));
        drop(t);
        assert!(!tp.exists());

        let mut t = TempFile::create_for(&fin).unwrap();
        std::io::Write::write_all(t.file(), b"abc").unwrap();
        t.persist().unwrap();
        assert_eq!(fs::read(&fin).unwrap(), b"abc");
        assert!(!tp.exists());
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".runc.vmagent-123.part"), b"x").unwrap();
        // A link planted with a temp name is removed, and its target left alone.
        std::os::unix::fs::symlink(
            dir.path().join("runc"),
            dir.path().join(".x.vmagent-1.part"),
        )
        .unwrap();
        fs::write(dir.path().join("runc"), b"x").unwrap();
        fs::write(dir.path().join(".hidden"), b"x").unwrap();
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 2);
        assert!(dir.path().join("runc").exists());
        assert!(dir.path().join(".hidden").exists());
    }

    #[test]
    fn lock_is_exclusive_with_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let a = DirLock::acquire(dir.path(), ".lock", Duration::from_secs(1)).unwrap();
        let err = DirLock::acquire(dir.path(), ".lock", Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("another vmagent"), "{err}");
        drop(a);
        DirLock::acquire(dir.path(), ".lock", Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn free_space_and_root_join() {
        assert!(available_bytes(Path::new("/")).unwrap() > 0);
        assert!(available_bytes(Path::new("/nonexistent-dir")).is_err());
        assert_eq!(
            under_root(Path::new("/tmp/r"), "/opt/podplane/artifacts"),
            PathBuf::from("/tmp/r/opt/podplane/artifacts")
        );
        assert_eq!(
            under_root(Path::new("/"), "/opt/x"),
            PathBuf::from("/opt/x")
        );
    }
}
