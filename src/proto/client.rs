//! One client-side connection: the opening handshake, then the WebSocket
//! (the same WebSocket state machine as the server's, `ws.rs`), then the TCP close;
//! and the reconnect schedule. No socket, no clock.
//!
//! # Call order
//!
//! ```text
//! ClientConn::new(request, now, limits)      // the upgrade request is queued
//! // the driver connects; once TCP is up:     conn.handle_connected()
//! loop {
//!     let mut input = conn.begin_input(bytes);
//!     while let Some(event) = conn.poll_input(&mut input, now, limits) { .. }
//!     conn.end_input(input);
//!     // EOF: conn.handle_eof(); socket error: conn.handle_lost()
//!     // conn.poll_timeout() due: conn.handle_timeout(now, limits)
//!     // after sends: conn.poll_event()  (a slow consumer closed)
//!     // flush conn.transmit() once per pump, then conn.handle_flushed()
//!     // conn.is_finished(): drop the socket
//! }
//! ```

use std::borrow::Cow;
use std::time::Instant;

use super::close::{is_valid_app_code, CloseInfo, CloseInitiator, Ended};
use super::decoder::Role;
use super::error::{ConnError, SendError, SendStatus};
use super::frame::Opcode;
use super::handshake::{encode_request, parse_response};
use super::input::Input;
use super::limits::Limits;
use super::outbox::Outbox;
use super::server::{check_close, Flushed};
use super::timer::{Deadline, Timer};
use super::ws::{send_raw_on, WsConn, WsEvent};

pub use super::reconnect::{Backoff, Next, Reconnect, StopReason};

/// The upgrade request a client sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The `Host` header: host and port as in the URL.
    pub authority: String,
    /// Path and query.
    pub resource: String,
    /// Subprotocols offered, in order of preference.
    pub protocols: Vec<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// What a client connection has for its owner.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent<'i> {
    /// The server accepted the upgrade; sending is possible.
    Open {
        /// The subprotocol it chose.
        protocol: Option<String>,
        /// The extensions it agreed to (its `Sec-WebSocket-Extensions`).
        extensions: Option<String>,
    },
    /// A text message.
    Text(Cow<'i, str>),
    /// A binary message.
    Binary(Cow<'i, [u8]>),
    /// A ping; the pong is already queued (unless our close is out, or the
    /// server is not reading its pongs: see the write cap).
    Ping(&'i [u8]),
    /// A pong.
    Pong(&'i [u8]),
    /// The connection is over (whether or not it ever opened);
    /// [`Ended::error`] says why when it was not a clean closing handshake.
    Closed(Box<Ended>),
}

#[derive(Debug)]
enum State {
    /// TCP is being set up; the request waits in the output.
    Connecting {
        key: String,
    },
    /// The request is out; waiting for the 101.
    Handshaking {
        key: String,
    },
    Ws(Box<WsConn>),
    /// Over (reported): write what is queued, then drop the socket once
    /// the server has closed, or at once if `done`.
    Closing {
        peer_eof: bool,
        done: bool,
    },
}

impl<'i> WsEvent<'i> for ClientEvent<'i> {
    fn text(text: Cow<'i, str>) -> Self {
        ClientEvent::Text(text)
    }
    fn binary(data: Cow<'i, [u8]>) -> Self {
        ClientEvent::Binary(data)
    }
    fn ping(payload: &'i [u8]) -> Self {
        ClientEvent::Ping(payload)
    }
    fn pong(payload: &'i [u8]) -> Self {
        ClientEvent::Pong(payload)
    }
    fn closed(end: Box<Ended>) -> Self {
        ClientEvent::Closed(end)
    }
}

/// A client's connection. See the module docs for the call order.
#[derive(Debug)]
pub struct ClientConn {
    state: State,
    out: Outbox,
    tail: Vec<u8>,
    deadline: Option<Deadline>,
    /// The subprotocols offered: the server may only choose one of them.
    offered: Vec<String>,
}

/// The server's answer, checked: the upgrade, the subprotocol, and the
/// extensions against what we offered.
fn answer(
    buf: &[u8],
    key: &str,
    offered: &[String],
    limits: &Limits,
) -> Result<Option<super::handshake::Accepted>, super::handshake::ClientHandshakeError> {
    #[cfg(feature = "deflate")]
    let offered_extensions = limits.deflate.is_some();
    #[cfg(not(feature = "deflate"))]
    let offered_extensions = {
        let _ = limits;
        false
    };
    let Some(accepted) = parse_response(buf, key, offered, offered_extensions)? else {
        return Ok(None);
    };
    #[cfg(feature = "deflate")]
    if let Some(config) = &limits.deflate {
        super::deflate::check_response(accepted.extensions.as_deref(), config)
            .map_err(super::handshake::ClientHandshakeError::BadExtensions)?;
    }
    Ok(Some(accepted))
}

impl ClientConn {
    /// A connection attempt started at `now`: the upgrade request (with a
    /// fresh key) is queued, and connect plus handshake must be done within
    /// `limits.connect_timeout`.
    pub fn new(request: &Request, now: Instant, limits: &Limits) -> ClientConn {
        let key = tungstenite::handshake::client::generate_key();
        let mut out = Outbox::default();
        #[allow(unused_mut)]
        let mut headers = std::borrow::Cow::Borrowed(&request.headers);
        #[cfg(feature = "deflate")]
        if let Some(config) = &limits.deflate {
            let offer = super::deflate::offer(config);
            headers.to_mut().push(("Sec-WebSocket-Extensions".to_owned(), offer));
        }
        encode_request(
            &request.authority,
            &request.resource,
            &key,
            &request.protocols,
            &headers,
            &mut out.buf,
        );
        ClientConn {
            state: State::Connecting { key },
            out,
            tail: Vec::new(),
            deadline: Some(Deadline::new(Timer::Connect, now + limits.connect_timeout)),
            offered: request.protocols.clone(),
        }
    }

    /// Checks a client application's close code (1000 or 3000-4999, as
    /// browsers allow).
    pub fn check_close_code(code: u16) -> Result<(), SendError> {
        check_close(code, is_valid_app_code)
    }

    /// TCP is up: the request may go out.
    pub fn handle_connected(&mut self) {
        if let State::Connecting { key } = &mut self.state {
            self.state = State::Handshaking {
                key: std::mem::take(key),
            };
        }
    }

    /// Still waiting for TCP: nothing may be written yet.
    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting { .. })
    }

    /// Connecting or handshaking.
    pub fn is_opening(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Handshaking { .. })
    }

    /// Open: the handshake is done and our close not sent.
    pub fn is_open(&self) -> bool {
        matches!(&self.state, State::Ws(ws) if ws.is_open())
    }

    /// Our close is sent; the server's is awaited.
    pub fn is_closing(&self) -> bool {
        matches!(&self.state, State::Ws(ws) if !ws.is_open())
    }

    /// When [`ClientConn::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.map(|d| d.at)
    }

    /// The running timer, if any.
    pub fn timer(&self) -> Option<Deadline> {
        self.deadline
    }

    /// Pairs what was kept from earlier reads with `data`, just read.
    pub fn begin_input<'d>(&mut self, data: &'d mut [u8]) -> Input<'d> {
        Input::new(std::mem::take(&mut self.tail), data)
    }

    /// Keeps what `input` left unconsumed.
    pub fn end_input(&mut self, input: Input<'_>) {
        let rest = input.finish();
        if !matches!(self.state, State::Closing { .. }) && !rest.is_empty() {
            self.tail = rest;
        }
    }

    /// The next event from `input`, or `None` when it needs more bytes.
    pub fn poll_input<'i>(
        &mut self,
        input: &'i mut Input<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Option<ClientEvent<'i>> {
        match &mut self.state {
            State::Connecting { .. } | State::Closing { .. } => {
                input.discard();
                None
            }
            State::Handshaking { key } => {
                let buf = input.next(usize::MAX)?;
                match answer(buf, key, &self.offered, limits) {
                    Ok(None) => None,
                    Ok(Some(accepted)) => {
                        input.consume(accepted.head_len);
                        #[allow(unused_mut)]
                        let mut ws = WsConn::new(Role::Client, limits, now);
                        #[cfg(feature = "deflate")]
                        if let Some(config) = &limits.deflate {
                            // Checked by `answer`.
                            if let Ok(Some(params)) =
                                super::deflate::check_response(accepted.extensions.as_deref(), config)
                            {
                                ws.set_deflate(super::deflate::Deflate::new(params, config));
                            }
                        }
                        self.deadline = ws
                            .next_keepalive(now, limits)
                            .map(|at| Deadline::new(Timer::Keepalive, at));
                        self.state = State::Ws(Box::new(ws));
                        Some(ClientEvent::Open {
                            protocol: accepted.protocol,
                            extensions: accepted.extensions,
                        })
                    }
                    Err(e) => {
                        input.discard();
                        Some(self.end(
                            WsConn::dropped(CloseInitiator::Local, ""),
                            Some(e.into()),
                            true,
                            now,
                            limits,
                        ))
                    }
                }
            }
            State::Ws(ws) => match ws.step(input, &mut self.out, now, limits)? {
                ClientEvent::Closed(end) => Some(self.end(end.close, end.error, false, now, limits)),
                event => Some(event),
            },
        }
    }

    fn end(
        &mut self,
        close: CloseInfo,
        error: Option<ConnError>,
        done: bool,
        now: Instant,
        limits: &Limits,
    ) -> ClientEvent<'static> {
        self.state = State::Closing { peer_eof: false, done };
        self.tail = Vec::new();
        self.deadline = Some(Deadline::new(Timer::Linger, now + limits.close_timeout));
        ClientEvent::Closed(Ended::boxed(close, error))
    }

    fn ws(&mut self) -> Option<&mut WsConn> {
        match &mut self.state {
            State::Ws(ws) => Some(ws),
            _ => None,
        }
    }

    /// Queues a whole text or binary message (compressed when
    /// permessage-deflate was agreed and it is long enough).
    pub fn send_message(&mut self, opcode: Opcode, payload: &[u8], limits: &Limits) -> SendStatus {
        self.send_message_with(opcode, payload, true, limits)
    }

    /// [`ClientConn::send_message`], with `compress: false` to send it as
    /// it is whatever was agreed.
    pub fn send_message_with(&mut self, opcode: Opcode, payload: &[u8], compress: bool, limits: &Limits) -> SendStatus {
        let State::Ws(ws) = &mut self.state else {
            return SendStatus::Closed;
        };
        ws.send_message(&mut self.out, opcode, payload, compress, limits)
    }

    /// Queues one raw frame.
    pub fn send_raw(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        fin: bool,
        limits: &Limits,
    ) -> Result<SendStatus, SendError> {
        let ws = match &mut self.state {
            State::Ws(ws) => Some(&mut **ws),
            _ => None,
        };
        send_raw_on(ws, &mut self.out, opcode, payload, fin, limits)
    }

    /// Starts the closing handshake with `code` (1000 or 3000-4999, as
    /// browsers allow) and `reason` (cut to 123 bytes at a character
    /// boundary). Does nothing unless open.
    pub fn close(&mut self, code: u16, reason: &str, now: Instant, limits: &Limits) -> Result<(), SendError> {
        check_close(code, is_valid_app_code)?;
        let State::Ws(ws) = &mut self.state else {
            return Ok(());
        };
        if ws.start_close(&mut self.out, code, reason) {
            self.deadline = Some(Deadline::new(Timer::CloseHandshake, now + limits.close_timeout));
        }
        Ok(())
    }

    /// A slow-consumer close that a send started, to report.
    pub fn poll_event(&mut self, now: Instant, limits: &Limits) -> Option<ClientEvent<'static>> {
        let (close, error) = self.ws()?.take_slow()?;
        Some(self.end(close, Some(error), false, now, limits))
    }

    /// Deadlines that came due by `now`.
    pub fn handle_timeout(&mut self, now: Instant, limits: &Limits) -> Option<ClientEvent<'static>> {
        let deadline = self.deadline.filter(|d| d.is_due(now))?;
        self.deadline = None;
        match (deadline.timer, &mut self.state) {
            (Timer::Connect, State::Connecting { .. } | State::Handshaking { .. }) => {
                let close = WsConn::dropped(CloseInitiator::Local, "");
                Some(self.end(close, Some(ConnError::ConnectTimeout), true, now, limits))
            }
            (Timer::Keepalive, State::Ws(ws)) => {
                self.deadline = if ws.handle_keepalive(&mut self.out, now, limits) {
                    Some(Deadline::new(Timer::CloseHandshake, now + limits.close_timeout))
                } else {
                    ws.next_keepalive(now, limits)
                        .map(|at| Deadline::new(Timer::Keepalive, at))
                };
                None
            }
            (Timer::CloseHandshake, State::Ws(ws)) => {
                let (close, error) = ws.close_timed_out();
                Some(self.end(close, Some(error), true, now, limits))
            }
            (Timer::Linger, State::Closing { done, .. }) => {
                *done = true;
                None
            }
            _ => None,
        }
    }

    /// The owner gives up on an attempt still connecting or handshaking
    /// (the user closed): reported as a drop of ours (1006, local).
    pub fn abandon(&mut self, now: Instant, limits: &Limits) -> Option<ClientEvent<'static>> {
        if !self.is_opening() {
            return None;
        }
        Some(self.end(WsConn::dropped(CloseInitiator::Local, ""), None, true, now, limits))
    }

    /// The server closed TCP (or connecting failed): the end, reported
    /// unless it already was.
    pub fn handle_eof(&mut self, now: Instant, limits: &Limits) -> Option<ClientEvent<'static>> {
        if let State::Closing { peer_eof, .. } = &mut self.state {
            *peer_eof = true;
            return None;
        }
        let event = self.end(WsConn::dropped(CloseInitiator::Remote, ""), None, false, now, limits);
        if let State::Closing { peer_eof, .. } = &mut self.state {
            *peer_eof = true;
        }
        Some(event)
    }

    /// The socket failed: the end, reported unless it already was.
    pub fn handle_lost(&mut self, now: Instant, limits: &Limits) -> Option<ClientEvent<'static>> {
        let event = self.handle_eof(now, limits);
        if let State::Closing { done, .. } = &mut self.state {
            *done = true;
        }
        event
    }

    /// Bytes queued and not yet written.
    pub fn buffered(&self) -> usize {
        let deferred = match &self.state {
            State::Ws(ws) => ws.buffered(),
            _ => 0,
        };
        self.out.buf.len() + deferred
    }

    /// Whether output is waiting to be written (never while connecting).
    pub fn has_output(&self) -> bool {
        !self.is_connecting() && !self.out.buf.is_empty()
    }

    /// The bytes to write; the driver drains what it wrote from the front.
    pub fn transmit(&mut self) -> &mut Vec<u8> {
        &mut self.out.buf
    }

    /// After a flush attempt: what the driver does next.
    pub fn handle_flushed(&mut self) -> Flushed {
        self.out.settle_backlog();
        match self.state {
            State::Closing { .. } if self.out.buf.is_empty() => Flushed::Close,
            _ => Flushed::Keep,
        }
    }

    /// Whether the socket can go: given up on, or over with our last bytes
    /// written (the client does not wait for the server's FIN once its
    /// close is answered).
    pub fn is_finished(&self) -> bool {
        match self.state {
            State::Closing { done, .. } => done || self.out.buf.is_empty(),
            _ => false,
        }
    }
}
