//! Streaming digests for the two algorithms manifests use.

use std::io::{self, Read};
use std::path::Path;

use sha2::Digest as _;

use crate::manifest::{Algorithm, Digest};

/// An in-progress sha256 or sha512.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// Digest of a file's content with the given algorithm, and its length. The path is followed:
/// for files in directories only root can change; otherwise open the file safely and use
/// [`hash_reader`] on it.
pub fn hash_file(path: &Path, algorithm: Algorithm) -> io::Result<(Digest, u64)> {
    hash_reader(std::fs::File::open(path)?, algorithm)
}

/// Digest of everything `f` yields, and its length.
pub fn hash_reader(mut f: impl Read, algorithm: Algorithm) -> io::Result<(Digest, u64)> {
    let mut h = Hasher::new(algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h.finish(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(
            h.finish().to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"abc");
        assert!(h.finish().hex.starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn hash_file_matches_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..700_000u32).map(|i| i as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let (d, len) = hash_file(&p, Algorithm::Sha256).unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(&data);
        assert_eq!(d, h.finish());
        assert_eq!(len, 700_000);
    }
}
