//! An open WebSocket, either end: what goes out (messages, fragments,
//! pongs, the close frame, the write cap), what came in (frames to events,
//! the closing handshake), and the keepalive (pings, idle). The server's and
//! the client's connections both wrap one of these; the only difference
//! between the roles is who masks.

use std::borrow::Cow;
use std::time::{Duration, Instant};

pub use super::broadcast::Broadcast;
use super::close::{close_payload, parse_close_payload, CloseInfo, CloseInitiator, Ended, ABNORMAL};
use super::decoder::{Decoded, Decoder, Event, Frame, Role};
use super::error::{ConnError, SendError, SendStatus};
use super::frame::{encode_frame, encode_header, Opcode};
use super::input::Input;
use super::limits::Limits;
use super::outbox::{ByRef, Outbox, SHARE_MIN};
use super::outgoing::{Fragmenter, RawFrame};
use super::ProtocolError;
use bytes::Bytes;

mod clock;
mod keepalive;

/// The WebSocket state of one connection.
#[derive(Debug)]
pub(crate) struct WsConn {
    /// (It knows the role: who masks.)
    decoder: Decoder,
    /// The fragmented message we are sending, if any.
    frag: Fragmenter,
    /// Whole frames queued while a fragmented send is open; they follow its
    /// final fragment so the two messages do not interleave. Once our close
    /// is out nothing may follow it, and this holds instead the payload of
    /// the close the application started, so its end reports its own code
    /// and reason (not the peer's echo) at no cost to an open connection.
    /// Boxed when first needed, so the connections that never need it
    /// (nearly all) hold a pointer rather than an empty `Vec`.
    // The extra allocation is the point: a box's 8 bytes, not a `Vec`'s
    // 24, in every connection.
    #[allow(clippy::box_collection)]
    deferred: Option<Box<Vec<u8>>>,
    /// Our close frame is queued: nothing more may follow it.
    close_sent: bool,
    /// A send found the peer not reading and closed it; the owner reports
    /// it from `poll_event`.
    slow: bool,
    /// Our close is the idle timeout's: its end reports `IdleTimeout`.
    idle_closed: bool,
    /// The keepalive's latest ping is out (not answered yet).
    ping_out: bool,
    /// When the peer last sent anything, and last completed a data message
    /// (text or binary): millisecond stamps (`clock`), 4 bytes each where
    /// an `Instant` takes 16.
    last_rx: u32,
    last_data: u32,
    /// The keepalive's latest ping, to time its pong: its number, and when
    /// it was queued (a microsecond stamp; meaningful while `ping_out`).
    /// Fields here rather than one struct, whose padding would make this
    /// one larger.
    ping_seq: u32,
    ping_sent: u32,
    /// permessage-deflate, when agreed.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<super::deflate::Deflate>>,
}

/// The events a WebSocket hands its owner, built where they are decoded
/// (the server's and the client's event types both implement it), so a
/// message is not re-wrapped on its way out: per-message work is what a
/// 32-byte echo spends most of its user-space time on.
pub(crate) trait WsEvent<'i>: Sized {
    fn text(text: Cow<'i, str>) -> Self;
    fn binary(data: Cow<'i, [u8]>) -> Self;
    fn ping(payload: &'i [u8]) -> Self;
    fn pong(payload: &'i [u8]) -> Self;
    fn closed(end: Box<Ended>) -> Self;
}

/// A raw send on a connection that may have stopped being a WebSocket: the
/// frame's rules are checked either way (a bad call is a bad call whether or
/// not the channel is still there), then it is queued or reported closed.
#[inline]
pub(crate) fn send_raw_on(
    ws: Option<&mut WsConn>,
    out: &mut Outbox,
    opcode: Opcode,
    payload: &[u8],
    fin: bool,
    limits: &Limits,
) -> Result<SendStatus, SendError> {
    match ws {
        Some(ws) => ws.send_raw(out, opcode, payload, fin, limits),
        None => {
            super::outgoing::Fragmenter::check_alone(opcode, payload.len(), fin)?;
            Ok(SendStatus::Closed)
        }
    }
}

impl WsConn {
    pub fn new(role: Role, limits: &Limits, now: Instant) -> WsConn {
        WsConn {
            decoder: Decoder::new(role, limits.max_frame_size, limits.max_message_size),
            frag: Fragmenter::default(),
            deferred: None,
            close_sent: false,
            slow: false,
            idle_closed: false,
            ping_out: false,
            last_rx: clock::ms(now),
            last_data: clock::ms(now),
            ping_seq: 0,
            ping_sent: 0,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// permessage-deflate was agreed: messages from the peer may be
    /// compressed, and ours are (over the codec's threshold).
    #[cfg(feature = "deflate")]
    pub fn set_deflate(&mut self, codec: super::deflate::Deflate) {
        self.decoder.accept_compressed();
        self.deflate = Some(Box::new(codec));
    }

    /// When the peer last completed a data message (or, before its first,
    /// when the WebSocket opened), to the millisecond, given the current
    /// instant `now`. Right up to 49.7 days back (the stamps' wrap; see
    /// `clock`): on a WebSocket without keepalive (whose looks keep the
    /// stamps younger) a peer silent for longer reads as silent for 49.7
    /// days less.
    pub fn last_message_at(&self, now: Instant) -> Instant {
        let back = clock::elapsed_ms(clock::ms(now), self.last_data);
        now.checked_sub(Duration::from_millis(back.into())).unwrap_or(now)
    }

    /// Open: connected, and our close not sent.
    #[inline]
    pub fn is_open(&self) -> bool {
        !self.close_sent
    }

    pub fn buffered(&self) -> usize {
        match &self.deferred {
            Some(d) if !self.close_sent => d.len(),
            _ => 0,
        }
    }

    /// A fresh masking key for a client frame; none for a server's.
    #[inline]
    fn mask(&self) -> Option<[u8; 4]> {
        if self.decoder.role() == Role::Client {
            Some(rand::random())
        } else {
            None
        }
    }

    /// Refuses a send to a peer that is not reading; with the close policy
    /// the WebSocket is failed with 1008 too.
    fn too_slow(&mut self, out: &mut Outbox, limits: &Limits) -> SendStatus {
        if limits.close_slow_consumers && !self.slow {
            self.slow = true;
            self.queue_close(out, 1008, "slow consumer");
        }
        SendStatus::Dropped
    }

    /// Whether a data send may be queued now.
    #[inline]
    fn admit(&mut self, out: &mut Outbox, limits: &Limits) -> Result<(), SendStatus> {
        if self.close_sent {
            return Err(SendStatus::Closed);
        }
        if out.backlog() >= limits.max_write_buffer {
            return Err(self.too_slow(out, limits));
        }
        Ok(())
    }

    /// Queues a whole message (behind an unfinished fragmented send),
    /// compressed if permessage-deflate was agreed, `compress` allows, and
    /// it is long enough.
    #[inline]
    pub fn send_message(
        &mut self,
        out: &mut Outbox,
        opcode: Opcode,
        payload: &[u8],
        compress: bool,
        limits: &Limits,
    ) -> SendStatus {
        if let Err(status) = self.admit(out, limits) {
            return status;
        }
        let mask = self.mask();
        let dst = if self.frag.is_open() {
            &mut **self.deferred.get_or_insert_with(Default::default)
        } else {
            &mut out.buf
        };
        #[cfg(feature = "deflate")]
        if let Some(d) = self.deflate.as_mut().filter(|d| compress && d.wants(payload.len())) {
            d.encode_message(dst, opcode, payload, mask);
            return SendStatus::Queued;
        }
        let _ = compress;
        encode_frame(dst, true, opcode, payload, mask);
        SendStatus::Queued
    }

    /// Queues a broadcast's frame: the plain one (its header and the
    /// shared payload, for a large one), or the compressed one (made once
    /// for all who can share it, else for this connection).
    #[inline]
    pub fn push_broadcast(&mut self, out: &mut Outbox, b: &mut Broadcast<'_>, limits: &Limits) -> SendStatus {
        #[cfg(feature = "deflate")]
        if let Some(d) = self.deflate.as_mut().filter(|d| d.wants(b.payload().len())) {
            if !d.params().no_context_takeover {
                // Its own context: its own bytes.
                return self.send_message(out, b.opcode, b.payload(), true, limits);
            }
            let stale = b.deflated.as_ref().is_none_or(|(p, _)| !d.same_output(p));
            if stale {
                let mut frame = b.deflated.take().map(|(_, f)| f).unwrap_or_default();
                frame.clear();
                d.encode_message(&mut frame, b.opcode, b.owned.as_deref().unwrap_or(b.payload), None);
                b.deflated = Some((d.params(), frame));
            }
            let frame = std::mem::take(&mut b.deflated.as_mut().expect("made above").1);
            let status = self.push_encoded(out, &frame, None, limits);
            b.deflated.as_mut().expect("made above").1 = frame;
            return status;
        }
        let _ = b.opcode;
        let shared = b.owned.as_ref().filter(|_| b.by_ref);
        self.push_encoded(out, &b.plain, shared, limits)
    }

    /// Queues a frame encoded once for many receivers (server broadcast;
    /// server frames are not masked, so the bytes are the same for all):
    /// `frame`, then `shared` (the payload, when `frame` is only the
    /// header) by reference.
    #[inline]
    pub fn push_encoded(
        &mut self,
        out: &mut Outbox,
        frame: &[u8],
        shared: Option<&Bytes>,
        limits: &Limits,
    ) -> SendStatus {
        debug_assert_eq!(self.decoder.role(), Role::Server);
        if let Err(status) = self.admit(out, limits) {
            return status;
        }
        if self.frag.is_open() {
            // Behind an unfinished fragmented send (rare): copied.
            let deferred = self.deferred.get_or_insert_with(Default::default);
            deferred.extend_from_slice(frame);
            deferred.extend_from_slice(shared.map_or(&[][..], |b| b));
            return SendStatus::Queued;
        }
        out.buf.extend_from_slice(frame);
        if let Some(bytes) = shared {
            out.push_shared(bytes.clone());
        }
        SendStatus::Queued
    }

    /// Queues a whole message whose payload can go by reference (`by_ref`
    /// names the same bytes as `payload`): a large one so, its header
    /// encoded here, unless it has to be copied anyway (compressed, masked
    /// by a client, or waiting behind a fragmented send), which
    /// `send_message` then does from `payload`.
    pub fn send_by_ref(
        &mut self,
        out: &mut Outbox,
        opcode: Opcode,
        payload: &[u8],
        by_ref: ByRef,
        compress: bool,
        limits: &Limits,
    ) -> SendStatus {
        #[cfg(feature = "deflate")]
        let deflates = compress && self.deflate.as_ref().is_some_and(|d| d.wants(payload.len()));
        #[cfg(not(feature = "deflate"))]
        let deflates = false;
        if payload.len() < SHARE_MIN || self.decoder.role() == Role::Client || self.frag.is_open() || deflates {
            return self.send_message(out, opcode, payload, compress, limits);
        }
        if let Err(status) = self.admit(out, limits) {
            return status;
        }
        encode_header(&mut out.buf, true, opcode, payload.len(), None);
        out.push_ref(by_ref);
        SendStatus::Queued
    }

    /// Queues one raw frame (the tutorial's `send(data, opcode, fin)`).
    #[inline]
    pub fn send_raw(
        &mut self,
        out: &mut Outbox,
        opcode: Opcode,
        payload: &[u8],
        fin: bool,
        limits: &Limits,
    ) -> Result<SendStatus, SendError> {
        let kind = self.frag.check(opcode, payload.len(), fin)?;
        if let Err(status) = self.admit(out, limits) {
            return Ok(status);
        }
        let mask = self.mask();
        match kind {
            RawFrame::Control => encode_frame(&mut out.buf, true, opcode, payload, mask),
            RawFrame::Data(wire) => {
                // A whole message (not a fragment) is compressed as
                // send_message would; fragments go as they are (RFC 7692
                // lets a sender leave any message uncompressed).
                #[cfg(feature = "deflate")]
                let whole = fin && wire != Opcode::Continuation;
                #[cfg(feature = "deflate")]
                match self.deflate.as_mut().filter(|d| whole && d.wants(payload.len())) {
                    Some(d) => d.encode_message(&mut out.buf, wire, payload, mask),
                    None => encode_frame(&mut out.buf, fin, wire, payload, mask),
                }
                #[cfg(not(feature = "deflate"))]
                encode_frame(&mut out.buf, fin, wire, payload, mask);
                if self.frag.sent(wire, fin) {
                    if let Some(deferred) = self.deferred.take() {
                        out.buf.extend_from_slice(&deferred);
                    }
                }
            }
        }
        Ok(SendStatus::Queued)
    }

    /// Queues our close frame (code already checked) unless one is out.
    /// Frames deferred behind an unfinished fragmented send are dropped:
    /// nothing may follow a close.
    pub fn queue_close(&mut self, out: &mut Outbox, code: u16, reason: &str) -> bool {
        if self.close_sent {
            return false;
        }
        self.close_sent = true;
        self.deferred = None;
        let mut payload = [0u8; 125];
        let n = close_payload(code, reason, &mut payload);
        let mask = self.mask();
        encode_frame(&mut out.buf, true, Opcode::Close, &payload[..n], mask);
        true
    }

    /// Starts the closing handshake for the application (code checked):
    /// like `queue_close`, and its code and reason are kept for the report.
    pub fn start_close(&mut self, out: &mut Outbox, code: u16, reason: &str) -> bool {
        if !self.queue_close(out, code, reason) {
            return false;
        }
        let mut payload = [0u8; 125];
        let n = close_payload(code, reason, &mut payload);
        self.deferred = Some(Box::new(payload[..n].to_vec()));
        true
    }

    /// A slow-consumer close that a send started and nobody reported yet.
    pub fn take_slow(&mut self) -> Option<(CloseInfo, ConnError)> {
        if !std::mem::take(&mut self.slow) {
            return None;
        }
        let info = CloseInfo {
            code: 1008,
            reason: "slow consumer".into(),
            was_clean: false,
            initiator: CloseInitiator::Local,
        };
        Some((info, ConnError::SlowConsumer))
    }

    /// Bytes the decoder still needs for the frame it is in, for topping up
    /// a carried-over tail (a cut header is at most 14 bytes).
    #[inline]
    pub fn wanted(&self, have: usize) -> usize {
        match self.decoder.pending_frame_len() {
            Some(len) => usize::try_from(len).unwrap_or(usize::MAX).saturating_sub(have),
            None => 14,
        }
    }

    /// Decodes the next frame of `input` and does what it asks of the
    /// protocol (answer a ping, answer a close). Returns the event for the
    /// application (the end of the WebSocket among them), or `None` when
    /// nothing more can be decoded.
    #[inline]
    pub fn step<'i, E: WsEvent<'i>>(
        &mut self,
        input: &'i mut Input<'_>,
        out: &mut Outbox,
        now: Instant,
        limits: &Limits,
    ) -> Option<E> {
        if !input.is_stamped() {
            self.heard(input, now);
        }
        let frame = loop {
            let have = input.tail_len();
            let want = if have > 0 { self.wanted(have) } else { usize::MAX };
            let buf = input.next(want)?;
            match self.decoder.decode(buf) {
                Ok(Decoded::NeedMore) if input.can_give_more() => {}
                Ok(Decoded::NeedMore) => return None,
                Ok(Decoded::Frame { consumed, frame }) => {
                    input.consume(consumed);
                    if let Some(frame) = frame {
                        break frame;
                    }
                }
                Err(e) => {
                    input.discard();
                    return Some(self.fail(out, e));
                }
            }
        };
        if matches!(
            frame,
            Frame::Text(_)
                | Frame::Binary(_)
                | Frame::AssembledText(_)
                | Frame::AssembledBinary(_)
                | Frame::Deflated { .. }
                | Frame::DeflatedAssembled { .. }
        ) {
            self.last_data = self.last_rx;
        }
        let input: &'i Input<'_> = input;
        let buf = input.last();
        Some(match frame {
            Frame::Text(r) => match std::str::from_utf8(&buf[r]) {
                Ok(text) => E::text(Cow::Borrowed(text)),
                Err(_) => self.fail(out, ProtocolError::InvalidUtf8),
            },
            Frame::Binary(r) => E::binary(Cow::Borrowed(&buf[r])),
            Frame::Ping(r) => {
                let payload = &buf[r];
                if self.is_open() {
                    if out.backlog() >= limits.max_write_buffer {
                        // Pongs for pings the peer never reads would grow
                        // without bound: a slow consumer like any other.
                        self.too_slow(out, limits);
                    } else {
                        let mask = self.mask();
                        encode_frame(&mut out.buf, true, Opcode::Pong, payload, mask);
                    }
                }
                E::ping(payload)
            }
            Frame::Pong(r) => E::pong(&buf[r]),
            Frame::Deflated { text, range } => self.inflated(out, text, &buf[range], limits),
            Frame::DeflatedAssembled { text, data } => self.inflated(out, text, &data, limits),
            // The rare ones: reassembled messages and closes.
            other => match other.event(buf) {
                Ok(Event::Text(text)) => E::text(text),
                Ok(Event::Binary(data)) => E::binary(data),
                Ok(Event::Close { code, reason }) => {
                    let info = if self.close_sent {
                        // The peer answered the close we started: report
                        // ours, as both sides then describe the same close.
                        let ours = self.deferred.as_deref().map_or(&[][..], Vec::as_slice);
                        let (code, reason) = parse_close_payload(ours).unwrap_or((code, reason));
                        CloseInfo {
                            code,
                            reason: reason.to_owned(),
                            was_clean: true,
                            initiator: CloseInitiator::Local,
                        }
                    } else {
                        // Answer with the same code (RFC 6455 §5.5.1); 1005
                        // gives an empty close frame.
                        self.queue_close(out, code, "");
                        CloseInfo {
                            code,
                            reason: reason.to_owned(),
                            was_clean: true,
                            initiator: CloseInitiator::Remote,
                        }
                    };
                    // An idle close that completed is still the idle
                    // timeout's doing; the application hears why.
                    let error =
                        (self.idle_closed && info.initiator == CloseInitiator::Local).then_some(ConnError::IdleTimeout);
                    E::closed(Ended::boxed(info, error))
                }
                Ok(Event::Ping(_) | Event::Pong(_)) => unreachable!("handled above"),
                Err(e) => self.fail(out, e),
            },
        })
    }

    /// The first look at a read's bytes: they were heard at `now` (the
    /// read's frames all count as heard then, so this is done once per
    /// read, not per frame, and out of line: a 32-byte echo's per-message
    /// work is small enough for a clock conversion to show).
    #[inline(never)]
    fn heard(&mut self, input: &mut Input<'_>, now: Instant) {
        let stamp = input.stamp(clock::ms(now));
        if input.remaining() > 0 {
            self.last_rx = stamp;
        }
    }

    /// A compressed message, inflated (within the message size limit) and,
    /// for text, checked for UTF-8.
    fn inflated<'i, E: WsEvent<'i>>(&mut self, out: &mut Outbox, text: bool, payload: &[u8], limits: &Limits) -> E {
        #[cfg(feature = "deflate")]
        if let Some(d) = self.deflate.as_mut() {
            let mut data = Vec::new();
            return match d.decompress(payload, &mut data, limits.max_message_size) {
                Err(e) => self.fail(out, e),
                Ok(()) if !text => E::binary(Cow::Owned(data)),
                Ok(()) => match String::from_utf8(data) {
                    Ok(s) => E::text(Cow::Owned(s)),
                    Err(_) => self.fail(out, ProtocolError::InvalidUtf8),
                },
            };
        }
        // The decoder hands out compressed messages only once a codec is
        // set.
        let _ = (text, payload, limits);
        self.fail(out, ProtocolError::ReservedBits)
    }

    /// Fails the WebSocket for a protocol violation (RFC 6455 §7.1.7): our
    /// close frame with the matching code, without waiting for an answer.
    fn fail<'i, E: WsEvent<'i>>(&mut self, out: &mut Outbox, e: ProtocolError) -> E {
        log::debug!("websocket failed: {e}");
        let reason = e.to_string();
        self.queue_close(out, e.close_code(), &reason);
        let info = CloseInfo {
            code: e.close_code(),
            reason,
            was_clean: false,
            initiator: CloseInitiator::Local,
        };
        E::closed(Ended::boxed(info, Some(ConnError::Protocol(e))))
    }

    /// The peer's answer to the close this side started did not come in
    /// time: reported with this side's code and reason (as when it does
    /// come), not clean, and the cause (the idle timeout, or the close
    /// timeout) as the error.
    pub fn close_timed_out(&self) -> (CloseInfo, ConnError) {
        let ours = self
            .deferred
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| parse_close_payload(d).ok());
        let (code, reason) = ours.unwrap_or((ABNORMAL, "closing handshake timed out"));
        let info = CloseInfo {
            code,
            reason: reason.to_owned(),
            was_clean: false,
            initiator: CloseInitiator::Local,
        };
        let error = if self.idle_closed {
            ConnError::IdleTimeout
        } else {
            ConnError::CloseTimeout
        };
        (info, error)
    }

    /// The connection dropped without a closing handshake.
    pub fn dropped(initiator: CloseInitiator, reason: &str) -> CloseInfo {
        CloseInfo {
            code: ABNORMAL,
            reason: reason.to_owned(),
            was_clean: false,
            initiator,
        }
    }
}
