//! The sans-IO protocol core: bytes and `now` in, events and bytes out.
//!
//! Nothing in this module touches a socket, a poller or the clock, and it
//! imports nothing from the rest of the crate: the driver (`crate::driver`)
//! feeds it what it read and writes out what it produced; tests feed it
//! exact bytes on a clock they advance, and assert exact bytes.
//!
//! The whole protocol of one connection is here: [`ServerConn`] (HTTP/1.1
//! requests, keep-alive, pipelining, the upgrade, then the WebSocket, then
//! the TCP close) and [`ClientConn`] (the opening handshake, then the same
//! WebSocket). Both share the WebSocket state machine in `ws.rs`: sending,
//! fragments, the closing handshake, pings and the idle timeout, with one
//! [`timer::Deadline`] per connection. Each file's docs give its call
//! order; in short:
//!
//! - input: `begin_input(bytes)`, then `poll_input(&mut input, now)` until
//!   `None` (the application runs between two calls), then `end_input`.
//!   This is quinn-proto's `handle_input` + `poll_event` cut so that a
//!   message is handed out where it was read: an event borrows the read
//!   buffer instead of being copied into a queue, and the connection is
//!   free again (so the application can send on it) while it is handled;
//! - time: `poll_timeout()` says when `handle_timeout(now)` is due;
//! - output: `transmit()` holds the bytes to write, `handle_flushed()`
//!   says what to do once they are written.
//!
//! It is public and documented: hvws's own driver is one user, the tests'
//! in-memory `Pair` another, and anyone who wants hvws's protocol on their
//! own I/O a third. It follows the crate's version like the rest of the API.
//!
//! Framing is hvws's own rather than tungstenite's `WebSocketContext`:
//! measured on the project's 2-core machine, the context costs
//! 10-16% more CPU per echoed message, allocates its 128 KiB read buffer up
//! front (135 KB per idle connection), and validates UTF-8 only per complete
//! message. The decoder here works in place on the caller's buffer, holds no
//! memory while idle, and rejects invalid UTF-8 at the first bad byte.
//! tungstenite still supplies the handshake's key derivation.

pub mod broadcast;
pub mod chunked;
pub mod client;
pub mod close;
mod compact;
pub mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
mod fields;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
mod head;
pub mod http;
pub mod http1;
pub mod http_client;
pub mod info;
pub mod input;
pub mod limits;
pub mod outbox;
pub mod outgoing;
pub mod proxy;
pub mod reconnect;
pub mod response;
mod rtt;
pub mod server;
pub mod sse;
pub mod sse_reader;
pub mod timer;
#[cfg(feature = "tls")]
pub mod tls;
pub mod utf8;
mod ws;

pub use client::{ClientConn, ClientEvent};
pub use close::{CloseInfo, CloseInitiator, Ended};
pub use decoder::{Decoded, Decoder, Event, Frame, Role};
pub use error::{ConnError, SendError, SendStatus};
pub use input::Input;
pub use limits::{IdleActivity, Limits};
pub use outbox::Outbox;
pub use server::{Flushed, ServerConn, ServerEvent};

/// Why a peer's bytes broke the WebSocket protocol. Each maps to the close
/// code the RFC prescribes ([`ProtocolError::close_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reserved bit set where no negotiated extension allows it: RSV2 or
    /// RSV3 always; RSV1 without permessage-deflate, or on a frame other
    /// than the first of a data message.
    #[error("reserved bits set where no negotiated extension allows them")]
    ReservedBits,
    /// Opcode 0x3-0x7 or 0xB-0xF.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A close, ping or pong without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame over 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A 64-bit payload length with its most significant bit set.
    #[error("invalid 64-bit payload length")]
    InvalidLength,
    /// A client sent an unmasked frame.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame.
    #[error("server frame is masked")]
    MaskedFrame,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("new data frame before the fragmented message ended")]
    ExpectedContinuation,
    /// A close frame with a 1-byte payload.
    #[error("close payload of one byte")]
    InvalidClosePayload,
    /// A close frame carrying a code nobody may send.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// Text (or a close reason) that is not UTF-8.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A compressed message (permessage-deflate) that does not inflate.
    #[error("invalid compressed data")]
    BadCompressedData,
    /// A frame larger than the configured maximum.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The frame's declared payload length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A message larger than the configured maximum.
    #[error("message of at least {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The size the message reached.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
}

impl ProtocolError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedData => 1007,
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}
