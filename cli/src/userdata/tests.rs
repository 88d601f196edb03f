use super::*;
use std::path::Path;

/// The knc amd64 release manifest as packaging/release writes it: the vmagent entry pinned.
fn release_manifest() -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/manifests/knc.debian-13.amd64.json");
    let mut m = Manifest::load(&path).unwrap();
    let e = m.vmconfig.dependencies.get_mut("vmagent").unwrap();
    e.version = "0.1.0".into();
    e.url = "https://github.com/podplane/podplane-rs/releases/download/v0.1.0/vmagent_0.1.0_knc_debian-13_amd64.tar.gz".into();
    e.digest = format!("sha256:{}", "ab".repeat(32));
    e.size = 2_138_531;
    m
}

fn production() -> Facts {
    let mut f = Facts::nstance_placeholders("aws");
    f.aws_account_id = "123456789012".into();
    f.ssh_authorized_keys =
        "ssh-ed25519 AAAAC3Nza ops@example\nssh-rsa AAAAB3 it's-me@example".into();
    f
}

#[test]
fn production_userdata_keeps_the_nstance_placeholders_and_fits_ec2() {
    let m = release_manifest();
    let s = render(&m, &production(), Some("https://deps.podplane.dev")).unwrap();
    for p in [
        "--instance-id '{{ .Instance.ID }}'",
        "--cluster-id '{{ .Cluster.ID }}'",
        "--nstance-ca-cert '{{ .Cluster.CACert }}'",
        "--registration-addr '{{ .Server.RegistrationAddr }}'",
        "--agent-addr '{{ .Server.AgentAddr }}'",
        "--nonce '{{ .Nonce }}'",
        "--region '{{ .Provider.Region }}'",
        "--provider 'aws'",
        "--aws-account-id '123456789012'",
        "--mirror 'https://deps.podplane.dev'",
    ] {
        assert!(s.contains(p), "missing {p}:\n{s}");
    }
    // Only the intended placeholders: nstance-server runs the whole script through Go templates.
    assert_eq!(s.matches("{{").count(), 9, "{s}");
    assert!(s.contains("'https://deps.podplane.dev/vmconfig/artifacts/vmagent/0.1.0/vmagent_0.1.0_knc_debian-13_amd64.tar.gz'"));
    assert!(s.contains(&format!(
        "echo '{}  /opt/podplane/artifacts/vmagent.tar.gz.part' | sha256sum -c",
        "ab".repeat(32)
    )));
    assert!(
        s.contains("it'\\''s-me@example"),
        "keys quoted for the shell"
    );
    assert!(s.len() <= MAX_BYTES, "{} bytes", s.len());
    assert!(!s.contains("<no value>"));
    // Byte-stable.
    assert_eq!(
        s,
        render(&m, &production(), Some("https://deps.podplane.dev")).unwrap()
    );
}

#[test]
fn the_embedded_manifest_is_the_pinned_one() {
    let m = release_manifest();
    let s = render(&m, &production(), None).unwrap();
    let start = s.find("<<'PODPLANE_MANIFEST'\n").unwrap() + "<<'PODPLANE_MANIFEST'\n".len();
    let end = s.find("\nPODPLANE_MANIFEST\n").unwrap();
    let back = Manifest::from_slice(&s.as_bytes()[start..end], Path::new("embedded")).unwrap();
    assert_eq!(back, m);
    // Without a mirror the tarball comes from the manifest's URL.
    assert!(s.contains("'https://github.com/podplane/podplane-rs/releases/download/v0.1.0/vmagent_0.1.0_knc_debian-13_amd64.tar.gz'"));
}

#[test]
fn the_script_is_valid_bash() {
    let s = render(
        &release_manifest(),
        &production(),
        Some("https://deps.podplane.dev"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("userdata.sh");
    std::fs::write(&p, &s).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn interpolated_values_are_validated() {
    let m = release_manifest();
    let mut f = production();
    f.region = "eu-west-1'; reboot; '".into();
    assert!(matches!(
        render(&m, &f, None),
        Err(UserdataError::Unsafe {
            field: "provider region"
        })
    ));
    let mut f = production();
    f.nonce = "a\nb".into();
    assert!(matches!(
        render(&m, &f, None),
        Err(UserdataError::Unsafe { field: "nonce" })
    ));
    let mut f = production();
    f.ssh_authorized_keys = "ssh-ed25519 AAAA\r".into();
    assert!(matches!(
        render(&m, &f, None),
        Err(UserdataError::UnsafeKeys)
    ));
    let f = Facts::nstance_placeholders("azure");
    let e = render(&m, &f, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "provider kind \"azure\" is refused (PROVIDER_KIND in user-data.env): provider kind \"azure\" is not one of local, aws, google, proxmox"
    );
    // The node's rule for INSTANCE_ID (also its host name), applied before the VM boots.
    let mut f = production();
    f.instance_id = "I_1".into();
    assert!(matches!(
        render(&m, &f, None),
        Err(UserdataError::Fact(e)) if e.key == vmagent::contract::UserDataKey::InstanceId
    ));
    let mut f = production();
    f.instance_id.clear();
    assert!(matches!(
        render(&m, &f, None),
        Err(UserdataError::Required {
            field: "instance id"
        })
    ));
}

#[test]
fn a_manifest_without_a_released_vmagent_is_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/manifests/knd.debian-13.amd64.json");
    let m = Manifest::load(&path).unwrap();
    let e = render(&m, &production(), None).unwrap_err();
    assert!(matches!(e, UserdataError::NoVmagent), "{e}");
    assert!(e.to_string().contains("packaging/release"));
}

/// The words of a shell command line as bash reads them: single quotes, `\`-escapes and
/// line continuations (all the userdata script uses after `exec`).
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for c in it.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '\\' => match it.next() {
                Some('\n') | None => {}
                Some(c) => cur.get_or_insert_with(String::new).push(c),
            },
            c if c.is_whitespace() => words.extend(cur.take()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    words
}

#[test]
fn bootstrap_flags_round_trip_through_vmagents_parser() {
    let f = Facts {
        cluster_id: "c-1".into(),
        cluster_ca_cert: "Q0EgY2VydA==".into(),
        provider_kind: "aws".into(),
        region: "eu-west-1".into(),
        zone: "eu-west-1a".into(),
        instance_id: "i-0abc".into(),
        instance_type: "m7i.large".into(),
        registration_addr: "10.0.0.5:8990".into(),
        agent_addr: "10.0.0.5:8991".into(),
        nonce: "a.b.c".into(),
        aws_account_id: "123456789012".into(),
        google_project_id: "proj-1".into(),
        ssh_authorized_keys: "ssh-ed25519 AAAA ops@example\nssh-rsa BBBB it's-me@example".into(),
        enable_ssm: false,
    };
    let s = render(&release_manifest(), &f, Some("https://deps.podplane.dev")).unwrap();
    // --mirror and --manifest are not instance facts (bootstrap_facts leaves them out).
    let parsed = bootstrap_facts(&s);
    let expected = vmagent::contract::InstanceFacts {
        instance_id: f.instance_id.clone(),
        cluster_id: f.cluster_id.clone(),
        provider: f.provider_kind.clone(),
        region: f.region.clone(),
        zone: f.zone.clone(),
        instance_type: f.instance_type.clone(),
        aws_account_id: f.aws_account_id.clone(),
        google_project_id: f.google_project_id.clone(),
        nstance_ca_cert: f.cluster_ca_cert.clone(),
        registration_addr: f.registration_addr.clone(),
        agent_addr: f.agent_addr.clone(),
        nonce: f.nonce.clone(),
        ssh_authorized_keys: f.ssh_authorized_keys.clone(),
    };
    assert_eq!(parsed, expected);
}

/// The instance facts the userdata passes, as vmagent bootstrap reads them: every flag's value
/// after `exec /usr/bin/vmagent bootstrap`, parsed by vmagent's own parser.
fn bootstrap_facts(script: &str) -> vmagent::contract::InstanceFacts {
    let tail = script
        .split_once("exec /usr/bin/vmagent bootstrap \\\n")
        .expect("no vmagent bootstrap line")
        .1;
    let mut args = shell_words(tail).into_iter();
    let mut facts_args = Vec::new();
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} has no value"));
        if a != "--mirror" && a != "--manifest" {
            facts_args.extend([a, v]);
        }
    }
    vmagent::contract::InstanceFacts::parse_args(&facts_args)
        .unwrap_or_else(|e| panic!("vmagent refuses {facts_args:?}: {e}"))
}

/// What the CLI writes reaches the node's typed settings: userdata flags -> vmagent bootstrap ->
/// user-data.env -> the merged layers -> `NodeSettings`, every user-data.env key included.
#[test]
fn userdata_round_trips_into_the_nodes_typed_settings() {
    use vmagent::contract::{Provider, UserDataKey};
    use vmagent::settings::{NodeSettings, Settings};
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let f = Facts {
        cluster_id: "c-1".into(),
        // base64 of the PEM above.
        cluster_ca_cert:
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
                .into(),
        provider_kind: "aws".into(),
        region: "eu-west-1".into(),
        zone: "eu-west-1a".into(),
        instance_id: "i-0abc".into(),
        instance_type: "m7i.large".into(),
        registration_addr: "10.0.0.5:8990".into(),
        agent_addr: "10.0.0.5:8991".into(),
        nonce: "a.b.c".into(),
        aws_account_id: "123456789012".into(),
        google_project_id: "proj-1".into(),
        ssh_authorized_keys: "ssh-ed25519 AAAA ops@example".into(),
        enable_ssm: false,
    };
    let script = render(&release_manifest(), &f, None).unwrap();
    let facts = bootstrap_facts(&script);
    facts.validate().unwrap();
    let text = facts.user_data_env();
    let layer = vmagent::envfile::parse(&text, std::path::Path::new("user-data.env")).unwrap();
    let written: Vec<&str> = layer.keys().map(String::as_str).collect();
    let mut contract: Vec<&str> = UserDataKey::ALL.iter().map(|k| k.name()).collect();
    contract.sort_unstable();
    assert_eq!(
        written, contract,
        "user-data.env keys differ from the contract"
    );

    let n = NodeSettings::parse(&Settings::from_layers([&layer])).unwrap();
    assert_eq!(n.provider, Provider::Aws);
    assert_eq!(n.instance_id_text(), f.instance_id);
    assert_eq!(n.cluster_id.as_deref(), Some(f.cluster_id.as_str()));
    assert_eq!(n.region, f.region);
    assert_eq!(n.zone, f.zone);
    assert_eq!(n.instance_type, f.instance_type);
    assert_eq!(n.aws_account_id.as_deref(), Some(f.aws_account_id.as_str()));
    assert_eq!(
        n.google_project_id.as_deref(),
        Some(f.google_project_id.as_str())
    );
    assert_eq!(n.nstance_ca_cert.as_deref(), Some(pem.as_bytes()));
    assert_eq!(
        n.nstance_registration_addr.as_deref(),
        Some(f.registration_addr.as_str())
    );
    assert_eq!(n.nstance_agent_addr.as_deref(), Some(f.agent_addr.as_str()));
    assert_eq!(n.immutable_ssh_authorized_keys, f.ssh_authorized_keys);
}
