//! The Redis pub/sub bridge (feature `redis`): topics published on one
//! process reach the subscribers on every process connected to the same
//! Redis.
//!
//! The hub (which links the reactors of one process) hands every local
//! publish to [`BridgeLink::publish`] and takes what other processes
//! published from [`BridgeSink::deliver`]. Local delivery never waits for
//! Redis: it is the hub's, and it goes on while Redis is slow, down or
//! restarting.
//!
//! # Channel naming: one Redis channel per namespace
//!
//! Every message of a namespace goes to the one Redis channel
//! `hvws:{namespace}`, and every node subscribes to it; the topic travels
//! inside the [envelope](envelope). This is what Socket.IO's Redis adapter
//! does for a namespace's broadcasts (`socket.io#/#`; its
//! `socket.io#/#room#` channels are still caught by every node through one
//! pattern subscription), and the opposite of Centrifugo's Redis engine,
//! which gives each of its channels its own Redis channel and subscribes a
//! node to it only while the node has a subscriber there.
//!
//! - What it buys: one `SUBSCRIBE` per node, made once and made again
//!   after every reconnect, with nothing to keep in step with the topic
//!   table; topics may be any string (no escaping, no pattern syntax); and
//!   Redis delivers one channel's messages to a subscriber in publish
//!   order, so one node's messages arrive in order, and exactly once per
//!   connection (no message is on two channels a node listens to).
//! - What it costs: every node receives (and drops) messages for topics
//!   none of its clients want. With per-topic channels a node would get
//!   only what it needs, at the price of a `SUBSCRIBE`/`UNSUBSCRIBE` on
//!   Redis for each topic's first subscriber and last leaver, a race
//!   between those and publishes, and a resubscription of every topic
//!   after a reconnect. For a game's cluster of a few processes the
//!   namespace channel is the simpler and cheaper one; a deployment with
//!   many processes and very selective topics would want per-topic
//!   channels (or several namespaces).
//!
//! # Threads
//!
//! The bridge is the one place in hvws that runs threads of its own: the
//! `redis` crate's synchronous API blocks, and a tick must not. A
//! publisher thread (`hvws-redis-pub`) takes messages from a bounded queue
//! and sends them with `PUBLISH` (pipelined, many per round trip); a
//! subscriber thread (`hvws-redis-sub`) holds the subscription and hands
//! what arrives to the sink. Every blocking Redis call has a timeout, so
//! [`BridgeLink::stop`] joins both in bounded time.
//!
//! # Delivery: at most once, never twice
//!
//! Redis pub/sub keeps nothing: a node that is not subscribed when a
//! message is published never sees it, and nothing is replayed after a
//! reconnect, so reconnects cannot duplicate. A `PUBLISH` that fails is
//! not retried (it may have reached Redis before the connection broke) but
//! counted in [`BridgeStats::dropped`], as are messages published while
//! Redis is away and messages that find the queue full. A message that
//! reaches Redis while a node is subscribed reaches that node exactly
//! once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::frame::Opcode;

pub(crate) mod envelope;
mod link;
mod probe;

pub(crate) use link::BridgeLink;
pub use probe::{BridgeProbe, ProbeEvent};

/// The default bound on messages waiting to be published.
const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// The longest namespace accepted, in bytes.
const MAX_NAMESPACE_LEN: usize = 256;

/// A bridge between this process's topics and the other processes' through
/// Redis pub/sub; what an application makes and hands to the hub.
///
/// Making one checks the URL and the namespace but does not connect: Redis
/// may be down when the program starts, and the bridge connects (and
/// reconnects) on its own once started. Processes that share a Redis and a
/// namespace share their topics; another namespace on the same Redis is
/// another, separate cluster.
///
/// Once started, the bridge runs two threads of its own (a publisher and
/// a subscriber; the only threads hvws starts, because the `redis` crate's
/// synchronous client blocks and a tick must not). All of a namespace's
/// messages travel on the one Redis channel `hvws:{namespace}`, each in a
/// small binary envelope that names its topic and its origin node.
/// Delivery is at most once and never twice: what is published while
/// Redis is away, or finds the outgoing queue full, is dropped and counted
/// ([`BridgeStats::dropped`]), never queued without bound, and nothing is
/// replayed after a reconnect.
///
/// ```
/// use std::time::Duration;
/// use hvws::RedisBridge;
///
/// let bridge = RedisBridge::new("redis://127.0.0.1:6379/0", "game-eu")?
///     .with_queue_capacity(50_000)
///     .with_backoff(Duration::from_millis(50), Duration::from_secs(2));
/// println!("this process is node {:016x}", bridge.node_id());
/// # Ok::<(), hvws::RedisBridgeError>(())
/// ```
pub struct RedisBridge {
    pub(crate) client: ::redis::Client,
    pub(crate) channel: String,
    pub(crate) node_id: u64,
    pub(crate) queue_capacity: usize,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl fmt::Debug for RedisBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show where, not how.
        let info = self.client.get_connection_info();
        f.debug_struct("RedisBridge")
            .field("addr", &info.addr().to_string())
            .field("channel", &self.channel)
            .field("node_id", &format_args!("{:016x}", self.node_id))
            .field("queue_capacity", &self.queue_capacity)
            .field("backoff", &(self.backoff_initial..self.backoff_max))
            .finish()
    }
}

impl RedisBridge {
    /// A bridge to the Redis at `url` (`redis://host:port[/db]`, with
    /// `redis://:password@host:port` or `redis://user:password@...` for
    /// authentication) for the processes of `namespace`, whose messages
    /// travel on the Redis channel `hvws:{namespace}`.
    ///
    /// Checks the URL without connecting. Fails with
    /// [`RedisBridgeError::InvalidUrl`] for a URL the bridge cannot use
    /// (another scheme, `rediss://` TLS, a Unix socket, a malformed one) and
    /// [`RedisBridgeError::InvalidNamespace`] for an empty namespace or
    /// one longer than 256 bytes.
    ///
    /// ```
    /// assert!(hvws::RedisBridge::new("redis://127.0.0.1:6379", "lobby").is_ok());
    /// assert!(hvws::RedisBridge::new("http://127.0.0.1:6379", "lobby").is_err());
    /// assert!(hvws::RedisBridge::new("redis://127.0.0.1:6379", "").is_err());
    /// ```
    pub fn new(url: &str, namespace: &str) -> Result<RedisBridge, RedisBridgeError> {
        let invalid = |reason: &str| RedisBridgeError::InvalidUrl {
            reason: reason.to_string(),
        };
        if !url.starts_with("redis://") {
            return Err(invalid(
                "the scheme must be redis:// (TLS and Unix sockets are not supported)",
            ));
        }
        let client = ::redis::Client::open(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(client.get_connection_info().addr(), ::redis::ConnectionAddr::Tcp(..)) {
            return Err(invalid("only plain TCP addresses are supported"));
        }
        if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN {
            return Err(RedisBridgeError::InvalidNamespace { len: namespace.len() });
        }
        Ok(RedisBridge {
            client,
            channel: format!("hvws:{namespace}"),
            node_id: rand::random(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        })
    }

    /// How many messages may wait to be published (default 10,000). A
    /// publish that finds the queue full is dropped and counted in
    /// [`BridgeStats::dropped`]: the queue absorbs bursts and short Redis
    /// stalls without holding unbounded memory. At least 1.
    ///
    /// ```
    /// let bridge = hvws::RedisBridge::new("redis://127.0.0.1", "ns")?.with_queue_capacity(1_000);
    /// # Ok::<(), hvws::RedisBridgeError>(())
    /// ```
    pub fn with_queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = messages.max(1);
        self
    }

    /// The delays between connection attempts while Redis is away: from
    /// `initial` (default 100 ms), doubling per failed attempt, up to `max`
    /// (default 5 s), each with up to half of it taken off at random so
    /// that many processes do not reconnect in step after a Redis restart.
    /// The delays start over from `initial` once a connection succeeds.
    ///
    /// ```
    /// use std::time::Duration;
    /// let bridge = hvws::RedisBridge::new("redis://127.0.0.1", "ns")?
    ///     .with_backoff(Duration::from_millis(20), Duration::from_secs(1));
    /// # Ok::<(), hvws::RedisBridgeError>(())
    /// ```
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_initial);
        self
    }

    /// This bridge's node id: random, different for each bridge made. It
    /// travels with every message the bridge publishes, so the bridge can
    /// recognise (and drop) its own messages when Redis sends them back.
    ///
    /// ```
    /// let a = hvws::RedisBridge::new("redis://127.0.0.1", "ns")?;
    /// let b = hvws::RedisBridge::new("redis://127.0.0.1", "ns")?;
    /// assert_ne!(a.node_id(), b.node_id());
    /// # Ok::<(), hvws::RedisBridgeError>(())
    /// ```
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The Redis channel this bridge publishes and listens on.
    ///
    /// ```
    /// let bridge = hvws::RedisBridge::new("redis://127.0.0.1", "lobby")?;
    /// assert_eq!(bridge.redis_channel(), "hvws:lobby");
    /// # Ok::<(), hvws::RedisBridgeError>(())
    /// ```
    pub fn redis_channel(&self) -> &str {
        &self.channel
    }

    /// Spawns the bridge's two threads and returns the link the hub keeps.
    pub(crate) fn start(self, sink: Arc<dyn BridgeSink>) -> BridgeLink {
        link::start(self, sink)
    }
}

/// Why a [`RedisBridge`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBridgeError {
    /// The URL is not one the bridge can use. Give
    /// `redis://host:port[/db]`, with `:password@` or `user:password@`
    /// before the host if Redis wants authentication; TLS (`rediss://`)
    /// and Unix sockets are not supported.
    #[error("invalid Redis URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The namespace is empty or longer than 256 bytes; pick a short name
    /// shared by the processes that should see each other's topics.
    #[error("invalid bridge namespace: {len} bytes, give 1 to 256")]
    InvalidNamespace {
        /// The namespace's length in bytes.
        len: usize,
    },
}

/// Where the bridge's link to Redis stands, as reported to the hub.
///
/// ```
/// # fn f(state: hvws::BridgeState) {
/// match state {
///     hvws::BridgeState::Connected => println!("topics reach the other processes"),
///     hvws::BridgeState::Down { error, retry_in } => {
///         println!("Redis unreachable ({error}); retrying in {retry_in:?}; local delivery goes on")
///     }
///     _ => println!("connecting"),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BridgeState {
    /// Connecting (or reconnecting) to Redis and subscribing; what is
    /// published now is dropped.
    Connecting,
    /// Both connections are up and the subscription is in place: messages
    /// travel both ways.
    Connected,
    /// A connection failed or was lost; the bridge tries again after
    /// `retry_in`. Messages published meanwhile are dropped and counted.
    Down {
        /// The last error, as text.
        error: String,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
}

/// The bridge's counters since it started; each only grows.
///
/// ```
/// let stats = hvws::BridgeStats::default();
/// assert_eq!(stats.published + stats.dropped, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Messages Redis accepted (`PUBLISH` answered).
    pub published: u64,
    /// Messages from other nodes handed to the hub.
    pub received: u64,
    /// Messages not published: the queue was full, Redis was away, or the
    /// `PUBLISH` failed (not retried, so a message is never sent twice);
    /// also messages that cannot travel (not text or binary, 4 GiB or more).
    pub dropped: u64,
    /// This node's own messages that Redis sent back, skipped.
    pub own_echoes: u64,
    /// Times the bridge became connected again after losing Redis.
    pub reconnects: u64,
    /// Messages on the channel that were not envelopes this version reads
    /// (another version, another program's, corrupt), skipped.
    pub decode_errors: u64,
}

/// What the hub gives the bridge: where messages from other processes and
/// state changes go. Called from the bridge's threads.
pub(crate) trait BridgeSink: Send + Sync {
    /// Messages that came from other processes, in the order Redis
    /// delivered them (own echoes already dropped); one batch per read.
    fn deliver(&self, batch: Vec<Remote>);
    /// The bridge connected, lost its connection, etc.
    fn state_changed(&self, state: BridgeState);
}

/// A message another process published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Remote {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// `Text` or `Binary`.
    pub opcode: Opcode,
    /// Its bytes.
    pub data: Arc<[u8]>,
}
