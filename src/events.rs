//! From connection events to the application: the per-connection steps of
//! a tick (bytes in, a deadline, an EOF, a command) turned into calls of
//! the [`HvWebServer`] callbacks and route handlers. No socket here: what
//! the steps queue is written by the tick's flush (`server.rs`).
//!
//! A callback that panics costs only its own channel (closed with 1011) or
//! HTTP request (500), never the server: every call into the application
//! goes through [`Dispatch::guarded`].

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::channel::Channel;
use crate::context::Context;
use crate::driver::Wakeup;
use crate::error::WsError;
use crate::handle::Command;
use crate::handler::{Handshake, HvWebServer};
use crate::http::Routes;
use crate::proto::close::{CloseInfo, Ended};
use crate::proto::handshake::offered_protocols;
use crate::proto::http::{HttpRequest, HttpResponse};
use crate::proto::info::ChannelInfo;
use crate::proto::ServerEvent;
use crate::table::Core;

mod http;

/// One tick's view of the server: the application, its routes and the
/// connection table, borrowed apart so callbacks can get a `Context`.
pub(crate) struct Dispatch<'s, H: HvWebServer> {
    pub handler: &'s mut H,
    pub routes: &'s mut Routes<H>,
    pub core: &'s mut Core,
}

impl<H: HvWebServer> Dispatch<'_, H> {
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

    /// Runs a callback of channel `ch`; if it panics, the channel is failed
    /// with 1011.
    fn channel_callback(&mut self, key: usize, ch: Channel, f: impl FnOnce(&mut H, &mut Context<'_>)) {
        if self.guarded(format_args!("callback for {ch}"), f) {
            return;
        }
        let (now, limits) = (self.core.now, &self.core.limits);
        let Some(slot) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Some(close) = slot.conn.abort(1011, "internal server error", now, limits) {
            self.closed(key, ch, &close, Some(WsError::CallbackPanicked));
        }
    }

    /// Feeds bytes just read to connection `key` and runs the callbacks for
    /// everything they complete, in order. Callbacks run between two
    /// `poll_input`s, so they may do anything to any connection.
    ///
    /// Stops between two events when the tick's budget is spent: what is
    /// left is kept (as the connection's tail) and `true` returned, so the
    /// caller owes it a turn next tick. `data` may be empty, to go on with
    /// what an earlier tick kept.
    pub fn input(&mut self, key: usize, data: &mut [u8]) -> bool {
        let Some(slot) = self.core.conns.get_mut(key) else {
            return false;
        };
        crate::table::lend_for_answer(slot, &mut self.core.pool);
        // A buffer to keep a cut frame in, unless one is kept already.
        let spare = if slot.conn.has_tail() {
            Vec::new()
        } else {
            self.core.pool.take()
        };
        // Connections leave the table only in the flush, so the channel
        // (slot and generation) stays the same while its input is read.
        let ch = Channel {
            index: key as u32,
            gen: slot.gen,
        };
        let mut input = slot.conn.begin_input(data, spare);
        let mut stopped = false;
        loop {
            let core = &mut *self.core;
            if core.budget_spent() {
                stopped = input.remaining() > 0;
                break;
            }
            let Some(slot) = core.conns.get_mut(key) else { break };
            if !input.has_request() {
                if let Some(spare) = core.spare_request.take() {
                    input.lend_request(spare);
                }
            }
            let Some(event) = slot.conn.poll_input(&mut input, core.now, &core.limits) else {
                break;
            };
            core.stats.received(&event);
            if counts_against_budget(&event) {
                core.work.messages += 1;
            }
            self.event(key, ch, event);
        }
        if let Some(spare) = input.take_request() {
            self.core.spare_request = Some(spare);
        }
        let mut held = false;
        match self.core.conns.get_mut(key) {
            Some(slot) => {
                let spare = slot.conn.end_input(input);
                // (A connection that stopped reading dropped the rest.)
                held = stopped && slot.conn.has_tail();
                slot.held = held;
                self.core.pool.put(spare);
                crate::table::return_unused(slot, &mut self.core.pool);
                // Answering pings the peer never reads can make it a slow
                // consumer, closed by the core: report that now.
                let (now, limits) = (self.core.now, &self.core.limits);
                if let Some(ServerEvent::Closed(end)) = slot.conn.poll_event(now, limits) {
                    let ch = self.core.channel(key);
                    self.ended(key, ch, *end);
                }
            }
            None => drop(input),
        }
        self.after(key);
        held
    }

    /// Ends the connection's late answer if it will never complete, and
    /// tells the application if it was waiting on it.
    pub fn settle(&mut self, key: usize) {
        if let Some(id) = self.core.settle(key) {
            self.guarded("on_response_abandoned", |h, ctx| h.on_response_abandoned(ctx, id));
        }
    }

    /// Lists the connection for the flush if it has output or is done, and
    /// puts a moved deadline on the schedule.
    pub fn after(&mut self, key: usize) {
        self.settle(key);
        self.core.reschedule(key);
        if let Some(slot) = self.core.conns.get(key) {
            if slot.conn.has_output() || slot.conn.is_finished() {
                self.core.mark_dirty(key);
            }
        }
    }

    #[inline]
    fn event(&mut self, key: usize, ch: Channel, event: ServerEvent<'_>) {
        match event {
            ServerEvent::Request(req) => {
                let seq = self.next_seq(key);
                self.request(key, req, seq);
            }
            ServerEvent::RequestHead(req) => self.upload_head(key, req),
            ServerEvent::RequestBody(data) => self.upload_body(key, data),
            ServerEvent::RequestEnd => self.upload_end(key),
            ServerEvent::Refused { request, response } => self.refused(key, request, *response),
            ServerEvent::Upgrade(req) => self.upgrade(key, *req),
            ServerEvent::Text(text) => self.channel_callback(key, ch, |h, ctx| h.on_ws_message(ctx, ch, &text)),
            ServerEvent::Binary(data) => self.channel_callback(key, ch, |h, ctx| h.on_ws_binary(ctx, ch, &data)),
            ServerEvent::Ping(payload) => self.channel_callback(key, ch, |h, ctx| h.on_ws_ping(ctx, ch, payload)),
            ServerEvent::Pong(payload) => self.channel_callback(key, ch, |h, ctx| h.on_ws_pong(ctx, ch, payload)),
            ServerEvent::Closed(end) => self.ended(key, ch, *end),
        }
    }

    /// The core reports the WebSocket's end.
    fn ended(&mut self, key: usize, ch: Channel, end: Ended) {
        self.closed(key, ch, &end.close, end.error.map(WsError::from));
    }

    /// The WebSocket is over: tell the application, then let its details go.
    fn closed(&mut self, key: usize, ch: Channel, close: &CloseInfo, error: Option<WsError>) {
        self.core.live -= 1;
        self.core.stats.closed(close.code, error.as_ref());
        if let Some(e) = &error {
            log::debug!("{ch}: {e}");
            self.guarded("on_ws_error", |h, ctx| h.on_ws_error(ctx, ch, e));
        }
        self.guarded("on_ws_close", |h, ctx| h.on_ws_close(ctx, ch, close));
        // After the callback, which may still want the channel's topics.
        self.core.topics.unsubscribe_all(ch.index);
        self.report_topics();
        if let Some(slot) = self.core.conns.get_mut(key) {
            slot.conn.release();
        }
        self.core.mark_dirty(key);
    }

    /// Refuses an upgrade with `resp`; the connection then closes.
    fn refuse(&mut self, key: usize, resp: HttpResponse) {
        self.core.stats.handshakes_refused += 1;
        let (now, limits) = (self.core.now, &self.core.limits);
        if let Some(slot) = self.core.conns.get_mut(key) {
            slot.conn.respond(&resp, now, limits);
        }
    }

    /// Decides on a valid upgrade request: origin, path, the application.
    fn upgrade(&mut self, key: usize, mut req: HttpRequest) {
        if let (Some(allowed), Some(origin)) = (&self.core.config.allowed_origins, req.header("origin")) {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
                log::debug!("{}: origin {origin:?} not allowed", req.peer_addr());
                return self.refuse(key, HttpResponse::error(403));
            }
        }
        if !self.routes.match_websocket(&mut req) {
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
        let info = ChannelInfo::with_headers(&req, protocol, &self.core.config.keep_headers);
        let (now, limits) = (self.core.now, &self.core.limits);
        let Some(slot) = self.core.conns.get_mut(key) else {
            return;
        };
        if !slot.conn.accept_upgrade(info, now, limits) {
            return;
        }
        slot.had_channel = true;
        self.core.live += 1;
        self.core.stats.handshakes_accepted += 1;
        self.core.reschedule(key);
        self.core.mark_dirty(key);
        let ch = self.core.channel(key);
        let url = req.target();
        self.channel_callback(key, ch, |h, ctx| h.on_ws_open(ctx, ch, url));
    }

    /// The peer closed TCP.
    pub fn eof(&mut self, key: usize) {
        let (now, limits) = (self.core.now, &self.core.limits);
        let Some(slot) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Some(ServerEvent::Closed(end)) = slot.conn.handle_eof(now, limits) {
            let ch = self.core.channel(key);
            self.ended(key, ch, *end);
        }
        self.after(key);
    }

    /// The socket failed: nothing more can be read or written.
    pub fn lost(&mut self, key: usize, err: io::Error) {
        let (now, limits) = (self.core.now, &self.core.limits);
        let Some(slot) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Some(ServerEvent::Closed(end)) = slot.conn.handle_lost(now, limits) {
            let ch = self.core.channel(key);
            self.closed(key, ch, &end.close, Some(WsError::Io(err)));
        }
        self.after(key);
    }

    /// A scheduled deadline: the connection decides what it means.
    pub fn timeout(&mut self, w: Wakeup) {
        if !self.core.wake(w) {
            return;
        }
        let (now, limits) = (self.core.now, &self.core.limits);
        let Some(slot) = self.core.conns.get_mut(w.key) else {
            return;
        };
        if let Some(ServerEvent::Closed(end)) = slot.conn.handle_timeout(now, limits) {
            let ch = self.core.channel(w.key);
            self.ended(w.key, ch, *end);
        }
        self.after(w.key);
    }

    /// Tells the application about the channels that sends closed (slow
    /// consumers).
    pub fn report_sends(&mut self) {
        for (key, gen) in std::mem::take(&mut self.core.attention) {
            let (now, limits) = (self.core.now, &self.core.limits);
            let Some(slot) = self.core.conns.get_mut(key).filter(|s| s.gen == gen) else {
                continue;
            };
            if let Some(ServerEvent::Closed(end)) = slot.conn.poll_event(now, limits) {
                let ch = self.core.channel(key);
                self.ended(key, ch, *end);
            }
            self.after(key);
        }
    }

    /// Tells the application which topics gained their first subscriber
    /// or lost their last one, in the order it happened; what those
    /// callbacks do in turn is reported too.
    pub fn report_topics(&mut self) {
        // A bound, in case callbacks keep subscribing and unsubscribing
        // each other: the rest waits for the next report.
        for _ in 0..1024 {
            if self.core.topics.changes.is_empty() {
                return;
            }
            let changes = std::mem::take(&mut self.core.topics.changes);
            for (topic, active) in changes {
                if active {
                    self.guarded("on_topic_active", |h, ctx| h.on_topic_active(ctx, &topic));
                } else {
                    self.guarded("on_topic_inactive", |h, ctx| h.on_topic_inactive(ctx, &topic));
                }
            }
        }
    }

    /// Carries out a command from a [`ServerHandle`](crate::ServerHandle).
    pub fn command(&mut self, cmd: Command) {
        let outcome = match cmd {
            Command::Send {
                channel,
                opcode,
                data,
                fin,
            } => self.core.send_raw(channel, opcode, &data, fin).map(|_| ()),
            Command::Broadcast { opcode, data, except } => {
                self.core.broadcast_owned_where(opcode, data, |c| Some(c) != except);
                Ok(())
            }
            Command::BroadcastTo { channels, opcode, data } => {
                self.core.broadcast_owned_to(channels, opcode, data);
                Ok(())
            }
            Command::Close { channel, code, reason } => self.core.close(channel, code, &reason),
            Command::Subscribe { channel, topic, on } => {
                if on {
                    self.core.subscribe(channel, &topic);
                } else {
                    self.core.topics.unsubscribe(channel, &topic);
                }
                Ok(())
            }
            Command::Publish {
                topic,
                opcode,
                data,
                except,
            } => {
                self.core.publish(&topic, opcode, &data, except);
                Ok(())
            }
            Command::Topics(batch) => {
                for p in batch.iter() {
                    self.core.publish_local_shared(&p.topic, p.opcode, p.data.clone(), None);
                }
                Ok(())
            }
            #[cfg(feature = "redis")]
            Command::BridgeState(state) => {
                self.guarded("on_bridge_state", |h, ctx| h.on_bridge_state(ctx, &state));
                Ok(())
            }
            Command::Stop => {
                self.core.stop_requested = true;
                Ok(())
            }
            Command::Respond { id, response } => {
                self.core.respond(id, response);
                Ok(())
            }
            Command::StartStream { id, head } => {
                self.core.start_stream(id, head);
                Ok(())
            }
            Command::Write { id, data } => {
                self.core.write_stream(id, &data);
                Ok(())
            }
            Command::End { id } => {
                self.core.end_stream(id);
                Ok(())
            }
            // The tick hands it to the reactor before it gets here.
            #[cfg(feature = "tls")]
            Command::SetTls(_) => Ok(()),
        };
        if let Err(e) = outcome {
            log::debug!("handle command dropped: {e}");
        }
    }

    /// Stopping: every WebSocket gets 1001, every HTTP connection closes.
    pub fn begin_stop(&mut self) {
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let (now, limits) = (self.core.now, &self.core.limits);
            self.core.conns[key].conn.begin_shutdown(now, limits);
            self.after(key);
            self.core.mark_dirty(key);
        }
    }

    /// The stop deadline passed (or every connection is gone): the channels
    /// still open are reported closed. Returns the keys to drop.
    pub fn finish_stop(&mut self) -> Vec<usize> {
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            let (now, limits) = (self.core.now, &self.core.limits);
            if let Some(close) = self.core.conns[key].conn.abandon(now, limits) {
                let ch = self.core.channel(key);
                self.closed(key, ch, &close, None);
            }
            self.settle(key);
        }
        keys
    }
}

/// Whether an event counts against `TickBudget::messages`: those that run
/// the application's code for a message (a callback, a route). Pings,
/// pongs and closes do not (the protocol answers them itself), nor pieces
/// of an upload's body (`TickBudget::bytes` bounds those).
#[inline]
fn counts_against_budget(event: &ServerEvent<'_>) -> bool {
    matches!(
        event,
        ServerEvent::Text(_)
            | ServerEvent::Binary(_)
            | ServerEvent::Request(_)
            | ServerEvent::Upgrade(_)
            | ServerEvent::RequestEnd
    )
}
