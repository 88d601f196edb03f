//! A seed made into one cluster's `bootstrap.netsy`: the seed's records (JSON Kubernetes
//! objects) rewritten for the cluster config, in this order:
//!
//! 1. service network: when `kubernetes.service_cidr` is set, the `ServiceCIDR` record, every
//!    Service's cluster IPs (the API service gets network+1, CoreDNS its reserved address, any
//!    other service the same offset from the new network as it had from the seed's), the
//!    CoreDNS HelmRelease's service values, and the `IPAddress` allocation records of the
//!    rewritten services (renamed to the new address, dropped for a family no longer present,
//!    added, copied from the service's existing one, for a family it gains);
//! 2. the platform-components HelmRelease's `spec.values`, deep-merged with the values derived
//!    from the config (see [`super::derived`]), then the inline values, then the values file
//!    (maps merge, everything else replaces);
//! 3. the components GitRepository's url, secretRef and ref when `components.source` is set;
//! 4. with the registry mirror enabled, every `image` string at any depth prefixed with
//!    `<mirror host>/<prefix>/` (see [`super::images`]);
//!
//! then renumbered (records dropped in step 1 leave no gap; `_netsy` stays revision 1).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::derived::{DeriveError, derived_values, mirror};
use super::images;
use super::netsy::{self, Record};
use crate::config::ClusterConfig;
use crate::config::{ServiceCidrError, ServiceNetwork, service_network};

pub const SERVICE_CIDR_KEY: &str = "/registry/servicecidrs/kubernetes";
pub const SERVICES_PREFIX: &str = "/registry/services/specs/";
pub const IPADDRESSES_PREFIX: &str = "/registry/ipaddresses/";
pub const COREDNS_RELEASE_KEY: &str =
    "/registry/helm.toolkit.fluxcd.io/helmreleases/platform-coredns/coredns";
pub const COMPONENTS_RELEASE_KEY: &str =
    "/registry/helm.toolkit.fluxcd.io/helmreleases/platform-components/platform-components";
pub const COMPONENTS_SOURCE_KEY: &str =
    "/registry/source.toolkit.fluxcd.io/gitrepositories/platform-components/podplane-components";

#[derive(Debug, thiserror::Error)]
pub enum InterpolateError {
    #[error("seed {file}: record {key:?}: {problem}")]
    Record {
        file: String,
        key: String,
        problem: String,
    },
    #[error("seed {file}: {problem}")]
    Seed { file: String, problem: String },
    #[error("{what}: {problem}")]
    Values { what: String, problem: String },
    #[error("cluster config: kubernetes.service_cidr: {0}")]
    ServiceCidr(#[source] ServiceCidrError),
    #[error(transparent)]
    Derive(#[from] DeriveError),
    #[error(transparent)]
    Netsy(#[from] netsy::NetsyError),
}

/// What the cluster adds to a seed.
pub struct Inputs<'a> {
    pub cfg: &'a ClusterConfig,
    /// The OIDC issuer's CA bundle (PEM) for the registry's token checks, when
    /// `oidc.ca_cert` is inline PEM or a file (read by the caller).
    pub oidc_ca: Option<String>,
    /// Values applied after the derived ones (YAML or JSON), and where they came from.
    pub values_inline: Option<(&'a str, String)>,
    /// Values applied last (YAML or JSON), and the file's name.
    pub values_file: Option<(&'a str, String)>,
}

/// Parses a values document (YAML, of which JSON is a subset) into a JSON object.
pub fn parse_values(text: &str, what: &str) -> Result<Value, InterpolateError> {
    let bad = |problem: String| InterpolateError::Values {
        what: what.to_string(),
        problem,
    };
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value =
        serde_norway::from_str(text).map_err(|e| bad(format!("not valid YAML or JSON: {e}")))?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(bad(
            "must be a map of values (e.g. `platform:\\n  components: …`)".into(),
        )),
    }
}

/// Deep merge: maps merge key by key, anything else in `over` replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// `clusterIP`, `clusterIPs`, `ipFamilies`, `ipFamilyPolicy` for `ips`; a dual-stack policy
/// already set (`RequireDualStack`) is kept.
fn service_ip_fields(ips: &[String], old_policy: Option<&str>) -> Value {
    let families: Vec<&str> = ips
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| family(&ip))
        .collect();
    let policy = match (ips.len(), old_policy) {
        (1, _) => "SingleStack",
        (_, Some(p)) if p != "SingleStack" => p,
        _ => "PreferDualStack",
    };
    json!({
        "clusterIP": ips.first(),
        "clusterIPs": ips,
        "ipFamilies": families,
        "ipFamilyPolicy": policy,
    })
}

fn key_of(r: &Record) -> String {
    String::from_utf8_lossy(&r.key).into_owned()
}

/// Rewrites `records` (a seed's, in file order) for the cluster; `file` names the seed.
pub fn interpolate(
    mut records: Vec<Record>,
    file: &str,
    inputs: &Inputs<'_>,
) -> Result<Vec<Record>, InterpolateError> {
    let cfg = inputs.cfg;
    let rec_err = |key: &str, problem: String| InterpolateError::Record {
        file: file.to_string(),
        key: key.to_string(),
        problem,
    };
    let index: BTreeMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (key_of(r), i))
        .collect();
    let get = |i: usize, records: &[Record]| parse(records, i, file);
    let mut drop = vec![false; records.len()];

    // 1. Service network.
    if !cfg.cluster.kubernetes.service_cidr.is_empty() {
        let net = service_network(&cfg.cluster.kubernetes.service_cidr)
            .map_err(InterpolateError::ServiceCidr)?;
        let mut out = Rewrites {
            values: BTreeMap::new(),
            keys: BTreeMap::new(),
            drop,
            added: Vec::new(),
        };
        rewrite_services(&records, &index, &net, file, &cfg.cluster.id, &mut out)?;
        for (i, v) in out.values {
            records[i].value = to_bytes(&v);
        }
        for (i, k) in out.keys {
            records[i].key = k;
        }
        drop = out.drop;
        // New allocation records go last; renumbering gives them the next revisions.
        drop.extend(std::iter::repeat_n(false, out.added.len()));
        records.extend(out.added);
    }

    // 2. platform-components values.
    let Some(&hr) = index.get(COMPONENTS_RELEASE_KEY) else {
        return Err(InterpolateError::Seed {
            file: file.to_string(),
            problem: format!(
                "podplane seed file does not contain the platform-components HelmRelease at {COMPONENTS_RELEASE_KEY}; is this a Podplane seed (recommended or minimal)?"
            ),
        });
    };
    let mut release = get(hr, &records)?;
    check_kind(
        &release,
        "helm.toolkit.fluxcd.io/",
        "HelmRelease",
        "platform-components",
    )
    .map_err(|p| rec_err(COMPONENTS_RELEASE_KEY, p))?;
    let mut values = release["spec"]
        .get("values")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    merge(&mut values, derived_values(cfg, inputs.oidc_ca.as_deref())?);
    for (text, what) in [&inputs.values_inline, &inputs.values_file]
        .into_iter()
        .flatten()
    {
        merge(&mut values, parse_values(text, what)?);
    }
    object_at(&mut release, &["spec"])
        .map_err(|p| rec_err(COMPONENTS_RELEASE_KEY, p))?
        .insert("values".into(), values);
    records[hr].value = to_bytes(&release);

    // 3. components source.
    if let Some(src) = &cfg.cluster.components.source {
        let Some(&gi) = index.get(COMPONENTS_SOURCE_KEY) else {
            return Err(InterpolateError::Seed {
                file: file.to_string(),
                problem: format!(
                    "components.source is set but the seed has no GitRepository at {COMPONENTS_SOURCE_KEY}"
                ),
            });
        };
        let mut repo = get(gi, &records)?;
        check_kind(
            &repo,
            "source.toolkit.fluxcd.io/",
            "GitRepository",
            "podplane-components",
        )
        .map_err(|p| rec_err(COMPONENTS_SOURCE_KEY, p))?;
        let spec = repo["spec"].as_object_mut().ok_or_else(|| {
            rec_err(
                COMPONENTS_SOURCE_KEY,
                "the GitRepository has no spec".into(),
            )
        })?;
        spec.insert("url".into(), src.url.clone().into());
        match &src.secret_ref {
            Some(s) => {
                spec.insert("secretRef".into(), json!({ "name": s.name }));
            }
            None => {
                spec.remove("secretRef");
            }
        }
        let r = &src.git_ref;
        let sel = [
            ("branch", &r.branch),
            ("tag", &r.tag),
            ("semver", &r.semver),
            ("commit", &r.commit),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_empty());
        match sel {
            Some((k, v)) => {
                spec.insert("ref".into(), json!({ k: v }));
            }
            None => {
                spec.remove("ref");
            }
        }
        records[gi].value = to_bytes(&repo);
    }

    // 4. image mirror.
    if let Some((host, prefix)) = mirror(cfg) {
        let lead = if prefix.is_empty() {
            format!("{host}/")
        } else {
            format!("{host}/{prefix}/")
        };
        for r in records.iter_mut() {
            if let Some(v) = images::prefix_record(&r.value, &lead) {
                r.value = v;
            }
        }
    }

    let mut out: Vec<Record> = records
        .into_iter()
        .zip(drop)
        .filter(|(_, d)| !d)
        .map(|(r, _)| r)
        .collect();
    netsy::renumber(&mut out, file)?;
    Ok(out)
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // Serialising a Value cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn check_kind(v: &Value, group: &str, kind: &str, name: &str) -> Result<(), String> {
    let api = v["apiVersion"].as_str().unwrap_or_default();
    let k = v["kind"].as_str().unwrap_or_default();
    let n = v["metadata"]["name"].as_str().unwrap_or_default();
    if !api.starts_with(group) || k != kind || n != name {
        return Err(format!(
            "expected a {group}* {kind} named {name:?}, found {k:?} {api:?} named {n:?}"
        ));
    }
    Ok(())
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(like: IpAddr, v: u128) -> Option<IpAddr> {
    match like {
        IpAddr::V4(_) => u32::try_from(v).ok().map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(_) => Some(IpAddr::V6(v.into())),
    }
}

/// The object at `path` below `v`, created where missing; an error (not a panic, as
/// `serde_json`'s indexing would) when something on the way is not an object.
fn object_at<'v>(v: &'v mut Value, path: &[&str]) -> Result<&'v mut Map<String, Value>, String> {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else {
            return Err(format!("{} is not an object", path[..i].join(".")));
        };
        cur = m.entry(k.to_string()).or_insert(Value::Null);
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    match cur {
        Value::Object(m) => Ok(m),
        _ => Err(format!("{} is not an object", path.join("."))),
    }
}

/// Record `i`'s value as JSON.
fn parse(records: &[Record], i: usize, file: &str) -> Result<Value, InterpolateError> {
    serde_json::from_slice(&records[i].value).map_err(|e| InterpolateError::Record {
        file: file.to_string(),
        key: key_of(&records[i]),
        problem: format!("value is not JSON: {e}"),
    })
}

/// What the service-network step changes: new values and keys by record index, records
/// dropped, records added.
struct Rewrites {
    values: BTreeMap<usize, Value>,
    keys: BTreeMap<usize, Vec<u8>>,
    drop: Vec<bool>,
    added: Vec<Record>,
}

fn rewrite_services(
    records: &[Record],
    index: &BTreeMap<String, usize>,
    net: &ServiceNetwork,
    file: &str,
    cluster_id: &str,
    out: &mut Rewrites,
) -> Result<(), InterpolateError> {
    let Rewrites {
        values,
        keys,
        drop,
        added,
    } = out;
    let rec_err = |key: &str, problem: String| InterpolateError::Record {
        file: file.to_string(),
        key: key.to_string(),
        problem,
    };
    let Some(&ci) = index.get(SERVICE_CIDR_KEY) else {
        return Err(InterpolateError::Seed {
            file: file.to_string(),
            problem: "podplane seed file does not contain a ServiceCIDR record".into(),
        });
    };
    let mut cidr = parse(records, ci, file)?;
    if cidr["kind"] != "ServiceCIDR" {
        return Err(rec_err(
            SERVICE_CIDR_KEY,
            "expected kind ServiceCIDR".into(),
        ));
    }
    // The seed's networks: the base other services' offsets are measured from.
    let old: Vec<ipnet::IpNet> = cidr["spec"]["cidrs"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let old4 = old
        .iter()
        .find(|n| matches!(n, ipnet::IpNet::V4(_)))
        .copied()
        .ok_or_else(|| rec_err(SERVICE_CIDR_KEY, "spec.cidrs has no IPv4 network".into()))?;
    object_at(&mut cidr, &["spec"])
        .map_err(|p| rec_err(SERVICE_CIDR_KEY, p))?
        .insert(
            "cidrs".into(),
            net.cidrs.iter().map(ToString::to_string).collect(),
        );
    values.insert(ci, cidr);

    // (existing allocation, new address) for families services gain.
    let mut gained: Vec<(IpAddr, IpAddr)> = Vec::new();
    // Old IP → new IPs (per family, in the new order) of every rewritten service.
    let mut moved: BTreeMap<IpAddr, Vec<IpAddr>> = BTreeMap::new();
    for (key, &i) in index.range(SERVICES_PREFIX.to_string()..) {
        let Some(rest) = key.strip_prefix(SERVICES_PREFIX) else {
            break;
        };
        let mut svc = parse(records, i, file)?;
        if svc["kind"] != "Service" {
            return Err(rec_err(key, "expected kind Service".into()));
        }
        let spec = &svc["spec"];
        let old_ips: Vec<IpAddr> = spec["clusterIPs"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
            .or_else(|| spec["clusterIP"].as_str()?.parse().ok().map(|ip| vec![ip]))
            .unwrap_or_default();
        // Headless services (clusterIP None) and ExternalName ones keep what they have.
        let Some(first) = old_ips.iter().find(|ip| ip.is_ipv4()).copied() else {
            continue;
        };
        let new_ips: Vec<IpAddr> = match rest {
            "default/kubernetes" => net.api.clone(),
            "platform-coredns/platform-coredns" => net.dns.clone(),
            _ => {
                if !old4.contains(&first) {
                    return Err(rec_err(
                        key,
                        format!("cluster IP {first} is outside the seed's service network {old4}"),
                    ));
                }
                let offset = to_u128(first) - to_u128(old4.network());
                net.cidrs
                    .iter()
                    .map(|n| {
                        from_u128(n.network(), to_u128(n.network()) + offset)
                            .filter(|ip| n.contains(ip))
                            .ok_or_else(|| {
                                rec_err(
                                    key,
                                    format!(
                                        "cluster IP {first} is {offset} addresses into {old4}, which does not fit in service_cidr {n}"
                                    ),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        // A family the service gains (a single-stack seed, a dual-stack cluster): its
        // allocation is made from the one the service had.
        for new_ip in &new_ips {
            if !old_ips.iter().any(|o| o.is_ipv4() == new_ip.is_ipv4()) {
                gained.push((first, *new_ip));
            }
        }
        for old_ip in &old_ips {
            let same: Vec<IpAddr> = new_ips
                .iter()
                .filter(|n| n.is_ipv4() == old_ip.is_ipv4())
                .copied()
                .collect();
            moved.insert(*old_ip, same);
        }
        let strs: Vec<String> = new_ips.iter().map(ToString::to_string).collect();
        let fields = service_ip_fields(&strs, spec["ipFamilyPolicy"].as_str());
        if let (Some(spec), Value::Object(f)) = (svc["spec"].as_object_mut(), fields) {
            spec.extend(f);
        }
        values.insert(i, svc);
    }

    if let Some(&hi) = index.get(COREDNS_RELEASE_KEY) {
        let mut hr = parse(records, hi, file)?;
        let strs: Vec<String> = net.dns.iter().map(ToString::to_string).collect();
        let old_policy = hr["spec"]["values"]["coredns"]["service"]["ipFamilyPolicy"]
            .as_str()
            .map(str::to_string);
        let fields = service_ip_fields(&strs, old_policy.as_deref());
        let service = object_at(&mut hr, &["spec", "values", "coredns", "service"])
            .map_err(|p| rec_err(COREDNS_RELEASE_KEY, p))?;
        if let Value::Object(f) = fields {
            service.extend(f);
        }
        values.insert(hi, hr);
    }

    // IPAddress allocations of the moved services: renamed, or dropped for a family gone.
    let mut renamed: Vec<(usize, IpAddr)> = Vec::new();
    for (key, &i) in index.range(IPADDRESSES_PREFIX.to_string()..) {
        let Some(rest) = key.strip_prefix(IPADDRESSES_PREFIX) else {
            break;
        };
        let Ok(ip) = rest.parse::<IpAddr>() else {
            continue;
        };
        match moved.get(&ip).map(Vec::as_slice) {
            None => {}
            Some([]) => drop[i] = true,
            Some([new, ..]) => renamed.push((i, *new)),
        }
    }
    for (i, new) in renamed {
        let mut v = parse(records, i, file)?;
        let key = key_of(&records[i]);
        object_at(&mut v, &["metadata"])
            .map_err(|p| rec_err(&key, p))?
            .insert("name".into(), new.to_string().into());
        values.insert(i, v);
        keys.insert(i, format!("{IPADDRESSES_PREFIX}{new}").into_bytes());
    }
    for (from, new) in gained {
        let new_key = format!("{IPADDRESSES_PREFIX}{new}");
        // Without an allocation to copy there is nothing to add: the API server's IP repair
        // loop allocates a service's missing addresses itself.
        let Some(&t) = index.get(&format!("{IPADDRESSES_PREFIX}{from}")) else {
            continue;
        };
        if index.contains_key(&new_key) {
            continue;
        }
        let mut v = parse(records, t, file)?;
        let meta = object_at(&mut v, &["metadata"]).map_err(|p| rec_err(&new_key, p))?;
        meta.insert("name".into(), new.to_string().into());
        meta.insert("uid".into(), derived_uid(cluster_id, &new_key).into());
        if let Some(Value::Object(labels)) = meta.get_mut("labels")
            && labels.contains_key(IP_FAMILY_LABEL)
        {
            labels.insert(IP_FAMILY_LABEL.into(), family(&new).into());
        }
        let mut r = records[t].clone();
        r.key = new_key.into_bytes();
        r.value = to_bytes(&v);
        added.push(r);
    }
    Ok(())
}

/// The label Kubernetes puts on an IPAddress naming its family.
const IP_FAMILY_LABEL: &str = "ipaddress.kubernetes.io/ip-family";

/// A UID for an object the seed did not have: a UUID (version 8, "custom") made from the
/// SHA-256 of the cluster ID and the object's key, so reruns give the same bytes and two
/// clusters never share one.
fn derived_uid(cluster_id: &str, key: &str) -> String {
    use vmagent::fetch::hash::Hasher;
    use vmagent::manifest::Algorithm;
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(b"podplane-seed-uid\0");
    h.update(cluster_id.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    let hex = h.finish().hex;
    // Version nibble 8; variant bits 10 (the high bits of the 17th hex digit).
    let variant = ["8", "9", "a", "b"][usize::from_str_radix(&hex[16..17], 16).unwrap_or(0) & 3];
    format!(
        "{}-{}-8{}-{variant}{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
