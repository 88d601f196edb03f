//! External tools some tests need (terraform, python-hcl2): found, or a SKIP line, or — with
//! `PODPLANE_REQUIRE_TOOLS=1`, as CI runs — a failure naming the tool.

use std::path::Path;
use std::process::Command;

/// Whether `cmd args…` runs successfully. Missing tools skip a test locally and fail it in CI.
pub fn available(cmd: &str, args: &[&str]) -> bool {
    let ok = Command::new(cmd)
        .args(args)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("PODPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{cmd} is required (PODPLANE_REQUIRE_TOOLS=1) but `{cmd} {}` failed",
            args.join(" ")
        );
        eprintln!("SKIP: {cmd} is not available");
    }
    ok
}

/// `terraform fmt -check -diff` over `dir`: `Err` holds what it would change.
pub fn terraform_fmt_check(dir: &Path) -> Result<(), String> {
    let out = Command::new("terraform")
        .args(["fmt", "-check", "-diff", "-no-color", "."])
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run terraform: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "terraform fmt would change:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
