//! One mirror repository on disk, as zot serves it: `<dir>/oci-layout`, `<dir>/index.json` and
//! `<dir>/blobs/sha256/<hex>`. Blobs are written whole (temp file + rename) and only after
//! every blob an entry needs is in place is the entry added to `index.json` (also replaced
//! atomically), so an interrupted run never leaves an entry without its blobs. Files are opened
//! without following links.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::ImageError;
use super::oci::{Descriptor, Document, Kind, LayoutIndex, REF_NAME};
use super::reference::BlobDigest;
use super::registry::MAX_MANIFEST_BYTES;

pub const OCI_LAYOUT: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub dir: PathBuf,
}

/// Why a cached image is not usable, for `verify` and for the decision to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No `index.json` entry with the digest.
    Entry,
    /// A blob absent, of another size, or (when hashing) with other content.
    Blob { path: PathBuf, why: &'static str },
    /// A manifest blob that does not parse.
    Document { path: PathBuf, why: String },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Entry => f.write_str("no entry in index.json"),
            Missing::Blob { path, why } => write!(f, "{}: {why}", path.display()),
            Missing::Document { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

impl Repo {
    pub fn new(dir: PathBuf) -> Repo {
        Repo { dir }
    }

    pub fn blob_path(&self, d: &BlobDigest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// The blob is a regular file of `size` bytes (and, with `hash`, of that digest).
    pub fn check_blob(&self, d: &BlobDigest, size: u64, hash: bool) -> Result<(), Missing> {
        let path = self.blob_path(d);
        let miss = |why| Missing::Blob {
            path: path.clone(),
            why,
        };
        let f = open_nofollow(&path).map_err(|_| miss("missing"))?;
        let meta = f.metadata().map_err(|_| miss("unreadable"))?;
        if !meta.is_file() {
            return Err(miss("not a regular file"));
        }
        if meta.len() != size {
            return Err(miss("wrong size"));
        }
        if hash {
            let (got, _) =
                vmagent::fetch::hash::hash_reader(f, vmagent::manifest::Algorithm::Sha256)
                    .map_err(|_| miss("unreadable"))?;
            if got != d.engine() {
                return Err(miss("corrupt (digest differs)"));
            }
        }
        Ok(())
    }

    /// A small blob (a manifest) read whole, checked against its digest.
    pub fn read_document(&self, d: &BlobDigest) -> Result<Vec<u8>, Missing> {
        let path = self.blob_path(d);
        let mut bytes = Vec::new();
        let read = open_nofollow(&path).and_then(|f| {
            f.take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        });
        if read.is_err() {
            return Err(Missing::Blob {
                path,
                why: "missing",
            });
        }
        if BlobDigest::of(&bytes) != *d {
            return Err(Missing::Blob {
                path,
                why: "corrupt (digest differs)",
            });
        }
        Ok(bytes)
    }

    pub fn read_index(&self) -> Result<LayoutIndex, ImageError> {
        let path = self.index_path();
        let mut bytes = Vec::new();
        match open_nofollow(&path) {
            Ok(f) => {
                f.take(MAX_MANIFEST_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|source| ImageError::Read {
                        path: path.clone(),
                        source,
                    })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LayoutIndex::default());
            }
            Err(source) => return Err(ImageError::Read { path, source }),
        }
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Layout {
            path,
            reason: format!(
                "{e}; remove the file so the next `podplane deps download` rewrites it"
            ),
        })
    }

    /// Is the image `digest` here whole: an `index.json` entry, its manifest, and for an index
    /// the manifests of the wanted platforms (`keep`), each with its config and layers?
    /// `hash` re-hashes every blob (verify); otherwise sizes are compared and small documents
    /// hashed.
    pub fn check_image(
        &self,
        digest: &BlobDigest,
        keep: &dyn Fn(&Descriptor) -> bool,
        hash: bool,
    ) -> Result<(), Missing> {
        let index = self.read_index().map_err(|_| Missing::Entry)?;
        if !index.manifests.iter().any(|d| d.digest == digest.as_str()) {
            return Err(Missing::Entry);
        }
        self.check_document(digest, keep, hash, 0)
    }

    fn check_document(
        &self,
        digest: &BlobDigest,
        keep: &dyn Fn(&Descriptor) -> bool,
        hash: bool,
        depth: u8,
    ) -> Result<(), Missing> {
        let path = self.blob_path(digest);
        let bytes = self.read_document(digest)?;
        let doc: Document = serde_json::from_slice(&bytes).map_err(|e| Missing::Document {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let (kind, _) = doc.classify(None).map_err(|why| Missing::Document {
            path: path.clone(),
            why,
        })?;
        let child = |d: &Descriptor| {
            BlobDigest::parse(&d.digest).map_err(|e| Missing::Document {
                path: path.clone(),
                why: e.to_string(),
            })
        };
        match kind {
            Kind::Index(children) if depth == 0 => {
                for c in children.iter().filter(|c| keep(c)) {
                    self.check_document(&child(c)?, keep, hash, 1)?;
                }
            }
            Kind::Index(_) => {
                return Err(Missing::Document {
                    path,
                    why: "an index inside an index".into(),
                });
            }
            Kind::Manifest { config, layers } => {
                for b in std::iter::once(&config).chain(&layers) {
                    self.check_blob(&child(b)?, b.size, hash)?;
                }
            }
        }
        Ok(())
    }

    pub fn write_blob(&self, d: &BlobDigest, bytes: &[u8]) -> Result<(), ImageError> {
        let path = self.blob_path(d);
        if self.check_blob(d, bytes.len() as u64, true).is_ok() {
            return Ok(());
        }
        create_parent(&path)?;
        vmagent::fsutil::write_atomic(&path, bytes, Some(0o644))
            .map_err(|source| ImageError::Write { path, source })
    }

    /// Put the blob `d` here from `src` (a verified blob of another repository): a hard link
    /// when the filesystem allows, else a copy through a temp file; never a partial file.
    pub fn link_blob(&self, d: &BlobDigest, size: u64, src: &Path) -> Result<(), ImageError> {
        let path = self.blob_path(d);
        if self.check_blob(d, size, true).is_ok() {
            return Ok(());
        }
        create_parent(&path)?;
        let werr = |source| ImageError::Write {
            path: path.clone(),
            source,
        };
        // A wrong file in the way goes first; a link never replaces a file.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(werr(e)),
            _ => {}
        }
        if std::fs::hard_link(src, &path).is_ok() {
            return Ok(());
        }
        let mut tmp = vmagent::fsutil::TempFile::create_for(&path).map_err(werr)?;
        let mut from = open_nofollow(src).map_err(|source| ImageError::Read {
            path: src.to_path_buf(),
            source,
        })?;
        std::io::copy(&mut from, tmp.file()).map_err(werr)?;
        tmp.persist().map_err(werr)
    }

    /// Add entries to `index.json` (after their blobs are written): an entry with the same
    /// digest is replaced, and a tag moves to the new entry. Writes `oci-layout` when missing.
    pub fn add_entries(&self, entries: &[Descriptor]) -> Result<(), ImageError> {
        let layout = self.dir.join("oci-layout");
        if self.check_file(&layout, OCI_LAYOUT).is_err() {
            create_parent(&layout)?;
            vmagent::fsutil::write_atomic(&layout, OCI_LAYOUT, Some(0o644)).map_err(|source| {
                ImageError::Write {
                    path: layout.clone(),
                    source,
                }
            })?;
        }
        let mut index = self.read_index()?;
        for e in entries {
            if let Some(tag) = e.tag() {
                for old in &mut index.manifests {
                    if old.tag() == Some(tag)
                        && let Some(a) = old.annotations.as_mut()
                    {
                        a.remove(REF_NAME);
                    }
                }
            }
            match index.manifests.iter_mut().find(|d| d.digest == e.digest) {
                Some(old) if e.tag().is_none() && old.tag().is_some() => {}
                Some(old) => *old = e.clone(),
                None => index.manifests.push(e.clone()),
            }
        }
        for d in &mut index.manifests {
            if d.annotations.as_ref().is_some_and(|a| a.is_empty()) {
                d.annotations = None;
            }
        }
        let path = self.index_path();
        let mut text = serde_json::to_vec_pretty(&index).map_err(|e| ImageError::Write {
            path: path.clone(),
            source: e.into(),
        })?;
        text.push(b'\n');
        vmagent::fsutil::write_atomic(&path, &text, Some(0o644))
            .map_err(|source| ImageError::Write { path, source })
    }

    fn check_file(&self, path: &Path, want: &[u8]) -> std::io::Result<()> {
        let mut got = Vec::new();
        open_nofollow(path)?
            .take(want.len() as u64 + 1)
            .read_to_end(&mut got)?;
        if got == want {
            Ok(())
        } else {
            Err(std::io::ErrorKind::InvalidData.into())
        }
    }
}

fn create_parent(path: &Path) -> Result<(), ImageError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| ImageError::Write {
        path: dir.to_path_buf(),
        source,
    })
}
