//! The WebSocket client: one connection, pumped by the caller with
//! [`WebSocketClient::process_event_que`], callbacks on the caller's thread.
//! The protocol is `proto::ClientConn` (the same WebSocket core as the
//! server's); the socket is the driver's `ClientIo`; this file turns one
//! into the other and events into callbacks.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::ClientConfig;
use crate::driver::{ClientIo, FlushResult, ReadResult};
use crate::error::ClientError;
use crate::proto::client::{Backoff, Next, Request, StopReason};
use crate::proto::close::{CloseInfo, CloseInitiator};
use crate::proto::frame::Opcode;
use crate::proto::{ClientConn, ClientEvent, Limits, SendError, SendStatus};

mod handler;
pub(crate) mod proxy;
mod transport;
mod url;

pub use handler::{ClientContext, HvWebSocketClient, ReadyState};
pub use proxy::Proxy;
use transport::{io_error, Step, Transport};
use url::{parse_url, Target};

/// Bytes read per `process_event_que` before it returns: a server that
/// floods cannot keep the caller's frame from ending. What is left is read
/// by the next call, without waiting for readiness.
const READ_BUDGET: usize = 1 << 20;

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
///     client.process_event_que_timeout(std::time::Duration::from_millis(20));
/// }
/// client.send("hello server!");
/// client.close();
/// while client.is_connected() {
///     client.process_event_que_timeout(std::time::Duration::from_millis(20));
/// }
/// # Ok::<(), hvws::ClientError>(())
/// ```
pub struct WebSocketClient<H: HvWebSocketClient> {
    handler: H,
    config: ClientConfig,
    limits: Limits,
    url: String,
    target: Option<Target>,
    io: ClientIo,
    /// The proxy tunnel and TLS below the connection.
    transport: Transport,
    conn: Option<ClientConn>,
    protocol: Option<String>,
    /// The extensions the server agreed to.
    extensions: Option<String>,
    /// The user closed: no reconnect.
    user_closed: bool,
    /// The current connection opened (its `on_open` ran).
    opened: bool,
    backoff: Backoff,
    /// The read budget ran out: read again next call, edge or not.
    read_owed: bool,
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
        WebSocketClient {
            handler,
            limits: config.limits(),
            config,
            url: String::new(),
            target: None,
            io: ClientIo::new(),
            transport: Transport::default(),
            conn: None,
            protocol: None,
            extensions: None,
            user_closed: false,
            opened: false,
            backoff: Backoff::default(),
            read_owed: false,
        }
    }

    /// Starts connecting to `url` (`ws://host[:port]/path?query`, or
    /// `wss://` with the `tls` feature); returns at once. `on_open` (or `on_error` and `on_close`) follows from
    /// [`WebSocketClient::process_event_que`]. Host names are resolved here,
    /// blocking; IP addresses need no lookup. A connection already open is
    /// dropped without callbacks.
    pub fn init(&mut self, url: &str) -> Result<(), ClientError> {
        let target = parse_url(url)?;
        self.url = url.to_owned();
        // Nothing of the previous connection survives, even if this one
        // fails to start.
        self.io.close();
        self.conn = None;
        self.protocol = None;
        self.user_closed = false;
        self.opened = false;
        self.backoff.reset();
        self.read_owed = false;
        self.target = Some(target);
        self.connect(Instant::now())
    }

    fn connect(&mut self, now: Instant) -> Result<(), ClientError> {
        let target = self.target.as_ref().expect("init sets the target");
        let (host, port) = self.transport.plan(&self.config, target)?;
        let addr: SocketAddr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| ClientError::Resolve {
                host: host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| ClientError::Resolve {
                host: host.clone(),
                source: io::ErrorKind::NotFound.into(),
            })?;
        self.io.connect(addr).map_err(ClientError::Connect)?;
        let request = Request {
            authority: target.authority.clone(),
            resource: target.resource.clone(),
            protocols: self.config.protocols.clone(),
            headers: self.config.headers.clone(),
        };
        self.conn = Some(ClientConn::new(&request, now, &self.limits));
        self.protocol = None;
        Ok(())
    }

    /// Does the pending I/O without blocking and runs the callbacks for
    /// everything that arrived; what they (or earlier calls) sent is
    /// written before it returns.
    pub fn process_event_que(&mut self) {
        self.pump(Duration::ZERO);
    }

    /// Like [`WebSocketClient::process_event_que`], but first waits up to
    /// `timeout` for something to happen: for a client on a thread of its
    /// own that should not spin.
    pub fn process_event_que_timeout(&mut self, timeout: Duration) {
        self.pump(timeout);
    }

    /// The former name of [`WebSocketClient::process_event_que_timeout`].
    #[deprecated(since = "0.2.0", note = "renamed to process_event_que_timeout")]
    pub fn process_events_timeout(&mut self, timeout: Duration) {
        self.pump(timeout);
    }

    /// One pump: write what is queued, wait for readiness or the next
    /// deadline, connect/read (within the budget) with the callbacks for
    /// what arrived, deadlines, then one flush.
    fn pump(&mut self, timeout: Duration) {
        let now = Instant::now();
        if self.backoff.take_due(now) {
            if let Err(e) = self.connect(now) {
                // No socket, no connection: the attempt failed as a whole.
                let close = CloseInfo {
                    code: 1006,
                    reason: String::new(),
                    was_clean: false,
                    initiator: CloseInitiator::Local,
                };
                self.ended(&close, Some(e), now);
            }
        }
        // Write first: what stays queued waits for the writable edge, so
        // the poll below can sleep the whole timeout.
        self.flush(now);
        let mut wait = if self.read_owed { Duration::ZERO } else { timeout };
        let deadline = self.conn.as_ref().and_then(ClientConn::poll_timeout);
        for at in [deadline, self.backoff.next()].into_iter().flatten() {
            wait = wait.min(at.saturating_duration_since(now));
        }
        let ready = match self.io.turn(wait) {
            Ok(ready) => ready,
            Err(e) => {
                log::warn!("client poll failed: {e}");
                return;
            }
        };
        let now = Instant::now();
        if self.conn.as_ref().is_some_and(ClientConn::is_connecting) && (ready.readable || ready.writable) {
            let target = self.target.as_ref().expect("a connection has a target");
            let step = if self.transport.is_tunneling() {
                self.transport.pump(&mut self.io, &self.config, target)
            } else {
                match self.io.check_connected() {
                    Ok(true) => self.transport.connected(&mut self.io, &self.config, target),
                    Ok(false) => Step::Waiting,
                    Err(e) => Step::Failed(ClientError::Connect(e)),
                }
            };
            match step {
                Step::Waiting => {}
                Step::Ready => {
                    if let Some(conn) = self.conn.as_mut() {
                        conn.handle_connected();
                    }
                }
                Step::Failed(e) => self.lost(Some(e), now),
            }
        }
        let can_read = self.conn.as_ref().is_some_and(|c| !c.is_connecting());
        if can_read && (ready.readable || self.read_owed) {
            let owed = std::mem::take(&mut self.read_owed);
            self.read(now, ready.closed || owed);
        }
        if let Some(conn) = self.conn.as_mut() {
            if let Some(event) = conn.handle_timeout(now, &self.limits) {
                self.event(event, now);
            }
        }
        if let Some(event) = self.conn.as_mut().and_then(|c| c.poll_event(now, &self.limits)) {
            self.event(event, now);
        }
        self.flush(now);
    }

    /// Reads until the socket is drained or the budget is spent, running
    /// the callbacks for each read before the next. Output the callbacks
    /// queue waits for the flush at the end of the pump.
    fn read(&mut self, now: Instant, drain: bool) {
        let mut total = 0;
        loop {
            let n = match self.io.read() {
                ReadResult::Data(n) => n,
                ReadResult::WouldBlock => return,
                ReadResult::Eof => {
                    if let Some(event) = self.conn.as_mut().and_then(|c| c.handle_eof(now, &self.limits)) {
                        self.event(event, now);
                    }
                    return;
                }
                ReadResult::Failed(e) => {
                    let host = self.target.as_ref().map_or("", |t| t.host.as_str());
                    let e = io_error(e, host);
                    return self.lost(Some(e), now);
                }
            };
            let WebSocketClient {
                handler,
                limits,
                io,
                conn,
                protocol,
                extensions,
                user_closed,
                opened,
                backoff,
                ..
            } = self;
            let Some(c) = conn.as_mut() else { return };
            let mut input = c.begin_input(&mut io.buf[..n]);
            let mut ended = None;
            while let Some(event) = c.poll_input(&mut input, now, limits) {
                let mut ctx = ClientContext {
                    conn: &mut *c,
                    limits,
                    now,
                    user_closed: &mut *user_closed,
                };
                match event {
                    ClientEvent::Open {
                        protocol: p,
                        extensions: e,
                    } => {
                        *protocol = p;
                        *extensions = e;
                        *opened = true;
                        backoff.opened(now);
                        handler.on_open(&mut ctx);
                    }
                    ClientEvent::Text(text) => handler.on_message(&mut ctx, &text),
                    ClientEvent::Binary(data) => handler.on_binary(&mut ctx, &data),
                    ClientEvent::Ping(payload) => handler.on_ping(&mut ctx, payload),
                    ClientEvent::Pong(payload) => handler.on_pong(&mut ctx, payload),
                    ClientEvent::Closed(end) => ended = Some(end),
                }
            }
            c.end_input(input);
            if let Some(end) = ended {
                self.ended(&end.close, end.error.map(ClientError::from), now);
                return;
            }
            total += n;
            if total >= READ_BUDGET {
                self.read_owed = true;
                return;
            }
            // After the peer's FIN (`drain`) no edge will come for the
            // EOF: read on to it.
            if n < self.io.buf.len() && !self.io.at_end() && !drain {
                return;
            }
        }
    }

    fn event(&mut self, event: ClientEvent<'_>, now: Instant) {
        if let ClientEvent::Closed(end) = event {
            self.ended(&end.close, end.error.map(ClientError::from), now);
        }
    }

    /// The socket (or the connect) failed with `error`, or the user gave
    /// up on an attempt: the connection goes now.
    fn lost(&mut self, error: Option<ClientError>, now: Instant) {
        let event = self.conn.as_mut().and_then(|c| c.handle_lost(now, &self.limits));
        if let Some(ClientEvent::Closed(end)) = event {
            self.ended(&end.close, error, now);
        }
        self.io.close();
        self.conn = None;
    }

    /// The connection (or an attempt) is over: tell the application, and
    /// plan a reconnect as the policy says (`proto::reconnect`).
    fn ended(&mut self, close: &CloseInfo, error: Option<ClientError>, now: Instant) {
        let was_open = std::mem::take(&mut self.opened);
        // Every failed attempt is reported once, as an error.
        let error = error.or_else(|| {
            (!was_open).then(|| {
                ClientError::Io(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the connection ended before the WebSocket opened",
                ))
            })
        });
        if let Some(e) = error {
            self.handler.on_error(&e);
        }
        let next = self.backoff.after_end(
            self.config.reconnect.as_ref(),
            self.user_closed,
            was_open.then_some(close),
            now,
        );
        let retry = matches!(next, Next::Retry { .. });
        if was_open || !retry {
            self.handler.on_close(close);
        }
        match next {
            Next::Retry { attempt, delay, .. } => {
                log::debug!("reconnecting to {} in {delay:?} (attempt {attempt})", self.url);
                self.handler.on_reconnecting(attempt, delay);
            }
            Next::Stop(StopReason::NotRetried(code)) => {
                log::info!("not reconnecting to {}: the server closed with {code}", self.url);
            }
            Next::Stop(StopReason::OutOfAttempts) => {
                log::info!("not reconnecting to {}: out of attempts", self.url);
            }
            Next::Stop(_) => {}
        }
    }

    /// Writes what is queued (never while TCP is still connecting), and
    /// drops the socket once the connection is done.
    fn flush(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_mut() else { return };
        if conn.has_output() || (!conn.is_connecting() && self.io.holds_output()) {
            if let FlushResult::Failed(e) = self.io.write(conn.transmit()) {
                return self.lost(Some(ClientError::Io(e)), now);
            }
        }
        conn.handle_flushed();
        if conn.is_finished() {
            self.io.finish();
            self.conn = None;
        }
    }

    /// Queues a text message; it is written by the next
    /// `process_event_que`. [`SendStatus::Closed`] unless open.
    pub fn send(&mut self, text: &str) -> SendStatus {
        self.send_message(Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> SendStatus {
        self.send_message(Opcode::Binary, data)
    }

    fn send_message(&mut self, opcode: Opcode, data: &[u8]) -> SendStatus {
        match self.conn.as_mut() {
            Some(conn) => conn.send_message(opcode, data, &self.limits),
            None => SendStatus::Closed,
        }
    }

    /// Queues one raw frame, as [`ClientContext::send_frame`].
    pub fn send_frame(&mut self, data: &[u8], opcode: Opcode, fin: bool) -> Result<SendStatus, SendError> {
        match self.conn.as_mut() {
            Some(conn) => conn.send_raw(opcode, data, fin, &self.limits),
            None => {
                crate::proto::outgoing::Fragmenter::check_alone(opcode, data.len(), fin).map(|()| SendStatus::Closed)
            }
        }
    }

    /// Queues a ping; fails for a payload over 125 bytes.
    pub fn ping(&mut self, payload: &[u8]) -> Result<SendStatus, SendError> {
        self.send_frame(payload, Opcode::Ping, true)
    }

    /// Closes with 1000 (normal closure); see [`WebSocketClient::close_with`].
    pub fn close(&mut self) {
        let _ = self.close_with(1000, "");
    }

    /// Starts the closing handshake with `code` (1000 or 3000-4999) and a
    /// reason (cut to 123 bytes at a character boundary); `on_close`
    /// follows once the server answers, with this code and reason. While
    /// connecting, the attempt is abandoned (`on_close` with 1006); while
    /// waiting to reconnect, the reconnect is cancelled; when already
    /// closing or closed, nothing happens. No reconnect follows. Fails,
    /// doing nothing, only for another code.
    pub fn close_with(&mut self, code: u16, reason: &str) -> Result<(), SendError> {
        ClientConn::check_close_code(code)?;
        self.user_closed = true;
        self.backoff.cancel();
        let now = Instant::now();
        match self.conn.as_mut() {
            Some(conn) if conn.is_opening() => {
                if let Some(ClientEvent::Closed(end)) = conn.abandon(now, &self.limits) {
                    self.handler.on_close(&end.close);
                }
                self.io.close();
                self.conn = None;
            }
            Some(conn) => conn.close(code, reason, now, &self.limits)?,
            None => {}
        }
        Ok(())
    }

    /// True while the connection is open or closing.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_open() || c.is_closing())
    }

    /// The connection's [`ReadyState`].
    pub fn ready_state(&self) -> ReadyState {
        match self.conn.as_ref() {
            Some(c) if c.is_opening() => ReadyState::Connecting,
            Some(c) if c.is_open() => ReadyState::Open,
            Some(c) if c.is_closing() => ReadyState::Closing,
            _ if self.backoff.next().is_some() => ReadyState::Connecting,
            _ => ReadyState::Closed,
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

    /// The extensions the server agreed to, as it answered them
    /// (`permessage-deflate; client_max_window_bits=9`, say); `None` for
    /// none.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Bytes queued and not yet written.
    pub fn buffered_amount(&self) -> usize {
        self.conn.as_ref().map_or(0, ClientConn::buffered)
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

    #[derive(Default)]
    struct Nop;
    impl HvWebSocketClient for Nop {}

    #[test]
    fn sends_report_closed_until_open_and_close_codes_are_checked() {
        let mut c = WebSocketClient::new(Nop);
        assert_eq!(c.ready_state(), ReadyState::Closed);
        assert_eq!(c.send("x"), SendStatus::Closed);
        assert_eq!(c.close_with(1001, ""), Err(SendError::InvalidCloseCode(1001)));
        assert_eq!(
            c.close_with(4000, &"x".repeat(124)),
            Ok(()),
            "a long reason is cut, not refused"
        );
        c.close();
        assert_eq!(c.ready_state(), ReadyState::Closed);
    }
}
