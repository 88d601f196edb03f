use super::*;

fn ok(text: &str) -> BTreeMap<String, String> {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> MutableError {
    match parse(text) {
        Ok(m) => {
            let empty = BTreeMap::new();
            match merge(&empty, &m) {
                Ok(out) => panic!("{text:?} was accepted: {out}"),
                Err(e) => e,
            }
        }
        Err(e) => e,
    }
}

// ---- accepted -------------------------------------------------------------------------

#[test]
fn c01_plain_value() {
    assert_eq!(ok("KUBE_LOG_LEVEL=3\n")["KUBE_LOG_LEVEL"], "3");
}

#[test]
fn c02_single_quotes_stripped_once() {
    assert_eq!(
        ok("OIDC_ISSUER='https://auth.example.com'")["OIDC_ISSUER"],
        "https://auth.example.com"
    );
}

#[test]
fn c03_double_quotes_stripped_once() {
    assert_eq!(ok("NETSY_BUCKET=\"c1-netsy\"")["NETSY_BUCKET"], "c1-netsy");
}

#[test]
fn c04_trailing_equals_is_kept() {
    assert_eq!(ok("OIDC_CA_CERT=a=")["OIDC_CA_CERT"], "a=");
    assert_eq!(ok("OIDC_CA_CERT='YWJj=='")["OIDC_CA_CERT"], "YWJj==");
}

#[test]
fn c05_whitespace_comments_blank_lines_and_no_final_newline() {
    let m = ok("  # comment\n\n  KUBE_LOG_LEVEL = 4  \r\nREGISTRY_ENABLED=false");
    assert_eq!(m["KUBE_LOG_LEVEL"], "4");
    assert_eq!(m["REGISTRY_ENABLED"], "false");
}

#[test]
fn c06_later_duplicates_win() {
    assert_eq!(
        ok("KUBE_LOG_LEVEL=1\nKUBE_LOG_LEVEL=5\n")["KUBE_LOG_LEVEL"],
        "5"
    );
}

#[test]
fn c07_empty_values_are_allowed() {
    assert_eq!(
        ok("REGISTRY_HOSTNAME=''\nNETSY_BUCKET=\n")["NETSY_BUCKET"],
        ""
    );
}

#[test]
fn c08_allowed_punctuation() {
    let v = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI+x/y= ops@example.com,#1:2";
    assert_eq!(
        ok(&format!("SSH_AUTHORIZED_KEYS='{v}'"))["SSH_AUTHORIZED_KEYS"],
        v
    );
}

#[test]
fn c09_exactly_4096_characters() {
    let v = "A".repeat(4096);
    assert_eq!(ok(&format!("OIDC_CA_CERT={v}"))["OIDC_CA_CERT"].len(), 4096);
}

#[test]
fn c10_cli_keys_are_in_the_contract() {
    let m = ok(
        "KUBE_SERVICE_ACCOUNT_ISSUER=https://api.c1.example.com:6443\nKUBE_CLUSTER_DNS=198.19.255.254,fdc6::ffff\n",
    );
    let out = merge(&BTreeMap::new(), &m).unwrap();
    assert!(out.contains("KUBE_SERVICE_ACCOUNT_ISSUER='https://api.c1.example.com:6443'\n"));
    assert!(out.contains("KUBE_CLUSTER_DNS='198.19.255.254,fdc6::ffff'\n"));
}

#[test]
fn c11_merge_keeps_current_values_and_defaults_and_sorts() {
    let current = ok("KUBE_LOG_LEVEL=3\nNETSY_BUCKET=old\n");
    let delivered = ok("NETSY_BUCKET=new\n");
    let out = merge(&current, &delivered).unwrap();
    assert!(out.contains("KUBE_LOG_LEVEL='3'\n"));
    assert!(out.contains("NETSY_BUCKET='new'\n"));
    assert!(out.contains("KUBE_API_PORT='6443'\n"));
    let keys: Vec<&str> = out.lines().map(|l| l.split('=').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), crate::contract::MutableKey::ALL.len());
}

#[test]
fn c12_typed_values_that_pass() {
    for line in [
        "KUBE_API_PORT=443",
        "KUBE_NODE_CIDR_MASK_SIZE_IPV6=128",
        "KUBE_CLUSTER_CIDR=100.64.0.0/10,fd64::/48",
        "KUBE_API_ETCD_SERVERS=https://127.0.0.1:2378,https://[fd00::1]:2378",
        "TELEMETRY_OTLP_ENDPOINT=https://[fd00::9]:4318/v1/logs",
        "NETSY_ENDPOINT=http://10.0.2.2:9000",
        "REGISTRY_ENDPOINT=s3.eu-west-1.amazonaws.com",
        "TELEMETRY_LOG_SERVICES=kubelet,containerd,kube-apiserver",
        "AWS_S3_USE_PATH_STYLE=true",
    ] {
        let m = ok(line);
        merge(&BTreeMap::new(), &m).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

// ---- refused: syntax ------------------------------------------------------------------

#[test]
fn c13_unknown_key() {
    assert_eq!(
        err("KUBE_LOG_LEVEL=2\nLD_PRELOAD=/tmp/x.so\n"),
        MutableError::Unknown {
            line: 2,
            key: "LD_PRELOAD".into()
        }
    );
}

#[test]
fn c14_invalid_key_syntax() {
    assert!(matches!(err("1KEY=x"), MutableError::BadKey { .. }));
    assert!(matches!(err("KEY-NAME=x"), MutableError::BadKey { .. }));
    assert!(matches!(err("=x"), MutableError::BadKey { .. }));
}

#[test]
fn c15_line_without_equals() {
    assert_eq!(err("KUBE_LOG_LEVEL\n"), MutableError::NoEquals { line: 1 });
}

#[test]
fn c16_oversize_value() {
    let e = err(&format!("OIDC_CA_CERT={}", "A".repeat(4097)));
    assert!(matches!(e, MutableError::TooLong { len: 4097, .. }), "{e}");
}

#[test]
fn c17_every_forbidden_character() {
    for ch in [
        '\'', '"', '$', '`', ';', '\\', '|', '&', '<', '>', '(', ')', '{', '}', '*', '?', '!', '~',
        '%', '^', '\t',
    ] {
        let e = err(&format!("NETSY_BUCKET=a{ch}b"));
        assert!(
            matches!(e, MutableError::BadChar { ch: c, .. } if c == ch),
            "{ch:?}: {e}"
        );
    }
}

#[test]
fn c18_command_substitution() {
    assert!(matches!(
        err("NETSY_BUCKET=$(reboot)"),
        MutableError::BadChar { ch: '$', .. }
    ));
}

#[test]
fn c19_backticks() {
    assert!(matches!(
        err("NETSY_BUCKET=`id`"),
        MutableError::BadChar { ch: '`', .. }
    ));
}

#[test]
fn c20_semicolon_chain() {
    assert!(matches!(
        err("KUBE_LOG_LEVEL=2; rm -rf /"),
        MutableError::BadChar { ch: ';', .. }
    ));
}

#[test]
fn c21_quote_breakout() {
    assert!(matches!(
        err("NETSY_BUCKET='a'\\''b'"),
        MutableError::BadChar { .. }
    ));
    assert!(matches!(
        err("NETSY_BUCKET='x' && id"),
        MutableError::BadChar { .. }
    ));
}

#[test]
fn c22_newline_injection_is_its_own_line_and_rejected() {
    let e = err("NETSY_BUCKET=ok\nexport LD_PRELOAD=/x\n");
    assert!(matches!(e, MutableError::BadKey { line: 2, .. }), "{e}");
}

#[test]
fn c23_non_ascii() {
    assert!(matches!(
        err("NETSY_BUCKET=bücket"),
        MutableError::BadChar { ch: 'ü', .. }
    ));
}

#[test]
fn c24_mismatched_quotes_are_not_stripped() {
    assert!(matches!(
        err("NETSY_BUCKET='abc\""),
        MutableError::BadChar { .. }
    ));
}

// ---- refused: types -------------------------------------------------------------------

/// The key a typed refusal names; the rule's error is kept as the cause.
fn bad_value(line: &str) -> String {
    let e = err(line);
    assert!(
        std::error::Error::source(&e).is_some(),
        "{line}: {e} has no cause"
    );
    match e {
        MutableError::BadValue { key, .. } => key,
        other => panic!("{line}: {other}"),
    }
}

#[test]
fn issuer_refusals_keep_the_url_rule_as_their_cause() {
    let e = err("OIDC_ISSUER=http://auth.example.com");
    let cause = std::error::Error::source(&e).expect("a cause");
    let rule = std::error::Error::source(cause).expect("the URL rule");
    assert!(rule.to_string().contains("https://"), "{rule}");
    assert!(
        e.to_string()
            .starts_with("OIDC_ISSUER=\"http://auth.example.com\": "),
        "{e}"
    );
}

#[test]
fn c25_booleans() {
    for v in ["yes", "TRUE", "1", "on"] {
        assert_eq!(
            bad_value(&format!("TELEMETRY_ENABLED={v}")),
            "TELEMETRY_ENABLED"
        );
        assert_eq!(
            bad_value(&format!("REGISTRY_ENABLED={v}")),
            "REGISTRY_ENABLED"
        );
    }
    assert_eq!(
        bad_value("TELEMETRY_LOG_CLOUDINIT=maybe"),
        "TELEMETRY_LOG_CLOUDINIT"
    );
}

#[test]
fn c26_ports() {
    for v in ["0", "65536", "+443", "https", "6443.0"] {
        assert_eq!(
            bad_value(&format!("KUBE_API_PORT={v}")),
            "KUBE_API_PORT",
            "{v}"
        );
    }
}

#[test]
fn c27_mask_sizes_and_log_level() {
    assert_eq!(
        bad_value("KUBE_NODE_CIDR_MASK_SIZE_IPV4=33"),
        "KUBE_NODE_CIDR_MASK_SIZE_IPV4"
    );
    assert_eq!(
        bad_value("KUBE_NODE_CIDR_MASK_SIZE_IPV6=129"),
        "KUBE_NODE_CIDR_MASK_SIZE_IPV6"
    );
    assert_eq!(
        bad_value("KUBE_NODE_CIDR_MASK_SIZE_IPV4=-1"),
        "KUBE_NODE_CIDR_MASK_SIZE_IPV4"
    );
    assert_eq!(bad_value("KUBE_LOG_LEVEL=11"), "KUBE_LOG_LEVEL");
}

#[test]
fn c28_hostnames() {
    for v in ["-bad.example.com", "a..b", "under_score.example", "x.-y"] {
        assert_eq!(
            bad_value(&format!("REGISTRY_HOSTNAME={v}")),
            "REGISTRY_HOSTNAME",
            "{v}"
        );
    }
    assert_eq!(
        bad_value("KUBE_API_PUBLIC_HOSTNAME=api.example.com:443"),
        "KUBE_API_PUBLIC_HOSTNAME"
    );
}

#[test]
fn c29_urls() {
    assert_eq!(
        bad_value("OIDC_ISSUER=http://auth.example.com"),
        "OIDC_ISSUER"
    );
    assert_eq!(bad_value("OIDC_ISSUER=auth.example.com"), "OIDC_ISSUER");
    assert_eq!(
        bad_value("TELEMETRY_OTLP_ENDPOINT=collector:4318"),
        "TELEMETRY_OTLP_ENDPOINT"
    );
    assert_eq!(
        bad_value("TELEMETRY_OTLP_ENDPOINT=https://[zz::1]:4318"),
        "TELEMETRY_OTLP_ENDPOINT"
    );
    assert_eq!(
        bad_value("KUBE_API_ETCD_SERVERS=https://127.0.0.1:2378,ftp://x"),
        "KUBE_API_ETCD_SERVERS"
    );
    assert_eq!(
        bad_value("KUBE_SERVICE_ACCOUNT_ISSUER=https://api.example.com:99999"),
        "KUBE_SERVICE_ACCOUNT_ISSUER"
    );
}

#[test]
fn c30_ip_lists_and_cidrs() {
    assert_eq!(
        bad_value("KUBE_CLUSTER_DNS=198.19.255.254,dns.example"),
        "KUBE_CLUSTER_DNS"
    );
    assert_eq!(
        bad_value("KUBE_CLUSTER_CIDR=100.64.0.0"),
        "KUBE_CLUSTER_CIDR"
    );
    assert_eq!(
        bad_value("KUBE_CLUSTER_CIDR=100.64.0.0/33"),
        "KUBE_CLUSTER_CIDR"
    );
    assert_eq!(
        bad_value("KUBE_SERVICE_CLUSTER_IP_RANGE=fdc6::/129"),
        "KUBE_SERVICE_CLUSTER_IP_RANGE"
    );
}

#[test]
fn c31_service_lists_and_base64() {
    assert_eq!(
        bad_value("TELEMETRY_LOG_SERVICES=Kubelet"),
        "TELEMETRY_LOG_SERVICES"
    );
    assert_eq!(
        bad_value("TELEMETRY_LOG_SERVICES=kubelet,,zot"),
        "TELEMETRY_LOG_SERVICES"
    );
    assert_eq!(bad_value("OIDC_CA_CERT=not base64"), "OIDC_CA_CERT");
}

#[test]
fn c32_error_messages_name_line_key_and_reason() {
    assert_eq!(
        err("KUBE_LOG_LEVEL=2\nNETSY_BUCKET=a$b\n").to_string(),
        "line 2: NETSY_BUCKET contains '$', which is not allowed (only letters, digits, space and - . / _ : + = # @ , [ ])"
    );
    assert_eq!(
        err("REGISTRY_ENABLED=yes").to_string(),
        "REGISTRY_ENABLED=\"yes\": it must be exactly true or false"
    );
}

// ---- bytes as delivered -------------------------------------------------------------------

#[test]
fn c33_a_leading_bom_and_crlf_endings_are_accepted() {
    let m = parse_bytes(b"\xef\xbb\xbfKUBE_LOG_LEVEL='4'\r\n# note\r\nREGISTRY_ENABLED=true\r\n")
        .unwrap();
    assert_eq!(m["KUBE_LOG_LEVEL"], "4");
    assert_eq!(m["REGISTRY_ENABLED"], "true");
    assert_eq!(ok("\u{feff}KUBE_LOG_LEVEL=4")["KUBE_LOG_LEVEL"], "4");
    // Only a leading BOM is dropped; one inside a line is refused like any other character.
    assert!(matches!(
        err("KUBE_LOG_LEVEL=4\n\u{feff}KUBE_API_PORT=6443"),
        MutableError::BadKey { line: 2, .. }
    ));
    // A carriage return inside a value is not a line ending.
    assert!(matches!(
        err("NETSY_BUCKET=a\rb\n"),
        MutableError::BadChar {
            line: 1,
            ch: '\r',
            ..
        }
    ));
}

#[test]
fn c34_invalid_utf8_is_refused_naming_the_line_and_column() {
    let e = parse_bytes(b"KUBE_LOG_LEVEL=4\nREGISTRY_HOSTNAME=r\xffx\n").unwrap_err();
    assert_eq!(
        e,
        MutableError::NotUtf8 {
            line: 2,
            column: 20
        }
    );
    assert_eq!(
        e.to_string(),
        "line 2: byte 20 is not valid UTF-8; save the file as UTF-8 (values may only hold ASCII)"
    );
    assert_eq!(
        parse_bytes(b"\xc3").unwrap_err(),
        MutableError::NotUtf8 { line: 1, column: 1 }
    );
    // Latin-1 from an old editor.
    assert!(matches!(
        parse_bytes(b"# caf\xe9\nKUBE_LOG_LEVEL=4\n"),
        Err(MutableError::NotUtf8 { line: 1, column: 6 })
    ));
}
