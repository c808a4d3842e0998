//! The client's reconnect policy and schedule, sans-IO: when a connection
//! (or an attempt) ends, [`Backoff::after_end`] decides whether and when to
//! try again, on the caller's clock.
//!
//! The rules, each there because a game client met its opposite:
//! - no retry after the application's own `close()`;
//! - no retry after a close the server's application chose for this client
//!   (by default 1008 and 4000-4999: kicked, banned, idle): a kicked player
//!   must not come straight back ([`Reconnect::retry_if`] changes this);
//! - delays grow from `initial_delay` by `factor` up to `max_delay`, and
//!   start over only once a connection stayed open `stable_after`, so a
//!   server that accepts and drops at once cannot cause a reconnect storm.

use std::time::{Duration, Instant};

use super::close::CloseInfo;

/// Automatic reconnection after a connection is lost.
///
/// ```
/// use std::time::Duration;
/// let r = hvws::Reconnect::default();
/// assert_eq!(r.delay(0), Duration::from_millis(500));
/// assert_eq!(r.delay(3), Duration::from_secs(4));
/// ```
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Delay before the first attempt. Default 500 ms.
    pub initial_delay: Duration,
    /// Cap on the delay. Default 30 s.
    pub max_delay: Duration,
    /// Growth per attempt. Default 2.
    pub factor: f64,
    /// Give up after this many attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// How long a connection must stay open before the delays start over
    /// from `initial_delay`. Default 10 s: a server that accepts and drops
    /// (a crash loop, a kick loop) keeps the delays growing.
    pub stable_after: Duration,
    /// Whether to reconnect after an open connection ended with this close.
    /// Default [`Reconnect::retry_unless_kicked`]. (Attempts that never
    /// opened are always retried, within `max_attempts`.)
    pub retry_if: fn(&CloseInfo) -> bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            max_attempts: None,
            stable_after: Duration::from_secs(10),
            retry_if: Reconnect::retry_unless_kicked,
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

    /// The default rule: retry after anything but a close the server's
    /// application chose for this client, 1008 (policy violation) or
    /// 4000-4999 (the application's own codes: kicked, banned, idle).
    /// Going away (1001), errors (1011), restarts (1012) and drops (1006)
    /// are retried.
    pub fn retry_unless_kicked(close: &CloseInfo) -> bool {
        !(close.code == 1008 || (4000..=4999).contains(&close.code))
    }

    /// Retry after any close (the rule before hvws 0.2).
    pub fn retry_always(_: &CloseInfo) -> bool {
        true
    }
}

/// Why no further attempt is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No reconnect policy is configured.
    NoPolicy,
    /// The application closed.
    Closed,
    /// The policy's `retry_if` said no to this close (by default: the
    /// server kicked this client with 1008 or 4000-4999).
    NotRetried(u16),
    /// `max_attempts` attempts in a row failed.
    OutOfAttempts,
}

/// What comes after a connection or an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at `at`: attempt number `attempt` (1 for the first retry
    /// after a loss), `delay` from now.
    Retry {
        /// 1-based count of retries since the last stable connection.
        attempt: u32,
        /// How long until it.
        delay: Duration,
        /// When it is due.
        at: Instant,
    },
    /// No further attempt.
    Stop(StopReason),
}

/// When to try again: the attempts made since the last stable connection,
/// and the time of the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
    next: Option<Instant>,
    /// When the current connection opened.
    opened_at: Option<Instant>,
}

impl Backoff {
    /// The current connection opened at `now`. The delays start over only
    /// if it stays open `stable_after`.
    pub fn opened(&mut self, now: Instant) {
        self.opened_at = Some(now);
    }

    /// A connection (if `close` is given: it opened, and ended so) or an
    /// attempt that never opened (`close` is `None`) ended at `now`.
    /// Decides by `policy` whether and when to try again.
    pub fn after_end(
        &mut self,
        policy: Option<&Reconnect>,
        user_closed: bool,
        close: Option<&CloseInfo>,
        now: Instant,
    ) -> Next {
        let opened_at = self.opened_at.take();
        self.next = None;
        let Some(policy) = policy else {
            return Next::Stop(StopReason::NoPolicy);
        };
        if user_closed {
            return Next::Stop(StopReason::Closed);
        }
        if let Some(close) = close {
            if !(policy.retry_if)(close) {
                return Next::Stop(StopReason::NotRetried(close.code));
            }
        }
        if opened_at.is_some_and(|t| now.saturating_duration_since(t) >= policy.stable_after) {
            self.attempt = 0;
        }
        if policy.max_attempts.is_some_and(|max| self.attempt >= max) {
            return Next::Stop(StopReason::OutOfAttempts);
        }
        let delay = policy.delay(self.attempt);
        self.attempt += 1;
        let at = now + delay;
        self.next = Some(at);
        Next::Retry {
            attempt: self.attempt,
            delay,
            at,
        }
    }

    /// Forgets every attempt (a new `init`).
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// No attempt planned any more (the user closed).
    pub fn cancel(&mut self) {
        self.next = None;
    }

    /// When the next attempt is due.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Attempts since the last stable connection.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Whether the next attempt is due at `now`; clears it if so.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(at) if at <= now => {
                self.next = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::close::CloseInitiator;

    fn closed(code: u16) -> CloseInfo {
        CloseInfo {
            code,
            reason: String::new(),
            was_clean: code != 1006,
            initiator: CloseInitiator::Remote,
        }
    }

    fn ms(t0: Instant, next: Next) -> Option<(u32, u128)> {
        match next {
            Next::Retry { attempt, at, .. } => Some((attempt, at.duration_since(t0).as_millis())),
            Next::Stop(_) => None,
        }
    }

    #[test]
    fn delays_grow_and_cap() {
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

    #[test]
    fn a_kick_or_the_users_close_is_not_retried() {
        let t0 = Instant::now();
        let policy = Reconnect::default();
        let mut b = Backoff::default();
        for code in [4000, 4001, 4999, 1008] {
            b.opened(t0);
            assert_eq!(
                b.after_end(Some(&policy), false, Some(&closed(code)), t0),
                Next::Stop(StopReason::NotRetried(code))
            );
        }
        for code in [1000, 1001, 1006, 1011, 1012, 3000] {
            b.reset();
            b.opened(t0);
            assert!(
                ms(t0, b.after_end(Some(&policy), false, Some(&closed(code)), t0)).is_some(),
                "{code}"
            );
        }
        b.opened(t0);
        assert_eq!(
            b.after_end(Some(&policy), true, Some(&closed(1006)), t0),
            Next::Stop(StopReason::Closed)
        );
        assert_eq!(b.next(), None);
        assert_eq!(b.after_end(None, false, None, t0), Next::Stop(StopReason::NoPolicy));
        let always = Reconnect {
            retry_if: Reconnect::retry_always,
            ..Reconnect::default()
        };
        assert!(ms(t0, b.after_end(Some(&always), false, Some(&closed(4000)), t0)).is_some());
    }

    #[test]
    fn the_delays_start_over_only_after_a_stable_connection() {
        let t0 = Instant::now();
        let policy = Reconnect::default(); // stable after 10 s
        let mut b = Backoff::default();
        let s = |n: u64| t0 + Duration::from_secs(n);
        // Refused attempts: 0.5, 1, 2 s.
        assert_eq!(ms(t0, b.after_end(Some(&policy), false, None, t0)), Some((1, 500)));
        assert_eq!(ms(t0, b.after_end(Some(&policy), false, None, t0)), Some((2, 1000)));
        // A server that accepts and drops at once: the delays keep growing.
        b.opened(t0);
        assert_eq!(
            ms(t0, b.after_end(Some(&policy), false, Some(&closed(1006)), t0)),
            Some((3, 2000))
        );
        b.opened(s(0));
        assert_eq!(
            ms(s(9), b.after_end(Some(&policy), false, Some(&closed(1001)), s(9))),
            Some((4, 4000))
        );
        // One that stayed up 10 s: back to the first delay.
        b.opened(s(20));
        assert_eq!(
            ms(s(30), b.after_end(Some(&policy), false, Some(&closed(1006)), s(30))),
            Some((1, 500))
        );
        assert!(!b.take_due(s(30) + Duration::from_millis(499)));
        assert!(b.take_due(s(30) + Duration::from_millis(500)));
    }

    #[test]
    fn max_attempts_in_a_row() {
        let t0 = Instant::now();
        let policy = Reconnect {
            max_attempts: Some(2),
            ..Reconnect::default()
        };
        let mut b = Backoff::default();
        assert!(ms(t0, b.after_end(Some(&policy), false, None, t0)).is_some());
        assert!(ms(t0, b.after_end(Some(&policy), false, None, t0)).is_some());
        assert_eq!(
            b.after_end(Some(&policy), false, None, t0),
            Next::Stop(StopReason::OutOfAttempts)
        );
    }
}
