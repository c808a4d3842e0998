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
//! copy or a `memset` (`Bytes::try_into_mut`). Steady echo traffic cycles
//! two or three buffers; a peer that does not read pins the buffers its
//! queue refers to until it is closed (the write cap bounds how much), and
//! past [`MAX_RETIRED`] buffers the oldest is let go (it is freed when its
//! last slice is written or dropped) and a new one allocated.

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

/// Frozen buffers kept for reuse.
const MAX_RETIRED: usize = 8;

/// The shared read buffer: reads land at `pos`; what lies before it is
/// kept for placeholders queued this tick.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: BytesMut,
    pos: usize,
    retired: Vec<Bytes>,
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: BytesMut::zeroed(SCRATCH_SIZE),
            pos: 0,
            retired: Vec::new(),
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
        if self.retired.len() == MAX_RETIRED {
            self.retired.remove(0);
        }
        self.retired.push(whole.clone());
        whole
    }

    /// A whole, initialised buffer: a retired one nobody refers to any
    /// more, else a new one.
    fn recycle(&mut self) -> BytesMut {
        while let Some(i) = self.retired.iter().position(Bytes::is_unique) {
            if let Ok(buf) = self.retired.swap_remove(i).try_into_mut() {
                if buf.len() == SCRATCH_SIZE {
                    return buf;
                }
            }
        }
        BytesMut::zeroed(SCRATCH_SIZE)
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
    fn at_most_max_retired_buffers_are_kept() {
        let mut rb = ReadBuf::new();
        let pinned: Vec<Bytes> = (0..MAX_RETIRED + 3).map(|_| rb.freeze()).collect();
        assert_eq!(rb.retired.len(), MAX_RETIRED);
        drop(pinned);
        rb.freeze();
        assert_eq!(rb.room(), SCRATCH_SIZE);
    }
}
