//! Channel ids and what a channel knows about its handshake.

use std::fmt;
use std::net::SocketAddr;

use crate::http::HttpRequest;

/// Identifies one WebSocket connection on a server.
///
/// A small `Copy` value: a slot index plus the slot's generation. When the
/// connection ends, its slot may be reused, but with a new generation, so a
/// stale `Channel` can never address the newer connection; sending to it
/// returns [`SendError::ChannelClosed`](crate::SendError::ChannelClosed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl Channel {
    /// The slot index (unique among open channels, reused after close).
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch{}.{}", self.index, self.gen)
    }
}

/// What the server knows about a channel from its opening handshake: path,
/// query, headers (lower-cased names), peer address, chosen subprotocol.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    pub(crate) request: HttpRequest,
    pub(crate) protocol: Option<String>,
}

impl ChannelInfo {
    /// The handshake's request target: path and query (`/chat?room=1`).
    pub fn target(&self) -> &str {
        self.request.target()
    }

    /// The request path (`/chat`).
    pub fn path(&self) -> &str {
        self.request.path()
    }

    /// The raw query string without `?`, or `""`.
    pub fn query(&self) -> &str {
        self.request.query()
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.request.query_param(name)
    }

    /// A handshake header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// Every handshake header as (lower-cased name, value).
    pub fn headers(&self) -> &[(String, String)] {
        self.request.headers()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.request.peer_addr()
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
}

/// Who started a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseInitiator {
    /// This side: a `close()` call, a protocol violation we detected, a
    /// timeout, or shutdown.
    Local,
    /// The peer: its close frame or its dropping the connection.
    Remote,
}

/// How a WebSocket connection ended, as given to close callbacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's, if it sent a close frame; the one we sent
    /// when we failed the connection; 1006 when it dropped without one.
    pub code: u16,
    /// The reason that came with `code` (may be empty).
    pub reason: String,
    /// Whether both close frames were exchanged before the TCP close.
    pub was_clean: bool,
    /// Who started the close.
    pub initiator: CloseInitiator,
}
