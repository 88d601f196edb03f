//! `fixture-mirror`: make fixture artifacts and serve them over HTTP on loopback.
//!
//! ```text
//! fixture-mirror generate --manifest SRC.json --out DIR [--scale F] [--seed N]
//! fixture-mirror serve --dir DIR [--addr 127.0.0.1:0] [--url-file FILE]
//! fixture-mirror urls --manifest DIR/manifest.json --mirror URL
//! fixture-mirror images --registry HOST:PORT --out DIR [--count N] [--base B] [--mid B] [--own B]
//! ```
//! `images` generates N two-arch images (every one shares a base layer of B bytes, every other
//! one a middle layer, and each has its own layer), pushes them to the registry with skopeo and
//! writes a deps server tree (DIR/manifests/…) pinning them, and DIR/refs.txt (`<ref>@<digest>`
//! per image).
//! `generate` writes DIR/vmconfig/artifacts/... and DIR/manifest.json; `serve` prints the base URL
//! (and writes it to FILE) and serves DIR until killed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fixture-mirror: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run(args: Vec<String>) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("generate") => {
            let src = flag(&args, "--manifest").ok_or("generate needs --manifest SRC.json")?;
            let out = PathBuf::from(flag(&args, "--out").ok_or("generate needs --out DIR")?);
            let scale: f64 = flag(&args, "--scale")
                .map(|s| s.parse().map_err(|_| format!("--scale {s:?} is not a number")))
                .transpose()?
                .unwrap_or(1.0);
            let seed: u64 = flag(&args, "--seed")
                .map(|s| s.parse().map_err(|_| format!("--seed {s:?} is not a number")))
                .transpose()?
                .unwrap_or(1);
            let text = std::fs::read(&src).map_err(|e| format!("{src}: {e}"))?;
            let value: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| format!("{src}: {e}"))?;
            let m = podplane_testkit::fixtures::generate(&value, &out, scale, seed)
                .map_err(|e| format!("generating into {}: {e}", out.display()))?;
            let path = out.join("manifest.json");
            std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap() + "\n")
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let deps = m["vmconfig"]["dependencies"].as_object().unwrap();
            let made: Vec<_> = deps.values().filter(|d| d["digest"] != "").collect();
            let bytes: u64 = made.iter().filter_map(|d| d["size"].as_u64()).sum();
            println!("wrote {} artifacts ({bytes} bytes) and {}", made.len(), path.display());
            Ok(())
        }
        Some("urls") => {
            // One line per install item: <local name> <algo> <hex> <url>, for scripts that drive
            // other downloaders (the benchmark's curl) over the same mirror.
            let src = flag(&args, "--manifest").ok_or("urls needs --manifest M.json")?;
            let mirror = flag(&args, "--mirror").ok_or("urls needs --mirror URL")?;
            let text = std::fs::read(&src).map_err(|e| format!("{src}: {e}"))?;
            let m: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| format!("{src}: {e}"))?;
            let deps = m["vmconfig"]["dependencies"]
                .as_object()
                .ok_or(format!("{src}: no vmconfig.dependencies"))?;
            for (key, d) in deps {
                let (url, digest) = (d["url"].as_str().unwrap_or(""), d["digest"].as_str().unwrap_or(""));
                if d["type"] == "qcow2" || digest.is_empty() {
                    continue;
                }
                let ext = match d["type"].as_str() {
                    Some("deb") => ".deb",
                    Some("tar.gz") => ".tar.gz",
                    _ => "",
                };
                let (algo, hex) = digest.split_once(':').ok_or(format!("{key}: bad digest"))?;
                let path = podplane_testkit::fixtures::mirror_path(key, d["version"].as_str().unwrap_or(""), url);
                println!("{key}{ext} {algo} {hex} {}/{path}", mirror.trim_end_matches('/'));
            }
            Ok(())
        }
        Some("images") => {
            let host = flag(&args, "--registry").ok_or("images needs --registry HOST:PORT")?;
            let out = PathBuf::from(flag(&args, "--out").ok_or("images needs --out DIR")?);
            let num = |name: &str, default: usize| -> Result<usize, String> {
                flag(&args, name)
                    .map(|s| s.parse().map_err(|_| format!("{name} {s:?} is not a number")))
                    .transpose()
                    .map(|v| v.unwrap_or(default))
            };
            let (count, base, mid, own) = (
                num("--count", 20)?,
                num("--base", 30 << 20)?,
                num("--mid", 15 << 20)?,
                num("--own", 4 << 20)?,
            );
            podplane_testkit::oci::bench_set(&host, &out, count, base, mid, own)
                .map_err(|e| format!("images into {}: {e}", out.display()))
        }
        Some("serve") => {
            let dir = PathBuf::from(flag(&args, "--dir").ok_or("serve needs --dir DIR")?);
            let addr = flag(&args, "--addr").unwrap_or_else(|| "127.0.0.1:0".into());
            let mirror = podplane_testkit::Mirror::bind(&addr).map_err(|e| format!("{addr}: {e}"))?;
            mirror.serve_dir(&dir);
            println!("{}", mirror.base_url());
            if let Some(f) = flag(&args, "--url-file") {
                std::fs::write(&f, mirror.base_url()).map_err(|e| format!("{f}: {e}"))?;
            }
            loop {
                std::thread::park();
            }
        }
        _ => Err("usage: fixture-mirror generate --manifest SRC --out DIR [--scale F] [--seed N] | serve --dir DIR [--addr A] [--url-file F]".into()),
    }
}
