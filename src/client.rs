//! The WebSocket client: one connection, pumped by the caller with
//! [`WebSocketClient::process_event_que`], callbacks on the caller's thread.

use std::fmt;
use std::io;
use std::mem;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::ClientConfig;
use crate::driver::{read_into, write_from, FlushResult, ReadResult};
use crate::error::{ClientError, SendError};
use crate::proto::close::{close_payload, is_valid_app_code, ABNORMAL, MAX_REASON_LEN};
use crate::proto::frame::{encode_frame, Opcode};
use crate::proto::handshake::{encode_request, parse_response};
use crate::proto::outgoing::{Fragmenter, RawFrame};
use crate::proto::{Decoded, Decoder, Event, ProtocolError, Role};

const SOCKET: Token = Token(0);

/// The connection's state, numbered as the browser and Aussom `WebSocket`
/// classes number it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// 0: connecting or handshaking (also while waiting to reconnect).
    Connecting = 0,
    /// 1: open; messages can be sent.
    Open = 1,
    /// 2: our close frame is sent; waiting for the server's.
    Closing = 2,
    /// 3: closed, or never opened.
    Closed = 3,
}

/// Callbacks of a WebSocket client application. All default to doing
/// nothing; they run inside [`WebSocketClient::process_event_que`].
pub trait HvWebSocketClient {
    /// The handshake completed; sending is possible.
    fn on_open(&mut self, ctx: &mut ClientContext<'_>) {
        let _ = ctx;
    }

    /// A complete text message arrived.
    fn on_message(&mut self, ctx: &mut ClientContext<'_>, msg: &str) {
        let _ = (ctx, msg);
    }

    /// A complete binary message arrived.
    fn on_binary(&mut self, ctx: &mut ClientContext<'_>, data: &[u8]) {
        let _ = (ctx, data);
    }

    /// A ping arrived (the pong is already queued).
    fn on_ping(&mut self, ctx: &mut ClientContext<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }

    /// A pong arrived.
    fn on_pong(&mut self, ctx: &mut ClientContext<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }

    /// The connection closed: `code` from the server's close frame (1005 if
    /// it had none), ours if we failed it, 1006 if it dropped; `was_clean`
    /// when both close frames were exchanged. Called once for every
    /// connection attempt that got a socket, whether or not it opened; an
    /// attempt that fails before that (a reconnect whose name no longer
    /// resolves, say) is reported through `on_error` only.
    fn on_close(&mut self, code: u16, reason: &str, was_clean: bool) {
        let _ = (code, reason, was_clean);
    }

    /// Something failed (connect, handshake, protocol, socket); `on_close`
    /// follows.
    fn on_error(&mut self, error: &ClientError) {
        log::debug!("websocket client: {error}");
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    /// Path and query.
    resource: String,
}

fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = |reason| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme (ws://)"))?;
    if !scheme.eq_ignore_ascii_case("ws") {
        return Err(ClientError::UnsupportedScheme(scheme.to_owned()));
    }
    let (authority, resource) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let resource = if resource.starts_with('?') {
        format!("/{resource}")
    } else {
        resource.to_owned()
    };
    if authority.contains('@') {
        return Err(bad("user info in the URL is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
        None => 80,
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        resource,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    TcpConnecting,
    Handshaking,
    Open,
    Closing,
    Closed,
}

/// The connection's output and send state; what callbacks reach through
/// the [`ClientContext`].
struct Link {
    phase: Phase,
    out: Vec<u8>,
    frag: Fragmenter,
    deferred: Vec<u8>,
}

impl Link {
    fn require_open(&self) -> Result<(), ClientError> {
        if self.phase == Phase::Open {
            Ok(())
        } else {
            Err(ClientError::NotOpen)
        }
    }

    fn frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8]) {
        encode_frame(&mut self.out, fin, opcode, payload, Some(rand::random()));
    }

    fn send_message(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), ClientError> {
        self.require_open()?;
        if self.frag.is_open() {
            encode_frame(&mut self.deferred, true, opcode, payload, Some(rand::random()));
        } else {
            self.frame(true, opcode, payload);
        }
        Ok(())
    }

    fn send_raw(&mut self, data: &[u8], opcode: Opcode, fin: bool) -> Result<(), ClientError> {
        self.require_open()?;
        match self.frag.check(opcode, data.len(), fin)? {
            RawFrame::Control => self.frame(true, opcode, data),
            RawFrame::Data(wire) => {
                self.frame(fin, wire, data);
                if self.frag.sent(wire, fin) {
                    let deferred = mem::take(&mut self.deferred);
                    self.out.extend_from_slice(&deferred);
                }
            }
        }
        Ok(())
    }

    fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        if !is_valid_app_code(code) {
            return Err(SendError::InvalidCloseCode(code).into());
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ReasonTooLong(reason.len()).into());
        }
        self.require_open()?;
        self.queue_close(code, reason);
        Ok(())
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = [0u8; 125];
        let n = close_payload(code, reason, &mut payload);
        self.deferred.clear();
        self.frame(true, Opcode::Close, &payload[..n]);
        self.phase = Phase::Closing;
    }
}

/// What client callbacks send through.
pub struct ClientContext<'a> {
    link: &'a mut Link,
}

impl fmt::Debug for ClientContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("phase", &self.link.phase)
            .finish()
    }
}

impl ClientContext<'_> {
    /// Queues a text message.
    pub fn send(&mut self, text: &str) -> Result<(), ClientError> {
        self.link.send_message(Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.link.send_message(Opcode::Binary, data)
    }

    /// Queues one raw frame, with the same rules as
    /// [`Context::send`](crate::Context::send).
    pub fn send_frame(&mut self, data: &[u8], opcode: Opcode, fin: bool) -> Result<(), ClientError> {
        self.link.send_raw(data, opcode, fin)
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.link.send_raw(payload, Opcode::Ping, true)
    }

    /// Starts the closing handshake (code 1000 or 3000-4999, reason at most
    /// 123 bytes).
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        self.link.close(code, reason)
    }
}

/// A WebSocket client driven by the caller's loop.
///
/// ```no_run
/// use hvws::{ClientContext, HvWebSocketClient, WebSocketClient};
///
/// #[derive(Default)]
/// struct Printer {
///     received: Vec<String>,
/// }
/// impl HvWebSocketClient for Printer {
///     fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
///         self.received.push(msg.to_owned());
///     }
/// }
///
/// let mut client = WebSocketClient::new(Printer::default());
/// client.init("ws://127.0.0.1:8080/chat")?;
/// while client.handler().received.is_empty() {
///     client.process_events_timeout(std::time::Duration::from_millis(20));
/// }
/// client.send("hello server!")?;
/// client.close()?;
/// while client.is_connected() {
///     client.process_events_timeout(std::time::Duration::from_millis(20));
/// }
/// # Ok::<(), hvws::ClientError>(())
/// ```
pub struct WebSocketClient<H: HvWebSocketClient> {
    handler: H,
    config: ClientConfig,
    url: String,
    target: Option<Target>,
    poll: Option<Poll>,
    events: Events,
    sock: Option<TcpStream>,
    link: Link,
    decoder: Decoder,
    inbuf: Vec<u8>,
    key: String,
    protocol: Option<String>,
    /// Connect, handshake or close deadline, by phase.
    deadline: Option<Instant>,
    user_closed: bool,
    reconnect_attempt: u32,
    reconnect_at: Option<Instant>,
    /// When the server last sent anything, and when we last pinged it.
    last_rx: Instant,
    last_ping: Instant,
}

impl<H: HvWebSocketClient + fmt::Debug> fmt::Debug for WebSocketClient<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketClient")
            .field("handler", &self.handler)
            .field("url", &self.url)
            .field("ready_state", &self.ready_state())
            .finish()
    }
}

impl<H: HvWebSocketClient> WebSocketClient<H> {
    /// A client for `handler` with the default [`ClientConfig`].
    pub fn new(handler: H) -> WebSocketClient<H> {
        WebSocketClient::with_config(handler, ClientConfig::default())
    }

    /// A client for `handler` with `config`.
    pub fn with_config(handler: H, config: ClientConfig) -> WebSocketClient<H> {
        let decoder = Decoder::new(Role::Client, config.max_frame_size, config.max_message_size);
        WebSocketClient {
            handler,
            config,
            url: String::new(),
            target: None,
            poll: None,
            events: Events::with_capacity(8),
            sock: None,
            link: Link {
                phase: Phase::Idle,
                out: Vec::new(),
                frag: Fragmenter::default(),
                deferred: Vec::new(),
            },
            decoder,
            inbuf: Vec::new(),
            key: String::new(),
            protocol: None,
            deadline: None,
            user_closed: false,
            reconnect_attempt: 0,
            reconnect_at: None,
            last_rx: Instant::now(),
            last_ping: Instant::now(),
        }
    }

    /// Starts connecting to `url` (`ws://host[:port]/path?query`); returns
    /// at once. `on_open` (or `on_error` and `on_close`) follows from
    /// [`WebSocketClient::process_event_que`]. Host names are resolved here,
    /// blocking; IP addresses need no lookup. A connection already open is
    /// dropped without callbacks.
    pub fn init(&mut self, url: &str) -> Result<(), ClientError> {
        let target = parse_url(url)?;
        self.url = url.to_owned();
        self.drop_connection();
        // Closed until `connect` succeeds, so a failed init leaves no ghost
        // of the previous connection behind.
        self.link.phase = Phase::Closed;
        self.link.frag = Fragmenter::default();
        self.link.deferred = Vec::new();
        self.user_closed = false;
        self.reconnect_attempt = 0;
        self.reconnect_at = None;
        self.target = Some(target);
        self.connect()
    }

    fn connect(&mut self) -> Result<(), ClientError> {
        let target = self.target.clone().ok_or(ClientError::NotOpen)?;
        let addr: SocketAddr = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Resolve {
                host: target.host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| ClientError::Resolve {
                host: target.host.clone(),
                source: io::ErrorKind::NotFound.into(),
            })?;
        if self.poll.is_none() {
            self.poll = Some(Poll::new().map_err(ClientError::Io)?);
        }
        let mut sock = TcpStream::connect(addr).map_err(ClientError::Connect)?;
        let poll = self.poll.as_ref().expect("created above");
        poll.registry()
            .register(&mut sock, SOCKET, Interest::READABLE | Interest::WRITABLE)
            .map_err(ClientError::Io)?;
        self.sock = Some(sock);
        self.link = Link {
            phase: Phase::TcpConnecting,
            out: Vec::new(),
            frag: Fragmenter::default(),
            deferred: Vec::new(),
        };
        self.decoder = Decoder::new(Role::Client, self.config.max_frame_size, self.config.max_message_size);
        self.inbuf.clear();
        self.protocol = None;
        self.key = tungstenite::handshake::client::generate_key();
        self.deadline = Some(Instant::now() + self.config.connect_timeout);
        Ok(())
    }

    /// Does the pending I/O without blocking and runs the callbacks for
    /// everything that arrived; what they (or earlier calls) sent is
    /// written before it returns.
    pub fn process_event_que(&mut self) {
        self.pump(Duration::ZERO);
    }

    /// Like [`WebSocketClient::process_event_que`], but first waits up to
    /// `timeout` for something to happen.
    pub fn process_events_timeout(&mut self, timeout: Duration) {
        self.pump(timeout);
    }

    fn pump(&mut self, timeout: Duration) {
        let now = Instant::now();
        if self.reconnect_at.is_some_and(|at| at <= now) {
            self.reconnect_at = None;
            if let Err(e) = self.connect() {
                self.handler.on_error(&e);
                self.connection_ended(ABNORMAL, "", false);
            }
        }
        // Write first: what stays queued waits for the writable edge, so
        // the poll below can sleep the whole timeout.
        if !self.flush() {
            return;
        }
        let mut wait = timeout;
        for at in [self.deadline, self.reconnect_at, self.keepalive_due()]
            .into_iter()
            .flatten()
        {
            wait = wait.min(at.saturating_duration_since(now));
        }
        let Some(poll) = self.poll.as_mut() else { return };
        if let Err(e) = poll.poll(&mut self.events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::warn!("client poll failed: {e}");
            }
            return;
        }
        let ready = !self.events.is_empty();
        if ready && self.link.phase == Phase::TcpConnecting {
            self.check_connected();
        }
        if ready && self.sock.is_some() && self.link.phase != Phase::TcpConnecting {
            self.read();
        }
        self.keepalive();
        self.flush();
        self.check_deadline();
    }

    /// When the next ping or idle check is due, if either is configured.
    fn keepalive_due(&self) -> Option<Instant> {
        if self.link.phase != Phase::Open {
            return None;
        }
        let ping = self.config.ping_interval.map(|p| self.last_rx.max(self.last_ping) + p);
        let idle = self.config.idle_timeout.map(|i| self.last_rx + i);
        ping.into_iter().chain(idle).min()
    }

    /// Fails a server that has been silent past the idle timeout; pings one
    /// that has been silent past the ping interval.
    fn keepalive(&mut self) {
        if self.link.phase != Phase::Open {
            return;
        }
        let now = Instant::now();
        if self.config.idle_timeout.is_some_and(|i| now >= self.last_rx + i) {
            return self.fail(ClientError::IdleTimeout, None);
        }
        if self
            .config
            .ping_interval
            .is_some_and(|p| now >= self.last_rx.max(self.last_ping) + p)
        {
            self.last_ping = now;
            self.link.frame(true, Opcode::Ping, b"");
        }
    }

    fn check_connected(&mut self) {
        let Some(sock) = self.sock.as_ref() else { return };
        let err = match sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = err {
            return self.fail(ClientError::Connect(e), None);
        }
        let _ = sock.set_nodelay(true);
        let target = self.target.as_ref().expect("connecting has a target");
        encode_request(
            &target.authority,
            &target.resource,
            &self.key,
            &self.config.protocols,
            &self.config.headers,
            &mut self.link.out,
        );
        self.link.phase = Phase::Handshaking;
    }

    fn read(&mut self) {
        let mut scratch = [0u8; 16 << 10];
        loop {
            let Some(sock) = self.sock.as_mut() else { return };
            match read_into(sock, &mut scratch) {
                ReadResult::Data(n) => {
                    self.last_rx = Instant::now();
                    self.inbuf.extend_from_slice(&scratch[..n]);
                    self.process_input();
                }
                ReadResult::WouldBlock => return,
                ReadResult::Eof => {
                    self.process_input();
                    if self.sock.is_some() {
                        self.connection_ended(ABNORMAL, "", false);
                    }
                    return;
                }
                ReadResult::Failed(e) => return self.fail(ClientError::Io(e), None),
            }
        }
    }

    fn process_input(&mut self) {
        if self.link.phase == Phase::Handshaking {
            match parse_response(&self.inbuf, &self.key, &self.config.protocols) {
                Ok(None) => return,
                Ok(Some(accepted)) => {
                    self.inbuf.drain(..accepted.head_len);
                    self.protocol = accepted.protocol;
                    self.link.phase = Phase::Open;
                    self.deadline = None;
                    self.reconnect_attempt = 0;
                    self.last_rx = Instant::now();
                    self.last_ping = self.last_rx;
                    self.handler.on_open(&mut ClientContext { link: &mut self.link });
                }
                Err(e) => return self.fail(ClientError::Handshake(e), None),
            }
        }
        if !matches!(self.link.phase, Phase::Open | Phase::Closing) {
            return;
        }
        let mut buf = mem::take(&mut self.inbuf);
        let mut pos = 0;
        let outcome = loop {
            match self.decoder.decode(&mut buf[pos..]) {
                Ok(Decoded::NeedMore) => break Ok(()),
                Ok(Decoded::Frame { consumed, event }) => {
                    pos += consumed;
                    let Some(event) = event else { continue };
                    let mut ctx = ClientContext { link: &mut self.link };
                    match event {
                        Event::Text(t) => self.handler.on_message(&mut ctx, t),
                        Event::Binary(b) => self.handler.on_binary(&mut ctx, b),
                        Event::Ping(p) => {
                            if ctx.link.phase == Phase::Open {
                                ctx.link.frame(true, Opcode::Pong, p);
                            }
                            self.handler.on_ping(&mut ctx, p);
                        }
                        Event::Pong(p) => self.handler.on_pong(&mut ctx, p),
                        Event::Close { code, reason } => {
                            if self.link.phase == Phase::Open {
                                self.link.queue_close(code, "");
                            }
                            let reason = reason.to_owned();
                            if self.flush() {
                                self.connection_ended(code, &reason, true);
                            }
                            return;
                        }
                    }
                }
                Err(e) => break Err(e),
            }
        };
        buf.drain(..pos);
        self.inbuf = buf;
        if let Err(e) = outcome {
            self.protocol_failure(e);
        }
    }

    fn protocol_failure(&mut self, e: ProtocolError) {
        let code = e.close_code();
        if self.link.phase == Phase::Open {
            self.link.queue_close(code, &e.to_string());
        }
        if self.flush() {
            self.fail(ClientError::Protocol(e), Some(code));
        }
    }

    /// Reports `error`, drops the connection and reports the close.
    fn fail(&mut self, error: ClientError, code: Option<u16>) {
        self.handler.on_error(&error);
        let reason = code.map(|_| error.to_string()).unwrap_or_default();
        self.connection_ended(code.unwrap_or(ABNORMAL), &reason, false);
    }

    /// Writes what is queued; false if the socket failed, in which case
    /// the connection has been ended and reported.
    fn flush(&mut self) -> bool {
        if self.link.phase == Phase::Closing && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.config.close_timeout);
        }
        let Some(sock) = self.sock.as_mut() else { return true };
        if self.link.phase == Phase::TcpConnecting || self.link.out.is_empty() {
            return true;
        }
        match write_from(sock, &mut self.link.out) {
            FlushResult::Done | FlushResult::Blocked => true,
            FlushResult::Failed(e) => {
                self.fail(ClientError::Io(e), None);
                false
            }
        }
    }

    fn check_deadline(&mut self) {
        if self.deadline.is_none_or(|d| d > Instant::now()) {
            return;
        }
        self.deadline = None;
        match self.link.phase {
            Phase::TcpConnecting | Phase::Handshaking => {
                self.fail(ClientError::Connect(io::ErrorKind::TimedOut.into()), None)
            }
            Phase::Closing => self.fail(ClientError::CloseTimeout, None),
            _ => {}
        }
    }

    fn drop_connection(&mut self) {
        if let (Some(mut sock), Some(poll)) = (self.sock.take(), self.poll.as_ref()) {
            let _ = poll.registry().deregister(&mut sock);
        }
        self.deadline = None;
        self.inbuf = Vec::new();
        self.link.out = Vec::new();
    }

    /// The connection is over: drop it, tell the application, and schedule
    /// a reconnect if configured and the user did not ask to close.
    fn connection_ended(&mut self, code: u16, reason: &str, was_clean: bool) {
        let was_active = self.link.phase != Phase::Closed;
        self.drop_connection();
        self.link.phase = Phase::Closed;
        if was_active {
            self.handler.on_close(code, reason, was_clean);
        }
        if self.user_closed {
            return;
        }
        if let Some(policy) = &self.config.reconnect {
            if policy.max_attempts.is_none_or(|max| self.reconnect_attempt < max) {
                let delay = policy.delay(self.reconnect_attempt);
                self.reconnect_attempt += 1;
                log::debug!("reconnecting to {} in {delay:?}", self.url);
                self.reconnect_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Queues a text message; it is written by the next
    /// `process_event_que`. Fails unless the connection is open.
    pub fn send(&mut self, text: &str) -> Result<(), ClientError> {
        self.link.send_message(Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.link.send_message(Opcode::Binary, data)
    }

    /// Queues one raw frame, as [`ClientContext::send_frame`].
    pub fn send_frame(&mut self, data: &[u8], opcode: Opcode, fin: bool) -> Result<(), ClientError> {
        self.link.send_raw(data, opcode, fin)
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.link.send_raw(payload, Opcode::Ping, true)
    }

    /// Closes with 1000 (normal closure); see [`WebSocketClient::close_with`].
    pub fn close(&mut self) -> Result<(), ClientError> {
        self.close_with(1000, "")
    }

    /// Starts the closing handshake with `code` (1000 or 3000-4999) and a
    /// reason of at most 123 bytes. `on_close` follows once the server
    /// answers. While connecting, the attempt is abandoned (`on_close` with
    /// 1006); while waiting to reconnect, the reconnect is cancelled.
    pub fn close_with(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        if !is_valid_app_code(code) {
            return Err(SendError::InvalidCloseCode(code).into());
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ReasonTooLong(reason.len()).into());
        }
        match self.link.phase {
            Phase::Open => {
                self.link.close(code, reason)?;
                self.user_closed = true;
                Ok(())
            }
            Phase::TcpConnecting | Phase::Handshaking => {
                self.user_closed = true;
                self.connection_ended(ABNORMAL, "", false);
                Ok(())
            }
            Phase::Closing => Ok(()),
            Phase::Idle | Phase::Closed => {
                self.user_closed = true;
                self.reconnect_at = None;
                Err(ClientError::NotOpen)
            }
        }
    }

    /// True while the connection is open or closing.
    pub fn is_connected(&self) -> bool {
        matches!(self.link.phase, Phase::Open | Phase::Closing)
    }

    /// The connection's [`ReadyState`].
    pub fn ready_state(&self) -> ReadyState {
        match self.link.phase {
            Phase::TcpConnecting | Phase::Handshaking => ReadyState::Connecting,
            Phase::Closed | Phase::Idle if self.reconnect_at.is_some() => ReadyState::Connecting,
            Phase::Open => ReadyState::Open,
            Phase::Closing => ReadyState::Closing,
            Phase::Idle | Phase::Closed => ReadyState::Closed,
        }
    }

    /// The URL given to `init`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.link.out.len() + self.link.deferred.len()
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:9001/chat?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str(), t.resource.as_str()),
            ("127.0.0.1", 9001, "127.0.0.1:9001", "/chat?x=1")
        );
        let t = parse_url("WS://example.com").unwrap();
        assert_eq!((t.port, t.resource.as_str()), (80, "/"));
        let t = parse_url("ws://[::1]:8080?q").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.resource.as_str()), ("::1", 8080, "/?q"));
        assert!(matches!(parse_url("wss://a/"), Err(ClientError::UnsupportedScheme(s)) if s == "wss"));
        assert!(matches!(parse_url("http://a/"), Err(ClientError::UnsupportedScheme(_))));
        for bad in ["127.0.0.1:80/x", "ws://:80/", "ws://a:notaport/", "ws://u@h/"] {
            assert!(matches!(parse_url(bad), Err(ClientError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[derive(Default)]
    struct Nop;
    impl HvWebSocketClient for Nop {}

    #[test]
    fn sends_fail_until_open_and_close_codes_are_checked() {
        let mut c = WebSocketClient::new(Nop);
        assert_eq!(c.ready_state(), ReadyState::Closed);
        assert!(matches!(c.send("x"), Err(ClientError::NotOpen)));
        assert!(matches!(
            c.close_with(1001, ""),
            Err(ClientError::Send(SendError::InvalidCloseCode(1001)))
        ));
        assert!(matches!(
            c.close_with(4000, &"x".repeat(124)),
            Err(ClientError::Send(SendError::ReasonTooLong(124)))
        ));
    }
}
