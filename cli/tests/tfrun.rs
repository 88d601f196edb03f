//! `tfrun` against fake `tofu`/`terraform` shell scripts: executable lookup, the argument lists
//! and working directory of each command, exit-status and timeout errors, `output -json`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use podplane::tfrun::{self, Runner};

/// Writes an executable script `dir/name` that logs `<cwd>|<args>` to `dir/<name>.log`, prints
/// `output` for `output -json`, then runs `extra`.
fn fake(dir: &Path, name: &str, output: &str, extra: &str) -> (PathBuf, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let exe = dir.join(name);
    let script = format!(
        "#!/bin/sh\nprintf '%s|%s\\n' \"$(pwd)\" \"$*\" >> '{}'\nif [ \"$1\" = output ]; then cat <<'EOF'\n{output}\nEOF\nfi\n{extra}\n",
        log.display()
    );
    std::fs::write(&exe, script).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (exe, log)
}

fn path_of(dirs: &[&Path]) -> OsString {
    std::env::join_paths(dirs).unwrap()
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn commands_get_their_arguments_and_run_in_the_config_dir() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_, log) = fake(bin.path(), "tofu", r#"{"cluster_id": {"value": "c1"}}"#, "");
    let exe = tfrun::locate(None, Some(&path_of(&[bin.path()]))).unwrap();
    assert_eq!(exe, bin.path().join("tofu"));

    let runner = Runner::new(&exe, work.path());
    runner.init().unwrap();
    runner.apply(false).unwrap();
    runner.apply(true).unwrap();
    runner.destroy(false).unwrap();
    runner.destroy(true).unwrap();
    let out = runner.output_json().unwrap();
    assert_eq!(out["cluster_id"]["value"], "c1");

    let cwd = work.path().canonicalize().unwrap();
    let expected: Vec<String> = [
        "init",
        "apply",
        "apply -auto-approve",
        "destroy",
        "destroy -auto-approve",
        "output -json",
    ]
    .iter()
    .map(|a| format!("{}|{a}", cwd.display()))
    .collect();
    assert_eq!(lines(&log), expected);
}

#[test]
fn failures_name_the_command_dir_and_status() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (exe, _) = fake(bin.path(), "tofu", "not json", "exit 3");
    let runner = Runner::new(&exe, work.path());
    let dir = work.path().display();
    assert_eq!(
        runner.apply(true).unwrap_err().to_string(),
        format!("run OpenTofu/Terraform [apply -auto-approve] in {dir}: exit status 3")
    );
    assert_eq!(
        runner.init().unwrap_err().to_string(),
        format!("run OpenTofu/Terraform [init] in {dir}: exit status 3")
    );
    assert_eq!(
        runner.output_json().unwrap_err().to_string(),
        format!("run OpenTofu/Terraform [output -json] in {dir}: exit status 3")
    );

    let (exe, _) = fake(bin.path(), "badjson", "not json", "");
    let err = Runner::new(&exe, work.path())
        .output_json()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "run OpenTofu/Terraform [output -json] in {dir}: stdout is not JSON"
        )),
        "{err}"
    );

    let missing = bin.path().join("gone");
    let err = Runner::new(&missing, work.path())
        .destroy(false)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "run OpenTofu/Terraform [destroy] in {dir}: cannot start {}",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn a_hung_command_is_killed_at_its_timeout() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (exe, _) = fake(bin.path(), "tofu", "{}", "exec sleep 30");
    let runner = Runner::new(&exe, work.path())
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = runner.destroy(true).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.starts_with(&format!(
            "run OpenTofu/Terraform [destroy -auto-approve] in {}: timed out after 300ms",
            work.path().display()
        )),
        "{err}"
    );
    let err = runner.output_json().unwrap_err().to_string();
    assert!(
        err.contains("[output -json]") && err.contains("timed out"),
        "{err}"
    );
}

#[test]
fn locate_prefers_override_then_tofu_then_terraform() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (terraform, _) = fake(a.path(), "terraform", "{}", "");
    let (tofu, _) = fake(b.path(), "tofu", "{}", "");
    let (custom, _) = fake(b.path(), "my-tf", "{}", "");
    // A non-executable `tofu` earlier on PATH is skipped.
    std::fs::write(a.path().join("tofu"), "#!/bin/sh\n").unwrap();
    let path = path_of(&[a.path(), b.path()]);

    assert_eq!(tfrun::locate(None, Some(&path)).unwrap(), tofu);
    assert_eq!(
        tfrun::locate(None, Some(&path_of(&[a.path()]))).unwrap(),
        terraform
    );
    assert_eq!(tfrun::locate(Some("my-tf"), Some(&path)).unwrap(), custom);
    assert_eq!(
        tfrun::locate(Some(custom.to_str().unwrap()), None).unwrap(),
        custom
    );
    // An empty override counts as unset.
    assert_eq!(tfrun::locate(Some(""), Some(&path)).unwrap(), tofu);

    let err = tfrun::locate(Some("nope"), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("PODPLANE_TF_CMD command \"nope\" not found: "),
        "{err}"
    );
    let gone = a.path().join("gone");
    let err = tfrun::locate(Some(gone.to_str().unwrap()), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "PODPLANE_TF_CMD command {:?} not found: ",
            gone.display().to_string()
        )),
        "{err}"
    );
    let plain = a.path().join("tofu");
    let err = tfrun::locate(Some(plain.to_str().unwrap()), Some(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not executable"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        tfrun::locate(None, Some(&path_of(&[empty.path()])))
            .unwrap_err()
            .to_string(),
        "OpenTofu/Terraform executable not found on PATH; install tofu or terraform"
    );
    assert!(tfrun::locate(None, None).is_err());
}

/// A command over its time limit is interrupted first, so OpenTofu can release its state lock.
#[test]
fn a_timed_out_command_is_interrupted_before_it_is_killed() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let marker = bin.path().join("interrupted");
    let (exe, _) = fake(
        bin.path(),
        "tofu",
        "{}",
        &format!(
            "trap 'echo yes > {}; exit 130' INT\nsleep 30 &\nwait $!",
            marker.display()
        ),
    );
    let runner = Runner::new(&exe, work.path())
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = runner.apply(false).unwrap_err().to_string();
    assert!(e.contains("timed out") || e.contains("time"), "{e}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it stopped on SIGINT, no 30 s grace"
    );
}

/// A relative PODPLANE_TF_CMD resolves where it is given, not in the cluster directory.
#[test]
fn a_relative_override_is_made_absolute() {
    let bin = tempfile::tempdir().unwrap();
    fake(bin.path(), "my-tofu", "{}", "");
    let cwd = std::env::current_dir().unwrap();
    let rel = pathdiff(bin.path(), &cwd).join("my-tofu");
    let exe = tfrun::locate(Some(rel.to_str().unwrap()), None).unwrap();
    assert!(exe.is_absolute(), "{}", exe.display());
    assert!(exe.ends_with("my-tofu"));
    let work = tempfile::tempdir().unwrap();
    Runner::new(&exe, work.path()).init().unwrap();
}

/// `a` relative to `base` (both absolute), with `..` as needed.
fn pathdiff(a: &Path, base: &Path) -> PathBuf {
    let a: Vec<_> = a.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c);
    }
    if !out.as_os_str().to_string_lossy().contains('/') {
        out = Path::new(".").join(out);
    }
    out
}

#[test]
fn no_color_is_passed_after_the_subcommand_when_wanted() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (exe, log) = fake(bin.path(), "tofu", "{}", "");
    let runner = Runner::new(&exe, work.path()).with_no_color(true);
    runner.init().unwrap();
    runner.apply(true).unwrap();
    runner.destroy(false).unwrap();
    runner.output_json().unwrap();
    let args: Vec<String> = lines(&log)
        .iter()
        .map(|l| l.split_once('|').unwrap().1.to_string())
        .collect();
    assert_eq!(
        args,
        [
            "init -no-color",
            "apply -no-color -auto-approve",
            "destroy -no-color",
            "output -json"
        ]
    );
}

#[test]
fn no_color_follows_the_env_and_the_terminal() {
    use std::ffi::OsStr;
    assert!(!tfrun::no_color_wanted(None, true));
    assert!(!tfrun::no_color_wanted(Some(OsStr::new("")), true));
    assert!(tfrun::no_color_wanted(Some(OsStr::new("1")), true));
    assert!(tfrun::no_color_wanted(None, false));
}
