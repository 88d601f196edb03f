//! `podplane.cluster.inputs.vm.tf`: inputs that resize pools or roll VMs.

use super::shared::variable;
use crate::config::ClusterConfig;
use crate::hcl::{Doc, Value, field, str};

pub(super) fn doc(cfg: &ClusterConfig) -> Doc {
    let pools = &cfg.cluster.pools;
    let mut doc = Doc {
        header: vec![
            "VM infrastructure inputs. Changes reconcile VM counts or trigger rolling VM replacement."
                .into(),
        ],
        ..Doc::default()
    };
    // Not nullable: the userdata template tests and quotes it.
    doc.push(
        variable(
            "immutable_ssh_authorized_keys",
            "Early-boot SSH keys; changing them rolls affected VMs.",
            "string",
            str(""),
        )
        .with("nullable", Value::Bool(false)),
    );
    doc.push(variable(
        "pool_instance_types",
        "Instance types by pool; changing one rolls that pool.",
        "map(string)",
        Value::Object(
            pools
                .iter()
                .map(|(n, p)| field(n, str(&p.instance_type)))
                .collect(),
        ),
    ));
    doc.push(variable(
        "pool_sizes",
        "Desired VM counts by pool; changes are reconciled by Nstance.",
        "map(number)",
        Value::Object(
            pools
                .iter()
                .map(|(n, p)| field(n, Value::Num(p.size)))
                .collect(),
        ),
    ));
    doc
}
