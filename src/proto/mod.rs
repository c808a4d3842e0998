//! The sans-IO protocol core: bytes in, events and bytes out.
//!
//! Nothing in this module touches a socket, a poller or the clock. The driver
//! (`crate::driver`) feeds it what it read and writes out what it produced;
//! tests feed it exact bytes and assert exact bytes.
//!
//! Framing is hvws's own rather than tungstenite's `WebSocketContext`:
//! measured on this machine (see `../shared/STYLE.md`), the context costs
//! 10-16% more CPU per echoed message, allocates its 128 KiB read buffer up
//! front (135 KB per idle connection), and validates UTF-8 only per complete
//! message. The decoder here works in place on the caller's buffer, holds no
//! memory while idle, and rejects invalid UTF-8 at the first bad byte.
//! tungstenite still supplies the handshake's key derivation.

pub mod close;
pub mod decoder;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod http1;
pub mod outgoing;
pub mod utf8;

pub use decoder::{Decoded, Decoder, Event, Role};

/// Why a peer's bytes broke the WebSocket protocol. Each maps to the close
/// code the RFC prescribes ([`ProtocolError::close_code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// RSV1-3 set, but no extension was negotiated.
    #[error("reserved bits set without a negotiated extension")]
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
            ProtocolError::InvalidUtf8 => 1007,
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}
