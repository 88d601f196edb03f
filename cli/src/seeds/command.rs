//! `podplane cluster seed`: the cluster's pinned seed (from the deps cache, fetched when
//! missing, sha512-checked against `cluster.seed.digest`), interpolated for the config, written
//! as an uncompressed `bootstrap.netsy` and uploaded create-only to the cluster's Netsy bucket.
//!
//! The output is deterministic: the header's `created_at` is the seed's own, so a rerun with
//! the same inputs produces the same bytes, and the upload treats them as already done.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::interpolate::{self, Inputs, InterpolateError};
use super::manifest::{self, SeedsError};
use super::netsy::{self, NetsyError};
use super::pin::{self, Pin};
use super::upload::{self, UploadError, Uploaded};
use crate::aws::{self, AwsError, EnvSource};
use crate::config::{self, ClusterConfig, ConfigError};
use crate::deps::Deps;

/// What `cluster seed` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SeedOptions {
    pub config: PathBuf,
    /// Values applied last (YAML or JSON file).
    pub values_file: Option<PathBuf>,
    /// Values applied after the derived ones and before the file (YAML or JSON text; the
    /// generated Terraform passes its ACME overlay this way).
    pub values: Option<String>,
    /// Write the file and say what would be uploaded; upload nothing.
    pub dry_run: bool,
    /// Where to write `bootstrap.netsy` [default: next to the config].
    pub output: Option<PathBuf>,
    /// The Netsy bucket [default: `<id>-<account>-netsy` when the AWS provider names its
    /// account].
    pub bucket: Option<String>,
    /// Key prefix inside the bucket (Netsy's `NETSY_KEY_PREFIX`; empty by default).
    pub prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedCmdError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Seeds(#[from] SeedsError),
    #[error(transparent)]
    Netsy(#[from] NetsyError),
    #[error(transparent)]
    Interpolate(#[from] InterpolateError),
    #[error("cannot read the values file {}: {source}", path.display())]
    ValuesFile {
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
    #[error(
        "{file}: cluster.seed.name is {name:?}: there is nothing to seed (set it to recommended or minimal, with version and digest from `podplane deps download`)"
    )]
    NoSeed { file: String, name: String },
    #[error(
        "{file}: the Netsy bucket is unknown: set --bucket (the generated Terraform passes it), or set providers[].account so it is <id>-<account>-netsy"
    )]
    NoBucket { file: String },
    #[error("{file}: seeding uploads to S3, which needs an aws provider in providers[]")]
    NoAws { file: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Upload(#[from] UploadError<AwsError>),
}

/// The values file's text, capped like a manifest.
fn read_values(path: &Path) -> Result<String, SeedCmdError> {
    read_text(path, vmagent::manifest::MAX_MANIFEST_BYTES).map_err(|source| {
        SeedCmdError::ValuesFile {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A text file of at most `max` bytes (larger is an `InvalidData` error).
fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(text)
}

/// `oidc.ca_cert` as the registry needs it: inline PEM as written, a file's contents (at most
/// 1 MiB), nothing for none or an http(s) URL (fetched by `podplane login`, not at seed time).
fn oidc_ca(cfg: &ClusterConfig) -> Result<Option<String>, InterpolateError> {
    const MAX_CA_BYTES: u64 = 1 << 20;
    let ca = cfg.cluster.oidc.ca_cert.as_str();
    if ca.trim_start().starts_with("-----BEGIN") {
        return Ok(Some(ca.to_string()));
    }
    if ca.is_empty() || ca.contains("://") {
        return Ok(None);
    }
    let bad = |problem: String| InterpolateError::Values {
        what: format!("cluster config: oidc.ca_cert {ca:?}"),
        problem,
    };
    let text = read_text(Path::new(ca), MAX_CA_BYTES).map_err(|e| {
        bad(format!(
            "cannot read the CA file: {e} (use inline PEM, a readable file or an https URL)"
        ))
    })?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("the file holds no PEM certificate".into()));
    }
    Ok(Some(text))
}

/// Builds the cluster's `bootstrap.netsy` bytes from the seed file at `seed`, whose sha512
/// must be `pin`'s digest when one is given.
///
/// The file is read once; the digest is computed on another thread over those same bytes
/// while they are decoded and rewritten (so what was checked is what is used, and the hash
/// costs no wall time on a machine with two cores). Nothing from the file is returned unless
/// the digest matched; a mismatch is reported before any decoding error, since it explains it.
pub fn build(
    cfg: &ClusterConfig,
    seed: &Path,
    pin: Option<&Pin>,
    values: Option<&str>,
    values_file: Option<(&str, &Path)>,
) -> Result<Vec<u8>, SeedCmdError> {
    let file = netsy::read_bytes(seed)?;
    let name = seed.display().to_string();
    let inputs = Inputs {
        cfg,
        oidc_ca: oidc_ca(cfg)?,
        values_inline: values.map(|v| (v, "--values".to_string())),
        values_file: values_file.map(|(t, p)| (t, format!("values file {}", p.display()))),
    };
    let (digest, built) = std::thread::scope(|scope| {
        let hasher = pin.map(|_| scope.spawn(|| manifest::sha512(&file)));
        let built = (|| -> Result<Vec<u8>, SeedCmdError> {
            let s = netsy::decode(&file, &name)?;
            let records = interpolate::interpolate(s.records, &name, &inputs)?;
            // What Netsy will check on import, checked here first. (The CRCs, count and
            // footer are the encoder's own; the tests read its output back with an
            // independent reader.)
            netsy::check_bootstrap_records(&records, "bootstrap.netsy")?;
            Ok(netsy::encode(
                &cfg.cluster.id,
                s.header.created_at,
                &records,
            ))
        })();
        // Hashing a byte slice cannot panic; if the thread somehow did, the digest is
        // unknown and fails the check below.
        let digest = hasher.map(|h| h.join().unwrap_or_default());
        (digest, built)
    });
    if let (Some(pin), Some(got)) = (pin, digest) {
        pin::check_digest(pin, seed, got)?;
    }
    built
}

/// `podplane cluster seed`.
pub async fn run(
    opts: &SeedOptions,
    deps: &Deps,
    env: &EnvSource,
    out: &mut dyn Write,
) -> Result<(), SeedCmdError> {
    let file = opts.config.display().to_string();
    let cfg = config::load(&opts.config)?;
    let seed = &cfg.cluster.seed;
    let pin = Pin {
        name: seed.name.clone(),
        version: seed.version.clone(),
        digest: seed.digest.clone(),
    };
    let Some(seed_path) = pin::locate(deps, &pin, out).await? else {
        return Err(SeedCmdError::NoSeed {
            file,
            name: seed.name.clone(),
        });
    };
    let values_file = match &opts.values_file {
        Some(p) => Some((read_values(p)?, p.as_path())),
        None => None,
    };
    let bytes = build(
        &cfg,
        &seed_path,
        Some(&pin),
        opts.values.as_deref(),
        values_file.as_ref().map(|(t, p)| (t.as_str(), *p)),
    )?;
    let aws_provider = cfg.cluster.providers.iter().find(|p| p.kind == "aws");
    let bucket = opts.bucket.clone().or_else(|| {
        aws_provider
            .filter(|p| !p.account.is_empty())
            .map(|p| format!("{}-{}-netsy", cfg.cluster.id, p.account))
    });
    let key = upload::bootstrap_key(&opts.prefix);
    if opts.dry_run {
        let path = opts.output.clone().unwrap_or_else(|| {
            opts.config
                .parent()
                .unwrap_or(Path::new("."))
                .join("bootstrap.netsy")
        });
        vmagent::fsutil::write_atomic(&path, &bytes, None).map_err(|source| {
            SeedCmdError::Write {
                path: path.clone(),
                source,
            }
        })?;
        let _ = writeln!(
            out,
            "Wrote {} ({} bytes, seed {} version {}).",
            path.display(),
            bytes.len(),
            pin.name,
            pin.version
        );
        let target = match &bucket {
            Some(b) => format!("s3://{b}/{key}"),
            None => format!("s3://<netsy bucket>/{key}"),
        };
        let _ = writeln!(
            out,
            "Dry run: would upload it to {target} (create-only, if the prefix is empty)."
        );
        return Ok(());
    }
    let Some(p) = aws_provider else {
        return Err(SeedCmdError::NoAws { file });
    };
    let Some(bucket) = bucket else {
        return Err(SeedCmdError::NoBucket { file });
    };
    // The provider's profile, as `cluster delete` and the generated Terraform use it.
    let client = aws::Client::new(aws::Config::from_env(&p.region, env)?.with_profile(&p.profile))?;
    match upload::upload(&client, &bucket, &opts.prefix, bytes).await? {
        Uploaded::Created => {
            let _ = writeln!(out, "Uploaded s3://{bucket}/{key}.");
        }
        Uploaded::AlreadyThere => {
            let _ = writeln!(
                out,
                "s3://{bucket}/{key} already holds this bootstrap snapshot; nothing to do."
            );
        }
    }
    Ok(())
}
