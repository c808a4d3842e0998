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

/// A [`Wakeup`] as the heap keeps it: 16 bytes instead of 32 (every
/// connection has one or two in the heap, so this is paid 10,000 times
/// over). The instant is nanoseconds after the schedule's `base` (good for
/// 584 years), and converts back exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    after_base_ns: u64,
    key: u32,
    gen: u32,
}

/// `Schedule::coarse`, for a given base.
#[inline]
fn coarse(base: Instant, at: Instant) -> u32 {
    let ms = at.saturating_duration_since(base).as_millis();
    u32::try_from(ms.saturating_add(1)).unwrap_or(u32::MAX)
}

#[derive(Debug)]
pub(crate) struct Schedule {
    /// No deadline is earlier: the server's clock when it was made.
    base: Instant,
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Schedule {
    /// A schedule for deadlines at `base` or later.
    pub fn new(base: Instant) -> Schedule {
        Schedule {
            base,
            heap: BinaryHeap::new(),
        }
    }

    fn instant(&self, e: &Entry) -> Instant {
        self.base + std::time::Duration::from_nanos(e.after_base_ns)
    }

    fn wakeup(&self, e: &Entry) -> Wakeup {
        Wakeup {
            at: self.instant(e),
            key: e.key as usize,
            gen: e.gen,
        }
    }

    pub fn push(&mut self, w: Wakeup) {
        // An instant before `base` (none is: deadlines are the server's
        // `now` plus a timeout) would come due at `base`, already past.
        let ns = w.at.saturating_duration_since(self.base).as_nanos();
        self.heap.push(Reverse(Entry {
            after_base_ns: u64::try_from(ns).unwrap_or(u64::MAX),
            // Connection keys are slab indices, far below 2^32.
            key: w.key as u32,
            gen: w.gen,
        }));
    }

    /// `at` to the millisecond, as a connection's slot remembers the
    /// wakeup it waits for (`table::Slot::armed`): 1 + whole milliseconds
    /// after `base`, so 0 is free to mean none; `u32::MAX` past 49 days,
    /// where comparisons stop telling instants apart (and the slot falls
    /// back to a wakeup per moved deadline).
    #[inline]
    pub fn coarse(&self, at: Instant) -> u32 {
        coarse(self.base, at)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| self.instant(e))
    }

    /// Pops the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Wakeup> {
        match self.heap.peek() {
            Some(Reverse(e)) if self.instant(e) <= now => self.heap.pop().map(|Reverse(e)| self.wakeup(&e)),
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
    /// `is_live` gets each wakeup and its instant as [`Schedule::coarse`].
    pub fn compact(&mut self, live: usize, mut is_live: impl FnMut(&Wakeup, u32) -> bool) {
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        let base = self.base;
        self.heap.retain(|Reverse(e)| {
            let at = base + std::time::Duration::from_nanos(e.after_base_ns);
            let w = Wakeup {
                at,
                key: e.key as usize,
                gen: e.gen,
            };
            is_live(&w, coarse(base, at))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
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
    fn coarse_instants_are_milliseconds_after_the_base_plus_one() {
        let now = Instant::now();
        let s = Schedule::new(now);
        assert_eq!(s.coarse(now), 1);
        assert_eq!(s.coarse(now + Duration::from_micros(999)), 1);
        assert_eq!(s.coarse(now + Duration::from_millis(10_000)), 10_001);
        assert_eq!(s.coarse(now + Duration::from_secs(50 * 86_400)), u32::MAX);
    }

    #[test]
    fn compaction_drops_dead_entries_once_they_dominate() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        for key in 0..3000 {
            s.push(Wakeup { at: now, key, gen: 0 });
        }
        s.compact(2000, |_, _| false);
        assert_eq!(s.len(), 3000, "not yet worth a rebuild");
        s.compact(10, |w, _| w.key < 10);
        assert_eq!(s.len(), 10);
    }
}

#[cfg(test)]
mod sizes {
    /// One heap entry: 16 bytes (it was a 32-byte `Wakeup`); every
    /// connection has one or two in the heap.
    #[test]
    fn an_entry_is_16_bytes() {
        assert_eq!(std::mem::size_of::<super::Entry>(), 16);
    }
}
