//! A cluster's pinned seed (`cluster.seed`: name, version, sha512 digest) resolved against the
//! seed cache: found there, or fetched with every snapshot of the published manifest when
//! missing, and checked against the pinned digest; and the pin the wizard writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use vmagent::fetch;
use vmagent::manifest::{Algorithm, Digest};

use super::manifest::{SeedsError, SeedsManifest, Source, cached, download, load, snapshot_path};
use crate::deps::Deps;

/// What a cluster pins: `cluster.seed`'s name, version and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// The cached file of a pinned seed (`None` for `none`): from the cache when its manifest has
/// that version and the file is there; otherwise the published manifest is fetched (its
/// version must be the pinned one) and every snapshot cached. The file is not hashed here:
/// [`resolve`] does that, and `cluster seed` hashes the very bytes it reads (see
/// [`check_digest`]).
pub async fn locate(
    deps: &Deps,
    pin: &Pin,
    out: &mut dyn Write,
) -> Result<Option<PathBuf>, SeedsError> {
    if pin.name.is_empty() || pin.name == "none" {
        return Ok(None);
    }
    if pin.version.trim().is_empty() {
        return Err(SeedsError::NoVersion(pin.name.clone()));
    }
    if !matches!(Digest::parse(&pin.digest), Ok(d) if d.algorithm == Algorithm::Sha512) {
        return Err(SeedsError::BadPin(pin.digest.clone()));
    }
    let found = |m: &SeedsManifest| {
        m.seeds
            .snapshots
            .get(&pin.name)
            .map(|s| (snapshot_path(deps, m, &pin.name, s), s.cached == Some(true)))
    };
    let cached_file = cached(deps)
        .filter(|m| m.seeds.version == pin.version)
        .and_then(|m| found(&m))
        .filter(|(p, c)| *c && p.is_file())
        .map(|(p, _)| p);
    let path = match cached_file {
        Some(p) => p,
        None => {
            let (published, _) = load(deps, Source::Published).await?;
            if published.seeds.version != pin.version {
                return Err(SeedsError::Version {
                    got: published.seeds.version,
                    want: pin.version.clone(),
                });
            }
            if !published.seeds.snapshots.contains_key(&pin.name) {
                return Err(no_snapshot(&published, &pin.name));
            }
            let m = download(
                deps,
                Source::Published,
                false,
                crate::deps::interactive(),
                out,
            )
            .await?;
            found(&m).map(|(p, _)| p).unwrap_or_default()
        }
    };
    Ok(Some(path))
}

/// The pinned seed's cached file, fetched when missing, and checked against `pin.digest`;
/// `None` when the pin is seed `none`.
pub async fn resolve(
    deps: &Deps,
    pin: &Pin,
    out: &mut dyn Write,
) -> Result<Option<PathBuf>, SeedsError> {
    let Some(path) = locate(deps, pin, out).await? else {
        return Ok(None);
    };
    let (got, _) =
        fetch::hash::hash_file(&path, Algorithm::Sha512).map_err(|source| SeedsError::Read {
            path: path.clone(),
            source,
        })?;
    check_digest(pin, &path, format!("sha512:{}", got.hex))?;
    Ok(Some(path))
}

/// `got` (`sha512:<hex>` of the seed file at `path`) against `pin.digest`.
pub fn check_digest(pin: &Pin, path: &Path, got: String) -> Result<(), SeedsError> {
    if got != pin.digest {
        return Err(SeedsError::Digest {
            path: path.to_path_buf(),
            name: pin.name.clone(),
            version: pin.version.clone(),
            got,
            want: pin.digest.clone(),
        });
    }
    Ok(())
}

/// The version and digest to pin for seed `name` (the wizard writes them into
/// `cluster.seed`): from the published manifest, whose snapshots are cached on the way, or —
/// when the deps server cannot be reached — from the cached manifest.
pub async fn pin_for(deps: &Deps, name: &str, out: &mut dyn Write) -> Result<Pin, SeedsError> {
    let m = match download(
        deps,
        Source::Published,
        false,
        crate::deps::interactive(),
        out,
    )
    .await
    {
        Ok(m) => m,
        Err(e) => cached(deps).ok_or(e)?,
    };
    let Some(s) = m.seeds.snapshots.get(name) else {
        return Err(no_snapshot(&m, name));
    };
    let digest = match &s.digest {
        Some(d) => d.clone(),
        None => {
            let path = snapshot_path(deps, &m, name, s);
            let (d, _) = fetch::hash::hash_file(&path, Algorithm::Sha512)
                .map_err(|source| SeedsError::Read { path, source })?;
            format!("sha512:{}", d.hex)
        }
    };
    Ok(Pin {
        name: name.to_string(),
        version: m.seeds.version.clone(),
        digest,
    })
}

/// Seed `name` is not in manifest `m`: the error lists the seeds it has.
fn no_snapshot(m: &SeedsManifest, name: &str) -> SeedsError {
    SeedsError::NoSnapshot {
        name: name.to_string(),
        version: m.seeds.version.clone(),
        have: m
            .seeds
            .snapshots
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    }
}
