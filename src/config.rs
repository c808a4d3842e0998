//! Limits and timeouts, in one place, each default with its trade-off.

use std::time::Duration;

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
    /// Largest HTTP request body; larger gets 413. Default 1 MiB.
    pub max_request_body: usize,
    /// How long to wait for the peer's close frame after sending ours, and
    /// for the peer to close TCP after we shut down writing. Default 5 s.
    pub close_timeout: Duration,
    /// How long `stop()` waits for peers to answer the 1001 close. Default 2 s.
    pub shutdown_timeout: Duration,
    /// Bytes read from one connection per tick before others get their turn
    /// (the rest is read next tick). Default 1 MiB: bounds a tick's work
    /// without slowing a bulk transfer much.
    pub read_budget_per_tick: usize,
    /// Time a client has to send a complete HTTP request (head and body),
    /// counted from connecting or from the previous response; past it the
    /// connection gets 408 and is closed. Default 10 s. This is what stops
    /// slowloris clients that trickle a request to hold a connection.
    pub request_timeout: Duration,
    /// Ping a WebSocket that has sent nothing for this long. Default 30 s;
    /// `None` never pings. Values under 1 ms count as 1 ms.
    pub ping_interval: Option<Duration>,
    /// Close a WebSocket that has sent nothing at all (not even a pong) for
    /// this long, with 1001 "idle timeout". Default 60 s, which with the
    /// default ping interval gives a live client 30 s to answer a ping;
    /// `None` keeps silent connections forever.
    pub idle_timeout: Option<Duration>,
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
}

/// What to do with a channel whose unwritten output reaches
/// [`ServerConfig::max_write_buffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowConsumer {
    /// Close it with 1008 (policy violation) "slow consumer", without waiting
    /// for its answer: it is not reading. The send that hit the cap fails
    /// with [`SendError::Backpressure`](crate::SendError::Backpressure).
    Close,
    /// Keep it, and refuse further messages until it catches up: sends fail
    /// with [`SendError::Backpressure`](crate::SendError::Backpressure) and
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
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(2),
            read_budget_per_tick: 1 << 20,
            request_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_write_buffer: 4 << 20,
            slow_consumer: SlowConsumer::Close,
            allowed_origins: None,
        }
    }
}

/// Automatic reconnection after the connection is lost: delays grow from
/// `initial_delay` by `factor` up to `max_delay`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    /// Delay before the first attempt. Default 500 ms.
    pub initial_delay: Duration,
    /// Cap on the delay. Default 30 s.
    pub max_delay: Duration,
    /// Growth per failed attempt. Default 2.
    pub factor: f64,
    /// Give up after this many attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The delay before attempt `n` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        // A factor below 1 (or NaN) would shrink or break the backoff.
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let secs = self.initial_delay.as_secs_f64() * factor.powi(attempt.min(64) as i32);
        Duration::from_secs_f64(secs.min(self.max_delay.as_secs_f64()))
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
    /// Fail the connection when the server has sent nothing (not even a
    /// pong) for this long: `on_error`, then `on_close` with 1006. Default
    /// `None`.
    pub idle_timeout: Option<Duration>,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = Reconnect::default();
        let d: Vec<u64> = (0..10).map(|i| r.delay(i).as_millis() as u64).collect();
        assert_eq!(&d[..4], &[500, 1000, 2000, 4000]);
        assert_eq!(d[9], 30_000);
        assert_eq!(r.delay(u32::MAX), Duration::from_secs(30));
        let odd = Reconnect {
            factor: -3.0,
            ..Reconnect::default()
        };
        assert_eq!(odd.delay(5), Duration::from_millis(500));
    }
}
