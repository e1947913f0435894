//! [`FaultProxy`]: a fault-injecting HTTP/1.1 proxy for loopback tests.
//!
//! It sits between a client (a cloud SDK) and a real service started on 127.0.0.1, and for each
//! request decides, with the probabilities of [`Faults`] and a seeded RNG, whether to pass it
//! through, close the connection, answer an error the service could have answered (500,
//! 503 `SlowDown`, 429), cut the response body short, and whether to hold it back first:
//!
//! ```text
//! client ──► FaultProxy (127.0.0.1:<random port>) ──► upstream (moto, fake-gcs-server, Azurite)
//! ```
//!
//! It speaks just enough HTTP/1.1 for that: keep-alive connections; request bodies framed by
//! `Content-Length` or `Transfer-Encoding: chunked` (relayed as received, chunk framing and
//! trailers included); `Expect: 100-continue`; response bodies framed by length, by chunks or by
//! the end of the connection, and responses without a body (to `HEAD`, 1xx, 204, 304). Messages
//! are relayed byte for byte, headers included, so the `Host` a client signed reaches the
//! upstream unchanged. Each client connection has its own upstream connection, opened on first
//! use and reopened when the upstream closes it. Bodies are buffered whole, which suits
//! test-sized objects.
//!
//! ```no_run
//! use std::time::Duration;
//! use iomanager_testkit::proxy::{FaultProxy, Faults};
//! # async fn demo(upstream: std::net::SocketAddr) -> std::io::Result<()> {
//! let proxy = FaultProxy::start(upstream, Faults {
//!     slow_down: 0.05,
//!     delay: 0.05,
//!     delay_for: Duration::from_millis(50),
//!     ..Faults::default()
//! })
//! .await?;
//! // Point the client at proxy.url() instead of the upstream, run the workload, then:
//! println!("{}", proxy.stats());
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Which faults the proxy injects, and how often.
///
/// Probabilities are per request, from 0.0 (never) to 1.0 (always). At most one of the exclusive
/// faults (drop, 500, 503, 429, truncate) hits a request: they are tried in that order on one
/// random draw, so their sum should stay at or below 1.0. The delay is decided on a draw of its
/// own and can combine with any of them. Every request consumes exactly two draws from an RNG
/// seeded with [`Faults::seed`], so the same seed and the same order of requests give the same
/// faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Close the client's connection after reading a request, without forwarding or answering
    /// it (the upstream never sees it).
    pub drop_connection: f64,
    /// Answer `500 Internal Server Error` (S3 code `InternalError`) without forwarding.
    pub internal_error: f64,
    /// Answer `503 Slow Down` with S3's body
    /// `<Error><Code>SlowDown</Code><Message>injected</Message></Error>`, without forwarding.
    pub slow_down: f64,
    /// Answer `429 Too Many Requests` (code `TooManyRequests`) without forwarding.
    pub too_many_requests: f64,
    /// Forward the request, then relay the response head and half of its body and close the
    /// connection: the upstream did the work, the client sees a cut-off response. Only responses
    /// with a non-empty length- or chunk-framed body can be cut; others pass unharmed and are
    /// not counted as truncated.
    pub truncate_response: f64,
    /// Wait [`Faults::delay_for`] before handling a request.
    pub delay: f64,
    /// How long a delayed request waits.
    pub delay_for: Duration,
    /// The seed of the RNG that decides.
    pub seed: u64,
}

impl Default for Faults {
    /// No faults (a transparent proxy), seed `0x5EED`.
    fn default() -> Self {
        Self {
            drop_connection: 0.0,
            internal_error: 0.0,
            slow_down: 0.0,
            too_many_requests: 0.0,
            truncate_response: 0.0,
            delay: 0.0,
            delay_for: Duration::ZERO,
            seed: 0x5EED,
        }
    }
}

/// What a [`FaultProxy`] has done so far.
///
/// Every request read is either forwarded or answered by a fault, so `requests == forwarded +
/// dropped + internal_errors + slow_downs + too_many_requests`; truncated responses and
/// upstream failures are among the forwarded ones, delayed requests among all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests read from clients.
    pub requests: u64,
    /// Requests sent on to the upstream.
    pub forwarded: u64,
    /// Connections closed instead of forwarding a request.
    pub dropped: u64,
    /// Requests held back by [`Faults::delay_for`].
    pub delayed: u64,
    /// Injected `500 Internal Server Error` answers.
    pub internal_errors: u64,
    /// Injected `503 Slow Down` answers.
    pub slow_downs: u64,
    /// Injected `429 Too Many Requests` answers.
    pub too_many_requests: u64,
    /// Responses cut off after half of the body.
    pub truncated: u64,
    /// Forwarded requests the upstream did not answer; the client got `502 Bad Gateway`.
    pub upstream_failures: u64,
}

impl ProxyStats {
    /// The faults injected in all: dropped connections, 500s, 503s, 429s and truncated
    /// responses (delays are not faults by themselves).
    pub fn faults(&self) -> u64 {
        self.dropped
            + self.internal_errors
            + self.slow_downs
            + self.too_many_requests
            + self.truncated
    }
}

impl fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} forwarded; faults: {} dropped connections, {} × 500, {} × 503 \
             SlowDown, {} × 429, {} truncated responses; {} delayed; {} upstream failures",
            self.requests,
            self.forwarded,
            self.dropped,
            self.internal_errors,
            self.slow_downs,
            self.too_many_requests,
            self.truncated,
            self.delayed,
            self.upstream_failures
        )
    }
}

/// A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a loopback `upstream`; see the
/// [module documentation](self). Dropping it stops it: its listener and every connection it
/// serves are closed.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on 127.0.0.1 and a free port. Must be called inside a
    /// tokio runtime. `upstream` must be a loopback address (an `InvalidInput` error otherwise):
    /// the proxy is for tests against services on this machine.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> io::Result<FaultProxy> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("FaultProxy only proxies to loopback addresses, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(XorShift::new(faults.seed)),
            faults,
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
            task,
        })
    }

    /// The address clients connect to (127.0.0.1 and the port the proxy got).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for a client's endpoint setting.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The upstream the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it aborts them all.
        self.task.abort();
    }
}

/// What the accept loop and every connection share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Faults,
    rng: Mutex<XorShift>,
    counters: Counters,
}

/// The fate of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Drop,
    Status(u16),
    Truncate,
}

impl Shared {
    /// Draws the fate of one request and whether it is delayed (always two draws).
    fn decide(&self) -> (Fault, bool) {
        let (fault_draw, delay_draw) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            (rng.next_f64(), rng.next_f64())
        };
        let f = &self.faults;
        let table = [
            (f.drop_connection, Fault::Drop),
            (f.internal_error, Fault::Status(500)),
            (f.slow_down, Fault::Status(503)),
            (f.too_many_requests, Fault::Status(429)),
            (f.truncate_response, Fault::Truncate),
        ];
        let mut edge = 0.0;
        let mut fault = Fault::None;
        for (p, kind) in table {
            edge += p.clamp(0.0, 1.0);
            if fault_draw < edge {
                fault = kind;
                break;
            }
        }
        (fault, delay_draw < f.delay.clamp(0.0, 1.0))
    }
}

/// The live counters behind [`ProxyStats`].
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    delayed: AtomicU64,
    internal_errors: AtomicU64,
    slow_downs: AtomicU64,
    too_many_requests: AtomicU64,
    truncated: AtomicU64,
    upstream_failures: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyStats {
            requests: get(&self.requests),
            forwarded: get(&self.forwarded),
            dropped: get(&self.dropped),
            delayed: get(&self.delayed),
            internal_errors: get(&self.internal_errors),
            slow_downs: get(&self.slow_downs),
            too_many_requests: get(&self.too_many_requests),
            truncated: get(&self.truncated),
            upstream_failures: get(&self.upstream_failures),
        }
    }
}

/// xorshift64*: small, fast, and good enough to decide faults.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix64 spreads nearby seeds apart and never leaves the (forbidden) zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, shared.clone()));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one client connection until it closes, a fault closes it, or an error ends it.
async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let (read, mut write) = client.into_split();
    let mut read = BufReader::new(read);
    let mut upstream: Option<Upstream> = None;
    let c = &shared.counters;
    loop {
        let request = match read_request(&mut read, &mut write).await {
            Ok(Some(request)) => request,
            // The client closed the connection, or sent something this proxy cannot parse.
            Ok(None) | Err(_) => return,
        };
        Counters::bump(&c.requests);
        let (fault, delayed) = shared.decide();
        if delayed {
            Counters::bump(&c.delayed);
            tokio::time::sleep(shared.faults.delay_for).await;
        }
        let head_only = request.head.method() == "HEAD";
        let close = request.head.wants_close();
        match fault {
            Fault::Drop => {
                Counters::bump(&c.dropped);
                return;
            }
            Fault::Status(status) => {
                Counters::bump(match status {
                    500 => &c.internal_errors,
                    503 => &c.slow_downs,
                    _ => &c.too_many_requests,
                });
                let answer = error_response(status, "injected", head_only, close);
                if write.write_all(&answer).await.is_err() || close {
                    return;
                }
                continue;
            }
            Fault::None | Fault::Truncate => {}
        }
        Counters::bump(&c.forwarded);
        let response = match exchange(&mut upstream, shared.upstream, &request).await {
            Ok(response) => response,
            Err(e) => {
                Counters::bump(&c.upstream_failures);
                let message = format!("the upstream {} did not answer: {e}", shared.upstream);
                let _ = write
                    .write_all(&error_response(502, &message, head_only, true))
                    .await;
                return;
            }
        };
        let cuttable = !response.body.is_empty()
            && matches!(response.framing, Framing::Length(_) | Framing::Chunked);
        if fault == Fault::Truncate && cuttable {
            Counters::bump(&c.truncated);
            let half = response.body.len() / 2;
            let _ = write.write_all(&response.head.raw).await;
            let _ = write.write_all(&response.body[..half]).await;
            let _ = write.shutdown().await;
            return;
        }
        if write_message(&mut write, &response).await.is_err()
            || close
            || response.head.wants_close()
            || response.framing == Framing::UntilClose
        {
            let _ = write.shutdown().await;
            return;
        }
    }
}

/// One connection to the upstream.
struct Upstream {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// Sends `request` upstream and reads the answer, on the client connection's upstream
/// connection (opened if there is none). A reused connection that turns out to have been closed
/// by the upstream before it answered is replaced by a fresh one, once.
async fn exchange(
    upstream: &mut Option<Upstream>,
    addr: SocketAddr,
    request: &Message,
) -> io::Result<Message> {
    for attempt in 0..2 {
        let reused = upstream.is_some();
        if upstream.is_none() {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            *upstream = Some(Upstream {
                read: BufReader::new(read),
                write,
            });
        }
        let Some(conn) = upstream.as_mut() else {
            continue;
        };
        let answer = match write_message(&mut conn.write, request).await {
            Ok(()) => read_response(&mut conn.read, request.head.method()).await,
            Err(e) if is_closed(&e) => Ok(None),
            Err(e) => Err(e),
        };
        match answer {
            Ok(Some(response)) => {
                if response.head.wants_close() || response.framing == Framing::UntilClose {
                    *upstream = None;
                }
                return Ok(response);
            }
            Ok(None) => {
                *upstream = None;
                if !(reused && attempt == 0) {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection without answering",
                    ));
                }
            }
            Err(e) => {
                *upstream = None;
                return Err(e);
            }
        }
    }
    Err(io::Error::other(
        "the upstream closed two connections in a row",
    ))
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// An S3-style error answer: `<Error><Code>…</Code><Message>…</Message></Error>` (the head alone
/// for a `HEAD` request).
fn error_response(status: u16, message: &str, head_only: bool, close: bool) -> Vec<u8> {
    let (reason, code) = match status {
        500 => ("Internal Server Error", "InternalError"),
        503 => ("Slow Down", "SlowDown"),
        429 => ("Too Many Requests", "TooManyRequests"),
        _ => ("Bad Gateway", "BadGateway"),
    };
    let body = format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 messages: just enough parsing to find where each message ends.

/// The most bytes a message head (start line and header fields) may take.
const MAX_HEAD: usize = 64 * 1024;

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// A message head as received, and what framing and connection handling need from it.
#[derive(Debug, Clone, Default)]
struct Head {
    /// The head exactly as received, final empty line included.
    raw: Vec<u8>,
    /// The start line's three parts: method, target, version for a request; version, status,
    /// reason for a response.
    start: [String; 3],
    content_length: Option<u64>,
    chunked: bool,
    connection_close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Head {
    fn method(&self) -> &str {
        &self.start[0]
    }

    fn status(&self) -> u16 {
        self.start[1].parse().unwrap_or(0)
    }

    /// Whether the connection ends after this message: `Connection: close`, or HTTP/1.0
    /// without keep-alive.
    fn wants_close(&self) -> bool {
        let http10 = self.start.iter().any(|p| p == "HTTP/1.0");
        self.connection_close || (http10 && !self.keep_alive)
    }
}

/// A whole message: its head and its body as framed on the wire.
#[derive(Debug, Clone)]
struct Message {
    head: Head,
    framing: Framing,
    body: Vec<u8>,
}

async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> io::Result<()> {
    w.write_all(&m.head.raw).await?;
    w.write_all(&m.body).await?;
    w.flush().await
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn eof(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, message.to_owned())
}

/// Reads one line (up to `limit` bytes, `\n` included) into `line`; 0 at the end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<usize> {
    line.clear();
    let n = (&mut *r).take(limit as u64).read_until(b'\n', line).await?;
    if n > 0 && !line.ends_with(b"\n") {
        return Err(if n >= limit {
            bad("an HTTP line is too long")
        } else {
            eof("the connection closed inside an HTTP line")
        });
    }
    Ok(n)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads a message head. `None` when the peer closed (or reset) the connection before sending
/// any byte of it.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Head>> {
    let mut line = Vec::new();
    // Empty lines before a start line are ignored (RFC 9112, section 2.2).
    loop {
        match read_line(r, &mut line, MAX_HEAD).await {
            Ok(0) => return Ok(None),
            Ok(_) if trim_eol(&line).is_empty() => continue,
            Ok(_) => break,
            Err(e) if is_closed(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    let mut head = Head::default();
    head.raw.extend_from_slice(&line);
    let start = String::from_utf8_lossy(trim_eol(&line)).into_owned();
    let mut parts = start.splitn(3, ' ');
    for slot in &mut head.start {
        *slot = parts.next().unwrap_or("").to_owned();
    }
    loop {
        let limit = MAX_HEAD.saturating_sub(head.raw.len()).max(1);
        if read_line(r, &mut line, limit).await? == 0 {
            return Err(eof("the connection closed inside a message head"));
        }
        head.raw.extend_from_slice(&line);
        if head.raw.len() > MAX_HEAD {
            return Err(bad("the message head is too large"));
        }
        let field = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        if field.is_empty() {
            return Ok(Some(head));
        }
        let Some((name, value)) = field.split_once(':') else {
            return Err(bad(format!("a malformed header line: {field:?}")));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let tokens = || value.split(',').map(|t| t.trim().to_ascii_lowercase());
        match name.as_str() {
            "content-length" => {
                let n = value
                    .parse()
                    .map_err(|_| bad(format!("a bad Content-Length: {value:?}")))?;
                head.content_length = Some(n);
            }
            "transfer-encoding" => {
                head.chunked = tokens().next_back().is_some_and(|t| t == "chunked");
            }
            "connection" => {
                head.connection_close |= tokens().any(|t| t == "close");
                head.keep_alive |= tokens().any(|t| t == "keep-alive");
            }
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
}

/// Appends exactly `n` bytes from `r` to `out`.
async fn read_exact_into<R: AsyncBufRead + Unpin>(
    r: &mut R,
    n: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.reserve(n.min(64 << 20) as usize);
    let got = (&mut *r).take(n).read_to_end(out).await? as u64;
    if got < n {
        return Err(eof("the connection closed inside a message body"));
    }
    Ok(())
}

/// Appends a body framed by `framing` to `out`, as it is on the wire.
async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    framing: Framing,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => read_exact_into(r, n, out).await,
        Framing::UntilClose => r.read_to_end(out).await.map(drop),
        Framing::Chunked => {
            let mut line = Vec::new();
            loop {
                if read_line(r, &mut line, 4096).await? == 0 {
                    return Err(eof("the connection closed inside a chunked body"));
                }
                out.extend_from_slice(&line);
                let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
                let digits = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(digits, 16)
                    .map_err(|_| bad(format!("a bad chunk size line: {text:?}")))?;
                if size == 0 {
                    // Trailer fields, then the empty line that ends the body.
                    loop {
                        if read_line(r, &mut line, MAX_HEAD).await? == 0 {
                            return Err(eof("the connection closed inside chunk trailers"));
                        }
                        out.extend_from_slice(&line);
                        if trim_eol(&line).is_empty() {
                            return Ok(());
                        }
                    }
                }
                // The chunk's data and its CRLF.
                read_exact_into(r, size.saturating_add(2), out).await?;
                if !out.ends_with(b"\r\n") {
                    return Err(bad("a chunk does not end with CRLF"));
                }
            }
        }
    }
}

/// Reads a request; `None` when the client closed the connection between requests. Answers
/// `Expect: 100-continue` itself (on `w`) before reading the body.
async fn read_request<R, W>(r: &mut R, w: &mut W) -> io::Result<Option<Message>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Some(head) = read_head(r).await? else {
        return Ok(None);
    };
    let framing = if head.chunked {
        Framing::Chunked
    } else {
        match head.content_length {
            Some(n) if n > 0 => Framing::Length(n),
            _ => Framing::Empty,
        }
    };
    if head.expect_continue && framing != Framing::Empty {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        w.flush().await?;
    }
    let mut body = Vec::new();
    read_body(r, framing, &mut body).await?;
    Ok(Some(Message {
        head,
        framing,
        body,
    }))
}

/// Reads the response to a request with `method`, skipping interim (1xx) responses; `None` when
/// the peer closed the connection before answering.
async fn read_response<R: AsyncBufRead + Unpin>(
    r: &mut R,
    method: &str,
) -> io::Result<Option<Message>> {
    loop {
        let Some(head) = read_head(r).await? else {
            return Ok(None);
        };
        let status = head.status();
        if (100..200).contains(&status) && status != 101 {
            // 100 Continue and friends: the proxy answered the client's Expect itself.
            continue;
        }
        let framing = if method == "HEAD" || status < 200 || status == 204 || status == 304 {
            Framing::Empty
        } else if head.chunked {
            Framing::Chunked
        } else if let Some(n) = head.content_length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        let mut body = Vec::new();
        read_body(r, framing, &mut body).await?;
        return Ok(Some(Message {
            head,
            framing,
            body,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of a pattern, so misplaced or missing bytes show.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn fixed_response() -> Vec<u8> {
        let body = pattern(100_000);
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Test: fixed\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    const CHUNKED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";

    const HEAD_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Test: head\r\n\r\n";

    const CLOSE_RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\na body that ends with the connection";

    /// Decodes a chunked body (test side only).
    fn dechunk(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = raw;
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = std::str::from_utf8(&rest[..end]).unwrap();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }

    /// A tiny keep-alive HTTP server on 127.0.0.1 that records what reaches it.
    struct TestServer {
        addr: SocketAddr,
        requests: Arc<AtomicU64>,
        connections: Arc<AtomicU64>,
        bodies: Arc<Mutex<Vec<Vec<u8>>>>,
        task: JoinHandle<()>,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TestServer {
        async fn start() -> Self {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let requests = Arc::new(AtomicU64::new(0));
            let connections = Arc::new(AtomicU64::new(0));
            let bodies = Arc::new(Mutex::new(Vec::new()));
            let (req, conns, seen) = (requests.clone(), connections.clone(), bodies.clone());
            let task = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    conns.fetch_add(1, Ordering::SeqCst);
                    let (req, seen) = (req.clone(), seen.clone());
                    tokio::spawn(async move {
                        let (r, mut w) = stream.into_split();
                        let mut r = BufReader::new(r);
                        while let Ok(Some(m)) = read_request(&mut r, &mut w).await {
                            req.fetch_add(1, Ordering::SeqCst);
                            seen.lock().unwrap().push(m.body.clone());
                            let target = m.head.start[1].as_str();
                            let answer = match (m.head.method(), target) {
                                ("HEAD", _) => HEAD_RESPONSE.to_vec(),
                                (_, "/chunked") => CHUNKED_RESPONSE.to_vec(),
                                (_, "/close") => CLOSE_RESPONSE.to_vec(),
                                (_, "/echo") => {
                                    let body = if m.framing == Framing::Chunked {
                                        dechunk(&m.body)
                                    } else {
                                        m.body.clone()
                                    };
                                    let mut out = format!(
                                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                        body.len()
                                    )
                                    .into_bytes();
                                    out.extend_from_slice(&body);
                                    out
                                }
                                _ => fixed_response(),
                            };
                            if w.write_all(&answer).await.is_err() || target == "/close" {
                                return;
                            }
                        }
                    });
                }
            });
            Self {
                addr,
                requests,
                connections,
                bodies,
                task,
            }
        }

        fn requests(&self) -> u64 {
            self.requests.load(Ordering::SeqCst)
        }
    }

    /// A raw client connection to the proxy.
    struct Client {
        read: BufReader<OwnedReadHalf>,
        write: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(addr: SocketAddr) -> Self {
            let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
            Self {
                read: BufReader::new(read),
                write,
            }
        }

        /// Sends a request and reads the answer: `Ok(None)` if the connection was closed
        /// without one, `Err` if the answer was cut off.
        async fn call(&mut self, method: &str, raw: &[u8]) -> io::Result<Option<Message>> {
            self.write.write_all(raw).await?;
            read_response(&mut self.read, method).await
        }

        /// The raw bytes of the answer to a request that must succeed.
        async fn raw(&mut self, method: &str, raw: &[u8]) -> Vec<u8> {
            let m = self.call(method, raw).await.unwrap().expect("an answer");
            [m.head.raw, m.body].concat()
        }
    }

    fn get(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
    }

    #[tokio::test]
    async fn pass_through_returns_upstream_bytes_exactly() {
        let server = TestServer::start().await;
        let proxy = FaultProxy::start(server.addr, Faults::default())
            .await
            .unwrap();
        assert!(proxy.addr().ip().is_loopback());
        assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
        let mut client = Client::connect(proxy.addr()).await;
        // Several requests on one keep-alive connection, a bodiless HEAD answer among them.
        assert_eq!(client.raw("GET", &get("/fixed")).await, fixed_response());
        let head = b"HEAD /fixed HTTP/1.1\r\nHost: test\r\n\r\n";
        assert_eq!(client.raw("HEAD", head).await, HEAD_RESPONSE);
        assert_eq!(client.raw("GET", &get("/chunked")).await, CHUNKED_RESPONSE);
        assert_eq!(client.raw("GET", &get("/fixed")).await, fixed_response());
        // The upstream kept one connection for all of them.
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        // A body delimited by the end of the connection is relayed, then the proxy closes.
        assert_eq!(client.raw("GET", &get("/close")).await, CLOSE_RESPONSE);
        let mut rest = Vec::new();
        client.read.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());

        let stats = proxy.stats();
        assert_eq!(
            stats,
            ProxyStats {
                requests: 5,
                forwarded: 5,
                ..ProxyStats::default()
            }
        );
        assert_eq!(server.requests(), 5);
    }

    #[tokio::test]
    async fn a_certain_503_always_answers_slow_down() {
        let server = TestServer::start().await;
        let faults = Faults {
            slow_down: 1.0,
            ..Faults::default()
        };
        let proxy = FaultProxy::start(server.addr, faults).await.unwrap();
        let mut client = Client::connect(proxy.addr()).await;
        let put = b"PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello";
        for (method, raw) in [
            ("GET", get("/fixed")),
            ("PUT", put.to_vec()),
            ("GET", get("/chunked")),
            ("GET", get("/fixed")),
        ] {
            let m = client.call(method, &raw).await.unwrap().expect("an answer");
            assert_eq!(m.head.status(), 503);
            assert_eq!(
                m.body,
                b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            );
        }
        // A HEAD answer has no body, or the connection would fall out of step.
        let m = client
            .call("HEAD", b"HEAD /fixed HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.head.status(), 503);
        assert!(m.body.is_empty());
        let m = client.call("GET", &get("/fixed")).await.unwrap().unwrap();
        assert_eq!(m.head.status(), 503);

        let stats = proxy.stats();
        assert_eq!(
            (stats.requests, stats.slow_downs, stats.forwarded),
            (6, 6, 0)
        );
        assert_eq!(stats.faults(), 6);
        assert_eq!(server.requests(), 0);
    }

    #[tokio::test]
    async fn a_chunked_request_body_is_relayed_as_sent() {
        let server = TestServer::start().await;
        let proxy = FaultProxy::start(server.addr, Faults::default())
            .await
            .unwrap();
        let mut client = Client::connect(proxy.addr()).await;
        let big = pattern(70_000);
        let mut body = format!("{:x}\r\n", big.len()).into_bytes();
        body.extend_from_slice(&big);
        body.extend_from_slice(b"\r\n5;name=value\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n");
        let mut request =
            b"PUT /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(&body);
        let m = client.call("PUT", &request).await.unwrap().unwrap();
        assert_eq!(m.head.status(), 200);
        assert_eq!(m.body, [big.as_slice(), b"hello"].concat());
        // The upstream got the chunk framing and trailer byte for byte.
        assert_eq!(server.bodies.lock().unwrap().last().unwrap(), &body);
        // The connection is still in step.
        assert_eq!(client.raw("GET", &get("/fixed")).await, fixed_response());
    }

    #[tokio::test]
    async fn expect_continue_is_answered_and_the_body_relayed() {
        let server = TestServer::start().await;
        let proxy = FaultProxy::start(server.addr, Faults::default())
            .await
            .unwrap();
        let mut client = Client::connect(proxy.addr()).await;
        let head = b"PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
                     Expect: 100-continue\r\n\r\n";
        client.write.write_all(head).await.unwrap();
        let interim = read_head(&mut client.read).await.unwrap().unwrap();
        assert_eq!(interim.status(), 100);
        client.write.write_all(b"hello").await.unwrap();
        // The upstream's own 100 Continue is not passed on: the next head is the final answer.
        let answer = read_head(&mut client.read).await.unwrap().unwrap();
        assert_eq!(answer.status(), 200);
        let mut body = Vec::new();
        read_body(&mut client.read, Framing::Length(5), &mut body)
            .await
            .unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(client.raw("GET", &get("/fixed")).await, fixed_response());
    }

    /// Sends `n` GETs, reconnecting after a fault closes the connection; tallies what the
    /// client saw as `[ok, dropped, 500, 503, 429, truncated]`.
    async fn run_client(proxy: &FaultProxy, n: usize) -> [u64; 6] {
        let mut seen = [0u64; 6];
        let mut client = Client::connect(proxy.addr()).await;
        for _ in 0..n {
            match client.call("GET", &get("/fixed")).await {
                Ok(Some(m)) => {
                    let slot = match m.head.status() {
                        200 => {
                            assert_eq!(m.body.len(), 100_000);
                            0
                        }
                        500 => 2,
                        503 => 3,
                        429 => 4,
                        other => panic!("unexpected status {other}"),
                    };
                    seen[slot] += 1;
                    continue;
                }
                Ok(None) => seen[1] += 1,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
                    seen[5] += 1;
                }
            }
            client = Client::connect(proxy.addr()).await;
        }
        seen
    }

    #[tokio::test]
    async fn counts_match_what_clients_saw_and_a_seed_repeats() {
        let server = TestServer::start().await;
        let faults = Faults {
            drop_connection: 0.1,
            internal_error: 0.1,
            slow_down: 0.1,
            too_many_requests: 0.1,
            truncate_response: 0.1,
            delay: 0.1,
            delay_for: Duration::from_millis(1),
            seed: 7,
        };
        let proxy = FaultProxy::start(server.addr, faults.clone())
            .await
            .unwrap();
        let seen = run_client(&proxy, 300).await;
        let s = proxy.stats();
        assert_eq!(s.requests, 300, "{s}");
        assert_eq!(
            [
                s.dropped,
                s.internal_errors,
                s.slow_downs,
                s.too_many_requests,
                s.truncated
            ],
            [seen[1], seen[2], seen[3], seen[4], seen[5]],
            "{s}"
        );
        assert_eq!(s.forwarded, seen[0] + seen[5], "{s}");
        assert_eq!(s.forwarded, server.requests(), "{s}");
        assert_eq!(
            s.requests,
            s.forwarded + s.dropped + s.internal_errors + s.slow_downs + s.too_many_requests
        );
        assert_eq!(s.upstream_failures, 0);
        for (count, what) in [
            (s.dropped, "dropped"),
            (s.internal_errors, "500"),
            (s.slow_downs, "503"),
            (s.too_many_requests, "429"),
            (s.truncated, "truncated"),
            (s.delayed, "delayed"),
        ] {
            assert!(
                (10..=60).contains(&count),
                "{what}: {count} of 300 at 10%; {s}"
            );
        }

        // The same seed and the same requests give the same faults.
        let again = FaultProxy::start(server.addr, faults).await.unwrap();
        assert_eq!(run_client(&again, 300).await, seen);
        assert_eq!(again.stats(), s);
    }

    #[tokio::test]
    async fn dropping_the_proxy_stops_it() {
        let server = TestServer::start().await;
        let proxy = FaultProxy::start(server.addr, Faults::default())
            .await
            .unwrap();
        let addr = proxy.addr();
        let mut client = Client::connect(addr).await;
        assert_eq!(client.raw("GET", &get("/fixed")).await, fixed_response());
        drop(proxy);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The open connection is closed and nothing listens any more.
        assert!(matches!(
            client.call("GET", &get("/fixed")).await,
            Ok(None) | Err(_)
        ));
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn only_loopback_upstreams() {
        let err = FaultProxy::start("192.0.2.1:80".parse().unwrap(), Faults::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn decisions_follow_the_probabilities() {
        let shared = |faults: Faults| Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
            rng: Mutex::new(XorShift::new(faults.seed)),
            faults,
            counters: Counters::default(),
        };
        let none = shared(Faults::default());
        assert!((0..1000).all(|_| none.decide() == (Fault::None, false)));
        let always = shared(Faults {
            too_many_requests: 1.0,
            delay: 1.0,
            ..Faults::default()
        });
        assert!((0..1000).all(|_| always.decide() == (Fault::Status(429), true)));
        let half = shared(Faults {
            drop_connection: 0.5,
            ..Faults::default()
        });
        let drops = (0..10_000)
            .filter(|_| half.decide().0 == Fault::Drop)
            .count();
        assert!((4_700..=5_300).contains(&drops), "{drops}");
    }
}
