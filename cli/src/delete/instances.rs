//! The EC2 side of `delete`: waiting for instances to go, listing and naming them.

use std::io::{self, Write};
use std::time::Instant;

use super::{DeleteError, DeleteOptions};
use crate::aws::{self, ec2::Filter, ec2::Instance};

/// States an instance can be in before it is gone (everything but `terminated`).
pub(super) const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// Polls until no instance matches `filters` or the wait times out; returns what is left.
pub(super) fn wait_gone(
    rt: &tokio::runtime::Runtime,
    client: &aws::Client,
    filters: &[Filter],
    opts: &DeleteOptions,
    out: &mut impl Write,
) -> Result<Vec<Instance>, DeleteError> {
    let deadline = Instant::now() + opts.wait_timeout;
    let mut last_count = None;
    loop {
        let found = rt.block_on(client.describe_instances(filters))?;
        if found.is_empty() {
            return Ok(found);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(found);
        }
        if last_count != Some(found.len()) {
            writeln!(out, "  {} instance(s) still present", found.len())?;
            last_count = Some(found.len());
        }
        std::thread::sleep(opts.poll_interval.min(deadline - now));
    }
}

pub(super) fn list(instances: &[Instance], out: &mut impl Write) -> io::Result<()> {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    for i in instances {
        writeln!(
            out,
            "  {} ({}) shard={} group={} state={}",
            i.id,
            or_dash(&i.name),
            or_dash(&i.shard),
            or_dash(&i.group),
            or_dash(&i.state)
        )?;
    }
    Ok(())
}

pub(super) fn ids(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

pub(super) fn timeout_error(opts: &DeleteOptions, left: &[Instance]) -> DeleteError {
    DeleteError::WaitTimeout {
        cluster_id: opts.cluster_id.clone(),
        after: opts.wait_timeout,
        count: left.len(),
        ids: ids(left).join(", "),
    }
}
