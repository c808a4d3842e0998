//! The keepalive of an open WebSocket: pings to a silent peer (and the
//! round trip their pongs measure), the idle close. Its own file so that
//! `ws.rs` keeps to sending and receiving.

use std::time::{Duration, Instant};

use super::super::limits::{IdleActivity, Limits};
use super::super::rtt::PingClock;
use super::clock::{self, elapsed_ms, MAX_AGE_MS};
use super::{encode_frame, Opcode, Outbox, WsConn};

/// A keepalive interval in whole milliseconds, between 1 ms (a zero
/// interval would re-arm at `now` and spin the timer loop) and
/// `MAX_AGE_MS` (12.4 days; longer ones count as that long, which keeps
/// the stamps' differences from wrapping). A fraction of a millisecond is
/// rounded up: the stamps count whole ones.
fn interval_ms(d: Duration) -> u32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u32::try_from(ms).unwrap_or(u32::MAX).clamp(1, MAX_AGE_MS)
}

impl WsConn {
    /// The keepalive's ping clock (its fields live in the connection, see
    /// `ping_seq`).
    #[inline]
    pub fn pings(&mut self) -> PingClock<'_> {
        PingClock::new(&mut self.ping_seq, &mut self.ping_out, &mut self.ping_sent)
    }

    /// A pong arrived at `now`: the round trip it measured, if it answers
    /// the keepalive's latest ping. (Out of line: it is no part of the
    /// per-message path it is called from.)
    #[inline(never)]
    pub fn pong(&mut self, payload: &[u8], now: Instant) -> Option<Duration> {
        self.pings().pong(payload, clock::us(now))
    }

    /// The stamp idleness is counted from.
    fn last_activity(&self, limits: &Limits) -> u32 {
        match limits.idle_activity {
            IdleActivity::AnyFrame => self.last_rx,
            IdleActivity::DataMessages => self.last_data,
        }
    }

    /// Moves stamps older than `MAX_AGE_MS` up to that age, at each look of
    /// the keepalive (which comes at least every `MAX_AGE_MS`): a peer
    /// silent for longer counts as silent for 12.4 days, which every
    /// interval reaches, and no stamp ever gets old enough (49.7 days) for
    /// its difference to `now` to wrap.
    fn age_stamps(&mut self, now_ms: u32) {
        for stamp in [&mut self.last_rx, &mut self.last_data] {
            if elapsed_ms(now_ms, *stamp) > MAX_AGE_MS {
                *stamp = now_ms.wrapping_sub(MAX_AGE_MS);
            }
        }
    }

    /// When the keepalive next needs a look, if pings or an idle timeout
    /// are configured: a ping once the peer has been silent for the
    /// interval (then every interval), the idle close once it has shown no
    /// activity (`limits.idle_activity`) for the idle timeout. Not moved by
    /// every read: a look that finds the peer active meanwhile just
    /// schedules the next one.
    pub fn next_keepalive(&mut self, now: Instant, limits: &Limits) -> Option<Instant> {
        let now_ms = clock::ms(now);
        self.age_stamps(now_ms);
        let ping = limits.ping_interval.map(interval_ms);
        let idle = limits.idle_timeout.map(interval_ms);
        // Milliseconds from now, on the stamps' clock.
        let silent = elapsed_ms(now_ms, self.last_rx);
        let next_ping = ping.map(|p| if silent < p { p - silent } else { p });
        let inactive = elapsed_ms(now_ms, self.last_activity(limits));
        let give_up = idle.map(|i| i.saturating_sub(inactive));
        let wait = next_ping.into_iter().chain(give_up).min()?;
        // (At `now + wait` the stamps are at least `wait` further apart,
        // so the look finds it due.)
        Some(now + Duration::from_millis(wait.into()))
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
        let now_ms = clock::ms(now);
        self.age_stamps(now_ms);
        let inactive = elapsed_ms(now_ms, self.last_activity(limits));
        if limits.idle_timeout.map(interval_ms).is_some_and(|t| inactive >= t) {
            log::debug!("websocket idle for {inactive} ms");
            self.start_close(out, limits.idle_close_code, &limits.idle_close_reason);
            self.idle_closed = true;
            return true;
        }
        let silent = elapsed_ms(now_ms, self.last_rx);
        if limits.ping_interval.map(interval_ms).is_some_and(|p| silent >= p) {
            let mask = self.mask();
            let payload = self.pings().ping(clock::us(now));
            encode_frame(&mut out.buf, true, Opcode::Ping, &payload, mask);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::{self, MAX_AGE_MS};
    use super::super::Role;
    use super::*;

    fn limits(ping: u64, idle: u64) -> Limits {
        Limits {
            ping_interval: Some(Duration::from_secs(ping)),
            idle_timeout: Some(Duration::from_secs(idle)),
            ..Limits::default()
        }
    }

    /// Runs the keepalive at `at` as its owner does when the deadline
    /// comes: what it queued (a ping: 10 bytes; the idle close: more) and
    /// whether it closed.
    fn look(ws: &mut WsConn, at: Instant, limits: &Limits) -> (usize, bool) {
        let mut out = Outbox::default();
        let closed = ws.handle_keepalive(&mut out, at, limits);
        (out.buf.len(), closed)
    }

    #[test]
    fn pings_and_the_idle_close_come_on_time_across_the_clocks_wrap() {
        // A server up for 49.7 days, 10 s before its millisecond stamps
        // wrap: the WebSocket opens then and its timers cross the wrap.
        let limits = limits(30, 90);
        let t0 = clock::zero() + Duration::from_millis(u64::from(u32::MAX)) - Duration::from_secs(10);
        let s = Duration::from_secs(1);
        let ms = Duration::from_millis(1);
        let mut ws = WsConn::new(Role::Server, &limits, t0);
        assert_eq!(ws.next_keepalive(t0, &limits), Some(t0 + 30 * s));
        assert_eq!(
            look(&mut ws, t0 + 30 * s - ms, &limits),
            (0, false),
            "not a millisecond early"
        );
        assert_eq!(look(&mut ws, t0 + 30 * s, &limits), (10, false), "the ping, on time");
        assert_eq!(ws.next_keepalive(t0 + 30 * s, &limits), Some(t0 + 60 * s));
        assert_eq!(look(&mut ws, t0 + 60 * s, &limits), (10, false));
        assert_eq!(ws.next_keepalive(t0 + 60 * s, &limits), Some(t0 + 90 * s));
        assert!(!look(&mut ws, t0 + 90 * s - ms, &limits).1);
        assert!(look(&mut ws, t0 + 90 * s, &limits).1, "the idle close, on time");
        assert_eq!(ws.last_message_at(t0 + 90 * s), t0, "its open, back across the wrap");
    }

    #[test]
    fn a_silence_longer_than_the_stamps_reach_counts_as_their_reach() {
        // Intervals past 12.4 days count as 12.4 days.
        let limits = limits(86_400 * 20, 86_400 * 30);
        let t0 = clock::zero() + Duration::from_secs(3 * 86_400);
        let reach = Duration::from_millis(MAX_AGE_MS.into());
        let mut ws = WsConn::new(Role::Server, &limits, t0);
        assert_eq!(ws.next_keepalive(t0, &limits), Some(t0 + reach));
        // A look 40 days later (the owner did not look meanwhile, but 40
        // days is short of the wrap): the peer has been silent for longer
        // than the idle timeout.
        assert!(look(&mut ws, t0 + Duration::from_secs(40 * 86_400), &limits).1);
        // Without the idle timeout, a ping, then the next one an interval on.
        let pings = Limits {
            idle_timeout: None,
            ..limits
        };
        let mut ws = WsConn::new(Role::Server, &pings, t0);
        let late = t0 + Duration::from_secs(40 * 86_400);
        assert_eq!(look(&mut ws, late, &pings), (10, false));
        assert_eq!(ws.next_keepalive(late, &pings), Some(late + reach));
    }
}
