//! What the application sends on a server connection's WebSocket:
//! messages, broadcasts, raw frames, and the closing handshake.

use std::time::Instant;

use bytes::Bytes;

use super::{ServerConn, State};
use crate::proto::close::{is_valid_server_code, CloseInfo, CloseInitiator};
use crate::proto::error::{SendError, SendStatus};
use crate::proto::frame::Opcode;
use crate::proto::limits::Limits;
use crate::proto::outbox::ByRef;
use crate::proto::timer::{Deadline, Timer};
use crate::proto::ws::{send_raw_on, Broadcast};

impl ServerConn {
    /// Queues a whole text or binary message (compressed when
    /// permessage-deflate was agreed and it is long enough).
    #[inline]
    pub fn send_message(&mut self, opcode: Opcode, payload: &[u8], limits: &Limits) -> SendStatus {
        self.send_message_with(opcode, payload, true, limits)
    }

    /// [`ServerConn::send_message`], with `compress: false` to send it as
    /// it is whatever was agreed (data that is already compressed).
    #[inline]
    pub fn send_message_with(&mut self, opcode: Opcode, payload: &[u8], compress: bool, limits: &Limits) -> SendStatus {
        let State::Ws(w) = &mut self.state else {
            return SendStatus::Closed;
        };
        w.ws.send_message(&mut self.out, opcode, payload, compress, limits)
    }

    /// Queues a broadcast's frame, encoded once for many receivers (and
    /// compressed once for those that can share it).
    #[inline]
    pub fn push_broadcast(&mut self, b: &mut Broadcast<'_>, limits: &Limits) -> SendStatus {
        let State::Ws(w) = &mut self.state else {
            return SendStatus::Closed;
        };
        w.ws.push_broadcast(&mut self.out, b, limits)
    }

    /// Queues a frame already encoded (unmasked) for many receivers.
    #[inline]
    pub fn push_encoded(&mut self, frame: &[u8], limits: &Limits) -> SendStatus {
        let State::Ws(w) = &mut self.state else {
            return SendStatus::Closed;
        };
        w.ws.push_encoded(&mut self.out, frame, None, limits)
    }

    /// Queues a whole message held as shared bytes: a large one by
    /// reference, without copying it (see `proto/outbox.rs`).
    #[inline]
    pub fn send_shared(&mut self, opcode: Opcode, payload: Bytes, compress: bool, limits: &Limits) -> SendStatus {
        let State::Ws(w) = &mut self.state else {
            return SendStatus::Closed;
        };
        let by_ref = ByRef::Shared(payload.clone());
        w.ws.send_by_ref(&mut self.out, opcode, &payload, by_ref, compress, limits)
    }

    /// Queues a whole message whose payload is `payload`, found at `off` in
    /// the driver's current read buffer (a received message echoed or
    /// relayed): a large one by reference, which the driver makes a slice
    /// of that buffer with [`ServerConn::resolve_reads`] before it
    /// flushes; a small one copied.
    #[inline]
    pub fn send_from_read(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        off: usize,
        compress: bool,
        limits: &Limits,
    ) -> SendStatus {
        let State::Ws(w) = &mut self.state else {
            return SendStatus::Closed;
        };
        let by_ref = ByRef::Read {
            off,
            len: payload.len(),
        };
        w.ws.send_by_ref(&mut self.out, opcode, payload, by_ref, compress, limits)
    }

    /// Whether a payload queued by [`ServerConn::send_from_read`] awaits
    /// [`ServerConn::resolve_reads`].
    pub fn has_reads(&self) -> bool {
        self.out.has_reads()
    }

    /// The read buffer those payloads are in, now shared: each becomes a
    /// slice of it.
    pub fn resolve_reads(&mut self, read: &Bytes) {
        self.out.resolve_reads(read);
    }

    /// See `Outbox::unpin_reads`: for a connection whose queue outlives
    /// the flush after the read it echoes from.
    pub fn unpin_reads(&mut self) {
        self.out.unpin_reads();
    }

    /// Queues one raw frame; see [`crate::Context::send`] for the rules.
    #[inline]
    pub fn send_raw(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        fin: bool,
        limits: &Limits,
    ) -> Result<SendStatus, SendError> {
        let ws = match &mut self.state {
            State::Ws(w) => Some(&mut w.ws),
            _ => None,
        };
        send_raw_on(ws, &mut self.out, opcode, payload, fin, limits)
    }

    /// Starts the closing handshake with `code` (checked: one a server may
    /// send) and `reason` (cut to 123 bytes at a character boundary, all a
    /// close frame holds). A channel already closing or closed is left as
    /// it is.
    pub fn close(&mut self, code: u16, reason: &str, now: Instant, limits: &Limits) -> Result<(), SendError> {
        check_close(code, is_valid_server_code)?;
        self.start_close(code, reason, now, limits);
        Ok(())
    }

    /// Starts the closing handshake with any code (shutdown's 1001, say).
    pub fn start_close(&mut self, code: u16, reason: &str, now: Instant, limits: &Limits) {
        let State::Ws(w) = &mut self.state else { return };
        if w.ws.start_close(&mut self.out, code, reason) {
            self.set_deadline(Some(Deadline::new(Timer::CloseHandshake, now + limits.close_timeout)));
        }
    }

    /// Fails an open WebSocket for a reason of the owner's (a callback
    /// panicked: 1011): our close frame goes out and the connection ends
    /// without waiting for an answer. Returns how it ended.
    pub fn abort(&mut self, code: u16, reason: &str, now: Instant, limits: &Limits) -> Option<CloseInfo> {
        let State::Ws(w) = &mut self.state else {
            return None;
        };
        w.ws.queue_close(&mut self.out, code, reason);
        self.begin_closing(now, limits, false, false);
        Some(CloseInfo {
            code,
            reason: reason.to_owned(),
            was_clean: false,
            initiator: CloseInitiator::Local,
        })
    }
}

impl ServerConn {
    /// Checks a server application's close code without a connection at
    /// hand (a handle's command, a stale channel).
    pub fn check_close_code(code: u16) -> Result<(), SendError> {
        check_close(code, is_valid_server_code)
    }
}

/// Checks a close code given by the application. (A reason needs no
/// check: one over 123 bytes is cut at a character boundary.)
pub(crate) fn check_close(code: u16, valid: fn(u16) -> bool) -> Result<(), SendError> {
    if valid(code) {
        Ok(())
    } else {
        Err(SendError::InvalidCloseCode(code))
    }
}
