//! The `user-data.env` and `detected.env` contracts: every key `vmagent bootstrap` writes from
//! the instance facts the CLI's userdata passes ([`UserDataKey`], each carried by one bootstrap
//! flag) and from what it detects on the machine ([`DetectedKey`]), with the check each value
//! must pass. Like [`super::MutableKey`], a key is named through its enum, so a renamed key fails
//! to compile in the writer and in the typed settings parse.

use super::facts::{InstanceFacts, flag};
use super::{Check, CheckError};

macro_rules! env_keys {
    (
        $(#[$meta:meta])* $ty:ident, $file:literal {
            $( $(#[$m:meta])* $var:ident = $name:literal, $check:expr; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty {
            $( $(#[$m])* $var, )+
        }

        impl $ty {
            /// Every key, in the order the file is written.
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            /// The key as written in the file.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $ty::$var => $name, )+
                }
            }

            /// What a value must look like.
            pub const fn check(self) -> Check {
                use Check::*;
                match self {
                    $( $ty::$var => $check, )+
                }
            }

            /// The key named `s`, if it is in the contract.
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $( $name => Some($ty::$var), )+
                    _ => None,
                }
            }
        }

        impl super::EnvKey for $ty {
            const FILE: &'static str = $file;
            fn name(self) -> &'static str {
                $ty::name(self)
            }
            fn default(self) -> &'static str {
                ""
            }
            fn check(self) -> Check {
                $ty::check(self)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

env_keys! {
    /// A `user-data.env` key (upstream's names), written once by `vmagent bootstrap`.
    UserDataKey, "user-data.env" {
        /// SSH public keys for the admin user, one per line; immutable for the VM's life.
        ImmutableSshAuthorizedKeys = "IMMUTABLE_SSH_AUTHORIZED_KEYS", Text;
        /// Nstance instance ID; also the host name.
        InstanceId = "INSTANCE_ID", Hostname;
        ClusterId = "CLUSTER_ID", Text;
        ProviderKind = "PROVIDER_KIND", Provider;
        ProviderRegion = "PROVIDER_REGION", Text;
        ProviderZone = "PROVIDER_ZONE", Text;
        ProviderInstanceType = "PROVIDER_INSTANCE_TYPE", Text;
        AwsAccountId = "AWS_ACCOUNT_ID", Text;
        GoogleProjectId = "GOOGLE_PROJECT_ID", Text;
        /// Base64 of the Nstance CA's PEM.
        NstanceCaCert = "NSTANCE_CA_CERT", Base64;
        /// HOST:PORT.
        NstanceServerRegistrationAddr = "NSTANCE_SERVER_REGISTRATION_ADDR", Text;
        /// HOST:PORT.
        NstanceServerAgentAddr = "NSTANCE_SERVER_AGENT_ADDR", Text;
    }
}

impl UserDataKey {
    /// The `vmagent bootstrap` flag (without `--`) that carries the value.
    pub const fn flag(self) -> &'static str {
        match self {
            UserDataKey::ImmutableSshAuthorizedKeys => flag::SSH_AUTHORIZED_KEYS,
            UserDataKey::InstanceId => flag::INSTANCE_ID,
            UserDataKey::ClusterId => flag::CLUSTER_ID,
            UserDataKey::ProviderKind => flag::PROVIDER,
            UserDataKey::ProviderRegion => flag::REGION,
            UserDataKey::ProviderZone => flag::ZONE,
            UserDataKey::ProviderInstanceType => flag::INSTANCE_TYPE,
            UserDataKey::AwsAccountId => flag::AWS_ACCOUNT_ID,
            UserDataKey::GoogleProjectId => flag::GOOGLE_PROJECT_ID,
            UserDataKey::NstanceCaCert => flag::NSTANCE_CA_CERT,
            UserDataKey::NstanceServerRegistrationAddr => flag::REGISTRATION_ADDR,
            UserDataKey::NstanceServerAgentAddr => flag::AGENT_ADDR,
        }
    }
}

impl UserDataKey {
    /// The value `facts` carries for this key.
    pub fn value_in(self, facts: &InstanceFacts) -> &str {
        match self {
            UserDataKey::ImmutableSshAuthorizedKeys => &facts.ssh_authorized_keys,
            UserDataKey::InstanceId => &facts.instance_id,
            UserDataKey::ClusterId => &facts.cluster_id,
            UserDataKey::ProviderKind => &facts.provider,
            UserDataKey::ProviderRegion => &facts.region,
            UserDataKey::ProviderZone => &facts.zone,
            UserDataKey::ProviderInstanceType => &facts.instance_type,
            UserDataKey::AwsAccountId => &facts.aws_account_id,
            UserDataKey::GoogleProjectId => &facts.google_project_id,
            UserDataKey::NstanceCaCert => &facts.nstance_ca_cert,
            UserDataKey::NstanceServerRegistrationAddr => &facts.registration_addr,
            UserDataKey::NstanceServerAgentAddr => &facts.agent_addr,
        }
    }

    /// Check `value` against this key's rule ([`Check::validate`]); the error names the value
    /// as its writer knows it (`name`: a bootstrap flag, a CLI field) as well as the key.
    pub fn validate(self, name: &str, value: &str) -> Result<(), FactError> {
        self.check().validate(value).map_err(|source| FactError {
            name: name.to_string(),
            key: self,
            value: value.to_string(),
            source,
        })
    }
}

/// An instance fact that its [`UserDataKey`]'s rule refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value:?} is refused ({key} in user-data.env): {source}")]
pub struct FactError {
    /// The fact as the writer names it (`--instance-id`, `instance id`).
    pub name: String,
    pub key: UserDataKey,
    pub value: String,
    #[source]
    pub source: CheckError,
}

env_keys! {
    /// A `detected.env` key: what `vmagent bootstrap` found on the machine (or was given in the
    /// environment instead).
    DetectedKey, "detected.env" {
        VmconfigKind = "VMCONFIG_KIND", Kind;
        VmconfigBaseKind = "VMCONFIG_BASE_KIND", Text;
        /// kubelet's `--provider-id`.
        InstanceProviderId = "INSTANCE_PROVIDER_ID", Text;
        InstanceIpv4 = "INSTANCE_IPV4", Ipv4;
        InstanceIpv6 = "INSTANCE_IPV6", Ipv6;
        InstanceNetdev = "INSTANCE_NETDEV", Text;
        InstanceHostname = "INSTANCE_HOSTNAME", Text;
        InstanceFqdn = "INSTANCE_FQDN", Text;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::MutableKey;

    #[test]
    fn keys_parse_back_and_no_name_is_in_two_files() {
        let mut all: Vec<&str> = Vec::new();
        for k in UserDataKey::ALL {
            assert_eq!(UserDataKey::parse(k.name()), Some(*k));
            all.push(k.name());
        }
        for k in DetectedKey::ALL {
            assert_eq!(DetectedKey::parse(k.name()), Some(*k));
            all.push(k.name());
        }
        all.extend(MutableKey::ALL.iter().map(|k| k.name()));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a key name is used by two files");
        assert_eq!(UserDataKey::parse("NOPE"), None);
    }

    #[test]
    fn each_fact_is_read_from_the_flag_that_carries_its_key() {
        // Every fact distinct, so a key read from the wrong field shows.
        let f = InstanceFacts {
            instance_id: "i-1".into(),
            cluster_id: "c1".into(),
            provider: "aws".into(),
            region: "r".into(),
            zone: "z".into(),
            instance_type: "t".into(),
            aws_account_id: "a".into(),
            google_project_id: "g".into(),
            nstance_ca_cert: "Q0E=".into(),
            registration_addr: "h:1".into(),
            agent_addr: "h:2".into(),
            nonce: "n".into(),
            ssh_authorized_keys: "k".into(),
        };
        let flags = f.flags();
        for k in UserDataKey::ALL {
            let by_flag = flags.iter().find(|(n, _)| *n == k.flag()).map(|(_, v)| *v);
            assert_eq!(by_flag, Some(k.value_in(&f)), "{k}");
        }
        let e = UserDataKey::InstanceId
            .validate("--instance-id", "i 1")
            .unwrap_err();
        assert_eq!(e.key, UserDataKey::InstanceId);
        assert!(
            e.to_string().starts_with(
                "--instance-id \"i 1\" is refused (INSTANCE_ID in user-data.env): it "
            ),
            "{e}"
        );
        assert!(
            UserDataKey::InstanceId
                .validate("--instance-id", "i-1")
                .is_ok()
        );
    }
}
