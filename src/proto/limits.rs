//! The limits and timeouts a connection enforces, as the core sees them:
//! `ServerConfig` and `ClientConfig` are turned into one of these at the
//! edge, once per server or client, and every connection borrows it.

use std::time::Duration;

/// What a connection allows and how long it waits. One value serves every
/// connection of a server (it is passed to each call, not stored per
/// connection, so an idle connection does not pay for it).
///
/// ```
/// let limits = hvws::proto::Limits::default();
/// assert_eq!(limits.max_message_size, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted (1009 past it).
    pub max_frame_size: usize,
    /// Largest message accepted, fragments together (1009 past it).
    pub max_message_size: usize,
    /// Server: longest request line plus headers (431 past it).
    pub max_request_head: usize,
    /// Server: largest request body read whole into the request (413 past
    /// it).
    pub max_request_body: usize,
    /// Server: largest `multipart/form-data` body, which is handed out in
    /// pieces as it arrives rather than held (413 past it).
    pub max_upload_body: usize,
    /// Server: time allowed for a whole HTTP request, from connecting or
    /// from the previous answer (408 past it).
    pub request_timeout: Duration,
    /// Client: time allowed for TCP connect plus the opening handshake.
    pub connect_timeout: Duration,
    /// How long to wait for the peer's close frame after ours, and for the
    /// peer to close TCP after our last bytes.
    pub close_timeout: Duration,
    /// Ping a WebSocket peer silent for this long.
    pub ping_interval: Option<Duration>,
    /// Close a WebSocket whose peer showed no activity (see
    /// `idle_activity`) for this long.
    pub idle_timeout: Option<Duration>,
    /// What counts as activity for `idle_timeout`.
    pub idle_activity: IdleActivity,
    /// The code of the idle close (1001 by default; a game's own 4xxx, say).
    pub idle_close_code: u16,
    /// The reason of the idle close ("idle timeout" by default).
    pub idle_close_reason: String,
    /// Unwritten bytes (as of the last flush) past which a peer is a slow
    /// consumer.
    pub max_write_buffer: usize,
    /// Whether a slow consumer is closed with 1008 (else its messages are
    /// dropped until it catches up).
    pub close_slow_consumers: bool,
    /// Server: the `Date` header's value for answers (RFC 9110 §6.6.1: an
    /// origin server with a clock sends one). The core reads no clock: its
    /// driver refreshes this once a second. Empty sends none (the default,
    /// so tests see exact bytes).
    pub date: String,
    /// permessage-deflate: offered (client) or accepted (server) with these
    /// settings; `None` never compresses.
    #[cfg(feature = "deflate")]
    pub deflate: Option<super::deflate::DeflateConfig>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            max_request_head: 8 << 10,
            max_request_body: 1 << 20,
            max_upload_body: 64 << 20,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            ping_interval: None,
            idle_timeout: None,
            idle_activity: IdleActivity::AnyFrame,
            idle_close_code: 1001,
            idle_close_reason: "idle timeout".to_owned(),
            max_write_buffer: 4 << 20,
            close_slow_consumers: true,
            date: String::new(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

/// What keeps a WebSocket from being idle.
///
/// ```
/// use hvws::{IdleActivity, ServerConfig};
/// use std::time::Duration;
///
/// // A game drops players who stop playing, even if their client still
/// // answers pings, with its own close code.
/// let config = ServerConfig {
///     idle_timeout: Some(Duration::from_secs(10)),
///     idle_activity: IdleActivity::DataMessages,
///     idle_close_code: 4001,
///     idle_close_reason: "idle".into(),
///     ..ServerConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdleActivity {
    /// Any frame from the peer, pongs and pings included: the idle timeout
    /// finds dead or stalled peers (the transport's view).
    #[default]
    AnyFrame,
    /// Only whole data messages (text or binary): the idle timeout finds
    /// players who stopped playing, however well their client answers
    /// pings (the game's view).
    DataMessages,
}
