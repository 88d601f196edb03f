//! The platform-components values a cluster config implies (all under
//! `platform.components`), merged into the seed's platform-components HelmRelease before the
//! user's inline values and values file:
//!
//! - the components image mirror (`imageMirror`);
//! - the in-cluster registry (`values.zot-registry…zotRegistry`: hostname, bucket, region,
//!   the OIDC settings and CA) when a registry hostname resolves;
//! - the provider's storage driver (`apps.csi-aws-ebs` for AWS);
//! - the secrets operator, the Secrets Store CSI driver and one CSI provider per secrets
//!   provider kind, with the operator's provider configuration and the Vault/OpenBao CA
//!   mounts;
//! - for domains: cert-manager, platform-certs and Traefik with their CRDs, the ingress
//!   certificate's DNS names, the ACME issuer with its DNS-01 solvers, the Traefik ingress
//!   domains and the secret-sync mounts of domains whose DNS credentials come from a
//!   SecretProviderClass.
//!
//! Pure: the OIDC CA, when `oidc.ca_cert` names a file, is read by the caller and passed in.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{
    ClusterConfig, DEFAULT_ACME_SERVER, Domain, DomainProvider, Provider, SecretsProvider,
};

/// The ACME ClusterIssuer the platform-certs chart creates.
pub const ACME_ISSUER: &str = "platform-ingress-acme-clusterissuer";
/// The self-signed ClusterIssuer Traefik's ingress certificate falls back to.
pub const SELFSIGNED_ISSUER: &str = "platform-ingress-selfsigned-clusterissuer";

/// A value the config implies but cannot be derived, with the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster config: {key}: {problem}")]
pub struct DeriveError {
    pub key: String,
    pub problem: String,
}

/// The derived values; `oidc_ca` is the OIDC issuer's CA bundle (PEM) when `oidc.ca_cert`
/// is inline PEM or names a readable file.
pub fn derived_values(cfg: &ClusterConfig, oidc_ca: Option<&str>) -> Result<Value, DeriveError> {
    let c = &cfg.cluster;
    let mut pc = Map::new();
    pc.insert("apps".into(), json!({}));
    if let Some((host, prefix)) = mirror(cfg) {
        pc.insert(
            "imageMirror".into(),
            json!({ "enabled": true, "hostname": host, "prefix": prefix }),
        );
    }
    // Without providers (a local cluster) only a configured hostname counts.
    let registry_host = if c.providers.is_empty() {
        c.registry.hostname.clone()
    } else {
        c.registry_hostname()
    };
    if !registry_host.is_empty() {
        let aws = || c.providers.iter().filter(|p| p.kind == "aws");
        let bucket = if c.providers.is_empty() {
            "registry".to_string()
        } else {
            match aws().find(|p| !p.account.is_empty()) {
                Some(a) => format!("{}-{}-registry", c.id, a.account),
                None => format!("{}-registry", c.id),
            }
        };
        let region = aws()
            .find(|p| !p.region.is_empty())
            .map_or("local".to_string(), |a| a.region.clone());
        let mut oidc = json!({
            "issuer": c.oidc.issuer_url,
            "audience": c.oidc_client_id(),
            "usernameClaim": c.oidc_username_claim(),
            "groupsClaim": c.oidc_groups_claim(),
        });
        if let Some(ca) = oidc_ca {
            oidc["certificateAuthority"] = ca.into();
        }
        child(&mut pc, "values").insert(
            "zot-registry".into(),
            json!({ "platform": { "zotRegistry": {
                "registryHostname": registry_host,
                "storage": { "bucket": bucket, "region": region },
                "oidc": oidc,
            } } }),
        );
    }
    if c.providers.iter().any(|p| p.kind == "aws") {
        enable(&mut pc, "apps", "csi-aws-ebs");
    }
    secrets(cfg, &mut pc);
    if !c.domains.is_empty() {
        domains(cfg, &mut pc)?;
    }
    Ok(json!({ "platform": { "components": pc } }))
}

/// `(host, prefix)` of the components registry mirror when it is enabled; the prefix defaults
/// to `mirror`, and `/` means none.
pub fn mirror(cfg: &ClusterConfig) -> Option<(String, String)> {
    let r = cfg.cluster.components.registry.as_ref()?;
    if !r.mirror.enabled {
        return None;
    }
    let host = cfg.cluster.registry_mirror_hostname();
    if host.is_empty() {
        return None;
    }
    let prefix = if r.mirror.prefix.is_empty() {
        "mirror".to_string()
    } else {
        r.mirror.prefix.trim().trim_matches('/').to_string()
    };
    Some((host, prefix))
}

fn or(s: &str, default: &str) -> String {
    if s.is_empty() { default } else { s }.to_string()
}

/// The object under `key`, made one when absent or not an object.
fn child<'m>(m: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(o) => o,
        _ => unreachable!("made an object above"),
    }
}

fn enable(pc: &mut Map<String, Value>, group: &str, name: &str) {
    child(pc, group).insert(name.into(), json!({ "enabled": true }));
}

/// The secrets operator and CSI driver, one CSI provider per kind, and the operator's view of
/// every provider (names in sorted order, as the config's map keeps them).
fn secrets(cfg: &ClusterConfig, pc: &mut Map<String, Value>) {
    let c = &cfg.cluster;
    let providers = &c.secrets.providers;
    if providers.is_empty() {
        return;
    }
    enable(pc, "crds", "podplane-operator-crds");
    enable(pc, "crds", "secrets-store-csi-driver-crds");
    enable(pc, "apps", "podplane-operator");
    enable(pc, "apps", "secrets-store-csi-driver");
    let operator_view: Map<String, Value> = providers
        .iter()
        .map(|(name, p)| (name.clone(), operator_provider(p)))
        .collect();
    child(pc, "values").insert(
        "podplane-operator".into(),
        json!({ "podplane": { "operator": { "config": {
            "cluster": {
                "id": c.id,
                "oidc": {
                    "issuerURL": c.oidc.issuer_url,
                    "clientID": c.oidc_client_id(),
                    "usernameClaim": c.oidc_username_claim(),
                    "groupsClaim": c.oidc_groups_claim(),
                },
            },
            "secrets": { "providers": operator_view },
        } } } }),
    );
    for (name, p) in providers {
        let component = format!("secrets-store-csi-provider-{}", p.kind);
        match p.kind.as_str() {
            "aws" | "gcp" => enable(pc, "apps", &component),
            "vault" | "openbao" => {
                enable(pc, "apps", &component);
                if !p.ca_cert.is_empty() {
                    provider_ca(child(child(pc, "values"), &component), &p.kind, name, p);
                }
            }
            // The config's validation admits no other kind.
            _ => {}
        }
    }
}

/// One secrets provider as the operator's configuration spells it (camelCase, unset fields
/// left out).
fn operator_provider(p: &SecretsProvider) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), p.kind.clone().into());
    for (k, v) in [
        ("keyPrefix", &p.key_prefix),
        ("objectType", &p.object_type),
        ("region", &p.region),
        ("projectID", &p.project_id),
        ("location", &p.location),
        ("address", &p.address),
        ("mountPath", &p.mount_path),
        ("caCert", &p.ca_cert),
        ("authPath", &p.auth_path),
        ("operatorRole", &p.operator_role),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), v.clone().into());
        }
    }
    Value::Object(m)
}

/// A Vault/OpenBao CSI provider's CA: the chart renders it into the ConfigMap
/// `podplane-secrets-provider-ca-<name>`, mounted read-only into the provider's pods.
fn provider_ca(entry: &mut Map<String, Value>, chart_root: &str, name: &str, p: &SecretsProvider) {
    child(child(child(entry, "podplane"), "secrets"), "providers")
        .insert(name.into(), json!({ "caCert": p.ca_cert }));
    let csi = child(child(entry, chart_root), "csi");
    let volume = format!("provider-ca-{name}");
    push(
        csi,
        "volumes",
        json!({ "name": volume, "configMap": { "name": format!("podplane-secrets-provider-ca-{name}") } }),
    );
    push(
        csi,
        "volumeMounts",
        json!({
            "name": volume,
            "mountPath": format!("/var/run/podplane/secrets-providers/{name}"),
            "readOnly": true,
        }),
    );
}

fn push(m: &mut Map<String, Value>, key: &str, v: Value) {
    match m.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            m.insert(key.into(), Value::Array(vec![v]));
        }
    }
}

/// Whether automated ACME DNS-01 is supported for a domain's DNS provider.
fn supports_acme(p: Option<&DomainProvider>) -> bool {
    p.is_some_and(|p| p.kind == "aws-route53")
}

/// Ingress for the domains: the certificate's names, ACME, Traefik's domains, secret sync.
fn domains(cfg: &ClusterConfig, pc: &mut Map<String, Value>) -> Result<(), DeriveError> {
    let c = &cfg.cluster;
    let dns_names: Vec<String> = c
        .domains
        .iter()
        .flat_map(|d| [d.zone.clone(), format!("*.{}", d.zone)])
        .collect();
    let mut ingress = json!({ "dnsNames": dns_names });
    if let Some(acme) = &c.acme {
        let solvers = solvers(cfg)?;
        if solvers.is_empty() {
            return Err(DeriveError {
                key: "cluster.acme".into(),
                problem:
                    "requires at least one domain with a supported ACME DNS provider (aws-route53)"
                        .into(),
            });
        }
        ingress["acme"] = json!({
            "enabled": true,
            "issuerName": ACME_ISSUER,
            "server": or(&acme.server, DEFAULT_ACME_SERVER),
            "email": acme.email,
            "solvers": solvers,
        });
    }
    let mut certs = json!({ "ingress": ingress });
    if let Some(sync) = secret_sync(&c.domains) {
        certs["secretSync"] = sync;
    }
    for crd in ["cert-manager-crds", "traefik-crds", "gateway-api-crds"] {
        enable(pc, "crds", crd);
    }
    for app in ["cert-manager", "platform-certs", "traefik"] {
        enable(pc, "apps", app);
    }
    let traefik_domains: Vec<Value> = c
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut item = json!({ "zone": d.zone });
            if i == 0 {
                item["default"] = true.into();
            }
            if c.acme.is_some() && supports_acme(d.provider.as_ref()) {
                item["issuerRef"] = json!({ "kind": "ClusterIssuer", "name": ACME_ISSUER });
            }
            item
        })
        .collect();
    let values = child(pc, "values");
    values.insert(
        "platform-certs".into(),
        json!({ "platform": { "certs": certs } }),
    );
    values.insert(
        "traefik".into(),
        json!({ "platform": { "traefik": { "ingress": {
            "enabled": true,
            "issuerRef": { "kind": "ClusterIssuer", "name": SELFSIGNED_ISSUER },
            "domains": traefik_domains,
        } } } }),
    );
    Ok(())
}

/// cert-manager DNS-01 solvers: domains with the same DNS settings share one solver; solvers
/// in the order of their settings, each with its zones sorted.
fn solvers(cfg: &ClusterConfig) -> Result<Vec<Value>, DeriveError> {
    let mut groups: BTreeMap<String, (Value, Vec<String>)> = BTreeMap::new();
    for (i, d) in cfg.cluster.domains.iter().enumerate() {
        let Some(p) = d.provider.as_ref().filter(|p| supports_acme(Some(p))) else {
            continue;
        };
        let region = route53_region(cfg, p).map_err(|problem| DeriveError {
            key: format!("cluster.domains[{i}].provider.region"),
            problem,
        })?;
        let mut route53 = Map::new();
        if !p.hosted_zone_id.is_empty() {
            route53.insert("hostedZoneID".into(), p.hosted_zone_id.clone().into());
        }
        if !region.is_empty() {
            route53.insert("region".into(), region.clone().into());
        }
        let key = format!("aws|{region}|{}", p.hosted_zone_id);
        groups
            .entry(key)
            .or_insert_with(|| (json!({ "route53": route53 }), Vec::new()))
            .1
            .push(d.zone.clone());
    }
    Ok(groups
        .into_values()
        .map(|(mut solver, mut zones)| {
            zones.sort();
            solver["dnsZones"] = zones.into();
            solver
        })
        .collect())
}

/// A Route53 provider's region: its own, else that of the one cluster AWS provider matching
/// its account and profile (empty when none matches).
fn route53_region(cfg: &ClusterConfig, p: &DomainProvider) -> Result<String, String> {
    if !p.region.is_empty() {
        return Ok(p.region.clone());
    }
    let matches: Vec<&Provider> = cfg
        .cluster
        .providers
        .iter()
        .filter(|c| c.kind == "aws")
        .filter(|c| p.account.is_empty() || c.account == p.account)
        .filter(|c| p.profile.is_empty() || c.profile == p.profile)
        .collect();
    match matches.as_slice() {
        [] => Ok(String::new()),
        [one] => Ok(one.region.clone()),
        _ => Err(format!(
            "is required when {} AWS providers match the domain's account and profile",
            matches.len()
        )),
    }
}

/// platform-certs' secret sync: one mount per distinct SecretProviderClass the domains name.
fn secret_sync(domains: &[Domain]) -> Option<Value> {
    let mut seen = std::collections::BTreeSet::new();
    let mounts: Vec<Value> = domains
        .iter()
        .filter_map(|d| d.provider.as_ref())
        .map(|p| p.secret_provider_class_name.as_str())
        .filter(|spc| !spc.is_empty() && seen.insert(*spc))
        .map(|spc| {
            let name = mount_name(spc);
            json!({
                "name": name,
                "secretProviderClassName": spc,
                "mountPath": format!("/mnt/secrets-store/{name}"),
            })
        })
        .collect();
    (!mounts.is_empty()).then(|| json!({ "enabled": true, "mounts": mounts }))
}

/// A SecretProviderClass name as a volume name: lowercase, each run of other characters one
/// `-`, none at either end.
fn mount_name(spc: &str) -> String {
    let mut out = String::new();
    for ch in spc.to_lowercase().chars() {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
#[path = "derived_tests.rs"]
mod tests;
