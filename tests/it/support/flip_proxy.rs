//! [`FlipProxy`]: a fault-injecting HTTP/1.1 proxy between `mirror` and a real registry.
//!
//! It forwards every request to the registry (one connection per request, `Connection: close`
//! both ways, so a body simply ends at EOF), logs what passed, counts the body bytes it relayed
//! (the crash test kills `mirror` after a chosen number of them), and applies [`Fault`]s: flip a
//! byte of a blob, corrupt a manifest while keeping it valid JSON, or answer a path with a canned
//! response (hostile manifests, `WWW-Authenticate` headers). Only 127.0.0.1 is ever contacted.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What to break.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Flip one bit of the byte at `offset` of every GET of blob `digest`.
    FlipBlob { digest: String, offset: usize },
    /// Change one hex digit inside the body of every manifest GET whose path ends with
    /// `/manifests/REFERENCE`: still valid JSON, but no longer the bytes of its digest.
    CorruptManifest { reference: String },
    /// Answer every request whose path ends with `path_suffix` with this response instead.
    Respond {
        path_suffix: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// One request that went through.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Response body bytes relayed.
    pub bytes: u64,
    /// Whether a fault changed this response.
    pub faulted: bool,
}

struct State {
    upstream: String,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<Logged>>,
    bytes: AtomicU64,
    bytes_up: AtomicU64,
    /// Microseconds to sleep per 64 KiB relayed, either way (a slow link).
    delay_us: AtomicU64,
    faults_applied: AtomicU64,
    /// Connections being served now.
    active: AtomicU64,
    stop: AtomicBool,
}

pub struct FlipProxy {
    port: u16,
    state: Arc<State>,
}

impl FlipProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FlipProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            bytes: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            delay_us: AtomicU64::new(0),
            faults_applied: AtomicU64::new(0),
            active: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                shared.active.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let _ = serve(conn, &shared);
                    shared.active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FlipProxy { port, state }
    }

    /// `127.0.0.1:PORT` of the proxy: use it as the registry host in Mirrorfiles.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, fault: Fault) {
        self.state.faults.lock().expect("faults").push(fault);
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().expect("faults").clear();
    }

    /// Response body bytes relayed so far.
    pub fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::Relaxed)
    }

    /// Request body bytes relayed so far (uploads).
    pub fn bytes_up(&self) -> u64 {
        self.state.bytes_up.load(Ordering::Relaxed)
    }

    /// Makes the link slow: `per_64k` of sleep for every 64 KiB relayed, either way.
    pub fn set_delay(&self, per_64k: Duration) {
        self.state
            .delay_us
            .store(per_64k.as_micros() as u64, Ordering::Relaxed);
    }

    /// Responses a fault changed so far.
    pub fn faults_applied(&self) -> u64 {
        self.state.faults_applied.load(Ordering::Relaxed)
    }

    /// Waits (at most `limit`) until no connection has been served for a moment: after the
    /// client died, everything it sent is then in the log.
    pub fn wait_idle(&self, limit: Duration) {
        let start = std::time::Instant::now();
        let mut quiet = 0;
        while start.elapsed() < limit && quiet < 3 {
            if self.state.active.load(Ordering::SeqCst) == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything logged so far, and the log emptied.
    pub fn take_log(&self) -> Vec<Logged> {
        std::mem::take(&mut *self.state.log.lock().expect("log"))
    }
}

impl Drop for FlipProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads up to the end of an HTTP head; returns (head, bytes read past it).
fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("HTTP head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed in the HTTP head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The head with `Connection: close` (and `Host` when given) in place of what it had.
fn rewrite_head(head: &str, host: Option<&str>) -> String {
    let mut lines = head.trim_end().lines();
    let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection")
            || (host.is_some() && name.eq_ignore_ascii_case("host"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(host) = host {
        out.push_str(&format!("Host: {host}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn serve(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, mut body) = read_head(&mut client)?;
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let bare_path = path.split('?').next().unwrap_or_default().to_string();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let pause = |n: usize| {
        let us = state.delay_us.load(Ordering::Relaxed) * n as u64 / 65536;
        if us > 0 {
            thread::sleep(Duration::from_micros(us));
        }
    };
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(1 << 16)];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(()); // the client went away mid-upload
        }
        body.extend_from_slice(&chunk[..n]);
        state.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
        pause(n);
    }
    let faults = state.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let log = |status: u16, bytes: u64, faulted: bool| {
        if faulted {
            state.faults_applied.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut log) = state.log.lock() {
            log.push(Logged {
                method: method.clone(),
                path: bare_path.clone(),
                status,
                bytes,
                faulted,
            });
        }
    };

    for fault in &faults {
        if let Fault::Respond {
            path_suffix,
            status,
            headers,
            body: canned,
        } = fault
        {
            if bare_path.ends_with(path_suffix.as_str()) {
                let mut out = format!("HTTP/1.1 {status} Canned\r\n");
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    canned.len()
                ));
                client.write_all(out.as_bytes())?;
                if method != "HEAD" {
                    client.write_all(canned)?;
                }
                log(*status, canned.len() as u64, true);
                return Ok(());
            }
        }
    }

    let mut upstream = TcpStream::connect(&state.upstream)?;
    upstream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // The client's Host is kept: the registry builds upload Locations from it, so they point
    // back through the proxy.
    upstream.write_all(rewrite_head(&head, None).as_bytes())?;
    upstream.write_all(&body)?;
    let (response_head, first) = read_head(&mut upstream)?;
    let status: u16 = response_head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let flip_at = (method == "GET" && status == 200)
        .then(|| {
            faults.iter().find_map(|f| match f {
                Fault::FlipBlob { digest, offset }
                    if bare_path.ends_with(&format!("/blobs/{digest}")) =>
                {
                    Some(*offset)
                }
                _ => None,
            })
        })
        .flatten();
    let corrupt_manifest = method == "GET"
        && status == 200
        && faults.iter().any(|f| {
            matches!(f, Fault::CorruptManifest { reference }
                if bare_path.ends_with(&format!("/manifests/{reference}")))
        });
    client.write_all(rewrite_head(&response_head, None).as_bytes())?;

    if corrupt_manifest {
        let mut whole = first;
        upstream.read_to_end(&mut whole)?;
        let text = String::from_utf8_lossy(&whole).into_owned();
        let changed = match text.rfind("sha256:") {
            Some(pos) => {
                let at = pos + "sha256:".len();
                let mut bytes = whole.clone();
                if let Some(b) = bytes.get_mut(at) {
                    *b = if *b == b'0' { b'1' } else { b'0' };
                }
                bytes
            }
            None => whole.clone(),
        };
        client.write_all(&changed)?;
        state
            .bytes
            .fetch_add(changed.len() as u64, Ordering::Relaxed);
        log(status, changed.len() as u64, true);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }

    let mut relayed: u64 = 0;
    let mut faulted = false;
    let mut pending = first;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if !pending.is_empty() {
            if let Some(offset) = flip_at {
                let start = relayed as usize;
                if offset >= start && offset < start + pending.len() {
                    pending[offset - start] ^= 0x01;
                    faulted = true;
                }
            }
            if client.write_all(&pending).is_err() {
                break;
            }
            relayed += pending.len() as u64;
            state
                .bytes
                .fetch_add(pending.len() as u64, Ordering::Relaxed);
            pause(pending.len());
        }
        let n = match upstream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending = chunk[..n].to_vec();
    }
    log(status, relayed, faulted);
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
