//! Waiting for HelmReleases to become Ready: a LIST for the current state, then a WATCH from
//! its resourceVersion (listing again whenever the server ends the watch or says the version
//! is gone), until every awaited release has `Ready=True` or the time is up. A short loss of
//! the API server is retried a few times; a longer one ends the wait with an error saying the
//! patch is applied and how to follow up.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use kube::core::{DynamicObject, WatchEvent};
use serde_json::Value;

use super::cluster::{Cluster, KubeError, human};

/// How often, and how far apart, a lost connection is retried before giving up.
const RECONNECTS: u32 = 3;
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Where one awaited HelmRelease stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not in the cluster yet.
    Missing,
    /// Present; its Ready condition is not True. The condition's message, if any.
    NotReady(String),
    Ready(String),
}

impl State {
    pub fn text(&self) -> String {
        match self {
            State::Missing => "waiting for HelmRelease to be created".into(),
            State::NotReady(m) if m.is_empty() => "not ready".into(),
            State::NotReady(m) => format!("not ready: {m}"),
            State::Ready(_) => "ready".into(),
        }
    }
}

/// The state of a HelmRelease object from its `Ready` condition.
pub fn state_of(obj: &Value) -> State {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let message = ready
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        // A hostile or broken controller's message is shown, not trusted with the terminal.
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect::<String>();
    match ready.and_then(|c| c.get("status")).and_then(Value::as_str) {
        Some("True") => State::Ready(message),
        _ => State::NotReady(message),
    }
}

/// (namespace, name) of a HelmRelease.
pub type Ref = (String, String);

fn key_of(o: &DynamicObject) -> Option<Ref> {
    Some((o.metadata.namespace.clone()?, o.metadata.name.clone()?))
}

fn object_state(o: &DynamicObject) -> State {
    state_of(&serde_json::json!({ "status": o.data.get("status").cloned().unwrap_or_default() }))
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "timed out after {} waiting for HelmReleases to be Ready: {}; Flux is still reconciling: follow it with `kubectl get helmreleases -A` or `podplane components`",
        human(*after),
        not_ready.iter().map(|((ns, n), s)| format!("{ns}/{n} ({})", s.text())).collect::<Vec<_>>().join(", ")
    )]
    Timeout {
        after: Duration,
        not_ready: Vec<(Ref, State)>,
    },
    #[error(
        "lost the API server while waiting for HelmReleases to be Ready (the patch is applied; Flux goes on reconciling without us); check progress later with `podplane components`: {source}"
    )]
    Lost {
        #[source]
        source: KubeError,
    },
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// Shows the states as they change: a redrawn block on a terminal, a plain line per change
/// otherwise.
pub struct Progress<'a> {
    out: &'a mut dyn Write,
    terminal: bool,
    drawn: usize,
    last: BTreeMap<Ref, State>,
}

impl<'a> Progress<'a> {
    pub fn new(out: &'a mut dyn Write, terminal: bool) -> Progress<'a> {
        Progress {
            out,
            terminal,
            drawn: 0,
            last: BTreeMap::new(),
        }
    }

    fn show(&mut self, states: &BTreeMap<Ref, State>) {
        if self.terminal {
            if self.drawn > 0 {
                let _ = write!(self.out, "\x1b[{}A", self.drawn);
            }
            for ((ns, n), s) in states {
                let mark = if matches!(s, State::Ready(_)) {
                    "✓"
                } else {
                    "…"
                };
                let _ = writeln!(self.out, "\x1b[2K  {mark} {ns}/{n}: {}", s.text());
            }
            self.drawn = states.len();
        } else {
            for (k, s) in states {
                if self.last.get(k) != Some(s) {
                    let _ = writeln!(self.out, "  {}/{}: {}", k.0, k.1, s.text());
                }
            }
        }
        let _ = self.out.flush();
        self.last = states.clone();
    }
}

/// Waits until every release in `refs` is Ready, or `timeout`.
pub async fn wait_ready(
    cluster: &Cluster,
    refs: &[Ref],
    timeout: Duration,
    progress: &mut Progress<'_>,
) -> Result<(), WaitError> {
    let mut states: BTreeMap<Ref, State> =
        refs.iter().map(|r| (r.clone(), State::Missing)).collect();
    let run = watch_loop(cluster, &mut states, progress);
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(WaitError::Timeout {
            after: timeout,
            not_ready: states
                .into_iter()
                .filter(|(_, s)| !matches!(s, State::Ready(_)))
                .collect(),
        }),
    }
}

fn all_ready(states: &BTreeMap<Ref, State>) -> bool {
    states.values().all(|s| matches!(s, State::Ready(_)))
}

async fn watch_loop(
    cluster: &Cluster,
    states: &mut BTreeMap<Ref, State>,
    progress: &mut Progress<'_>,
) -> Result<(), WaitError> {
    let mut failures = 0;
    loop {
        match watch_once(cluster, states, progress).await {
            Ok(true) => return Ok(()),
            Ok(false) => failures = 0,
            // A refusal is not going away by retrying.
            Err(e @ (KubeError::Unauthorized { .. } | KubeError::Forbidden { .. })) => {
                return Err(e.into());
            }
            Err(e) => {
                failures += 1;
                if failures > RECONNECTS {
                    return Err(WaitError::Lost { source: e });
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

/// One LIST and one WATCH; true when everything is Ready.
async fn watch_once(
    cluster: &Cluster,
    states: &mut BTreeMap<Ref, State>,
    progress: &mut Progress<'_>,
) -> Result<bool, KubeError> {
    let (items, version) = cluster.list_helmreleases().await?;
    for s in states.values_mut() {
        *s = State::Missing;
    }
    for o in &items {
        if let Some(s) = key_of(o).and_then(|k| states.get_mut(&k)) {
            *s = object_state(o);
        }
    }
    progress.show(states);
    if all_ready(states) {
        return Ok(true);
    }
    let mut events = cluster.watch_helmreleases(&version).await?;
    while let Some(ev) = events.next().await? {
        let (o, deleted) = match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, false),
            WatchEvent::Deleted(o) => (o, true),
            WatchEvent::Bookmark(_) => continue,
            // Usually 410 Gone: the version is too old; list again.
            WatchEvent::Error(_) => return Ok(false),
        };
        let Some(s) = key_of(&o).and_then(|k| states.get_mut(&k)) else {
            continue;
        };
        *s = if deleted {
            State::Missing
        } else {
            object_state(&o)
        };
        progress.show(states);
        if all_ready(states) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn states(s: &[(&str, State)]) -> BTreeMap<Ref, State> {
        s.iter()
            .map(|(n, st)| (("ns".to_string(), n.to_string()), st.clone()))
            .collect()
    }

    #[test]
    fn ready_condition_and_hostile_messages() {
        let o = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "True", "message": "x"},
            {"type": "Ready", "status": "False", "message": "bad\u{1b}[2Jthing"}]}});
        assert_eq!(state_of(&o), State::NotReady("bad[2Jthing".into()));
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(state_of(&o), State::Ready(String::new()));
        assert_eq!(state_of(&json!({})), State::NotReady(String::new()));
    }

    #[test]
    fn plain_progress_prints_changes_only() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false);
        p.show(&states(&[("a", State::Missing), ("b", State::Missing)]));
        p.show(&states(&[
            ("a", State::Ready(String::new())),
            ("b", State::Missing),
        ]));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  ns/a: waiting for HelmRelease to be created\n  ns/b: waiting for HelmRelease to be created\n  ns/a: ready\n"
        );
    }

    #[test]
    fn terminal_progress_redraws_the_block() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, true);
        p.show(&states(&[("a", State::Missing), ("b", State::Missing)]));
        p.show(&states(&[
            ("a", State::Ready(String::new())),
            ("b", State::Missing),
        ]));
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("\x1b[2A").count(), 1, "{s:?}");
        assert!(
            s.ends_with(
                "\x1b[2K  ✓ ns/a: ready\n\x1b[2K  … ns/b: waiting for HelmRelease to be created\n"
            ),
            "{s:?}"
        );
    }

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(3)), "3s");
    }
}
