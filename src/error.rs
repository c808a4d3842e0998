//! Errors. Each variant says what went wrong and what the caller can do.

use std::io;

use crate::proto::handshake::ClientHandshakeError;
use crate::proto::{ConnError, ProtocolError, SendError};

/// A server call that could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A certificate was given to a server with no TLS listener: bind one
    /// with `init_tls` or `listen_tls_addr` first.
    #[error("the server has no TLS listener to use the certificate")]
    NoTlsListener,
    /// A [`ServerConfig`](crate::ServerConfig) value cannot work; the
    /// message names the field and what it accepts.
    #[error("invalid server configuration: {0}")]
    InvalidConfig(String),
    /// A route pattern registered in
    /// [`on_init`](crate::HvWebServer::on_init) is malformed or conflicts
    /// with another; the [`RouteError`](crate::RouteError) says which and
    /// how to fix it. The listener `init` bound is closed again: fix the
    /// pattern and call `init` again.
    #[error("invalid route: {0}")]
    InvalidRoute(#[from] crate::http::RouteError),
}

/// A channel failed; given to `on_ws_error` before its close callback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum ClientError {
    /// The URL could not be parsed; the message says which part.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scheme hvws cannot speak. Use `ws://`, or `wss://` in a build with
    /// the `tls` feature.
    #[error("unsupported URL scheme {0:?}: use ws://, or wss:// with hvws's `tls` feature")]
    UnsupportedScheme(String),
    /// TLS with the server failed (feature `tls`): its certificate is not
    /// trusted (add its CA with
    /// [`ClientTls::add_ca_pem`](crate::ClientTls::add_ca_pem)), not valid
    /// for the host, expired, or the handshake broke. `kind` says which for
    /// code, `reason` in words.
    #[cfg(feature = "tls")]
    #[error("{reason}")]
    Tls {
        /// The server's host.
        host: String,
        /// What failed.
        kind: crate::proto::tls::TlsFailure,
        /// What failed, in words ("certificate not trusted for 127.0.0.1:
        /// UnknownIssuer ...").
        reason: String,
    },
    /// The client's TLS settings could not be made (a bad CA file).
    #[cfg(feature = "tls")]
    #[error("TLS settings: {0}")]
    TlsSetup(#[from] crate::tls::TlsError),
    /// The HTTP proxy did not open a tunnel: it refused (407: give
    /// credentials; 403: target not allowed), or did not speak HTTP.
    #[error("proxy {proxy}: {source}")]
    Proxy {
        /// The proxy, without credentials.
        proxy: String,
        /// What it answered.
        source: crate::proto::proxy::TunnelError,
    },
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
    /// An invalid close code, reason or control payload; nothing was sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The server did not answer our close frame in time.
    #[error("server did not complete the closing handshake in time")]
    CloseTimeout,
    /// The server sent nothing, not even a pong, within the idle timeout.
    #[error("server sent nothing within the idle timeout")]
    IdleTimeout,
    /// The server stopped reading and our output reached the write cap;
    /// the client closed with 1008.
    #[error("server is not reading; output reached the write buffer cap")]
    SlowConsumer,
}

impl From<ConnError> for WsError {
    fn from(e: ConnError) -> WsError {
        match e {
            ConnError::Protocol(p) => WsError::Protocol(p),
            ConnError::CloseTimeout => WsError::CloseTimeout,
            ConnError::IdleTimeout => WsError::IdleTimeout,
            ConnError::SlowConsumer => WsError::SlowConsumer,
            // Client-side failures cannot happen on a server connection.
            other => WsError::Io(io::Error::other(other)),
        }
    }
}

impl From<ConnError> for ClientError {
    fn from(e: ConnError) -> ClientError {
        match e {
            ConnError::Protocol(p) => ClientError::Protocol(p),
            ConnError::CloseTimeout => ClientError::CloseTimeout,
            ConnError::IdleTimeout => ClientError::IdleTimeout,
            ConnError::Handshake(h) => ClientError::Handshake(h),
            ConnError::ConnectTimeout => ClientError::Connect(io::ErrorKind::TimedOut.into()),
            ConnError::SlowConsumer => ClientError::SlowConsumer,
        }
    }
}
