//! Reusing what is already there instead of downloading it: a file at its final path with the
//! right digest, or an entry of the cache directory. Cache entries may belong to other accounts,
//! so they are opened without following links, checked on the descriptor and copied (hashing
//! what is copied) into a fresh temp file, never linked; a verified download is stored in the
//! cache the same way.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::error::FetchError;
use super::hash;
use super::options::Target;
use crate::fsutil::TempFile;
use crate::manifest::Digest;
use crate::safefs;

pub(super) enum Reuse {
    InPlace,
    FromCache,
    No,
}

/// Is `t` already at its final path with the right digest, or in the cache? A wrong file, a
/// link or anything else but a directory at the final path is removed so that nothing
/// unverified stays there.
pub(super) fn reuse(t: &Target, cache: Option<&Path>) -> Result<Reuse, FetchError> {
    if in_place(t)? {
        log::debug!(key = t.key.as_str(); "{} already in place", t.key);
        return Ok(Reuse::InPlace);
    }
    let Some(cache) = cache else {
        return Ok(Reuse::No);
    };
    from_cache(t, cache)
}

/// Open `path` for reading without following a link at its last component, and without
/// blocking on a FIFO.
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

fn in_place(t: &Target) -> Result<bool, FetchError> {
    let read_err = |source| FetchError::Read {
        path: t.dest.clone(),
        source,
    };
    let md = match std::fs::symlink_metadata(&t.dest) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(read_err(source)),
    };
    if md.is_dir() {
        return Err(FetchError::NotAFile {
            key: t.key.clone(),
            path: t.dest.clone(),
        });
    }
    if md.is_file() {
        // Checked again on the descriptor: what is hashed is what was opened.
        let file = match open_nofollow(&t.dest) {
            Ok(f) => Some(f),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(read_err(source)),
        };
        if let Some(file) = file {
            let fmd = file.metadata().map_err(read_err)?;
            if fmd.is_file() && fmd.len() == t.size {
                let (d, len) =
                    hash::hash_reader(file.take(t.size), t.digest.algorithm).map_err(read_err)?;
                if d == t.digest && len == t.size {
                    return Ok(true);
                }
            }
        }
        log::info!(key = t.key.as_str(), path = t.dest.display().to_string(); "{}: {} has another digest; replacing it", t.key, t.dest.display());
    } else {
        log::info!(key = t.key.as_str(), path = t.dest.display().to_string(); "{}: {} is not a regular file; replacing it", t.key, t.dest.display());
    }
    remove(&t.dest)?;
    Ok(false)
}

/// Take `t` from the cache: the entry is opened without following links below the cache
/// directory, must be a regular file of the pinned size, and is copied into a temp file beside
/// the destination while hashing the copied bytes; only a match is renamed into place. An entry
/// that does not match is removed; one that cannot be used is skipped with a warning.
fn from_cache(t: &Target, cache: &Path) -> Result<Reuse, FetchError> {
    let entry = cache_path(cache, &t.digest);
    let skip = |why: &dyn std::fmt::Display| {
        log::warn!(key = t.key.as_str(), path = entry.display().to_string(); "{}: not using cache entry {}: {why}", t.key, entry.display());
        Ok(Reuse::No)
    };
    let root = match safefs::Root::open(cache) {
        Ok(r) => r,
        Err(e) => return skip(&e),
    };
    let dir = match root.open_dir(&format!("/{}", t.digest.algorithm.name())) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Reuse::No),
        Err(e) => return skip(&e),
    };
    let name = OsStr::new(&t.digest.hex);
    let (file, meta) = match dir.open_file(name) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Reuse::No),
        Err(e) => return skip(&e),
    };
    let corrupt = |why: String| {
        log::warn!(key = t.key.as_str(), path = entry.display().to_string(); "cache entry {} is corrupt ({why}); removing it", entry.display());
        let _ = dir.remove(name);
        Ok(Reuse::No)
    };
    if meta.size != t.size {
        return corrupt(format!("{} bytes, {} pinned", meta.size, t.size));
    }
    let write_err = |source| FetchError::Write {
        path: t.dest.clone(),
        source,
    };
    let mut tmp = TempFile::create_for(&t.dest).map_err(write_err)?;
    let copied = copy_hashing(file.take(t.size + 1), tmp.file(), t.digest.algorithm);
    let (d, len) = match copied {
        Ok(r) => r,
        Err(CopyError::Read(e)) => return skip(&e),
        Err(CopyError::Write(e)) => return Err(write_err(e)),
    };
    if d != t.digest || len != t.size {
        return corrupt(format!("digest {d}, {len} bytes"));
    }
    tmp.persist().map_err(write_err)?;
    log::debug!(key = t.key.as_str(); "{} taken from the cache", t.key);
    Ok(Reuse::FromCache)
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copy `src` into `dst`, hashing exactly the bytes written.
fn copy_hashing(
    mut src: impl Read,
    dst: &mut std::fs::File,
    algorithm: crate::manifest::Algorithm,
) -> Result<(Digest, u64), CopyError> {
    let mut h = hash::Hasher::new(algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        h.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        len += n as u64;
    }
    Ok((h.finish(), len))
}

fn remove(p: &Path) -> Result<(), FetchError> {
    std::fs::remove_file(p).map_err(|source| FetchError::Write {
        path: p.to_path_buf(),
        source,
    })
}

/// `<cache>/<algo>/<hex>`
pub fn cache_path(cache: &Path, d: &Digest) -> PathBuf {
    cache.join(d.algorithm.name()).join(&d.hex)
}

/// Put a verified file into the cache: a copy in a fresh temp file, renamed into place, in a
/// directory reached without following links below the cache directory. An existing entry is
/// left alone (a bad one is removed the next time it is read).
pub(crate) fn store_in_cache(cache: &Path, d: &Digest, verified: &Path) -> Result<(), FetchError> {
    let entry = cache_path(cache, d);
    let err = |source| FetchError::Cache {
        path: entry.clone(),
        source,
    };
    let safe_err = |e: safefs::SafeFsError| FetchError::Cache {
        path: entry.clone(),
        source: e.into_io(),
    };
    let root = safefs::Root::open(cache).map_err(safe_err)?;
    let dir = root
        .create_dir_all(&format!("/{}", d.algorithm.name()))
        .map_err(safe_err)?;
    let name = OsStr::new(&d.hex);
    if dir.meta_of(name).map_err(safe_err)?.is_some() {
        return Ok(());
    }
    let mut t = dir.create_temp(name).map_err(safe_err)?;
    let mut src = open_nofollow(verified).map_err(err)?;
    std::io::copy(&mut src, t.file()).map_err(err)?;
    t.persist().map_err(err)
}
