//! Limits and timeouts, in one place, each default with its trade-off.

use std::time::Duration;

use crate::proto::client::Reconnect;
use crate::proto::Limits;

/// Server limits and timeouts.
///
/// ```
/// use std::time::Duration;
/// use hvws::ServerConfig;
/// let config = ServerConfig {
///     max_message_size: 1 << 20,
///     close_timeout: Duration::from_secs(2),
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.max_frame_size, 16 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Open connections (HTTP and WebSocket) at most; further ones get 503
    /// and are closed. Default 10,000: each costs a file descriptor, and
    /// processes here may hold 20,000.
    pub max_connections: usize,
    /// Largest message, in bytes, assembled from its fragments; larger ones
    /// close the channel with 1009. Default 16 MiB: the largest message the
    /// Autobahn suite sends; lower it for games whose messages are small.
    pub max_message_size: usize,
    /// Largest single frame; larger ones close with 1009. Default 16 MiB.
    /// A frame is buffered whole before delivery, so this bounds memory per
    /// connection while one arrives.
    pub max_frame_size: usize,
    /// Longest HTTP request line plus headers; longer gets 431. Default 8 KiB.
    pub max_request_head: usize,
    /// Largest HTTP request body read whole into the request (chunked ones
    /// included); larger gets 413, before the body is sent when the client
    /// asked with `Expect: 100-continue`. Default 1 MiB. Uploads
    /// (`multipart/form-data`) have their own limits, `form_limits`.
    pub max_request_body: usize,
    /// What a form may hold: parts, field and file sizes, the whole body
    /// (`max_total_size` is the upload limit: a `multipart/form-data` body
    /// is parsed as it arrives, files past `memory_threshold` going to
    /// temporary files, so it may be far larger than `max_request_body`).
    pub form_limits: crate::FormLimits,
    /// How long to wait for the peer's close frame after sending ours, and
    /// for the peer to close TCP after we shut down writing. Default 5 s.
    pub close_timeout: Duration,
    /// How long `stop()` waits for peers to answer the 1001 close. Default 2 s.
    pub shutdown_timeout: Duration,
    /// Bytes read from one connection per tick before others get their turn
    /// (the rest is read next tick). Default 1 MiB: bounds a tick's work
    /// without slowing a bulk transfer much.
    pub read_budget_per_tick: usize,
    /// A bound on a whole tick's work, all connections together: messages
    /// handed to the application, bytes read, and socket writes per flush.
    /// When it runs out the tick stops reading (or writing), and the
    /// connections not yet served are served first next tick, round-robin,
    /// so a flood (from one client or many) delays the flooders, not the
    /// frame, and a broadcast to thousands spreads its writes over the
    /// ticks between frames; see [`TickBudget`] for what is counted and
    /// the bound on any client's wait. Default [`TickBudget::UNLIMITED`] (off): the bound is then
    /// `read_budget_per_tick` per ready connection; a finite default would
    /// have to guess what the application's callbacks cost. A server that
    /// may face floods sets it.
    pub tick_budget: TickBudget,
    /// Time a client has to send a complete HTTP request (head and body),
    /// counted from connecting or from the previous response; past it the
    /// connection gets 408 and is closed. Default 10 s. This is what stops
    /// slowloris clients that trickle a request to hold a connection.
    /// An upload (`multipart/form-data`, which may be large) gets another
    /// `request_timeout` for every 16 KiB that arrives, so it only has to
    /// keep 1.6 KiB/s at the default; a trickle below that still times out.
    /// No timer runs while the application owes the answer (a deferred
    /// response, a stream).
    pub request_timeout: Duration,
    /// Ping a WebSocket that has sent nothing for this long. Default 30 s;
    /// `None` never pings. Values under 1 ms count as 1 ms.
    pub ping_interval: Option<Duration>,
    /// Close a WebSocket that showed no activity for this long. Default
    /// 60 s; `None` keeps inactive connections forever.
    ///
    /// What counts as activity is [`ServerConfig::idle_activity`]: by
    /// default any frame, pongs included, so with the default 30 s
    /// `ping_interval` a live client has 30 s to answer a ping and only a
    /// dead or stalled one is closed; with
    /// [`IdleActivity::DataMessages`](crate::IdleActivity::DataMessages)
    /// pings still go out every `ping_interval` (they keep NAT and proxies
    /// open and find dead links), but only the player's own messages keep
    /// the channel. The close is a normal closing handshake with
    /// `idle_close_code` and `idle_close_reason`: `on_ws_error`
    /// ([`WsError::IdleTimeout`](crate::WsError::IdleTimeout)) and
    /// `on_ws_close` follow when the peer answers (clean) or after
    /// `close_timeout` (not clean).
    pub idle_timeout: Option<Duration>,
    /// What keeps a channel from being idle. Default
    /// [`IdleActivity::AnyFrame`](crate::IdleActivity::AnyFrame).
    pub idle_activity: crate::IdleActivity,
    /// The close code an idle channel gets: 1001 (going away) by default, or
    /// the game's own 4000-4999 (so its client knows not to reconnect).
    /// Checked by `init`.
    pub idle_close_code: u16,
    /// The close reason an idle channel gets. Default "idle timeout"; cut
    /// to 123 bytes.
    pub idle_close_reason: String,
    /// Bytes that one flush could not write to a channel (the peer is not
    /// reading them) beyond which it counts as a slow consumer. What a tick
    /// queues is measured at its flush, so a burst of sends, or a message
    /// larger than the cap, is never refused while the peer keeps up.
    /// Default 4 MiB. Output memory per channel stays below this plus what
    /// one tick queues.
    pub max_write_buffer: usize,
    /// What happens to a slow consumer. Default [`SlowConsumer::Close`].
    pub slow_consumer: SlowConsumer,
    /// Browser origins allowed to open WebSockets. `None` (the default)
    /// allows any. With a list, a handshake whose `Origin` header is not in
    /// it (compared case-insensitively, e.g. `https://game.example`) gets
    /// 403; handshakes without `Origin` (non-browser clients) are allowed,
    /// since the header protects browsers from cross-site use only.
    pub allowed_origins: Option<Vec<String>>,
    /// Which handshake headers an open channel keeps for its life, readable
    /// with [`ChannelInfo::header`](crate::ChannelInfo::header). Default
    /// [`KeepHeaders::default`](crate::KeepHeaders::default): `Origin` and
    /// the client-address headers a reverse proxy adds
    /// (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`), a few dozen bytes.
    /// [`KeepHeaders::All`](crate::KeepHeaders::All) keeps the whole
    /// handshake, as before this setting: about 700 bytes more per idle
    /// browser connection, more than doubling what one holds.
    /// [`KeepHeaders::None`](crate::KeepHeaders::None) keeps none.
    /// Whatever is kept, `on_ws_handshake` sees every header.
    pub keep_headers: crate::KeepHeaders,
    /// Binds listeners with `SO_REUSEPORT`, so several servers (one per
    /// thread, each with its own reactor) can listen on one port and the
    /// kernel spreads new connections among them. Default `false`;
    /// [`ServerGroup`](crate::ServerGroup) sets it. Every server sharing a
    /// port must set it, and run as the same user (Linux's rule). Mind that
    /// a second copy of the program then binds the port too, without an
    /// error, and the kernel splits new clients between the two (a
    /// `ServerGroup` checks for that before binding; a server set up by
    /// hand does not).
    pub reuse_port: bool,
    /// permessage-deflate (feature `deflate`): accepted from clients that
    /// offer it (every browser does), with these settings. Default `None`
    /// (off, as in uWebSockets and Node `ws`): compression costs CPU per
    /// message and, with context takeover, memory per connection; see
    /// [`DeflateConfig`](crate::DeflateConfig) for each setting's cost.
    /// `Some(DeflateConfig::server())` keeps no zlib state per connection.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::DeflateConfig>,
}

impl ServerConfig {
    /// What each connection enforces, as the protocol core takes it.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            max_request_head: self.max_request_head,
            max_request_body: self.max_request_body,
            max_upload_body: usize::try_from(self.form_limits.max_total_size).unwrap_or(usize::MAX),
            request_timeout: self.request_timeout,
            close_timeout: self.close_timeout,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            idle_activity: self.idle_activity,
            idle_close_code: self.idle_close_code,
            idle_close_reason: self.idle_close_reason.clone(),
            max_write_buffer: self.max_write_buffer,
            close_slow_consumers: self.slow_consumer == SlowConsumer::Close,
            #[cfg(feature = "deflate")]
            deflate: self.deflate.clone(),
            ..Limits::default()
        }
    }
}

/// How much work one tick may do, all connections together
/// ([`ServerConfig::tick_budget`]): a flood cannot push a game frame past
/// its budget, and no connection is starved by it.
///
/// ```
/// use hvws::{ServerConfig, TickBudget};
/// // At most 256 messages a tick (say 2 ms of callbacks at 8 us each),
/// // 4 MiB read, and 250 socket writes per flush.
/// let config = ServerConfig {
///     tick_budget: TickBudget { messages: 256, bytes: 4 << 20, writes: 250 },
///     ..ServerConfig::default()
/// };
/// assert!(!config.tick_budget.is_unlimited());
/// assert!(ServerConfig::default().tick_budget.is_unlimited());
/// ```
///
/// # What is counted, and why not time
///
/// Messages, because each runs the application's callback, which is
/// where a game's time goes: WebSocket text and binary messages, HTTP
/// requests and WebSocket upgrades. Bytes read, as a backstop for large
/// messages (one 16 MiB message counts as one). Socket writes per flush,
/// because one `write` per receiver is what a frame's broadcast costs
/// (about 6 µs each to 1,000 clients over loopback, measured in
/// `benches/README.md`, "Game loop"). All three are counted the
/// same on every machine, so a budget behaves the same in a test and in
/// production and its bound can be stated and tested; a time budget
/// would depend on the machine and its load, could not be tested on a
/// fake clock, and would cost a clock read per message. Choose
/// `messages` from the measured cost of your callbacks and the frame's
/// budget.
///
/// Pings, pongs and closes are not counted: the protocol answers them
/// itself. They keep their place in their connection's stream, though (a
/// message is never split, reordered or skipped), so one that arrives
/// behind messages the budget left waits with them.
///
/// # How it is spent
///
/// The tick reads its connections in turn: first those left over from
/// the last tick, in order, then those the poller found readable. The
/// budget is checked before each message is handed out and each read,
/// which asks for no more than the budget has left: neither `messages`
/// nor `bytes` is ever exceeded. Each connection still reads at most
/// `read_budget_per_tick`. When the budget runs out, the tick stops
/// reading; the connections it did not get to are served first next
/// tick, in their order, and the one it stopped in (its undelivered
/// messages kept, unsplit) goes after them, behind everyone it made
/// wait, as do those that used up their `read_budget_per_tick`. Accepts
/// (256 a tick), commands from [`ServerHandle`](crate::ServerHandle)s
/// (those queued when the tick began) and deadlines keep their own bounds
/// and run whatever is left of the budget.
///
/// `writes` bounds each flush (the tick's, and each
/// [`Server::flush`](crate::Server::flush)): connections are written in
/// the order their first unsent message was queued, one write each (one
/// call that writes all it can: a `writev` of up to 64 slices at a time,
/// or TLS records; a file body's pieces count one each), and those the
/// budget does not reach keep what is queued for them and are written
/// first by the next flush, before any connection listed after them. (A
/// file body's next piece is read when its connection's turn comes again,
/// behind those listed meanwhile.) Everything sent to
/// one connection in the meantime joins its queue and leaves in the same
/// `write`, so a server that cannot write every client every frame sends
/// fewer, larger writes rather than falling behind. What waits for the
/// budget does not count as a slow consumer's backlog (only what a
/// `write` could not take does). A tick that leaves connections unwritten
/// does not sleep in the poller: in a frame loop that ticks until the next
/// frame ([`Server::tick_until`](crate::Server::tick_until),
/// [`FramePacer`](crate::FramePacer)), the rest of the frame's sends go
/// out in the ticks between frames, `writes` at a time, and the frame
/// itself is bounded. [`Context::unflushed`](crate::Context::unflushed)
/// says how many connections are waiting.
///
/// # The bound on a client's wait
///
/// With `C` connections that have input waiting, a message whose bytes
/// have arrived is handed out within `C` ticks (counting the one that
/// first finds it), fewer than `C * messages` other messages going
/// first: each tick that runs out of budget before reaching its
/// connection moves at least one connection from ahead of it to behind it
/// (the one the tick stopped in, or one that had nothing more), none
/// joins ahead of it, and each connection ahead of it is served once
/// before it is.
/// So a flooder only delays itself: a well-behaved client's message waits
/// for at most one turn of each other busy connection. (The first of its
/// messages, that is; a client that sends more than a turn's worth
/// waits its turn again for the rest, as the flooder does.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickBudget {
    /// Messages handed to the application per tick: WebSocket text and
    /// binary messages, HTTP requests, WebSocket upgrades. At least 1
    /// (`init` checks).
    pub messages: usize,
    /// Bytes read from the sockets per tick, all connections together
    /// (plaintext, under TLS): a backstop for large messages. At least 1
    /// (`init` checks).
    pub bytes: usize,
    /// Socket writes per flush, all connections together. At least 1
    /// (`init` checks).
    pub writes: usize,
}

impl TickBudget {
    /// No bound beyond `read_budget_per_tick` per ready connection (the
    /// default).
    pub const UNLIMITED: TickBudget = TickBudget {
        messages: usize::MAX,
        bytes: usize::MAX,
        writes: usize::MAX,
    };

    /// Whether this is [`TickBudget::UNLIMITED`].
    pub fn is_unlimited(&self) -> bool {
        *self == TickBudget::UNLIMITED
    }
}

impl Default for TickBudget {
    fn default() -> Self {
        TickBudget::UNLIMITED
    }
}

/// What to do with a channel whose unwritten output reaches
/// [`ServerConfig::max_write_buffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowConsumer {
    /// Close it with 1008 (policy violation) "slow consumer", without waiting
    /// for its answer: it is not reading. The send that hit the cap returns
    /// [`SendStatus::Dropped`](crate::SendStatus::Dropped), and
    /// `on_ws_error` ([`WsError::SlowConsumer`](crate::WsError::SlowConsumer))
    /// and `on_ws_close` follow in the same tick.
    Close,
    /// Keep it, and refuse further messages until it catches up: sends
    /// return [`SendStatus::Dropped`](crate::SendStatus::Dropped) and
    /// broadcasts skip it. For games that would rather drop a stale state
    /// update than a player.
    DropMessages,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            max_request_head: 8 << 10,
            max_request_body: 1 << 20,
            form_limits: crate::FormLimits::default(),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(2),
            read_budget_per_tick: 1 << 20,
            tick_budget: TickBudget::UNLIMITED,
            request_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(60)),
            idle_activity: crate::IdleActivity::AnyFrame,
            idle_close_code: 1001,
            idle_close_reason: "idle timeout".to_owned(),
            max_write_buffer: 4 << 20,
            slow_consumer: SlowConsumer::Close,
            allowed_origins: None,
            keep_headers: crate::KeepHeaders::default(),
            reuse_port: false,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// Client limits, options and timeouts.
///
/// ```
/// use hvws::{ClientConfig, Reconnect};
/// let config = ClientConfig {
///     protocols: vec!["chat".into()],
///     reconnect: Some(Reconnect::default()),
///     ..ClientConfig::default()
/// };
/// assert!(config.reconnect.is_some());
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Largest message accepted; larger closes with 1009. Default 16 MiB.
    pub max_message_size: usize,
    /// Largest frame accepted; larger closes with 1009. Default 16 MiB.
    pub max_frame_size: usize,
    /// Subprotocols to offer, in order of preference. Default none.
    pub protocols: Vec<String>,
    /// Extra handshake headers (auth tokens, say). Default none.
    pub headers: Vec<(String, String)>,
    /// Time allowed for TCP connect plus handshake. Default 10 s.
    pub connect_timeout: std::time::Duration,
    /// How long to wait for the server's close frame after sending ours.
    /// Default 5 s.
    pub close_timeout: std::time::Duration,
    /// Reconnect with backoff when the connection is lost (not after
    /// `close()`). Default off.
    pub reconnect: Option<Reconnect>,
    /// Ping the server when it has sent nothing for this long (checked in
    /// `process_event_que`). Default `None`.
    pub ping_interval: Option<Duration>,
    /// Give up on the server when it has sent nothing (not even a pong)
    /// for this long: our 1001 close goes out, then `on_error` and
    /// `on_close`, as the server does with a silent client. Default `None`.
    pub idle_timeout: Option<Duration>,
    /// Bytes that one `process_event_que` could not write (the server is
    /// not reading them) beyond which sends are refused with
    /// [`SendStatus::Dropped`](crate::SendStatus::Dropped) and the
    /// connection is closed with 1008. Default 16 MiB.
    pub max_write_buffer: usize,
    /// The HTTP proxy to tunnel through (`CONNECT`). Default none, and the
    /// environment's proxy variables are not read unless asked for with
    /// [`ClientConfig::proxy_from_env`].
    pub proxy: Option<crate::Proxy>,
    /// What `wss://` connections trust (feature `tls`). Default: the
    /// Mozilla roots.
    #[cfg(feature = "tls")]
    pub tls: crate::ClientTls,
    /// permessage-deflate (feature `deflate`): offered with these settings;
    /// the server may decline. Default `None` (not offered);
    /// `Some(DeflateConfig::client())` offers it.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::DeflateConfig>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            reconnect: None,
            ping_interval: None,
            idle_timeout: None,
            max_write_buffer: 16 << 20,
            proxy: None,
            #[cfg(feature = "tls")]
            tls: crate::ClientTls::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

impl ClientConfig {
    /// Goes through the HTTP proxy at `url` (`http://[user:pass@]host:port`).
    pub fn with_proxy(mut self, url: &str) -> Result<ClientConfig, crate::ClientError> {
        self.proxy = Some(crate::Proxy::http(url)?);
        Ok(self)
    }

    /// Goes through the proxy that `HTTPS_PROXY` (for `wss://`) or
    /// `HTTP_PROXY` (for `ws://`) names, except for hosts in `NO_PROXY`.
    pub fn proxy_from_env(mut self) -> ClientConfig {
        self.proxy = Some(crate::Proxy::from_env());
        self
    }

    /// What the connection enforces, as the protocol core takes it.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            connect_timeout: self.connect_timeout,
            close_timeout: self.close_timeout,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            max_write_buffer: self.max_write_buffer,
            close_slow_consumers: true,
            #[cfg(feature = "deflate")]
            deflate: self.deflate.clone(),
            ..Limits::default()
        }
    }
}

/// HTTP client defaults and limits ([`HttpClient`](crate::HttpClient));
/// each request may override its timeouts, redirects and cap.
///
/// ```
/// use std::time::Duration;
/// use hvws::HttpClientConfig;
/// let config = HttpClientConfig {
///     timeout: Some(Duration::from_secs(5)),
///     max_connections_per_origin: 2,
///     ..HttpClientConfig::default()
/// };
/// assert_eq!(config.max_redirects, 5);
/// ```
#[derive(Clone, Debug)]
pub struct HttpClientConfig {
    /// Time allowed for TCP to connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from `request()` to the last
    /// byte of its response. Default 30 s: a server that never answers
    /// ends in [`HttpClientError::Timeout`](crate::HttpClientError::Timeout)
    /// rather than holding the request forever; `None` for no limit (a
    /// long-lived stream; the blocking calls then use 30 s).
    pub timeout: Option<Duration>,
    /// Redirects followed at most. Default 5, as dasHV.
    pub max_redirects: u32,
    /// Largest response body accepted. Default 16 MiB; the body is held
    /// in memory unless a request says `keep_body(false)`.
    pub max_response_size: u64,
    /// Longest response head. Default 64 KiB; a server that sends an
    /// endless header stops there.
    pub max_response_head: usize,
    /// Connections open at once to one origin (scheme, host, port); more
    /// requests wait for one to be free. Default 6, as browsers.
    pub max_connections_per_origin: usize,
    /// Idle kept-alive connections kept per origin. Default 4.
    pub max_idle_per_origin: usize,
    /// An idle connection older than this is not reused (servers close
    /// theirs after a few seconds: hvws's server after its
    /// `request_timeout`, 10 s). Default 8 s.
    pub idle_timeout: Duration,
    /// Keep the cookies responses set (`Set-Cookie`) and send them back
    /// on the requests (and redirect hops) they match, by the rules of
    /// [`CookieJar`](crate::proto::http_client::CookieJar). Default off: a
    /// client that talks to one API with a token needs none, and a jar
    /// on by default would carry one server's cookies into requests the
    /// caller did not mean to share them with. Also
    /// [`HttpClient::enable_cookies`](crate::HttpClient::enable_cookies).
    pub cookie_jar: bool,
    /// The HTTP proxy requests go through: `https://` ones in a `CONNECT`
    /// tunnel, plain `http://` ones sent to the proxy whole
    /// (`GET http://host/path`), with `Proxy-Authorization` when the
    /// proxy has credentials. Default none, and the environment's proxy
    /// variables are not read unless asked for with
    /// [`HttpClientConfig::proxy_from_env`].
    pub proxy: Option<crate::Proxy>,
    /// What `https://` connections trust (feature `tls`). Default: the
    /// Mozilla roots.
    #[cfg(feature = "tls")]
    pub tls: crate::ClientTls,
}

impl HttpClientConfig {
    /// Goes through the HTTP proxy at `url` (`http://[user:pass@]host:port`).
    ///
    /// ```
    /// let config = hvws::HttpClientConfig::default().with_proxy("http://user:secret@127.0.0.1:3128")?;
    /// assert!(config.proxy.is_some());
    /// # Ok::<(), hvws::HttpClientError>(())
    /// ```
    pub fn with_proxy(mut self, url: &str) -> Result<HttpClientConfig, crate::HttpClientError> {
        self.proxy = Some(crate::Proxy::http(url).map_err(crate::error::proxy_error)?);
        Ok(self)
    }

    /// Goes through the proxy that `HTTPS_PROXY` (for `https://`) or
    /// `HTTP_PROXY` (for `http://`) names, except for hosts in `NO_PROXY`
    /// (as curl reads them, lower-case names first).
    pub fn proxy_from_env(mut self) -> HttpClientConfig {
        self.proxy = Some(crate::Proxy::from_env());
        self
    }
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(30)),
            max_redirects: 5,
            max_response_size: 16 << 20,
            max_response_head: 64 << 10,
            max_connections_per_origin: 6,
            max_idle_per_origin: 4,
            idle_timeout: Duration::from_secs(8),
            cookie_jar: false,
            proxy: None,
            #[cfg(feature = "tls")]
            tls: crate::ClientTls::default(),
        }
    }
}
