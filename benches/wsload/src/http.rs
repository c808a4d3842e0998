//! http-hello and http-static: plain HTTP/1.1 GETs over C keep-alive
//! connections, on raw sockets (no HTTP client library).
//!
//! Each connection writes D requests at once (the pipeline depth; D = 1 is
//! the ordinary one-request-at-a-time client), reads the D responses, and
//! repeats. Responses are parsed as far as a benchmark needs: the status
//! line must be `HTTP/1.1 200`, the body is framed by `Content-Length`
//! (chunked or close-delimited answers are refused) and must be as long as
//! the expected body; `Connection: close` is refused. Small bodies (up to
//! 4 KiB) are compared byte for byte every time, large ones on each
//! connection's first response (after that, only their length), so the
//! load generator's own copying stays one `recv` per byte.
//!
//! The request is wrk's (`GET`, `Host`); `--browser-headers` adds the 13
//! headers a browser's `fetch` carries (about 600 bytes, [`BROWSER_HEADERS`]).
//!
//! * http-hello: `GET /hello`, body `Hello, world!`. Reports requests/s,
//!   the time from writing a batch to each of its responses (p50, p99), and
//!   the server's CPU ns per request.
//! * http-static: `GET /static/<name>` of a file (the same file the server
//!   serves, given with `--file`), one at a time per connection. Reports
//!   MB/s of body (10⁶ B), downloads/s, the time per download (p50, p99)
//!   and the server's CPU µs per MB.

use std::net::SocketAddr;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

use crate::hist::Hist;
use crate::sock::{Sock, Tls};
use crate::{Common, Metrics, Window};

/// An HTTP workload's parameters.
#[derive(Debug, Clone)]
pub struct HttpLoad {
    /// Keep-alive connections.
    pub conns: usize,
    /// Requests written at once per connection (pipeline depth).
    pub depth: usize,
    /// The request target.
    pub path: String,
    /// The body every response must carry.
    pub body: Vec<u8>,
    /// Report as a download (MB/s, CPU per MB) rather than per request.
    pub bulk: bool,
    /// Send the headers a browser sends ([`BROWSER_HEADERS`]) after `Host`.
    pub browser: bool,
}

/// What Chrome sends with a same-origin `fetch` (besides `Host`): 13 more
/// headers, about 600 bytes, for measuring what a server pays per header.
pub const BROWSER_HEADERS: &str = "Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Dest: empty\r\n\
Referer: http://127.0.0.1/game/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=4f1c2a9e8b7d6c5a4f3e2d1c0b9a8f7e; theme=dark\r\n";

/// Bodies up to this size are checked byte for byte in every response.
const CHECK_ALWAYS: usize = 4096;
/// A response head longer than this is refused.
const MAX_HEAD: usize = 16 << 10;

enum Rx {
    /// Bytes of the response head so far.
    Head,
    /// Body bytes still to come, and how many came already.
    Body { left: usize, off: usize },
}

/// A connection's response parser.
struct Parser {
    rx: Rx,
    head: Vec<u8>,
    /// Whether this connection has had a response checked in full.
    checked: bool,
}

struct Conn {
    sock: Sock,
    connected: bool,
    parser: Parser,
    /// Bytes of the current batch not yet written.
    unsent: usize,
    /// Responses of the current batch still to come.
    owed: usize,
    /// When the current batch was written (ns since start).
    sent_at: u64,
    dirty: bool,
}

/// What one chunk of input completed.
#[derive(Default)]
struct Done {
    responses: usize,
    body_bytes: u64,
}

impl Parser {
    /// Feeds one chunk of response bytes.
    fn input(&mut self, mut chunk: &[u8], expect: &[u8], done: &mut Done) -> Result<(), String> {
        while !chunk.is_empty() {
            match &mut self.rx {
                Rx::Head => {
                    // At most 1 KiB at a time, so a body behind a short head
                    // is not copied into it.
                    let take = chunk.len().min(1024);
                    let from = self.head.len().saturating_sub(3);
                    self.head.extend_from_slice(&chunk[..take]);
                    let Some(end) = self.head[from..].windows(4).position(|w| w == b"\r\n\r\n") else {
                        if self.head.len() > MAX_HEAD {
                            return Err("response head too long".into());
                        }
                        chunk = &chunk[take..];
                        continue;
                    };
                    let end = from + end + 4;
                    // What went into `head` past its end goes back to the chunk.
                    chunk = &chunk[take - (self.head.len() - end)..];
                    self.head.truncate(end);
                    let len = parse_head(&self.head)?;
                    self.head.clear();
                    if len != expect.len() {
                        return Err(format!("body of {len} bytes, expected {}", expect.len()));
                    }
                    self.rx = Rx::Body { left: len, off: 0 };
                }
                Rx::Body { left, off } => {
                    let take = chunk.len().min(*left);
                    let check = expect.len() <= CHECK_ALWAYS || !self.checked;
                    if check && chunk[..take] != expect[*off..*off + take] {
                        return Err("response body differs from the expected one".into());
                    }
                    *left -= take;
                    *off += take;
                    done.body_bytes += take as u64;
                    chunk = &chunk[take..];
                }
            }
            if let Rx::Body { left: 0, .. } = self.rx {
                self.rx = Rx::Head;
                self.checked = true;
                done.responses += 1;
            }
        }
        Ok(())
    }
}

/// Checks a complete response head (status 200, kept alive, framed by
/// `Content-Length`) and returns the body length.
fn parse_head(head: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("unexpected status line {status:?}"));
    }
    let mut len = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "Transfer-Encoding {value:?}: only Content-Length bodies are expected"
            ));
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            return Err("the server closes the connection after the response".into());
        }
    }
    len.ok_or_else(|| "response without Content-Length".into())
}

fn connect(poll: &Poll, addr: SocketAddr, tls: &Tls, i: usize) -> Result<Sock, String> {
    let mut s = Sock::connect(addr, tls).map_err(|e| format!("connect: {e}"))?;
    poll.registry()
        .register(&mut s.tcp, Token(i), Interest::READABLE | Interest::WRITABLE)
        .map_err(|e| format!("register: {e}"))?;
    Ok(s)
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &HttpLoad) -> Result<Metrics, String> {
    if o.conns == 0 || o.depth == 0 {
        return Err("--conns and --depth must be at least 1".into());
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let extra = if o.browser { BROWSER_HEADERS } else { "" };
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", o.path, c.addr);
    let batch = request.repeat(o.depth).into_bytes();
    let mut conns: Vec<Conn> = (0..o.conns)
        .map(|i| {
            Ok(Conn {
                sock: connect(&poll, c.addr, &c.tls, i)?,
                connected: false,
                parser: Parser {
                    rx: Rx::Head,
                    head: Vec::with_capacity(512),
                    checked: false,
                },
                unsent: 0,
                owed: 0,
                sent_at: 0,
                dirty: false,
            })
        })
        .collect::<Result<_, String>>()?;
    let mut dirty: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let (mut responses, mut body_bytes) = (0u64, 0u64);
    loop {
        for &i in &dirty {
            let conn = &mut conns[i];
            conn.dirty = false;
            let from = batch.len() - conn.unsent;
            let n = conn
                .sock
                .write_some(&batch[from..])
                .map_err(|e| format!("write: {e}"))?;
            conn.unsent -= n;
        }
        dirty.clear();
        if win.tick()? {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        let now = win.now_ns();
        let measuring = win.measuring();
        for ev in events.iter() {
            let i = ev.token().0;
            let conn = &mut conns[i];
            if !conn.connected {
                if !conn.sock.connected().map_err(|e| format!("connect: {e}"))? {
                    continue;
                }
                conn.sock.set_nodelay();
                conn.connected = true;
            }
            if ev.is_writable() {
                conn.sock.flush().map_err(|e| format!("write: {e}"))?;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let mut done = Done::default();
                let mut err = None;
                let parser = &mut conn.parser;
                let alive = conn
                    .sock
                    .read_chunks(&mut buf, |chunk| {
                        if err.is_none() {
                            err = parser.input(chunk, &o.body, &mut done).err();
                        }
                    })
                    .map_err(|e| format!("read: {e}"))?;
                if let Some(e) = err {
                    return Err(e);
                }
                if done.responses > conn.owed {
                    return Err("more responses than requests".into());
                }
                conn.owed -= done.responses;
                if measuring {
                    responses += done.responses as u64;
                    body_bytes += done.body_bytes;
                    for _ in 0..done.responses {
                        hist.record(now.saturating_sub(conn.sent_at));
                    }
                }
                if !alive {
                    return Err("server closed a keep-alive connection".into());
                }
            }
            if conn.owed == 0 && conn.unsent == 0 {
                // The batch is answered (or this is the first): the next one.
                conn.unsent = batch.len();
                conn.owed = o.depth;
                conn.sent_at = now;
            }
            if conn.unsent > 0 && !conn.dirty {
                conn.dirty = true;
                dirty.push(i);
            }
        }
    }
    let secs = win.elapsed();
    let mut m = Metrics::default();
    if o.bulk {
        let mb = body_bytes as f64 / 1e6;
        m.push("mb_per_s", mb / secs);
        m.push("downloads_per_s", responses as f64 / secs);
        m.push("download_p50_us", hist.quantile_us(0.5));
        m.push("download_p99_us", hist.quantile_us(0.99));
        if let Some(cpu) = win.cpu() {
            m.push("cpu_us_per_mb", cpu * 1e6 / mb.max(1e-9));
        }
    } else {
        m.push("req_per_s", responses as f64 / secs);
        m.push("rtt_p50_us", hist.quantile_us(0.5));
        m.push("rtt_p99_us", hist.quantile_us(0.99));
        if let Some(cpu) = win.cpu() {
            m.push("cpu_ns_per_req", cpu * 1e9 / responses.max(1) as f64);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser {
            rx: Rx::Head,
            head: Vec::new(),
            checked: false,
        }
    }

    const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

    #[test]
    fn pipelined_responses_split_anywhere_are_counted() {
        let wire = HELLO.repeat(3);
        for cut in 0..wire.len() {
            let mut p = parser();
            let mut done = Done::default();
            p.input(&wire[..cut], b"Hello, world!", &mut done).unwrap();
            p.input(&wire[cut..], b"Hello, world!", &mut done).unwrap();
            assert_eq!((done.responses, done.body_bytes), (3, 39), "cut at {cut}");
        }
    }

    #[test]
    fn a_large_body_is_checked_on_the_first_response_only() {
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let mut p = parser();
        let mut done = Done::default();
        let mut bad = body.clone();
        bad[5000] ^= 1;
        let first = [head.as_bytes(), &bad].concat();
        assert!(p.input(&first, &body, &mut done).is_err());
        let mut p = parser();
        p.input(&[head.as_bytes(), &body].concat(), &body, &mut done).unwrap();
        p.input(&first, &body, &mut done).unwrap();
        assert_eq!(done.responses, 2);
    }

    #[test]
    fn refuses_what_the_workloads_do_not_expect() {
        let mut done = Done::default();
        let cases: [&[u8]; 4] = [
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello, world",
        ];
        for case in cases {
            assert!(parser().input(case, b"Hello, world!", &mut done).is_err());
        }
        assert!(parser().input(b"HTTP/1.1 200 OK\r\n\r\n", b"", &mut done).is_err());
    }
}
