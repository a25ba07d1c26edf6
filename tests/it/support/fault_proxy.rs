//! [`FaultProxy`]: an HTTP/1.1 proxy in front of a real registry that injects faults on the
//! requests a test chooses: error statuses (429 with `Retry-After`, 503, plain-text bodies),
//! connections closed without an answer, truncated bodies, removed headers, flipped bytes and
//! delays. Everything else is forwarded byte for byte, and every request is logged (method,
//! path, `Range`, status, fault), so tests can check what the client really did.
//!
//! Built on std threads and blocking sockets: one thread per client connection, a fresh
//! upstream connection per request. The `Host` header is forwarded unchanged, so the registry
//! writes `Location` URLs that point back at the proxy.
//!
//! Rules are matched in the order added; each fires `times` times (or forever). New kinds of
//! fault are one more [`Fault`] variant and one arm in `respond`.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status without asking the registry; `body` is sent as `text/plain`.
    Status {
        status: u16,
        retry_after: Option<u64>,
        body: String,
    },
    /// Close the connection without answering.
    Close,
    /// Forward, then send the headers (with the full `Content-Length`) and only the first
    /// `keep` bytes of the body, and close.
    Truncate { keep: usize },
    /// Forward, and remove this response header.
    DropHeader(String),
    /// Forward, and flip the bits of the body byte at `offset`.
    FlipByte { offset: usize },
    /// Wait, then forward.
    Delay(Duration),
    /// Close the connection without answering and stop listening: from then on every
    /// connection is refused, as when the host goes down mid-run.
    GoDown,
}

#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    path_contains: String,
    remaining: Option<usize>,
    fault: Fault,
}

impl Rule {
    /// Matches requests whose method is `method` (any when empty) and whose path and query
    /// contain `path_contains`; fires forever until [`Rule::times`] says otherwise.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method: (!method.is_empty()).then(|| method.to_string()),
            path_contains: path_contains.to_string(),
            remaining: None,
            fault,
        }
    }

    pub fn times(mut self, n: usize) -> Rule {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_deref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    /// The status sent to the client (0 when the connection was closed without one).
    pub status: u16,
    pub fault: Option<String>,
}

#[derive(Default)]
struct State {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Logged>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    port: u16,
    down: std::sync::atomic::AtomicBool,
    /// Every client connection, so going down can close the idle ones too.
    clients: Mutex<Vec<TcpStream>>,
}

pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            port,
            ..State::default()
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.down.load(Ordering::SeqCst) {
                    break; // dropping the listener refuses every later connection
                }
                if let Ok(copy) = client.try_clone() {
                    shared.clients.lock().expect("clients").push(copy);
                }
                let state = shared.clone();
                std::thread::spawn(move || serve(client, &state));
            }
        });
        FaultProxy { port, state }
    }

    /// `127.0.0.1:PORT` of the proxy, to put in Mirrorfiles.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.state.rules.lock().expect("rules").push(rule);
    }

    pub fn clear_rules(&self) {
        self.state.rules.lock().expect("rules").clear();
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().expect("log").clone()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().expect("log").clear();
    }

    /// Logged requests whose method is `method` (any when empty) and path contains `needle`.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| (method.is_empty() || l.method == method) && l.path.contains(needle))
            .collect()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// A readable log, for assertion messages.
    pub fn describe(&self) -> String {
        self.log()
            .iter()
            .map(|l| {
                format!(
                    "{} {} range={:?} -> {} {}",
                    l.method,
                    l.path,
                    l.range,
                    l.status,
                    l.fault.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A parsed HTTP message head.
struct Head {
    start_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The head with `Transfer-Encoding`/`Connection`/`Content-Length` replaced.
    fn write(&self, length: Option<usize>, connection: &str) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start_line);
        for (k, v) in &self.headers {
            let skip = ["transfer-encoding", "connection", "keep-alive"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
                || (length.is_some() && k.eq_ignore_ascii_case("content-length"));
            if !skip {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if let Some(len) = length {
            out.push_str(&format!("Content-Length: {len}\r\n"));
        }
        out.push_str(&format!("Connection: {connection}\r\n\r\n"));
        out.into_bytes()
    }
}

fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    let mut start_line = String::new();
    if reader.read_line(&mut start_line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some(Head {
        start_line: start_line.trim_end().to_string(),
        headers,
    })
}

/// Reads a body framed by `Content-Length` or chunked encoding (or, when `to_eof`, by the end
/// of the connection), returning the decoded bytes.
fn read_body(reader: &mut impl BufRead, head: &Head, to_eof: bool) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked() {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).ok()? == 0 || line.trim().is_empty() {
                        return Some(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).ok()?;
        }
    }
    match head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            body.resize(len, 0);
            reader.read_exact(&mut body).ok()?;
        }
        None if to_eof => {
            reader.read_to_end(&mut body).ok()?;
        }
        None => {}
    }
    Some(body)
}

fn serve(client: TcpStream, state: &State) {
    let mut reader = BufReader::new(match client.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut writer = client;
    while let Some(request) = read_head(&mut reader) {
        if state.down.load(Ordering::SeqCst) {
            return;
        }
        let Some(body) = read_body(&mut reader, &request, false) else {
            return;
        };
        let mut parts = request.start_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let fault = {
            let mut rules = state.rules.lock().expect("rules");
            rules
                .iter_mut()
                .find(|r| r.matches(&method, &path))
                .map(|r| {
                    if let Some(n) = r.remaining.as_mut() {
                        *n -= 1;
                    }
                    r.fault.clone()
                })
        };
        let in_flight = InFlight::enter(state);
        let (status, keep_open) = respond(
            state,
            in_flight,
            &mut writer,
            &request,
            &body,
            &method,
            fault.as_ref(),
        );
        state.log.lock().expect("log").push(Logged {
            method,
            path,
            range: request.header("range").map(str::to_string),
            status,
            fault: fault.map(|f| format!("{f:?}")),
        });
        if !keep_open {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Answers one request; returns the status sent and whether the connection stays usable.
/// One request counted in flight from the moment it is read until its answer is ready to be
/// written. Not until the write is done: the client may see the answer, release its
/// concurrency permit and send its next request on another connection before this thread gets
/// to decrement, which would count two requests that never overlapped.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn respond(
    state: &State,
    in_flight: InFlight<'_>,
    client: &mut TcpStream,
    request: &Head,
    body: &[u8],
    method: &str,
    fault: Option<&Fault>,
) -> (u16, bool) {
    match fault {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let mut head = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                body.len()
            );
            if let Some(seconds) = retry_after {
                head.push_str(&format!("Retry-After: {seconds}\r\n"));
            }
            head.push_str("\r\n");
            drop(in_flight);
            let ok = client.write_all(head.as_bytes()).is_ok()
                && (method == "HEAD" || client.write_all(body.as_bytes()).is_ok());
            return (*status, ok);
        }
        Some(Fault::Close) => return (0, false),
        Some(Fault::GoDown) => {
            state.down.store(true, Ordering::SeqCst);
            for open in state.clients.lock().expect("clients").drain(..) {
                let _ = open.shutdown(Shutdown::Both);
            }
            // Wake the accept loop so it sees the flag and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", state.port));
            return (0, false);
        }
        Some(Fault::Delay(d)) => std::thread::sleep(*d),
        _ => {}
    }
    let Some((head, mut response)) = forward(state, request, body, method) else {
        return (502, false);
    };
    let status = head
        .start_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut head = head;
    let no_body = method == "HEAD" || status == 204 || status == 304 || status < 200;
    match fault {
        Some(Fault::DropHeader(name)) => {
            head.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name))
        }
        Some(Fault::FlipByte { offset }) => {
            if let Some(b) = response.get_mut(*offset) {
                *b ^= 0xff;
            }
        }
        _ => {}
    }
    // HEAD keeps the registry's Content-Length (the size of what a GET would send).
    let length = (!no_body).then_some(response.len());
    let truncate = match fault {
        Some(Fault::Truncate { keep }) => Some(*keep),
        _ => None,
    };
    let connection = if truncate.is_some() {
        "close"
    } else {
        "keep-alive"
    };
    drop(in_flight);
    if client.write_all(&head.write(length, connection)).is_err() {
        return (status, false);
    }
    if no_body {
        return (status, true);
    }
    if let Some(keep) = truncate {
        let _ = client.write_all(&response[..keep.min(response.len())]);
        let _ = client.flush();
        return (status, false);
    }
    (status, client.write_all(&response).is_ok())
}

/// Sends the request to the registry on a fresh connection and reads the whole answer.
fn forward(state: &State, request: &Head, body: &[u8], method: &str) -> Option<(Head, Vec<u8>)> {
    let mut upstream = TcpStream::connect(&state.upstream).ok()?;
    upstream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    upstream
        .write_all(&request.write(Some(body.len()), "close"))
        .ok()?;
    upstream.write_all(body).ok()?;
    let mut reader = BufReader::new(upstream);
    let head = read_head(&mut reader)?;
    let status: u16 = head.start_line.split_whitespace().nth(1)?.parse().ok()?;
    let response = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else {
        read_body(&mut reader, &head, true)?
    };
    Some((head, response))
}
