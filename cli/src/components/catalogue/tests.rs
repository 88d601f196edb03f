use serde_json::json;

use super::*;

fn fixture() -> Catalogue {
    let v: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/components/chart-values.json"
    ))
    .unwrap();
    Catalogue::from_values(&v).unwrap()
}

fn names(cs: &[&Component]) -> Vec<String> {
    cs.iter().map(|c| c.name.clone()).collect()
}

#[test]
fn reads_apps_and_crds_with_their_fields() {
    let c = fixture();
    let cilium = c.get("cilium").unwrap();
    assert_eq!(cilium.kind, Kind::App);
    assert!(cilium.enabled && cilium.core);
    assert_eq!(cilium.depends_on, ["cilium-crds"]);
    assert_eq!(cilium.release_namespace(), "platform-cilium");
    let crd = c.get("cert-manager-crds").unwrap();
    assert_eq!((crd.kind, crd.enabled, crd.core), (Kind::Crd, false, false));
    assert_eq!(crd.release_namespace(), CRD_NAMESPACE);
}

#[test]
fn install_set_is_transitive_sorted_and_skips_enabled() {
    let c = fixture();
    // traefik → platform-certs → cert-manager → cert-manager-crds, traefik-crds; gateway-api-crds
    // is enabled already.
    assert_eq!(
        names(&c.install_set("traefik").unwrap()),
        [
            "cert-manager",
            "cert-manager-crds",
            "platform-certs",
            "traefik",
            "traefik-crds"
        ]
    );
    assert!(c.install_set("coredns").unwrap().is_empty());
}

#[test]
fn dependency_cycles_end() {
    let v = json!({"platform": {"components": {"apps": {
        "a": {"dependsOn": ["b"]}, "b": {"dependsOn": ["a"]}}}}});
    let c = Catalogue::from_values(&v).unwrap();
    assert_eq!(names(&c.install_set("a").unwrap()), ["a", "b"]);
}

#[test]
fn unknown_name_lists_the_closest() {
    let c = fixture();
    let e = c.install_set("treafik").unwrap_err();
    let CatalogueError::Unknown { closest, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(closest[0], "traefik");
    assert!(e.to_string().contains("did you mean traefik"), "{e}");
    assert!(c.closest("zzzzzzzzzz").is_empty());
}

#[test]
fn unknown_dependency_names_the_missing_one() {
    let v = json!({"platform": {"components": {"apps": {
        "a": {"dependsOn": ["b"]}, "b": {"dependsOn": ["ghost"]}}}}});
    let e = Catalogue::from_values(&v)
        .unwrap()
        .install_set("a")
        .unwrap_err();
    assert_eq!(
        e,
        CatalogueError::UnknownDependency {
            name: "b".into(),
            dependency: "ghost".into()
        }
    );
}

#[test]
fn missing_or_malformed_values_are_errors_naming_the_key() {
    assert_eq!(
        Catalogue::from_values(&json!({"platform": {}})),
        Err(CatalogueError::Missing)
    );
    let e = Catalogue::from_values(&json!({"platform": {"components": {"apps": {
        "a": {"enabled": "yes"}}}}}))
    .unwrap_err();
    assert!(e.to_string().contains("apps.a.enabled"), "{e}");
    let e = Catalogue::from_values(&json!({"platform": {"components": {"apps": {
        "a": {"dependsOn": [1]}}}}}))
    .unwrap_err();
    assert!(e.to_string().contains("apps.a.dependsOn"), "{e}");
    // Names and namespaces reach the terminal and the chart's object names: no escapes.
    let e = Catalogue::from_values(&json!({"platform": {"components": {"apps": {
        "a\u{1b}[2J": {}}}}}))
    .unwrap_err();
    assert!(e.to_string().contains("Kubernetes object name"), "{e}");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
    let e = Catalogue::from_values(&json!({"platform": {"components": {"apps": {
        "a": {"namespace": "../x"}}}}}))
    .unwrap_err();
    assert!(e.to_string().contains("apps.a.namespace"), "{e}");
    let e = Catalogue::from_values(&json!({"platform": {"components": {
        "apps": {"a": {}}, "crds": {"a": {}}}}}))
    .unwrap_err();
    assert_eq!(e, CatalogueError::Duplicate { name: "a".into() });
}

#[test]
fn uninstall_refusals_in_order() {
    let mut c = fixture();
    assert!(matches!(
        c.uninstall_plan("cilium-crds"),
        Err(UninstallError::Refused(UninstallRefusal::Crd(_)))
    ));
    assert!(matches!(
        c.uninstall_plan("coredns"),
        Err(UninstallError::Refused(UninstallRefusal::Core(_)))
    ));
    assert_eq!(c.uninstall_plan("traefik"), Ok(UninstallPlan::NotInstalled));
    for n in [
        "cert-manager",
        "platform-certs",
        "traefik",
        "podplane-operator",
    ] {
        c.components.get_mut(n).unwrap().enabled = true;
    }
    let e = c.uninstall_plan("cert-manager").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot uninstall \"cert-manager\" because it is required by: platform-certs, podplane-operator. Uninstall those first"
    );
    assert_eq!(c.uninstall_plan("traefik"), Ok(UninstallPlan::Disable));
}

#[test]
fn patch_has_only_the_groups_it_sets() {
    let c = fixture();
    let set = c.install_set("cert-manager").unwrap();
    assert_eq!(
        enable_patch(&set, true),
        json!({"spec": {"values": {"platform": {"components": {
            "apps": {"cert-manager": {"enabled": true}},
            "crds": {"cert-manager-crds": {"enabled": true}}}}}}})
    );
    let one = [c.get("traefik").unwrap()];
    let p = enable_patch(&one, false);
    assert!(
        p["spec"]["values"]["platform"]["components"]
            .get("crds")
            .is_none()
    );
}
