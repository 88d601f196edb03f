//! `podplane cluster create` / `cluster delete --no-apply` through the binary: files written
//! next to the config (and nothing else touched), the node manifests taken from the cache or
//! fetched from a loopback mirror, and OpenTofu driven through a fake executable that records
//! its arguments.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use podplane_testkit::Mirror;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/golden/podplane.cluster.jsonc"
);
const CACHE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/deps");

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("cluster")).unwrap();
        std::fs::copy(GOLDEN, tmp.path().join("cluster/podplane.cluster.jsonc")).unwrap();
        Env { tmp }
    }
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("cluster")
    }
    fn config(&self) -> PathBuf {
        self.dir().join("podplane.cluster.jsonc")
    }
    fn log(&self) -> PathBuf {
        self.tmp.path().join("tofu.log")
    }
    /// A fake `tofu` that logs `cwd|args` and exits with $FAKE_TOFU_RC for `apply`.
    fn fake_tofu(&self) -> PathBuf {
        let bin = self.tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let p = bin.join("tofu");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"$(pwd)|$*\" >> {}\nif [ \"$1\" = apply ]; then exit ${{FAKE_TOFU_RC:-0}}; fi\n",
                self.log().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_podplane"));
        c.args(args)
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("PODPLANE_DEPS_CACHE_DIR", CACHE)
            .env_remove("PODPLANE_TF_CMD")
            .env_remove("PODPLANE_DEPS_URL")
            .env("PATH", "/usr/bin:/bin");
        c
    }
    fn run(&self, c: &mut Command, stdin: &str) -> Output {
        use std::io::Write;
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
    fn recorded(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}

/// The seed cache fixture (the golden config's pinned seed) copied into `cache`.
fn copy_seeds(cache: &Path) {
    for rel in [
        "seeds/manifests/seeds.json",
        "seeds/snapshots/recommended/1.0.0-1/recommended.netsy",
    ] {
        let to = cache.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(CACHE).join(rel), to).unwrap();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn no_apply_writes_the_files_and_leaves_user_files_alone() {
    let e = Env::new();
    std::fs::write(e.dir().join("terraform.tfvars"), "pool_sizes = {}\n").unwrap();
    std::fs::write(e.dir().join("custom.tf"), "# mine\n").unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e.config()),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "Generated Podplane OpenTofu/Terraform files in {}\n",
            e.dir().display()
        )
    );
    assert_eq!(listing(&e.dir()).len(), 15, "{:?}", listing(&e.dir()));
    assert_eq!(
        std::fs::read_to_string(e.dir().join("terraform.tfvars")).unwrap(),
        "pool_sizes = {}\n"
    );
    assert_eq!(
        std::fs::read_to_string(e.dir().join("custom.tf")).unwrap(),
        "# mine\n"
    );
    let main = std::fs::read(e.dir().join("podplane.cluster.main.tf")).unwrap();
    let mode = std::fs::metadata(e.dir().join("podplane.cluster.main.tf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    // A second run rewrites the same bytes.
    let again = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e.config()),
        "",
    );
    assert!(again.status.success());
    assert_eq!(
        std::fs::read(e.dir().join("podplane.cluster.main.tf")).unwrap(),
        main
    );
    assert!(e.tmp.path().join("config/podplane/config.json").exists());
}

#[test]
fn apply_runs_init_then_apply_in_the_config_directory() {
    let e = Env::new();
    let bin = e.fake_tofu();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = e.run(
        e.cmd(&["cluster", "create", "-y", "-f"])
            .arg(e.config())
            .env("PATH", &path),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = e.dir().display().to_string();
    assert_eq!(
        e.recorded(),
        [
            format!("{d}|init -no-color"),
            format!("{d}|apply -no-color -auto-approve")
        ]
    );

    // Without -y it asks; "n" cancels after init.
    std::fs::remove_file(e.log()).unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "-f"])
            .arg(e.config())
            .env("PATH", &path),
        "n\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("Apply generated OpenTofu/Terraform changes?"));
    assert_eq!(text(&out.stderr), "Error: apply cancelled\n");
    assert_eq!(e.recorded(), [format!("{d}|init -no-color")]);

    // "yes" applies without -auto-approve (OpenTofu asks again itself).
    std::fs::remove_file(e.log()).unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "-f"])
            .arg(e.config())
            .env("PATH", &path),
        "yes\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        e.recorded(),
        [
            format!("{d}|init -no-color"),
            format!("{d}|apply -no-color")
        ]
    );

    // A failing apply is reported with its exit status.
    let out = e.run(
        e.cmd(&["cluster", "create", "-y", "-f"])
            .arg(e.config())
            .env("PATH", &path)
            .env("FAKE_TOFU_RC", "3"),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("in {d}: exit status 3")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn podplane_tf_cmd_overrides_and_missing_tools_are_named() {
    let e = Env::new();
    let bin = e.fake_tofu();
    std::fs::rename(bin.join("tofu"), bin.join("my-tf")).unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "-y", "-f"])
            .arg(e.config())
            .env("PODPLANE_TF_CMD", bin.join("my-tf")),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(e.recorded().len(), 2);

    let out = e.run(
        e.cmd(&["cluster", "create", "-y", "-f"])
            .arg(e.config())
            .env("PODPLANE_TF_CMD", "no-such-tofu"),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Error: PODPLANE_TF_CMD command \"no-such-tofu\" not found"),
        "{}",
        text(&out.stderr)
    );
    let out = e.run(
        e.cmd(&["cluster", "create", "-y", "-f"]).arg(e.config()),
        "",
    );
    assert_eq!(
        text(&out.stderr),
        "Error: OpenTofu/Terraform executable not found on PATH; install tofu or terraform\n"
    );
}

#[test]
fn bad_or_missing_configs_write_nothing() {
    let e = Env::new();
    let cfg = std::fs::read_to_string(e.config()).unwrap();
    std::fs::write(
        e.config(),
        cfg.replace(
            "\"arch\": \"arm64\", \"instance_type\": \"t4g.medium\", \"size\": 2",
            "\"arch\": \"s390x\", \"instance_type\": \"t4g.medium\", \"size\": 2",
        ),
    )
    .unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e.config()),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("Error: cluster config "), "{err}");
    assert!(err.contains("cluster.pools.ingress.arch"), "{err}");
    assert_eq!(listing(&e.dir()), ["podplane.cluster.jsonc"]);

    // A config named with -f must exist: no wizard, an error naming the file and the fix.
    let missing = e.dir().join("nope.jsonc");
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(&missing),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "Error: cluster config {} does not exist;",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("podplane cluster init -f"), "{err}");
    assert_eq!(listing(&e.dir()), ["podplane.cluster.jsonc"]);

    // No -f and no config, without a terminal: an error instead of a prompt.
    let empty = tempfile::tempdir().unwrap();
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply"])
            .current_dir(empty.path()),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no terminal to ask on"), "{err}");
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none());

    // The wizard on request (`cluster init`): end of input cancels and writes nothing.
    let out = e.run(e.cmd(&["cluster", "init", "-f"]).arg(&missing), "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: cluster config creation cancelled\n"
    );
    assert_eq!(listing(&e.dir()), ["podplane.cluster.jsonc"]);
}

#[test]
fn missing_manifests_are_fetched_into_the_cache_then_pinned() {
    let e = Env::new();
    let mirror = Mirror::start();
    for kind in ["knc", "knd"] {
        let name = format!("vmconfig_{kind}_debian-13_arm64.json");
        mirror
            .add_file(
                &format!("/manifests/{name}"),
                &Path::new(CACHE).join("vmconfig/manifests").join(&name),
            )
            .unwrap();
    }
    let cache = e.tmp.path().join("cache");
    copy_seeds(&cache);
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e.config())
            .env("PODPLANE_DEPS_CACHE_DIR", &cache)
            .env("PODPLANE_DEPS_URL", mirror.base_url()),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cached = cache.join("vmconfig/manifests/vmconfig_knc_debian-13_arm64.json");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(
            e.dir()
                .join("podplane.cluster.vmconfig_knc_debian-13_arm64.json")
        )
        .unwrap()
    );
    // The userdata downloads from that mirror.
    let main = std::fs::read_to_string(e.dir().join("podplane.cluster.main.tf")).unwrap();
    assert!(main.contains(&format!(
        "deps_mirror_url               = \"{}\"",
        mirror.base_url()
    )));

    // A mirror without the manifest: the error names the URL; nothing is generated.
    let e2 = Env::new();
    let empty = Mirror::start();
    copy_seeds(&e2.tmp.path().join("cache"));
    let out = e2.run(
        e2.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e2.config())
            .env("PODPLANE_DEPS_CACHE_DIR", e2.tmp.path().join("cache"))
            .env("PODPLANE_DEPS_URL", empty.base_url()),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("/manifests/vmconfig_knc_debian-13_arm64.json"),
        "{err}"
    );
    assert_eq!(listing(&e2.dir()), ["podplane.cluster.jsonc"]);
}

#[test]
fn delete_no_apply_only_validates() {
    let e = Env::new();
    let out = e.run(
        e.cmd(&["cluster", "delete", "--no-apply", "-f"])
            .arg(e.config()),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "--no-apply set; cluster config validated and no destroy was run.\n"
    );
}

#[test]
fn an_unsupported_user_config_version_stops_every_command() {
    let e = Env::new();
    let cfg = e.tmp.path().join("config/podplane");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"config":{"version":7}}"#).unwrap();
    // Every command that keeps state refuses it; printing the version does not read it.
    let out = e.run(&mut e.cmd(&["version"]), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = e.run(&mut e.cmd(&["cluster", "create", "--no-apply"]), "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Error: unsupported config file version: 7"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_1_with_usage_and_help_exits_0() {
    let e = Env::new();
    let out = e.run(&mut e.cmd(&["cluster", "create", "--no-such-flag"]), "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("--no-such-flag") && err.contains("Usage:"),
        "{err}"
    );
    let out = e.run(&mut e.cmd(&["cluster", "create", "--help"]), "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--no-apply"));
}

#[test]
fn cluster_init_runs_the_wizard_then_create_generates_the_files() {
    let e = Env::new();
    let dir = e.tmp.path().join("fresh");
    let cfg = dir.join("podplane.cluster.jsonc");
    // aws, has an issuer, its URL, then the wizard's fields (an API hostname, the rest defaults).
    let answers = "\n\nhttps://auth.example.com\n\n\n\napi.example.com\n\n\n\n\n\n\n\n";
    let out = e.run(e.cmd(&["cluster", "init", "-f"]).arg(&cfg), answers);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("Created {}", cfg.display())),
        "{stdout}"
    );
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"]).arg(&cfg),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.ends_with(&format!(
        "Generated Podplane OpenTofu/Terraform files in {}\n",
        dir.display()
    )));
    let main = std::fs::read_to_string(dir.join("podplane.cluster.main.tf")).unwrap();
    // The wizard asks no account: the account segment of module names is empty.
    assert!(main.contains("module \"account__us_east_1\""), "{main}");
    assert!(!main.contains("allowed_account_ids"));
    assert!(
        dir.join("podplane.cluster.vmconfig_knc_debian-13_arm64.json")
            .exists()
    );
}

#[test]
fn a_corrupt_cached_manifest_is_named_with_the_fix() {
    let e = Env::new();
    let cache = e.tmp.path().join("cache");
    let dir = cache.join("vmconfig/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    for kind in ["knc", "knd"] {
        let name = format!("vmconfig_{kind}_debian-13_arm64.json");
        std::fs::copy(
            Path::new(CACHE).join("vmconfig/manifests").join(&name),
            dir.join(&name),
        )
        .unwrap();
    }
    std::fs::write(dir.join("vmconfig_knd_debian-13_arm64.json"), "{").unwrap();
    copy_seeds(&cache);
    let out = e.run(
        e.cmd(&["cluster", "create", "--no-apply", "-f"])
            .arg(e.config())
            .env("PODPLANE_DEPS_CACHE_DIR", &cache),
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "Error: the cached node manifest {} is not usable: ",
            dir.join("vmconfig_knd_debian-13_arm64.json").display()
        )) && err.trim_end().ends_with(&format!(
            "delete it, or run podplane deps download -f {}",
            e.config().display()
        )),
        "{err}"
    );
    assert_eq!(listing(&e.dir()), ["podplane.cluster.jsonc"]);
}

#[test]
fn oidc_create_generates_and_applies_and_delete_destroys() {
    let e = Env::new();
    let dir = e.tmp.path().join("oidc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/oidc/podplane.oidc.jsonc"
        ),
        dir.join("podplane.oidc.jsonc"),
    )
    .unwrap();
    let bin = e.fake_tofu();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = e.run(
        e.cmd(&["oidc", "create", "-y", "-f"])
            .arg(dir.join("podplane.oidc.jsonc"))
            .env("PATH", &path),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!(
        "Generated Podplane OpenTofu/Terraform files in {}\n",
        dir.display()
    )));
    assert!(dir.join("podplane.oidc.main.tf").exists());
    let d = dir.display().to_string();
    assert_eq!(
        e.recorded(),
        [
            format!("{d}|init -no-color"),
            format!("{d}|apply -no-color -auto-approve")
        ]
    );
    std::fs::remove_file(e.log()).unwrap();
    let out = e.run(
        e.cmd(&["oidc", "delete", "-f"])
            .arg(dir.join("podplane.oidc.jsonc"))
            .env("PATH", &path),
        "n\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Error: destroy cancelled\n");
    assert!(e.recorded().is_empty());
    let out = e.run(
        e.cmd(&["oidc", "delete", "-y", "-f"])
            .arg(dir.join("podplane.oidc.jsonc"))
            .env("PATH", &path),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        e.recorded(),
        [
            format!("{d}|init -no-color"),
            format!("{d}|destroy -no-color -auto-approve")
        ]
    );
}
