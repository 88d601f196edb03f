//! File operations below the node root that no unprivileged account can steer.
//!
//! vmagent runs as root but writes into and below directories that service accounts own (the
//! nstance-agent wrapper lives in `/opt/nstance-agent/bin`, whose parent that account owns). Such
//! an account can replace any name it owns with a symbolic link, or swap a file for another
//! between a check and a use, at any moment. A plain `open`, `chmod` or `chown` by path would then
//! act wherever the link points (`/etc/profile.d`, `/etc/shadow`).
//!
//! So every operation here starts from an open descriptor of the root and resolves the path with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` — one kernel call that
//! refuses any symbolic link on the way and any escape from the root — or, where directories
//! must be created, one component at a time with `O_NOFOLLOW | O_DIRECTORY`. Everything after
//! that acts on descriptors: `fstat`, `fchmod`, `fchown`, `openat`/`renameat`/`unlinkat`
//! relative to the directory's descriptor. If an account renames a directory after we opened it,
//! the write lands in the renamed directory — a place that account could write anyway — and never
//! in a root-only place.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::fsutil::TempFile;

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error(
        "{path}: refusing to go through a symbolic link or to leave the root (a link was planted on the way, or the path leaves {root}); remove the link and run again"
    )]
    Link { path: String, root: String },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error("{path} is not a directory")]
    NotDirectory { path: String },
    #[error("{path} is larger than the {max} bytes allowed")]
    TooLarge { path: String, max: u64 },
    #[error("{path}: not a plain absolute path below the root")]
    BadPath { path: String },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl SafeFsError {
    fn io(path: impl std::fmt::Display, e: impl Into<io::Error>) -> SafeFsError {
        SafeFsError::Io {
            path: path.to_string(),
            source: e.into(),
        }
    }

    /// The underlying error as an `io::Error`, for callers whose own errors carry one.
    pub fn into_io(self) -> io::Error {
        match self {
            SafeFsError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// The node root (`/`, or `--root DIR`), open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// An open directory below the root, with the system path it was opened at (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// The system path (`/opt/x`), as resolved from the root.
    path: String,
}

/// Metadata of a file, read from its descriptor or without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Meta {
    fn from_stat(st: &rustix::fs::Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Meta {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
        }
    }
}

/// Read metadata from an open descriptor.
pub fn meta_of(fd: impl AsFd) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::fstat(fd)?))
}

/// The components of a system path, each a plain name (no `..`, no empty, no NUL).
fn components(path: &str) -> Option<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn join(dir: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Split `/a/b/c` into (`/a/b`, `c`).
fn split(path: &str) -> Option<(String, &OsStr)> {
    let comps = components(path)?;
    let (last, parents) = comps.split_last()?;
    let mut p = String::from("/");
    for c in parents {
        p = join(&p, c);
    }
    Some((p, last))
}

const NOFOLLOW_RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    /// Open the root directory itself (given by the operator, so followed as given).
    pub fn open(root: &Path) -> Result<Root, SafeFsError> {
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SafeFsError::io(root.display(), e))?;
        Ok(Root {
            fd,
            path: root.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<root>/<system path>` for messages and for tools that take a path.
    pub fn full(&self, path: &str) -> PathBuf {
        crate::fsutil::under_root(&self.path, path)
    }

    fn link_err(&self, path: &str) -> SafeFsError {
        SafeFsError::Link {
            path: self.full(path).display().to_string(),
            root: self.path.display().to_string(),
        }
    }

    fn map_err(&self, path: &str, e: rustix::io::Errno) -> SafeFsError {
        match e {
            // ELOOP: a link on the way; EXDEV: the path would leave the root.
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => self.link_err(path),
            e => SafeFsError::io(self.full(path).display(), e),
        }
    }

    /// Resolve `path` below the root without following any link. `Ok(None)` when it (or a
    /// parent) does not exist.
    fn resolve(&self, path: &str, flags: OFlags) -> Result<Option<OwnedFd>, SafeFsError> {
        let comps = components(path).ok_or_else(|| SafeFsError::BadPath {
            path: path.to_string(),
        })?;
        let rel: PathBuf = if comps.is_empty() {
            PathBuf::from(".")
        } else {
            comps.iter().collect()
        };
        match rustix::fs::openat2(
            &self.fd,
            &rel,
            flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            NOFOLLOW_RESOLVE,
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            // A link, or a non-directory on the way: the component walk names which (and is
            // just as safe should the culprit be gone by now). openat2 needs Linux 5.6: without
            // it, the walk does the whole job.
            Err(rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP | rustix::io::Errno::NOSYS) => {
                match self.walk(path, flags, false) {
                    Ok(fd) => Ok(Some(fd)),
                    Err(SafeFsError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(self.map_err(path, e)),
        }
    }

    /// Open `path` one component at a time with `O_NOFOLLOW`, creating missing directories
    /// (mode 0755, root's) when `create` is set.
    fn walk(&self, path: &str, last_flags: OFlags, create: bool) -> Result<OwnedFd, SafeFsError> {
        let comps = components(path).ok_or_else(|| SafeFsError::BadPath {
            path: path.to_string(),
        })?;
        let mut cur = self
            .fd
            .try_clone()
            .map_err(|e| SafeFsError::io(self.path.display(), e))?;
        let mut shown = String::from("/");
        let n = comps.len();
        for (i, c) in comps.into_iter().enumerate() {
            shown = join(&shown, c);
            let last = i + 1 == n;
            let flags = if last {
                last_flags
            } else {
                OFlags::DIRECTORY | OFlags::RDONLY
            } | OFlags::NOFOLLOW
                | OFlags::CLOEXEC;
            let is_dir = flags.contains(OFlags::DIRECTORY);
            let open = |cur: &OwnedFd| rustix::fs::openat(cur, c, flags, Mode::empty());
            let fd = match open(&cur) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) if create && is_dir => {
                    match rustix::fs::mkdirat(&cur, c, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(self.map_err(&shown, e)),
                    }
                    open(&cur).map_err(|e| self.walk_err(&cur, c, &shown, e))?
                }
                Err(e) => return Err(self.walk_err(&cur, c, &shown, e)),
            };
            cur = fd;
        }
        Ok(cur)
    }

    fn walk_err(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        shown: &str,
        e: rustix::io::Errno,
    ) -> SafeFsError {
        // O_NOFOLLOW|O_DIRECTORY on a link gives ENOTDIR or ELOOP: say which it was.
        let is_link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
        if is_link || e == rustix::io::Errno::LOOP {
            self.link_err(shown)
        } else if e == rustix::io::Errno::NOTDIR {
            SafeFsError::NotDirectory {
                path: self.full(shown).display().to_string(),
            }
        } else {
            self.map_err(shown, e)
        }
    }

    /// Open an existing directory. `Ok(None)` when it does not exist.
    pub fn open_dir(&self, path: &str) -> Result<Option<Dir>, SafeFsError> {
        Ok(self
            .resolve(path, OFlags::DIRECTORY | OFlags::RDONLY)?
            .map(|fd| Dir {
                fd,
                path: path.to_string(),
            }))
    }

    /// Open a directory, creating it and its missing parents (0755, root's).
    pub fn create_dir_all(&self, path: &str) -> Result<Dir, SafeFsError> {
        if let Some(d) = self.open_dir(path)? {
            return Ok(d);
        }
        let fd = self.walk(path, OFlags::DIRECTORY | OFlags::RDONLY, true)?;
        Ok(Dir {
            fd,
            path: path.to_string(),
        })
    }

    /// Metadata of `path` without following it. `Ok(None)` when missing; an error when a
    /// parent is a link.
    pub fn meta(&self, path: &str) -> Result<Option<Meta>, SafeFsError> {
        let Some((parent, name)) = split(path) else {
            return self.open_dir("/")?.map(|d| d.meta()).transpose();
        };
        match self.open_dir(&parent) {
            Ok(Some(d)) => d.meta_of(name),
            Ok(None) => Ok(None),
            Err(SafeFsError::NotDirectory { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open a regular file for reading without following links; `Ok(None)` when missing.
    pub fn open_file(&self, path: &str) -> Result<Option<(File, Meta)>, SafeFsError> {
        let Some((parent, name)) = split(path) else {
            return Err(SafeFsError::BadPath { path: path.into() });
        };
        match self.open_dir(&parent)? {
            Some(d) => d.open_file(name),
            None => Ok(None),
        }
    }

    /// Read a regular file of at most `max` bytes; `Ok(None)` when missing.
    pub fn read(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, SafeFsError> {
        let Some((parent, name)) = split(path) else {
            return Err(SafeFsError::BadPath { path: path.into() });
        };
        match self.open_dir(&parent)? {
            Some(d) => d.read(name, max),
            None => Ok(None),
        }
    }

    /// Open the parent of `path` (created when missing) and return it with the last name.
    pub fn parent_of<'p>(&self, path: &'p str) -> Result<(Dir, &'p OsStr), SafeFsError> {
        let (parent, name) = split(path).ok_or_else(|| SafeFsError::BadPath {
            path: path.to_string(),
        })?;
        Ok((self.create_dir_all(&parent)?, name))
    }

    /// Open an existing file or directory itself, without following it, to change its mode or
    /// owner through the descriptor. `Ok(None)` when missing.
    pub fn open_node(&self, path: &str) -> Result<Option<(OwnedFd, Meta)>, SafeFsError> {
        // O_PATH descriptors cannot be fchmod'ed: open directories read-only, and anything else
        // non-blocking (a FIFO must not hang us).
        let Some(meta) = self.meta(path)? else {
            return Ok(None);
        };
        let flags = match meta.kind {
            Kind::Dir => OFlags::DIRECTORY | OFlags::RDONLY,
            Kind::File => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Kind::Symlink => return Err(self.link_err(path)),
            Kind::Other => {
                return Err(SafeFsError::NotRegular {
                    path: self.full(path).display().to_string(),
                });
            }
        };
        let Some(fd) = self.resolve(path, flags)? else {
            return Ok(None);
        };
        let meta = meta_of(&fd).map_err(|e| SafeFsError::io(self.full(path).display(), e))?;
        Ok(Some((fd, meta)))
    }
}

/// Mode and owner a written file or a directory must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm<'a> {
    pub mode: u32,
    /// `(user, group)`; `None` keeps this process's (root's, on a node).
    pub owner: Option<(&'a str, &'a str)>,
}

impl Root {
    /// Write `content` to `path` atomically: the parent opened (created if missing) without
    /// following links, a fresh temp file created exclusively, its owner and then its mode set
    /// on the descriptor before the first byte (so a secret is never readable by anyone else),
    /// fsynced and renamed over the final name relative to the same directory. The directory
    /// itself is not fsynced: call [`Dir::sync`] (returned) once after a batch.
    pub fn write_file(
        &self,
        host: &dyn crate::host::Host,
        path: &str,
        content: &[u8],
        perm: Perm<'_>,
    ) -> Result<Dir, SafeFsError> {
        let (dir, name) = self.parent_of(path)?;
        let shown = self.full(path);
        let werr = |e: io::Error| SafeFsError::io(shown.display(), e);
        let mut t = dir.create_temp(name)?;
        if let Some((user, group)) = perm.owner {
            host.chown(&self.path, t.fd(), &shown, user, group)?;
        }
        set_mode(t.fd(), perm.mode).map_err(werr)?;
        std::io::Write::write_all(t.file(), content).map_err(werr)?;
        t.persist().map_err(werr)?;
        Ok(dir)
    }

    /// Set the owner and mode of an existing file or directory through its descriptor.
    /// `Ok(false)` when it does not exist.
    pub fn set_perm(
        &self,
        host: &dyn crate::host::Host,
        path: &str,
        owner: Option<(&str, &str)>,
        mode: Option<u32>,
    ) -> Result<bool, SafeFsError> {
        let Some((fd, _)) = self.open_node(path)? else {
            return Ok(false);
        };
        let shown = self.full(path);
        if let Some((user, group)) = owner {
            host.chown(&self.path, fd.as_fd(), &shown, user, group)?;
        }
        if let Some(mode) = mode {
            set_mode(&fd, mode).map_err(|e| SafeFsError::io(shown.display(), e))?;
        }
        Ok(true)
    }
}

impl Dir {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn shown(&self, name: &OsStr) -> String {
        join(&self.path, name)
    }

    pub fn meta(&self) -> Result<Meta, SafeFsError> {
        meta_of(&self.fd).map_err(|e| SafeFsError::io(&self.path, e))
    }

    /// Metadata of `name` in this directory, not following a link.
    pub fn meta_of(&self, name: &OsStr) -> Result<Option<Meta>, SafeFsError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta::from_stat(&st))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(SafeFsError::io(self.shown(name), e)),
        }
    }

    /// Open `name` for reading: not through a link, not a FIFO or device (checked on the
    /// descriptor, so a swap after the check changes nothing). `Ok(None)` when missing.
    pub fn open_file(&self, name: &OsStr) -> Result<Option<(File, Meta)>, SafeFsError> {
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => {
                return Err(SafeFsError::NotRegular {
                    path: format!("{} (a symbolic link)", self.shown(name)),
                });
            }
            Err(e) => return Err(SafeFsError::io(self.shown(name), e)),
        };
        let meta = meta_of(&fd).map_err(|e| SafeFsError::io(self.shown(name), e))?;
        if meta.kind != Kind::File {
            return Err(SafeFsError::NotRegular {
                path: self.shown(name),
            });
        }
        Ok(Some((File::from(fd), meta)))
    }

    /// Read `name` whole, refusing more than `max` bytes. `Ok(None)` when missing.
    pub fn read(&self, name: &OsStr, max: u64) -> Result<Option<Vec<u8>>, SafeFsError> {
        let Some((f, meta)) = self.open_file(name)? else {
            return Ok(None);
        };
        read_capped(f, meta.size, max, &self.shown(name)).map(Some)
    }

    /// A new temp file in this directory for the final name `name`, created exclusively, mode
    /// 0600, owned by us.
    pub fn create_temp(&self, name: &OsStr) -> Result<TempFile, SafeFsError> {
        TempFile::create_in(&self.fd, &self.path, name)
            .map_err(|e| SafeFsError::io(self.shown(name), e))
    }

    /// Remove the file or link `name` (never following it). Missing is fine.
    pub fn remove(&self, name: &OsStr) -> Result<bool, SafeFsError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(SafeFsError::io(self.shown(name), e)),
        }
    }

    /// The names in this directory (no `.`/`..`), sorted.
    pub fn names(&self) -> Result<Vec<OsString>, SafeFsError> {
        let fd = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SafeFsError::io(&self.path, e))?;
        let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| SafeFsError::io(&self.path, e))?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| SafeFsError::io(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove temp files that a killed run left here — files, links or anything else but
    /// directories, never followed. Returns how many.
    pub fn sweep_temps(&self) -> Result<usize, SafeFsError> {
        let mut n = 0;
        for name in self.names()? {
            if !crate::fsutil::is_temp_name(&name.to_string_lossy()) {
                continue;
            }
            if self.meta_of(&name)?.is_some_and(|m| m.kind != Kind::Dir) && self.remove(&name)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// fsync the directory, so renames into it survive a crash.
    pub fn sync(&self) -> Result<(), SafeFsError> {
        rustix::fs::fsync(&self.fd).map_err(|e| SafeFsError::io(&self.path, e))
    }
}

/// Read an open file whole, refusing more than `max` bytes (the size is checked first and the
/// read is bounded, so a file that grows meanwhile cannot make us read more).
pub fn read_capped(f: File, size: u64, max: u64, shown: &str) -> Result<Vec<u8>, SafeFsError> {
    let too_large = || SafeFsError::TooLarge {
        path: shown.to_string(),
        max,
    };
    if size > max {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SafeFsError::io(shown, e))?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// Change mode and owner through a descriptor (mode after owner: a `chown` clears set-id bits).
pub fn set_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(Into::into)
}

#[cfg(test)]
#[path = "safefs/tests.rs"]
mod tests;
