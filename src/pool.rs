//! Buffers freed by flushed or drained connections, reused so a busy server
//! does not call the allocator per tick and an idle connection holds no
//! buffer at all.
//!
//! Large buffers are kept too: a connection that is sent 64 KiB messages
//! needs a buffer of a few hundred KiB every tick, and a fresh one costs a
//! page fault per 4 KiB touched (measured: page faults and `brk` took over
//! half the server's CPU in that workload; benches/README.md). What the pool
//! holds is capped in bytes instead.

#[derive(Debug, Default)]
pub(crate) struct BufPool {
    free: Vec<Vec<u8>>,
    /// Capacity of the buffers in `free`.
    bytes: usize,
}

/// A bound on the count as well as the bytes, so the list itself stays
/// small. It is high because a broadcast or publish writes to every
/// receiver in one tick: with 256 (the bound before), 745 of 1,001
/// receivers got a fresh buffer each tick, grown by doubling (a `malloc`
/// and four `realloc`s for 16 frames) and freed after the flush, half of
/// the server's user-space instructions per delivery (benches/README.md,
/// "Topics"). The bytes bound is what limits the memory held.
const POOL_MAX_BUFFERS: usize = 16 << 10;
/// Larger buffers (a rare huge message) go back to the allocator.
const POOL_MAX_CAPACITY: usize = 1 << 20;
/// The most the pool keeps: what 256 buffers of 64 KiB come to.
const POOL_MAX_BYTES: usize = 16 << 20;

impl BufPool {
    /// An empty buffer, with capacity if the pool had one.
    pub fn take(&mut self) -> Vec<u8> {
        let buf = self.free.pop().unwrap_or_default();
        self.bytes -= buf.capacity();
        buf
    }

    /// How many buffers it holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// Keeps `buf` for reuse if it is worth keeping and there is room.
    pub fn put(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap > 0
            && cap <= POOL_MAX_CAPACITY
            && self.free.len() < POOL_MAX_BUFFERS
            && self.bytes + cap <= POOL_MAX_BYTES
        {
            buf.clear();
            self.bytes += cap;
            self.free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_hands_it_back_empty() {
        let mut pool = BufPool::default();
        pool.put(Vec::new());
        assert_eq!(pool.take().capacity(), 0, "nothing kept for no capacity");
        pool.put(vec![1; 100]);
        pool.put(Vec::with_capacity(2 << 20));
        let buf = pool.take();
        assert!(buf.is_empty() && buf.capacity() >= 100, "the small one, emptied");
        assert_eq!(pool.take().capacity(), 0, "the huge one went to the allocator");
    }
}
