//! The order of the questions, the rule each answer must pass, the output directory menu and
//! the writing of the file.

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use super::WizardError;
use super::answers::{Answers, ROUTE53, config_from_answers, config_json};
use super::prompt::ask;
use crate::config::{
    ClusterConfig, check_cluster_id, check_dns_name, is_aws_region, is_canonical,
    is_zone_in_region, light_check, parse_cidr,
};
use crate::tfgen::validate_for_terraform;

/// Writes `cfg` to `path` atomically with mode 0644 (see [`config_json`] for the format).
pub fn write_config(path: &Path, cfg: &ClusterConfig) -> io::Result<()> {
    vmagent::fsutil::write_atomic(path, config_json(cfg)?.as_bytes(), Some(0o644))
}

fn cancelled() -> WizardError {
    WizardError::Cancelled
}

fn output_cancelled() -> WizardError {
    WizardError::OutputCancelled
}

fn required(v: &str) -> Result<String, String> {
    if v.is_empty() {
        Err("is required".into())
    } else {
        Ok(v.to_string())
    }
}

fn optional(v: &str) -> Result<String, String> {
    Ok(v.to_string())
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" => Ok(true),
        "no" | "n" => Ok(false),
        _ => Err("must be yes or no".into()),
    }
}

/// Longest prefix the wizard puts in front of the domain (`registry.<domain>`).
const LONGEST_DOMAIN_PREFIX: &str = "registry.";

fn domain_answer(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    check_dns_name(v).map_err(|e| e.to_string())?;
    let max = 253 - LONGEST_DOMAIN_PREFIX.len();
    if v.len() > max {
        return Err(format!(
            "must be at most {max} characters so that registry.<domain> is a valid hostname"
        ));
    }
    Ok(v.to_string())
}

fn vpc_cidr_answer(v: &str) -> Result<String, String> {
    let rule = "must be a canonical IPv4 /16 CIDR such as 172.18.0.0/16";
    match parse_cidr(v) {
        Ok(p @ ipnet::IpNet::V4(_)) if p.prefix_len() == 16 && is_canonical(&p) => {
            Ok(v.to_string())
        }
        _ => Err(rule.into()),
    }
}

/// Gives `(version, digest)` to pin for a seed name.
pub type PinSeed<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

/// Label of the components question.
pub const COMPONENTS_LABEL: &str = "Initial platform components (recommended, minimal, none)";

fn components_answer(v: &str) -> Result<String, String> {
    match v {
        "" => Ok("recommended".into()),
        "recommended" | "minimal" | "none" => Ok(v.to_string()),
        _ => Err("must be recommended, minimal, or none".into()),
    }
}

/// Runs the cluster wizard and returns the validated answers.
///
/// `preset_issuer` is the issuer chosen before the wizard ([`ask_issuer`]); when `None` the
/// wizard asks "OIDC issuer URL" itself. Every accepted answer set maps (via
/// [`config_from_answers`]) to a config passing [`light_check`] and [`validate_for_terraform`].
pub fn run_wizard(
    input: &mut impl BufRead,
    out: &mut impl Write,
    preset_issuer: Option<String>,
) -> Result<Answers, WizardError> {
    let d = Answers::default();
    writeln!(out, "New cluster config").map_err(WizardError::Prompt)?;
    let mut a = Answers {
        name: ask(input, out, "Cluster name", &d.name, cancelled, required)?,
        ..Answers::default()
    };
    a.id = ask(input, out, "Cluster ID / slug", &d.id, cancelled, |v| {
        check_cluster_id(v)
            .map(|()| v.to_string())
            .map_err(|e| e.to_string())
    })?;
    a.issuer_url = match preset_issuer {
        Some(url) => url,
        None => ask(
            input,
            out,
            "OIDC issuer URL",
            &d.issuer_url,
            cancelled,
            required,
        )?,
    };
    a.domain = ask(
        input,
        out,
        "Cluster domain (optional)",
        "",
        cancelled,
        domain_answer,
    )?;
    if !a.domain.is_empty() {
        a.dns_provider = ask(
            input,
            out,
            "DNS provider (aws-route53 or blank for manual)",
            "",
            cancelled,
            |v| match v {
                "" | ROUTE53 => Ok(v.to_string()),
                _ => Err("must be aws-route53 or blank for manual DNS".to_string()),
            },
        )?;
        if a.dns_provider == ROUTE53 {
            a.acme_email = ask(
                input,
                out,
                "ACME account email (optional)",
                "",
                cancelled,
                |v| {
                    if v.is_empty() || crate::config::is_bare_email(v) {
                        Ok(v.to_string())
                    } else {
                        Err("must be a valid email address such as ops@example.com".to_string())
                    }
                },
            )?;
        }
    } else {
        a.api_hostname = ask(input, out, "Kubernetes API hostname", "", cancelled, |v| {
            check_dns_name(v)
                .map(|()| v.to_string())
                .map_err(|e| e.to_string())
        })?;
    }
    a.region = ask(input, out, "AWS region", &d.region, cancelled, |v| {
        if is_aws_region(v) {
            Ok(v.to_string())
        } else {
            Err("must be a valid AWS region such as us-east-1".to_string())
        }
    })?;
    a.profile = ask(
        input,
        out,
        "AWS profile (optional)",
        "",
        cancelled,
        optional,
    )?;
    a.components = ask(
        input,
        out,
        COMPONENTS_LABEL,
        &d.components,
        cancelled,
        components_answer,
    )?;
    a.networking = ask(
        input,
        out,
        "Configure networking options?",
        "no",
        cancelled,
        yes_no,
    )?;
    if a.networking {
        a.vpc_cidr = ask(
            input,
            out,
            "VPC IPv4 CIDR",
            &d.vpc_cidr,
            cancelled,
            vpc_cidr_answer,
        )?;
        let region = a.region.clone();
        a.zone = ask(
            input,
            out,
            "AWS availability zone",
            &format!("{region}a"),
            cancelled,
            |v| {
                if is_zone_in_region(&region, v) {
                    Ok(v.to_string())
                } else {
                    Err(format!("must be an availability zone in region {region}"))
                }
            },
        )?;
    } else {
        a.zone = format!("{}a", a.region);
    }
    a.cp_arch = ask(
        input,
        out,
        "Control-plane architecture",
        &d.cp_arch,
        cancelled,
        |v| match vmagent::contract::Arch::parse(v) {
            Some(a) => Ok(a.name().to_string()),
            None => Err("must be amd64 or arm64".to_string()),
        },
    )?;
    a.cp_instance_type = ask(
        input,
        out,
        "Control-plane instance type",
        &d.cp_instance_type,
        cancelled,
        required,
    )?;
    a.cp_size = ask(
        input,
        out,
        "Control-plane size",
        &d.cp_size.to_string(),
        cancelled,
        |v| match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            Ok(_) => Err("must be at least 1".to_string()),
            Err(_) => Err("must be a whole number".to_string()),
        },
    )?;

    let mut cfg = config_from_answers(&a);
    // The seed's version and digest are pinned afterwards (create_config_interactively);
    // check the rest with a well-formed stand-in pin.
    if !cfg.cluster.seed.name.is_empty() {
        cfg.cluster.seed.version = "0".into();
        cfg.cluster.seed.digest = format!("sha512:{}", "0".repeat(128));
    }
    light_check(&cfg).map_err(WizardError::Light)?;
    validate_for_terraform(&cfg).map_err(WizardError::Invalid)?;
    Ok(a)
}

/// Asks "Which cloud provider?", the first question. `aws` continues; `google` is not supported.
pub fn ask_provider(input: &mut impl BufRead, out: &mut impl Write) -> Result<(), WizardError> {
    let provider = ask(
        input,
        out,
        "Which cloud provider? (aws, google)",
        "aws",
        cancelled,
        |v| match v.to_ascii_lowercase().as_str() {
            "aws" => Ok("aws"),
            "google" | "gcp" | "google cloud" => Ok("google"),
            _ => Err("must be aws or google".to_string()),
        },
    )?;
    if provider == "google" {
        return Err(WizardError::GoogleUnsupported);
    }
    Ok(())
}

/// Asks for the cluster's OIDC issuer, after the provider question. Without one, creation stops with
/// [`WizardError::IssuerRequired`] (the Easy OIDC server wizard is not part of this version).
pub fn ask_issuer(input: &mut impl BufRead, out: &mut impl Write) -> Result<String, WizardError> {
    let have = ask(
        input,
        out,
        "Do you already have an OIDC issuer for this cluster?",
        "yes",
        cancelled,
        yes_no,
    )?;
    if !have {
        return Err(WizardError::IssuerRequired);
    }
    ask(input, out, "OIDC issuer URL", "", cancelled, required)
}

/// Output directory selection against the process's current directory; see
/// [`choose_output_from`].
pub fn choose_output(
    config_path: &Path,
    cluster_id: &str,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<PathBuf, WizardError> {
    let cwd = std::env::current_dir().map_err(WizardError::Prompt)?;
    choose_output_from(config_path, cluster_id, &cwd, input, out)
}

/// Output directory selection. When the directory of `config_path` exists and is not
/// empty, prints `Podplane will generate cluster files, but <dir> is not empty.` and offers
/// `1) Specify a directory` (default `cluster_id`, relative paths resolved against `cwd`),
/// `2) Continue in this directory`, `3) Cancel` (→ `creation cancelled`); a specified
/// directory is checked the same way. Missing directories are created with mode 0755.
/// Returns the config path in the chosen directory (same file name).
pub fn choose_output_from(
    config_path: &Path,
    cluster_id: &str,
    cwd: &Path,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<PathBuf, WizardError> {
    let file_name = config_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| crate::config::DEFAULT_CONFIG_FILE.into());
    let mut dir = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd.to_path_buf(),
    };
    loop {
        if !is_non_empty_dir(&dir) {
            create_dir(&dir)?;
            return Ok(dir.join(&file_name));
        }
        let p = WizardError::Prompt;
        writeln!(
            out,
            "Podplane will generate cluster files, but {} is not empty.",
            dir.display()
        )
        .map_err(p)?;
        writeln!(out, "  1) Specify a directory").map_err(p)?;
        writeln!(out, "  2) Continue in this directory").map_err(p)?;
        writeln!(out, "  3) Cancel").map_err(p)?;
        let choice = ask(input, out, "Choose", "1", output_cancelled, |v| {
            match v.to_ascii_lowercase().as_str() {
                "1" | "specify" => Ok(1),
                "2" | "continue" => Ok(2),
                "3" | "cancel" => Ok(3),
                _ => Err("must be 1, 2 or 3".to_string()),
            }
        })?;
        match choice {
            1 => {
                let answer = ask(
                    input,
                    out,
                    "Directory",
                    cluster_id,
                    output_cancelled,
                    required,
                )?;
                dir = cwd.join(answer);
            }
            2 => {
                let target = dir.join(&file_name);
                if target.exists() {
                    writeln!(
                        out,
                        "{} already exists; specify another directory or cancel.",
                        target.display()
                    )
                    .map_err(p)?;
                    continue;
                }
                return Ok(target);
            }
            _ => return Err(WizardError::OutputCancelled),
        }
    }
}

/// Whether `dir` is a directory with at least one entry (a non-directory counts as
/// "not empty" so that the user is asked for another place).
fn is_non_empty_dir(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(_) => dir.exists(),
    }
}

fn create_dir(dir: &Path) -> Result<(), WizardError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| WizardError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// The whole interactive creation for a missing config file: cloud
/// provider → OIDC issuer → wizard → output directory → write → `Created <path>`. Returns
/// the path written (which differs from `config_path` when another directory was chosen).
///
/// `pin_seed` gives the seeds manifest version and the snapshot's digest for a seed name
/// (`recommended`, `minimal`); they are written into `cluster.seed`.
pub fn create_config_interactively(
    config_path: &Path,
    input: &mut impl BufRead,
    out: &mut impl Write,
    pin_seed: &mut PinSeed<'_>,
) -> Result<PathBuf, WizardError> {
    ask_provider(input, out)?;
    let issuer = ask_issuer(input, out)?;
    let answers = run_wizard(input, out, Some(issuer))?;
    let mut cfg = config_from_answers(&answers);
    if !cfg.cluster.seed.name.is_empty() {
        let (version, digest) = pin_seed(&cfg.cluster.seed.name).map_err(WizardError::Seed)?;
        cfg.cluster.seed.version = version;
        cfg.cluster.seed.digest = digest;
    }
    let path = choose_output(config_path, &answers.id, input, out)?;
    write_config(&path, &cfg).map_err(|source| WizardError::Write {
        path: path.clone(),
        source,
    })?;
    writeln!(out, "Created {}", path.display()).map_err(WizardError::Prompt)?;
    Ok(path)
}
