//! Test support shared by the workspace's tests, demo and benchmarks.
//!
//! * [`Mirror`]: a small, real HTTP/1.1 server on loopback that serves artifacts from memory or
//!   disk, honours `Range` (unless told not to) and injects faults on demand: resets mid-body,
//!   error statuses, truncated or wrong bodies, stalls and slow trickles. It records every request
//!   so tests can assert on retries and resume offsets.
//! * [`fixtures`]: artifacts of real sizes filled with random bytes, laid out like the deps mirror
//!   (`<root>/vmconfig/artifacts/<key>/<version>/<basename>`), plus a manifest that pins them.
//! * [`kubeapi`]: a stand-in Kubernetes API server (Secrets and Flux HelmReleases: discovery,
//!   GET, LIST, WATCH, merge-PATCH, 401/403, stalls) for the component commands' tests.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub mod fixtures;
pub mod kubeapi;
pub mod node;
pub mod oci;
pub mod tarball;
pub mod tools;

/// One misbehaviour for one response. Byte counts refer to the body of that response (after any
/// range is applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Send the headers and `n` body bytes, then reset the connection (TCP RST).
    ResetAfter(u64),
    /// Send the headers with the full `Content-Length` and `n` bytes, then close cleanly (FIN).
    TruncateAfter(u64),
    /// Send a body of the right length in which one byte is wrong.
    WrongBytes,
    /// Answer 200 with an empty body.
    Empty,
    /// Send `n` bytes, then go silent for the duration, then close.
    StallAfter(u64, Duration),
    /// Send the whole body slowly: `chunk` bytes, then a pause, until done.
    Trickle { chunk: usize, pause: Duration },
}

/// What the server saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

#[derive(Clone)]
enum Body {
    Memory(Arc<Vec<u8>>),
    File(PathBuf, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Memory(b) => b.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

struct Entry {
    body: Body,
    /// Faults used one per request, in order; afterwards `always` (if any) applies.
    queue: VecDeque<Fault>,
    always: Option<Fault>,
    ranges: bool,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Serve files below this directory for paths with no entry.
    root: Option<PathBuf>,
    requests: Vec<Request>,
}

/// Responses being sent now, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A loopback HTTP server with fault injection. Dropping it stops accepting connections.
pub struct Mirror {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    in_flight: Arc<InFlight>,
}

impl Mirror {
    /// Start on `127.0.0.1` with an ephemeral port.
    pub fn start() -> Mirror {
        Mirror::bind("127.0.0.1:0").expect("bind loopback")
    }

    /// Start on a given address, e.g. `127.0.0.1:8080`.
    pub fn bind(addr: &str) -> std::io::Result<Mirror> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(InFlight::default());
        let (st, sp, fl) = (state.clone(), stop.clone(), in_flight.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, fl) = (st.clone(), fl.clone());
                thread::spawn(move || {
                    let _ = serve_connection(conn, &st, &fl);
                });
            }
        });
        Ok(Mirror {
            addr,
            state,
            stop,
            in_flight,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `base_url()` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Serve `data` at `path`.
    pub fn add(&self, path: &str, data: Vec<u8>) {
        self.insert(path, Body::Memory(Arc::new(data)));
    }

    /// Serve the file at `file` at `path`.
    pub fn add_file(&self, path: &str, file: &Path) -> std::io::Result<()> {
        let len = std::fs::metadata(file)?.len();
        self.insert(path, Body::File(file.to_path_buf(), len));
        Ok(())
    }

    /// Serve every file below `dir` at its relative path.
    pub fn serve_dir(&self, dir: &Path) {
        self.state.lock().unwrap().root = Some(dir.to_path_buf());
    }

    fn insert(&self, path: &str, body: Body) {
        self.state.lock().unwrap().entries.insert(
            path.to_string(),
            Entry {
                body,
                queue: VecDeque::new(),
                always: None,
                ranges: true,
            },
        );
    }

    /// Queue faults for the next requests of `path`, one per request.
    pub fn faults(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut st = self.state.lock().unwrap();
        let e = st.entries.get_mut(path).expect("faults for an added path");
        e.queue.extend(faults);
    }

    /// Apply `fault` to every request of `path` once the queue is empty.
    pub fn always(&self, path: &str, fault: Fault) {
        let mut st = self.state.lock().unwrap();
        st.entries.get_mut(path).expect("added path").always = Some(fault);
    }

    /// Ignore `Range` headers for `path` (answer 200 with the whole body).
    pub fn no_ranges(&self, path: &str) {
        let mut st = self.state.lock().unwrap();
        st.entries.get_mut(path).expect("added path").ranges = false;
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The most responses that were being sent at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.max.load(Ordering::SeqCst)
    }

    /// Requests seen for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(
    conn: TcpStream,
    state: &Mutex<State>,
    in_flight: &InFlight,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range = Some(value.trim().to_string());
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        let n = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
        in_flight.max.fetch_max(n, Ordering::SeqCst);
        let keep = respond(&mut out, state, &method, &path, range);
        in_flight.now.fetch_sub(1, Ordering::SeqCst);
        let keep = keep?;
        if !keep {
            return Ok(());
        }
    }
}

/// Write one response. Returns whether the connection may be reused.
fn respond(
    out: &mut TcpStream,
    state: &Mutex<State>,
    method: &str,
    path: &str,
    range: Option<String>,
) -> std::io::Result<bool> {
    let (body, fault, ranges) = {
        let mut st = state.lock().unwrap();
        st.requests.push(Request {
            method: method.to_string(),
            path: path.to_string(),
            range: range.clone(),
        });
        let root = st.root.clone();
        match st.entries.get_mut(path) {
            Some(e) => {
                let fault = e.queue.pop_front().or_else(|| e.always.clone());
                (Some(e.body.clone()), fault, e.ranges)
            }
            None => {
                let file = root.and_then(|r| safe_join(&r, path));
                let body = file.and_then(|f| {
                    let md = std::fs::metadata(&f).ok()?;
                    md.is_file().then_some(Body::File(f, md.len()))
                });
                (body, None, true)
            }
        }
    };
    if method != "GET" && method != "HEAD" {
        write_head(
            out,
            405,
            "Method Not Allowed",
            &[("Content-Length", "0".into())],
        )?;
        return Ok(true);
    }
    let Some(body) = body else {
        write_head(out, 404, "Not Found", &[("Content-Length", "0".into())])?;
        return Ok(true);
    };
    if let Some(Fault::Status(code)) = fault {
        write_head(
            out,
            code,
            "Injected",
            &[
                ("Content-Length", "0".into()),
                ("Connection", "close".into()),
            ],
        )?;
        return Ok(false);
    }
    let total = if fault == Some(Fault::Empty) {
        0
    } else {
        body.len()
    };
    let mut start = 0;
    let mut status = (200, "OK");
    let mut headers = vec![(
        "Accept-Ranges",
        if ranges { "bytes" } else { "none" }.to_string(),
    )];
    if let (true, Some(r)) = (ranges, range.as_deref()) {
        match parse_range(r) {
            Some((s, _)) if s >= total => {
                headers.push(("Content-Range", format!("bytes */{total}")));
                headers.push(("Content-Length", "0".into()));
                write_head(out, 416, "Range Not Satisfiable", &headers)?;
                return Ok(true);
            }
            Some((s, end)) => {
                let end = end.unwrap_or(total - 1).min(total - 1);
                start = s;
                status = (206, "Partial Content");
                headers.push(("Content-Range", format!("bytes {s}-{end}/{total}")));
                // Only open-ended ranges are needed by clients here; a closed one is honoured by
                // limiting the length below.
                headers.push(("Content-Length", (end + 1 - s).to_string()));
                let len = end + 1 - s;
                return send(out, status, headers, &body, start, len, fault, method);
            }
            None => {}
        }
    }
    headers.push(("Content-Length", total.to_string()));
    send(out, status, headers, &body, start, total, fault, method)
}

#[allow(clippy::too_many_arguments)]
fn send(
    out: &mut TcpStream,
    status: (u16, &str),
    mut headers: Vec<(&str, String)>,
    body: &Body,
    start: u64,
    len: u64,
    fault: Option<Fault>,
    method: &str,
) -> std::io::Result<bool> {
    if fault.is_some() {
        headers.push(("Connection", "close".into()));
    }
    write_head(out, status.0, status.1, &headers)?;
    if method == "HEAD" {
        return Ok(fault.is_none());
    }
    let mut reader = open_body(body, start)?;
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    // Where WrongBytes flips a byte, relative to the start of this response body.
    let flip = len / 2;
    let limit = match fault {
        Some(Fault::ResetAfter(n))
        | Some(Fault::TruncateAfter(n))
        | Some(Fault::StallAfter(n, _)) => n.min(len),
        _ => len,
    };
    while sent < limit {
        let want = match fault {
            Some(Fault::Trickle { chunk, .. }) => chunk.min(buf.len()),
            _ => buf.len(),
        };
        let want = want.min((limit - sent) as usize);
        reader.read_exact(&mut buf[..want])?;
        if fault == Some(Fault::WrongBytes) && (sent..sent + want as u64).contains(&flip) {
            buf[(flip - sent) as usize] ^= 0xff;
        }
        out.write_all(&buf[..want])?;
        sent += want as u64;
        if let Some(Fault::Trickle { pause, .. }) = fault
            && sent < limit
        {
            out.flush()?;
            thread::sleep(pause);
        }
    }
    out.flush()?;
    match fault {
        Some(Fault::ResetAfter(_)) => {
            reset(out);
            Ok(false)
        }
        Some(Fault::TruncateAfter(_)) => {
            let _ = out.shutdown(Shutdown::Both);
            Ok(false)
        }
        Some(Fault::StallAfter(_, d)) => {
            thread::sleep(d);
            let _ = out.shutdown(Shutdown::Both);
            Ok(false)
        }
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

fn open_body(body: &Body, start: u64) -> std::io::Result<Box<dyn Read>> {
    Ok(match body {
        Body::Memory(data) => Box::new(SharedReader {
            data: data.clone(),
            pos: start as usize,
        }),
        Body::File(p, _) => {
            let mut f = File::open(p)?;
            f.seek(SeekFrom::Start(start))?;
            Box::new(f)
        }
    })
}

/// Reads a shared in-memory body from a position.
struct SharedReader {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Close with SO_LINGER 0 so the peer sees a connection reset.
fn reset(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // The socket closes (with RST) when the last handle drops.
}

fn write_head(
    out: &mut TcpStream,
    code: u16,
    reason: &str,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {code} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.strip_prefix("bytes=")?;
    let (s, e) = spec.split_once('-')?;
    let start = s.trim().parse().ok()?;
    let end = match e.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

fn safe_join(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    for seg in url_path.split('/').filter(|s| !s.is_empty()) {
        if seg == ".." || seg == "." {
            return None;
        }
        p.push(seg);
    }
    Some(p)
}

/// sha256 of bytes, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// sha512 of bytes, as lowercase hex.
pub fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

/// `n` pseudo-random bytes from `seed`.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}
