//! Small filesystem helpers with the guarantees the agent relies on: temp files that never outlive
//! their owner, atomic renames with fsync, free-space queries and an exclusive directory lock.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Marker in the names of our temp files: `.<final name>.vmagent-<pid>.part`.
pub const TEMP_MARKER: &str = ".vmagent-";
const TEMP_SUFFIX: &str = ".part";

/// A file being written next to its final path. It is deleted when dropped unless
/// [`TempFile::persist`] renamed it into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Create (or truncate) the temp file for `final_path`, in the same directory.
    pub fn create_for(final_path: &Path) -> io::Result<TempFile> {
        let path = temp_path_for(final_path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// A symlink to `target` at the temp path for `final_path`, to be renamed into place.
    pub fn for_symlink(final_path: &Path, target: &Path) -> io::Result<TempFile> {
        let path = temp_path_for(final_path);
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)?;
        Ok(TempFile { path, file: None })
    }

    /// Rename into place a temp file whose data the caller has already synced (or a symlink).
    pub fn persist_synced(mut self, final_path: &Path) -> io::Result<()> {
        drop(self.file.take());
        fs::rename(&self.path, final_path)?;
        self.path = PathBuf::new();
        Ok(())
    }

    /// A guard that owns nothing, to stand in for one that was persisted.
    pub fn detached() -> TempFile {
        TempFile {
            path: PathBuf::new(),
            file: None,
        }
    }

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

    /// fsync the data, then rename over `final_path`. The directory entry is made durable by
    /// [`fsync_dir`], once per directory, by the caller.
    pub fn persist(mut self, final_path: &Path) -> io::Result<()> {
        let file = self.file.take().expect("persist once");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.path, final_path)?;
        // Renamed: nothing left to clean up.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
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
    t.file().write_all(content)?;
    if let Some(m) = mode {
        t.file().set_permissions(fs::Permissions::from_mode(m))?;
    }
    t.persist(path)
}

/// `<dir>/.<name>.vmagent-<pid>.part`
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(
        ".{name}{TEMP_MARKER}{}{TEMP_SUFFIX}",
        std::process::id()
    ))
}

/// Is `name` one of our temp files (of any process)?
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER) && name.ends_with(TEMP_SUFFIX)
}

/// Remove temp files left in `dir` by earlier runs that were killed. Call with the directory lock
/// held. Returns how many were removed.
pub fn sweep_temp_files(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_temp_name(&entry.file_name().to_string_lossy()) && entry.file_type()?.is_file() {
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
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
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
        t.persist(&fin).unwrap();
        assert_eq!(fs::read(&fin).unwrap(), b"abc");
        assert!(!tp.exists());
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".runc.vmagent-123.part"), b"x").unwrap();
        fs::write(dir.path().join("runc"), b"x").unwrap();
        fs::write(dir.path().join(".hidden"), b"x").unwrap();
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 1);
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
