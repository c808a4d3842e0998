//! One server-side connection: HTTP/1.1 requests (keep-alive, pipelining,
//! the request timeout), the upgrade, then the WebSocket, then the TCP
//! close. No socket, no clock: bytes and `now` in, events and bytes out.
//!
//! # Call order
//!
//! ```text
//! ServerConn::new(peer, now, limits)
//! loop {
//!     // bytes arrived:
//!     let mut input = conn.begin_input(bytes, spare_buffer);
//!     while let Some(event) = conn.poll_input(&mut input, now, limits) {
//!         // Request  -> conn.respond(..)                 (before the next poll_input)
//!         // Upgrade  -> conn.accept_upgrade(..) or conn.respond(..)
//!         // Text/Binary/Ping/Pong -> the application; it may send, close
//!         // Closed   -> the application; then conn.release()
//!     }
//!     conn.end_input(input);
//!     // the peer closed TCP:           conn.handle_eof(now, limits)
//!     // the socket failed:             conn.handle_lost()
//!     // conn.poll_timeout() came due:  conn.handle_timeout(now, limits)
//!     // after any send:                conn.poll_event(now, limits)  (a slow consumer closed)
//!     // before a flush: conn.resolve_reads(..) if conn.has_reads() (the
//!     //        read buffer that send_from_read referred to, now shared)
//!     // flush: write conn.transmit() (io_slices), consume what was written, then
//!     //        conn.handle_flushed() says whether to shut down or close
//!     // conn.is_finished(): drop the socket
//! }
//! ```
//!
//! Events borrow the input (a message is handed out where it was read), so
//! the application is called between two `poll_input`s; anything it does to
//! this or any other connection is allowed then.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

mod body;
mod http;
mod send;
mod timers;

pub(crate) use send::check_close;

use super::close::{CloseInfo, CloseInitiator, Ended};
use super::http::{HttpRequest, HttpResponse};
use super::info::{ChannelInfo, TlsInfo};
use super::input::Input;
use super::limits::Limits;
use super::outbox::Outbox;
use super::timer::{Deadline, Timer};
pub use super::ws::Broadcast;
use super::ws::{WsConn, WsEvent};

/// What a server connection has for its owner.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent<'i> {
    /// A complete HTTP request (not an upgrade). Answer it with
    /// [`ServerConn::respond`]; the next pipelined request waits until then.
    /// (Boxed, like the upgrade's, so the events that carry messages, by
    /// far the most frequent, stay small to move.)
    Request(Box<HttpRequest>),
    /// The head of a request whose body is handed out in pieces as it
    /// arrives (a `multipart/form-data` upload, up to
    /// `Limits::max_upload_body`): [`ServerEvent::RequestBody`] follows
    /// for each piece, then [`ServerEvent::RequestEnd`]. The request's
    /// body is empty.
    RequestHead(Box<HttpRequest>),
    /// A piece of the streamed body (chunked coding already removed).
    RequestBody(&'i [u8]),
    /// The streamed body is complete: answer with [`ServerConn::respond`].
    RequestEnd,
    /// A request whose body will not be read (over its limit, a malformed
    /// chunk): `response` is the answer the core suggests (413, 400).
    /// Give it (or another) with [`ServerConn::respond`]; the connection
    /// closes after it, since the rest of the body cannot be told from the
    /// next request. `request` is the request's head, unless it was handed
    /// out already ([`ServerEvent::RequestHead`]). It comes out as an event
    /// rather than as bytes so that the answer gets what the application
    /// adds to every answer (CORS headers: a browser shows a page a 413 it
    /// may read, not an opaque network error).
    Refused {
        /// The request's head, if not handed out before.
        request: Option<Box<HttpRequest>>,
        /// The suggested answer.
        response: Box<HttpResponse>,
    },
    /// A valid WebSocket upgrade request (RFC 6455 §4.2.1 checked). Accept
    /// it with [`ServerConn::accept_upgrade`] or refuse it with
    /// [`ServerConn::respond`] (the connection then closes).
    Upgrade(Box<HttpRequest>),
    /// A text message.
    Text(Cow<'i, str>),
    /// A binary message.
    Binary(Cow<'i, [u8]>),
    /// A ping; the pong is already queued (unless our close is out, or the
    /// peer is not reading its pongs: see the write cap).
    Ping(&'i [u8]),
    /// A pong.
    Pong(&'i [u8]),
    /// The WebSocket is over; [`Ended::error`] says why when it was not a
    /// clean closing handshake. Its [`ChannelInfo`] stays readable until
    /// [`ServerConn::release`].
    Closed(Box<Ended>),
}

impl<'i> WsEvent<'i> for ServerEvent<'i> {
    #[inline]
    fn text(text: Cow<'i, str>) -> Self {
        ServerEvent::Text(text)
    }
    #[inline]
    fn binary(data: Cow<'i, [u8]>) -> Self {
        ServerEvent::Binary(data)
    }
    #[inline]
    fn ping(payload: &'i [u8]) -> Self {
        ServerEvent::Ping(payload)
    }
    #[inline]
    fn pong(payload: &'i [u8]) -> Self {
        ServerEvent::Pong(payload)
    }
    #[inline]
    fn closed(end: Box<Ended>) -> Self {
        ServerEvent::Closed(end)
    }
}

/// What the driver does after a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Nothing: keep the socket.
    Keep,
    /// Everything is written and the connection is done writing: shut down
    /// our side of TCP (the peer then sees EOF after our last bytes).
    ShutdownWrite,
    /// Everything is written and the peer has closed: drop the socket.
    Close,
}

#[derive(Debug)]
enum Http {
    /// Reading the next request.
    Reading,
    /// A request's body is being read.
    Body(Box<body::BodyIn>),
    /// A request was handed out; its answer is awaited. `minor` is its
    /// HTTP minor version.
    Answering {
        keep_alive: bool,
        head_only: bool,
        minor: u8,
    },
    /// The answer's head is out; its body follows piece by piece.
    Sending {
        keep_alive: bool,
        framing: super::http1::Framing,
    },
    /// An upgrade was handed out; `key` is its `Sec-WebSocket-Key`.
    /// permessage-deflate was negotiated as it was read (`deflate`: the
    /// settings and the answer), since the channel may keep none of its
    /// headers.
    Upgrading {
        key: Box<str>,
        #[cfg(feature = "deflate")]
        deflate: Option<Box<(crate::proto::deflate::DeflateParams, &'static str)>>,
    },
}

/// A WebSocket and the handshake details the application reads.
#[derive(Debug)]
struct ServerWs {
    ws: WsConn,
    info: ChannelInfo,
}

#[derive(Debug)]
enum State {
    Http(Http),
    Ws(Box<ServerWs>),
    /// Finished: write what is queued, shut down writing, then wait for the
    /// peer's close (so our last bytes are not lost to a reset) or the
    /// linger deadline. A WebSocket's details stay until `release`.
    Closing {
        ws: Option<Box<ServerWs>>,
        shutdown_sent: bool,
        peer_eof: bool,
        /// Give up on the socket now (timeouts, failures).
        done: bool,
    },
}

/// Who is at the other end, for the HTTP phase: requests carry it. Boxed
/// and dropped at the upgrade, after which the channel's [`ChannelInfo`]
/// has both, so an open WebSocket does not keep them twice (a
/// `SocketAddr` is 32 bytes, paid by every idle connection).
#[derive(Debug)]
struct Origin {
    peer: SocketAddr,
    /// What TLS agreed on, for a connection that came over TLS.
    tls: Option<Box<TlsInfo>>,
}

/// One connection accepted by a server. See the module docs for the call
/// order.
#[derive(Debug)]
pub struct ServerConn {
    state: State,
    out: Outbox,
    /// Received bytes not yet consumed (a partial head or frame), boxed
    /// while there are any: a pointer rather than an empty `Vec` in every
    /// idle connection (a frame cut by a read is rare next to whole ones,
    /// and already costs a copy).
    // The extra allocation is the point: 8 bytes, not 24, per connection.
    #[allow(clippy::box_collection)]
    tail: Option<Box<Vec<u8>>>,
    /// The running timer (`None`: none) and when it fires; kept as two
    /// fields with `deadline_moved` so the three share one padding.
    deadline_timer: Option<Timer>,
    deadline_at: Instant,
    /// The deadline changed since the owner last took it.
    deadline_moved: bool,
    /// `None` once a WebSocket (its `ChannelInfo` has them).
    origin: Option<Box<Origin>>,
}

impl ServerConn {
    /// A connection from `peer`, accepted at `now`: it has
    /// `limits.request_timeout` to send its first request.
    pub fn new(peer: SocketAddr, now: Instant, limits: &Limits) -> ServerConn {
        let mut conn = ServerConn {
            state: State::Http(Http::Reading),
            out: Outbox::default(),
            tail: None,
            deadline_timer: None,
            deadline_at: now,
            deadline_moved: false,
            origin: Some(Box::new(Origin { peer, tls: None })),
        };
        conn.set_deadline(Some(Deadline::new(Timer::Request, now + limits.request_timeout)));
        conn
    }

    /// The peer's address (the unspecified address `0.0.0.0:0` once a
    /// finished WebSocket was released).
    pub fn peer(&self) -> SocketAddr {
        match (&self.origin, self.info()) {
            (Some(origin), _) => origin.peer,
            (None, Some(info)) => info.peer_addr(),
            (None, None) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Records that the connection came over TLS and what its handshake
    /// agreed on: requests and channels carry it from then on. The TLS
    /// layer's driver calls it once the handshake has finished, before the
    /// first plaintext.
    pub fn set_tls(&mut self, info: TlsInfo) {
        if let Some(origin) = &mut self.origin {
            origin.tls = Some(Box::new(info));
        }
    }

    /// Whether [`ServerConn::set_tls`] was called.
    pub fn is_tls(&self) -> bool {
        match &self.origin {
            Some(origin) => origin.tls.is_some(),
            None => self.info().is_some_and(|i| i.tls().is_some()),
        }
    }

    /// What TLS agreed on, in the HTTP phase.
    fn tls(&self) -> Option<&TlsInfo> {
        self.origin.as_ref().and_then(|o| o.tls.as_deref())
    }

    /// Whether the connection still reads what arrives.
    pub fn wants_input(&self) -> bool {
        !matches!(self.state, State::Closing { .. })
    }

    /// An open WebSocket: upgraded, our close not sent.
    #[inline]
    pub fn is_open(&self) -> bool {
        matches!(&self.state, State::Ws(w) if w.ws.is_open())
    }

    /// A WebSocket whose end has not been reported yet (open or closing).
    #[inline]
    pub fn is_websocket(&self) -> bool {
        matches!(self.state, State::Ws(_))
    }

    /// The WebSocket's handshake details, until [`ServerConn::release`].
    pub fn info(&self) -> Option<&ChannelInfo> {
        match &self.state {
            State::Ws(w) | State::Closing { ws: Some(w), .. } => Some(&w.info),
            _ => None,
        }
    }

    /// When the WebSocket's peer last completed a data message (its open,
    /// before the first), to the millisecond, given the current instant
    /// `now` (right up to 49.7 days back); `None` unless a WebSocket.
    pub fn last_message_at(&self, now: Instant) -> Option<Instant> {
        match &self.state {
            State::Ws(w) => Some(w.ws.last_message_at(now)),
            _ => None,
        }
    }

    /// Drops a finished WebSocket's details (after its close was reported).
    pub fn release(&mut self) {
        if let State::Closing { ws, .. } = &mut self.state {
            *ws = None;
        }
    }

    /// Whether bytes from earlier reads wait to be completed (so
    /// [`ServerConn::begin_input`] needs no spare buffer).
    #[inline]
    pub fn has_tail(&self) -> bool {
        self.tail.is_some()
    }

    /// Takes the bytes kept from earlier reads and pairs them with `data`,
    /// just read. `spare` is an empty buffer to keep a new tail in if one is
    /// needed; [`ServerConn::end_input`] hands back a buffer for reuse.
    pub fn begin_input<'d>(&mut self, data: &'d mut [u8], spare: Vec<u8>) -> Input<'d> {
        let Some(tail) = self.tail.take() else {
            return Input::new(spare, data);
        };
        let mut input = Input::new(*tail, data);
        input.set_spare(spare);
        input
    }

    /// Keeps what `input` left unconsumed; returns an empty buffer (maybe
    /// of no capacity) for reuse.
    pub fn end_input(&mut self, mut input: Input<'_>) -> Vec<u8> {
        let spare = input.take_spare();
        let mut rest = input.finish();
        if rest.is_empty() || !self.wants_input() {
            rest.clear();
            // Of two buffers, the larger goes back for reuse.
            return if rest.capacity() >= spare.capacity() {
                rest
            } else {
                spare
            };
        }
        self.tail = Some(Box::new(rest));
        spare
    }

    /// The next event from `input`, or `None` when it needs more bytes (or
    /// the connection stopped reading, or awaits an answer).
    #[inline]
    pub fn poll_input<'i>(
        &mut self,
        input: &'i mut Input<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Option<ServerEvent<'i>> {
        match &mut self.state {
            State::Http(Http::Reading) => self.read_request(input, now, limits),
            State::Http(Http::Body(_)) => self.read_body(input, now, limits),
            // The next pipelined request waits for this one's answer, so
            // answers leave in order. While it waits (a deferred answer, a
            // stream that may last hours), what the client sends is kept,
            // up to one request's worth: past that it is flooding, and is
            // cut off rather than held without bound.
            State::Http(Http::Answering { .. } | Http::Sending { .. })
                if input.remaining() > limits.max_request_head + limits.max_request_body =>
            {
                log::debug!("{}: kept sending while its answer was owed; closing", self.peer());
                input.discard();
                self.begin_closing(now, limits, false, true);
                None
            }
            State::Http(_) => None,
            State::Ws(w) => {
                let event = w.ws.step(input, &mut self.out, now, limits)?;
                if let ServerEvent::Pong(payload) = &event {
                    if let Some(rtt) = w.ws.pong(payload, now) {
                        w.info.record_rtt(rtt);
                    }
                }
                if let ServerEvent::Closed(end) = &event {
                    // A clean close needs nothing more from the peer: the
                    // socket goes once our close frame is written (RFC 6455
                    // §7.1.1: the server closes TCP first), without a
                    // shutdown and a wait for its FIN.
                    let peer_done = end.error.is_none();
                    self.begin_closing(now, limits, peer_done, false);
                }
                Some(event)
            }
            State::Closing { .. } => {
                input.discard();
                None
            }
        }
    }

    fn ws(&mut self) -> Option<&mut WsConn> {
        match &mut self.state {
            State::Ws(w) => Some(&mut w.ws),
            _ => None,
        }
    }

    /// The server is stopping: a WebSocket gets a 1001 close, an HTTP
    /// connection is closed after what is queued.
    pub fn begin_shutdown(&mut self, now: Instant, limits: &Limits) {
        match self.state {
            State::Ws(_) => self.start_close(1001, "server shutting down", now, limits),
            State::Http(_) => self.begin_closing(now, limits, false, false),
            State::Closing { .. } => {}
        }
    }

    /// The server gives up on the connection (its stop deadline passed):
    /// a WebSocket still open ends here, unclean. Returns how, if it was one.
    pub fn abandon(&mut self, now: Instant, limits: &Limits) -> Option<CloseInfo> {
        let close = self
            .is_websocket()
            .then(|| WsConn::dropped(CloseInitiator::Local, "server stopped"));
        self.begin_closing(now, limits, true, true);
        close
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        let deferred = match &self.state {
            State::Ws(w) => w.ws.buffered(),
            _ => 0,
        };
        self.out.len() + deferred
    }

    /// Bytes the last flush left unwritten (what the write cap compares
    /// with `max_write_buffer`).
    #[inline]
    pub fn backlog(&self) -> usize {
        self.out.backlog()
    }

    /// What a send started that the owner has yet to hear: a slow consumer
    /// that the write cap closed.
    pub fn poll_event(&mut self, now: Instant, limits: &Limits) -> Option<ServerEvent<'static>> {
        let (close, error) = self.ws()?.take_slow()?;
        self.begin_closing(now, limits, false, false);
        Some(ServerEvent::Closed(Ended::boxed(close, Some(error))))
    }

    /// The peer closed its side of TCP. What is queued still goes out (an
    /// HTTP client may half-close after its request), then the socket.
    pub fn handle_eof(&mut self, now: Instant, limits: &Limits) -> Option<ServerEvent<'static>> {
        let event = match self.state {
            State::Ws(_) => Some(ServerEvent::Closed(Ended::boxed(
                WsConn::dropped(CloseInitiator::Remote, ""),
                None,
            ))),
            _ => None,
        };
        match &mut self.state {
            State::Closing { peer_eof, .. } => *peer_eof = true,
            _ => self.begin_closing(now, limits, true, false),
        }
        event
    }

    /// The socket failed: nothing more can be read or written. A WebSocket
    /// gets its close (1006); the driver adds the error.
    pub fn handle_lost(&mut self, now: Instant, limits: &Limits) -> Option<ServerEvent<'static>> {
        let event = self.handle_eof(now, limits);
        if let State::Closing { done, .. } = &mut self.state {
            *done = true;
        }
        event
    }

    /// Leaves HTTP or WebSocket for `Closing`, keeping a WebSocket's details
    /// for the close report.
    fn begin_closing(&mut self, now: Instant, limits: &Limits, peer_eof: bool, done: bool) {
        let ws = match std::mem::replace(&mut self.state, State::Http(Http::Reading)) {
            State::Ws(w) => Some(w),
            State::Closing { ws, .. } => ws,
            State::Http(_) => None,
        };
        self.state = State::Closing {
            ws,
            shutdown_sent: false,
            peer_eof,
            done,
        };
        self.tail = None;
        // However slowly the peer reads or closes, the socket goes by then.
        self.set_deadline(Some(Deadline::new(Timer::Linger, now + limits.close_timeout)));
    }

    /// Whether output is queued.
    #[inline]
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The bytes to write (inline and shared, in order); the driver
    /// consumes what it wrote from the front.
    pub fn transmit(&mut self) -> &mut Outbox {
        &mut self.out
    }

    /// Gives an empty buffer to queue output in, if the connection has
    /// none (so a busy server reuses buffers instead of allocating).
    #[inline]
    pub fn give_buffer(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.out.buf.capacity() == 0 {
            self.out.buf = buf;
            None
        } else {
            Some(buf)
        }
    }

    /// Takes back an output buffer that holds nothing (one given for an
    /// answer that did not come: a request still arriving, an answer the
    /// application deferred), so a waiting connection keeps no buffer.
    pub fn take_unused_buffer(&mut self) -> Option<Vec<u8>> {
        (self.out.is_empty() && self.out.buf.capacity() > 0).then(|| std::mem::take(&mut self.out.buf))
    }

    /// Whether [`ServerConn::give_buffer`] would take a buffer.
    #[inline]
    pub fn needs_buffer(&self) -> bool {
        self.out.buf.capacity() == 0
    }

    /// After a flush attempt: records how much the peer left unread and
    /// says what the driver does next. An emptied buffer is handed back.
    pub fn handle_flushed(&mut self) -> (Flushed, Option<Vec<u8>>) {
        self.out.settle_backlog();
        if !self.out.is_empty() {
            return (Flushed::Keep, None);
        }
        let spare = Some(std::mem::take(&mut self.out.buf)).filter(|b| b.capacity() > 0);
        let action = match &mut self.state {
            State::Closing { peer_eof: true, .. } => Flushed::Close,
            State::Closing { shutdown_sent, .. } if !*shutdown_sent => {
                *shutdown_sent = true;
                Flushed::ShutdownWrite
            }
            _ => Flushed::Keep,
        };
        (action, spare)
    }

    /// Whether the socket can go: given up on, or closed by the peer with
    /// everything written.
    #[inline]
    pub fn is_finished(&self) -> bool {
        match self.state {
            State::Closing { done, peer_eof, .. } => done || (peer_eof && self.out.is_empty()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod sizes;
