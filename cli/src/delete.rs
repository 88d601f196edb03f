//! `cluster delete` after the config is loaded: scale Nstance groups to zero through the shard
//! configs in S3, wait for their EC2 instances to go, run `destroy`, then offer to terminate
//! anything still tagged with the cluster id.

//!
//! The steps live in submodules: `outputs` (what to delete, from `output -json`),
//! `shard_config` (scaling a shard config to zero) and `instances` (waiting for EC2
//! instances, listing them); this module holds the options, the errors and the flow with its
//! prompts.

mod instances;
mod outputs;
mod shard_config;

use std::io::{self, BufRead, Write};
use std::time::Duration;

use crate::aws::ec2::Filter;
use crate::aws::{self, AwsError, EnvSource};
use crate::tfrun::{self, Runner, TfError};
use instances::{LIVE_STATES, ids, list, timeout_error, wait_gone};

pub use outputs::{OutputProblem, Shard, parse_outputs};
pub use shard_config::{ShardConfigError, scale_text, scale_to_zero};

const RERUN_CREATE: &str =
    "rerun podplane cluster create --no-apply to regenerate managed .tf files and apply them";

#[derive(Debug, Clone)]
pub struct DeleteOptions {
    pub cluster_id: String,
    pub region: String,
    /// Answers every confirmation with yes and passes `-auto-approve` to `destroy`.
    pub auto_approve: bool,
    /// Time between DescribeInstances polls (15 s by default).
    pub poll_interval: Duration,
    /// How long to wait for Nstance-managed instances to terminate (20 min by default).
    pub wait_timeout: Duration,
    /// The AWS profile from the cluster config (`providers[].profile`); empty means the
    /// standard chain's choice (AWS_PROFILE, else `default`).
    pub profile: String,
    /// Where AWS credentials and endpoint overrides are read from.
    pub env: EnvSource,
}

impl DeleteOptions {
    pub fn new(cluster_id: &str, region: &str) -> DeleteOptions {
        DeleteOptions {
            cluster_id: cluster_id.to_string(),
            region: region.to_string(),
            auto_approve: false,
            poll_interval: Duration::from_secs(15),
            wait_timeout: Duration::from_secs(20 * 60),
            profile: String::new(),
            env: EnvSource::Process,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    Tf(#[from] TfError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("missing {0} output; {RERUN_CREATE}")]
    MissingOutput(&'static str),
    #[error("{name} output is malformed: {reason}; {RERUN_CREATE}")]
    BadOutput {
        name: &'static str,
        #[source]
        reason: OutputProblem,
    },
    #[error(
        "shard config s3://{bucket}/{key} is not valid JSON ({source}); restore a valid config object and rerun podplane cluster delete"
    )]
    BadShardConfig {
        bucket: String,
        key: String,
        #[source]
        source: ShardConfigError,
    },
    #[error(
        "timed out after {after:?} waiting for {count} Nstance-managed EC2 instance(s) of cluster {cluster_id:?} to terminate ({ids}); terminate them and rerun podplane cluster delete"
    )]
    WaitTimeout {
        cluster_id: String,
        after: Duration,
        count: usize,
        ids: String,
    },
    #[error("destroy cancelled")]
    Cancelled,
    #[error("cannot start the async runtime for AWS requests: {0}")]
    Runtime(#[source] io::Error),
    #[error("terminal input/output failed: {0}")]
    Io(#[from] io::Error),
}

/// Runs the delete flow. Blocking: it drives its own runtime for the AWS calls, so call it
/// outside any async context.
///
/// `init` runs first (upstream podplane skipped it): a fresh checkout of the cluster directory (or
/// one whose providers were cleaned) can otherwise read no outputs and destroy nothing.
pub fn delete_cluster(
    runner: &Runner,
    opts: &DeleteOptions,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), DeleteError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DeleteError::Runtime)?;
    // Credentials first: a missing profile or missing credentials should not cost an init and
    // an output first.
    let config = aws::Config::from_env(&opts.region, &opts.env)?.with_profile(&opts.profile);
    let client = aws::Client::new(config)?;
    rt.block_on(client.resolve())?;
    runner.init()?;
    let outputs = runner.output_json()?;
    let (bucket, shards) = parse_outputs(&outputs)?;

    writeln!(
        out,
        "Scaling Nstance-managed groups to zero in shard configs."
    )?;
    for shard in &shards {
        let key = &shard.config_key;
        let (body, etag) = rt.block_on(client.get_object(&bucket, key))?;
        let bad = |source: ShardConfigError| DeleteError::BadShardConfig {
            bucket: bucket.clone(),
            key: key.clone(),
            source,
        };
        let text = String::from_utf8(body).map_err(|e| bad(e.into()))?;
        match scale_text(&text).map_err(bad)? {
            None => writeln!(out, "  {}: s3://{bucket}/{key} already at zero", shard.zone)?,
            Some(new) => {
                rt.block_on(client.put_object_if_match(&bucket, key, new.into_bytes(), &etag))?;
                writeln!(out, "  {}: s3://{bucket}/{key} scaled to zero", shard.zone)?;
            }
        }
    }

    writeln!(
        out,
        "Waiting for Nstance-managed EC2 instances to terminate."
    )?;
    let managed = [
        Filter::new("tag:nstance:cluster-id", &[&opts.cluster_id]),
        Filter::new("tag:nstance:managed", &["true"]),
        Filter::new("instance-state-name", &LIVE_STATES),
    ];
    let remaining = wait_gone(&rt, &client, &managed, opts, out)?;
    if !remaining.is_empty() {
        writeln!(
            out,
            "{} Nstance-managed EC2 instance(s) still present after {:?}:",
            remaining.len(),
            opts.wait_timeout
        )?;
        list(&remaining, out)?;
        let question = "Terminate remaining Nstance-managed EC2 instances directly before destroy?";
        if !tfrun::confirm(question, opts.auto_approve, input, out)? {
            return Err(timeout_error(opts, &remaining));
        }
        rt.block_on(client.terminate_instances(&ids(&remaining)))?;
        writeln!(
            out,
            "Terminated {} instance(s); waiting for them to go.",
            remaining.len()
        )?;
        let still = wait_gone(&rt, &client, &managed, opts, out)?;
        if !still.is_empty() {
            return Err(timeout_error(opts, &still));
        }
    }

    if !tfrun::confirm(
        "Destroy OpenTofu/Terraform-managed resources?",
        opts.auto_approve,
        input,
        out,
    )? {
        return Err(DeleteError::Cancelled);
    }
    runner.destroy(opts.auto_approve)?;

    let tagged = [
        Filter::new("tag:nstance:cluster-id", &[&opts.cluster_id]),
        Filter::new("instance-state-name", &LIVE_STATES),
    ];
    let dangling = rt.block_on(client.describe_instances(&tagged))?;
    if !dangling.is_empty() {
        writeln!(
            out,
            "{} EC2 instance(s) tagged nstance:cluster-id={} remain:",
            dangling.len(),
            opts.cluster_id
        )?;
        list(&dangling, out)?;
        if tfrun::confirm(
            "Terminate dangling EC2 instances?",
            opts.auto_approve,
            input,
            out,
        )? {
            rt.block_on(client.terminate_instances(&ids(&dangling)))?;
            writeln!(
                out,
                "Terminated {} dangling EC2 instance(s).",
                dangling.len()
            )?;
        } else {
            writeln!(
                out,
                "Left {} dangling EC2 instance(s) in place.",
                dangling.len()
            )?;
        }
    }

    writeln!(
        out,
        "Cluster {:?} destroy completed. Config and generated .tf files were left in place.",
        opts.cluster_id
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
