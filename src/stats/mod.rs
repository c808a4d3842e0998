//! The numbers an operator watches: the counters the tick bumps where
//! things happen ([`Counters`], plain integers in the connection table),
//! their snapshot ([`Stats`]), and that snapshot in the Prometheus text
//! format.
//!
//! # Where each figure comes from
//!
//! Counters are bumped with a plain `+=` where the event happens: accepts
//! in the accept step, reads and writes in the read and flush steps
//! (`steps.rs`), handshakes, HTTP requests, messages in and closes in the
//! event path (`events.rs`), messages out and dropped sends where a send is
//! queued (`table.rs`). Nothing per message touches a map or allocates;
//! the only growing thing is the list of close codes, which grows when a
//! code is first seen, on a close.
//!
//! The gauges (open connections, open WebSockets, bytes buffered) are
//! kept as they change, so a snapshot costs the same with 10 connections
//! or 10,000 and the tick's cost still grows only with the ready work.
//!
//! # The Prometheus text format: written here, not with `prometheus-client`
//!
//! `prometheus-client` needs no runtime (it is synchronous), and it can
//! encode a snapshot without an atomic per metric (a `Collector` that
//! makes `ConstCounter`s and `ConstGauge`s on each scrape). It was left
//! out anyway: it still wants a `Registry` to drive the collector; it
//! writes OpenMetrics (`application/openmetrics-text`, counters typed
//! without their `_total`, a closing `# EOF`) rather than the
//! `text/plain; version=0.0.4` format asked for; and it would add a
//! proc-macro derive crate (with `syn`) and `dtoa`/`itoa`/`parking_lot` to
//! every build. The 0.0.4 format is small and stable (a `# HELP` and a
//! `# TYPE` line per metric, then its samples; label values escape `\`,
//! `"` and newline), so [`Stats::write_prometheus`] writes it from a small
//! table of (name, help, type, value) rows in about forty lines: a new
//! figure is one more row in `Stats::rows`.

mod prometheus;

use crate::error::WsError;
use crate::proto::ServerEvent;
use crate::table::Core;

/// The `Content-Type` of the Prometheus text format, version 0.0.4.
pub(crate) const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The counters the tick bumps; one field of the connection table.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_accepted: u64,
    pub http_requests: u64,
    pub handshakes_accepted: u64,
    pub handshakes_refused: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub writes: u64,
    pub publishes: u64,
    /// Sum of every connection's output left unwritten by its last flush.
    pub buffered: u64,
    pub slow_consumer_closes: u64,
    pub slow_consumer_drops: u64,
    pub ticks: u64,
    /// (close code, count), sorted by code.
    closes: Vec<(u16, u64)>,
}

impl Counters {
    /// A message the peer sent, about to reach the application.
    #[inline]
    pub fn received(&mut self, event: &ServerEvent<'_>) {
        let len = match event {
            ServerEvent::Text(t) => t.len(),
            ServerEvent::Binary(b) => b.len(),
            _ => return,
        };
        self.messages_in += 1;
        self.bytes_in += len as u64;
    }

    /// A send's outcome: `messages` whole messages (0 or 1) and `bytes`
    /// payload bytes queued, or a send a slow consumer cost.
    #[inline]
    pub fn sent(&mut self, status: crate::SendStatus, messages: u64, bytes: usize) {
        match status {
            crate::SendStatus::Queued => {
                self.messages_out += messages;
                self.bytes_out += bytes as u64;
            }
            crate::SendStatus::Dropped => self.slow_consumer_drops += 1,
            _ => {}
        }
    }

    /// A WebSocket ended with `code` (1005: no code in the peer's close;
    /// 1006: no closing handshake at all).
    pub fn closed(&mut self, code: u16, error: Option<&WsError>) {
        match self.closes.binary_search_by_key(&code, |&(c, _)| c) {
            Ok(i) => self.closes[i].1 += 1,
            Err(i) => self.closes.insert(i, (code, 1)),
        }
        if matches!(error, Some(WsError::SlowConsumer)) {
            self.slow_consumer_closes += 1;
        }
    }

    /// A connection's flush left `now` bytes unwritten, where the one
    /// before left `before`.
    #[inline]
    pub fn backlog_moved(&mut self, before: usize, now: usize) {
        self.buffered = (self.buffered + now as u64).saturating_sub(before as u64);
    }
}

impl Core {
    /// The figures as of now.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        self.stats_into(&mut stats);
        stats
    }

    /// Writes the figures into `out`, reusing its allocation: once `out`
    /// has seen as many close codes as there are, this allocates nothing
    /// (every other field is an integer, and `Vec::clone_from` of `Copy`
    /// items copies into the buffer it has when it is large enough).
    pub(crate) fn stats_into(&self, out: &mut Stats) {
        let c = &self.stats;
        out.connections = self.conns.len() as u64;
        out.websockets = self.live as u64;
        out.connections_accepted = c.connections_accepted;
        out.http_requests = c.http_requests;
        out.handshakes_accepted = c.handshakes_accepted;
        out.handshakes_refused = c.handshakes_refused;
        out.closes.clone_from(&c.closes);
        out.messages_in = c.messages_in;
        out.messages_out = c.messages_out;
        out.bytes_in = c.bytes_in;
        out.bytes_out = c.bytes_out;
        out.bytes_read = c.bytes_read;
        out.bytes_written = c.bytes_written;
        out.bytes_buffered = c.buffered;
        out.slow_consumer_closes = c.slow_consumer_closes;
        out.slow_consumer_drops = c.slow_consumer_drops;
        out.ticks = c.ticks;
        out.writes = c.writes;
        out.publishes = c.publishes;
        out.topics = self.topics.len() as u64;
        out.subscriptions = self.topics.subscriptions() as u64;
        #[cfg(feature = "redis")]
        {
            out.bridge = self.hub.as_ref().and_then(|h| h.bridge()).map(|link| {
                let up = matches!(link.state(), crate::BridgeState::Connected);
                (up, link.stats())
            });
        }
    }

    /// The end of a tick: counts it, and publishes the figures to the
    /// handles. One uncontended lock and integer copies; no allocation
    /// (see [`Core::stats_into`]).
    pub(crate) fn end_tick(&mut self) {
        self.stats.ticks += 1;
        let shared = self.handle.shared_stats();
        let mut published = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.stats_into(&mut published);
    }
}

/// What the server has done and holds, as of one moment: from
/// [`Server::stats`](crate::Server::stats),
/// [`Context::stats`](crate::Context::stats) or
/// [`ServerHandle::stats`](crate::ServerHandle::stats) (the last as of the
/// server's last tick).
///
/// Counters (`_total` in the Prometheus names) count from the server's
/// creation and only grow; gauges are the state now. Message figures are
/// WebSocket data messages (text and binary, not pings, pongs or closes)
/// and their payload bytes as the application sees them (before
/// permessage-deflate compresses them, after it inflates them); a
/// broadcast counts once per receiver. `bytes_read` and `bytes_written`
/// are everything the connections read and wrote, HTTP and framing
/// included (plaintext, under TLS).
///
/// ```
/// let stats = hvws::Stats::default();
/// assert_eq!(stats.closes_with(1000), 0);
/// let text = stats.to_prometheus();
/// assert!(text.contains("# TYPE hvws_ws_closes_total counter\n"));
/// assert!(text.contains("\nhvws_websockets 0\n"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open TCP connections: HTTP, WebSocket, and those closing (gauge).
    pub connections: u64,
    /// WebSockets opened whose close the application has not yet heard
    /// of, as [`Server::channel_count`](crate::Server::channel_count)
    /// (gauge).
    pub websockets: u64,
    /// TCP connections accepted (refused ones with 503 included).
    pub connections_accepted: u64,
    /// HTTP requests handed to the routes (uploads included; WebSocket
    /// upgrades not).
    pub http_requests: u64,
    /// WebSocket handshakes accepted.
    pub handshakes_accepted: u64,
    /// Valid WebSocket upgrade requests refused: by origin, by route, or by
    /// the application's [`on_ws_handshake`](crate::HvWebServer::on_ws_handshake).
    /// (Malformed ones are answered 400 by the protocol core and are not
    /// counted here.)
    pub handshakes_refused: u64,
    /// WebSocket closes as (close code, count), sorted by code: the code
    /// the application's `on_ws_close` saw. 1005 is a close frame without
    /// a code, 1006 an end without a closing handshake (a dropped
    /// connection, a stop's deadline).
    pub closes: Vec<(u16, u64)>,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages queued to send (per receiver).
    pub messages_out: u64,
    /// Payload bytes of the data messages received.
    pub bytes_in: u64,
    /// Payload bytes of the data messages queued to send.
    pub bytes_out: u64,
    /// Bytes read from the connections (HTTP and frames).
    pub bytes_read: u64,
    /// Bytes written to the connections (HTTP and frames).
    pub bytes_written: u64,
    /// Bytes queued and not yet taken by the sockets, summed over the
    /// connections as of each one's last flush (gauge). What TLS holds
    /// after encrypting is not counted.
    pub bytes_buffered: u64,
    /// WebSockets closed (1008) for not reading what they were sent.
    pub slow_consumer_closes: u64,
    /// Sends refused because their receiver was not reading
    /// ([`SendStatus::Dropped`](crate::SendStatus::Dropped)).
    pub slow_consumer_drops: u64,
    /// Ticks run.
    pub ticks: u64,
    /// Socket writes: one per connection with output per flush (more
    /// only when the socket takes part of a large buffer at a time), so
    /// everything queued for a channel in a tick, sends and publishes
    /// alike, leaves in one.
    pub writes: u64,
    /// Publishes made on this server (`Context::publish` and the handle's),
    /// not counting those that came from other servers of its hub.
    pub publishes: u64,
    /// Topics with at least one subscriber on this server (gauge).
    pub topics: u64,
    /// Subscriptions over every topic of this server (gauge).
    pub subscriptions: u64,
    /// The Redis bridge of the server's hub, if it has one (feature
    /// `redis`): whether it is connected now, and its counters (the same
    /// on every server of the hub: the bridge is the hub's).
    #[cfg(feature = "redis")]
    pub bridge: Option<(bool, crate::BridgeStats)>,
}

impl Stats {
    /// How many WebSockets closed with `code`.
    ///
    /// ```
    /// assert_eq!(hvws::Stats::default().closes_with(1006), 0);
    /// ```
    pub fn closes_with(&self, code: u16) -> u64 {
        self.closes
            .binary_search_by_key(&code, |&(c, _)| c)
            .map_or(0, |i| self.closes[i].1)
    }

    /// Adds `other`'s figures to these: the figures of several servers
    /// (a [`Hub`](crate::Hub)'s, see [`Hub::stats`](crate::Hub::stats))
    /// as one. Counters and gauges add up (a topic with subscribers on two
    /// servers counts on each), closes add up by code; the bridge's
    /// figures, the hub's own, are taken once.
    ///
    /// ```
    /// let mut all = hvws::Stats::default();
    /// let one = hvws::Stats::default();
    /// all.merge(&one);
    /// assert_eq!(all, one);
    /// ```
    pub fn merge(&mut self, other: &Stats) {
        self.connections += other.connections;
        self.websockets += other.websockets;
        self.connections_accepted += other.connections_accepted;
        self.http_requests += other.http_requests;
        self.handshakes_accepted += other.handshakes_accepted;
        self.handshakes_refused += other.handshakes_refused;
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.bytes_buffered += other.bytes_buffered;
        self.slow_consumer_closes += other.slow_consumer_closes;
        self.slow_consumer_drops += other.slow_consumer_drops;
        self.ticks += other.ticks;
        self.writes += other.writes;
        self.publishes += other.publishes;
        self.topics += other.topics;
        self.subscriptions += other.subscriptions;
        for &(code, n) in &other.closes {
            match self.closes.binary_search_by_key(&code, |&(c, _)| c) {
                Ok(i) => self.closes[i].1 += n,
                Err(i) => self.closes.insert(i, (code, n)),
            }
        }
        #[cfg(feature = "redis")]
        if self.bridge.is_none() {
            self.bridge = other.bridge;
        }
    }

    /// How many WebSockets closed, whatever the code.
    ///
    /// ```
    /// assert_eq!(hvws::Stats::default().closes_total(), 0);
    /// ```
    pub fn closes_total(&self) -> u64 {
        self.closes.iter().map(|&(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::handle::ServerHandle;

    /// Publishing at a tick's end allocates nothing once the published
    /// copy has room for the close codes: every field but `closes` is an
    /// integer, and `closes` is copied into the buffer it has. Checked by
    /// the buffer's address, not by timing.
    #[test]
    fn publishing_reuses_the_published_copy() {
        let (handle, _commands) = ServerHandle::new();
        let mut core = Core::new(ServerConfig::default(), handle.clone());
        core.stats.closed(1000, None);
        core.stats.closed(1006, Some(&WsError::SlowConsumer));
        core.end_tick();
        let buffer = |h: &ServerHandle| {
            let published = h.shared_stats().lock().unwrap();
            (published.closes.as_ptr(), published.closes.capacity())
        };
        let before = buffer(&handle);
        for _ in 0..100 {
            core.stats.closed(1000, None);
            core.stats.received(&ServerEvent::Text("hi".into()));
            core.end_tick();
        }
        assert_eq!(buffer(&handle), before, "the closes were copied in place");
        let stats = handle.stats();
        assert_eq!(stats.ticks, 101);
        assert_eq!(stats.closes, [(1000, 101), (1006, 1)]);
        assert_eq!(
            (stats.slow_consumer_closes, stats.messages_in, stats.bytes_in),
            (1, 100, 200)
        );
    }

    #[test]
    fn closes_stay_sorted_by_code() {
        let mut c = Counters::default();
        for code in [4001, 1000, 1006, 1000, 1001] {
            c.closed(code, None);
        }
        assert_eq!(c.closes, [(1000, 2), (1001, 1), (1006, 1), (4001, 1)]);
    }

    #[test]
    fn the_buffered_gauge_follows_each_flush() {
        let mut c = Counters::default();
        c.backlog_moved(0, 300);
        c.backlog_moved(0, 200);
        c.backlog_moved(300, 100);
        assert_eq!(c.buffered, 300);
        c.backlog_moved(100, 0);
        c.backlog_moved(200, 0);
        assert_eq!(c.buffered, 0);
    }
}
