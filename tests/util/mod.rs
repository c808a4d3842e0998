//! Shared helpers for the integration tests: logging, a server on an
//! ephemeral loopback port, a tick pump with a deadline, tungstenite peers on
//! non-blocking sockets, and raw TCP with hand-made frames.
//!
//! Everything runs on the test thread: each waiting loop ticks the server,
//! polls the peers, and panics with what it waited for after [`TIMEOUT`].

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Once;
use std::time::{Duration, Instant};

use hvws::{HvWebServer, Server, ServerConfig};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

pub mod bad_peers;
#[cfg(feature = "tls")]
pub mod certs;
pub mod tungstenite_peer;

/// How long any wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Sets up `env_logger` once per test binary (`RUST_LOG=debug` to see it).
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// A started server on `127.0.0.1:0` with the default configuration.
pub fn server<H: HvWebServer>(handler: H) -> Server<H> {
    server_with(handler, ServerConfig::default())
}

/// A started server on `127.0.0.1:0` with `config`.
pub fn server_with<H: HvWebServer>(handler: H, config: ServerConfig) -> Server<H> {
    init_logging();
    let mut server = Server::with_config(handler, config);
    server
        .init_addr("127.0.0.1:0".parse().unwrap())
        .expect("init_addr(127.0.0.1:0)");
    server.start().expect("start");
    server
}

/// The server's address.
pub fn addr<H: HvWebServer>(server: &Server<H>) -> SocketAddr {
    server.local_addr().expect("server is initialized")
}

/// `ws://127.0.0.1:PORT{path}`.
pub fn ws_url<H: HvWebServer>(server: &Server<H>, path: &str) -> String {
    format!("ws://{}{}", addr(server), path)
}

/// One tick (if the server still runs) and a short pause, so waiting loops
/// do not spin flat out.
pub fn tick<H: HvWebServer>(server: &mut Server<H>) {
    if server.is_running() {
        server.tick().expect("tick failed");
    }
    std::thread::sleep(Duration::from_micros(200));
}

/// Ticks until `f` returns `Some`, which is returned; panics naming `what`
/// after [`TIMEOUT`]. `f` runs before each tick.
#[track_caller]
pub fn pump_for<H: HvWebServer, T>(
    server: &mut Server<H>,
    what: &str,
    f: impl FnMut(&mut Server<H>) -> Option<T>,
) -> T {
    pump_for_within(server, what, TIMEOUT, f)
}

/// [`pump_for`] with a wait of its own, for the few waits that move a lot
/// of data (a debug build on a loaded machine needs more than [`TIMEOUT`]).
#[track_caller]
pub fn pump_for_within<H: HvWebServer, T>(
    server: &mut Server<H>,
    what: &str,
    timeout: Duration,
    mut f: impl FnMut(&mut Server<H>) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f(server) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tick(server);
    }
}

/// Ticks until `done` holds; panics naming `what` after [`TIMEOUT`].
#[track_caller]
pub fn pump_until<H: HvWebServer>(server: &mut Server<H>, what: &str, mut done: impl FnMut(&mut Server<H>) -> bool) {
    pump_for(server, what, |s| done(s).then_some(()))
}

/// Ticks `n` times, for "nothing happens" checks.
pub fn pump_n<H: HvWebServer>(server: &mut Server<H>, n: usize) {
    for _ in 0..n {
        tick(server);
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

// ---------------------------------------------------------------------------
// tungstenite peers

/// A tungstenite client on a non-blocking socket, and its handshake answer.
#[derive(Debug)]
pub struct Client {
    /// The connection.
    pub ws: WebSocket<TcpStream>,
    /// The server's handshake response.
    pub response: Response,
}

/// Connects a tungstenite client to `path`, ticking the server through the
/// handshake; panics if the handshake fails.
#[track_caller]
pub fn connect<H: HvWebServer>(server: &mut Server<H>, path: &str) -> Client {
    let url = ws_url(server, path);
    try_connect(server, url.as_str()).unwrap_or_else(|e| panic!("handshake to {path} failed: {e}"))
}

/// Connects a tungstenite client with `request` (a URL or a
/// `ClientRequestBuilder`), ticking the server through the handshake.
#[track_caller]
pub fn try_connect<H: HvWebServer>(
    server: &mut Server<H>,
    request: impl IntoClientRequest,
) -> Result<Client, tungstenite::Error> {
    let stream = TcpStream::connect(addr(server)).expect("TCP connect");
    stream.set_nonblocking(true).expect("set_nonblocking");
    stream.set_nodelay(true).expect("set_nodelay");
    let deadline = Instant::now() + TIMEOUT;
    let mut attempt = tungstenite::client::client(request, stream);
    loop {
        match attempt {
            Ok((ws, response)) => return Ok(Client { ws, response }),
            Err(HandshakeError::Failure(e)) => return Err(e),
            Err(HandshakeError::Interrupted(mid)) => {
                if Instant::now() >= deadline {
                    panic!("timed out after {TIMEOUT:?} waiting for the WebSocket handshake");
                }
                tick(server);
                attempt = mid.handshake();
            }
        }
    }
}

impl Client {
    /// One non-blocking read: `Ok(None)` if nothing is there yet.
    pub fn poll(&mut self) -> Result<Option<Message>, tungstenite::Error> {
        match self.ws.read() {
            Ok(m) => Ok(Some(m)),
            Err(e) if would_block(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One non-blocking read that must not fail.
    #[track_caller]
    pub fn try_recv(&mut self) -> Option<Message> {
        self.poll().unwrap_or_else(|e| panic!("client read failed: {e}"))
    }

    /// The client's local address (the server's view of its peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.ws.get_ref().local_addr().unwrap()
    }
}

/// Ticks until `client` has a message; panics on a read error or timeout.
#[track_caller]
pub fn recv<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) -> Message {
    pump_for(server, "a message on the client", |_| client.try_recv())
}

/// Ticks until `client` has a message, which must be text.
#[track_caller]
pub fn recv_text<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) -> String {
    match recv(server, client) {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Ticks until `client` has a message, which must be binary.
#[track_caller]
pub fn recv_binary<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) -> Vec<u8> {
    match recv(server, client) {
        Message::Binary(b) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    }
}

/// Ticks until `client` gets a close frame, which must be the next message;
/// returns its (code, reason). Its reply is flushed afterwards.
#[track_caller]
pub fn recv_close<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) -> (u16, String) {
    let frame = match recv(server, client) {
        Message::Close(Some(f)) => (u16::from(f.code), f.reason.as_str().to_owned()),
        Message::Close(None) => (1005, String::new()),
        other => panic!("expected a close frame, got {other:?}"),
    };
    flush(server, client);
    frame
}

/// Ticks until the client's queued frames (a close reply, say) are written.
#[track_caller]
pub fn flush<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) {
    pump_until(server, "the client to flush", |_| match client.ws.flush() {
        Ok(()) => true,
        Err(e) if would_block(&e) => false,
        // The closing handshake finished while we flushed: nothing left.
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => true,
        Err(e) => panic!("client flush failed: {e}"),
    })
}

/// Sends `msg` from `client`, ticking the server while the socket is full.
#[track_caller]
pub fn send<H: HvWebServer>(server: &mut Server<H>, client: &mut Client, msg: Message) {
    match client.ws.send(msg) {
        Ok(()) => {}
        Err(e) if would_block(&e) => flush(server, client),
        Err(e) => panic!("client send failed: {e}"),
    }
}

/// Sends a text message from `client`.
#[track_caller]
pub fn send_text<H: HvWebServer>(server: &mut Server<H>, client: &mut Client, text: &str) {
    send(server, client, Message::text(text));
}

/// Starts a close from `client` with `code` and `reason`.
#[track_caller]
pub fn close<H: HvWebServer>(server: &mut Server<H>, client: &mut Client, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    match client.ws.close(Some(frame)) {
        Ok(()) => {}
        Err(e) if would_block(&e) => flush(server, client),
        Err(e) => panic!("client close failed: {e}"),
    }
}

/// Ticks until the connection is over for `client`: its close handshake
/// done and the server's TCP close seen. Messages still arriving before that
/// are returned.
#[track_caller]
pub fn until_closed<H: HvWebServer>(server: &mut Server<H>, client: &mut Client) -> Vec<Message> {
    let mut seen = Vec::new();
    pump_until(server, "the client connection to close", |_| match client.poll() {
        Ok(Some(m)) => {
            seen.push(m);
            false
        }
        Ok(None) => false,
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => true,
        Err(e) => panic!("client connection ended with an error instead of a clean close: {e}"),
    });
    seen
}

// ---------------------------------------------------------------------------
// raw TCP

/// A raw, non-blocking TCP connection to the server, with what it has read.
#[derive(Debug)]
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet taken.
    pub buf: Vec<u8>,
    /// The server closed its side (read returned 0).
    pub eof: bool,
}

impl Raw {
    /// Opens a connection (the server accepts it on a later tick).
    pub fn connect<H: HvWebServer>(server: &Server<H>) -> Raw {
        Raw::connect_to(addr(server))
    }

    /// Opens a connection to `addr` (a server's TLS port, say).
    pub fn connect_to(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("TCP connect");
        stream.set_nonblocking(true).expect("set_nonblocking");
        stream.set_nodelay(true).expect("set_nodelay");
        Raw {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Opens a connection and completes a WebSocket handshake on `path`.
    #[track_caller]
    pub fn ws<H: HvWebServer>(server: &mut Server<H>, path: &str) -> Raw {
        let mut raw = Raw::connect(server);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            addr(server)
        );
        raw.write(server, req.as_bytes());
        let resp = raw.response(server);
        assert_eq!(resp.status, 101, "raw handshake refused: {resp:?}");
        assert_eq!(
            resp.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        raw
    }

    /// Writes all of `bytes`, ticking the server while the socket is full.
    #[track_caller]
    pub fn write<H: HvWebServer>(&mut self, server: &mut Server<H>, bytes: &[u8]) {
        let mut pos = 0;
        pump_until(server, "a raw write to finish", |_| {
            while pos < bytes.len() {
                match self.stream.write(&bytes[pos..]) {
                    Ok(n) => pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("raw write failed: {e}"),
                }
            }
            true
        });
    }

    /// Reads whatever is available without blocking.
    #[track_caller]
    pub fn fill(&mut self) {
        let mut chunk = [0u8; 16 << 10];
        while !self.eof {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset after the server closed counts as the end too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => panic!("raw read failed: {e}"),
            }
        }
    }

    /// Ticks until a whole HTTP response has arrived; takes it off `buf`.
    #[track_caller]
    pub fn response<H: HvWebServer>(&mut self, server: &mut Server<H>) -> HttpResp {
        pump_for(server, "an HTTP response", |_| {
            self.fill();
            let (resp, used) = parse_response(&self.buf)?;
            self.buf.drain(..used);
            Some(resp)
        })
    }

    /// Ticks until a whole server frame has arrived; takes it off `buf`.
    #[track_caller]
    pub fn frame<H: HvWebServer>(&mut self, server: &mut Server<H>) -> Frame {
        pump_for(server, "a WebSocket frame", |_| {
            self.fill();
            let (frame, used) = parse_frame(&self.buf)?;
            self.buf.drain(..used);
            Some(frame)
        })
    }

    /// Ticks until the server closes the connection; returns the unread
    /// bytes that came before the close.
    #[track_caller]
    pub fn read_to_eof<H: HvWebServer>(&mut self, server: &mut Server<H>) -> Vec<u8> {
        pump_until(server, "the server to close the TCP connection", |_| {
            self.fill();
            self.eof
        });
        std::mem::take(&mut self.buf)
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResp {
    /// The status code.
    pub status: u16,
    /// Headers as (lower-cased name, value).
    pub headers: Vec<(String, String)>,
    /// The body (per `Content-Length`).
    pub body: Vec<u8>,
}

impl HttpResp {
    /// A header's value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
}

/// Parses one response at the start of `buf`: `None` until it is complete.
/// A 101 has no body; others have `Content-Length` bytes.
pub fn parse_response(buf: &[u8]) -> Option<(HttpResp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end - 4]).expect("UTF-8 response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("header line {l:?}"));
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("Content-Length"));
    if buf.len() < end + len {
        return None;
    }
    let body = buf[end..end + len].to_vec();
    Some((HttpResp { status, headers, body }, end + len))
}

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A close frame's code and reason.
    pub fn close_code(&self) -> (u16, String) {
        assert_eq!(self.opcode, 8, "not a close frame: {self:?}");
        assert!(self.payload.len() >= 2, "close frame without a code: {self:?}");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (
            code,
            String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 reason"),
        )
    }
}

/// Parses one server frame at the start of `buf`: `None` until complete.
/// Server frames must not be masked and must have RSV bits clear.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[0] & 0x70, 0, "RSV bits set in server frame");
    assert_eq!(buf[1] & 0x80, 0, "server frame is masked");
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let (len, hdr) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < hdr + len {
        return None;
    }
    let payload = buf[hdr..hdr + len].to_vec();
    Some((Frame { fin, opcode, payload }, hdr + len))
}

/// A client frame: masked with a fixed key, as a client must.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = frame_header(fin, opcode, payload.len(), true);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A frame without a mask: what a client must never send.
pub fn unmasked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len(), false);
    out.extend_from_slice(payload);
    out
}

fn frame_header(fin: bool, opcode: u8, len: usize, masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let m = if masked { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(m | len as u8),
        126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out
}
