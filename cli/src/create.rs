//! `podplane cluster create`: load the config, pin the node manifests, generate and write the
//! OpenTofu/Terraform files. Running OpenTofu afterwards is the binary's job ([`crate::tfrun`]).

use std::path::{Path, PathBuf};

use crate::config;
use crate::deps::Deps;
use crate::tfgen::{self, PinnedManifest, cluster};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(
        "cluster config {} does not exist; write it first (`podplane cluster schema` prints its format, README shows an example)",
        .0.display()
    )]
    NoConfig(PathBuf),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cluster config {}: {source}", path.display())]
    Generate {
        path: PathBuf,
        source: tfgen::GenerateError,
    },
    #[error("pin the {kind}/{arch} node manifest: {source}")]
    Deps {
        kind: String,
        arch: String,
        source: Box<crate::deps::DepsError>,
    },
    #[error("failed to prepare seed snapshot {name:?}: {source}")]
    Seed {
        name: String,
        #[source]
        source: Box<crate::seeds::manifest::SeedsError>,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot read the cached node manifest {}: {source}", path.display())]
    ReadCache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cached node manifest {} is not usable: {reason}; delete it, or run podplane deps download -f {}",
        path.display(),
        config.display()
    )]
    CachedManifest {
        path: PathBuf,
        config: PathBuf,
        #[source]
        reason: Box<tfgen::ManifestProblem>,
    },
}

/// Generate the cluster's files next to `config_path` and return that directory.
pub fn generate(config_path: &Path, deps: &Deps) -> Result<PathBuf, CreateError> {
    let path = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    if !path.exists() {
        return Err(CreateError::NoConfig(path));
    }
    let cfg = config::load(&path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let gen_err = |source| CreateError::Generate {
        path: path.clone(),
        source,
    };
    // Full validation before anything is fetched or written; generation reads its result.
    let valid = tfgen::validate_for_terraform(&cfg).map_err(|e| gen_err(e.into()))?;
    let targets = cluster::required_targets(&valid);
    let mut manifests = Vec::new();
    let mut runtime = None;
    // The pinned seed must be in the cache with exactly that version and digest (fetched when
    // missing), so that `cluster seed`, run by the apply, finds it.
    let seed = &cfg.cluster.seed;
    if matches!(seed.name.as_str(), "recommended" | "minimal") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CreateError::Runtime)?;
        let pin = crate::seeds::pin::Pin {
            name: seed.name.clone(),
            version: seed.version.clone(),
            digest: seed.digest.clone(),
        };
        rt.block_on(crate::seeds::pin::resolve(deps, &pin, &mut std::io::sink()))
            .map_err(|source| CreateError::Seed {
                name: seed.name.clone(),
                source: Box::new(source),
            })?;
        runtime = Some(rt);
    }
    for (kind, arch) in targets.keys() {
        let cached = deps.manifest_path(kind, arch);
        let json = match std::fs::read(&cached) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CreateError::ReadCache {
                    path: cached,
                    source: e,
                });
            }
            Err(_) => {
                if runtime.is_none() {
                    runtime = Some(
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(CreateError::Runtime)?,
                    );
                }
                let Some(rt) = &runtime else { continue };
                rt.block_on(crate::deps::ensure_manifest(deps, kind, arch))
                    .map_err(|source| CreateError::Deps {
                        kind: kind.clone(),
                        arch: arch.clone(),
                        source: Box::new(source),
                    })?
            }
        };
        manifests.push(PinnedManifest {
            kind: kind.clone(),
            arch: arch.clone(),
            json,
        });
    }
    let opts = cluster::Options {
        config_file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| config::DEFAULT_CONFIG_FILE.into()),
        deps_mirror_url: deps.base_url.clone(),
        manifests,
    };
    let files = cluster::render(&valid, &opts).map_err(|e| match e {
        tfgen::GenerateError::BadManifest {
            kind, arch, reason, ..
        } => CreateError::CachedManifest {
            path: deps.manifest_path(&kind, &arch),
            config: path.clone(),
            reason,
        },
        e => gen_err(e),
    })?;
    tfgen::write(&dir, &files, "podplane cluster create").map_err(|e| gen_err(e.into()))?;
    Ok(dir)
}
