//! Deadlines for connections, in a heap with lazy deletion: a timer whose
//! connection is gone or has moved on is dropped when it comes due, so
//! nothing is ever searched and an idle tick only peeks at the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// We sent a close frame and wait for the peer's.
    CloseHandshake,
    /// We are done with the connection and wait for the peer to close TCP.
    Linger,
    /// The HTTP request being read is due (slowloris, idle keep-alive).
    Request,
    /// Time to check a WebSocket's silence: ping it or close it.
    Keepalive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub at: Instant,
    pub key: usize,
    pub gen: u32,
    pub kind: TimerKind,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    pub fn push(&mut self, t: Timer) {
        self.heap.push(Reverse(t));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// Pops the earliest timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(t)) if t.at <= now => self.heap.pop().map(|Reverse(t)| t),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Drops the timers of connections that are gone, once they outnumber
    /// the live ones by far: under heavy churn, lazily deleted timers would
    /// otherwise pile up for as long as their longest deadline. Rebuilding
    /// is linear but happens only after the heap has doubled, so its cost
    /// per timer stays constant.
    pub fn compact(&mut self, live: usize, mut is_live: impl FnMut(&Timer) -> bool) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        self.heap.retain(|Reverse(t)| is_live(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut t = Timers::default();
        for (secs, key) in [(3, 3), (1, 1), (2, 2)] {
            t.push(Timer {
                at: now + Duration::from_secs(secs),
                key,
                gen: 0,
                kind: TimerKind::Linger,
            });
        }
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(t.pop_due(now).is_none());
        let due: Vec<usize> = std::iter::from_fn(|| t.pop_due(now + Duration::from_secs(2)))
            .map(|t| t.key)
            .collect();
        assert_eq!(due, [1, 2]);
    }

    #[test]
    fn compaction_drops_dead_timers_once_they_dominate() {
        let now = Instant::now();
        let mut t = Timers::default();
        for key in 0..3000 {
            t.push(Timer {
                at: now,
                key,
                gen: 0,
                kind: TimerKind::Request,
            });
        }
        t.compact(2000, |_| false);
        assert_eq!(t.heap.len(), 3000, "not yet worth a rebuild");
        t.compact(10, |timer| timer.key < 10);
        assert_eq!(t.heap.len(), 10);
    }
}
