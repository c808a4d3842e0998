//! When each connection next needs `handle_timeout`, in one heap for the
//! whole server. What a deadline means is the connection's business
//! (`proto::timer`); this only remembers when to ask. Entries are deleted
//! lazily: one whose connection is gone or whose deadline moved is dropped
//! when it comes due (or by a compaction once they outnumber the live
//! ones), so no deadline is searched for when it moves, and an idle tick only
//! peeks at the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A connection to ask at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Wakeup {
    pub at: Instant,
    pub key: usize,
    pub gen: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Schedule {
    heap: BinaryHeap<Reverse<Wakeup>>,
}

impl Schedule {
    pub fn push(&mut self, w: Wakeup) {
        self.heap.push(Reverse(w));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(w)| w.at)
    }

    /// Pops the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Wakeup> {
        match self.heap.peek() {
            Some(Reverse(w)) if w.at <= now => self.heap.pop().map(|Reverse(w)| w),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops stale entries once they outnumber the live connections by far:
    /// under heavy churn (or keep-alive HTTP, whose deadline moves with every
    /// request) they would otherwise pile up for as long as their deadline.
    /// Rebuilding is linear but happens only after the heap has doubled, so
    /// its cost per entry stays constant.
    pub fn compact(&mut self, live: usize, mut is_live: impl FnMut(&Wakeup) -> bool) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        self.heap.retain(|Reverse(w)| is_live(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut s = Schedule::default();
        for (secs, key) in [(3, 3), (1, 1), (2, 2)] {
            s.push(Wakeup {
                at: now + Duration::from_secs(secs),
                key,
                gen: 0,
            });
        }
        assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(s.pop_due(now).is_none());
        let due: Vec<usize> = std::iter::from_fn(|| s.pop_due(now + Duration::from_secs(2)))
            .map(|w| w.key)
            .collect();
        assert_eq!(due, [1, 2]);
    }

    #[test]
    fn compaction_drops_dead_entries_once_they_dominate() {
        let now = Instant::now();
        let mut s = Schedule::default();
        for key in 0..3000 {
            s.push(Wakeup { at: now, key, gen: 0 });
        }
        s.compact(2000, |_| false);
        assert_eq!(s.len(), 3000, "not yet worth a rebuild");
        s.compact(10, |w| w.key < 10);
        assert_eq!(s.len(), 10);
    }
}
