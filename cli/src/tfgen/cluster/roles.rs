//! `podplane.cluster.roles.tf`: the workload IAM roles the control plane assumes, and the
//! cert-manager Route53 role when ACME uses Route53.

use super::shared::route53_acme;
use crate::config::ClusterConfig;
use crate::hcl::{Block, Doc, Value, field, ident, raw, str, strs};

pub(super) fn doc(cfg: &ClusterConfig, account: &str) -> Doc {
    let role = |bucket: &str, bucket_actions: &[&str], object_actions: &[&str]| {
        Value::Object(vec![
            ident("bucket", str(bucket)),
            ident("bucket_actions", strs(bucket_actions)),
            ident("object_actions", strs(object_actions)),
        ])
    };
    let registry_bucket = [
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:ListBucketMultipartUploads",
    ];
    let mut doc = Doc::default();
    doc.push(Block::new("locals", &[]).with(
        "roles",
        Value::Object(vec![
            field(
                "netsy",
                role(
                    "netsy",
                    &["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    &[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:GetObjectAttributes",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                ),
            ),
            field(
                "registry-read-only",
                role(
                    "registry",
                    &registry_bucket,
                    &["s3:GetObject", "s3:ListMultipartUploadParts"],
                ),
            ),
            field(
                "registry-read-write",
                role(
                    "registry",
                    &registry_bucket,
                    &[
                        "s3:GetObject",
                        "s3:ListMultipartUploadParts",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                    ],
                ),
            ),
        ]),
    ));
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "assume_from_knc"]).with_block(
            Block::new("statement", &[])
                .with("actions", strs(&["sts:AssumeRole"]))
                .with_block(Block::new("principals", &[]).with("type", str("AWS")).with(
                    "identifiers",
                    Value::List(vec![raw(format!("module.{account}.agent_iam_role_arn"))]),
                )),
        ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with("name", raw("\"${local.name_prefix}-${each.key}\""))
            .with(
                "assume_role_policy",
                raw("data.aws_iam_policy_document.assume_from_knc.json"),
            ),
    );
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with_block(
                Block::new("statement", &[])
                    .with("actions", raw("each.value.bucket_actions"))
                    .with(
                        "resources",
                        Value::List(vec![raw(
                            "aws_s3_bucket.podplane_cluster[each.value.bucket].arn",
                        )]),
                    ),
            )
            .with_block(
                Block::new("statement", &[])
                    .with("actions", raw("each.value.object_actions"))
                    .with(
                        "resources",
                        Value::List(vec![raw(
                            "\"${aws_s3_bucket.podplane_cluster[each.value.bucket].arn}/*\"",
                        )]),
                    ),
            ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role_policy", "podplane_cluster"])
            .with("for_each", raw("local.roles"))
            .with("name", raw("\"${local.name_prefix}-${each.key}-policy\""))
            .with("role", raw("aws_iam_role.podplane_cluster[each.key].id"))
            .with(
                "policy",
                raw("data.aws_iam_policy_document.podplane_cluster[each.key].json"),
            ),
    );
    let acme = route53_acme(cfg);
    if acme {
        let condition = |variable: &str, values: &[&str]| {
            Block::new("condition", &[])
                .with("test", str("ForAllValues:StringEquals"))
                .with("variable", str(variable))
                .with("values", strs(values))
        };
        doc.push(
            Block::new("resource", &["aws_iam_role", "cert_manager_route53"])
                .with("count", Value::Num(1))
                .with("name", raw("\"${local.name_prefix}-cert-manager-route53\""))
                .with(
                    "assume_role_policy",
                    raw("data.aws_iam_policy_document.assume_from_knc.json"),
                ),
        );
        doc.push(
            Block::new("data", &["aws_iam_policy_document", "cert_manager_route53"])
                .with_block(
                    Block::new("statement", &[])
                        .with("sid", str("ChangeDNS01Records"))
                        .with("actions", strs(&["route53:ChangeResourceRecordSets"]))
                        .with(
                            "resources",
                            raw("[for zone in data.aws_route53_zone.managed : zone.arn]"),
                        )
                        .with_block(condition(
                            "route53:ChangeResourceRecordSetsRecordTypes",
                            &["TXT"],
                        ))
                        .with_block(condition(
                            "route53:ChangeResourceRecordSetsActions",
                            &["UPSERT", "DELETE"],
                        )),
                )
                .with_block(
                    Block::new("statement", &[])
                        .with("sid", str("ReadDNS01Changes"))
                        .with("actions", strs(&["route53:GetChange"]))
                        .with("resources", strs(&["arn:aws:route53:::change/*"])),
                ),
        );
        doc.push(
            Block::new("resource", &["aws_iam_role_policy", "cert_manager_route53"])
                .with("count", Value::Num(1))
                .with(
                    "name",
                    raw("\"${local.name_prefix}-cert-manager-route53-policy\""),
                )
                .with("role", raw("aws_iam_role.cert_manager_route53[0].id"))
                .with(
                    "policy",
                    raw("data.aws_iam_policy_document.cert_manager_route53.json"),
                ),
        );
    }
    let mut assumable = vec![
        raw("aws_iam_role.podplane_cluster[\"netsy\"].arn"),
        raw("aws_iam_role.podplane_cluster[\"registry-read-only\"].arn"),
        raw("aws_iam_role.podplane_cluster[\"registry-read-write\"].arn"),
    ];
    if acme {
        assumable.push(raw("aws_iam_role.cert_manager_route53[0].arn"));
    }
    doc.push(
        Block::new("data", &["aws_iam_policy_document", "podplane_knc"])
            .with_block(
                Block::new("statement", &[])
                    .with("sid", str("AssumePodplaneWorkloadRoles"))
                    .with("actions", strs(&["sts:AssumeRole"]))
                    .with("resources", Value::List(assumable)),
            )
            .with_block(
                Block::new("statement", &[])
                    .with("sid", str("DescribeRegions"))
                    .with("actions", strs(&["ec2:DescribeRegions"]))
                    .with("resources", strs(&["*"])),
            ),
    );
    doc.push(
        Block::new("resource", &["aws_iam_role_policy", "podplane_knc"])
            .with("name", raw("\"${local.name_prefix}-podplane-knc-policy\""))
            .with("role", raw(format!("module.{account}.agent_iam_role_name")))
            .with(
                "policy",
                raw("data.aws_iam_policy_document.podplane_knc.json"),
            ),
    );
    doc
}
