//! The server: its lifecycle, one tick, and the per-connection steps that
//! turn protocol events into the application's callbacks.

use std::fmt;
use std::mem;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Token};

use crate::channel::{Channel, ChannelInfo, CloseInfo, CloseInitiator};
use crate::config::ServerConfig;
use crate::driver::{
    out_buf, read_into, write_from, Conn, Core, FlushResult, Phase, Reactor, ReadResult, Timer, TimerKind,
    ACCEPTS_PER_TICK, LISTENER, WAKER,
};
use crate::error::{SendError, ServerError, WsError};
use crate::handle::{Command, ServerHandle};
use crate::handler::{Handshake, HvWebServer};
use crate::http::{HttpRequest, HttpResponse, Method, RouteMatch, Routes};
use crate::proto::close::ABNORMAL;
use crate::proto::frame::Opcode;
use crate::proto::handshake::{encode_accept, is_upgrade, offered_protocols, validate_request};
use crate::proto::http1::{encode_response, parse_head};
use crate::proto::{Decoded, Decoder, Event, ProtocolError, Role};

/// What callbacks (and the loop between ticks) send through: the server's
/// channels, without the application's own state.
///
/// Sends only queue bytes; they leave in this tick's flush, in the order
/// they were queued per channel, all of one channel's in as few `write`
/// calls as the socket allows. They never block.
pub struct Context<'a> {
    core: &'a mut Core,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("channels", &self.core.ws_open).finish()
    }
}

impl Context<'_> {
    /// Queues a text message.
    pub fn send_text(&mut self, channel: Channel, text: &str) -> Result<(), SendError> {
        self.core.send_message(channel, Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, channel: Channel, data: &[u8]) -> Result<(), SendError> {
        self.core.send_message(channel, Opcode::Binary, data)
    }

    /// Queues one raw frame: the tutorial's `send(channel, msg, opcode, fin)`.
    ///
    /// With `fin == false` a fragmented message starts (opcode `Text` or
    /// `Binary`) or goes on; later fragments may pass `Continuation` or the
    /// message's own opcode, and the one with `fin == true` ends it. Whole
    /// messages sent meanwhile by other calls wait and follow it. `Ping` and
    /// `Pong` go out at once (control frames may interleave fragments);
    /// `Close` is refused: use [`Context::close`].
    ///
    /// Text fragments are not checked for UTF-8: together they must form
    /// valid UTF-8, or the peer will close with 1007.
    pub fn send(&mut self, channel: Channel, data: &[u8], opcode: Opcode, fin: bool) -> Result<(), SendError> {
        self.core.send(channel, opcode, data, fin)
    }

    /// Queues a ping; the peer's pong arrives in `on_ws_pong`.
    pub fn ping(&mut self, channel: Channel, payload: &[u8]) -> Result<(), SendError> {
        self.core.send(channel, Opcode::Ping, payload, true)
    }

    /// Starts the closing handshake: `code` 1000 or 3000-4999, `reason` at
    /// most 123 bytes. `on_ws_close` runs when the peer answers (or after
    /// the close timeout); sends to the channel fail from now on.
    pub fn close(&mut self, channel: Channel, code: u16, reason: &str) -> Result<(), SendError> {
        self.core.close(channel, code, reason)
    }

    /// Sends a text message to every open channel except `except`, encoding
    /// the frame once. Returns how many channels it was queued for.
    pub fn broadcast_text(&mut self, text: &str, except: Option<Channel>) -> usize {
        self.core
            .broadcast_where(Opcode::Text, text.as_bytes(), |c| Some(c) != except)
    }

    /// Sends a binary message to every open channel except `except`.
    pub fn broadcast_binary(&mut self, data: &[u8], except: Option<Channel>) -> usize {
        self.core.broadcast_where(Opcode::Binary, data, |c| Some(c) != except)
    }

    /// Sends one message, encoded once, to each of `channels` that is open
    /// (a room, a team). `opcode` must be `Text` or `Binary`.
    pub fn broadcast_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        opcode: Opcode,
        data: &[u8],
    ) -> Result<usize, SendError> {
        if !matches!(opcode, Opcode::Text | Opcode::Binary) {
            return Err(SendError::InvalidOpcode(opcode));
        }
        Ok(self.core.broadcast_to(channels, opcode, data))
    }

    /// Whether `channel` is open: connected, and no close sent.
    pub fn is_open(&self, channel: Channel) -> bool {
        self.core.is_open(channel)
    }

    /// The handshake details of a channel (path, query, headers, peer
    /// address, subprotocol), while it is connected.
    pub fn info(&self, channel: Channel) -> Option<&ChannelInfo> {
        self.core.info(channel)
    }

    /// Every open channel.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.core.open_channels()
    }

    /// How many WebSocket connections exist (open or closing).
    pub fn channel_count(&self) -> usize {
        self.core.ws_open
    }

    /// Bytes queued for `channel` and not yet written to its socket.
    pub fn buffered_amount(&self, channel: Channel) -> usize {
        self.core.buffered_amount(channel)
    }

    /// Asks the server to stop, as [`ServerHandle::stop`] does.
    pub fn stop(&mut self) {
        self.core.stop_requested = true;
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Option<ServerHandle> {
        self.core.handle.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Initialized,
    Running,
    Stopping { deadline: Instant },
    Stopped,
}

/// A WebSocket + HTTP server driven by the caller's loop.
///
/// `init` binds and registers routes, `start` begins accepting, each
/// `tick` does the network work that is ready and returns, `stop` closes
/// every channel with 1001 and the listener.
///
/// ```no_run
/// use hvws::{Channel, Context, HvWebServer, Server};
///
/// struct Echo;
/// impl HvWebServer for Echo {
///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
///         let _ = ctx.send_text(ch, msg);
///     }
/// }
///
/// let mut server = Server::new(Echo);
/// server.init(8080)?;
/// server.start()?;
/// loop {
///     server.tick()?;
///     // ... the game's frame ...
///     # break;
/// }
/// server.stop()?;
/// # Ok::<(), hvws::ServerError>(())
/// ```
pub struct Server<H: HvWebServer> {
    handler: H,
    routes: Routes<H>,
    core: Core,
    reactor: Option<Reactor>,
    state: State,
}

impl<H: HvWebServer + fmt::Debug> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("handler", &self.handler)
            .field("state", &self.state)
            .field("connections", &self.core.conns.len())
            .finish()
    }
}

impl<H: HvWebServer> Server<H> {
    /// A server running `handler` with the default [`ServerConfig`].
    pub fn new(handler: H) -> Server<H> {
        Server::with_config(handler, ServerConfig::default())
    }

    /// A server running `handler` with `config`.
    pub fn with_config(handler: H, config: ServerConfig) -> Server<H> {
        Server {
            handler,
            routes: Routes::default(),
            core: Core::new(config),
            reactor: None,
            state: State::New,
        }
    }

    /// Calls `on_init` and binds to `port` on every interface (`0.0.0.0`);
    /// port 0 lets the OS choose (see [`Server::local_addr`]).
    pub fn init(&mut self, port: u16) -> Result<(), ServerError> {
        self.init_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    }

    /// Calls `on_init` and binds to `addr` (`127.0.0.1:0` in tests).
    pub fn init_addr(&mut self, addr: SocketAddr) -> Result<(), ServerError> {
        if self.state != State::New {
            return Err(ServerError::AlreadyInitialized);
        }
        let reactor = Reactor::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        self.core.handle = Some(ServerHandle {
            tx: reactor.tx.clone(),
            waker: reactor.waker.clone(),
        });
        self.reactor = Some(reactor);
        self.handler.on_init(&mut self.routes);
        self.state = State::Initialized;
        Ok(())
    }

    /// Begins accepting connections.
    pub fn start(&mut self) -> Result<(), ServerError> {
        match (self.state, self.reactor.as_mut()) {
            (State::Initialized, Some(r)) => {
                r.listen().map_err(ServerError::Poll)?;
                self.state = State::Running;
                log::info!("hvws listening on {}", r.local_addr);
                Ok(())
            }
            (State::New, _) => Err(ServerError::NotInitialized),
            _ => Err(ServerError::NotRunning),
        }
    }

    /// The address the server listens on, once initialized.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.reactor.as_ref().map(|r| r.local_addr)
    }

    /// Does all the network work that is ready, runs the callbacks, flushes
    /// what they sent, and returns without waiting.
    ///
    /// Its cost grows with the ready work, not with the number of open
    /// connections. Work per tick is bounded: at most 1024 readiness
    /// events, 256 accepts, and `read_budget_per_tick` bytes per
    /// connection; what is left is taken up by the next tick.
    pub fn tick(&mut self) -> Result<(), ServerError> {
        self.tick_timeout(Duration::ZERO)
    }

    /// Like [`Server::tick`], but first waits up to `timeout` for something
    /// to do: for a network thread of its own that should not spin.
    pub fn tick_timeout(&mut self, timeout: Duration) -> Result<(), ServerError> {
        match self.state {
            State::Running | State::Stopping { .. } => self.run_once(timeout),
            _ => Err(ServerError::NotRunning),
        }
    }

    /// Closes every channel with 1001 (after what was queued for it),
    /// closes the listener, and waits up to `shutdown_timeout` for the peers
    /// to answer; channels still open then are dropped. `on_ws_close` runs
    /// for every channel.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        match self.state {
            State::New | State::Initialized => {
                self.reactor = None;
                self.state = State::Stopped;
                return Ok(());
            }
            State::Stopped => return Ok(()),
            State::Running | State::Stopping { .. } => self.core.stop_requested = true,
        }
        while self.is_running() {
            self.run_once(Duration::from_millis(20))?;
        }
        Ok(())
    }

    /// True from `start` until a stop has finished.
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running | State::Stopping { .. })
    }

    /// A `Send + Clone` handle for other threads, once initialized.
    pub fn handle(&self) -> Result<ServerHandle, ServerError> {
        self.core.handle.clone().ok_or(ServerError::NotInitialized)
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// A context to send through between ticks (from the game loop); what
    /// it queues leaves in the next tick.
    pub fn context(&mut self) -> Context<'_> {
        Context { core: &mut self.core }
    }

    /// Runs `f` with the application and a context, e.g. to push a state
    /// snapshot computed from the game's state.
    pub fn with_context<R>(&mut self, f: impl FnOnce(&mut H, &mut Context<'_>) -> R) -> R {
        f(&mut self.handler, &mut Context { core: &mut self.core })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.core.config
    }

    fn run_once(&mut self, timeout: Duration) -> Result<(), ServerError> {
        let Server {
            handler,
            routes,
            core,
            reactor,
            state,
        } = self;
        let rx = reactor.as_mut().ok_or(ServerError::NotRunning)?;
        let busy = !core.dirty.is_empty() || !core.read_pending.is_empty() || rx.accept_pending || !rx.rx.is_empty();
        let mut wait = if busy { Duration::ZERO } else { timeout };
        if let Some(at) = core.timers.next_deadline() {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        match rx.poll.poll(&mut rx.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ServerError::Poll(e)),
        }
        core.now = Instant::now();
        let mut step = Step { handler, routes, core };
        let events = mem::replace(&mut rx.events, Events::with_capacity(0));
        for ev in events.iter() {
            match ev.token() {
                LISTENER => rx.accept_pending = true,
                WAKER => {}
                Token(key) => {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        step.read(key, &mut rx.scratch, ev.is_read_closed() || ev.is_error());
                    }
                    if ev.is_writable() {
                        step.writable(key);
                    }
                }
            }
        }
        rx.events = events;
        for key in mem::take(&mut step.core.read_pending) {
            step.read(key, &mut rx.scratch, false);
        }
        if rx.accept_pending {
            step.accept(rx);
        }
        while let Ok(cmd) = rx.rx.try_recv() {
            step.command(cmd);
        }
        step.expire_timers();
        step.flush();
        if step.core.stop_requested && *state == State::Running {
            step.begin_stop(rx);
            *state = State::Stopping {
                deadline: step.core.now + step.core.config.shutdown_timeout,
            };
        }
        if let State::Stopping { deadline } = *state {
            if step.core.conns.is_empty() || step.core.now >= deadline {
                step.finish_stop();
                *reactor = None;
                *state = State::Stopped;
                step.core.handle = None;
            }
        }
        Ok(())
    }
}

/// One tick's view of the server: the application, its routes and the
/// connection table, borrowed apart so callbacks can get a `Context`.
struct Step<'s, H: HvWebServer> {
    handler: &'s mut H,
    routes: &'s mut Routes<H>,
    core: &'s mut Core,
}

impl<H: HvWebServer> Step<'_, H> {
    fn ctx(&mut self) -> (&mut H, Context<'_>) {
        (self.handler, Context { core: self.core })
    }

    fn accept(&mut self, rx: &mut Reactor) {
        rx.accept_pending = false;
        for _ in 0..ACCEPTS_PER_TICK {
            let (mut sock, peer) = match rx.accept() {
                Ok(Some(pair)) => pair,
                Ok(None) => return,
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog; retry next tick rather than spin now.
                    log::warn!("accept failed: {e}");
                    rx.accept_pending = true;
                    return;
                }
            };
            if self.core.conns.len() >= self.core.config.max_connections {
                log::warn!("refusing {peer}: {} connections open", self.core.conns.len());
                let mut resp = Vec::new();
                encode_response(&HttpResponse::error(503), false, false, &mut resp);
                let _ = std::io::Write::write(&mut sock, &resp);
                continue;
            }
            let key = self.core.conns.vacant_key();
            if let Err(e) = rx
                .poll
                .registry()
                .register(&mut sock, Token(key), Interest::READABLE | Interest::WRITABLE)
            {
                log::warn!("cannot register {peer}: {e}");
                continue;
            }
            self.core.insert(sock, peer);
        }
        rx.accept_pending = true;
    }

    /// Reads what the socket has (up to the per-tick budget) and processes
    /// it. A short read means the socket is drained for now: the next data
    /// raises a new edge. When the peer has closed (`drain`), read on to EOF,
    /// since no further edge will come.
    fn read(&mut self, key: usize, scratch: &mut [u8], drain: bool) {
        let budget = self.core.config.read_budget_per_tick;
        let mut total = 0;
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return;
            };
            match read_into(&mut conn.sock, scratch) {
                ReadResult::Data(n) => {
                    total += n;
                    self.input(key, &mut scratch[..n]);
                    if total >= budget {
                        self.core.read_pending.push(key);
                        return;
                    }
                    if n < scratch.len() && !drain {
                        return;
                    }
                }
                ReadResult::Eof => return self.eof(key),
                ReadResult::WouldBlock => return,
                ReadResult::Failed(e) => return self.lost(key, WsError::Io(e)),
            }
        }
    }

    fn writable(&mut self, key: usize) {
        if let Some(conn) = self.core.conns.get_mut(key) {
            if !conn.out.is_empty() {
                Core::mark_dirty(&mut self.core.dirty, key, conn);
            }
        }
    }

    /// Processes newly read bytes. Complete frames are handled straight from
    /// the shared read buffer; only an incomplete tail is copied into the
    /// connection's own buffer.
    fn input(&mut self, key: usize, data: &mut [u8]) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        if conn.inbuf.is_empty() {
            let used = self.process(key, data);
            if used < data.len() {
                if let Some(conn) = self.core.conns.get_mut(key).filter(|c| wants_input(c)) {
                    let buf = out_buf(&mut conn.inbuf, &mut self.core.pool);
                    buf.extend_from_slice(&data[used..]);
                }
            }
            return;
        }
        conn.inbuf.extend_from_slice(data);
        let mut buf = mem::take(&mut conn.inbuf);
        let used = self.process(key, &mut buf);
        buf.drain(..used);
        match self.core.conns.get_mut(key) {
            Some(conn) if !buf.is_empty() && wants_input(conn) => conn.inbuf = buf,
            _ => self.core.pool.put(buf),
        }
    }

    /// Hands bytes to the connection's current protocol; returns how many
    /// were consumed.
    fn process(&mut self, key: usize, buf: &mut [u8]) -> usize {
        let mut pos = 0;
        loop {
            let Some(conn) = self.core.conns.get(key) else {
                return buf.len();
            };
            match conn.phase {
                Phase::Http => {
                    let (used, upgraded) = self.http(key, &mut buf[pos..]);
                    pos += used;
                    if !upgraded {
                        return pos;
                    }
                }
                Phase::Ws(_) => return pos + self.ws(key, &mut buf[pos..]),
                Phase::Closing { .. } => return buf.len(),
            }
        }
    }

    /// Answers every complete request in `buf`, in order. Returns the bytes
    /// consumed and whether the connection became a WebSocket.
    fn http(&mut self, key: usize, buf: &mut [u8]) -> (usize, bool) {
        let mut pos = 0;
        loop {
            let cfg = &self.core.config;
            let peer = self.core.conns[key].peer;
            let head = match parse_head(&buf[pos..], peer, cfg.max_request_head, cfg.max_request_body) {
                Ok(None) => return (pos, false),
                Ok(Some(head)) => head,
                Err(e) => {
                    log::debug!("{peer}: {e}");
                    self.respond(key, &HttpResponse::error(e.status()), false, false);
                    return (buf.len(), false);
                }
            };
            let end = pos + head.head_len + head.body_len;
            if buf.len() < end {
                return (pos, false);
            }
            let mut req = head.request;
            req.body = buf[pos + head.head_len..end].to_vec();
            pos = end;
            if is_upgrade(&req) {
                return if self.upgrade(key, req) {
                    (pos, true)
                } else {
                    (buf.len(), false)
                };
            }
            let resp = self.route(&req);
            self.respond(key, &resp, head.keep_alive, *req.method() == Method::Head);
            if !head.keep_alive {
                return (buf.len(), false);
            }
        }
    }

    fn route(&mut self, req: &HttpRequest) -> HttpResponse {
        match self.routes.find(req.method(), req.path()) {
            RouteMatch::Found(handler) => handler(self.handler, &mut Context { core: self.core }, req),
            RouteMatch::MethodNotAllowed(allow) => HttpResponse::error(405).with_header("Allow", &allow),
            RouteMatch::WebSocketOnly => {
                HttpResponse::text("this path accepts WebSocket upgrades only").with_status(400)
            }
            RouteMatch::NotFound => HttpResponse::error(404),
        }
    }

    fn respond(&mut self, key: usize, resp: &HttpResponse, keep_alive: bool, head_only: bool) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        encode_response(resp, keep_alive, head_only, out_buf(&mut conn.out, &mut self.core.pool));
        Core::mark_dirty(&mut self.core.dirty, key, conn);
        if !keep_alive {
            self.core.begin_closing(key);
        }
    }

    /// Checks and answers an upgrade request; true if it was accepted.
    fn upgrade(&mut self, key: usize, req: HttpRequest) -> bool {
        let accept_key = match validate_request(&req) {
            Ok(k) => k.to_owned(),
            Err(e) => {
                let mut resp = HttpResponse::text(e.to_string()).with_status(400);
                if e.wants_version_header() {
                    resp = resp.with_header("Sec-WebSocket-Version", "13");
                }
                self.respond(key, &resp, false, false);
                return false;
            }
        };
        if !self.routes.accepts_websocket(req.path()) {
            self.respond(key, &HttpResponse::error(404), false, false);
            return false;
        }
        let protocol = match self.handler.on_ws_handshake(&req) {
            Handshake::Accept => None,
            Handshake::AcceptProtocol(p) if offered_protocols(&req).any(|o| o == p) => Some(p),
            Handshake::AcceptProtocol(p) => {
                log::error!("on_ws_handshake chose subprotocol {p:?}, which the client did not offer");
                self.respond(key, &HttpResponse::error(500), false, false);
                return false;
            }
            Handshake::Reject(resp) => {
                self.respond(key, &resp, false, false);
                return false;
            }
        };
        let url = req.target().to_owned();
        let ws = self.core.new_ws(ChannelInfo { request: req, protocol });
        let conn = &mut self.core.conns[key];
        let protocol = ws.info.protocol.as_deref();
        encode_accept(&accept_key, protocol, out_buf(&mut conn.out, &mut self.core.pool));
        conn.phase = Phase::Ws(ws);
        Core::mark_dirty(&mut self.core.dirty, key, conn);
        self.core.ws_open += 1;
        let ch = self.core.channel(key);
        let (handler, mut ctx) = self.ctx();
        handler.on_ws_open(&mut ctx, ch, &url);
        true
    }

    /// Decodes frames and runs their callbacks; returns the bytes consumed.
    fn ws(&mut self, key: usize, buf: &mut [u8]) -> usize {
        let ch = self.core.channel(key);
        let Some(ws) = self.core.conns[key].ws() else {
            return buf.len();
        };
        // The decoder leaves the table while callbacks run, so they can
        // borrow the table mutably through their Context.
        let mut decoder = mem::replace(&mut ws.decoder, Decoder::new(Role::Server, 0, 0));
        let mut pos = 0;
        let outcome = loop {
            match decoder.decode(&mut buf[pos..]) {
                Ok(Decoded::NeedMore) => break Ok(true),
                Ok(Decoded::Frame { consumed, event }) => {
                    pos += consumed;
                    if let Some(event) = event {
                        if !self.ws_event(key, ch, event) {
                            break Ok(false);
                        }
                    }
                }
                Err(e) => break Err(e),
            }
        };
        if let Some(ws) = self.core.conns.get_mut(key).and_then(Conn::ws) {
            ws.decoder = decoder;
        }
        match outcome {
            Ok(true) => pos,
            Ok(false) => buf.len(),
            Err(e) => {
                self.fail(key, ch, e);
                buf.len()
            }
        }
    }

    /// Runs the callback for one event; false once the channel has closed.
    fn ws_event(&mut self, key: usize, ch: Channel, event: Event<'_>) -> bool {
        match event {
            Event::Text(text) => {
                let (h, mut ctx) = self.ctx();
                h.on_ws_message(&mut ctx, ch, text);
            }
            Event::Binary(data) => {
                let (h, mut ctx) = self.ctx();
                h.on_ws_binary(&mut ctx, ch, data);
            }
            Event::Ping(payload) => {
                self.core.queue_pong(key, payload);
                let (h, mut ctx) = self.ctx();
                h.on_ws_ping(&mut ctx, ch, payload);
            }
            Event::Pong(payload) => {
                let (h, mut ctx) = self.ctx();
                h.on_ws_pong(&mut ctx, ch, payload);
            }
            Event::Close { code, reason } => {
                let we_started = self.core.conns[key].ws().is_some_and(|ws| ws.close_sent);
                if !we_started {
                    self.core.queue_close(key, code, "");
                }
                let initiator = if we_started {
                    CloseInitiator::Local
                } else {
                    CloseInitiator::Remote
                };
                let info = CloseInfo {
                    code,
                    reason: reason.to_owned(),
                    was_clean: true,
                    initiator,
                };
                self.finish(key, ch, &info);
                return false;
            }
        }
        true
    }

    /// Fails the WebSocket connection (RFC 6455 §7.1.7): our close frame
    /// with the error's code, then the TCP close, without waiting.
    fn fail(&mut self, key: usize, ch: Channel, e: ProtocolError) {
        log::debug!("{ch}: {e}");
        let code = e.close_code();
        let reason = e.to_string();
        self.core.queue_close(key, code, &reason);
        let (h, mut ctx) = self.ctx();
        h.on_ws_error(&mut ctx, ch, &WsError::Protocol(e));
        let info = CloseInfo {
            code,
            reason,
            was_clean: false,
            initiator: CloseInitiator::Local,
        };
        self.finish(key, ch, &info);
    }

    /// The WebSocket is over: stop reading it, flush and close, and tell
    /// the application.
    fn finish(&mut self, key: usize, ch: Channel, info: &CloseInfo) {
        self.core.closing = self.core.begin_closing(key).map(|ws| (ch, ws));
        let (h, mut ctx) = self.ctx();
        h.on_ws_close(&mut ctx, ch, info);
        self.core.closing = None;
    }

    /// The peer closed TCP. Whatever is queued still goes out (an HTTP
    /// client may half-close after its request), then the connection goes.
    fn eof(&mut self, key: usize) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Phase::Ws(_) = conn.phase {
            let ch = self.core.channel(key);
            let info = CloseInfo {
                code: ABNORMAL,
                reason: String::new(),
                was_clean: false,
                initiator: CloseInitiator::Remote,
            };
            self.finish(key, ch, &info);
        }
        let conn = &mut self.core.conns[key];
        if conn.out.is_empty() {
            self.core.remove(key);
            return;
        }
        conn.phase = Phase::Closing {
            shutdown_sent: false,
            peer_eof: true,
        };
        self.core.timers.push(Timer {
            at: self.core.now + self.core.config.close_timeout,
            key,
            gen: conn.gen,
            kind: TimerKind::Linger,
        });
        Core::mark_dirty(&mut self.core.dirty, key, conn);
    }

    /// The socket failed: nothing more can be written.
    fn lost(&mut self, key: usize, err: WsError) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Phase::Ws(_) = conn.phase {
            let ch = self.core.channel(key);
            log::debug!("{ch}: {err}");
            let (h, mut ctx) = self.ctx();
            h.on_ws_error(&mut ctx, ch, &err);
            let info = CloseInfo {
                code: ABNORMAL,
                reason: String::new(),
                was_clean: false,
                initiator: CloseInitiator::Remote,
            };
            self.finish(key, ch, &info);
        }
        self.core.remove(key);
    }

    fn command(&mut self, cmd: Command) {
        let result = match cmd {
            Command::Send {
                channel,
                opcode,
                data,
                fin,
            } => self.core.send(channel, opcode, &data, fin),
            Command::Broadcast { opcode, data, except } => {
                self.core.broadcast_where(opcode, &data, |c| Some(c) != except);
                Ok(())
            }
            Command::BroadcastTo { channels, opcode, data } => {
                self.core.broadcast_to(channels, opcode, &data);
                Ok(())
            }
            Command::Close { channel, code, reason } => self.core.close(channel, code, &reason),
            Command::Stop => {
                self.core.stop_requested = true;
                Ok(())
            }
        };
        if let Err(e) = result {
            log::debug!("handle command dropped: {e}");
        }
    }

    fn expire_timers(&mut self) {
        while let Some(t) = self.core.timers.pop_due(self.core.now) {
            let Some(conn) = self.core.conns.get(t.key).filter(|c| c.gen == t.gen) else {
                continue;
            };
            match (t.kind, &conn.phase) {
                (TimerKind::CloseHandshake, Phase::Ws(ws)) if ws.close_sent => {
                    let ch = self.core.channel(t.key);
                    let (h, mut ctx) = self.ctx();
                    h.on_ws_error(&mut ctx, ch, &WsError::CloseTimeout);
                    let info = CloseInfo {
                        code: ABNORMAL,
                        reason: "closing handshake timed out".into(),
                        was_clean: false,
                        initiator: CloseInitiator::Local,
                    };
                    self.finish(t.key, ch, &info);
                    self.core.remove(t.key);
                }
                (TimerKind::Linger, Phase::Closing { .. }) => {
                    self.core.remove(t.key);
                }
                _ => {}
            }
        }
    }

    /// Writes every connection that has output, once each; sockets that
    /// fill up wait for their writable edge.
    fn flush(&mut self) {
        while let Some(key) = self.core.dirty.pop() {
            let Some(conn) = self.core.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            match write_from(&mut conn.sock, &mut conn.out) {
                FlushResult::Done => {
                    self.core.pool.put(mem::take(&mut conn.out));
                    if let Phase::Closing {
                        shutdown_sent,
                        peer_eof,
                    } = &mut conn.phase
                    {
                        if *peer_eof {
                            self.core.remove(key);
                            continue;
                        }
                        if *shutdown_sent {
                            continue;
                        }
                        *shutdown_sent = true;
                        let _ = conn.sock.shutdown(std::net::Shutdown::Write);
                        self.core.timers.push(Timer {
                            at: self.core.now + self.core.config.close_timeout,
                            key,
                            gen: conn.gen,
                            kind: TimerKind::Linger,
                        });
                    }
                }
                FlushResult::Blocked => {}
                FlushResult::Failed(e) => self.lost(key, WsError::Io(e)),
            }
        }
    }

    fn begin_stop(&mut self, rx: &mut Reactor) {
        rx.close_listener();
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            match &self.core.conns[key].phase {
                Phase::Ws(_) => self.core.queue_close(key, 1001, "server shutting down"),
                Phase::Http => {
                    self.core.begin_closing(key);
                }
                Phase::Closing { .. } => {}
            }
        }
        self.flush();
    }

    fn finish_stop(&mut self) {
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Phase::Ws(_) = self.core.conns[key].phase {
                let ch = self.core.channel(key);
                let info = CloseInfo {
                    code: ABNORMAL,
                    reason: "server stopped".into(),
                    was_clean: false,
                    initiator: CloseInitiator::Local,
                };
                self.finish(key, ch, &info);
            }
            self.core.remove(key);
        }
        self.core.timers.clear();
    }
}

fn wants_input(conn: &Conn) -> bool {
    matches!(conn.phase, Phase::Http | Phase::Ws(_))
}
