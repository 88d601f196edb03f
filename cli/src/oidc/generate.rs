//! The Easy OIDC OpenTofu/Terraform files: main, variables (header only), outputs, schema copy.

use crate::hcl::{Block, Doc, Key, Value, field, ident, raw, str, strs};
use crate::tffile::{File, tf_file as tf};

use super::types::{Client, GroupsOverride, OidcConfig};
use super::validate::{ValidOidc, ValidationError, validate};

/// `podplane.oidc.main.tf`.
pub const MAIN_FILE: &str = "podplane.oidc.main.tf";
/// `podplane.oidc.variables.tf`.
pub const VARIABLES_FILE: &str = "podplane.oidc.variables.tf";
/// `podplane.oidc.outputs.tf`.
pub const OUTPUTS_FILE: &str = "podplane.oidc.outputs.tf";

/// Generate the OIDC directory's files: `podplane.oidc.main.tf`, `podplane.oidc.variables.tf`,
/// `podplane.oidc.outputs.tf` and `podplane.oidc.schema.json`, in that order. The config is
/// fully validated first. Pure: the same config gives the same bytes.
pub fn generate(cfg: &OidcConfig) -> Result<Vec<File>, ValidationError> {
    Ok(render(&validate(cfg)?))
}

/// The files of [`generate`] for a config that passed [`validate`].
pub fn render(valid: &ValidOidc) -> Vec<File> {
    vec![
        tf(MAIN_FILE, &main_tf(valid)),
        tf(VARIABLES_FILE, &Doc::default()),
        tf(OUTPUTS_FILE, &outputs_tf()),
        File {
            name: super::SCHEMA_FILE.into(),
            content: super::schema_copy().into_bytes(),
        },
    ]
}

fn main_tf(cfg: &ValidOidc) -> Doc {
    let o = &cfg.oidc;
    let mut doc = Doc::default();
    doc.push(
        Block::new("terraform", &[])
            .with("required_version", str(">= 1.6.0"))
            .with_block(Block::new("required_providers", &[]).with(
                "aws",
                Value::Object(vec![
                    ident("source", str("hashicorp/aws")),
                    ident("version", str(">= 6.0")),
                ]),
            )),
    );
    let mut provider = Block::new("provider", &["aws"]).with("region", str(&o.provider.region));
    if !o.provider.profile.is_empty() {
        provider.attr("profile", str(&o.provider.profile));
    }
    doc.push(provider);

    let managed = cfg.dns_managed();
    if managed {
        let mut zone = Block::new("data", &["aws_route53_zone", "oidc"]);
        let id = &o.domain.provider.hosted_zone_id;
        if !id.is_empty() {
            zone.attr("zone_id", str(id));
        } else {
            let mut name = o.domain.zone.clone();
            if !name.ends_with('.') {
                name.push('.');
            }
            zone.attr("name", str(name));
        }
        doc.push(zone);
    }

    let mut module = Block::new("module", &["oidc"])
        .with("source", str("easy-oidc/easy-oidc/aws"))
        .with("oidc_addr", str(cfg.host()))
        .with("connector_type", str(&o.connector.kind))
        .with(
            "connector_client_secret_arn",
            str(&o.connector.client_secret_arn),
        )
        .with("signing_key_secret_arn", str(&o.signing_key_secret_arn));
    if !o.default_redirect_uris.is_empty() {
        module.attr("default_redirect_uris", strs(&o.default_redirect_uris));
    }
    if !o.clients.is_empty() {
        module.attr(
            "clients",
            Value::Object(o.clients.iter().map(|(n, c)| field(n, client(c))).collect()),
        );
    }
    if !o.groups_overrides.is_empty() {
        module.attr(
            "groups_overrides",
            Value::Object(
                o.groups_overrides
                    .iter()
                    .map(|(n, g)| field(n, groups(g)))
                    .collect(),
            ),
        );
    }
    if managed {
        module.attr("route53_zone_id", raw("data.aws_route53_zone.oidc.zone_id"));
    }
    doc.push(module);
    doc
}

fn client(c: &Client) -> Value {
    let mut fields: Vec<(Key, Value)> = Vec::new();
    if !c.groups_override.is_empty() {
        fields.push(ident("groups_override", str(&c.groups_override)));
    }
    if !c.redirect_uris.is_empty() {
        fields.push(ident("redirect_uris", strs(&c.redirect_uris)));
    }
    Value::Object(fields)
}

fn groups(g: &GroupsOverride) -> Value {
    Value::Object(
        g.0.iter()
            .map(|(email, gs)| field(email, strs(gs)))
            .collect(),
    )
}

fn outputs_tf() -> Doc {
    let mut doc = Doc::default();
    // A template on purpose: the issuer is the module's address, not user data.
    doc.push(
        Block::new("output", &["oidc_issuer_url"])
            .with("value", raw("\"https://${module.oidc.oidc_addr}\"")),
    );
    doc
}
