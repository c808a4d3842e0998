//! The shared read buffer every socket is read into, and how a large
//! received message is echoed or relayed without a copy.
//!
//! # Why
//!
//! A 64 KiB echo used to spend a quarter of its CPU copying the payload
//! from the read buffer into the output queue. A handler gets the payload
//! as `&[u8]` borrowed from this buffer; when it sends that slice (or part
//! of it, at least `SHARE_MIN` bytes) back or on, the send recognises the
//! address (`Core::send_message_with`) and queues a placeholder, "these
//! bytes of the read buffer", instead of copying them. The read's region
//! of the buffer is then kept: later reads in the tick go after it. Before
//! the flush (or when too little room is left), the buffer is frozen into
//! shared [`Bytes`] and every placeholder becomes a slice of it; the flush
//! writes header and payload with one `writev`.
//!
//! # Recycling without zeroing
//!
//! A frozen buffer is kept here (`retired`) as one handle covering all of
//! it. Once the flush has written every slice of it, that handle is the
//! only one, and it turns back into a whole, initialised buffer without a
//! copy or a `memset` (`Bytes::try_into_mut`). A busy tick may freeze
//! several buffers (each read that is kept takes room); they all come back
//! after the flush. Holding a handle to a buffer that queues still refer
//! to costs nothing extra (the queues pin it anyway), so up to
//! [`MAX_RETIRED`] handles are kept, but only as many buffers that nobody
//! refers to as recent ticks froze (the last tick's count, or one less
//! than before, at least [`MIN_FREE`]): steady traffic allocates nothing,
//! and after a burst the spare buffers go one per tick.
//! A peer behind in reading is not given references to read buffers (its
//! sends are copied, `Core::send_from_read`): an 8 KiB slice it held would
//! pin a whole 256 KiB buffer. So a buffer is pinned by at most one tick's
//! sends per connection, until the flush that writes them (or the next
//! one, if the socket filled up then).

use bytes::{Bytes, BytesMut};

/// Size of the shared receive buffer every connection reads into; only the
/// unconsumed tail of a read is copied into a connection's own buffer.
/// 256 KiB (one per server) lets one read hold several whole 64 KiB frames,
/// so fewer of them straddle reads and get copied: 0.67× the CPU per
/// message of a 64 KiB buffer when echoing 64 KiB messages (benches/README.md).
pub(crate) const SCRATCH_SIZE: usize = 256 << 10;

/// Below this much room after a kept region, the buffer is frozen and a
/// fresh one taken, so reads do not shrink to slivers: a 64 KiB frame
/// and its header still fit in one read.
pub(crate) const MIN_ROOM: usize = 64 << 10 | 64;

/// Handles to frozen buffers kept for reuse (past it the oldest handle is
/// let go: its buffer is freed when its last slice is written).
const MAX_RETIRED: usize = 64;

/// Frozen buffers nobody refers to that are kept for reuse, beyond the one
/// taken, however few the last tick froze.
const MIN_FREE: usize = 1;

/// The shared read buffer: reads land at `pos`; what lies before it is
/// kept for placeholders queued this tick.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: BytesMut,
    pos: usize,
    retired: Vec<Bytes>,
    /// Buffers frozen since the last [`ReadBuf::end_tick`], and in the
    /// tick before: how many free ones are worth keeping.
    frozen: usize,
    keep_free: usize,
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: BytesMut::zeroed(SCRATCH_SIZE),
            pos: 0,
            retired: Vec::new(),
            frozen: 0,
            keep_free: MIN_FREE,
        }
    }

    /// How many bytes the next read may take.
    #[inline]
    pub fn room(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Where the next read lands: `n` bytes (at most `room()`).
    #[inline]
    pub fn area(&mut self, n: usize) -> &mut [u8] {
        let end = self.pos + n.min(self.room());
        &mut self.buf[self.pos..end]
    }

    /// The offset in the buffer of what [`ReadBuf::area`] gives out.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The last read's `n` bytes are referred to by placeholders: keep
    /// them, and read on after them.
    #[inline]
    pub fn keep(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Whether anything was kept since the last freeze.
    #[inline]
    pub fn holds_kept(&self) -> bool {
        self.pos > 0
    }

    /// Freezes the buffer (what placeholders refer to) and takes a fresh
    /// one to read into. Returns the frozen buffer for the placeholders to
    /// take slices of.
    pub fn freeze(&mut self) -> Bytes {
        let fresh = self.recycle();
        let whole = std::mem::replace(&mut self.buf, fresh).freeze();
        self.pos = 0;
        self.frozen += 1;
        if self.retired.len() == MAX_RETIRED {
            self.retired.remove(0);
        }
        self.retired.push(whole.clone());
        whole
    }

    /// The tick's flush is done: as many free buffers as this tick froze
    /// are worth keeping for the next (or one less than were, so a busy
    /// tick's count decays rather than drops).
    pub fn end_tick(&mut self) {
        self.keep_free = self.frozen.max(self.keep_free.saturating_sub(1)).max(MIN_FREE);
        self.frozen = 0;
    }

    /// A whole, initialised buffer: a retired one nobody refers to any
    /// more, else a new one.
    fn recycle(&mut self) -> BytesMut {
        let mut found = None;
        let mut free = 0;
        let keep_free = self.keep_free;
        self.retired.retain(|b| {
            if !b.is_unique() {
                return true;
            }
            if found.is_none() {
                found = Some(b.clone());
                return false;
            }
            free += 1;
            free <= keep_free
        });
        // `retain` dropped the handle it removed: the clone is the only one.
        match found.map(|b| b.try_into_mut()) {
            Some(Ok(buf)) if buf.len() == SCRATCH_SIZE => buf,
            _ => BytesMut::zeroed(SCRATCH_SIZE),
        }
    }
}

/// Where the read being handed out is: its address and length, and its
/// offset in the driver's read buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadRegion {
    pub addr: usize,
    pub len: usize,
    pub offset: usize,
}

impl ReadRegion {
    /// Where `payload` starts in the read buffer, if it lies in this read.
    /// (An address comparison: no pointer is followed.)
    #[inline]
    pub fn offset_of(&self, payload: &[u8]) -> Option<usize> {
        let at = payload.as_ptr() as usize;
        let inside = at >= self.addr && at + payload.len() <= self.addr + self.len;
        inside.then(|| self.offset + (at - self.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_buffer_comes_back_once_its_slices_are_gone() {
        let mut rb = ReadBuf::new();
        rb.area(5).copy_from_slice(b"hello");
        rb.keep(5);
        assert!(rb.holds_kept());
        assert_eq!(rb.room(), SCRATCH_SIZE - 5);
        let frozen = rb.freeze();
        let slice = frozen.slice(0..5);
        let addr = frozen.as_ptr();
        drop(frozen);
        assert_eq!(rb.pos(), 0);
        assert!(!rb.holds_kept());
        // Still referred to: the next freeze cannot reuse it.
        let second = rb.freeze();
        assert_ne!(second.as_ptr(), addr);
        assert_eq!(&slice[..], b"hello", "what was kept is intact");
        drop((slice, second));
        // Both unreferenced now: the next fresh buffer is one of them,
        // whole and initialised.
        rb.freeze();
        assert_eq!(rb.room(), SCRATCH_SIZE);
        assert!(rb.retired.len() <= 2);
    }

    #[test]
    fn a_payload_is_placed_in_the_read_only_if_it_lies_wholly_inside() {
        let buf = [0u8; 100];
        let read = &buf[10..60];
        let r = ReadRegion {
            addr: read.as_ptr() as usize,
            len: read.len(),
            offset: 1_000,
        };
        assert_eq!(r.offset_of(&buf[10..60]), Some(1_000));
        assert_eq!(r.offset_of(&buf[20..30]), Some(1_010));
        assert_eq!(r.offset_of(&buf[59..60]), Some(1_049));
        assert_eq!(r.offset_of(&buf[5..20]), None, "starts before");
        assert_eq!(r.offset_of(&buf[50..61]), None, "ends after");
        assert_eq!(r.offset_of(&buf[70..80]), None, "elsewhere");
        let other = [0u8; 10];
        assert_eq!(r.offset_of(&other), None);
    }

    #[test]
    fn a_buffer_whose_slices_were_written_is_read_into_again() {
        let mut rb = ReadBuf::new();
        let first = rb.area(1).as_ptr();
        rb.keep(1);
        let frozen = rb.freeze();
        let slice = frozen.slice(0..1);
        drop(frozen);
        drop(slice);
        rb.keep(1);
        drop(rb.freeze());
        assert_eq!(rb.area(1).as_ptr(), first, "the first buffer, recycled");
    }

    #[test]
    fn free_buffers_are_kept_as_many_as_the_last_tick_froze() {
        let mut rb = ReadBuf::new();
        let pinned: Vec<Bytes> = (0..5).map(|_| rb.freeze()).collect();
        rb.end_tick();
        drop(pinned);
        // A tick as busy as the last: all five come back, none allocated.
        let again: Vec<Bytes> = (0..5).map(|_| rb.freeze()).collect();
        assert_eq!(rb.retired.len(), 5, "the five reused (the first, in use, not retired)");
        drop(again);
        // Quiet ticks: the spare buffers go one a tick, down to MIN_FREE.
        for _ in 0..6 {
            rb.end_tick();
        }
        rb.freeze();
        assert_eq!(
            rb.retired.len(),
            MIN_FREE + 1,
            "one taken, MIN_FREE kept, the one in use retired"
        );
    }

    #[test]
    fn at_most_max_retired_handles_are_kept() {
        let mut rb = ReadBuf::new();
        let pinned: Vec<Bytes> = (0..MAX_RETIRED + 3).map(|_| rb.freeze()).collect();
        assert_eq!(rb.retired.len(), MAX_RETIRED);
        drop(pinned);
        rb.freeze();
        assert_eq!(rb.room(), SCRATCH_SIZE);
    }
}
