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
}
