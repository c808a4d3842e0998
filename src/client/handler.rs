//! What a client application implements ([`HvWebSocketClient`]), what its
//! callbacks send through ([`ClientContext`]), and the connection's
//! [`ReadyState`].

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::ClientError;
use crate::proto::close::CloseInfo;
use crate::proto::frame::Opcode;
use crate::proto::{ClientConn, Limits, SendError, SendStatus};

/// The connection's state, numbered as the browser and Aussom `WebSocket`
/// classes number it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadyState {
    /// 0: connecting or handshaking (also while waiting to reconnect).
    Connecting = 0,
    /// 1: open; messages can be sent.
    Open = 1,
    /// 2: our close frame is sent; waiting for the server's.
    Closing = 2,
    /// 3: closed, or never opened.
    Closed = 3,
}

/// Callbacks of a WebSocket client application. All default to doing
/// nothing; they run inside [`WebSocketClient::process_event_que`](crate::WebSocketClient::process_event_que).
pub trait HvWebSocketClient {
    /// The handshake completed; sending is possible.
    fn on_open(&mut self, ctx: &mut ClientContext<'_>) {
        let _ = ctx;
    }

    /// A complete text message arrived.
    fn on_message(&mut self, ctx: &mut ClientContext<'_>, msg: &str) {
        let _ = (ctx, msg);
    }

    /// A complete binary message arrived.
    fn on_binary(&mut self, ctx: &mut ClientContext<'_>, data: &[u8]) {
        let _ = (ctx, data);
    }

    /// A ping arrived (the pong is already queued).
    fn on_ping(&mut self, ctx: &mut ClientContext<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }

    /// A pong arrived.
    fn on_pong(&mut self, ctx: &mut ClientContext<'_>, payload: &[u8]) {
        let _ = (ctx, payload);
    }

    /// The connection closed, described as the server's `on_ws_close`
    /// describes the same close (see [`CloseInfo`]). Called once for every
    /// connection that opened, and once when an attempt that never opened
    /// is not followed by another (no reconnect policy, or it gave up): a
    /// reconnect policy's failed attempts are reported by `on_error` and
    /// `on_reconnecting` alone, not by a stream of 1006 closes.
    fn on_close(&mut self, close: &CloseInfo) {
        let _ = close;
    }

    /// A reconnect is planned: attempt number `attempt` (1 for the first
    /// after a loss) in `delay`. Follows `on_close` (or, for a failed
    /// attempt, `on_error`). A game shows "reconnecting..." here; calling
    /// `close()` cancels it.
    fn on_reconnecting(&mut self, attempt: u32, delay: Duration) {
        let _ = (attempt, delay);
    }

    /// Something failed (connect, handshake, protocol, socket); `on_close`
    /// follows.
    fn on_error(&mut self, error: &ClientError) {
        log::debug!("websocket client: {error}");
    }
}

/// What client callbacks send through.
pub struct ClientContext<'a> {
    pub(super) conn: &'a mut ClientConn,
    pub(super) limits: &'a Limits,
    pub(super) now: Instant,
    pub(super) user_closed: &'a mut bool,
}

impl fmt::Debug for ClientContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("open", &self.conn.is_open())
            .finish()
    }
}

impl ClientContext<'_> {
    /// Queues a text message.
    pub fn send(&mut self, text: &str) -> SendStatus {
        self.conn.send_message(Opcode::Text, text.as_bytes(), self.limits)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> SendStatus {
        self.conn.send_message(Opcode::Binary, data, self.limits)
    }

    /// Queues one raw frame, with the same rules (and errors) as
    /// [`Context::send`](crate::Context::send).
    pub fn send_frame(&mut self, data: &[u8], opcode: Opcode, fin: bool) -> Result<SendStatus, SendError> {
        self.conn.send_raw(opcode, data, fin, self.limits)
    }

    /// Queues a ping; fails for a payload over 125 bytes.
    pub fn ping(&mut self, payload: &[u8]) -> Result<SendStatus, SendError> {
        self.conn.send_raw(Opcode::Ping, payload, true, self.limits)
    }

    /// Closes with 1000 (normal closure); no reconnect follows.
    pub fn close(&mut self) {
        let _ = self.close_with(1000, "");
    }

    /// Starts the closing handshake with `code` (1000 or 3000-4999) and a
    /// reason (cut to 123 bytes at a character boundary); no reconnect
    /// follows. Fails, doing nothing, only for another code.
    pub fn close_with(&mut self, code: u16, reason: &str) -> Result<(), SendError> {
        self.conn.close(code, reason, self.now, self.limits)?;
        *self.user_closed = true;
        Ok(())
    }
}
