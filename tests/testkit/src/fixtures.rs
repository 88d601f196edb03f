//! Fixture artifacts: random bytes of (scaled) real sizes, laid out like the deps mirror, and a
//! manifest that pins them with fresh digests of the same algorithms as the source manifest.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value;
use sha2::Digest;

/// The relative mirror path of a dependency: `vmconfig/artifacts/<key>/<version>/<basename>`.
pub fn mirror_path(key: &str, version: &str, url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    let base = base.rsplit('/').next().unwrap_or(base);
    format!("vmconfig/artifacts/{key}/{version}/{base}")
}

/// For every downloadable dependency of `source` (a manifest document), write `size × scale`
/// random bytes (at least 1) below `out` at its mirror path, and return a copy of the manifest
/// whose digests and sizes pin those files. The digest algorithm of each entry is kept.
pub fn generate(source: &Value, out: &Path, scale: f64, seed: u64) -> io::Result<Value> {
    let mut manifest = source.clone();
    let deps = manifest["vmconfig"]["dependencies"]
        .as_object_mut()
        .ok_or_else(|| io::Error::other("manifest has no vmconfig.dependencies object"))?;
    let mut rng = fastrand::Rng::with_seed(seed);
    for (key, dep) in deps.iter_mut() {
        let url = dep["url"].as_str().unwrap_or_default().to_string();
        let digest = dep["digest"].as_str().unwrap_or_default().to_string();
        if dep["type"] == "qcow2" || (key == "vmconfig" && url.is_empty() && digest.is_empty()) {
            continue;
        }
        let version = dep["version"].as_str().unwrap_or_default().to_string();
        let size = dep["size"].as_u64().unwrap_or(1024);
        let size = ((size as f64 * scale).round() as u64).max(1);
        let path = out.join(mirror_path(key, &version, &url));
        fs::create_dir_all(path.parent().expect("mirror path has a parent"))?;
        let sha512 = digest.starts_with("sha512:");
        let hex = write_random(&path, size, sha512, &mut rng)?;
        dep["digest"] = Value::String(format!(
            "{}:{hex}",
            if sha512 { "sha512" } else { "sha256" }
        ));
        dep["size"] = Value::from(size);
    }
    Ok(manifest)
}

fn write_random(
    path: &Path,
    size: u64,
    sha512: bool,
    rng: &mut fastrand::Rng,
) -> io::Result<String> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut h256 = sha2::Sha256::new();
    let mut h512 = sha2::Sha512::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        if sha512 {
            h512.update(&buf[..n]);
        } else {
            h256.update(&buf[..n]);
        }
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(if sha512 {
        hex::encode(h512.finalize())
    } else {
        hex::encode(h256.finalize())
    })
}
