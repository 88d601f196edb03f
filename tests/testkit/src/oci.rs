//! Container images for the image-cache tests and benchmark: small generated multi-arch images
//! written as OCI layouts (layers of random bytes, some shared between images), a real
//! distribution registry (Debian's `docker-registry`) on a loopback port, and `skopeo` to push
//! the layouts into it and to read a cache back.

use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{random_bytes, sha256_hex};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// One blob of an image: digest (`sha256:…`) and bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(data: Vec<u8>) -> Blob {
        Blob {
            digest: format!("sha256:{}", sha256_hex(&data)),
            data,
        }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.data.len()})
    }
}

/// A generated multi-arch image: an index over one manifest per arch.
#[derive(Debug, Clone)]
pub struct Image {
    pub index: Blob,
    /// (arch, manifest, config, layers)
    pub platforms: Vec<(String, Blob, Blob, Vec<Blob>)>,
}

impl Image {
    /// Per arch: the `shared` layers (the same bytes in every image built with them), then one
    /// layer of `own` random bytes particular to this image and arch.
    pub fn generate(archs: &[&str], shared: &[Blob], own: usize, seed: u64) -> Image {
        let mut platforms = Vec::new();
        let mut entries = Vec::new();
        for (n, arch) in archs.iter().enumerate() {
            let mut layers: Vec<Blob> = shared.to_vec();
            layers.push(Blob::new(random_bytes(own, seed * 100 + n as u64)));
            let config = Blob::new(
                serde_json::to_vec(&json!({
                    "architecture": arch, "os": "linux",
                    "config": {"Env": [format!("SEED={seed}")]},
                    "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
                }))
                .unwrap(),
            );
            let manifest = Blob::new(
                serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": config.descriptor(OCI_CONFIG),
                    "layers": layers.iter().map(|l| l.descriptor(OCI_LAYER)).collect::<Vec<_>>(),
                }))
                .unwrap(),
            );
            let mut d = manifest.descriptor(OCI_MANIFEST);
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            entries.push(d);
            platforms.push((arch.to_string(), manifest, config, layers));
        }
        let index = Blob::new(
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
            )
            .unwrap(),
        );
        Image { index, platforms }
    }

    /// Every blob (index, manifests, configs, layers).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out = vec![&self.index];
        for (_, m, c, ls) in &self.platforms {
            out.push(m);
            out.push(c);
            out.extend(ls.iter());
        }
        out
    }

    pub fn manifest(&self, arch: &str) -> &Blob {
        &self.platforms.iter().find(|p| p.0 == arch).unwrap().1
    }

    /// Write the image as an OCI layout in `dir`, tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        for b in self.blobs() {
            std::fs::write(blobs.join(&b.digest[7..]), &b.data)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut d = self.index.descriptor(OCI_INDEX);
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [d]}))?,
        )
    }
}

/// Debian's `docker-registry` (the CNCF distribution registry) on a loopback port, storing in a
/// temp directory; stopped on drop.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile_dir::Dir,
    child: Child,
}

/// A minimal owned temp dir, so the testkit needs no tempfile dependency.
pub mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Dir> {
            let p = std::env::temp_dir().join(format!(
                "{prefix}-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir(&p)?;
            Ok(Dir(p))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Registry {
    pub fn start() -> io::Result<Registry> {
        let dir = tempfile_dir::Dir::new("podplane-registry")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("config.yml");
        let mut f = std::fs::File::create(&config)?;
        write!(
            f,
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log"))?)
            .spawn()?;
        let r = Registry { port, dir, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                return Err(io::Error::other("docker-registry did not start in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(r)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Push an image as `repo:tag`, digests preserved.
    pub fn push(&self, image: &Image, repo: &str, tag: &str) -> io::Result<()> {
        push(&self.host(), image, repo, tag)
    }

    /// The registry's storage (to corrupt a blob in a test).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = &digest[7..];
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Push an image (written as a layout under a temp dir) to `host/repo:tag`, digests preserved.
pub fn push(host: &str, image: &Image, repo: &str, tag: &str) -> io::Result<()> {
    let layout = tempfile_dir::Dir::new("podplane-layout")?;
    image.write_layout(layout.path(), tag)?;
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.path().display()),
        &format!("docker://{host}/{repo}:{tag}"),
    ])
    .map(|_| ())
}

/// The benchmark's image set (see `fixture-mirror images`): pushed to `host`, pinned by a deps
/// server tree in `out`.
pub fn bench_set(
    host: &str,
    out: &Path,
    count: usize,
    base: usize,
    mid: usize,
    own: usize,
) -> io::Result<()> {
    let base = Blob::new(random_bytes(base, 1));
    let mid = Blob::new(random_bytes(mid, 2));
    let mut rows = Vec::new();
    let mut refs = String::new();
    let mut bytes = 0usize;
    for i in 0..count {
        let shared = if i % 2 == 0 {
            vec![base.clone(), mid.clone()]
        } else {
            vec![base.clone()]
        };
        let img = Image::generate(&["amd64", "arm64"], &shared, own, 10 + i as u64);
        let repo = format!("bench/img-{i:02}");
        push(host, &img, &repo, "v1")?;
        bytes += img.platforms[0]
            .3
            .iter()
            .map(|l| l.data.len())
            .sum::<usize>();
        rows.push(
            json!({"components": ["bench"], "image": format!("{host}/{repo}:v1"),
            "digest": img.index.digest, "size": img.index.data.len()}),
        );
        refs += &format!("{host}/{repo}:v1@{}\n", img.index.digest);
    }
    let m = out.join("manifests");
    std::fs::create_dir_all(&m)?;
    std::fs::write(out.join("refs.txt"), refs)?;
    std::fs::write(
        m.join("components.json"),
        serde_json::to_vec_pretty(&json!({"components": {"version": "bench", "images": rows}}))?,
    )?;
    std::fs::write(
        m.join("templates.json"),
        br#"{"templates": {"version": "bench", "charts": [], "images": []}}"#,
    )?;
    for arch in ["amd64", "arm64"] {
        std::fs::write(
            m.join(format!("vmconfig_knc_debian-13_{arch}.json")),
            serde_json::to_vec_pretty(&json!({"vmconfig": {"version": "bench", "kind": "knc",
                "os": {"name": "debian-13", "arch": arch}, "dependencies": {}}}))?,
        )?;
    }
    println!(
        "pushed {count} images to {host}: {bytes} bytes of amd64 layers pulled image by image"
    );
    Ok(())
}

/// Run skopeo; `Err` holds its stderr.
pub fn skopeo(args: &[&str]) -> io::Result<String> {
    let out = Command::new("skopeo").args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
