//! The trait a server application implements.

use crate::channel::Channel;
use crate::context::Context;
use crate::error::WsError;
use crate::http::Routes;
use crate::proto::close::CloseInfo;
use crate::proto::http::{HttpRequest, HttpResponse};

/// The answer to a WebSocket upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Accept, with no subprotocol.
    Accept,
    /// Accept and choose this subprotocol; it must be one the client offered
    /// (see [`offered_protocols`](crate::offered_protocols)), or the
    /// handshake fails with 500.
    AcceptProtocol(String),
    /// Refuse with this HTTP response (401, 403, 404 …); the connection is
    /// then closed.
    Reject(HttpResponse),
}

/// A WebSocket + HTTP server application: override the callbacks you need.
///
/// Every callback runs on the thread that calls
/// [`Server::tick`](crate::Server::tick), one at a time, in the order the
/// network delivered things; callbacks of one channel never overlap. What a
/// callback sends through the [`Context`] leaves in the same tick.
///
/// ```
/// use hvws::{Channel, Context, HvWebServer, HttpResponse, Routes};
///
/// #[derive(Default)]
/// struct Echo {
///     messages: usize,
/// }
///
/// impl HvWebServer for Echo {
///     fn on_init(&mut self, routes: &mut Routes<Self>) {
///         routes.get("/count", |echo: &mut Echo, _, _| HttpResponse::text(echo.messages.to_string()));
///     }
///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
///         self.messages += 1;
///         ctx.send_text(channel, msg);
///     }
/// }
/// ```
pub trait HvWebServer: Sized {
    /// Called once by `init`: register HTTP routes and WebSocket paths.
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        let _ = routes;
    }

    /// Decide on a WebSocket upgrade request (already checked against RFC
    /// 6455 and the registered WebSocket paths): accept, pick a subprotocol,
    /// or reject. Read headers, query and peer address from `request`.
    /// Default: accept without a subprotocol.
    fn on_ws_handshake(&mut self, request: &HttpRequest) -> Handshake {
        let _ = request;
        Handshake::Accept
    }

    /// A WebSocket connection opened on `url` (the request target, path and
    /// query). Details: [`Context::info`].
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        let _ = (ctx, channel, url);
    }

    /// A complete text message arrived.
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let _ = (ctx, channel, msg);
    }

    /// A complete binary message arrived.
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        let _ = (ctx, channel, data);
    }

    /// A ping arrived; the pong has already been queued.
    fn on_ws_ping(&mut self, ctx: &mut Context<'_>, channel: Channel, payload: &[u8]) {
        let _ = (ctx, channel, payload);
    }

    /// A pong arrived.
    fn on_ws_pong(&mut self, ctx: &mut Context<'_>, channel: Channel, payload: &[u8]) {
        let _ = (ctx, channel, payload);
    }

    /// A deferred response or a stream ([`Context::defer`]) will never
    /// complete: its client went away (or timed out, or the server is
    /// stopping) before the application ended it. Forget `id`; calls with
    /// it return [`SendStatus::Closed`](crate::SendStatus::Closed) from now
    /// on, so a late answer is dropped harmlessly either way.
    fn on_response_abandoned(&mut self, ctx: &mut Context<'_>, id: crate::ResponseId) {
        let _ = (ctx, id);
    }

    /// The channel failed (protocol violation, socket error, close timeout);
    /// `on_ws_close` follows.
    fn on_ws_error(&mut self, ctx: &mut Context<'_>, channel: Channel, error: &WsError) {
        let _ = (ctx, channel);
        log::debug!("channel {channel}: {error}");
    }

    /// The channel closed, whoever started it; called exactly once per
    /// opened channel. Sends to it fail from here on, but
    /// [`Context::info`] still gives its handshake details during this call.
    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let _ = (ctx, channel, close);
    }

    /// `topic` gained its first subscriber on this server: a room came to
    /// life, a feed has a reader (start producing it). Called later in the
    /// tick whose callback's [`Context::subscribe`] did it (after that
    /// tick's reads, accepts and commands; at once for a close's
    /// unsubscribes), or in the next tick or `flush` for a subscribe made
    /// from the game loop between ticks. With several servers
    /// on a [`Hub`](crate::Hub), each server reports its own subscribers.
    fn on_topic_active(&mut self, ctx: &mut Context<'_>, topic: &str) {
        let _ = (ctx, topic);
    }

    /// `topic` lost its last subscriber on this server (an unsubscribe, or
    /// its last subscriber closed: closing unsubscribes from everything,
    /// after `on_ws_close`).
    fn on_topic_inactive(&mut self, ctx: &mut Context<'_>, topic: &str) {
        let _ = (ctx, topic);
    }

    /// The Redis bridge of this server's [`Hub`](crate::Hub) connected,
    /// lost Redis, or is trying again (feature `redis`). Local delivery
    /// goes on meanwhile; what is published while Redis is away does not
    /// reach other processes (it is counted in
    /// [`BridgeStats::dropped`](crate::BridgeStats::dropped)). Every server
    /// of the hub is told, on its next tick.
    #[cfg(feature = "redis")]
    fn on_bridge_state(&mut self, ctx: &mut Context<'_>, state: &crate::BridgeState) {
        let _ = ctx;
        log::info!("redis bridge: {state:?}");
    }
}
