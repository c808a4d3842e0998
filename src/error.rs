//! Errors. Each variant says what went wrong and what the caller can do.

use std::io;

use crate::proto::handshake::ClientHandshakeError;
use crate::proto::ProtocolError;

/// A call that sends on a channel failed at once; nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The channel is closed, closing, or its id is stale. Not an error as
    /// such when racing a disconnect: the close callback tells you when to
    /// stop sending.
    #[error("channel is closed or closing")]
    ChannelClosed,
    /// A close code that may not be sent: servers may use 1000-1003,
    /// 1007-1014 and 3000-4999; clients 1000 and 3000-4999 (as browsers).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// Close reasons are limited to 123 bytes of UTF-8.
    #[error("close reason of {0} bytes is over the 123-byte limit")]
    ReasonTooLong(usize),
    /// Control frames (ping, pong, close) carry at most 125 bytes.
    #[error("control frame payload of {0} bytes is over the 125-byte limit")]
    ControlFrameTooLarge(usize),
    /// A raw send with an opcode that cannot go there: `Continuation` with
    /// no fragmented message open, another data opcode while one is, or
    /// `Close` (use `close`, which tracks the closing handshake).
    #[error("opcode {0:?} cannot be sent here")]
    InvalidOpcode(crate::Opcode),
    /// The channel's unwritten output is at
    /// [`ServerConfig::max_write_buffer`](crate::ServerConfig::max_write_buffer):
    /// the peer is not reading. The message was dropped; depending on
    /// [`SlowConsumer`](crate::SlowConsumer) the channel is also being closed.
    #[error("peer is not reading: output buffer full")]
    Backpressure,
    /// The server has not been started, or has stopped.
    #[error("server is not running")]
    NotRunning,
}

/// A server call that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the listening socket failed (port in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// `start()`/`tick()` before `init()`.
    #[error("server is not initialized: call init(port) first")]
    NotInitialized,
    /// `init()` twice.
    #[error("server is already initialized")]
    AlreadyInitialized,
    /// `tick()` before `start()`, or after `stop()` finished.
    #[error("server is not running: call start() first")]
    NotRunning,
    /// The poller failed; the reactor cannot go on.
    #[error("poller failed: {0}")]
    Poll(#[source] io::Error),
}

/// A channel failed; given to `on_ws_error` before its close callback.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The peer broke RFC 6455; we closed with the matching code.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The socket failed (reset, broken pipe).
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The peer did not answer our close frame in time.
    #[error("peer did not complete the closing handshake in time")]
    CloseTimeout,
    /// The peer sent nothing, not even a pong, within the idle timeout.
    #[error("peer sent nothing within the idle timeout")]
    IdleTimeout,
    /// The peer stopped reading and its output reached the cap.
    #[error("peer is not reading; output reached the write buffer cap")]
    SlowConsumer,
    /// A callback of the application panicked while handling this channel;
    /// the channel was closed with 1011 (the panic message went to the log).
    #[error("a callback panicked while handling this channel")]
    CallbackPanicked,
}

/// What went wrong in the WebSocket client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL could not be parsed; the message says which part.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scheme hvws cannot speak (`wss://` needs TLS, which hvws does not
    /// have yet; use a TLS-terminating proxy).
    #[error("unsupported URL scheme {0:?}: only ws:// is supported")]
    UnsupportedScheme(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Connecting failed (refused, unreachable).
    #[error("connection failed: {0}")]
    Connect(#[source] io::Error),
    /// The server did not accept the upgrade.
    #[error("handshake failed: {0}")]
    Handshake(#[from] ClientHandshakeError),
    /// The server broke RFC 6455; the client closed with the matching code.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The socket failed after connecting.
    #[error("socket error: {0}")]
    Io(#[source] io::Error),
    /// `send`/`close` while the connection is not open.
    #[error("connection is not open")]
    NotOpen,
    /// An invalid close code, reason or control payload; nothing was sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server did not answer our close frame in time.
    #[error("server did not complete the closing handshake in time")]
    CloseTimeout,
    /// The server sent nothing, not even a pong, within the idle timeout.
    #[error("server sent nothing within the idle timeout")]
    IdleTimeout,
}
