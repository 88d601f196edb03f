//! The instance facts the CLI's userdata passes to `vmagent bootstrap` as command-line flags.
//! One struct: vmagent parses the flags with its clap definition (flattened into the
//! `bootstrap` command) and the CLI writes them with [`flag`]'s names, so a renamed flag fails
//! to compile in the CLI and a round trip (render, parse, compare) checks the rest.

/// The flag names, without the leading `--`.
pub mod flag {
    pub const INSTANCE_ID: &str = "instance-id";
    pub const CLUSTER_ID: &str = "cluster-id";
    pub const PROVIDER: &str = "provider";
    pub const REGION: &str = "region";
    pub const ZONE: &str = "zone";
    pub const INSTANCE_TYPE: &str = "instance-type";
    pub const AWS_ACCOUNT_ID: &str = "aws-account-id";
    pub const GOOGLE_PROJECT_ID: &str = "google-project-id";
    pub const NSTANCE_CA_CERT: &str = "nstance-ca-cert";
    pub const REGISTRATION_ADDR: &str = "registration-addr";
    pub const AGENT_ADDR: &str = "agent-addr";
    pub const NONCE: &str = "nonce";
    pub const SSH_AUTHORIZED_KEYS: &str = "ssh-authorized-keys";
}

/// The instance facts, as userdata passes them.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    /// Nstance instance ID; also the host name.
    #[arg(long = flag::INSTANCE_ID)]
    pub instance_id: String,
    #[arg(long = flag::CLUSTER_ID)]
    pub cluster_id: String,
    /// local, aws, google or proxmox.
    #[arg(long = flag::PROVIDER)]
    pub provider: String,
    #[arg(long = flag::REGION, default_value = "")]
    pub region: String,
    #[arg(long = flag::ZONE, default_value = "")]
    pub zone: String,
    #[arg(long = flag::INSTANCE_TYPE, default_value = "")]
    pub instance_type: String,
    #[arg(long = flag::AWS_ACCOUNT_ID, default_value = "")]
    pub aws_account_id: String,
    #[arg(long = flag::GOOGLE_PROJECT_ID, default_value = "")]
    pub google_project_id: String,
    /// Base64 of the Nstance CA's PEM.
    #[arg(long = flag::NSTANCE_CA_CERT, default_value = "")]
    pub nstance_ca_cert: String,
    /// Nstance registration address (HOST:PORT); waited for before downloading.
    #[arg(long = flag::REGISTRATION_ADDR, default_value = "")]
    pub registration_addr: String,
    /// Nstance agent address (HOST:PORT).
    #[arg(long = flag::AGENT_ADDR, default_value = "")]
    pub agent_addr: String,
    /// The registration nonce (a JWT).
    #[arg(long = flag::NONCE, default_value = "")]
    pub nonce: String,
    /// SSH public keys for the admin user, one per line.
    #[arg(long = flag::SSH_AUTHORIZED_KEYS, default_value = "")]
    pub ssh_authorized_keys: String,
}

#[derive(clap::Parser)]
#[command(no_binary_name = true)]
struct OnlyFacts {
    #[command(flatten)]
    facts: InstanceFacts,
}

impl InstanceFacts {
    /// Parse `--flag value` arguments (no program name) exactly as `vmagent bootstrap` does.
    pub fn parse_args<I, T>(args: I) -> Result<InstanceFacts, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        OnlyFacts::try_parse_from(args).map(|o| o.facts)
    }

    /// Every fact as `(flag, value)`, in the order userdata writes them.
    pub fn flags(&self) -> [(&'static str, &str); 13] {
        [
            (flag::INSTANCE_ID, &self.instance_id),
            (flag::CLUSTER_ID, &self.cluster_id),
            (flag::REGION, &self.region),
            (flag::ZONE, &self.zone),
            (flag::INSTANCE_TYPE, &self.instance_type),
            (flag::NSTANCE_CA_CERT, &self.nstance_ca_cert),
            (flag::REGISTRATION_ADDR, &self.registration_addr),
            (flag::AGENT_ADDR, &self.agent_addr),
            (flag::NONCE, &self.nonce),
            (flag::PROVIDER, &self.provider),
            (flag::AWS_ACCOUNT_ID, &self.aws_account_id),
            (flag::GOOGLE_PROJECT_ID, &self.google_project_id),
            (flag::SSH_AUTHORIZED_KEYS, &self.ssh_authorized_keys),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_round_trips_through_the_parser() {
        let f = InstanceFacts {
            instance_id: "i-1".into(),
            cluster_id: "c1".into(),
            provider: "aws".into(),
            region: "eu-west-1".into(),
            zone: "eu-west-1a".into(),
            instance_type: "m7i.large".into(),
            aws_account_id: "123456789012".into(),
            google_project_id: "p".into(),
            nstance_ca_cert: "Q0E=".into(),
            registration_addr: "10.0.0.5:8990".into(),
            agent_addr: "10.0.0.5:8991".into(),
            nonce: "n.o.nce".into(),
            ssh_authorized_keys: "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b".into(),
        };
        let args: Vec<String> = f
            .flags()
            .iter()
            .flat_map(|(k, v)| [format!("--{k}"), v.to_string()])
            .collect();
        assert_eq!(InstanceFacts::parse_args(&args).unwrap(), f);
        assert!(InstanceFacts::parse_args(["--instance-id", "i"]).is_err());
    }
}
