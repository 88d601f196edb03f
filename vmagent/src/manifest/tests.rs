use super::*;
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifests");

fn fixture(name: &str) -> Manifest {
    Manifest::load(&Path::new(FIXTURES).join(name)).expect("fixture loads")
}

fn knc_amd64_json() -> serde_json::Value {
    let bytes = std::fs::read(Path::new(FIXTURES).join("knc.debian-13.amd64.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn parse_value(v: &serde_json::Value) -> Result<Manifest, ManifestFileError> {
    Manifest::from_slice(v.to_string().as_bytes(), Path::new("m.json"))
}

#[test]
fn real_manifests_load_with_expected_items_and_sizes() {
    // (file, items, total bytes) from the stored upstream manifests (Appendix A).
    for (name, items, bytes) in [
        ("knd.debian-13.amd64.json", 11, 326_294_377u64),
        ("knc.debian-13.amd64.json", 16, 630_157_804),
        ("knd.debian-13.arm64.json", 11, 304_407_903),
        ("knc.debian-13.arm64.json", 16, 586_364_400),
    ] {
        let m = fixture(name);
        let list = m.install_items(Some("aws"));
        assert_eq!(list.len(), items, "{name}");
        assert_eq!(list.iter().map(|i| i.size).sum::<u64>(), bytes, "{name}");
        assert!(
            list.iter().all(|i| i.key != "vmconfig"),
            "stub skipped in {name}"
        );
    }
}

#[test]
fn install_items_are_byte_sorted_and_named_locally() {
    let m = fixture("knc.debian-13.amd64.json");
    let items = m.install_items(None);
    let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    let names: Vec<_> = items.iter().map(|i| i.local_name()).collect();
    assert_eq!(
        names,
        [
            "cni-plugins.tar.gz",
            "containerd.tar.gz",
            "crictl.tar.gz",
            "fluent-bit.deb",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kubelet",
            "libpq5.deb",
            "libsubid5.deb",
            "netsy.tar.gz",
            "nstance-agent.tar.gz",
            "runc",
            "uidmap.deb",
            "zot",
        ]
    );
    // The cni-plugins URL ends in .tgz but the local name is .tar.gz.
    let cni = &items[0];
    assert!(cni.url.ends_with(".tgz"));
    let netsy = items.iter().find(|i| i.key == "netsy").unwrap();
    assert_eq!(netsy.digest.algorithm, Algorithm::Sha512);
}

#[test]
fn byte_order_puts_uppercase_before_lowercase() {
    let mut v = knc_amd64_json();
    let deps = v["vmconfig"]["dependencies"].as_object_mut().unwrap();
    let runc = deps["runc"].clone();
    deps.insert("Zeta".into(), runc.clone());
    deps.insert("a-b".into(), runc.clone());
    deps.insert("a_b".into(), runc);
    let keys: Vec<_> = parse_value(&v)
        .unwrap()
        .install_items(None)
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(&keys[..3], ["Zeta", "a-b", "a_b"]);
}

#[test]
fn mirror_urls_use_key_version_and_basename() {
    let m = fixture("knc.debian-13.amd64.json");
    let items = m.install_items(None);
    let cni = &items[0];
    assert_eq!(
        cni.source_url(Some("https://deps.example.com/")),
        "https://deps.example.com/vmconfig/artifacts/cni-plugins/1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz"
    );
    assert_eq!(cni.source_url(None), cni.url);
    assert_eq!(url_basename("http://h/a/b.deb?x=1#f"), "b.deb");
    assert_eq!(
        mirror_url(
            "http://10.0.2.2:8080/deps",
            "kubelet",
            "1.37.0",
            "https://dl.k8s.io/v/kubelet"
        ),
        "http://10.0.2.2:8080/deps/vmconfig/artifacts/kubelet/1.37.0/kubelet"
    );
}

#[test]
fn provider_filter_is_trimmed_case_insensitive_and_splits_commas() {
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(provider_matches(&p(&[]), "aws"));
    assert!(provider_matches(&p(&[" AWS "]), "aws"));
    assert!(provider_matches(&p(&["google", "aws"]), " Aws"));
    assert!(provider_matches(&p(&["google,aws"]), "aws"));
    assert!(provider_matches(&p(&["all"]), "local"));
    assert!(!provider_matches(&p(&["aws"]), "local"));
    assert!(!provider_matches(&p(&["aws"]), "aw"));

    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"]["kube2iam"] = serde_json::json!({
        "version": "0.12.0", "type": "binary", "providers": ["aws"],
        "url": "https://github.com/jtblin/kube2iam/releases/download/0.12.0/kube2iam-linux-amd64",
        "digest": format!("sha256:{}", "ab".repeat(32)), "size": 1
    });
    let m = parse_value(&v).unwrap();
    let has = |p: &str| m.install_items(Some(p)).iter().any(|i| i.key == "kube2iam");
    assert!(has("aws"));
    assert!(has("AWS"));
    assert!(!has("local"));
    assert!(m.install_items(None).iter().any(|i| i.key == "kube2iam"));
}

#[test]
fn released_vmconfig_entry_is_an_install_item() {
    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"]["vmconfig"] = serde_json::json!({
        "version": "1.0.0", "type": "tar.gz", "size": 10,
        "url": "https://example.com/vmconfig_1.0.0_knc_debian-13_amd64.tar.gz",
        "digest": format!("sha256:{}", "0".repeat(64)),
    });
    let items = parse_value(&v).unwrap().install_items(None);
    assert_eq!(items.len(), 17);
    assert!(items.iter().any(|i| i.local_name() == "vmconfig.tar.gz"));
}

#[test]
fn missing_top_level_fields_are_named() {
    for (pointer, field) in [
        ("version", "version"),
        ("kind", "kind"),
        ("os.name", "os.name"),
        ("os.arch", "os.arch"),
    ] {
        let mut v = knc_amd64_json();
        let parts: Vec<_> = pointer.split('.').collect();
        let obj = if parts.len() == 1 {
            v["vmconfig"].as_object_mut().unwrap()
        } else {
            v["vmconfig"]["os"].as_object_mut().unwrap()
        };
        obj.remove(*parts.last().unwrap());
        let err = parse_value(&v).unwrap_err();
        assert!(
            matches!(err.source, ManifestError::MissingField { field: f } if f == field),
            "{pointer}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("vmconfig.{field}")),
            "{err}"
        );
        assert!(err.to_string().starts_with("m.json: "), "{err}");
    }
}

#[test]
fn bad_kind_and_arch_are_rejected() {
    let mut v = knc_amd64_json();
    v["vmconfig"]["kind"] = "kn".into();
    assert!(matches!(parse_value(&v).unwrap_err().source, ManifestError::BadKind(k) if k == "kn"));
    let mut v = knc_amd64_json();
    v["vmconfig"]["os"]["arch"] = "x86_64".into();
    assert!(matches!(
        parse_value(&v).unwrap_err().source,
        ManifestError::BadArch(_)
    ));
}

fn with_dep_field(key: &str, field: &str, value: serde_json::Value) -> ManifestFileError {
    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"][key][field] = value;
    parse_value(&v).unwrap_err()
}

#[test]
fn digest_errors_are_distinct_and_name_the_key() {
    type Case = (serde_json::Value, fn(&DigestError) -> bool, &'static str);
    let cases: Vec<Case> = vec![
        ("".into(), |e| matches!(e, DigestError::Missing), "missing"),
        (
            "sha256".into(),
            |e| matches!(e, DigestError::NoColon(_)),
            "no \":\"",
        ),
        (
            format!("md5:{}", "a".repeat(32)).into(),
            |e| matches!(e, DigestError::UnknownAlgorithm(a) if a == "md5"),
            "not supported",
        ),
        (
            format!("sha256:{}", "a".repeat(63)).into(),
            |e| {
                matches!(
                    e,
                    DigestError::WrongLength {
                        expected: 64,
                        actual: 63,
                        ..
                    }
                )
            },
            "expected 64",
        ),
        (
            format!("sha512:{}", "a".repeat(64)).into(),
            |e| {
                matches!(
                    e,
                    DigestError::WrongLength {
                        expected: 128,
                        actual: 64,
                        ..
                    }
                )
            },
            "expected 128",
        ),
        (
            format!("sha256:{}", "g".repeat(64)).into(),
            |e| matches!(e, DigestError::NotHex(_)),
            "not hexadecimal",
        ),
    ];
    for (digest, is, text) in cases {
        let err = with_dep_field("kubelet", "digest", digest.clone());
        match &err.source {
            ManifestError::Digest { key, source } => {
                assert_eq!(key, "kubelet");
                assert!(is(source), "{digest}: {source:?}");
            }
            other => panic!("{digest}: unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("\"kubelet\"") && msg.contains(text), "{msg}");
    }
}

#[test]
fn uppercase_hex_is_accepted_and_normalised() {
    let upper = "EE554F77DA57AD40A5D5F8625AC9C4AF8B75D9D5A259367A885E5E816954B044";
    let d = Digest::parse(&format!("sha256:{upper}")).unwrap();
    assert_eq!(d.hex, upper.to_ascii_lowercase());
    assert_eq!(
        d.to_string(),
        format!("sha256:{}", upper.to_ascii_lowercase())
    );
}

#[test]
fn missing_version_url_and_non_http_urls_are_named() {
    let e = with_dep_field("runc", "version", "".into());
    assert!(matches!(e.source, ManifestError::MissingVersion { ref key } if key == "runc"));
    let e = with_dep_field("runc", "url", "".into());
    assert!(matches!(e.source, ManifestError::MissingUrl { ref key } if key == "runc"));
    let e = with_dep_field("runc", "url", "file:///etc/passwd".into());
    assert!(matches!(e.source, ManifestError::BadUrl { ref key, .. } if key == "runc"));
}

#[test]
fn json_errors_name_file_and_path() {
    let err = Manifest::from_slice(b"{not json", Path::new("/x/knc.json")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/x/knc.json"), "{msg}");
    assert!(matches!(err.source, ManifestError::Json { .. }));

    let e = with_dep_field("kubelet", "size", "big".into());
    let msg = e.to_string();
    assert!(msg.contains("vmconfig.dependencies.kubelet.size"), "{msg}");

    let e = with_dep_field("kubelet", "type", "rpm".into());
    assert!(
        e.to_string().contains("vmconfig.dependencies.kubelet.type"),
        "{e}"
    );

    let err = Manifest::from_slice(b"[]", Path::new("m.json")).unwrap_err();
    assert!(matches!(err.source, ManifestError::Json { .. }), "{err}");
}

#[test]
fn read_error_names_the_file() {
    let err = Manifest::load(Path::new("/nonexistent/dir/m.json")).unwrap_err();
    assert!(matches!(err.source, ManifestError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/dir/m.json"));
}

#[test]
fn images_are_optional_and_round_trip() {
    let mut v = knc_amd64_json();
    v["vmconfig"].as_object_mut().unwrap().remove("images");
    let m = parse_value(&v).unwrap();
    assert!(m.vmconfig.images.is_empty());

    let full = fixture("knc.debian-13.arm64.json");
    assert_eq!(full.vmconfig.images.len(), 1);
    let again: Manifest = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
    assert_eq!(again, full);
}

#[test]
fn qcow2_dependencies_are_never_install_items() {
    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"]["disk"] = serde_json::json!({
        "version": "1", "type": "qcow2", "url": "", "digest": ""
    });
    let m = parse_value(&v).unwrap();
    assert!(m.install_items(None).iter().all(|i| i.key != "disk"));
}

/// The error for a manifest whose JSON is `text`, with `from` replaced by `to` once.
fn from_text_with(from: &str, to: &str) -> ManifestFileError {
    let text = knc_amd64_json().to_string();
    assert!(text.contains(from), "fixture lacks {from}");
    Manifest::from_slice(text.replacen(from, to, 1).as_bytes(), Path::new("m.json")).unwrap_err()
}

#[test]
fn names_used_in_paths_must_be_single_safe_components() {
    let bad = [
        "",
        ".",
        "..",
        ".hidden",
        "../../../../.ssh",
        "a/b",
        "a\\b",
        "a\0b",
        "a\nb",
        "a b",
        "a\u{7f}",
        "a?b",
        "a#b",
        "%2e%2E",
        "a%2Fb",
    ];
    let too_long = "k".repeat(MAX_NAME_LEN + 1);
    for name in bad.iter().copied().chain([too_long.as_str()]) {
        assert!(check_name(name).is_err(), "{name:?} accepted");
    }
    for good in [
        "kubelet",
        "1.37.0",
        "17.9-0+deb13u1",
        "2:1.2~rc1",
        "libpq5_17.9-0%2Bdeb13u1_amd64.deb",
        &"k".repeat(MAX_NAME_LEN),
    ] {
        check_name(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }

    // A hostile key: refused before anything else, naming the key and the fix.
    let mut v = knc_amd64_json();
    let runc = v["vmconfig"]["dependencies"]["runc"].clone();
    v["vmconfig"]["dependencies"]["../../.ssh/authorized_keys"] = runc;
    let err = parse_value(&v).unwrap_err();
    assert!(
        matches!(&err.source, ManifestError::UnsafeName { value, .. } if value == "../../.ssh/authorized_keys"),
        "{err:?}"
    );
    let msg = err.to_string();
    for part in [
        "m.json",
        "key in `vmconfig.dependencies`",
        "\"../../.ssh/authorized_keys\"",
        "fix the manifest",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }

    // A hostile version, and a hostile URL file name, on an install item and on the OS image.
    for (pointer, field, value, at) in [
        (
            "/vmconfig/dependencies/kubelet",
            "version",
            "../../../../.ssh",
            "`vmconfig.dependencies.kubelet.version`",
        ),
        (
            "/vmconfig/dependencies/kubelet",
            "url",
            "https://evil.example/x/..",
            "the file name at the end of `vmconfig.dependencies.kubelet.url`",
        ),
        (
            "/vmconfig/dependencies/kubelet",
            "url",
            "https://evil.example/",
            "the file name at the end of `vmconfig.dependencies.kubelet.url`",
        ),
        (
            "/vmconfig/os/image",
            "version",
            "a/../../b",
            "`vmconfig.os.image.version`",
        ),
        (
            "/vmconfig/os/image",
            "url",
            "https://evil.example/.bashrc",
            "the file name at the end of `vmconfig.os.image.url`",
        ),
    ] {
        let mut v = knc_amd64_json();
        v.pointer_mut(pointer).unwrap()[field] = value.into();
        let err = parse_value(&v).unwrap_err();
        assert!(
            matches!(&err.source, ManifestError::UnsafeName { at: a, .. } if a == at),
            "{pointer}.{field}={value}: {err:?}"
        );
        assert!(err.to_string().contains(at), "{err}");
    }

    // Even the unreleased stub and OS-image-type entries may not carry unsafe names.
    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"]["disk"] = serde_json::json!({
        "version": "..", "type": "qcow2", "url": "", "digest": ""
    });
    assert!(matches!(
        parse_value(&v).unwrap_err().source,
        ManifestError::UnsafeName { .. }
    ));
}

#[test]
fn duplicate_dependency_keys_are_refused() {
    // serde_json would silently keep the second "runc"; the duplicate must be an error.
    let runc = knc_amd64_json()["vmconfig"]["dependencies"]["runc"].to_string();
    let err = from_text_with("\"runc\":{", &format!("\"runc\":{runc},\"runc\":{{"));
    let msg = err.to_string();
    assert!(matches!(err.source, ManifestError::Json { .. }), "{msg}");
    for part in [
        "m.json",
        "vmconfig.dependencies",
        "\"runc\" appears twice",
        "remove one",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
}

#[test]
fn two_items_with_one_local_name_are_refused() {
    let mut v = knc_amd64_json();
    let mut deb = v["vmconfig"]["dependencies"]["uidmap"].clone();
    deb["url"] = "https://example.com/pool/runc_1_amd64.deb".into();
    // Key "runc.deb" of type binary and key "runc" of type deb are both "runc.deb" on disk.
    let mut bin = v["vmconfig"]["dependencies"]["runc"].clone();
    bin["url"] = "https://example.com/runc.deb".into();
    v["vmconfig"]["dependencies"]["runc"] = deb;
    v["vmconfig"]["dependencies"]["runc.deb"] = bin;
    let err = parse_value(&v).unwrap_err();
    assert!(
        matches!(&err.source, ManifestError::NameClash { local_name, .. } if local_name == "runc.deb"),
        "{err:?}"
    );
}

#[test]
fn size_zero_or_missing_is_refused_naming_the_key() {
    let e = with_dep_field("kubelet", "size", 0.into());
    assert!(
        matches!(e.source, ManifestError::MissingSize { ref key } if key == "kubelet"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("\"kubelet\"") && e.to_string().contains("size"),
        "{e}"
    );
    let mut v = knc_amd64_json();
    v["vmconfig"]["dependencies"]["zot"]
        .as_object_mut()
        .unwrap()
        .remove("size");
    assert!(matches!(
        parse_value(&v).unwrap_err().source,
        ManifestError::MissingSize { ref key } if key == "zot"
    ));
}

#[test]
fn oversized_manifest_files_are_not_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.json");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
    let err = Manifest::load(&p).unwrap_err();
    assert!(
        matches!(err.source, ManifestError::TooLarge { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("huge.json"), "{err}");
}
