use super::*;
use crate::contract::Kind as NodeKind;
use crate::contract::{Check, MutableKey, UserDataKey};
use crate::render::testutil::settings;

/// A value that fails `check` (exhaustive: a new rule needs a bad value here).
fn bad_value(check: Check) -> Option<&'static str> {
    Some(match check {
        Check::Text => return None,
        Check::Bool => "yes",
        Check::Port => "0",
        Check::Number(_) => "999",
        Check::Hostname => "bad_host",
        Check::OidcIssuer | Check::ServiceAccountIssuer => "http://auth.example.com",
        Check::HttpUrl | Check::UrlList => "ftp://x.example.com",
        Check::S3Endpoint => "bad_host:9000",
        Check::IpList => "10.0.0.1,x",
        Check::Cidrs => "10.0.0.0/33",
        Check::ServiceNames => "Kubelet",
        Check::Base64 => "not base64!",
        Check::Provider => "azure",
        Check::Kind => "knx",
        Check::Ipv4 => "fd00::1",
        Check::Ipv6 => "10.0.0.1",
    })
}

/// Every contract key: name, file, rule.
fn all_keys() -> Vec<(&'static str, &'static str, Check)> {
    fn of<K: EnvKey>(keys: &[K]) -> Vec<(&'static str, &'static str, Check)> {
        keys.iter()
            .map(|k| (k.name(), K::FILE, k.check()))
            .collect()
    }
    let mut v = of(UserDataKey::ALL);
    v.extend(of(DetectedKeyAll::ALL));
    v.extend(of(MutableKey::ALL));
    v
}

use crate::contract::DetectedKey as DetectedKeyAll;

#[test]
fn the_test_settings_parse_into_types() {
    let n = NodeSettings::parse(&settings(NodeKind::Knc, "aws")).unwrap();
    assert_eq!(n.provider, Provider::Aws);
    assert_eq!(n.instance_id.as_ref().unwrap().as_str(), "i-0abc123");
    assert_eq!(n.kube.api_port, 6443);
    assert_eq!(n.kube.log_level, 2);
    assert_eq!(n.kube.cluster_cidr.text, "100.64.0.0/10,fd64::/48");
    assert_eq!(n.kube.cluster_cidr.value.len(), 2);
    assert_eq!(n.kube.cluster_dns.len(), 2);
    // The issuer keeps its text: Url would add a trailing slash.
    assert_eq!(
        n.oidc.issuer.as_ref().unwrap().text,
        "https://auth.example.com"
    );
    assert_eq!(
        n.oidc.issuer.as_ref().unwrap().value.as_str(),
        "https://auth.example.com/"
    );
    assert_eq!(n.ipv4, Some("10.0.1.23".parse().unwrap()));
    assert_eq!(n.vmconfig_kind, Some(Kind::Knc));
    assert!(n.registry.enabled && n.telemetry.enabled && n.telemetry.log_cloudinit);
    assert_eq!(n.netsy.bucket.as_deref(), Some("c1-netsy"));
    assert_eq!(n.netsy.region_or(&n.region), "eu-west-1");
    assert!(
        n.nstance_ca_cert
            .unwrap()
            .starts_with(b"-----BEGIN CERTIFICATE-----")
    );
    assert!(n.telemetry.log_services.contains(&"kubelet".to_string()));
}

#[test]
fn every_contract_key_is_read_by_the_typed_parse() {
    let s = settings(NodeKind::Knc, "local");
    let (parsed, read) = NodeSettings::parse_tracked(&s);
    parsed.unwrap();
    let all: BTreeSet<&str> = all_keys().iter().map(|(k, _, _)| *k).collect();
    let unread: Vec<_> = all.difference(&read).collect();
    assert!(
        unread.is_empty(),
        "keys the typed parse never reads: {unread:?}"
    );
    assert_eq!(read.len(), all.len());
}

#[test]
fn each_checked_key_rejects_a_bad_value_naming_key_and_file() {
    let mut checked = 0;
    for (key, file, check) in all_keys() {
        let Some(bad) = bad_value(check) else {
            continue;
        };
        let mut s = settings(NodeKind::Knc, "local");
        s.set(key, bad);
        let e = NodeSettings::parse(&s)
            .err()
            .unwrap_or_else(|| panic!("{key}={bad:?} was accepted"));
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{key} is {bad:?} ({file}); ")),
            "{key}: {msg}"
        );
        assert!(std::error::Error::source(&e).is_some(), "{key}: no cause");
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} keys have a rule");
}

#[test]
fn unknown_and_missing_keys_are_errors() {
    let mut s = settings(NodeKind::Knd, "local");
    s.set("KUBE_API_PROT", "6443");
    let e = NodeSettings::parse(&s).unwrap_err().to_string();
    assert!(e.starts_with("KUBE_API_PROT is not a key of"), "{e}");

    let mut s = settings(NodeKind::Knd, "aws");
    s.set("AWS_ACCOUNT_ID", "");
    let e = NodeSettings::parse(&s).unwrap_err().to_string();
    assert_eq!(
        e,
        "AWS_ACCOUNT_ID is empty; AWS nodes need it (user-data.env)"
    );

    let mut s = settings(NodeKind::Knd, "local");
    s.set("PROVIDER_KIND", "");
    let e = NodeSettings::parse(&s).unwrap_err().to_string();
    assert!(
        e.starts_with("PROVIDER_KIND is empty; expected one of local"),
        "{e}"
    );
}

#[test]
fn empty_means_the_contract_default_except_for_the_log_services() {
    let mut s = settings(NodeKind::Knc, "local");
    s.set("KUBE_API_PORT", "");
    s.set("KUBE_CLUSTER_CIDR", "");
    s.set("TELEMETRY_LOG_SERVICES", "");
    s.set("REGISTRY_HOSTNAME", "");
    let n = NodeSettings::parse(&s).unwrap();
    assert_eq!(n.kube.api_port, 6443);
    assert_eq!(
        n.kube.cluster_cidr.text,
        MutableKey::KubeClusterCidr.default()
    );
    assert!(n.telemetry.log_services.is_empty());
    assert_eq!(n.registry.hostname, None);

    s.set("TELEMETRY_LOG_SERVICES", "kubelet,ssh,kubelet");
    let n = NodeSettings::parse(&s).unwrap();
    assert_eq!(n.telemetry.log_services, ["kubelet", "ssh"]);
}

#[test]
fn base64_that_does_not_decode_names_the_key() {
    let mut s = settings(NodeKind::Knc, "local");
    s.set("OIDC_CA_CERT", "abc");
    let e = NodeSettings::parse(&s).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("OIDC_CA_CERT (mutable.env) is not valid base64"),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());
}
