//! Build-time helpers, not shipped. `cargo run -p podplane-docgen -- docs DIR` writes the man pages and the
//! bash, zsh and fish completions of `vmagent` and `podplane` under DIR:
//!
//! - `DIR/man/vmagent.8`, `DIR/man/vmagent-<command>.8` (vmagent is an admin's tool: section 8);
//!   `DIR/man/podplane.1`, `DIR/man/podplane-<command>[-<command>].1`;
//! - `DIR/completions/{bash/<name>,zsh/_<name>,fish/<name>.fish}`.
//!
//! Both programs' clap definitions (`vmagent::cli`, `podplane::args`) are the ones the programs
//! parse with, so the pages always describe the real command line.
//! `packaging/build-deb` runs it before packaging.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

mod copyright;

mod vmagent_cli {
    use clap::CommandFactory;

    pub fn command() -> clap::Command {
        vmagent::cli::Cli::command()
    }
}

mod podplane_cli {
    use clap::CommandFactory;

    pub fn command() -> clap::Command {
        podplane::args::Cli::command()
    }
}

/// A program whose documentation is generated.
struct Program {
    command: clap::Command,
    /// Man section: 8 for system administration, 1 for user commands.
    section: &'static str,
    manual: &'static str,
}

fn programs() -> Vec<Program> {
    vec![
        Program {
            command: vmagent_cli::command(),
            section: "8",
            manual: "System Administration",
        },
        Program {
            command: podplane_cli::command().version(env!("CARGO_PKG_VERSION")),
            section: "1",
            manual: "User Commands",
        },
    ]
}

/// One page for the program and one per (visible) subcommand, named `<program>-<command>`,
/// as the SUBCOMMANDS section of the parent page refers to them.
fn man_pages(p: &Program, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(
        cmd: clap::Command,
        p: &Program,
        dir: &Path,
        out: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, p, dir, out)?;
        }
        let man = clap_mangen::Man::new(cmd)
            .section(p.section)
            .manual(p.manual);
        out.push(man.generate_to(dir)?);
        Ok(())
    }
    let mut cmd = p.command.clone().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(cmd, p, dir, &mut out)?;
    Ok(out)
}

/// bash, zsh and fish completions, named as Debian's completion directories expect.
fn completions(p: &Program, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = p.command.get_name().to_string();
    let mut out = Vec::new();
    for (shell, sub, file) in [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d)?;
        let path = d.join(file);
        let mut f = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut p.command.clone(), &name, &mut f);
        out.push(path);
    }
    Ok(out)
}

/// Writes every page and completion under `dir`, replacing what an earlier run left there.
fn docs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    for sub in ["man", "completions"] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::create_dir_all(dir.join("man"))?;
    let mut out = Vec::new();
    for p in programs() {
        out.extend(man_pages(&p, &dir.join("man"))?);
        out.extend(completions(&p, &dir.join("completions"))?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cargo run -p podplane-docgen -- docs DIR | copyright PACKAGE FILE";
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["docs", dir] => match docs(Path::new(dir)) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("podplane-docgen: writing the documentation under {dir}: {e}");
                ExitCode::FAILURE
            }
        },
        ["copyright", package, file] => match write_copyright(package, Path::new(file)) {
            Ok(n) => {
                println!("{file}: {n} linked crates");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("podplane-docgen: the copyright file of {package}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{usage}");
            ExitCode::from(2)
        }
    }
}

/// Writes the copyright file of workspace package `package` (its licence, and the crates
/// linked into it) to `file`; returns how many crates it lists.
fn write_copyright(package: &str, file: &Path) -> Result<usize, String> {
    let meta = copyright::metadata()?;
    let crates = copyright::linked_crates(&meta, package)?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p["name"] == package && p["source"].is_null())
        })
        .ok_or_else(|| format!("no workspace package named {package}"))?;
    let text = copyright::render(
        package,
        pkg["license"].as_str().unwrap_or("Apache-2.0"),
        "2026, Podplane Authors",
        pkg["repository"].as_str().unwrap_or_default(),
        &crates,
    );
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(crates.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_copyright_file_lists_the_linked_crates_and_nothing_built_only() {
        let meta = copyright::metadata().unwrap();
        let crates = copyright::linked_crates(&meta, "vmagent").unwrap();
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        for linked in ["tokio", "reqwest", "rustls", "clap", "serde_json", "sha2"] {
            assert!(names.contains(&linked), "{linked} missing from {names:?}");
        }
        // Proc macros, dev-dependencies and other workspace tools are not in the binary.
        for not_linked in [
            "serde_derive",
            "thiserror-impl",
            "clap_mangen",
            "tempfile",
            "vmagent",
        ] {
            assert!(!names.contains(&not_linked), "{not_linked} listed");
        }
        assert!(
            crates
                .iter()
                .all(|c| !c.version.is_empty() && !c.license.is_empty())
        );
        let text = copyright::render("vmagent", "Apache-2.0", "2026, X", "https://x", &crates);
        assert!(text.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ));
        assert!(text.ends_with("\nFiles: *\nCopyright: 2026, X\nLicense: Apache-2.0\n"));
        // Every line of the header's Comment is a continuation line (leading space).
        let comment: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Comment:"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(comment.len(), crates.len() + 3, "{text}");
        assert!(comment.iter().all(|l| l.starts_with(' ')), "{text}");
    }

    #[test]
    fn every_command_has_a_page_and_every_shell_a_completion() {
        let tmp = tempfile::tempdir().unwrap();
        docs(tmp.path()).unwrap();
        let man = tmp.path().join("man");
        let top = read(&man.join("vmagent.8"));
        assert!(top.starts_with(".ie \\n(.g .ds Aq"), "roff: {top}");
        assert!(top.contains(".TH vmagent 8"), "{top}");
        // Every subcommand of the real command line, `status` included, has its page and is
        // listed on the main page.
        let subs: Vec<String> = vmagent_cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        assert!(subs.iter().any(|s| s == "status"), "{subs:?}");
        for sub in &subs {
            let page = read(&man.join(format!("vmagent-{sub}.8")));
            assert!(page.contains(&format!(".TH vmagent-{sub} 8")), "{page}");
            assert!(
                top.contains(&format!("vmagent\\-{sub}(8)")),
                "{sub} not on the main page"
            );
        }
        assert!(read(&man.join("vmagent-fetch.8")).contains("\\-\\-concurrency"));
        // The output formats for scripts, and what the exit codes mean.
        assert!(read(&man.join("vmagent-plan.8")).contains("\\-\\-output"));
        assert!(read(&man.join("vmagent-status.8")).contains("\\-\\-json"));
        assert!(top.contains("Exit status"), "{top}");
        assert!(read(&man.join("podplane-cluster-validate.1")).contains("\\-\\-output"));
        assert!(read(&man.join("podplane.1")).contains(".TH podplane 1"));
        assert!(man.join("podplane-cluster-create.1").exists());

        let c = tmp.path().join("completions");
        assert!(read(&c.join("bash/vmagent")).contains("complete -F _vmagent"));
        assert!(read(&c.join("zsh/_vmagent")).starts_with("#compdef vmagent"));
        assert!(read(&c.join("fish/vmagent.fish")).contains("complete -c vmagent"));
        assert!(read(&c.join("bash/podplane")).contains("podplane"));

        // A second run replaces the first, leaving nothing stale.
        std::fs::write(man.join("stale.8"), "x").unwrap();
        docs(tmp.path()).unwrap();
        assert!(!man.join("stale.8").exists());
    }
}
