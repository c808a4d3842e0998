//! The keepalive of an open WebSocket: pings to a silent peer (and the
//! round trip their pongs measure), the idle close. Its own file so that
//! `ws.rs` keeps to sending and receiving.

use std::time::{Duration, Instant};

use super::super::limits::{IdleActivity, Limits};
use super::super::rtt::PingClock;
use super::{encode_frame, Opcode, Outbox, WsConn};

/// Keepalive intervals under 1 ms count as 1 ms: a zero interval would
/// re-arm at `now` and spin the timer loop.
fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

impl WsConn {
    /// The keepalive's ping clock (its fields live in the connection, see
    /// `ping_seq`).
    #[inline]
    pub fn pings(&mut self) -> PingClock<'_> {
        PingClock::new(&mut self.ping_seq, &mut self.ping_sent)
    }

    /// The instant idleness is counted from.
    fn last_activity(&self, limits: &Limits) -> Instant {
        match limits.idle_activity {
            IdleActivity::AnyFrame => self.last_rx,
            IdleActivity::DataMessages => self.last_data,
        }
    }

    /// When the keepalive next needs a look, if pings or an idle timeout
    /// are configured: a ping once the peer has been silent for the
    /// interval (then every interval), the idle close once it has shown no
    /// activity (`limits.idle_activity`) for the idle timeout. Not moved by
    /// every read: a look that finds the peer active meanwhile just
    /// schedules the next one.
    pub fn next_keepalive(&self, now: Instant, limits: &Limits) -> Option<Instant> {
        let ping = limits.ping_interval.map(at_least_1ms);
        let idle = limits.idle_timeout.map(at_least_1ms);
        let silent = now.saturating_duration_since(self.last_rx);
        let next_ping = ping.map(|p| if silent < p { self.last_rx + p } else { now + p });
        let give_up = idle.map(|i| self.last_activity(limits) + i);
        next_ping.into_iter().chain(give_up).min().map(|at| at.max(now))
    }

    /// The keepalive's look: pings a peer silent past the ping interval,
    /// and starts the closing handshake with the idle code and reason for
    /// one inactive past the idle timeout. Returns whether it did the
    /// latter: the owner then waits for the answer as for any close it
    /// started, so both sides see the same close, clean when the peer
    /// answers (a live player who stopped playing) and not when it does not
    /// (a dead link).
    pub fn handle_keepalive(&mut self, out: &mut Outbox, now: Instant, limits: &Limits) -> bool {
        if !self.is_open() {
            return false;
        }
        let inactive = now.saturating_duration_since(self.last_activity(limits));
        if limits.idle_timeout.map(at_least_1ms).is_some_and(|t| inactive >= t) {
            log::debug!("websocket idle for {inactive:?}");
            self.start_close(out, limits.idle_close_code, &limits.idle_close_reason);
            self.idle_closed = true;
            return true;
        }
        let silent = now.saturating_duration_since(self.last_rx);
        if limits.ping_interval.map(at_least_1ms).is_some_and(|p| silent >= p) {
            let mask = self.mask();
            let payload = self.pings().ping(now);
            encode_frame(&mut out.buf, true, Opcode::Ping, &payload, mask);
        }
        false
    }
}
