//! A connection's output queue: the bytes queued for the peer, in order,
//! and how far behind the peer is in reading.
//!
//! # Two kinds of bytes, one order
//!
//! Most output is copied into one inline buffer (`buf`): HTTP heads, frame
//! headers, small messages. A message whose payload is at least
//! [`SHARE_MIN`] bytes and already sits in a shared, reference-counted
//! buffer ([`Bytes`]: a broadcast's payload, one the application made with
//! `Context::send_shared`) is queued by reference instead: a segment that
//! says "after this many inline bytes comes this `Bytes`". A broadcast of a
//! large message to 1,000 receivers then holds one copy of its payload,
//! not 1,000, and each receiver's queue holds a frame header and a
//! reference count.
//!
//! A received message echoed or relayed is queued by reference too, before
//! it is shared: its segment names bytes of the driver's read buffer
//! ([`ByRef::Read`]) until the driver, before its flush, freezes that
//! buffer and hands it to [`Outbox::resolve_reads`], which makes each such
//! segment a slice of it. The flush never sees an unresolved one (it would
//! stop there). The driver's side is `driver/readbuf.rs`.
//!
//! Decided: the `bytes` crate rather than a hand-written reference-counted
//! buffer (it is in the tree already through tungstenite, `Bytes::slice`
//! and `try_into_mut` are what sharing and recycling need, and the crate
//! forbids `unsafe` of its own).
//!
//! The segments live behind an `Option<Box<..>>` that is `None` unless a
//! shared payload is queued and unwritten (or the peer is behind, see the
//! backlog below), so an idle connection is no larger than before (the
//! backlog moved into the box to make room for its pointer), and a
//! connection that only sends small messages to a peer that keeps up never
//! allocates it. Bytes appended to `buf` after a segment
//! follow it on the wire (a segment records where in `buf` it goes), so
//! every writer of inline bytes stays as it was.
//!
//! # Why 8 KiB
//!
//! Queuing by reference costs a box and a deque per connection while a
//! shared payload is queued (two allocations, freed once it is written), a
//! reference count per receiver, and one more `iovec` in the flush's
//! `writev`; copying costs a `memcpy` of the payload per receiver.
//! Measured with the threshold lowered to 1 KiB (a broadcast to 1,000
//! receivers, server CPU per delivery, benches/README.md "Large messages
//! by reference"): at 2 KiB sharing gains nothing, at 4 KiB about a tenth,
//! at 8 KiB a third. So 8 KiB, where the gain is clear: below it the copy
//! keeps the flush a plain `write` and touches no shared state, and small
//! messages, the common case in a game, go inline as before.
//!
//! # The write cap
//!
//! `backlog` counts every queued byte the last flush could not write,
//! shared or copied alike: a slow consumer is closed by the same rule
//! whether its queue holds copies or references.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Payloads at least this long are queued by reference when they come as
/// [`Bytes`]; shorter ones are copied (see the module docs).
pub const SHARE_MIN: usize = 8 * 1024;

/// Most `iovec`s one flush hands to a single `writev`: one per segment and
/// one per inline run between them. Linux allows 1,024; more than a few
/// dozen segments in one connection's queue is a peer that is not reading,
/// and the rest goes in the next `writev` of the same flush.
pub const MAX_IOV: usize = 64;

/// Bytes queued for the peer, and how far behind the peer is in reading.
/// 32 bytes, as before shared payloads: what only a connection with
/// shared payloads queued or a backlog needs is boxed apart.
///
/// A driver writes it with [`Outbox::io_slices`] (vectored) or
/// [`Outbox::front`] (one run at a time), then [`Outbox::consume`]s what
/// the socket took.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Inline bytes, written from the front (around the segments).
    pub(crate) buf: Vec<u8>,
    /// Shared payloads queued by reference, and the backlog; `None` while
    /// neither is there (an idle connection, one that only sends small
    /// messages to a peer that keeps up).
    shared: Option<Box<Segments>>,
}

/// Shared payloads in the order they go out, each after a given number of
/// `buf`'s bytes.
#[derive(Debug, Default)]
struct Segments {
    queue: VecDeque<Segment>,
    /// The bytes of all queued segments.
    len: usize,
    /// Bytes the last flush could not write. What the current tick queued
    /// does not count, so a burst of sends between two flushes never looks
    /// like a slow consumer. (32 bits, saturating: no cap is near 4 GiB.)
    /// It lives here, not inline, so the box pointer costs an idle
    /// connection nothing: a connection with a backlog has a queue, and
    /// one box for it is cheap next to the bytes it holds.
    backlog: u32,
}

#[derive(Debug)]
struct Segment {
    /// Where in `buf` it goes: after `buf[..at]`, before `buf[at..]`.
    at: usize,
    bytes: Bytes,
    /// Set while the bytes are still in the driver's read buffer (`off`,
    /// `len` there, `bytes` empty), until [`Outbox::resolve_reads`] makes
    /// them shared bytes; the flush resolves first, so it never meets one.
    read: Option<(usize, usize)>,
    /// A slice of a read buffer (resolved from `read`): it keeps the whole
    /// buffer alive, shared with the other connections' bytes of that read.
    pinned: bool,
}

impl Segment {
    #[inline]
    fn len(&self) -> usize {
        self.read.map_or(self.bytes.len(), |(_, len)| len)
    }
}

/// A payload queued by reference: shared bytes, or bytes of the read the
/// connection's driver is handing out (a received message echoed or
/// relayed), which the driver makes shared bytes before its flush.
#[derive(Debug)]
pub enum ByRef {
    /// Bytes the application (or a broadcast) holds.
    Shared(Bytes),
    /// `len` bytes at `off` in the driver's current read buffer.
    Read {
        /// Where they start in the read buffer.
        off: usize,
        /// How many.
        len: usize,
    },
}

impl Outbox {
    /// Every byte queued, inline and shared.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() + self.shared.as_ref().map_or(0, |s| s.len)
    }

    /// Whether nothing is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && !self.has_shared()
    }

    /// Whether shared payloads are queued (the flush then writes a vector
    /// of slices rather than `buf` alone).
    #[inline]
    pub fn has_shared(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.len > 0)
    }

    /// Bytes the last flush could not write (what the write cap compares
    /// with `max_write_buffer`).
    #[inline]
    pub fn backlog(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.backlog as usize)
    }

    /// Queues `bytes` by reference after everything queued so far.
    pub(crate) fn push_shared(&mut self, bytes: Bytes) {
        self.push_ref(ByRef::Shared(bytes));
    }

    /// Queues a payload by reference after everything queued so far.
    pub(crate) fn push_ref(&mut self, payload: ByRef) {
        let (bytes, read) = match payload {
            ByRef::Shared(bytes) => (bytes, None),
            ByRef::Read { off, len } => (Bytes::new(), Some((off, len))),
        };
        let seg = Segment {
            at: self.buf.len(),
            bytes,
            read,
            pinned: false,
        };
        if seg.len() == 0 {
            return;
        }
        let segs = self.shared.get_or_insert_with(Box::default);
        segs.len += seg.len();
        segs.queue.push_back(seg);
    }

    /// Whether payloads still in the driver's read buffer are queued.
    pub fn has_reads(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.queue.iter().any(|seg| seg.read.is_some()))
    }

    /// Makes every payload queued from the read buffer a slice of `read`
    /// (that buffer, now shared): a reference, not a copy.
    pub fn resolve_reads(&mut self, read: &Bytes) {
        let segs = self.shared.iter_mut().flat_map(|s| s.queue.iter_mut());
        for seg in segs {
            if let Some((off, len)) = seg.read.take() {
                seg.bytes = read.slice(off..off + len);
                seg.pinned = true;
            }
        }
    }

    /// Copies what was queued from a read buffer into bytes of its own: a
    /// peer that is not reading, or a connection the write budget left
    /// for a later flush, then holds its own bytes rather than a whole read
    /// buffer (256 KiB for what may be an 8 KiB echo). The reference is
    /// worth keeping only until the flush that follows the read.
    pub fn unpin_reads(&mut self) {
        for seg in self.shared.iter_mut().flat_map(|s| s.queue.iter_mut()) {
            if seg.pinned {
                seg.bytes = Bytes::copy_from_slice(&seg.bytes);
                seg.pinned = false;
            }
        }
    }

    /// Fills `iov` with the queued bytes in order, as far as it holds;
    /// returns how many slices it filled.
    pub fn io_slices<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut pos = 0;
        let segs = self.shared.as_deref().map(|s| &s.queue);
        for seg in segs.into_iter().flatten() {
            if seg.at > pos {
                if n == iov.len() {
                    return n;
                }
                iov[n] = IoSlice::new(&self.buf[pos..seg.at]);
                n += 1;
                pos = seg.at;
            }
            if n == iov.len() || seg.read.is_some() {
                // Unresolved (a driver that did not resolve before its
                // flush): what follows waits.
                debug_assert!(seg.read.is_none(), "a read payload not resolved before the flush");
                return n;
            }
            iov[n] = IoSlice::new(&seg.bytes);
            n += 1;
        }
        if pos < self.buf.len() && n < iov.len() {
            iov[n] = IoSlice::new(&self.buf[pos..]);
            n += 1;
        }
        n
    }

    /// The first contiguous run of queued bytes (for a writer that takes
    /// one slice at a time, such as TLS).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub fn front(&self) -> &[u8] {
        let first = self.shared.as_deref().and_then(|s| s.queue.front());
        match first {
            Some(seg) if seg.at == 0 => &seg.bytes,
            Some(seg) => &self.buf[..seg.at],
            None => &self.buf,
        }
    }

    /// Drops the first `n` queued bytes (what a write took).
    pub fn consume(&mut self, mut n: usize) {
        let Some(segs) = self.shared.as_deref_mut().filter(|s| s.len > 0) else {
            if n == self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..n);
            }
            return;
        };
        let mut inline = 0;
        while n > 0 {
            let next_at = segs.queue.front().map_or(self.buf.len(), |s| s.at);
            let k = n.min(next_at - inline);
            inline += k;
            n -= k;
            let Some(seg) = segs.queue.front_mut().filter(|_| n > 0) else {
                break;
            };
            if seg.read.is_some() {
                // Never written (the flush resolves first): only `clear`
                // gets here, dropping it with the rest.
                let len = seg.len();
                n = n.saturating_sub(len);
                segs.len -= len;
                segs.queue.pop_front();
                continue;
            }
            let k = n.min(seg.bytes.len());
            seg.bytes.advance(k);
            segs.len -= k;
            n -= k;
            if seg.bytes.is_empty() {
                segs.queue.pop_front();
            }
        }
        self.buf.drain(..inline);
        for seg in &mut segs.queue {
            seg.at -= inline;
        }
    }

    /// After a flush: records how much it left unwritten, and drops the
    /// box once it holds nothing.
    #[inline]
    pub(crate) fn settle_backlog(&mut self) {
        let left = self.len();
        if left == 0 {
            self.shared = None;
        } else {
            let backlog = u32::try_from(left).unwrap_or(u32::MAX);
            self.shared.get_or_insert_with(Box::default).backlog = backlog;
        }
    }

    /// Drops everything queued (as if written), keeping the backlog.
    pub fn clear(&mut self) {
        let n = self.len();
        self.consume(n);
    }

    /// Everything queued, in order, as one buffer (a copy; for tests and
    /// tools that move bytes between in-memory peers).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len());
        let mut pos = 0;
        let segs = self.shared.as_deref().map(|s| &s.queue);
        for seg in segs.into_iter().flatten() {
            all.extend_from_slice(&self.buf[pos..seg.at]);
            all.extend_from_slice(&seg.bytes);
            pos = seg.at;
        }
        all.extend_from_slice(&self.buf[pos..]);
        all
    }

    /// Takes everything queued, in order, as one buffer.
    pub fn take_all(&mut self) -> Vec<u8> {
        let all = self.to_vec();
        self.clear();
        all
    }

    /// Gives up everything queued; returns the inline buffer (emptied, to
    /// reuse).
    pub(crate) fn take_buf(&mut self) -> Vec<u8> {
        self.shared = None;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
