//! The `mutable.env` contract: every key the CLI may send in a delivered mutable.env (through
//! the generated Terraform's `mutable_env` local), its default on the node, and the check the
//! node applies when it arrives. A key is named through [`MutableKey`], so renaming one is a
//! compile error in both programs rather than a setting the node refuses at boot.

/// What a value must look like. Empty values always pass: they mean "default" or "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Anything the env-file character set allows.
    Text,
    /// Exactly `true` or `false`.
    Bool,
    /// A port, 1-65535.
    Port,
    /// A whole number from 0 to the bound.
    Number(u32),
    /// A DNS name.
    Hostname,
    /// The OIDC issuer rule ([`super::oidc_issuer_url`]).
    OidcIssuer,
    /// The service-account issuer rule ([`super::service_account_issuer_url`]).
    ServiceAccountIssuer,
    /// An `http(s)://` URL.
    HttpUrl,
    /// An S3 endpoint: an `http(s)://` URL or a bare `host[:port]`.
    S3Endpoint,
    /// Comma-separated `http(s)://` URLs.
    UrlList,
    /// Comma-separated IP addresses.
    IpList,
    /// Comma-separated `ADDRESS/PREFIX` networks.
    Cidrs,
    /// Comma-separated systemd unit names (lowercase).
    ServiceNames,
    /// Base64 text.
    Base64,
    /// A provider kind ([`super::Provider`]).
    Provider,
    /// A node kind ([`super::Kind`]).
    Kind,
    /// One IPv4 address.
    Ipv4,
    /// One IPv6 address.
    Ipv6,
}

macro_rules! mutable_keys {
    ($( $(#[$m:meta])* $var:ident = $name:literal, $default:literal, $check:expr; )+) => {
        /// A `mutable.env` key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MutableKey {
            $( $(#[$m])* $var, )+
        }

        impl MutableKey {
            /// Every key, sorted by name (the order of a written mutable.env).
            pub const ALL: &'static [MutableKey] = &[$(MutableKey::$var),+];

            /// The key as written in the file.
            pub const fn name(self) -> &'static str {
                match self {
                    $( MutableKey::$var => $name, )+
                }
            }

            /// The value the node uses when no delivery has set the key.
            pub const fn default(self) -> &'static str {
                match self {
                    $( MutableKey::$var => $default, )+
                }
            }

            /// What a delivered value must look like.
            pub const fn check(self) -> Check {
                use Check::*;
                match self {
                    $( MutableKey::$var => $check, )+
                }
            }

            /// The key named `s`, if it is in the contract.
            pub fn parse(s: &str) -> Option<MutableKey> {
                match s {
                    $( $name => Some(MutableKey::$var), )+
                    _ => None,
                }
            }
        }
    };
}

// Upstream's defaults plus the two keys the CLI sends (`KUBE_SERVICE_ACCOUNT_ISSUER`,
// `KUBE_CLUSTER_DNS`). Two deliberate differences: `TELEMETRY_ENABLED` defaults to false (as the
// CLI and the scripts' unset default do; upstream's file said true, which shipped logs to a
// buffer with no destination), and `TELEMETRY_LOG_SERVICES` drops the phantom `first-boot-env`
// unit.
mutable_keys! {
    AwsS3UsePathStyle = "AWS_S3_USE_PATH_STYLE", "", Bool;
    KubeApiEtcdServers = "KUBE_API_ETCD_SERVERS", "https://127.0.0.1:2378", UrlList;
    KubeApiInternalLbHostname = "KUBE_API_INTERNAL_LB_HOSTNAME", "", Hostname;
    KubeApiPort = "KUBE_API_PORT", "6443", Port;
    KubeApiPublicHostname = "KUBE_API_PUBLIC_HOSTNAME", "", Hostname;
    KubeClusterCidr = "KUBE_CLUSTER_CIDR", "100.64.0.0/10,fd64::/48", Cidrs;
    KubeClusterDns = "KUBE_CLUSTER_DNS", "198.19.255.254,fdc6::ffff", IpList;
    KubeLogLevel = "KUBE_LOG_LEVEL", "2", Number(10);
    KubeNodeCidrMaskSizeIpv4 = "KUBE_NODE_CIDR_MASK_SIZE_IPV4", "24", Number(32);
    KubeNodeCidrMaskSizeIpv6 = "KUBE_NODE_CIDR_MASK_SIZE_IPV6", "64", Number(128);
    KubeServiceAccountIssuer = "KUBE_SERVICE_ACCOUNT_ISSUER", "", ServiceAccountIssuer;
    KubeServiceClusterIpRange = "KUBE_SERVICE_CLUSTER_IP_RANGE", "198.18.0.0/15,fdc6::/108", Cidrs;
    NetsyAccessKeyId = "NETSY_ACCESS_KEY_ID", "", Text;
    NetsyAssumeRole = "NETSY_ASSUME_ROLE", "", Text;
    NetsyBucket = "NETSY_BUCKET", "", Text;
    NetsyEndpoint = "NETSY_ENDPOINT", "", S3Endpoint;
    NetsyRegion = "NETSY_REGION", "", Text;
    NetsySecretAccessKey = "NETSY_SECRET_ACCESS_KEY", "", Text;
    OidcCaCert = "OIDC_CA_CERT", "", Base64;
    OidcIssuer = "OIDC_ISSUER", "", OidcIssuer;
    OidcSigningAlgs = "OIDC_SIGNING_ALGS", "RS256", Text;
    RegistryAccessKeyId = "REGISTRY_ACCESS_KEY_ID", "", Text;
    RegistryAssumeRole = "REGISTRY_ASSUME_ROLE", "", Text;
    RegistryBucket = "REGISTRY_BUCKET", "", Text;
    RegistryEnabled = "REGISTRY_ENABLED", "true", Bool;
    RegistryEndpoint = "REGISTRY_ENDPOINT", "", S3Endpoint;
    RegistryHostname = "REGISTRY_HOSTNAME", "", Hostname;
    RegistryRegion = "REGISTRY_REGION", "", Text;
    RegistrySecretAccessKey = "REGISTRY_SECRET_ACCESS_KEY", "", Text;
    SshAuthorizedKeys = "SSH_AUTHORIZED_KEYS", "", Text;
    TelemetryEnabled = "TELEMETRY_ENABLED", "false", Bool;
    TelemetryLogCloudinit = "TELEMETRY_LOG_CLOUDINIT", "true", Bool;
    TelemetryLogServices = "TELEMETRY_LOG_SERVICES", "cron,ssh,netsy,nstance-agent,nstance-recv-watch,containerd,kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,zot", ServiceNames;
    TelemetryOtlpEndpoint = "TELEMETRY_OTLP_ENDPOINT", "", HttpUrl;
    TelemetryS3AccessKeyId = "TELEMETRY_S3_ACCESS_KEY_ID", "", Text;
    TelemetryS3AssumeRole = "TELEMETRY_S3_ASSUME_ROLE", "", Text;
    TelemetryS3Bucket = "TELEMETRY_S3_BUCKET", "", Text;
    TelemetryS3Endpoint = "TELEMETRY_S3_ENDPOINT", "", S3Endpoint;
    TelemetryS3Region = "TELEMETRY_S3_REGION", "", Text;
    TelemetryS3SecretAccessKey = "TELEMETRY_S3_SECRET_ACCESS_KEY", "", Text;
}

impl super::EnvKey for MutableKey {
    const FILE: &'static str = "mutable.env";
    fn name(self) -> &'static str {
        MutableKey::name(self)
    }
    fn default(self) -> &'static str {
        MutableKey::default(self)
    }
    fn check(self) -> Check {
        MutableKey::check(self)
    }
}

impl std::fmt::Display for MutableKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_unique_and_parse_back() {
        let names: Vec<&str> = MutableKey::ALL.iter().map(|k| k.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for k in MutableKey::ALL {
            assert_eq!(MutableKey::parse(k.name()), Some(*k));
        }
        assert_eq!(MutableKey::parse("NOT_A_KEY"), None);
        assert_eq!(MutableKey::KubeApiPort.default(), "6443");
        assert_eq!(MutableKey::OidcIssuer.check(), Check::OidcIssuer);
    }
}
