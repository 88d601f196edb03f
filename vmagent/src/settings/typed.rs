//! The node's settings, typed: [`NodeSettings`] is parsed once from the merged layers
//! ([`Settings`]) and is all rendering reads. Every key is named through its contract enum
//! ([`UserDataKey`], [`DetectedKey`], [`MutableKey`]), checked by the one rule the contract gives
//! it ([`Check::validate`](crate::contract::Check::validate), the rule recv applies to a
//! delivery), and defaulted only from the contract. A key outside the three contracts is an
//! error, so a stray or misspelt key is not silently ignored.
//!
//! Where a rendered file carries a value as written, the text is kept next to the parsed value
//! ([`AsWritten`]): `url::Url` normalises (it adds a `/` to an empty path), and kube-apiserver
//! compares issuers byte for byte.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::Url;

use super::{Settings, SettingsError};
use crate::contract::otlp::{Otlp, otlp_endpoint};
use crate::contract::{
    CheckError, DetectedKey as D, EnvKey, Hostname, Kind, MutableKey as M, Provider,
    UserDataKey as U, value,
};

/// A parsed value with the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsWritten<T> {
    pub text: String,
    pub value: T,
}

/// An S3-compatible bucket's settings (netsy's, the registry's, telemetry's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    pub bucket: Option<String>,
    /// A bare `host[:port]` or an `http(s)://` URL, as written.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub assume_role: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// The Kubernetes settings of mutable.env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kube {
    pub api_port: u16,
    pub api_etcd_servers: AsWritten<Vec<Url>>,
    pub api_internal_lb_hostname: Option<Hostname>,
    pub api_public_hostname: Option<Hostname>,
    pub cluster_cidr: AsWritten<Vec<IpNet>>,
    pub cluster_dns: Vec<IpAddr>,
    pub log_level: u8,
    pub node_cidr_mask_size_ipv4: u8,
    pub node_cidr_mask_size_ipv6: u8,
    pub service_account_issuer: Option<AsWritten<Url>>,
    pub service_cluster_ip_range: AsWritten<Vec<IpNet>>,
}

/// OIDC for kube-apiserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    /// The CA's PEM, decoded from base64.
    pub ca_cert: Option<Vec<u8>>,
    pub issuer: Option<AsWritten<Url>>,
    pub signing_algs: String,
}

/// The local registry (zot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub enabled: bool,
    pub hostname: Option<Hostname>,
    pub bucket: Bucket,
}

/// fluent-bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    pub enabled: bool,
    pub log_cloudinit: bool,
    /// Unit names without `.service`, repeats dropped, in the order given.
    pub log_services: Vec<String>,
    pub otlp_endpoint: Option<AsWritten<Otlp>>,
    pub s3: Bucket,
}

/// The node's settings, typed. Built once by [`NodeSettings::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    // user-data.env
    pub provider: Provider,
    pub instance_id: Option<Hostname>,
    pub cluster_id: Option<String>,
    pub region: String,
    pub zone: String,
    pub instance_type: String,
    pub aws_account_id: Option<String>,
    pub google_project_id: Option<String>,
    /// The Nstance CA's PEM, decoded from base64.
    pub nstance_ca_cert: Option<Vec<u8>>,
    pub nstance_registration_addr: Option<String>,
    pub nstance_agent_addr: Option<String>,
    pub immutable_ssh_authorized_keys: String,
    // detected.env
    pub vmconfig_kind: Option<Kind>,
    pub vmconfig_base_kind: String,
    pub instance_provider_id: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub netdev: String,
    pub hostname: String,
    pub fqdn: String,
    // mutable.env
    pub aws_s3_use_path_style: Option<bool>,
    pub kube: Kube,
    pub netsy: Bucket,
    pub oidc: Oidc,
    pub registry: Registry,
    pub ssh_authorized_keys: String,
    pub telemetry: Telemetry,
}

/// Reads keys from the merged layers, each through its rule, and remembers which it read.
struct Reader<'a> {
    s: &'a Settings,
    read: BTreeSet<&'static str>,
}

impl<'a> Reader<'a> {
    fn bad<K: EnvKey>(k: K, value: &str, source: CheckError) -> SettingsError {
        SettingsError::Bad {
            key: k.name(),
            file: K::FILE,
            value: value.into(),
            source,
        }
    }

    /// The value as written (`""` when unset), checked by the key's rule.
    fn exact<K: EnvKey>(&mut self, k: K) -> Result<&'a str, SettingsError> {
        self.read.insert(k.name());
        let v = self.s.get(k.name());
        k.check().validate(v).map_err(|e| Self::bad(k, v, e))?;
        Ok(v)
    }

    /// The value, or the contract's default when unset or empty (upstream's `${X:-default}`).
    fn raw<K: EnvKey>(&mut self, k: K) -> Result<&'a str, SettingsError> {
        Ok(match self.exact(k)? {
            "" => k.default(),
            v => v,
        })
    }

    fn text<K: EnvKey>(&mut self, k: K) -> Result<String, SettingsError> {
        self.raw(k).map(str::to_string)
    }

    fn opt<K: EnvKey>(&mut self, k: K) -> Result<Option<String>, SettingsError> {
        Ok(Some(self.raw(k)?)
            .filter(|v| !v.is_empty())
            .map(String::from))
    }

    /// A value parsed by `f` (the rule has passed), `None` when empty.
    fn parsed<K: EnvKey, T>(
        &mut self,
        k: K,
        f: impl FnOnce(&str) -> Result<T, CheckError>,
    ) -> Result<Option<T>, SettingsError> {
        match self.raw(k)? {
            "" => Ok(None),
            v => f(v).map(Some).map_err(|e| Self::bad(k, v, e)),
        }
    }

    fn written<K: EnvKey, T>(
        &mut self,
        k: K,
        f: impl FnOnce(&str) -> Result<T, CheckError>,
    ) -> Result<Option<AsWritten<T>>, SettingsError> {
        let text = self.raw(k)?;
        self.parsed(k, f).map(|o| {
            o.map(|value| AsWritten {
                text: text.into(),
                value,
            })
        })
    }

    /// A value every node has (the contract gives it a default).
    fn needed<T>(&self, k: impl EnvKey, v: Option<T>) -> Result<T, SettingsError> {
        v.ok_or_else(|| SettingsError::Required {
            key: k.name().into(),
            why: format!("the contract's default for {} is empty", k.name()),
        })
    }

    fn bool(&mut self, k: impl EnvKey) -> Result<Option<bool>, SettingsError> {
        self.parsed(k, |v| Ok(v == "true"))
    }

    fn number<T: std::str::FromStr>(&mut self, k: impl EnvKey) -> Result<T, SettingsError> {
        // The rule has passed, so this only fails for a type narrower than the rule's range.
        let rule = match k.check() {
            crate::contract::Check::Number(max) => CheckError::Number { max },
            _ => CheckError::Port,
        };
        let v = self.parsed(k, |v| v.parse::<T>().map_err(|_| rule))?;
        self.needed(k, v)
    }

    fn pem(&mut self, k: impl EnvKey) -> Result<Option<Vec<u8>>, SettingsError> {
        use base64::Engine;
        let v = self.raw(k)?;
        if v.is_empty() {
            return Ok(None);
        }
        base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .map(Some)
            .map_err(|source| SettingsError::Base64 {
                key: k.name(),
                file: file_of(k),
                source,
            })
    }

    fn bucket(&mut self, keys: [M; 6]) -> Result<Bucket, SettingsError> {
        let [
            bucket,
            endpoint,
            region,
            assume_role,
            access_key_id,
            secret_access_key,
        ] = keys;
        Ok(Bucket {
            bucket: self.opt(bucket)?,
            endpoint: self.opt(endpoint)?,
            region: self.opt(region)?,
            assume_role: self.opt(assume_role)?,
            access_key_id: self.opt(access_key_id)?,
            secret_access_key: self.opt(secret_access_key)?,
        })
    }
}

fn file_of<K: EnvKey>(_: K) -> &'static str {
    K::FILE
}

fn is_contract_key(k: &str) -> bool {
    U::parse(k).is_some() || D::parse(k).is_some() || M::parse(k).is_some()
}

impl NodeSettings {
    /// Parse the merged layers. Errors name the key, its file, the value and what it must be.
    pub fn parse(s: &Settings) -> Result<NodeSettings, SettingsError> {
        Self::parse_tracked(s).0
    }

    /// [`NodeSettings::parse`], and the keys it read.
    fn parse_tracked(
        s: &Settings,
    ) -> (Result<NodeSettings, SettingsError>, BTreeSet<&'static str>) {
        let mut r = Reader {
            s,
            read: BTreeSet::new(),
        };
        let parsed = Self::read(&mut r, s);
        (parsed, r.read)
    }

    fn read(r: &mut Reader, s: &Settings) -> Result<NodeSettings, SettingsError> {
        if let Some((key, _)) = s.iter().find(|(k, _)| !is_contract_key(k)) {
            return Err(SettingsError::Unknown { key: key.into() });
        }
        let provider = r
            .parsed(U::ProviderKind, |v| Ok(v.parse::<Provider>()?))?
            .ok_or_else(|| SettingsError::Required {
                key: U::ProviderKind.name().into(),
                why: format!(
                    "expected one of {} (user-data.env; vmagent bootstrap writes it)",
                    Provider::EXPECTED
                ),
            })?;
        let aws_account_id = r.opt(U::AwsAccountId)?;
        let cluster_id = r.opt(U::ClusterId)?;
        if provider == Provider::Aws {
            let why = "AWS nodes need it (user-data.env)";
            for (k, v) in [
                (U::AwsAccountId, &aws_account_id),
                (U::ClusterId, &cluster_id),
            ] {
                if v.is_none() {
                    return Err(SettingsError::Required {
                        key: k.name().into(),
                        why: why.into(),
                    });
                }
            }
        }
        let kube = Kube {
            api_port: r.number(M::KubeApiPort)?,
            api_etcd_servers: {
                let v = r.written(M::KubeApiEtcdServers, |v| {
                    v.split(',').map(value::http_url).collect()
                })?;
                r.needed(M::KubeApiEtcdServers, v)?
            },
            api_internal_lb_hostname: r.parsed(M::KubeApiInternalLbHostname, str::parse)?,
            api_public_hostname: r.parsed(M::KubeApiPublicHostname, str::parse)?,
            cluster_cidr: {
                let v = r.written(M::KubeClusterCidr, value::cidrs)?;
                r.needed(M::KubeClusterCidr, v)?
            },
            cluster_dns: {
                let v = r.parsed(M::KubeClusterDns, value::ip_list)?;
                r.needed(M::KubeClusterDns, v)?
            },
            log_level: r.number(M::KubeLogLevel)?,
            node_cidr_mask_size_ipv4: r.number(M::KubeNodeCidrMaskSizeIpv4)?,
            node_cidr_mask_size_ipv6: r.number(M::KubeNodeCidrMaskSizeIpv6)?,
            service_account_issuer: r.written(M::KubeServiceAccountIssuer, |v| {
                crate::contract::service_account_issuer_url(v).map_err(CheckError::Issuer)
            })?,
            service_cluster_ip_range: {
                let v = r.written(M::KubeServiceClusterIpRange, value::cidrs)?;
                r.needed(M::KubeServiceClusterIpRange, v)?
            },
        };
        let oidc = Oidc {
            ca_cert: r.pem(M::OidcCaCert)?,
            issuer: r.written(M::OidcIssuer, |v| {
                crate::contract::oidc_issuer_url(v).map_err(CheckError::Issuer)
            })?,
            signing_algs: r.text(M::OidcSigningAlgs)?,
        };
        let registry = Registry {
            enabled: {
                let v = r.bool(M::RegistryEnabled)?;
                r.needed(M::RegistryEnabled, v)?
            },
            hostname: r.parsed(M::RegistryHostname, str::parse)?,
            bucket: r.bucket([
                M::RegistryBucket,
                M::RegistryEndpoint,
                M::RegistryRegion,
                M::RegistryAssumeRole,
                M::RegistryAccessKeyId,
                M::RegistrySecretAccessKey,
            ])?,
        };
        let telemetry = Telemetry {
            enabled: {
                let v = r.bool(M::TelemetryEnabled)?;
                r.needed(M::TelemetryEnabled, v)?
            },
            log_cloudinit: {
                let v = r.bool(M::TelemetryLogCloudinit)?;
                r.needed(M::TelemetryLogCloudinit, v)?
            },
            // Set but empty means "no units" (only cloud-init's log), not the default list.
            log_services: {
                let v = r.exact(M::TelemetryLogServices)?;
                let mut out: Vec<String> = Vec::new();
                if !v.is_empty() {
                    for name in value::service_names(v)
                        .map_err(|e| Reader::bad(M::TelemetryLogServices, v, e))?
                    {
                        if !out.iter().any(|o| o == name) {
                            out.push(name.into());
                        }
                    }
                }
                out
            },
            otlp_endpoint: r.written(M::TelemetryOtlpEndpoint, |v| Ok(otlp_endpoint(v)?))?,
            s3: r.bucket([
                M::TelemetryS3Bucket,
                M::TelemetryS3Endpoint,
                M::TelemetryS3Region,
                M::TelemetryS3AssumeRole,
                M::TelemetryS3AccessKeyId,
                M::TelemetryS3SecretAccessKey,
            ])?,
        };
        if telemetry.enabled && telemetry.log_services.is_empty() && !telemetry.log_cloudinit {
            return Err(SettingsError::NothingToCollect);
        }
        Ok(NodeSettings {
            provider,
            instance_id: r.parsed(U::InstanceId, str::parse)?,
            cluster_id,
            region: r.text(U::ProviderRegion)?,
            zone: r.text(U::ProviderZone)?,
            instance_type: r.text(U::ProviderInstanceType)?,
            aws_account_id,
            google_project_id: r.opt(U::GoogleProjectId)?,
            nstance_ca_cert: r.pem(U::NstanceCaCert)?,
            nstance_registration_addr: r.opt(U::NstanceServerRegistrationAddr)?,
            nstance_agent_addr: r.opt(U::NstanceServerAgentAddr)?,
            immutable_ssh_authorized_keys: r.text(U::ImmutableSshAuthorizedKeys)?,
            vmconfig_kind: r.parsed(D::VmconfigKind, |v| Ok(v.parse::<Kind>()?))?,
            vmconfig_base_kind: r.text(D::VmconfigBaseKind)?,
            instance_provider_id: r.text(D::InstanceProviderId)?,
            ipv4: r.parsed(D::InstanceIpv4, |v| v.parse().map_err(|_| CheckError::Ipv4))?,
            ipv6: r.parsed(D::InstanceIpv6, |v| v.parse().map_err(|_| CheckError::Ipv6))?,
            netdev: r.text(D::InstanceNetdev)?,
            hostname: r.text(D::InstanceHostname)?,
            fqdn: r.text(D::InstanceFqdn)?,
            aws_s3_use_path_style: r.bool(M::AwsS3UsePathStyle)?,
            kube,
            netsy: r.bucket([
                M::NetsyBucket,
                M::NetsyEndpoint,
                M::NetsyRegion,
                M::NetsyAssumeRole,
                M::NetsyAccessKeyId,
                M::NetsySecretAccessKey,
            ])?,
            oidc,
            registry,
            ssh_authorized_keys: r.text(M::SshAuthorizedKeys)?,
            telemetry,
        })
    }

    /// `value`, or an error naming `key` and why it is needed.
    pub fn required<'v, T: ?Sized>(
        value: Option<&'v T>,
        key: impl EnvKey,
        why: &str,
    ) -> Result<&'v T, SettingsError> {
        value.ok_or_else(|| SettingsError::Required {
            key: key.name().into(),
            why: why.into(),
        })
    }
}

impl NodeSettings {
    /// `INSTANCE_ID` as written, or `""`.
    pub fn instance_id_text(&self) -> &str {
        self.instance_id.as_ref().map_or("", Hostname::as_str)
    }

    /// `INSTANCE_IPV4` for an env file (`""` when unset).
    pub fn ipv4_text(&self) -> String {
        self.ipv4.map(|a| a.to_string()).unwrap_or_default()
    }

    /// `INSTANCE_IPV6` for an env file (`""` when unset).
    pub fn ipv6_text(&self) -> String {
        self.ipv6.map(|a| a.to_string()).unwrap_or_default()
    }

    /// `CLUSTER_ID`, or `""`.
    pub fn cluster_id_text(&self) -> &str {
        or_empty(&self.cluster_id)
    }
}

impl Bucket {
    /// The region, or `fallback` (the provider's region) when unset.
    pub fn region_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.region.as_deref().unwrap_or(fallback)
    }
}

/// `o`'s text, or `""`.
pub fn or_empty(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests;
