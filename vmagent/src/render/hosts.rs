//! `/etc/hosts`: a managed block naming the API server, appended after the host's own lines.
//! knc: the local API server. knd: the internal load balancer's addresses (resolved by the
//! caller), or no block when there is none.

use super::{Desired, Inputs, RenderError};
use crate::contract::Kind;

pub const BEGIN: &str = "# BEGIN podplane managed kube-apiserver";
pub const END: &str = "# END podplane managed kube-apiserver";
pub const API_NAME: &str = "kube-apiserver.podplane.internal";

/// `current` without any managed block.
pub fn strip_block(current: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in current.lines() {
        if line == BEGIN {
            inside = true;
        } else if line == END {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub fn render(inp: &Inputs, d: &mut Desired) -> Result<(), RenderError> {
    let lb = inp.settings.kube.api_internal_lb_hostname.as_ref();
    let lines: Vec<String> = match (inp.kind, lb) {
        (Kind::Knc, _) => vec![format!("127.0.0.1 {API_NAME}")],
        (Kind::Knd, None) => vec![],
        (Kind::Knd, Some(lb)) => {
            let mut addrs = inp.api_lb_addrs.clone();
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                return Err(RenderError::Invalid(format!(
                    "KUBE_API_INTERNAL_LB_HOSTNAME \"{lb}\" resolves to no address; check DNS or the mutable.env value"
                )));
            }
            addrs.iter().map(|a| format!("{a} {API_NAME}")).collect()
        }
    };
    let mut content = strip_block(inp.etc_hosts);
    if !lines.is_empty() {
        content.push_str(BEGIN);
        content.push('\n');
        for l in lines {
            content.push_str(&l);
            content.push('\n');
        }
        content.push_str(END);
        content.push('\n');
    }
    d.file("/etc/hosts", 0o644, "root:root", content);
    Ok(())
}
