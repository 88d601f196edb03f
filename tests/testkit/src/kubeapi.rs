//! A STAND-IN Kubernetes API server for tests: plain HTTP/1.1 on loopback, serving only what
//! `podplane install`/`uninstall`/`components` and `kubectl get` use, for two resources, core
//! `v1` Secrets and Flux `helm.toolkit.fluxcd.io/v2` HelmReleases:
//!
//! * legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/helm.toolkit.fluxcd.io/v2`);
//! * GET of one object, LIST (namespaced or across namespaces, with an equality
//!   `labelSelector`), WATCH (`?watch=true&resourceVersion=N`: chunked JSON lines from the
//!   version on, until `timeoutSeconds`), and PATCH with JSON merge-patch semantics (RFC 7386,
//!   by the `json-patch` crate's `merge`);
//! * bearer tokens: when [`KubeApi::accept_tokens`] has set any, other tokens get 401; paths
//!   added with [`KubeApi::forbid`] get 403 (an RBAC denial); paths given [`KubeApi::fixed`]
//!   answers (a stand-in OIDC issuer's discovery and token endpoints) get those; paths given
//!   to [`KubeApi::stall`] are never answered.
//!
//! It is not a Kubernetes: no validation, no admission, no controllers. Tests play the
//! controller (Flux) themselves with [`KubeApi::put`]. Every request is recorded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const HELM_GV: &str = "helm.toolkit.fluxcd.io/v2";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub token: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    /// (plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    /// Every change: (resourceVersion, type, plural, object).
    log: Vec<(u64, &'static str, String, Value)>,
    rv: u64,
    tokens: Vec<String>,
    forbidden: Vec<String>,
    /// Paths whose requests are read and never answered (a stalled server).
    stalled: Vec<String>,
    /// Fixed answers by path, outside the API (e.g. a stand-in OIDC issuer's endpoints).
    fixed: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    streams: Vec<TcpStream>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stopped: AtomicBool,
}

/// The stand-in server; stops when dropped.
pub struct KubeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Only the handle from [`KubeApi::start`] stops the server when dropped.
    owner: bool,
}

impl KubeApi {
    pub fn start() -> KubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stopped: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(c) = conn.try_clone() {
                    s.state.lock().unwrap().streams.push(c);
                }
                let s = s.clone();
                thread::spawn(move || serve(&s, conn));
            }
        });
        KubeApi {
            addr,
            shared,
            owner: true,
        }
    }

    /// Another handle to the same server (for a thread playing the controller); dropping it
    /// leaves the server running.
    pub fn clone_handle(&self) -> KubeApi {
        KubeApi {
            addr: self.addr,
            shared: self.shared.clone(),
            owner: false,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Only these bearer tokens are accepted from now on.
    pub fn accept_tokens(&self, tokens: &[&str]) {
        self.shared.state.lock().unwrap().tokens = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// Requests whose path starts with `prefix` get 403 Forbidden.
    pub fn forbid(&self, prefix: &str) {
        self.shared
            .state
            .lock()
            .unwrap()
            .forbidden
            .push(prefix.into());
    }

    /// Requests whose path starts with `prefix` are read and never answered.
    pub fn stall(&self, prefix: &str) {
        self.shared
            .state
            .lock()
            .unwrap()
            .stalled
            .push(prefix.into());
    }

    /// Answers any request for `path` with 200 and `body`, without checking the token: for a
    /// stand-in OIDC issuer (discovery document, token endpoint) next to the API.
    pub fn fixed(&self, path: &str, body: Value) {
        self.shared
            .state
            .lock()
            .unwrap()
            .fixed
            .insert(path.into(), body);
    }

    /// Creates or replaces an object of `plural` (`secrets` or `helmreleases`), as a controller
    /// would; watchers see ADDED or MODIFIED.
    pub fn put(&self, plural: &str, mut obj: Value) {
        let mut st = self.shared.state.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = rv.to_string().into();
        let key = key(plural, &obj);
        let kind = if st.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.objects.insert(key, obj.clone());
        st.log.push((rv, kind, plural.into(), obj));
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Ends every watch of `plural` with an ERROR event (410 Gone: the version is too old), as
    /// an API server does after compaction; clients must list again.
    pub fn expire_watches(&self, plural: &str) {
        let mut st = self.shared.state.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410});
        st.log.push((rv, "ERROR", plural.into(), gone));
        drop(st);
        self.shared.changed.notify_all();
    }

    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let st = self.shared.state.lock().unwrap();
        st.objects
            .get(&(plural.into(), ns.into(), name.into()))
            .cloned()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    /// Waits until a request with this method has been seen; false on timeout.
    pub fn wait_for(&self, method: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut st = self.shared.state.lock().unwrap();
        loop {
            if st.seen.iter().any(|s| s.method == method) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    /// Goes away: stops accepting and cuts every open connection (watches included).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        let mut st = self.shared.state.lock().unwrap();
        for s in st.streams.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(st);
        self.shared.changed.notify_all();
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if self.owner {
            self.stop();
        }
    }
}

fn key(plural: &str, obj: &Value) -> (String, String, String) {
    let m = &obj["metadata"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (plural.into(), s(&m["namespace"]), s(&m["name"]))
}

struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(16 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

fn respond(w: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let text = body.to_string();
    write!(
        w,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )?;
    w.flush()
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn serve(shared: &Shared, conn: TcpStream) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let token = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        {
            let mut st = shared.state.lock().unwrap();
            st.seen.push(Seen {
                method: req.method.clone(),
                target: req.target.clone(),
                token: token.clone(),
                body: req.body.clone(),
            });
        }
        shared.changed.notify_all();
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let q: BTreeMap<String, String> = url_query(query);
        let refusal = {
            let mut st = shared.state.lock().unwrap();
            if st.stalled.iter().any(|p| path.starts_with(p.as_str())) {
                // Hold the connection open, silent, until the server stops.
                while !shared.stopped.load(Ordering::SeqCst) {
                    st = shared
                        .changed
                        .wait_timeout(st, Duration::from_millis(200))
                        .unwrap()
                        .0;
                }
                return;
            }
            if let Some(b) = st.fixed.get(path) {
                Some((200, b.clone()))
            } else if !st.tokens.is_empty()
                && !token.as_ref().is_some_and(|t| st.tokens.contains(t))
            {
                Some(status(401, "Unauthorized", "Unauthorized"))
            } else if st.forbidden.iter().any(|p| path.starts_with(p.as_str())) {
                Some(status(
                    403,
                    "Forbidden",
                    &format!("stand-in RBAC: access to {path} is forbidden"),
                ))
            } else {
                None
            }
        };
        let result = match refusal {
            Some((c, b)) => respond(&mut w, c, &b),
            None if q.get("watch").is_some_and(|v| v == "true" || v == "1") => {
                watch(shared, &mut w, path, &q);
                return;
            }
            None => {
                let (c, b) = handle(shared, &req, path, &q);
                respond(&mut w, c, &b)
            }
        };
        if result.is_err() {
            return;
        }
    }
}

fn url_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (plural, namespace or "" for all, name or "") of a resource path.
fn route(path: &str) -> Option<(String, String, String)> {
    let rest = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix(&format!("/apis/{HELM_GV}/")[..]))?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (ns, rest) = match segs.as_slice() {
        ["namespaces", ns, rest @ ..] => (ns.to_string(), rest.to_vec()),
        rest => (String::new(), rest.to_vec()),
    };
    match rest.as_slice() {
        [plural] => Some((plural.to_string(), ns, String::new())),
        [plural, name] => Some((plural.to_string(), ns, name.to_string())),
        _ => None,
    }
}

fn selected(obj: &Value, selector: Option<&String>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    sel.split(',').all(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v.trim_start_matches('='))
    })
}

fn discovery(path: &str) -> Option<Value> {
    let res = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
               "verbs": ["get", "list", "watch", "patch"]})
    };
    Some(match path {
        "/api" => json!({"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
            "name": "helm.toolkit.fluxcd.io",
            "versions": [{"groupVersion": HELM_GV, "version": "v2"}],
            "preferredVersion": {"groupVersion": HELM_GV, "version": "v2"}}]}),
        "/api/v1" => json!({"kind": "APIResourceList", "groupVersion": "v1",
            "resources": [res("secrets", "Secret", true), res("namespaces", "Namespace", false)]}),
        p if p == format!("/apis/{HELM_GV}") => json!({"kind": "APIResourceList",
            "apiVersion": "v1", "groupVersion": HELM_GV,
            "resources": [{"name": "helmreleases", "singularName": "helmrelease", "namespaced": true,
                "kind": "HelmRelease", "shortNames": ["hr"],
                "verbs": ["get", "list", "watch", "patch"]}]}),
        _ => return None,
    })
}

fn list_kind(plural: &str) -> (&'static str, &'static str) {
    if plural == "secrets" {
        ("v1", "SecretList")
    } else {
        (HELM_GV, "HelmReleaseList")
    }
}

fn handle(shared: &Shared, req: &Req, path: &str, q: &BTreeMap<String, String>) -> (u16, Value) {
    if req.method == "GET"
        && let Some(d) = discovery(path)
    {
        return (200, d);
    }
    let Some((plural, ns, name)) = route(path) else {
        return status(
            404,
            "NotFound",
            &format!("the stand-in does not serve {path}"),
        );
    };
    let mut st = shared.state.lock().unwrap();
    match (req.method.as_str(), name.is_empty()) {
        ("GET", true) => {
            let items: Vec<Value> = st
                .objects
                .iter()
                .filter(|((p, n, _), o)| {
                    *p == plural
                        && (ns.is_empty() || *n == ns)
                        && selected(o, q.get("labelSelector"))
                })
                .map(|(_, o)| o.clone())
                .collect();
            let (api_version, kind) = list_kind(&plural);
            (
                200,
                json!({"apiVersion": api_version, "kind": kind,
                       "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            )
        }
        ("GET", false) => match st.objects.get(&(plural.clone(), ns, name.clone())) {
            Some(o) => (200, o.clone()),
            None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
        },
        ("PATCH", false) => {
            let ct = req
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            if !ct.starts_with("application/merge-patch+json") {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!("the stand-in only merge-patches, not {ct}"),
                );
            }
            let Ok(patch) = serde_json::from_slice::<Value>(&req.body) else {
                return status(400, "BadRequest", "the patch is not JSON");
            };
            let k = (plural.clone(), ns, name.clone());
            let Some(obj) = st.objects.get_mut(&k) else {
                return status(404, "NotFound", &format!("{plural} \"{name}\" not found"));
            };
            json_patch::merge(obj, &patch);
            st.rv += 1;
            let rv = st.rv;
            let obj = st.objects.get_mut(&k).unwrap();
            obj["metadata"]["resourceVersion"] = rv.to_string().into();
            let obj = obj.clone();
            st.log.push((rv, "MODIFIED", plural, obj.clone()));
            drop(st);
            shared.changed.notify_all();
            (200, obj)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("the stand-in does not {} {path}", req.method),
        ),
    }
}

fn watch(shared: &Shared, w: &mut TcpStream, path: &str, q: &BTreeMap<String, String>) {
    let Some((plural, ns, _)) = route(path) else {
        let _ = respond(w, 404, &status(404, "NotFound", path).1);
        return;
    };
    let mut from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let secs: u64 = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let end = Instant::now() + Duration::from_secs(secs);
    if write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .and_then(|_| w.flush())
    .is_err()
    {
        return;
    }
    let mut st = shared.state.lock().unwrap();
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let events: Vec<String> = st
            .log
            .iter()
            .filter(|(rv, _, p, o)| {
                *rv > from
                    && *p == plural
                    && (ns.is_empty() || o["metadata"]["namespace"] == ns.as_str())
            })
            .map(|(_, t, _, o)| format!("{}\n", json!({"type": t, "object": o})))
            .collect();
        from = st.rv;
        drop(st);
        for e in events {
            if write!(w, "{:x}\r\n{e}\r\n", e.len())
                .and_then(|_| w.flush())
                .is_err()
            {
                return;
            }
        }
        st = shared.state.lock().unwrap();
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            drop(st);
            let _ = write!(w, "0\r\n\r\n").and_then(|_| w.flush());
            return;
        }
        if st.rv == from {
            st = shared
                .changed
                .wait_timeout(st, left.min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }
}
