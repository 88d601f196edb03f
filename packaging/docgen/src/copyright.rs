//! The .deb's machine-readable copyright file (Debian's copyright format 1.0). vmagent is one
//! statically linked binary, so besides the project's own licence the file lists every crate
//! compiled into it, with its version and the licence its Cargo.toml declares. The list comes
//! from `cargo metadata` (the resolved graph of `Cargo.lock`), following normal dependencies
//! only: build scripts, proc macros and dev-dependencies run at build time and are not in the
//! binary.
//!
//! The crates go in the header's `Comment:` (free text) rather than one `Files:` paragraph
//! each: their files are not in the package, and licence expressions such as
//! `(MIT OR Apache-2.0) AND Unicode-3.0` are SPDX, not the copyright format's short names.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use serde_json::Value;

/// One crate linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    pub name: String,
    pub version: String,
    pub license: String,
}

/// `cargo metadata` for the host platform, as JSON.
pub fn metadata() -> Result<Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV printed no host triple")?;
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &host])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// The crates linked into package `root`'s binary: reachable through normal dependencies,
/// proc macros left out, `root` itself left out. Sorted by name and version.
pub fn linked_crates(meta: &Value, root: &str) -> Result<Vec<Crate>, String> {
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let root_id = packages
        .iter()
        .find(|(_, p)| p["name"] == root && p["source"].is_null())
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("no workspace package named {root}"))?;
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata has no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let is_proc_macro = |p: &Value| {
        p["targets"].as_array().is_some_and(|ts| {
            ts.iter().any(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "proc-macro"))
            })
        })
    };
    let mut seen = BTreeSet::from([root_id]);
    let mut queue = VecDeque::from([root_id]);
    let mut out = Vec::new();
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()));
            let Some(dep_id) = dep["pkg"].as_str() else {
                continue;
            };
            if !normal || !seen.insert(dep_id) {
                continue;
            }
            let Some(p) = packages.get(dep_id) else {
                continue;
            };
            if is_proc_macro(p) {
                continue;
            }
            out.push(Crate {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                version: p["version"].as_str().unwrap_or_default().to_string(),
                license: p["license"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| "see the crate's license file".into()),
            });
            queue.push_back(dep_id);
        }
    }
    out.sort();
    Ok(out)
}

/// The copyright file of package `name`.
pub fn render(
    name: &str,
    license: &str,
    copyright: &str,
    source: &str,
    crates: &[Crate],
) -> String {
    let mut s = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {name}\n\
         Source: {source}\n\
         Comment: {name} is one statically linked binary. Besides its own code (Files: *\n \
         below) it contains these {} Rust crates, each under the licence its Cargo.toml\n \
         declares (SPDX expressions), at the version in Cargo.lock:\n .\n",
        crates.len()
    );
    for c in crates {
        s.push_str(&format!(" {} {}: {}\n", c.name, c.version, c.license));
    }
    s.push_str(&format!(
        "\nFiles: *\nCopyright: {copyright}\nLicense: {license}\n"
    ));
    s
}
