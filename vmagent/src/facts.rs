//! One-shot host detection at first boot (upstream's bootstrap.sh): the instance's provider ID,
//! network device, addresses and names, written once to `detected.env` with the seeded
//! `mutable.env`, and `bootstrap.done` last. Every fact can be given instead through an
//! environment variable of the same name (a set-but-empty `INSTANCE_IPV6` means "no IPv6").

use std::collections::BTreeMap;
use std::path::Path;

use crate::contract::DetectedKey as DK;
use crate::contract::Provider;
use crate::fsutil::{under_root, write_atomic};
use crate::host::{Cmd, Host};
use crate::settings::{self, Settings};

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot detect {what}: {why}; set {key} in the environment to give it instead")]
    Missing {
        what: &'static str,
        key: &'static str,
        why: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The device of the default route: the token after `dev` in `ip route get 1` (upstream took
/// the 5th field, which is wrong for a route without a gateway).
pub fn route_dev(out: &str) -> Option<String> {
    let mut it = out.split_whitespace();
    while let Some(t) = it.next() {
        if t == "dev" {
            return it.next().map(str::to_string);
        }
    }
    None
}

/// The first address of `family` ("inet" or "inet6") in `ip -o addr show` output, without its
/// prefix length; link-local IPv6 addresses are skipped.
pub fn first_address(out: &str, family: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        while let Some(t) = it.next() {
            if t == family {
                let addr = it.next()?.split('/').next()?;
                if family == "inet6" && (addr.starts_with("fe80") || l.contains("scope link")) {
                    return None;
                }
                return Some(addr.to_string());
            }
        }
        None
    })
}

/// `hostname -f`, completed as upstream does: when it has no domain, the first `search` domain
/// of resolv.conf (unless `.`), else `.localdomain`.
pub fn fqdn(short: &str, full: &str, resolv_conf: &str) -> String {
    if full != short && full.contains('.') {
        return full.to_string();
    }
    let search = resolv_conf.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("search")).then(|| it.next()).flatten()
    });
    match search {
        Some(d) if d != "." => format!("{short}.{}", d.trim_end_matches('.')),
        _ => format!("{short}.localdomain"),
    }
}

fn run(host: &dyn Host, cmd: Cmd) -> Option<String> {
    host.run(&cmd).ok().map(|o| o.stdout.trim().to_string())
}

/// A `cloud-init query` value, first of `keys` that is set (and not `null`).
fn cloud_init(host: &dyn Host, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        run(host, Cmd::new("cloud-init").args(["query", k]))
            .filter(|v| !v.is_empty() && v != "null")
    })
}

/// Detect the facts. `user_data`: user-data.env; `overrides`: environment values that win.
pub fn detect(
    root: &Path,
    host: &dyn Host,
    kind: &str,
    user_data: &Settings,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FactsError> {
    let get =
        |key: &str, f: &dyn Fn() -> Result<String, FactsError>| -> Result<String, FactsError> {
            match overrides.get(key) {
                Some(v) => Ok(v.clone()),
                None => f(),
            }
        };
    let missing = |what, key, why: &str| FactsError::Missing {
        what,
        key,
        why: why.into(),
    };
    let mut out = BTreeMap::new();
    out.insert(DK::VmconfigKind.name().to_string(), kind.to_string());
    out.insert(DK::VmconfigBaseKind.name().to_string(), "node".to_string());
    let provider = user_data.get(crate::contract::UserDataKey::ProviderKind.name());
    let provider_id = get(
        DK::InstanceProviderId.name(),
        &|| match Provider::parse(provider) {
            Some(Provider::Aws) => {
                let az = cloud_init(host, &["v1.availability_zone", "v1.availability-zone"]);
                let id = cloud_init(host, &["v1.instance_id", "v1.instance-id"]);
                match (az, id) {
                    (Some(az), Some(id)) => Ok(format!("aws:///{az}/{id}")),
                    _ => Err(missing(
                        "the AWS provider ID",
                        DK::InstanceProviderId.name(),
                        "cloud-init query has no availability zone or instance ID",
                    )),
                }
            }
            Some(Provider::Google) => {
                let project = cloud_init(host, &["v1.project_id", "v1.project-id"]);
                let zone = cloud_init(host, &["v1.zone"]);
                let id = cloud_init(host, &["v1.instance_id", "v1.instance-id"]);
                match (project, zone, id) {
                    (Some(p), Some(z), Some(i)) => Ok(format!("gce://{p}/{z}/{i}")),
                    _ => Err(missing(
                        "the Google provider ID",
                        DK::InstanceProviderId.name(),
                        "cloud-init query has no project, zone or instance ID",
                    )),
                }
            }
            _ => std::fs::read_to_string(under_root(root, "/var/lib/cloud/data/instance-id"))
                .map(|s| s.trim().to_string())
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    missing(
                        "the instance ID",
                        DK::InstanceProviderId.name(),
                        "/var/lib/cloud/data/instance-id is missing or empty",
                    )
                }),
        },
    )?;
    out.insert(DK::InstanceProviderId.name().into(), provider_id);
    let dev = get(DK::InstanceNetdev.name(), &|| {
        run(host, Cmd::new("ip").args(["-o", "route", "get", "1"]))
            .and_then(|o| route_dev(&o))
            .ok_or_else(|| {
                missing(
                    "the network device",
                    DK::InstanceNetdev.name(),
                    "there is no default route",
                )
            })
    })?;
    let v4 = get(DK::InstanceIpv4.name(), &|| {
        run(
            host,
            Cmd::new("ip").args(["-o", "-4", "addr", "show", "dev", &dev]),
        )
        .and_then(|o| first_address(&o, "inet"))
        .ok_or_else(|| {
            missing(
                "the IPv4 address",
                DK::InstanceIpv4.name(),
                &format!("{dev} has no IPv4 address"),
            )
        })
    })?;
    let v6 = get(DK::InstanceIpv6.name(), &|| {
        Ok(run(
            host,
            Cmd::new("ip").args(["-o", "-6", "addr", "show", "dev", &dev]),
        )
        .and_then(|o| first_address(&o, "inet6"))
        .unwrap_or_default())
    })?;
    let short = get(DK::InstanceHostname.name(), &|| {
        run(host, Cmd::new("hostname").arg("-s"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                missing(
                    "the host name",
                    DK::InstanceHostname.name(),
                    "hostname -s printed nothing",
                )
            })
    })?;
    let full = get(DK::InstanceFqdn.name(), &|| {
        let f = run(host, Cmd::new("hostname").arg("-f")).unwrap_or_default();
        let resolv =
            std::fs::read_to_string(under_root(root, "/etc/resolv.conf")).unwrap_or_default();
        Ok(fqdn(&short, &f, &resolv))
    })?;
    out.insert(DK::InstanceIpv4.name().into(), v4);
    out.insert(DK::InstanceIpv6.name().into(), v6);
    out.insert(DK::InstanceNetdev.name().into(), dev);
    out.insert(DK::InstanceHostname.name().into(), short);
    out.insert(DK::InstanceFqdn.name().into(), full);
    Ok(out)
}

/// `detected.env` text, keys in upstream's order.
pub fn detected_env(facts: &BTreeMap<String, String>) -> String {
    let pairs: Vec<(&str, &str)> = DK::ALL
        .iter()
        .map(|k| {
            (
                k.name(),
                facts.get(k.name()).map(String::as_str).unwrap_or(""),
            )
        })
        .collect();
    crate::render::env_file(&pairs)
}

/// Write detected.env and the seeded mutable.env (each 0600, atomically), then bootstrap.done
/// last. Does nothing when bootstrap.done exists.
pub fn write_bootstrap(
    root: &Path,
    facts: &BTreeMap<String, String>,
    now_utc: &str,
) -> Result<bool, FactsError> {
    if under_root(root, settings::BOOTSTRAP_DONE).exists() {
        return Ok(false);
    }
    let mutable = under_root(root, settings::MUTABLE_ENV);
    let mutable_text = match std::fs::read_to_string(&mutable) {
        // A mutable.env delivered before bootstrap is kept.
        Ok(t) if !t.trim().is_empty() => t,
        _ => settings::default_mutable_env(),
    };
    for (path, content) in [
        (settings::DETECTED_ENV, detected_env(facts)),
        (settings::MUTABLE_ENV, mutable_text),
        (
            settings::BOOTSTRAP_DONE,
            format!("completed_at={now_utc}\n"),
        ),
    ] {
        write_private(root, path, &content)?;
    }
    Ok(true)
}

fn write_private(root: &Path, path: &str, content: &str) -> Result<(), FactsError> {
    write_atomic(&under_root(root, path), content.as_bytes(), Some(0o600)).map_err(|source| {
        FactsError::Write {
            path: path.into(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Output, RecordingHost};

    #[test]
    fn route_dev_is_the_token_after_dev() {
        assert_eq!(
            route_dev("1.0.0.0 via 10.0.0.1 dev ens5 src 10.0.1.23 uid 0 \\    cache").as_deref(),
            Some("ens5")
        );
        // No gateway: upstream's "5th field" would have taken "src".
        assert_eq!(
            route_dev("1.0.0.0 dev eth0 src 192.168.1.9 uid 0").as_deref(),
            Some("eth0")
        );
        assert_eq!(route_dev("RTNETLINK answers: Network is unreachable"), None);
    }

    #[test]
    fn addresses_skip_link_local() {
        let v4 = "2: ens5    inet 10.0.1.23/24 metric 100 brd 10.0.1.255 scope global dynamic ens5\\ ...";
        assert_eq!(first_address(v4, "inet").as_deref(), Some("10.0.1.23"));
        let v6 = "2: ens5    inet6 fe80::1/64 scope link \\ ...\n2: ens5    inet6 2a05:d018::23/128 scope global dynamic \\ ...";
        assert_eq!(first_address(v6, "inet6").as_deref(), Some("2a05:d018::23"));
        assert_eq!(
            first_address("2: ens5 inet6 fe80::1/64 scope link", "inet6"),
            None
        );
    }

    #[test]
    fn fqdn_completion() {
        assert_eq!(fqdn("i-1", "i-1.ec2.internal", ""), "i-1.ec2.internal");
        assert_eq!(
            fqdn("i-1", "i-1", "search eu-west-1.compute.internal\n"),
            "i-1.eu-west-1.compute.internal"
        );
        assert_eq!(fqdn("i-1", "i-1", "search .\n"), "i-1.localdomain");
        assert_eq!(fqdn("i-1", "i-1", ""), "i-1.localdomain");
    }

    fn host() -> RecordingHost {
        RecordingHost::with_responder(|c| {
            let line = c.display();
            let out = match line.as_str() {
                "cloud-init query v1.availability_zone" => "eu-west-1a",
                "cloud-init query v1.instance_id" => "i-0abc",
                "ip -o route get 1" => "1.0.0.0 via 10.0.0.1 dev ens5 src 10.0.1.23 uid 0",
                "ip -o -4 addr show dev ens5" => "2: ens5 inet 10.0.1.23/24 scope global ens5",
                "ip -o -6 addr show dev ens5" => "",
                "hostname -s" => "i-0abc",
                "hostname -f" => "i-0abc",
                _ => "",
            };
            Ok(Output {
                stdout: format!("{out}\n"),
                stderr: String::new(),
            })
        })
    }

    fn user_data(provider: &str) -> Settings {
        let m: BTreeMap<String, String> =
            [("PROVIDER_KIND".to_string(), provider.to_string())].into();
        Settings::from_layers([&m])
    }

    #[test]
    fn detects_an_aws_node_and_honours_overrides() {
        let root = tempfile::tempdir().unwrap();
        let f = detect(
            root.path(),
            &host(),
            "knd",
            &user_data("aws"),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(f["INSTANCE_PROVIDER_ID"], "aws:///eu-west-1a/i-0abc");
        assert_eq!(f["INSTANCE_NETDEV"], "ens5");
        assert_eq!(f["INSTANCE_IPV4"], "10.0.1.23");
        assert_eq!(f["INSTANCE_IPV6"], "");
        assert_eq!(f["INSTANCE_FQDN"], "i-0abc.localdomain");

        let over: BTreeMap<String, String> = [
            ("INSTANCE_IPV4".to_string(), "192.0.2.7".to_string()),
            ("INSTANCE_IPV6".to_string(), String::new()),
        ]
        .into();
        let f = detect(root.path(), &host(), "knd", &user_data("aws"), &over).unwrap();
        assert_eq!(f["INSTANCE_IPV4"], "192.0.2.7");
    }

    #[test]
    fn missing_facts_are_fatal_and_named() {
        let root = tempfile::tempdir().unwrap();
        let silent = RecordingHost::with_responder(|_| Ok(Output::default()));
        let err = detect(
            root.path(),
            &silent,
            "knd",
            &user_data("aws"),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("AWS provider ID")
                && err.to_string().contains("INSTANCE_PROVIDER_ID"),
            "{err}"
        );
        let err = detect(
            root.path(),
            &silent,
            "knd",
            &user_data("google"),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("Google provider ID"), "{err}");
        let err = detect(
            root.path(),
            &silent,
            "knd",
            &user_data("local"),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/var/lib/cloud/data/instance-id"),
            "{err}"
        );
        let over: BTreeMap<String, String> =
            [("INSTANCE_PROVIDER_ID".to_string(), "i-1".to_string())].into();
        let err = detect(root.path(), &silent, "knd", &user_data("local"), &over).unwrap_err();
        assert!(
            err.to_string().contains("no default route")
                && err.to_string().contains("INSTANCE_NETDEV"),
            "{err}"
        );
    }

    #[test]
    fn bootstrap_files_are_written_once_done_last() {
        let root = tempfile::tempdir().unwrap();
        let f = detect(
            root.path(),
            &host(),
            "knc",
            &user_data("aws"),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(write_bootstrap(root.path(), &f, "2026-11-25T10:00:00Z").unwrap());
        let det =
            std::fs::read_to_string(root.path().join("opt/podplane/etc/detected.env")).unwrap();
        assert!(
            det.starts_with("VMCONFIG_KIND='knc'\nVMCONFIG_BASE_KIND='node'\n"),
            "{det}"
        );
        assert!(det.contains("INSTANCE_IPV6=''\n"));
        let m = std::fs::read_to_string(root.path().join("opt/podplane/etc/mutable.env")).unwrap();
        assert_eq!(m, settings::default_mutable_env());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(root.path().join("opt/podplane/bootstrap.done"))
                .unwrap()
                .mode()
                & 0o777,
            0o600
        );
        assert!(!write_bootstrap(root.path(), &f, "later").unwrap());
    }
}
