//! Inputs for render tests: the three env layers of a realistic node.

use std::collections::BTreeMap;
use std::path::Path;

use crate::contract::Kind;
use crate::manifest::Manifest;
use crate::render::{Desired, Inputs};
use crate::settings::{NodeSettings, Settings};

pub fn manifest() -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests/knc.debian-13.amd64.json");
    Manifest::load(&path).unwrap()
}

fn layer(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// user-data.env + detected.env + a delivered mutable.env for `provider` ("aws" or "local").
pub fn settings(kind: Kind, provider: &str) -> Settings {
    let aws = provider == "aws";
    let user_data = layer(&[
        ("IMMUTABLE_SSH_AUTHORIZED_KEYS", ""),
        ("INSTANCE_ID", "i-0abc123"),
        ("CLUSTER_ID", "c1"),
        ("PROVIDER_KIND", provider),
        ("PROVIDER_REGION", if aws { "eu-west-1" } else { "local" }),
        ("PROVIDER_ZONE", if aws { "eu-west-1a" } else { "local" }),
        (
            "PROVIDER_INSTANCE_TYPE",
            if aws { "m7i.large" } else { "local" },
        ),
        ("AWS_ACCOUNT_ID", if aws { "123456789012" } else { "" }),
        ("GOOGLE_PROJECT_ID", ""),
        (
            "NSTANCE_CA_CERT",
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=",
        ),
        ("NSTANCE_SERVER_REGISTRATION_ADDR", "10.0.0.5:8990"),
        ("NSTANCE_SERVER_AGENT_ADDR", "10.0.0.5:8991"),
    ]);
    let detected = layer(&[
        (
            "VMCONFIG_KIND",
            if kind == Kind::Knc { "knc" } else { "knd" },
        ),
        ("VMCONFIG_BASE_KIND", "node"),
        (
            "INSTANCE_PROVIDER_ID",
            if aws {
                "aws:///eu-west-1a/i-0abc123"
            } else {
                "i-0abc123"
            },
        ),
        ("INSTANCE_IPV4", "10.0.1.23"),
        ("INSTANCE_IPV6", if aws { "2a05:d018::23" } else { "" }),
        ("INSTANCE_NETDEV", "ens5"),
        ("INSTANCE_HOSTNAME", "i-0abc123"),
        ("INSTANCE_FQDN", "i-0abc123.eu-west-1.compute.internal"),
    ]);
    let mutable = layer(&[
        ("KUBE_API_PUBLIC_HOSTNAME", "api.c1.example.com"),
        (
            "KUBE_SERVICE_ACCOUNT_ISSUER",
            "https://api.c1.example.com:6443",
        ),
        ("OIDC_ISSUER", "https://auth.example.com"),
        ("NETSY_BUCKET", "c1-netsy"),
        (
            "NETSY_ENDPOINT",
            if aws { "" } else { "http://10.0.2.2:9000" },
        ),
        ("NETSY_ACCESS_KEY_ID", if aws { "" } else { "AKLOCAL" }),
        (
            "NETSY_SECRET_ACCESS_KEY",
            if aws { "" } else { "local-secret" },
        ),
        ("REGISTRY_HOSTNAME", "registry.c1.example.com"),
        ("REGISTRY_BUCKET", "c1-registry"),
        ("TELEMETRY_ENABLED", "true"),
        ("TELEMETRY_S3_BUCKET", "c1-telemetry"),
    ]);
    Settings::from_layers([&user_data, &detected, &mutable])
}

pub const ETC_HOSTS: &str = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
pub const SUBUID: &str = "debian:100000:65536\n";

/// The test settings, parsed (they must parse).
pub fn typed(s: &Settings) -> NodeSettings {
    NodeSettings::parse(s).unwrap()
}

/// Render inputs for a node of `kind` with these settings: the hosts and subid files above, no
/// load balancer, OOM adjustment possible.
pub fn inputs<'a>(kind: Kind, s: &Settings, m: &'a Manifest) -> Inputs<'a> {
    inputs_typed(kind, typed(s), m)
}

/// [`inputs`] for settings already parsed.
pub fn inputs_typed(kind: Kind, s: NodeSettings, m: &Manifest) -> Inputs<'_> {
    Inputs {
        kind,
        settings: s,
        manifest: m,
        etc_hosts: ETC_HOSTS,
        subuid: SUBUID,
        subgid: SUBUID,
        api_lb_addrs: vec![],
        oom_adjust: true,
    }
}

/// A rendered file's content as text.
pub fn text(d: &Desired, path: &str) -> String {
    String::from_utf8(d.files[path].content.clone()).unwrap()
}

/// One component's renderer run alone on a fresh `Desired` for `kind` and `s`.
pub fn render_one(
    render: fn(
        &Inputs,
        &crate::render::Features,
        &mut Desired,
    ) -> Result<(), crate::render::RenderError>,
    kind: Kind,
    s: &Settings,
) -> Result<Desired, crate::render::RenderError> {
    let m = manifest();
    let inp = inputs_typed(kind, NodeSettings::parse(s)?, &m);
    let f = crate::render::Features::of(kind, &inp.settings);
    let mut d = Desired::default();
    render(&inp, &f, &mut d).map(|_| d)
}

/// A rendered env file, parsed.
pub fn env_of(d: &Desired, path: &str) -> BTreeMap<String, String> {
    crate::envfile::parse(&text(d, path), Path::new(path)).unwrap()
}
