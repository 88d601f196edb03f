//! Helpers shared by the kubelet and control-plane tests: render both components, read the
//! rendered files, and run a rendered wrapper under bash with fake binaries.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::testutil::{inputs_typed, manifest};
use super::{Desired, Features, RenderError, control_plane, kubelet};
use crate::contract::Kind;
use crate::settings::Settings;

/// kubelet and the control plane rendered alone, as `render` runs them.
pub fn try_render(kind: Kind, s: &Settings) -> Result<Desired, RenderError> {
    let m = manifest();
    let inp = inputs_typed(kind, crate::settings::NodeSettings::parse(s)?, &m);
    let f = Features::of(kind, &inp.settings);
    let mut d = Desired::default();
    kubelet::render(&inp, &f, &mut d)?;
    control_plane::render(&inp, &f, &mut d)?;
    Ok(d)
}

pub fn rendered(kind: Kind, s: &Settings) -> Desired {
    try_render(kind, s).unwrap()
}

pub fn text<'a>(d: &'a Desired, path: &str) -> &'a str {
    std::str::from_utf8(
        &d.files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not rendered"))
            .content,
    )
    .unwrap()
}

pub fn keys(env: &str) -> Vec<&str> {
    env.lines().map(|l| l.split_once('=').unwrap().0).collect()
}

pub fn env_value<'a>(env: &'a str, key: &str) -> &'a str {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in env"))
        .trim_matches('\'')
}

pub fn assert_file(d: &Desired, path: &str, mode: u32, owner: &str) {
    let f = d
        .files
        .get(path)
        .unwrap_or_else(|| panic!("{path} not rendered"));
    assert_eq!(f.mode, mode, "{path}");
    assert_eq!(format!("{}:{}", f.user, f.group), owner, "{path}");
    assert!(!f.secret, "{path}");
}

pub fn service_inputs(d: &Desired, unit: &str) -> BTreeSet<String> {
    let svc = d
        .services
        .get(unit)
        .unwrap_or_else(|| panic!("{unit} not declared"));
    assert!(svc.enabled, "{unit}");
    svc.inputs.clone()
}

pub fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

/// Services whose inputs changed between two renders (what `plan` would restart).
pub fn restarted(a: &Desired, b: &Desired) -> BTreeSet<String> {
    let changed: BTreeSet<&String> = a
        .files
        .keys()
        .chain(b.files.keys())
        .filter(|p| a.files.get(*p) != b.files.get(*p))
        .collect();
    b.services
        .values()
        .filter(|s| s.inputs.iter().any(|i| changed.contains(i)))
        .map(|s| s.unit.clone())
        .collect()
}

/// Run a rendered wrapper under bash with every rendered file (and `present`, as empty files)
/// below a temp root, and fake binaries in `<root>/usr/bin` that print their arguments.
pub fn run_wrapper(d: &Desired, run: &str, present: &[&str]) -> (bool, Vec<String>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let rebase = |text: &str| {
        text.replace("/opt/", &format!("{root}/opt/"))
            .replace("/usr/bin/", &format!("{root}/usr/bin/"))
            .replace("sleep 2", "sleep 0")
    };
    let write = |path: &str, content: &[u8]| {
        let p = Path::new(root).join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    };
    for (path, f) in &d.files {
        let content = match std::str::from_utf8(&f.content) {
            Ok(t) => rebase(t).into_bytes(),
            Err(_) => f.content.clone(),
        };
        write(path, &content);
    }
    for path in present {
        write(path, b"");
    }
    for bin in ["kubelet", "kube-apiserver", "kube-controller-manager"] {
        let p = write(
            &format!("/usr/bin/{bin}"),
            b"#!/bin/bash\nprintf '%s\\n' \"$@\"\n",
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new("bash")
        .arg(Path::new(root).join(run.trim_start_matches('/')))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let prefix = format!("{root}/");
    let args = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.replace(&prefix, "/"))
        .collect();
    let stderr = String::from_utf8(out.stderr).unwrap().replace(&prefix, "/");
    (out.status.success(), args, stderr)
}
