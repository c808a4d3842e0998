//! An in-memory pair of connections: hvws's server core and client core,
//! with bytes moved between them by the test and a clock the test advances
//! (quinn-proto's `tests/util.rs`, rustls's `transfer`). No socket, no
//! thread, no sleep: every run is the same run.
//!
//! Each side's events are recorded as short lines (`"text hello"`,
//! `"closed 1000 \"bye\" clean remote"`), so a test reads like a wire trace.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hvws::proto::client::Request;
use hvws::proto::{ClientConn, ClientEvent, CloseInfo, CloseInitiator, Flushed, Limits, ServerConn, ServerEvent};
use hvws::{ChannelInfo, HttpResponse, Opcode};

/// One side of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// What the server side does with an HTTP request.
pub type Router = fn(&hvws::HttpRequest) -> HttpResponse;

fn not_found(_: &hvws::HttpRequest) -> HttpResponse {
    HttpResponse::error(404)
}

/// A server connection and a client connection joined by two byte queues.
pub struct Pair {
    /// The fake clock both sides are driven with.
    pub now: Instant,
    pub server_limits: Limits,
    pub client_limits: Limits,
    pub server: ServerConn,
    pub client: ClientConn,
    /// What each side reported, in order.
    pub server_log: Vec<String>,
    pub client_log: Vec<String>,
    /// Answers plain HTTP requests.
    pub router: Router,
    /// Upgrades are refused with this response when set.
    pub refuse_upgrades: Option<HttpResponse>,
    /// Bytes each side wrote that the other has not read yet.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// While set, bytes written towards that side are lost (a dead link).
    pub cut_to_server: bool,
    pub cut_to_client: bool,
    /// Each side's socket is closed; the other has seen EOF.
    pub server_gone: bool,
    pub client_gone: bool,
    server_eof_sent: bool,
    client_eof_sent: bool,
    /// Bytes moved so far, each way.
    pub moved_to_server: usize,
    pub moved_to_client: usize,
    /// Every byte moved each way since the test last took them, for tests
    /// that look at the frames themselves.
    pub wire_to_server: Vec<u8>,
    pub wire_to_client: Vec<u8>,
    /// When set, the server's socket takes at most this many bytes per
    /// flush (a full socket: the rest waits for the next step), written
    /// as a driver writes them, vectored from the server's queue.
    pub server_write_cap: Option<usize>,
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

impl Pair {
    /// A pair whose client has connected (TCP) but sent nothing yet.
    pub fn new(server_limits: Limits, client_limits: Limits) -> Pair {
        let now = Instant::now();
        let request = Request {
            authority: "127.0.0.1:9001".into(),
            resource: "/chat".into(),
            protocols: Vec::new(),
            headers: Vec::new(),
        };
        let server = ServerConn::new(peer(), now, &server_limits);
        let mut client = ClientConn::new(&request, now, &client_limits);
        client.handle_connected();
        Pair {
            now,
            server_limits,
            client_limits,
            server,
            client,
            server_log: Vec::new(),
            client_log: Vec::new(),
            router: not_found,
            refuse_upgrades: None,
            to_server: Vec::new(),
            to_client: Vec::new(),
            cut_to_server: false,
            cut_to_client: false,
            server_gone: false,
            client_gone: false,
            server_eof_sent: false,
            client_eof_sent: false,
            moved_to_server: 0,
            moved_to_client: 0,
            wire_to_server: Vec::new(),
            wire_to_client: Vec::new(),
            server_write_cap: None,
        }
    }

    /// A pair with default limits, driven until the WebSocket is open.
    pub fn open() -> Pair {
        Pair::open_with(Limits::default(), Limits::default())
    }

    /// A pair with these limits, driven until the WebSocket is open.
    pub fn open_with(server_limits: Limits, client_limits: Limits) -> Pair {
        let mut pair = Pair::new(server_limits, client_limits);
        pair.drive();
        assert_eq!(pair.take_log(Side::Client), ["open"], "the client should be open");
        assert_eq!(pair.take_log(Side::Server), ["upgrade /chat"]);
        pair
    }

    /// Takes what one side reported since the last call.
    pub fn take_log(&mut self, side: Side) -> Vec<String> {
        match side {
            Side::Server => std::mem::take(&mut self.server_log),
            Side::Client => std::mem::take(&mut self.client_log),
        }
    }

    /// Moves each side's output to the other and lets both process what
    /// they got. Returns whether any byte or EOF moved.
    pub fn step(&mut self) -> bool {
        let mut moved = self.flush_server();
        moved |= self.flush_client();
        if !self.to_server.is_empty() {
            let mut data = std::mem::take(&mut self.to_server);
            self.moved_to_server += data.len();
            self.wire_to_server.extend_from_slice(&data);
            self.feed_server(&mut data);
            moved = true;
        }
        if !self.to_client.is_empty() {
            let mut data = std::mem::take(&mut self.to_client);
            self.moved_to_client += data.len();
            self.wire_to_client.extend_from_slice(&data);
            self.feed_client(&mut data);
            moved = true;
        }
        moved
    }

    /// Steps until nothing moves (at most 1,000 steps: a pair that keeps
    /// talking by itself is a bug).
    #[track_caller]
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair did not go quiet in 1,000 steps");
    }

    /// Moves the clock forward by `d`, fires what came due on both sides,
    /// and drives the pair.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.fire_timeouts();
        self.drive();
    }

    /// Fires due deadlines on both sides, as a driver would.
    pub fn fire_timeouts(&mut self) {
        let now = self.now;
        if !self.server_gone && self.server.poll_timeout().is_some_and(|at| at <= now) {
            if let Some(ev) = self.server.handle_timeout(now, &self.server_limits) {
                let line = server_line(&ev);
                self.server_log.push(line);
                self.server.release();
            }
        }
        if !self.client_gone && self.client.poll_timeout().is_some_and(|at| at <= now) {
            if let Some(ev) = self.client.handle_timeout(now, &self.client_limits) {
                let line = client_line(&ev);
                self.client_log.push(line);
            }
        }
    }

    /// Delivers `data` to the server, in one read.
    pub fn feed_server(&mut self, data: &mut [u8]) {
        if self.server_gone {
            return;
        }
        let (now, limits) = (self.now, self.server_limits.clone());
        let mut input = self.server.begin_input(data, Vec::new());
        while let Some(ev) = self.server.poll_input(&mut input, now, &limits) {
            let line = server_line(&ev);
            self.server_log.push(line);
            match ev {
                ServerEvent::Request(req) => {
                    let resp = (self.router)(&req);
                    self.server.respond(&resp, now, &limits);
                }
                ServerEvent::Upgrade(req) => match self.refuse_upgrades.clone() {
                    Some(resp) => self.server.respond(&resp, now, &limits),
                    None => {
                        self.server.accept_upgrade(ChannelInfo::new(&req, None), now, &limits);
                    }
                },
                ServerEvent::Refused { response, .. } => self.server.respond(&response, now, &limits),
                ServerEvent::Closed(_) => self.server.release(),
                _ => {}
            }
        }
        self.server.end_input(input);
        if let Some(ev) = self.server.poll_event(now, &limits) {
            let line = server_line(&ev);
            self.server_log.push(line);
        }
    }

    /// Delivers `data` to the client, in one read.
    pub fn feed_client(&mut self, data: &mut [u8]) {
        if self.client_gone {
            return;
        }
        let (now, limits) = (self.now, self.client_limits.clone());
        let mut input = self.client.begin_input(data);
        while let Some(ev) = self.client.poll_input(&mut input, now, &limits) {
            let line = client_line(&ev);
            self.client_log.push(line);
        }
        self.client.end_input(input);
    }

    /// Writes the server's output towards the client, as a flush would.
    fn flush_server(&mut self) -> bool {
        if self.server_gone {
            return false;
        }
        let mut moved = false;
        let out = match self.server_write_cap {
            None => self.server.transmit().take_all(),
            Some(cap) => write_vectored_up_to(self.server.transmit(), cap),
        };
        if !out.is_empty() {
            moved = true;
            if !self.cut_to_client {
                self.to_client.extend_from_slice(&out);
            }
        }
        match self.server.handle_flushed().0 {
            Flushed::ShutdownWrite => moved |= self.eof_to_client(),
            Flushed::Close => {}
            Flushed::Keep => {}
        }
        if self.server.is_finished() {
            self.server_gone = true;
            moved |= self.eof_to_client();
        }
        moved
    }

    fn flush_client(&mut self) -> bool {
        if self.client_gone || self.client.is_connecting() {
            return false;
        }
        let mut moved = false;
        let out = std::mem::take(self.client.transmit());
        if !out.is_empty() {
            moved = true;
            if !self.cut_to_server {
                self.to_server.extend_from_slice(&out);
            }
        }
        self.client.handle_flushed();
        if self.client.is_finished() {
            self.client_gone = true;
            moved |= self.eof_to_server();
        }
        moved
    }

    /// The client reads EOF (after the bytes already on their way).
    fn eof_to_client(&mut self) -> bool {
        if self.client_eof_sent || self.cut_to_client {
            return false;
        }
        self.client_eof_sent = true;
        let mut data = std::mem::take(&mut self.to_client);
        self.moved_to_client += data.len();
        self.wire_to_client.extend_from_slice(&data);
        self.feed_client(&mut data);
        if !self.client_gone {
            if let Some(ev) = self.client.handle_eof(self.now, &self.client_limits) {
                let line = client_line(&ev);
                self.client_log.push(line);
            }
        }
        true
    }

    fn eof_to_server(&mut self) -> bool {
        if self.server_eof_sent || self.cut_to_server {
            return false;
        }
        self.server_eof_sent = true;
        let mut data = std::mem::take(&mut self.to_server);
        self.moved_to_server += data.len();
        self.wire_to_server.extend_from_slice(&data);
        self.feed_server(&mut data);
        if !self.server_gone {
            if let Some(ev) = self.server.handle_eof(self.now, &self.server_limits) {
                let line = server_line(&ev);
                self.server_log.push(line);
                self.server.release();
            }
        }
        true
    }

    /// The server queues a text message.
    pub fn server_text(&mut self, text: &str) {
        let status = self
            .server
            .send_message(Opcode::Text, text.as_bytes(), &self.server_limits);
        assert!(status.is_queued(), "server send: {status:?}");
    }

    /// The client queues a text message.
    pub fn client_text(&mut self, text: &str) {
        let status = self
            .client
            .send_message(Opcode::Text, text.as_bytes(), &self.client_limits);
        assert!(status.is_queued(), "client send: {status:?}");
    }
}

/// What a socket that takes at most `cap` bytes would take of `out` in
/// one `writev` (the queue's slices, in order), consumed from it.
fn write_vectored_up_to(out: &mut hvws::proto::Outbox, cap: usize) -> Vec<u8> {
    let mut iov = [std::io::IoSlice::new(&[]); hvws::proto::outbox::MAX_IOV];
    let n = out.io_slices(&mut iov);
    let mut took = Vec::new();
    for s in &iov[..n] {
        let k = (cap - took.len()).min(s.len());
        took.extend_from_slice(&s[..k]);
    }
    out.consume(took.len());
    took
}

/// A close as one word list: code, reason, clean or not, who started it.
pub fn close_line(c: &CloseInfo) -> String {
    let clean = if c.was_clean { "clean" } else { "unclean" };
    let who = match c.initiator {
        CloseInitiator::Local => "local",
        CloseInitiator::Remote => "remote",
    };
    format!("closed {} {:?} {clean} {who}", c.code, c.reason)
}

fn error_suffix(e: &Option<hvws::proto::ConnError>) -> String {
    e.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
}

pub fn server_line(ev: &ServerEvent<'_>) -> String {
    match ev {
        ServerEvent::Request(r) => format!("request {} {}", r.method(), r.target()),
        ServerEvent::Upgrade(r) => format!("upgrade {}", r.target()),
        ServerEvent::Text(t) => format!("text {t}"),
        ServerEvent::Binary(b) => format!("binary {} bytes", b.len()),
        ServerEvent::Ping(p) => format!("ping {:?}", String::from_utf8_lossy(p)),
        ServerEvent::Pong(p) => format!("pong {:?}", String::from_utf8_lossy(p)),
        ServerEvent::Closed(end) => format!("{}{}", close_line(&end.close), error_suffix(&end.error)),
        other => format!("{other:?}"),
    }
}

pub fn client_line(ev: &ClientEvent<'_>) -> String {
    match ev {
        ClientEvent::Open { extensions: None, .. } => "open".into(),
        ClientEvent::Open {
            extensions: Some(e), ..
        } => format!("open with {e}"),
        ClientEvent::Text(t) => format!("text {t}"),
        ClientEvent::Binary(b) => format!("binary {} bytes", b.len()),
        ClientEvent::Ping(p) => format!("ping {:?}", String::from_utf8_lossy(p)),
        ClientEvent::Pong(p) => format!("pong {:?}", String::from_utf8_lossy(p)),
        ClientEvent::Closed(end) => format!("{}{}", close_line(&end.close), error_suffix(&end.error)),
        other => format!("{other:?}"),
    }
}
