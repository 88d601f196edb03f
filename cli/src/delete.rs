//! `cluster delete` after the config is loaded: scale Nstance groups to zero through the shard
//! configs in S3, wait for their EC2 instances to go, run `destroy`, then offer to terminate
//! anything still tagged with the cluster id.

use std::io::{self, BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws::ec2::{Filter, Instance};
use crate::aws::{self, AwsError, EnvSource};
use crate::tfrun::{self, Runner, TfError};

/// States an instance can be in before it is gone (everything but `terminated`).
const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

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
    BadOutput { name: &'static str, reason: String },
    #[error(
        "shard config s3://{bucket}/{key} is not valid JSON ({reason}); restore a valid config object and rerun podplane cluster delete"
    )]
    BadShardConfig {
        bucket: String,
        key: String,
        reason: String,
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
    Runtime(io::Error),
    #[error("terminal input/output failed: {0}")]
    Io(#[from] io::Error),
}

/// One entry of the `nstance_shards` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub zone: String,
    pub config_key: String,
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
    // Credentials first: missing ones should not cost an init and an output first.
    let client = aws::Client::new(aws::Config::from_env(&opts.region, &opts.env)?)?;
    runner.init()?;
    let outputs = runner.output_json()?;
    let (bucket, shards) = parse_outputs(&outputs)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DeleteError::Runtime)?;

    writeln!(
        out,
        "Scaling Nstance-managed groups to zero in shard configs."
    )?;
    for shard in &shards {
        let key = &shard.config_key;
        let (body, etag) = rt.block_on(client.get_object(&bucket, key))?;
        let bad = |reason: String| DeleteError::BadShardConfig {
            bucket: bucket.clone(),
            key: key.clone(),
            reason,
        };
        let text = String::from_utf8(body).map_err(|e| bad(e.to_string()))?;
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

/// Reads `nstance_bucket` and `nstance_shards` (sorted by zone) from `output -json`.
pub fn parse_outputs(outputs: &Value) -> Result<(String, Vec<Shard>), DeleteError> {
    let value = |name: &'static str| {
        outputs
            .get(name)
            .and_then(|o| o.get("value"))
            .filter(|v| !v.is_null())
            .ok_or(DeleteError::MissingOutput(name))
    };
    let bucket = value("nstance_bucket")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DeleteError::BadOutput {
            name: "nstance_bucket",
            reason: "expected a non-empty string".into(),
        })?
        .to_string();
    let bad = |reason: String| DeleteError::BadOutput {
        name: "nstance_shards",
        reason,
    };
    let map = value("nstance_shards")?
        .as_object()
        .ok_or_else(|| bad("expected a map of zone to {config_key, server_ips}".into()))?;
    let mut shards = Vec::new();
    for (zone, shard) in map {
        let config_key = shard
            .get("config_key")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("shard {zone:?} has no config_key string")))?;
        shards.push(Shard {
            zone: zone.clone(),
            config_key: config_key.to_string(),
        });
    }
    shards.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok((bucket, shards))
}

/// Sets `groups.<tenant>.<group>.size` to 0 for every group object; true when anything changed.
pub fn scale_to_zero(doc: &mut Value) -> bool {
    let Some(groups) = doc.get_mut("groups").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    for tenant in groups.values_mut().filter_map(Value::as_object_mut) {
        for group in tenant.values_mut().filter_map(Value::as_object_mut) {
            if group.get("size").and_then(Value::as_f64) != Some(0.0) {
                group.insert("size".to_string(), Value::from(0));
                changed = true;
            }
        }
    }
    changed
}

/// The scaled shard config text, or `None` when it is already at zero. Only the size values are
/// rewritten in place, so key order and formatting survive; if that edit cannot be proven equal
/// to [`scale_to_zero`], the document is re-serialized instead.
pub fn scale_text(text: &str) -> Result<Option<String>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if !doc.is_object() {
        return Err("expected a JSON object".into());
    }
    let mut scaled = doc;
    if !scale_to_zero(&mut scaled) {
        return Ok(None);
    }
    let mut scan = Scan {
        s: text.as_bytes(),
        i: 0,
        edits: Vec::new(),
    };
    if scan.value(Level::Root).is_some() {
        let mut edited = text.to_string();
        for (start, end, with) in scan.edits.iter().rev() {
            edited.replace_range(*start..*end, with);
        }
        if serde_json::from_str::<Value>(&edited).is_ok_and(|v| v == scaled) {
            return Ok(Some(edited));
        }
    }
    serde_json::to_string_pretty(&scaled)
        .map(|s| Some(s + "\n"))
        .map_err(|e| e.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Groups,
    Tenant,
    Group,
    Other,
}

/// A JSON walker that records byte edits for the size values (`None` on malformed input).
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    edits: Vec<(usize, usize, &'static str)>,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, level: Level) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(level),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(Level::Other)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i));
                }
                _ => self.i += 1,
            }
        }
    }

    fn object(&mut self, level: Level) -> Option<()> {
        let open = self.i;
        self.i += 1;
        self.ws();
        let mut has_size = false;
        let empty = self.peek()? == b'}';
        if empty {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let (ks, ke) = self.string()?;
                let key: String = serde_json::from_slice(&self.s[ks..ke]).ok()?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                let child = match (level, key.as_str()) {
                    (Level::Root, "groups") => Level::Groups,
                    (Level::Groups, _) => Level::Tenant,
                    (Level::Tenant, _) => Level::Group,
                    _ => Level::Other,
                };
                if level == Level::Group && key == "size" {
                    has_size = true;
                    self.ws();
                    let start = self.i;
                    self.value(Level::Other)?;
                    let raw = &self.s[start..self.i];
                    let zero = serde_json::from_slice::<Value>(raw)
                        .ok()
                        .and_then(|v| v.as_f64())
                        == Some(0.0);
                    if !zero {
                        self.edits.push((start, self.i, "0"));
                    }
                } else {
                    self.value(child)?;
                }
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if level == Level::Group && !has_size {
            let with = if empty {
                "\"size\": 0"
            } else {
                "\"size\": 0, "
            };
            self.edits.push((open + 1, open + 1, with));
        }
        Some(())
    }
}

/// Polls until no instance matches `filters` or the wait times out; returns what is left.
fn wait_gone(
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

fn list(instances: &[Instance], out: &mut impl Write) -> io::Result<()> {
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

fn ids(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

fn timeout_error(opts: &DeleteOptions, left: &[Instance]) -> DeleteError {
    DeleteError::WaitTimeout {
        cluster_id: opts.cluster_id.clone(),
        after: opts.wait_timeout,
        count: left.len(),
        ids: ids(left).join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scale_to_zero_sets_every_group_size() {
        let mut doc = json!({
            "version": 3,
            "groups": {
                "default": {"workers": {"size": 3, "type": "m7i.large"}, "gpu": {"size": 0}},
                "team-b": {"batch": {"size": 2.5, "labels": {"size": 9}}, "empty": {}},
                "odd": "not an object"
            },
            "size": 7
        });
        assert!(scale_to_zero(&mut doc));
        assert_eq!(
            doc,
            json!({
                "version": 3,
                "groups": {
                    "default": {"workers": {"size": 0, "type": "m7i.large"}, "gpu": {"size": 0}},
                    "team-b": {"batch": {"size": 0, "labels": {"size": 9}}, "empty": {"size": 0}},
                    "odd": "not an object"
                },
                "size": 7
            })
        );
        assert!(!scale_to_zero(&mut doc));
        assert!(!scale_to_zero(
            &mut json!({"groups": {"t": {"g": {"size": 0.0}}}})
        ));
        assert!(!scale_to_zero(&mut json!({"other": 1})));
        assert!(!scale_to_zero(&mut json!([1, 2])));
    }

    #[test]
    fn scale_text_keeps_order_and_formatting() {
        let text = "{\n  \"zeta\": {\"size\": 5},\n  \"groups\": {\n    \"t\": {\n      \"w\": {\"type\": \"x\", \"size\": 12, \"arr\": [1, {\"size\": 3}]},\n      \"e\": {}, \"n\": {\"a\": \"}\\\"{\"}\n    }\n  }\n}\n";
        let got = scale_text(text).unwrap().unwrap();
        assert_eq!(
            got,
            "{\n  \"zeta\": {\"size\": 5},\n  \"groups\": {\n    \"t\": {\n      \"w\": {\"type\": \"x\", \"size\": 0, \"arr\": [1, {\"size\": 3}]},\n      \"e\": {\"size\": 0}, \"n\": {\"size\": 0, \"a\": \"}\\\"{\"}\n    }\n  }\n}\n"
        );
        assert_eq!(scale_text(&got).unwrap(), None);
        assert!(scale_text("[1]").is_err());
        assert!(scale_text("{").is_err());
    }

    #[test]
    fn outputs_are_required() {
        let err = parse_outputs(&json!({})).unwrap_err().to_string();
        assert_eq!(
            err,
            "missing nstance_bucket output; rerun podplane cluster create --no-apply to regenerate managed .tf files and apply them"
        );
        let err = parse_outputs(&json!({"nstance_bucket": {"value": "b"}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("missing nstance_shards output; rerun"),
            "{err}"
        );
        let (bucket, shards) = parse_outputs(&json!({
            "nstance_bucket": {"value": "b"},
            "nstance_shards": {"value": {
                "z-b": {"config_key": "k2", "server_ips": []},
                "z-a": {"config_key": "k1", "server_ips": ["10.0.0.1"]}
            }}
        }))
        .unwrap();
        assert_eq!(bucket, "b");
        assert_eq!(
            shards.iter().map(|s| s.zone.as_str()).collect::<Vec<_>>(),
            ["z-a", "z-b"]
        );
        let err = parse_outputs(&json!({"nstance_bucket": {"value": 3}}))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("nstance_bucket output is malformed"),
            "{err}"
        );
    }
}
