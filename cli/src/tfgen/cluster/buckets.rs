//! `podplane.cluster.buckets.tf`: the Netsy and registry buckets, private and encrypted.

use crate::hcl::{Block, Doc, Value, field, raw, str};

pub(super) fn doc() -> Doc {
    let mut doc = Doc::default();
    doc.push(Block::new("locals", &[]).with(
        "buckets",
        Value::Object(vec![
            field("netsy", raw("local.netsy_bucket_name")),
            field("registry", raw("local.registry_bucket_name")),
        ]),
    ));
    doc.push(
        Block::new("resource", &["aws_s3_bucket", "podplane_cluster"])
            .with("for_each", raw("local.buckets"))
            .with("bucket", raw("each.value")),
    );
    doc.push(
        Block::new(
            "resource",
            &["aws_s3_bucket_public_access_block", "podplane_cluster"],
        )
        .with("for_each", raw("local.buckets"))
        .with("bucket", raw("aws_s3_bucket.podplane_cluster[each.key].id"))
        .with("block_public_acls", Value::Bool(true))
        .with("block_public_policy", Value::Bool(true))
        .with("ignore_public_acls", Value::Bool(true))
        .with("restrict_public_buckets", Value::Bool(true)),
    );
    doc.push(
        Block::new(
            "resource",
            &[
                "aws_s3_bucket_server_side_encryption_configuration",
                "podplane_cluster",
            ],
        )
        .with("for_each", raw("local.buckets"))
        .with("bucket", raw("aws_s3_bucket.podplane_cluster[each.key].id"))
        .with_block(
            Block::new("rule", &[]).with_block(
                Block::new("apply_server_side_encryption_by_default", &[])
                    .with("sse_algorithm", str("AES256")),
            ),
        ),
    );
    doc
}
