//! The figures in the Prometheus text format, version 0.0.4: a table of
//! rows (name, help, type, value), each written with its `# HELP` and
//! `# TYPE` lines; a new figure is one more row.

use std::fmt::Write as _;

use super::Stats;

/// A row of the Prometheus table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

impl Stats {
    /// Every unlabelled figure as (name, help, type, value): to add one,
    /// add a row.
    fn rows(&self) -> [(&'static str, &'static str, Kind, u64); 20] {
        use Kind::{Counter, Gauge};
        [
            (
                "hvws_connections",
                "Open TCP connections (HTTP, WebSocket, closing).",
                Gauge,
                self.connections,
            ),
            ("hvws_websockets", "Open WebSockets.", Gauge, self.websockets),
            (
                "hvws_connections_accepted_total",
                "TCP connections accepted.",
                Counter,
                self.connections_accepted,
            ),
            (
                "hvws_http_requests_total",
                "HTTP requests handed to the routes.",
                Counter,
                self.http_requests,
            ),
            (
                "hvws_handshakes_accepted_total",
                "WebSocket handshakes accepted.",
                Counter,
                self.handshakes_accepted,
            ),
            (
                "hvws_handshakes_refused_total",
                "WebSocket upgrade requests refused.",
                Counter,
                self.handshakes_refused,
            ),
            (
                "hvws_messages_received_total",
                "WebSocket data messages received.",
                Counter,
                self.messages_in,
            ),
            (
                "hvws_messages_sent_total",
                "WebSocket data messages queued to send, per receiver.",
                Counter,
                self.messages_out,
            ),
            (
                "hvws_message_bytes_received_total",
                "Payload bytes of the data messages received.",
                Counter,
                self.bytes_in,
            ),
            (
                "hvws_message_bytes_sent_total",
                "Payload bytes of the data messages queued to send.",
                Counter,
                self.bytes_out,
            ),
            (
                "hvws_bytes_read_total",
                "Bytes read from the connections.",
                Counter,
                self.bytes_read,
            ),
            (
                "hvws_bytes_written_total",
                "Bytes written to the connections.",
                Counter,
                self.bytes_written,
            ),
            (
                "hvws_bytes_buffered",
                "Bytes queued and not yet written.",
                Gauge,
                self.bytes_buffered,
            ),
            (
                "hvws_slow_consumer_closes_total",
                "WebSockets closed for not reading.",
                Counter,
                self.slow_consumer_closes,
            ),
            (
                "hvws_slow_consumer_drops_total",
                "Sends dropped because the receiver was not reading.",
                Counter,
                self.slow_consumer_drops,
            ),
            ("hvws_ticks_total", "Ticks run.", Counter, self.ticks),
            (
                "hvws_writes_total",
                "Socket writes (one per connection with output per flush).",
                Counter,
                self.writes,
            ),
            (
                "hvws_publishes_total",
                "Topic publishes made on this server.",
                Counter,
                self.publishes,
            ),
            (
                "hvws_topics",
                "Topics with a subscriber on this server.",
                Gauge,
                self.topics,
            ),
            (
                "hvws_subscriptions",
                "Subscriptions over every topic of this server.",
                Gauge,
                self.subscriptions,
            ),
        ]
    }

    /// The figures in the Prometheus text format (version 0.0.4): each
    /// metric named `hvws_...` with its `# HELP` and `# TYPE` lines,
    /// counters ending in `_total`, closes as one counter labelled by
    /// `code`. [`Routes::metrics`](crate::Routes::metrics) serves it.
    ///
    /// ```
    /// let text = hvws::Stats::default().to_prometheus();
    /// assert!(text.starts_with("# HELP hvws_connections "));
    /// assert!(text.contains("# TYPE hvws_messages_received_total counter\nhvws_messages_received_total 0\n"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        self.write_prometheus(&mut out);
        out
    }

    /// [`Stats::to_prometheus`], appended to `out`.
    ///
    /// ```
    /// let mut page = String::from("# an exporter's own lines first\n");
    /// hvws::Stats::default().write_prometheus(&mut page);
    /// assert!(page.ends_with("# TYPE hvws_ws_closes_total counter\n"));
    /// ```
    pub fn write_prometheus(&self, out: &mut String) {
        // Writing to a String cannot fail: the results are ignored.
        for (name, help, kind, value) in self.rows() {
            write_metric(out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        write_metric(
            out,
            "hvws_ws_closes_total",
            "WebSocket closes by close code.",
            Kind::Counter,
        );
        for &(code, n) in &self.closes {
            let _ = writeln!(out, "hvws_ws_closes_total{{code=\"{code}\"}} {n}");
        }
        #[cfg(feature = "redis")]
        if let Some((up, b)) = self.bridge {
            use Kind::{Counter, Gauge};
            for (name, help, kind, value) in [
                (
                    "hvws_bridge_up",
                    "1 while the Redis bridge is connected.",
                    Gauge,
                    u64::from(up),
                ),
                (
                    "hvws_bridge_published_total",
                    "Messages published to Redis.",
                    Counter,
                    b.published,
                ),
                (
                    "hvws_bridge_received_total",
                    "Messages received from other processes.",
                    Counter,
                    b.received,
                ),
                (
                    "hvws_bridge_dropped_total",
                    "Messages not published: queue full or Redis away.",
                    Counter,
                    b.dropped,
                ),
                (
                    "hvws_bridge_reconnects_total",
                    "Reconnections to Redis after a loss.",
                    Counter,
                    b.reconnects,
                ),
            ] {
                write_metric(out, name, help, kind);
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}

/// A metric's `# HELP` and `# TYPE` lines (help texts here need no
/// escaping: no `\` or newline in them).
fn write_metric(out: &mut String, name: &str, help: &str, kind: Kind) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
}
