//! What a send can come to, and why a connection failed: the values the
//! connection core reports. The crate's public error types wrap them.

use super::frame::Opcode;
use super::handshake::ClientHandshakeError;
use super::ProtocolError;

/// What became of a message handed to a send call.
///
/// Not `#[must_use]`: a game that sends a state update every frame has
/// nothing to do when one cannot go out. A channel that closed arrives as
/// its close callback; a peer that stops reading meets the
/// [`SlowConsumer`](crate::SlowConsumer) policy. Look at the status when
/// you care (`if !ctx.send_text(ch, msg).is_queued() { ... }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendStatus {
    /// Queued; it leaves in this tick's flush (the client's: this or the
    /// next `process_event_que`).
    Queued,
    /// The channel is closed or closing, or the id is stale: nothing was
    /// queued. Expected when racing a disconnect; the close callback says
    /// when to stop sending.
    Closed,
    /// The peer is not reading: its unwritten output reached the write
    /// buffer cap, and the message was dropped. With
    /// [`SlowConsumer::Close`](crate::SlowConsumer::Close) the channel is
    /// being closed too.
    Dropped,
}

impl SendStatus {
    /// Whether the message was queued.
    ///
    /// ```
    /// assert!(hvws::SendStatus::Queued.is_queued());
    /// assert!(!hvws::SendStatus::Closed.is_queued());
    /// ```
    pub fn is_queued(self) -> bool {
        self == SendStatus::Queued
    }
}

/// A send or close whose arguments cannot go on the wire; nothing was
/// queued. These are programming errors: fix the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A close code that may not be sent: servers may use 1000-1003,
    /// 1007-1014 and 3000-4999; clients 1000 and 3000-4999 (as browsers).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// Control frames (ping, pong, close) carry at most 125 bytes.
    #[error("control frame payload of {0} bytes is over the 125-byte limit")]
    ControlFrameTooLarge(usize),
    /// A raw send with an opcode that cannot go there: `Continuation` with
    /// no fragmented message open, another data opcode while one is, a
    /// non-final control frame, or `Close` (use `close`, which tracks the
    /// closing handshake).
    #[error("opcode {0:?} cannot be sent here")]
    InvalidOpcode(Opcode),
    /// Through a [`ServerHandle`](crate::ServerHandle): the server has
    /// stopped, so nothing will carry the command out.
    #[error("server is not running")]
    NotRunning,
}

/// Why a connection ended without a clean closing handshake; the close
/// event that carries it says how it ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer broke RFC 6455; we closed with the matching code.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer did not answer our close frame in time.
    #[error("peer did not complete the closing handshake in time")]
    CloseTimeout,
    /// The peer sent nothing, not even a pong, within the idle timeout.
    #[error("peer sent nothing within the idle timeout")]
    IdleTimeout,
    /// The peer stopped reading and its output reached the write cap.
    #[error("peer is not reading; output reached the write buffer cap")]
    SlowConsumer,
    /// Client: the server did not accept the upgrade.
    #[error("handshake failed: {0}")]
    Handshake(#[from] ClientHandshakeError),
    /// Client: TCP connect plus handshake took longer than allowed.
    #[error("connecting timed out")]
    ConnectTimeout,
}
