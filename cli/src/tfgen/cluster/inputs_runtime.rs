//! `podplane.cluster.inputs.runtime.tf`: inputs pushed to running VMs without replacing them.

use super::shared::variable;
use crate::config::Validated;
use crate::hcl::{Block, Doc, Value, raw, str, strs};

/// (name, description, type, default, sensitive, whole-number maximum)
type VarSpec<'a> = (&'a str, String, &'a str, Value, bool, Option<u32>);

pub(super) fn doc(valid: &Validated) -> Doc {
    let c = &valid.cluster;
    let network = valid.service_network();
    let when_set = "existing VMs are reconfigured when set.";
    let static_key = |what: &str, prefer: &str| {
        format!(
            "Static {what}; prefer {prefer} when available. Existing VMs are reconfigured when set."
        )
    };
    let node_mask = "Pod CIDR prefix for new node allocations. Existing Node.spec.podCIDRs and CNI state are not resized or migrated; old allocations consume corresponding blocks in the new allocation grid.";
    let signing = if c.oidc.signing_algs.is_empty() {
        Value::Null
    } else {
        strs(&c.oidc.signing_algs)
    };
    let api_port = i64::from(valid.api_port());
    let registry_hostname = c.registry_hostname();
    let service_cidrs: Vec<String> = network.cidrs.iter().map(|p| p.to_string()).collect();
    // (name, description, type, default, sensitive, whole-number maximum)
    let vars: Vec<VarSpec> = vec![
        ("ssh_authorized_keys", format!("SSH login keys; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_enabled", format!("Telemetry state; {when_set}"), "bool", Value::Null, false, None),
        ("telemetry_log_cloudinit", format!("Cloud-init log collection; {when_set}"), "bool", Value::Null, false, None),
        ("telemetry_log_services", format!("Telemetry services; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_otlp_endpoint", format!("OTLP endpoint; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_bucket", format!("Telemetry bucket; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_endpoint", format!("Telemetry S3 endpoint; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_assume_role", format!("Telemetry role; {when_set}"), "string", Value::Null, false, None),
        ("telemetry_s3_access_key_id", static_key("telemetry access key ID", "telemetry_s3_assume_role"), "string", Value::Null, true, None),
        ("telemetry_s3_secret_access_key", static_key("telemetry secret access key", "telemetry_s3_assume_role"), "string", Value::Null, true, None),
        ("oidc_issuer_url", "OIDC issuer; existing VMs are reconfigured.".into(), "string", str(&c.oidc.issuer_url), false, None),
        ("oidc_ca_cert", format!("OIDC CA certificate; {when_set}"), "string", Value::Null, false, None),
        ("oidc_signing_algs", "OIDC signing algorithms accepted by kube-apiserver; existing VMs are reconfigured. vmagent defaults to RS256 when unset.".into(), "list(string)", signing, false, None),
        ("kube_api_etcd_servers", format!("etcd endpoints; {when_set}"), "string", Value::Null, false, None),
        ("kubernetes_api_hostname", "Kubernetes API hostname; existing VMs are reconfigured.".into(), "string", str(&c.kubernetes.api_hostname), false, None),
        ("kubernetes_api_port", "External Kubernetes API port used by clients; kube-apiserver listens internally on 6443.".into(), "number", Value::Num(api_port), false, None),
        ("kubernetes_cluster_cidr", "Pod CIDRs for control-plane services. Existing VMs are reconfigured, but Podplane does not migrate existing Pods, node CIDR allocations, CNI state, routes, or other networking state.".into(), "list(string)", strs(&c.kubernetes.cluster_cidr), false, None),
        ("kubernetes_node_cidr_mask_size_ipv4", format!("IPv4 {node_mask}"), "number", Value::Null, false, Some(32)),
        ("kubernetes_node_cidr_mask_size_ipv6", format!("IPv6 {node_mask}"), "number", Value::Null, false, Some(128)),
        ("kubernetes_service_cidr", "Default Service CIDRs for control-plane services. Existing VMs are reconfigured, but Podplane does not migrate existing Services or other networking state; additional ServiceCIDR resources are separate.".into(), "list(string)", strs(&service_cidrs), false, None),
        ("kube_log_level", format!("Kubernetes log level; {when_set}"), "number", Value::Null, false, None),
        ("aws_s3_use_path_style", format!("S3 path style; {when_set}"), "string", Value::Null, false, None),
        ("netsy_endpoint", format!("Netsy endpoint; {when_set}"), "string", Value::Null, false, None),
        ("netsy_access_key_id", static_key("Netsy access key ID", "assume-role credentials"), "string", Value::Null, true, None),
        ("netsy_secret_access_key", static_key("Netsy secret access key", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_enabled", format!("Registry state; {when_set}"), "bool", Value::Null, false, None),
        ("registry_endpoint", format!("Registry endpoint; {when_set}"), "string", Value::Null, false, None),
        ("registry_access_key_id", static_key("registry access key ID", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_secret_access_key", static_key("registry secret access key", "assume-role credentials"), "string", Value::Null, true, None),
        ("registry_hostname", format!("Registry hostname; {when_set}"), "string", str(registry_hostname), false, None),
    ];
    let mut doc = Doc {
        header: vec![
            "Runtime configuration inputs. Changes are pushed to existing VMs and applied without replacement,".into(),
            "which means if you only change and apply one of these, you should only see the Nstance server".into(),
            "configuration file in the planned changes.".into(),
        ],
        ..Doc::default()
    };
    for (name, description, ty, default, sensitive, max) in vars {
        let mut v = variable(name, &description, ty, default);
        if sensitive {
            v.attr("sensitive", Value::Bool(true));
        }
        if let Some(max) = max {
            v.block(
                Block::new("validation", &[])
                    .with(
                        "condition",
                        raw(format!(
                            "var.{name} == null ? true : (var.{name} >= 0 && var.{name} <= {max} && floor(var.{name}) == var.{name})"
                        )),
                    )
                    .with(
                        "error_message",
                        str(format!("{name} must be a whole number between 0 and {max}.")),
                    ),
            );
        }
        doc.push(v);
    }
    doc.push(
        Block::new("locals", &[])
            .with("oidc_client_id", str(c.oidc_client_id()))
            .with("oidc_username_claim", str(c.oidc_username_claim()))
            .with("oidc_groups_claim", str(c.oidc_groups_claim())),
    );
    doc
}
