//! The per-connection steps of a tick: reading, HTTP requests, upgrades,
//! frames, timers and flushing, and the application callbacks they trigger.
//!
//! A callback that panics costs only its own channel (closed with 1011) or
//! HTTP request (500), never the server: every call into the application
//! goes through [`Step::guarded`].

use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mio::{Interest, Token};

use crate::channel::{Channel, ChannelInfo, CloseInfo, CloseInitiator};
use crate::driver::{
    out_buf, read_into, write_from, Conn, Core, FlushResult, Phase, Reactor, ReadResult, Timer, TimerKind,
    ACCEPTS_PER_TICK,
};
use crate::error::WsError;
use crate::handle::Command;
use crate::handler::{Handshake, HvWebServer};
use crate::http::{HttpRequest, HttpResponse, Method, RouteMatch, Routes};
use crate::proto::close::ABNORMAL;
use crate::proto::handshake::{encode_accept, is_upgrade, offered_protocols, validate_request};
use crate::proto::http1::{encode_response, parse_head};
use crate::proto::{Decoded, Decoder, Event, Role};
use crate::server::Context;

/// Connections refused with 503 that may linger at once, past
/// `max_connections`, while their answer is written; beyond this, refused
/// connections are dropped without one.
const REFUSAL_SLOTS: usize = 64;

/// How long to wait before accepting again after accept failed.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// One tick's view of the server: the application, its routes and the
/// connection table, borrowed apart so callbacks can get a `Context`.
pub(crate) struct Step<'s, H: HvWebServer> {
    pub handler: &'s mut H,
    pub routes: &'s mut Routes<H>,
    pub core: &'s mut Core,
}

impl<H: HvWebServer> Step<'_, H> {
    /// Runs one application callback. A panic is caught and logged; the
    /// return value says whether it completed.
    ///
    /// `what` names the callback in the log; it is only formatted if the
    /// callback panics, so naming costs nothing per call.
    fn guarded(&mut self, what: impl std::fmt::Display, f: impl FnOnce(&mut H, &mut Context<'_>)) -> bool {
        let mut ctx = Context { core: self.core };
        let handler = &mut *self.handler;
        let ok = catch_unwind(AssertUnwindSafe(|| f(handler, &mut ctx))).is_ok();
        if !ok {
            log::error!("{what} panicked; carrying on without it");
        }
        ok
    }

    /// Runs a callback of channel `ch`; if it panics, the channel is closed
    /// with 1011. Returns whether it completed.
    fn channel_callback(&mut self, key: usize, ch: Channel, f: impl FnOnce(&mut H, &mut Context<'_>)) -> bool {
        if self.guarded(format_args!("callback for {ch}"), f) {
            return true;
        }
        self.abort(key, ch, 1011, "internal server error", WsError::CallbackPanicked);
        false
    }

    pub fn accept(&mut self, rx: &mut Reactor) {
        rx.accept_pending = false;
        for _ in 0..ACCEPTS_PER_TICK {
            let (mut sock, peer) = match rx.accept() {
                Ok(Some(pair)) => pair,
                Ok(None) => return,
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog; retry a little later rather than spin now.
                    if rx.accept_retry_at.is_none() {
                        log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                    }
                    rx.accept_retry_at = Some(self.core.now + ACCEPT_RETRY);
                    return;
                }
            };
            let open = self.core.conns.len();
            let limit = self.core.config.max_connections;
            if open >= limit + REFUSAL_SLOTS {
                log::warn!("dropping {peer}: {open} connections open");
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
            if open >= limit {
                // Answered like any other request that cannot be served, so
                // the client learns why, then closed.
                log::warn!("refusing {peer} with 503: {open} connections open");
                self.respond(key, &HttpResponse::error(503), false, false);
            }
        }
        rx.accept_pending = true;
    }

    /// Reads what the socket has (up to the per-tick budget) and processes
    /// it. A short read means the socket is drained for now: the next data
    /// raises a new edge. When the peer has closed (`drain`), read on to EOF,
    /// since no further edge will come.
    pub fn read(&mut self, key: usize, scratch: &mut [u8], drain: bool) {
        let budget = self.core.config.read_budget_per_tick;
        let tick = self.core.tick;
        match self.core.conns.get_mut(key) {
            // Once per tick: the budget is per connection per tick.
            Some(conn) if conn.read_tick != tick => conn.read_tick = tick,
            _ => return,
        }
        let mut total = 0;
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return;
            };
            match read_into(&mut conn.sock, scratch) {
                ReadResult::Data(n) => {
                    conn.last_rx = self.core.now;
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

    pub fn writable(&mut self, key: usize) {
        if let Some(conn) = self.core.conns.get_mut(key) {
            if !conn.out.is_empty() {
                Core::mark_dirty(&mut self.core.dirty, key, conn);
            }
        }
    }

    /// Processes newly read bytes. Complete frames are handled straight from
    /// the shared read buffer; only an incomplete tail is copied into the
    /// connection's own buffer. When such a tail is waiting, the new bytes
    /// first top it up with just what its frame still needs, and the rest
    /// is again handled in place (so a stream of large frames is not copied
    /// through the connection's buffer once a frame has straddled a read).
    fn input(&mut self, key: usize, mut data: &mut [u8]) {
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return;
            };
            if conn.inbuf.is_empty() {
                break;
            }
            let want = match conn.ws() {
                Some(ws) => match ws.decoder.pending_frame_len() {
                    Some(len) => usize::try_from(len)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(conn.inbuf.len()),
                    // The frame header itself is cut: at most 14 bytes.
                    None => 14,
                },
                // An HTTP head: no telling where it ends.
                None => usize::MAX,
            };
            let n = want.clamp(1, data.len());
            let (top_up, rest) = mem::take(&mut data).split_at_mut(n);
            data = rest;
            conn.inbuf.extend_from_slice(top_up);
            let mut buf = mem::take(&mut conn.inbuf);
            let used = self.process(key, &mut buf);
            buf.drain(..used);
            match self.core.conns.get_mut(key) {
                Some(conn) if wants_input(conn) && !buf.is_empty() => {
                    conn.inbuf = buf;
                    if data.is_empty() {
                        return;
                    }
                }
                Some(conn) if wants_input(conn) => {
                    self.core.pool.put(buf);
                    if data.is_empty() {
                        return;
                    }
                }
                _ => {
                    self.core.pool.put(buf);
                    return;
                }
            }
        }
        let used = self.process(key, data);
        if used < data.len() {
            if let Some(conn) = self.core.conns.get_mut(key).filter(|c| wants_input(c)) {
                out_buf(&mut conn.inbuf, &mut self.core.pool).extend_from_slice(&data[used..]);
            }
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
            // The next request's time starts now (keep-alive).
            self.core.conns[key].request_deadline = self.core.now + self.core.config.request_timeout;
            if is_upgrade(&req) {
                return if self.upgrade(key, req) {
                    (pos, true)
                } else {
                    (buf.len(), false)
                };
            }
            let (resp, keep_alive) = match self.route(&req) {
                Some(resp) => (resp, head.keep_alive),
                None => (HttpResponse::error(500), false),
            };
            self.respond(key, &resp, keep_alive, *req.method() == Method::Head);
            if !keep_alive {
                return (buf.len(), false);
            }
            // A client that pipelines requests without reading the answers
            // would make us buffer without bound: past the write cap, stop.
            if self.core.conns[key].out.len() >= self.core.config.max_write_buffer {
                log::debug!("{peer}: pipelined answers past the write cap; closing");
                self.core.begin_closing(key);
                return (buf.len(), false);
            }
        }
    }

    /// The response to a plain HTTP request; `None` if its handler panicked.
    fn route(&mut self, req: &HttpRequest) -> Option<HttpResponse> {
        let resp = match self.routes.find(req.method(), req.path()) {
            RouteMatch::Found(handler) => {
                let mut ctx = Context { core: self.core };
                let handler_state = &mut *self.handler;
                match catch_unwind(AssertUnwindSafe(|| handler(handler_state, &mut ctx, req))) {
                    Ok(resp) => resp,
                    Err(_) => {
                        log::error!("route {} {} panicked; answering 500", req.method(), req.path());
                        return None;
                    }
                }
            }
            RouteMatch::MethodNotAllowed(allow) => HttpResponse::error(405).with_header("Allow", &allow),
            RouteMatch::WebSocketOnly => {
                HttpResponse::text("this path accepts WebSocket upgrades only").with_status(400)
            }
            RouteMatch::NotFound => HttpResponse::error(404),
        };
        Some(resp)
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

    /// Refuses an upgrade with `resp` and closes the connection.
    fn refuse(&mut self, key: usize, resp: HttpResponse) -> bool {
        self.respond(key, &resp, false, false);
        false
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
                return self.refuse(key, resp);
            }
        };
        if let (Some(allowed), Some(origin)) = (&self.core.config.allowed_origins, req.header("origin")) {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
                log::debug!("{}: origin {origin:?} not allowed", req.peer_addr());
                return self.refuse(key, HttpResponse::error(403));
            }
        }
        if !self.routes.accepts_websocket(req.path()) {
            return self.refuse(key, HttpResponse::error(404));
        }
        let mut decision = None;
        if !self.guarded("on_ws_handshake", |h, _| decision = Some(h.on_ws_handshake(&req))) {
            return self.refuse(key, HttpResponse::error(500));
        }
        let protocol = match decision.expect("set by the callback") {
            Handshake::Accept => None,
            Handshake::AcceptProtocol(p) if offered_protocols(&req).any(|o| o == p) => Some(p),
            Handshake::AcceptProtocol(p) => {
                log::error!("on_ws_handshake chose subprotocol {p:?}, which the client did not offer");
                return self.refuse(key, HttpResponse::error(500));
            }
            Handshake::Reject(resp) => return self.refuse(key, resp),
        };
        let url = req.target().to_owned();
        let ws = self.core.new_ws(ChannelInfo::new(&req, protocol));
        let conn = &mut self.core.conns[key];
        encode_accept(
            &accept_key,
            ws.info.protocol.as_deref(),
            out_buf(&mut conn.out, &mut self.core.pool),
        );
        conn.phase = Phase::Ws(ws);
        Core::mark_dirty(&mut self.core.dirty, key, conn);
        self.core.ws_open += 1;
        self.core.arm_keepalive(key);
        let ch = self.core.channel(key);
        self.channel_callback(key, ch, |h, ctx| h.on_ws_open(ctx, ch, &url))
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
                log::debug!("{ch}: {e}");
                self.abort(key, ch, e.close_code(), &e.to_string(), WsError::Protocol(e));
                buf.len()
            }
        }
    }

    /// Runs the callback for one event; false once the channel has closed.
    fn ws_event(&mut self, key: usize, ch: Channel, event: Event<'_>) -> bool {
        let ok = match event {
            Event::Text(text) => self.channel_callback(key, ch, |h, ctx| h.on_ws_message(ctx, ch, text)),
            Event::Binary(data) => self.channel_callback(key, ch, |h, ctx| h.on_ws_binary(ctx, ch, data)),
            Event::Ping(payload) => {
                self.core.queue_pong(key, payload);
                self.channel_callback(key, ch, |h, ctx| h.on_ws_ping(ctx, ch, payload))
            }
            Event::Pong(payload) => self.channel_callback(key, ch, |h, ctx| h.on_ws_pong(ctx, ch, payload)),
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
                // The closing handshake is complete and the peer may send
                // nothing after its close frame, so the socket is closed as
                // soon as ours is written (RFC 6455 §7.1.1: the server closes
                // TCP first), without shutting down writing and waiting for
                // the peer's FIN: a `shutdown`, a `recv` and a wake-up less
                // per connection (benches/README.md, churn).
                if let Some(Conn {
                    gen,
                    phase: Phase::Closing { peer_eof, .. },
                    ..
                }) = self.core.conns.get_mut(key)
                {
                    if *gen == ch.gen {
                        *peer_eof = true;
                    }
                }
                return false;
            }
        };
        // A callback may have closed its own channel; frames after that
        // are still delivered until the peer's close (RFC 6455 §1.4).
        ok
    }

    /// Ends a channel now for a reason on our side (RFC 6455 §7.1.7 "fail
    /// the connection"): our close frame with `code`, then the TCP close,
    /// without waiting for the peer's answer.
    fn abort(&mut self, key: usize, ch: Channel, code: u16, reason: &str, err: WsError) {
        let still_ws =
            matches!(self.core.conns.get(key), Some(c) if c.gen == ch.gen && matches!(c.phase, Phase::Ws(_)));
        if !still_ws {
            return;
        }
        self.core.queue_close(key, code, reason);
        self.guarded("on_ws_error", |h, ctx| h.on_ws_error(ctx, ch, &err));
        let info = CloseInfo {
            code,
            reason: reason.to_owned(),
            was_clean: false,
            initiator: CloseInitiator::Local,
        };
        self.finish(key, ch, &info);
    }

    /// The WebSocket is over: stop reading it, flush and close, and tell
    /// the application.
    fn finish(&mut self, key: usize, ch: Channel, info: &CloseInfo) {
        self.core.closing = self.core.begin_closing(key).map(|ws| (ch, ws));
        self.guarded("on_ws_close", |h, ctx| h.on_ws_close(ctx, ch, info));
        self.core.closing = None;
    }

    /// The connection ended without a closing handshake (1006).
    fn dropped(&mut self, key: usize, ch: Channel, initiator: CloseInitiator, reason: &str) {
        let info = CloseInfo {
            code: ABNORMAL,
            reason: reason.to_owned(),
            was_clean: false,
            initiator,
        };
        self.finish(key, ch, &info);
    }

    /// The peer closed TCP. Whatever is queued still goes out (an HTTP
    /// client may half-close after its request), then the connection goes.
    fn eof(&mut self, key: usize) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        match conn.phase {
            Phase::Ws(_) => {
                let ch = self.core.channel(key);
                self.dropped(key, ch, CloseInitiator::Remote, "");
            }
            Phase::Http => {
                self.core.begin_closing(key);
            }
            Phase::Closing { .. } => {}
        }
        let conn = &mut self.core.conns[key];
        if conn.out.is_empty() {
            self.core.remove(key);
        } else if let Phase::Closing { peer_eof, .. } = &mut conn.phase {
            *peer_eof = true;
        }
    }

    /// The socket failed: nothing more can be written.
    fn lost(&mut self, key: usize, err: WsError) {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Phase::Ws(_) = conn.phase {
            let ch = self.core.channel(key);
            log::debug!("{ch}: {err}");
            self.guarded("on_ws_error", |h, ctx| h.on_ws_error(ctx, ch, &err));
            self.dropped(key, ch, CloseInitiator::Remote, "");
        }
        self.core.remove(key);
    }

    pub fn command(&mut self, cmd: Command) {
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

    /// Tells the application about the slow consumers that sends closed.
    pub fn report_slow_consumers(&mut self) {
        for (key, gen) in mem::take(&mut self.core.slow) {
            let ch = Channel { index: key as u32, gen };
            self.abort(key, ch, 1008, "slow consumer", WsError::SlowConsumer);
        }
    }

    pub fn expire_timers(&mut self) {
        let conns = &self.core.conns;
        self.core
            .timers
            .compact(conns.len(), |t| conns.get(t.key).is_some_and(|c| c.gen == t.gen));
        while let Some(t) = self.core.timers.pop_due(self.core.now) {
            let Some(conn) = self.core.conns.get(t.key).filter(|c| c.gen == t.gen) else {
                continue;
            };
            let ch = Channel {
                index: t.key as u32,
                gen: t.gen,
            };
            match (t.kind, &conn.phase) {
                (TimerKind::CloseHandshake, Phase::Ws(ws)) if ws.close_sent => {
                    self.guarded("on_ws_error", |h, ctx| h.on_ws_error(ctx, ch, &WsError::CloseTimeout));
                    self.dropped(t.key, ch, CloseInitiator::Local, "closing handshake timed out");
                    self.core.remove(t.key);
                }
                (TimerKind::Linger, Phase::Closing { .. }) => {
                    self.core.remove(t.key);
                }
                (TimerKind::Request, Phase::Http) => self.request_due(t.key),
                (TimerKind::Keepalive, Phase::Ws(ws)) if !ws.close_sent => self.keepalive_due(t.key, ch),
                _ => {}
            }
        }
    }

    /// An HTTP connection's request deadline came: if the request is still
    /// incomplete (or none came on an idle keep-alive connection), answer
    /// 408 and close; else wait for the newer deadline.
    fn request_due(&mut self, key: usize) {
        let conn = &self.core.conns[key];
        if conn.request_deadline > self.core.now {
            let (at, gen) = (conn.request_deadline, conn.gen);
            self.core.timers.push(Timer {
                at,
                key,
                gen,
                kind: TimerKind::Request,
            });
            return;
        }
        log::debug!("{}: request timeout", conn.peer);
        self.respond(key, &HttpResponse::error(408), false, false);
    }

    /// A WebSocket's keepalive check: close it if it has been silent past
    /// the idle timeout, ping it if past the ping interval, and re-arm.
    fn keepalive_due(&mut self, key: usize, ch: Channel) {
        let cfg = &self.core.config;
        let silent = self.core.now.saturating_duration_since(self.core.conns[key].last_rx);
        if cfg.idle_timeout.is_some_and(|t| silent >= t) {
            log::debug!("{ch}: idle for {silent:?}");
            return self.abort(key, ch, 1001, "idle timeout", WsError::IdleTimeout);
        }
        if cfg.ping_interval.is_some_and(|p| silent >= p) {
            let _ = self.core.send(ch, crate::Opcode::Ping, b"", true);
        }
        self.core.arm_keepalive(key);
    }

    /// Writes every connection that has output, once each; sockets that
    /// fill up wait for their writable edge.
    pub fn flush(&mut self) {
        while let Some(key) = self.core.dirty.pop() {
            let Some(conn) = self.core.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            let result = write_from(&mut conn.sock, &mut conn.out);
            conn.backlog = conn.out.len();
            match result {
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
                        if !*shutdown_sent {
                            *shutdown_sent = true;
                            let _ = conn.sock.shutdown(std::net::Shutdown::Write);
                        }
                    }
                }
                FlushResult::Blocked => {}
                FlushResult::Failed(e) => self.lost(key, WsError::Io(e)),
            }
        }
    }

    pub fn begin_stop(&mut self, rx: &mut Reactor) {
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

    pub fn finish_stop(&mut self) {
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Phase::Ws(_) = self.core.conns[key].phase {
                let ch = self.core.channel(key);
                self.dropped(key, ch, CloseInitiator::Local, "server stopped");
            }
            self.core.remove(key);
        }
        self.core.timers.clear();
    }
}

fn wants_input(conn: &Conn) -> bool {
    matches!(conn.phase, Phase::Http | Phase::Ws(_))
}

#[cfg(test)]
mod tests {
    //! The input path over a real socket: frames (and frame headers) cut at
    //! every kind of boundary must come out whole and in order, whether a
    //! tail waits in the connection's buffer or not.

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use crate::proto::frame::{encode_frame, Opcode};
    use crate::{Channel, Context, HvWebServer, Routes, Server};

    struct Echo;

    impl HvWebServer for Echo {
        fn on_init(&mut self, routes: &mut Routes<Self>) {
            routes.websocket("/echo");
        }
        fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
            ctx.send_text(ch, msg).unwrap();
        }
        fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
            ctx.send_binary(ch, data).unwrap();
        }
    }

    fn payload(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| b'a' + ((i * 7 + seed) % 26) as u8).collect()
    }

    #[test]
    fn frames_cut_anywhere_are_echoed_whole() {
        let mut server = Server::new(Echo);
        server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let sizes = [0, 1, 125, 126, 300, 65535, 65536, 70_000, 200_000, 3, 14, 64 << 10];
        let (mut wire, mut expect) = (Vec::new(), Vec::new());
        for (i, &len) in sizes.iter().enumerate() {
            let op = if i % 2 == 0 { Opcode::Text } else { Opcode::Binary };
            let data = payload(len, i);
            encode_frame(&mut wire, true, op, &data, Some([0x37, 0xfa, 0x21, 0x3d]));
            encode_frame(&mut expect, true, op, &data, None);
        }
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .unwrap();
            let mut reader = s.try_clone().unwrap();
            let want = expect.len();
            let read = std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 8192];
                let head_len = |g: &[u8]| g.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
                while head_len(&got).is_none_or(|h| got.len() < h + want) {
                    let n = reader.read(&mut buf).unwrap();
                    assert!(n > 0, "server closed");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            });
            // Chunks of 1, 2, 13, 14, 4 KiB, 70,001 bytes..., each its own
            // write with a pause, so the server reads them apart.
            let cuts = [1, 2, 13, 14, 4096, 70_001, 5, 100_000, 1, 65_536];
            let mut pos = 0;
            for k in 0.. {
                if pos == wire.len() {
                    break;
                }
                let n = cuts[k % cuts.len()].min(wire.len() - pos);
                s.write_all(&wire[pos..pos + n]).unwrap();
                pos += n;
                std::thread::sleep(Duration::from_millis(1));
            }
            let got = read.join().unwrap();
            let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(got.starts_with(b"HTTP/1.1 101"));
            assert!(got[head_end..] == expect[..], "echoes differ from what was sent");
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client.is_finished() {
            assert!(Instant::now() < deadline, "echo did not complete");
            server.tick_timeout(Duration::from_millis(1)).unwrap();
        }
        client.join().unwrap();
    }
}
