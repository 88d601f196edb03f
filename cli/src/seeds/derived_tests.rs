use serde_json::{Value, json};

use super::*;

fn cfg(extra: Value) -> ClusterConfig {
    let mut c = json!({"cluster": {
        "id": "c1",
        "oidc": {"issuer_url": "https://auth.example.com"},
        "registry": {"hostname": "registry.example.com"},
        "providers": [{"kind": "aws", "region": "us-east-1", "account": "123456789012"}],
    }});
    crate::seeds::interpolate::merge(&mut c["cluster"], extra);
    serde_json::from_value(c).unwrap()
}

fn pc(c: &ClusterConfig) -> Value {
    derived_values(c, None).unwrap()["platform"]["components"].clone()
}

fn enabled(pc: &Value, group: &str) -> Vec<String> {
    let mut v: Vec<String> = pc[group]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, e)| e["enabled"] == true)
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn registry_bucket_and_region_come_from_the_aws_providers_that_have_them() {
    // The first AWS provider without an account or region does not decide them.
    let c = cfg(json!({"providers": [
        {"kind": "aws", "region": "", "account": ""},
        {"kind": "aws", "region": "eu-west-1", "account": "210987654321"},
    ]}));
    let zot = &pc(&c)["values"]["zot-registry"]["platform"]["zotRegistry"];
    assert_eq!(zot["storage"]["bucket"], "c1-210987654321-registry");
    assert_eq!(zot["storage"]["region"], "eu-west-1");
    assert_eq!(zot["oidc"]["audience"], "c1");
    assert!(zot["oidc"].get("certificateAuthority").is_none());
    let with_ca = derived_values(&c, Some("-----BEGIN CERTIFICATE-----\n")).unwrap();
    assert_eq!(
        with_ca["platform"]["components"]["values"]["zot-registry"]["platform"]["zotRegistry"]["oidc"]
            ["certificateAuthority"],
        "-----BEGIN CERTIFICATE-----\n"
    );
}

#[test]
fn no_secrets_and_no_domains_enable_only_the_provider_driver() {
    let p = pc(&cfg(json!({})));
    assert_eq!(enabled(&p, "apps"), ["csi-aws-ebs"]);
    assert!(p.get("crds").is_none(), "{p}");
    assert!(p["values"].get("podplane-operator").is_none());
    assert!(p["values"].get("traefik").is_none());
}

#[test]
fn secrets_providers_enable_the_operator_the_driver_and_one_provider_per_kind() {
    let c = cfg(json!({"secrets": {"default_provider": "sm", "providers": {
        "sm": {"kind": "aws", "object_type": "secretsmanager", "region": "us-east-1"},
        "vault-a": {"kind": "vault", "address": "https://vault.example.com", "ca_cert": "PEM-A"},
        "bao": {"kind": "openbao", "address": "https://bao.example.com", "auth_path": "k8s"},
    }}, "oidc": {"client_id": "kube", "groups_claim": "roles"}}));
    let p = pc(&c);
    assert_eq!(
        enabled(&p, "crds"),
        ["podplane-operator-crds", "secrets-store-csi-driver-crds"]
    );
    assert_eq!(
        enabled(&p, "apps"),
        [
            "csi-aws-ebs",
            "podplane-operator",
            "secrets-store-csi-driver",
            "secrets-store-csi-provider-aws",
            "secrets-store-csi-provider-openbao",
            "secrets-store-csi-provider-vault",
        ]
    );
    let op = &p["values"]["podplane-operator"]["podplane"]["operator"]["config"];
    assert_eq!(
        op["cluster"],
        json!({"id": "c1", "oidc": {"issuerURL": "https://auth.example.com", "clientID": "kube",
            "usernameClaim": "email", "groupsClaim": "roles"}})
    );
    assert_eq!(
        op["secrets"]["providers"]["sm"],
        json!({"kind": "aws", "objectType": "secretsmanager", "region": "us-east-1"})
    );
    assert_eq!(
        op["secrets"]["providers"]["bao"],
        json!({"kind": "openbao", "address": "https://bao.example.com", "authPath": "k8s"})
    );
    // Vault with a CA: the chart gets it and mounts it; OpenBao without one gets nothing.
    let v = &p["values"]["secrets-store-csi-provider-vault"];
    assert_eq!(
        v["podplane"]["secrets"]["providers"]["vault-a"]["caCert"],
        "PEM-A"
    );
    assert_eq!(
        v["vault"]["csi"]["volumes"],
        json!([{"name": "provider-ca-vault-a",
                "configMap": {"name": "podplane-secrets-provider-ca-vault-a"}}])
    );
    assert_eq!(
        v["vault"]["csi"]["volumeMounts"],
        json!([{"name": "provider-ca-vault-a",
                "mountPath": "/var/run/podplane/secrets-providers/vault-a", "readOnly": true}])
    );
    assert!(
        p["values"]
            .get("secrets-store-csi-provider-openbao")
            .is_none()
    );
}

#[test]
fn domains_enable_ingress_with_names_issuers_and_acme_solvers() {
    let c = cfg(json!({
        "acme": {"email": "ops@example.com"},
        "domains": [
            {"zone": "b.example.com", "provider": {"kind": "aws-route53", "hosted_zone_id": "Z2"}},
            {"zone": "manual.example.org"},
            {"zone": "a.example.com", "provider": {"kind": "aws-route53", "hosted_zone_id": "Z2"}},
            {"zone": "c.example.net", "provider": {"kind": "aws-route53", "region": "eu-west-1",
                "secret_provider_class_name": "DNS Creds_1"}},
            {"zone": "cf.example.io", "provider": {"kind": "cloudflare",
                "secret_provider_class_name": "DNS Creds_1"}},
        ],
    }));
    let p = pc(&c);
    assert_eq!(
        enabled(&p, "crds"),
        ["cert-manager-crds", "gateway-api-crds", "traefik-crds"]
    );
    assert_eq!(
        enabled(&p, "apps"),
        ["cert-manager", "csi-aws-ebs", "platform-certs", "traefik"]
    );
    let certs = &p["values"]["platform-certs"]["platform"]["certs"];
    assert_eq!(
        certs["ingress"]["dnsNames"],
        json!([
            "b.example.com",
            "*.b.example.com",
            "manual.example.org",
            "*.manual.example.org",
            "a.example.com",
            "*.a.example.com",
            "c.example.net",
            "*.c.example.net",
            "cf.example.io",
            "*.cf.example.io"
        ])
    );
    let acme = &certs["ingress"]["acme"];
    assert_eq!(acme["server"], DEFAULT_ACME_SERVER);
    assert_eq!(acme["email"], "ops@example.com");
    assert_eq!(acme["issuerName"], ACME_ISSUER);
    // One solver per distinct (region, zone id), in that order; zones sorted; the region from
    // the one AWS provider when the domain names none.
    assert_eq!(
        acme["solvers"],
        json!([
            {"route53": {"region": "eu-west-1"}, "dnsZones": ["c.example.net"]},
            {"route53": {"hostedZoneID": "Z2", "region": "us-east-1"},
             "dnsZones": ["a.example.com", "b.example.com"]},
        ])
    );
    assert_eq!(
        certs["secretSync"],
        json!({"enabled": true, "mounts": [{"name": "dns-creds-1",
            "secretProviderClassName": "DNS Creds_1", "mountPath": "/mnt/secrets-store/dns-creds-1"}]})
    );
    let ingress = &p["values"]["traefik"]["platform"]["traefik"]["ingress"];
    assert_eq!(ingress["issuerRef"]["name"], SELFSIGNED_ISSUER);
    let acme_ref = json!({"kind": "ClusterIssuer", "name": ACME_ISSUER});
    assert_eq!(
        ingress["domains"],
        json!([
            {"zone": "b.example.com", "default": true, "issuerRef": acme_ref},
            {"zone": "manual.example.org"},
            {"zone": "a.example.com", "issuerRef": acme_ref},
            {"zone": "c.example.net", "issuerRef": acme_ref},
            {"zone": "cf.example.io"},
        ])
    );
}

#[test]
fn domains_without_acme_get_self_signed_certificates_only() {
    let c = cfg(json!({"domains": [
        {"zone": "example.com", "provider": {"kind": "aws-route53"}},
    ]}));
    let p = pc(&c);
    let ingress = &p["values"]["platform-certs"]["platform"]["certs"]["ingress"];
    assert!(ingress.get("acme").is_none(), "{ingress}");
    assert_eq!(
        p["values"]["traefik"]["platform"]["traefik"]["ingress"]["domains"],
        json!([{"zone": "example.com", "default": true}])
    );
}

#[test]
fn an_ambiguous_route53_region_names_the_key_to_set() {
    let c = cfg(json!({
        "providers": [
            {"kind": "aws", "region": "us-east-1", "account": "111111111111"},
            {"kind": "aws", "region": "eu-west-1", "account": "222222222222"},
        ],
        "acme": {"email": "ops@example.com"},
        "domains": [{"zone": "example.com", "provider": {"kind": "aws-route53"}}],
    }));
    let e = derived_values(&c, None).unwrap_err();
    assert_eq!(e.key, "cluster.domains[0].provider.region");
    assert!(e.problem.contains("2 AWS providers"), "{e}");
    // Naming the account picks one.
    let c = cfg(json!({
        "providers": [
            {"kind": "aws", "region": "us-east-1", "account": "111111111111"},
            {"kind": "aws", "region": "eu-west-1", "account": "222222222222"},
        ],
        "acme": {"email": "ops@example.com"},
        "domains": [{"zone": "example.com",
            "provider": {"kind": "aws-route53", "account": "222222222222"}}],
    }));
    assert_eq!(
        pc(&c)["values"]["platform-certs"]["platform"]["certs"]["ingress"]["acme"]["solvers"],
        json!([{"route53": {"region": "eu-west-1"}, "dnsZones": ["example.com"]}])
    );
}

#[test]
fn acme_without_a_supported_dns_provider_is_refused() {
    let c = cfg(json!({"acme": {"email": "ops@example.com"},
        "domains": [{"zone": "example.com"}]}));
    let e = derived_values(&c, None).unwrap_err();
    assert_eq!(e.key, "cluster.acme");
}

#[test]
fn mount_names_are_safe_volume_names() {
    assert_eq!(mount_name("DNS Creds_1"), "dns-creds-1");
    assert_eq!(mount_name("--a..b--"), "a-b");
    assert_eq!(mount_name("Ünïcode"), "n-code");
    assert_eq!(mount_name("***"), "");
}
