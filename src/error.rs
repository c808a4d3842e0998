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
    /// A [`ServerGroup`](crate::ServerGroup) thread panicked (in its
    /// handler's constructor or its loop; the panic message was printed):
    /// fix the code that panicked.
    #[error("server thread {0} panicked")]
    ThreadPanicked(usize),
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

/// Why an HTTP request got no response, handed to
/// [`HvHttpClient::on_error`](crate::HvHttpClient::on_error) or returned by
/// the blocking calls. A response with any status (404, 500) is not an
/// error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpClientError {
    /// The URL could not be parsed; the message says which part. Fix the
    /// URL; nothing was sent.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scheme the client cannot speak: use `http://`, or `https://` in a
    /// build with the `tls` feature.
    #[error("unsupported URL scheme {0:?}: use http://, or https:// with hvws's `tls` feature")]
    UnsupportedScheme(String),
    /// The request could not be built (a header with CR or LF, a file for a
    /// form that cannot be read, a value that is not JSON); the message
    /// says what. Nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host name did not resolve: a typo, or no network.
    #[error("cannot resolve {host}: {source}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Nothing listens at the address (`ECONNREFUSED`): the server is
    /// down or the port is wrong.
    #[error("connection refused by {addr}")]
    Refused {
        /// The address tried last.
        addr: std::net::SocketAddr,
    },
    /// Connecting failed otherwise (unreachable network, say).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried last.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TCP did not connect within the request's connect timeout
    /// ([`ClientRequest::connect_timeout`](crate::ClientRequest::connect_timeout)).
    #[error("connect timed out")]
    ConnectTimeout,
    /// The response was not complete within the request's total timeout
    /// ([`ClientRequest::timeout`](crate::ClientRequest::timeout)), redirects
    /// included. The server may still have acted on the request.
    #[error("request timed out")]
    Timeout,
    /// TLS with the server failed (feature `tls`): its certificate is not
    /// trusted (add its CA with
    /// [`ClientTls::add_ca_pem`](crate::ClientTls::add_ca_pem) in
    /// [`HttpClientConfig::tls`](crate::HttpClientConfig::tls)), not valid
    /// for the host, expired, or the handshake broke.
    #[cfg(feature = "tls")]
    #[error("{reason}")]
    Tls {
        /// The server's host.
        host: String,
        /// What failed.
        kind: crate::proto::tls::TlsFailure,
        /// What failed, in words.
        reason: String,
    },
    /// The client's TLS settings could not be made (a bad CA file).
    #[cfg(feature = "tls")]
    #[error("TLS settings: {0}")]
    TlsSetup(#[from] crate::tls::TlsError),
    /// The server's answer is not HTTP/1.x, or breaks it (a malformed
    /// head, a chunk size that overflows, a head over the cap, a redirect
    /// without a usable `Location`); the message says what.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The response body is larger than the request's cap
    /// ([`ClientRequest::max_response_size`](crate::ClientRequest::max_response_size));
    /// raise it, or stream the body with `keep_body(false)` and a larger cap.
    #[error("response larger than the cap of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// More redirects than allowed (5 by default), or a redirect loop.
    #[error("too many redirects (more than {limit}), last to {location}")]
    TooManyRedirects {
        /// The limit.
        limit: u32,
        /// Where the last one pointed.
        location: String,
    },
    /// A redirect from `https://` to `http://`, which is never followed:
    /// it would send the request in clear. Request the `http://` URL
    /// yourself if you mean to.
    #[error("refused to follow a redirect from https to {location}")]
    InsecureRedirect {
        /// Where it pointed.
        location: String,
    },
    /// The HTTP proxy did not open a `CONNECT` tunnel for an `https://`
    /// request: it refused (407: give credentials in the proxy URL; 403:
    /// it does not allow the target), or did not speak HTTP. A plain
    /// `http://` request through a proxy gets the proxy's refusal as a
    /// response instead (status 407, say), as curl shows it.
    #[error("proxy {proxy}: {source}")]
    Proxy {
        /// The proxy, without credentials.
        proxy: String,
        /// What it answered.
        source: crate::proto::proxy::TunnelError,
    },
    /// The server closed the connection before the response was complete
    /// (an idempotent request on a reused connection was already retried
    /// once).
    #[error("the server closed the connection before the response was complete")]
    Closed,
    /// The socket failed after connecting (reset, broken pipe).
    #[error("socket error: {0}")]
    Io(#[source] io::Error),
}

/// A proxy URL the WebSocket client's parser refused, as the HTTP client
/// reports it.
pub(crate) fn proxy_error(e: ClientError) -> HttpClientError {
    match e {
        ClientError::InvalidUrl { url, reason } => HttpClientError::InvalidUrl { url, reason },
        other => HttpClientError::InvalidRequest(other.to_string()),
    }
}

impl From<crate::proto::http_client::ExchangeError> for HttpClientError {
    fn from(e: crate::proto::http_client::ExchangeError) -> HttpClientError {
        use crate::proto::http_client::ExchangeError as E;
        match e {
            E::BodyTooLarge { limit } => HttpClientError::TooLarge { limit },
            E::ClosedBeforeResponse | E::Truncated => HttpClientError::Closed,
            E::ConnectTimeout => HttpClientError::ConnectTimeout,
            E::Timeout => HttpClientError::Timeout,
            E::HeadTooLarge { limit } => HttpClientError::BadResponse(format!("response head over {limit} bytes")),
            E::Chunked(c) => HttpClientError::BadResponse(format!("malformed chunked body: {c}")),
            E::BadResponse(what) => HttpClientError::BadResponse(what),
        }
    }
}
