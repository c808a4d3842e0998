//! A connection's deadline. Each phase of a connection has at most one
//! timer running, so the table is one named slot: the connection says when
//! it next needs [`handle_timeout`](super::ServerConn::handle_timeout)
//! (`poll_timeout`), and what the deadline means is decided here in
//! `proto/`, never by the driver that keeps the server-wide schedule.

use std::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timer {
    /// Client: TCP connect plus opening handshake.
    Connect,
    /// Server: the HTTP request being read is due (slowloris, idle
    /// keep-alive).
    Request,
    /// Time to look at a WebSocket's silence: ping it or give up on it.
    Keepalive,
    /// We sent a close frame and wait for the peer's.
    CloseHandshake,
    /// We are done and wait for the peer to close TCP after our last bytes.
    Linger,
}

/// A running timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// What it is for.
    pub timer: Timer,
    /// When it fires.
    pub at: Instant,
}

impl Deadline {
    /// `timer` firing at `at`.
    pub fn new(timer: Timer, at: Instant) -> Deadline {
        Deadline { timer, at }
    }

    /// Whether it has fired by `now`.
    pub fn is_due(self, now: Instant) -> bool {
        self.at <= now
    }
}
