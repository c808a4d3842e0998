//! What callbacks (and the loop between ticks) send through.

use std::fmt;

use crate::channel::Channel;
use crate::exchange::ResponseId;
use crate::handle::ServerHandle;
use crate::proto::frame::Opcode;
use crate::proto::http::HttpResponse;
use crate::proto::info::ChannelInfo;
use crate::proto::sse::SseEvent;
use crate::proto::{SendError, SendStatus};
use crate::table::Core;

/// The server's channels, without the application's own state: what every
/// callback gets, and what [`Server::context`](crate::Server::context)
/// gives the game loop between ticks.
///
/// Sends only queue bytes; they leave in this tick's flush, in the order
/// they were queued per channel, all of one channel's in as few `write`
/// calls as the socket allows. They never block and never fail for a
/// channel that went away: they say what became of the message
/// ([`SendStatus`]), and the close callback says that it went.
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("channels", &self.core.live).finish()
    }
}

impl Context<'_> {
    /// Queues a text message.
    pub fn send_text(&mut self, channel: Channel, text: &str) -> SendStatus {
        self.core.send_message(channel, Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, channel: Channel, data: &[u8]) -> SendStatus {
        self.core.send_message(channel, Opcode::Binary, data)
    }

    /// Queues a text or binary message that is never compressed, whatever
    /// permessage-deflate agreed: for data that is compressed already
    /// (images, archives), which deflate would only cost CPU on. Fails
    /// with [`SendError::InvalidOpcode`] for an opcode other than `Text` or
    /// `Binary`.
    pub fn send_uncompressed(
        &mut self,
        channel: Channel,
        data: &[u8],
        opcode: Opcode,
    ) -> Result<SendStatus, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.send_message_with(channel, opcode, data, false))
    }

    /// Queues `value` as a JSON text message (feature `json`). Fails only
    /// if `value` cannot be JSON (a map with non-string keys, a failing
    /// `Serialize`); nothing is sent then.
    #[cfg(feature = "json")]
    pub fn send_json<T: serde::Serialize + ?Sized>(
        &mut self,
        channel: Channel,
        value: &T,
    ) -> Result<SendStatus, serde_json::Error> {
        let text = serde_json::to_vec(value)?;
        Ok(self.core.send_message(channel, Opcode::Text, &text))
    }

    /// Sends `value` as JSON text to every open channel but `except`,
    /// serialized and framed once (feature `json`). Returns how many it was
    /// queued for.
    #[cfg(feature = "json")]
    pub fn broadcast_json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        except: Option<Channel>,
    ) -> Result<usize, serde_json::Error> {
        let text = serde_json::to_vec(value)?;
        Ok(self.core.broadcast_where(Opcode::Text, &text, |c| Some(c) != except))
    }

    /// Queues one raw frame: the tutorial's `send(channel, msg, opcode, fin)`.
    ///
    /// With `fin == false` a fragmented message starts (opcode `Text` or
    /// `Binary`) or goes on; later fragments may pass `Continuation` or the
    /// message's own opcode, and the one with `fin == true` ends it. Whole
    /// messages sent meanwhile by other calls wait and follow it. `Ping` and
    /// `Pong` go out at once (control frames may interleave fragments).
    /// When permessage-deflate was agreed, a whole message (`fin == true`
    /// with no fragmented message open) is compressed as
    /// [`Context::send_text`] would; fragments never are.
    ///
    /// Fails, queuing nothing, when the frame breaks those rules:
    /// [`SendError::InvalidOpcode`] for `Close` (use [`Context::close`]), a
    /// `Continuation` with no message open, another data opcode while one
    /// is, or a non-final control frame; [`SendError::ControlFrameTooLarge`]
    /// for a ping or pong over 125 bytes. The rules are checked whether or
    /// not the channel is still open.
    ///
    /// Text fragments are not checked for UTF-8: together they must form
    /// valid UTF-8, or the peer will close with 1007.
    pub fn send(&mut self, channel: Channel, data: &[u8], opcode: Opcode, fin: bool) -> Result<SendStatus, SendError> {
        self.core.send_raw(channel, opcode, data, fin)
    }

    /// Queues a ping; the peer's pong arrives in `on_ws_pong`. Fails with
    /// [`SendError::ControlFrameTooLarge`] for a payload over 125 bytes.
    pub fn ping(&mut self, channel: Channel, payload: &[u8]) -> Result<SendStatus, SendError> {
        self.core.send_raw(channel, Opcode::Ping, payload, true)
    }

    /// Starts the closing handshake: `code` any that may go on the wire
    /// (1000-1003, 1007-1014 such as 1008 policy violation or 1011 internal
    /// error, and the application range 3000-4999) and a `reason`, cut to
    /// 123 bytes at a character boundary if longer (all a close frame
    /// holds). `on_ws_close` runs when the peer answers (or after the close
    /// timeout) and reports this code and reason; sends to the channel
    /// return [`SendStatus::Closed`] from now on. Closing a channel that is
    /// already closing or gone does nothing.
    ///
    /// Fails, doing nothing, only for a code that may not be sent
    /// ([`SendError::InvalidCloseCode`]): a constant code is checked once.
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

    /// Queues a text or binary message whose payload the application holds
    /// as shared bytes ([`Bytes`](crate::Bytes)): one of at least 8 KiB
    /// (`proto::outbox::SHARE_MIN`) is queued by reference, not copied, and
    /// written from where it is at the tick's flush (with the frame's
    /// header, in one `writev`); a smaller one is copied as
    /// [`Context::send_binary`] copies. Worth it for large payloads made
    /// once and sent many times, or kept anyway (a level, a replay chunk).
    /// When permessage-deflate compresses the message it is copied into
    /// its compressed form as usual.
    ///
    /// Fails with [`SendError::InvalidOpcode`] unless `opcode` is `Text` or
    /// `Binary`. Text is not checked: it must be valid UTF-8, or the peer
    /// will close with 1007.
    ///
    /// ```
    /// use hvws::{Bytes, Channel, Context, Opcode};
    ///
    /// /// The level, made once, to a player who joined.
    /// fn joined(ctx: &mut Context<'_>, ch: Channel, level: &Bytes) {
    ///     // `clone` counts a reference; the 1 MiB stay where they are.
    ///     ctx.send_shared(ch, level.clone(), Opcode::Binary).expect("a data opcode");
    /// }
    /// # let _ = joined;
    /// # let _level = Bytes::from(vec![0u8; 1 << 20]);
    /// ```
    pub fn send_shared(
        &mut self,
        channel: Channel,
        data: bytes::Bytes,
        opcode: Opcode,
    ) -> Result<SendStatus, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.send_shared(channel, opcode, data))
    }

    /// Sends a message held as shared bytes to every open channel except
    /// `except`: the frame's header is encoded once, and a payload of at
    /// least 8 KiB is shared by all receivers' queues, so a 64 KiB
    /// message to 1,000 players holds one copy of its payload, not 1,000.
    /// (The borrowed-slice broadcasts share a large payload too, after one
    /// copy into a shared buffer; this one makes none.) Returns how many
    /// channels it was queued for; fails with [`SendError::InvalidOpcode`]
    /// unless `opcode` is `Text` or `Binary`.
    ///
    /// ```
    /// use hvws::{Bytes, Context, Opcode};
    ///
    /// fn new_map(ctx: &mut Context<'_>, map: Vec<u8>) -> usize {
    ///     // `Bytes::from(Vec)` takes the buffer over without copying it.
    ///     ctx.broadcast_shared(Bytes::from(map), Opcode::Binary, None).expect("a data opcode")
    /// }
    /// # let _ = new_map;
    /// ```
    pub fn broadcast_shared(
        &mut self,
        data: bytes::Bytes,
        opcode: Opcode,
        except: Option<Channel>,
    ) -> Result<usize, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.broadcast_shared_where(opcode, data, |c| Some(c) != except))
    }

    /// Publishes a message held as shared bytes to `topic`'s subscribers
    /// but `except`, as [`Context::publish`] does, a large payload shared
    /// by this server's subscribers without a copy, and by the hub's other
    /// servers too (only a Redis bridge copies it, into its envelope). Fails
    /// with [`SendError::InvalidOpcode`] unless `opcode` is `Text` or
    /// `Binary`.
    ///
    /// ```
    /// use hvws::{Bytes, Context, Opcode};
    ///
    /// fn replay(ctx: &mut Context<'_>, game: &str, chunk: &Bytes) -> usize {
    ///     ctx.publish_shared(game, chunk.clone(), Opcode::Binary, None).expect("a data opcode")
    /// }
    /// # let _ = replay;
    /// ```
    pub fn publish_shared(
        &mut self,
        topic: &str,
        data: bytes::Bytes,
        opcode: Opcode,
        except: Option<Channel>,
    ) -> Result<usize, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.publish_shared(topic, opcode, data, except))
    }

    /// Sends one message, encoded once, to each of `channels` that is open
    /// (a room, a team); the arguments in [`Context::send`]'s order.
    /// Returns how many it was queued for; fails with
    /// [`SendError::InvalidOpcode`] unless `opcode` is `Text` or `Binary`.
    pub fn broadcast_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        data: &[u8],
        opcode: Opcode,
    ) -> Result<usize, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.broadcast_to(channels, opcode, data))
    }

    /// Subscribes `channel` to `topic` (an exact name: a room, a match, a
    /// feed); [`Context::publish`] then reaches it. Returns `false` if it
    /// already was subscribed, or is not open. The first subscriber of a
    /// topic brings [`HvWebServer::on_topic_active`](crate::HvWebServer::on_topic_active).
    /// A channel is unsubscribed from everything when it closes, after its
    /// `on_ws_close`.
    ///
    /// Topic names are exact strings, with no wildcards: uWebSockets had
    /// MQTT's `+` and `#` and dropped them in v20 to make publishing
    /// simpler, faster and strictly ordered, since matching every publish
    /// against every pattern makes its cost grow with the patterns rather
    /// than the receivers. A client that wants several topics subscribes to
    /// each; a publish is one hash lookup and one pass over the receivers.
    ///
    /// ```
    /// use hvws::{Channel, Context, HvWebServer};
    ///
    /// struct Rooms;
    /// impl HvWebServer for Rooms {
    ///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
    ///         if let Some(room) = msg.strip_prefix("join ") {
    ///             ctx.subscribe(ch, room);
    ///         } else if let Some((room, text)) = msg.strip_prefix("say ").and_then(|m| m.split_once(' ')) {
    ///             if ctx.is_subscribed(ch, room) {
    ///                 ctx.publish_text(room, &format!("{room}: {text}"), None);
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn subscribe(&mut self, channel: Channel, topic: &str) -> bool {
        self.core.subscribe(channel, topic)
    }

    /// Unsubscribes `channel` from `topic`; `false` if it was not
    /// subscribed. Messages published to the topic before this call (in
    /// this tick too) are still delivered: they were queued when published.
    ///
    /// ```
    /// use hvws::{Channel, Context};
    ///
    /// /// `leave ROOM`: out of the room, and the others told.
    /// fn leave(ctx: &mut Context<'_>, ch: Channel, room: &str) {
    ///     if ctx.unsubscribe(ch, room) {
    ///         ctx.publish_text(room, &format!("{ch} left {room}"), None);
    ///     }
    ///     let rooms: Vec<&str> = ctx.topics(ch).collect();
    ///     let answer = format!("rooms: {}", rooms.join(" "));
    ///     ctx.send_text(ch, &answer);
    /// }
    /// ```
    pub fn unsubscribe(&mut self, channel: Channel, topic: &str) -> bool {
        self.core.topics.unsubscribe(channel, topic)
    }

    /// Whether `channel` subscribes to `topic`.
    pub fn is_subscribed(&self, channel: Channel, topic: &str) -> bool {
        self.core.topics.is_subscribed(channel, topic)
    }

    /// The topics `channel` subscribes to, in no particular order.
    pub fn topics(&self, channel: Channel) -> impl Iterator<Item = &str> + '_ {
        self.core.topics.topics_of(channel)
    }

    /// How many channels of this server subscribe to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.core.topics.subscribers(topic).len()
    }

    /// Topics with at least one subscriber on this server.
    pub fn topic_count(&self) -> usize {
        self.core.topics.len()
    }

    /// Sends one message to every subscriber of `topic` but `except`,
    /// encoded once; the arguments in [`Context::send`]'s order. Returns
    /// how many subscribers of this server it was queued for; on a
    /// [`Hub`](crate::Hub), the other servers (and processes) deliver it
    /// too, after this tick. Fails with [`SendError::InvalidOpcode`] unless
    /// `opcode` is `Text` or `Binary`.
    ///
    /// A publish is queued on each subscriber as a send is, in order with
    /// the sends made to it before and after, so everything a channel gets
    /// in a tick leaves in one write; a slow subscriber meets
    /// [`ServerConfig::max_write_buffer`](crate::ServerConfig::max_write_buffer)
    /// and the [`SlowConsumer`](crate::SlowConsumer) policy as with a send.
    ///
    /// ```
    /// use hvws::{Channel, Context, Opcode};
    ///
    /// /// A player's move, to everyone else in the match (binary state).
    /// fn moved(ctx: &mut Context<'_>, ch: Channel, game: &str, state: &[u8]) {
    ///     let reached = ctx.publish(game, state, Opcode::Binary, Some(ch)).expect("a data opcode");
    ///     if reached == 0 {
    ///         ctx.send_text(ch, "nobody else is here");
    ///     }
    /// }
    /// ```
    pub fn publish(
        &mut self,
        topic: &str,
        data: &[u8],
        opcode: Opcode,
        except: Option<Channel>,
    ) -> Result<usize, SendError> {
        crate::proto::outgoing::check_message(opcode)?;
        Ok(self.core.publish(topic, opcode, data, except))
    }

    /// Publishes a text message, as [`Context::publish`].
    pub fn publish_text(&mut self, topic: &str, text: &str, except: Option<Channel>) -> usize {
        self.core.publish(topic, Opcode::Text, text.as_bytes(), except)
    }

    /// Publishes a binary message, as [`Context::publish`].
    pub fn publish_binary(&mut self, topic: &str, data: &[u8], except: Option<Channel>) -> usize {
        self.core.publish(topic, Opcode::Binary, data, except)
    }

    /// Publishes `value` as JSON text, serialized once (feature `json`).
    ///
    /// ```
    /// # #[cfg(feature = "json")]
    /// fn score(ctx: &mut hvws::Context<'_>, game: &str, red: u32, blue: u32) -> serde_json::Result<usize> {
    ///     ctx.publish_json(game, &serde_json::json!({ "red": red, "blue": blue }), None)
    /// }
    /// ```
    #[cfg(feature = "json")]
    pub fn publish_json<T: serde::Serialize + ?Sized>(
        &mut self,
        topic: &str,
        value: &T,
        except: Option<Channel>,
    ) -> Result<usize, serde_json::Error> {
        let text = serde_json::to_vec(value)?;
        Ok(self.core.publish(topic, Opcode::Text, &text, except))
    }

    /// Whether `channel` is open: connected, and no close sent.
    pub fn is_open(&self, channel: Channel) -> bool {
        self.core.is_open(channel)
    }

    /// The handshake details of a channel (path, query, peer address,
    /// subprotocol, and the headers `ServerConfig::keep_headers` kept),
    /// from `on_ws_open` to the end of `on_ws_close`.
    pub fn info(&self, channel: Channel) -> Option<&ChannelInfo> {
        self.core.info(channel)
    }

    /// When `channel`'s peer last sent a whole data message (text or
    /// binary; pings and pongs do not count), or when it opened if it has
    /// sent none: the base for game rules such as "kick after 10 s without
    /// input" beyond [`ServerConfig::idle_timeout`](crate::ServerConfig::idle_timeout).
    /// `None` once the channel is closing or gone.
    pub fn last_message_at(&self, channel: Channel) -> Option<std::time::Instant> {
        self.core.last_message_at(channel)
    }

    /// Every channel whose `on_ws_open` ran and whose `on_ws_close` has not:
    /// the channels the application knows of, closing ones included (sends
    /// to those return [`SendStatus::Closed`]).
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.core.channels()
    }

    /// How many [`Context::channels`] there are.
    pub fn channel_count(&self) -> usize {
        self.core.live
    }

    /// Connections listed for the next flush: those with output that
    /// [`TickBudget::writes`](crate::TickBudget::writes) left unwritten,
    /// and, between ticks, those sent to since the last flush (a connection
    /// closed meanwhile counts until a flush passes its entry). Zero after
    /// a flush without a write budget; a frame loop can tick until it is
    /// zero to know its frame has left.
    ///
    /// ```
    /// # use hvws::{HvWebServer, Server};
    /// # struct App;
    /// # impl HvWebServer for App {}
    /// let mut server = Server::new(App);
    /// assert_eq!(server.context().unflushed(), 0);
    /// ```
    pub fn unflushed(&self) -> usize {
        self.core.dirty.len()
    }

    /// What the server has done and holds now, as
    /// [`Server::stats`](crate::Server::stats): for a route or a callback
    /// that reports it ([`Routes::metrics`](crate::Routes::metrics) serves
    /// it to Prometheus).
    ///
    /// ```
    /// # use hvws::{Context, Channel, HvWebServer};
    /// struct App;
    /// impl HvWebServer for App {
    ///     fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
    ///         if msg == "/who" {
    ///             let online = ctx.stats().websockets;
    ///             ctx.send_text(ch, &format!("{online} online"));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.core.stats()
    }

    /// The [`Hub`](crate::Hub) this server joined, if any: for
    /// [`Hub::stats`](crate::Hub::stats), or to hand to another thread.
    /// (Publish from a callback with [`Context::publish`], which keeps its
    /// order with the callback's sends; the hub's own publish does not.)
    pub fn hub(&self) -> Option<crate::Hub> {
        self.core.hub.as_ref().map(crate::hub::HubLink::hub)
    }

    /// Bytes queued for `channel` and not yet written to its socket.
    pub fn buffered_amount(&self, channel: Channel) -> usize {
        self.core.buffered_amount(channel)
    }

    /// Asks the server to stop, as [`ServerHandle::stop`] does.
    pub fn stop(&mut self) {
        self.core.stop_requested = true;
    }

    /// A handle for other threads (the same as [`Server::handle`](crate::Server::handle)'s).
    pub fn handle(&self) -> ServerHandle {
        self.core.handle.clone()
    }

    /// Keeps the request whose route handler is running, to answer it on a
    /// later tick (a command that waits for the next simulation step) or
    /// from another thread through the [`ServerHandle`]: the handler then
    /// returns [`HttpResponse::deferred`]. Returns `None` outside a route
    /// handler.
    ///
    /// The answer is [`Context::respond`], or a streamed body started with
    /// [`Context::start_stream`]. Until then the connection waits (a
    /// pipelined request behind it too); if its client goes away first,
    /// [`HvWebServer::on_response_abandoned`](crate::HvWebServer::on_response_abandoned)
    /// says so and the id goes stale.
    ///
    /// ```
    /// use hvws::{Context, HttpResponse, HvWebServer, ResponseId, Routes};
    ///
    /// #[derive(Default)]
    /// struct Sim { waiting: Vec<ResponseId>, step: u64 }
    ///
    /// impl HvWebServer for Sim {
    ///     fn on_init(&mut self, routes: &mut Routes<Self>) {
    ///         routes.get("/next-step", |sim: &mut Sim, ctx, _req| match ctx.defer() {
    ///             Some(id) => {
    ///                 sim.waiting.push(id);
    ///                 HttpResponse::deferred()
    ///             }
    ///             None => HttpResponse::error(500),
    ///         });
    ///     }
    /// }
    ///
    /// impl Sim {
    ///     /// Called by the game loop after each simulation step.
    ///     fn stepped(&mut self, ctx: &mut Context<'_>) {
    ///         self.step += 1;
    ///         for id in self.waiting.drain(..) {
    ///             ctx.respond(id, HttpResponse::text(format!("step {}", self.step)));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn defer(&mut self) -> Option<ResponseId> {
        self.core.defer()
    }

    /// Answers a deferred request. [`SendStatus::Closed`] if `id` is stale
    /// (answered already, or its client went away).
    pub fn respond(&mut self, id: ResponseId, response: HttpResponse) -> SendStatus {
        self.core.respond(id, response)
    }

    /// Answers a deferred request with `head` (status and headers; its
    /// body is ignored) and a body written piece by piece with
    /// [`Context::write`] or [`Context::send_event`] on this tick and later
    /// ones, until [`Context::end`]: `Transfer-Encoding: chunked` for
    /// HTTP/1.1 clients, and for HTTP/1.0 ones a body ended by the close.
    /// For logs, exports, long computations, and (with
    /// [`HttpResponse::event_stream`]) Server-Sent Events.
    pub fn start_stream(&mut self, id: ResponseId, head: HttpResponse) -> SendStatus {
        self.core.start_stream(id, head)
    }

    /// Queues the next piece of a streamed body. Past
    /// [`ServerConfig::max_write_buffer`](crate::ServerConfig::max_write_buffer)
    /// (a client not reading) the [`SlowConsumer`](crate::SlowConsumer)
    /// policy applies: the stream is closed (and reported abandoned), or
    /// the piece is dropped ([`SendStatus::Dropped`]).
    pub fn write(&mut self, id: ResponseId, data: &[u8]) -> SendStatus {
        self.core.write_stream(id, data)
    }

    /// Queues one Server-Sent Event on a stream.
    pub fn send_event(&mut self, id: ResponseId, event: &SseEvent) -> SendStatus {
        self.core.send_event(id, event)
    }

    /// Ends a streamed body; the connection then reads its next request.
    pub fn end(&mut self, id: ResponseId) -> SendStatus {
        self.core.end_stream(id)
    }

    /// Whether `id` still waits for its answer or the rest of its stream.
    pub fn is_pending(&self, id: ResponseId) -> bool {
        self.core.is_pending(id)
    }
}
