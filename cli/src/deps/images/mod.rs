//! Container images in the deps cache: every image the manifests pin, pulled by digest into a
//! per-repository OCI layout that the cluster registry (zot) serves as a mirror:
//!
//! ```text
//! <registry>/mirror/<registry host>/<repository>/{oci-layout,index.json,blobs/sha256/<hex>}
//! ```
//! `<registry>` is `<cache>/registry` beside `<cache>/deps` (else `<deps>/registry`).
//!
//! A download runs in three steps. First the manifests are fetched (by digest, bounded,
//! checked against the digest, in parallel); a multi-arch index keeps only the requested
//! platforms' manifests. Then every blob they list is downloaded once, however many images
//! share it, by vmagent's fetch engine (parallel, verified while streaming, resumed, retried,
//! with its progress line) into the first repository that needs it, and hard-linked into the
//! others. Last, each repository gets its manifests and then its `index.json` entries, so an
//! entry never exists without its blobs. A lock beside the repositories keeps two runs from
//! writing at once.
//!
//! The parts: [`reference`] (parsing and checking image names: nothing from a manifest becomes a
//! path unchecked), [`registry`] (the distribution client for manifests and tokens), [`oci`]
//! (the documents) and [`layout`] (one repository on disk).

pub mod layout;
pub mod oci;
pub mod reference;
pub mod registry;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use layout::{Missing, Repo};
use oci::{Descriptor, Document, Kind, REF_NAME};
use reference::{BlobDigest, ImageRef, RefError};
use registry::Registry;

/// Manifest requests in flight at once.
const MANIFEST_CONCURRENCY: usize = 8;
/// Blob downloads in flight at once.
const BLOB_CONCURRENCY: usize = 8;
/// Lock file beside the mirror repositories, held while a download writes them.
const LOCK_NAME: &str = ".podplane-images.lock";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}; fix the manifest or the deps server")]
    Ref {
        what: String,
        #[source]
        source: RefError,
    },
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
    #[error("unexpected status {status} fetching {url}")]
    Status { url: String, status: u16 },
    #[error("fetching {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} is larger than {max} bytes; that is not an image manifest")]
    TooLarge { url: String, max: usize },
    #[error(
        "{url}: the registry sent a document with digest {actual}, not the pinned {expected}; the registry is broken or hostile: nothing was written"
    )]
    ManifestDigest {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: {reason}")]
    Document { url: String, reason: String },
    #[error("{url}: authentication failed: {reason}")]
    Auth { url: String, reason: String },
    #[error("{image}: the index has no manifest for linux/{archs}; choose other --arch values")]
    NoPlatform { image: String, archs: String },
    #[error("blob {digest} is listed with sizes {a} and {b}; the registry is broken or hostile")]
    SizeConflict { digest: String, a: u64, b: u64 },
    #[error(transparent)]
    Fetch(#[from] vmagent::fetch::FetchError),
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    #[error("cannot take the lock in {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One image to cache: its reference (with the tag, if any, recorded in `index.json`) pinned
/// to `digest`; for an index, `children` (when set) names the platform manifests to keep,
/// otherwise the requested arches choose them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub reference: ImageRef,
    pub digest: BlobDigest,
    pub children: Option<BTreeSet<String>>,
}

impl Wanted {
    /// From a manifest row: `image` (tag optional), `digest`, and `index` when the row is one
    /// platform of a multi-arch index (then the index is what is pinned and the row's manifest
    /// the platform kept).
    pub fn from_row(
        what: &str,
        image: &str,
        digest: &str,
        index: Option<&str>,
    ) -> Result<Wanted, ImageError> {
        let err = |source| ImageError::Ref {
            what: format!("{what} {image:?}"),
            source,
        };
        let reference = ImageRef::parse(image).map_err(err)?;
        let row = BlobDigest::parse(digest).map_err(err)?;
        if let Some(d) = &reference.digest
            && *d != row
            && index.is_none_or(|i| i != d.as_str())
        {
            return Err(err(RefError::Bad(
                image.to_string(),
                "its digest differs from the row's digest",
            )));
        }
        Ok(match index.filter(|i| !i.is_empty()) {
            Some(i) => Wanted {
                reference,
                digest: BlobDigest::parse(i).map_err(err)?,
                children: Some(BTreeSet::from([row.to_string()])),
            },
            None => Wanted {
                reference,
                digest: row,
                children: None,
            },
        })
    }

    pub fn label(&self) -> String {
        match &self.reference.tag {
            Some(t) => format!("{}:{t}", self.reference.name()),
            None => format!("{}@{}", self.reference.name(), self.digest),
        }
    }
}

/// Rows of several manifests merged: one entry per (repository, digest), children united.
pub fn merge(wanted: Vec<Wanted>) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = Vec::new();
    for w in wanted {
        match out.iter_mut().find(|o| {
            o.reference.name() == w.reference.name()
                && o.digest == w.digest
                && o.reference.tag == w.reference.tag
        }) {
            Some(o) => match (&mut o.children, w.children) {
                (Some(a), Some(b)) => a.extend(b),
                (a, _) => *a = None,
            },
            None => out.push(w),
        }
    }
    out
}

/// Where the image layouts live: `<deps>/../registry` when the deps directory is named `deps`,
/// else `<deps>/registry`.
pub fn registry_dir(deps_dir: &std::path::Path) -> PathBuf {
    match (deps_dir.file_name(), deps_dir.parent()) {
        (Some(n), Some(p)) if n == "deps" => p.join("registry"),
        _ => deps_dir.join("registry"),
    }
}

/// The image layouts: `<registry>/mirror` (so `<registry>/mirror/<host>/<repository>` is the
/// mirror repository `mirror/<host>/<repository>`).
pub fn mirror_dir(deps_dir: &std::path::Path) -> PathBuf {
    registry_dir(deps_dir).join("mirror")
}

/// The repository of an image below `root` (the mirror or the chart cache):
/// `<root>/<host>/<repository>`, from a name checked by [`ImageRef::parse`].
pub fn repo_of(root: &std::path::Path, r: &ImageRef) -> Repo {
    Repo::new(root.join(r.name()))
}

/// The platforms to keep of an index: those `children` names, else linux on a requested arch.
fn keeper<'a>(w: &'a Wanted, archs: &'a [String]) -> impl Fn(&Descriptor) -> bool + 'a {
    move |d: &Descriptor| match &w.children {
        Some(set) => set.contains(&d.digest),
        None => d
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && archs.contains(&p.architecture)),
    }
}

/// Whether the image is cached whole; `hash` re-hashes every blob.
pub fn check(
    root: &std::path::Path,
    w: &Wanted,
    archs: &[String],
    hash: bool,
) -> Result<(), Missing> {
    repo_of(root, &w.reference).check_image(&w.digest, &keeper(w, archs), hash)
}

/// What [`download`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub images: usize,
    pub cached: usize,
    pub downloaded: usize,
    /// Distinct blobs fetched, and the bytes received for them (retries included).
    pub blobs: usize,
    pub bytes: u64,
}

/// A resolved image: its manifests (bytes, verified) and the blobs they list.
struct Resolved {
    index: usize,
    documents: Vec<(BlobDigest, Vec<u8>)>,
    blobs: Vec<(BlobDigest, u64)>,
    entries: Vec<Descriptor>,
}

/// Cache every wanted image that is not cached whole yet, in layouts below `root`.
pub async fn download(
    root: &std::path::Path,
    wanted: &[Wanted],
    archs: &[String],
    progress: bool,
    out: &mut dyn Write,
) -> Result<Report, ImageError> {
    let mirror = root.to_path_buf();
    std::fs::create_dir_all(&mirror).map_err(|source| ImageError::Write {
        path: mirror.clone(),
        source,
    })?;
    let _lock = vmagent::fsutil::DirLock::acquire(&mirror, LOCK_NAME, Duration::from_secs(300))
        .map_err(|source| ImageError::Lock {
            path: mirror.clone(),
            source,
        })?;
    let mut report = Report {
        images: wanted.len(),
        ..Report::default()
    };
    let mut missing = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        // Temp files of an interrupted run (we hold the lock, so none is in use).
        let blobs = repo_of(root, &w.reference).dir.join("blobs/sha256");
        if blobs.is_dir() {
            let _ = vmagent::fsutil::sweep_temp_files(&blobs);
        }
        // Hashed, so a corrupt blob (one `deps verify` reports) is fetched again.
        if check(root, w, archs, true).is_ok() {
            let _ = writeln!(out, "Found {} in cache.", w.label());
            report.cached += 1;
        } else {
            missing.push(i);
        }
    }
    if missing.is_empty() {
        return Ok(report);
    }
    for &i in &missing {
        let _ = writeln!(out, "Downloading {}...", wanted[i].label());
    }

    // 1. Manifests, in parallel.
    let registry = Arc::new(Registry::new()?);
    let slots = Arc::new(tokio::sync::Semaphore::new(MANIFEST_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for &i in &missing {
        let (w, registry, slots) = (wanted[i].clone(), registry.clone(), slots.clone());
        let archs = archs.to_vec();
        set.spawn(async move {
            let _slot = slots.acquire_owned().await;
            resolve(&registry, i, &w, &archs).await
        });
    }
    let mut resolved = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(r)) => resolved.push(r),
            Ok(Err(e)) => {
                set.abort_all();
                return Err(e);
            }
            Err(e) => return Err(ImageError::Client(format!("a manifest task failed: {e}"))),
        }
    }
    resolved.sort_by_key(|r| r.index);

    // 2. Blobs: each distinct one once, into the first repository that lists it.
    let mut first: BTreeMap<BlobDigest, (u64, usize)> = BTreeMap::new();
    for r in &resolved {
        for (d, size) in &r.blobs {
            match first.get(d) {
                Some((s, _)) if s != size => {
                    return Err(ImageError::SizeConflict {
                        digest: d.to_string(),
                        a: *s,
                        b: *size,
                    });
                }
                Some(_) => {}
                None => {
                    first.insert(d.clone(), (*size, r.index));
                }
            }
        }
    }
    let mut targets = Vec::new();
    let mut auth = Vec::new();
    for (d, (size, i)) in &first {
        let w = &wanted[*i];
        let repo = repo_of(root, &w.reference);
        if *size == 0 {
            // The engine wants sizes; an empty blob is written as it is (if the digest says so).
            if *d != BlobDigest::of(b"") {
                return Err(ImageError::SizeConflict {
                    digest: d.to_string(),
                    a: 0,
                    b: 0,
                });
            }
            repo.write_blob(d, b"")?;
            continue;
        }
        let dest = repo.blob_path(d);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ImageError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let base = w.reference.base_url();
        if let Some(a) = registry.authorization(&w.reference)
            && !auth
                .iter()
                .any(|(p, _): &(String, String)| *p == format!("{base}/blobs/"))
        {
            auth.push((format!("{base}/blobs/"), a));
        }
        targets.push(vmagent::fetch::Target {
            key: format!("{}@{}", w.reference.name(), &d.as_str()[..19]),
            url: format!("{base}/blobs/{d}"),
            digest: d.engine(),
            size: *size,
            dest,
        });
    }
    if !targets.is_empty() {
        let mut opts = vmagent::fetch::FetchOptions::new(&mirror);
        opts.concurrency = BLOB_CONCURRENCY;
        opts.progress = progress;
        opts.authorization = auth;
        let summary = vmagent::fetch::fetch(targets, &opts).await?;
        report.blobs = summary.downloaded;
        report.bytes = summary.bytes_received;
    }

    // 3. Per repository: shared blobs linked, manifests written, then the index entries.
    let mut by_repo: HashMap<PathBuf, Vec<&Resolved>> = HashMap::new();
    for r in &resolved {
        let repo = repo_of(root, &wanted[r.index].reference);
        for (d, size) in &r.blobs {
            let (_, owner) = first[d];
            if owner != r.index && *size > 0 {
                let src = repo_of(root, &wanted[owner].reference).blob_path(d);
                repo.link_blob(d, *size, &src)?;
            }
        }
        for (d, bytes) in &r.documents {
            repo.write_blob(d, bytes)?;
        }
        by_repo.entry(repo.dir.clone()).or_default().push(r);
    }
    for (dir, rs) in by_repo {
        let entries: Vec<Descriptor> = rs.iter().flat_map(|r| r.entries.clone()).collect();
        Repo::new(dir).add_entries(&entries)?;
    }
    for r in &resolved {
        let _ = writeln!(out, "Downloaded {}.", wanted[r.index].label());
        report.downloaded += 1;
    }
    Ok(report)
}

/// Fetch the pinned manifest (and for an index, the kept platforms' manifests).
async fn resolve(
    registry: &Registry,
    index: usize,
    w: &Wanted,
    archs: &[String],
) -> Result<Resolved, ImageError> {
    let (bytes, ctype) = registry.manifest(&w.reference, &w.digest).await?;
    let url = format!("{}/manifests/{}", w.reference.base_url(), w.digest);
    let (kind, media_type) = classify(&bytes, ctype.as_deref(), &url)?;
    let mut annotations = None;
    if let Some(tag) = &w.reference.tag {
        annotations = Some(BTreeMap::from([(REF_NAME.to_string(), tag.clone())]));
    }
    let top = Descriptor {
        media_type,
        digest: w.digest.to_string(),
        size: bytes.len() as u64,
        platform: None,
        annotations,
    };
    let mut r = Resolved {
        index,
        documents: vec![(w.digest.clone(), bytes)],
        blobs: Vec::new(),
        entries: Vec::new(),
    };
    let keep = keeper(w, archs);
    match kind {
        Kind::Manifest { config, layers } => {
            r.blobs = blob_list(&url, &config, &layers)?;
        }
        Kind::Index(children) => {
            let kept: Vec<Descriptor> = children.into_iter().filter(|c| keep(c)).collect();
            if kept.is_empty() {
                return Err(ImageError::NoPlatform {
                    image: w.label(),
                    archs: archs.join(", linux/"),
                });
            }
            for c in kept {
                let d = BlobDigest::parse(&c.digest).map_err(|source| ImageError::Ref {
                    what: format!("{url}: a manifest"),
                    source,
                })?;
                let (bytes, ctype) = registry.manifest(&w.reference, &d).await?;
                let curl = format!("{}/manifests/{d}", w.reference.base_url());
                match classify(&bytes, ctype.as_deref(), &curl)?.0 {
                    Kind::Manifest { config, layers } => {
                        r.blobs.extend(blob_list(&curl, &config, &layers)?);
                    }
                    Kind::Index(_) => {
                        return Err(ImageError::Document {
                            url: curl,
                            reason: "an index inside an index is not supported".into(),
                        });
                    }
                }
                r.documents.push((d, bytes));
                r.entries.push(Descriptor {
                    annotations: None,
                    ..c
                });
            }
        }
    }
    r.entries.push(top);
    Ok(r)
}

fn classify(bytes: &[u8], ctype: Option<&str>, url: &str) -> Result<(Kind, String), ImageError> {
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| ImageError::Document {
        url: url.into(),
        reason: format!("not JSON: {e}"),
    })?;
    doc.classify(ctype).map_err(|reason| ImageError::Document {
        url: url.into(),
        reason,
    })
}

fn blob_list(
    url: &str,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<Vec<(BlobDigest, u64)>, ImageError> {
    std::iter::once(config)
        .chain(layers)
        .map(|b| {
            let d = BlobDigest::parse(&b.digest).map_err(|source| ImageError::Ref {
                what: format!("{url}: a blob"),
                source,
            })?;
            Ok((d, b.size))
        })
        .collect()
}
