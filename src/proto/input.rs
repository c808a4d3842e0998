//! The bytes a connection is given to read: what it kept from earlier reads
//! (a frame or head cut by the end of a read) followed by newly read bytes.
//!
//! The driver reads every socket into one shared buffer. Complete frames are
//! decoded straight from it, unmasked in place; only an incomplete tail is
//! copied into the connection's own buffer. When such a tail is waiting, the
//! new bytes first top it up with just what its frame still needs, and the
//! rest is again decoded in place, so a stream of large frames is not copied
//! through the connection's buffer once one has straddled a read.
//!
//! Consumption is lazy: an event handed out borrows the bytes it came from,
//! so they are only dropped when the connection asks for the next ones.

/// Which buffer the bytes being decoded come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Tail,
    Data,
}

/// A connection's pending tail plus the bytes of one read, with cursors.
/// Made by the connection's `begin_input`, handed back to its `end_input`.
#[derive(Debug)]
pub struct Input<'d> {
    tail: Vec<u8>,
    /// Consumed prefix of `tail`, dropped at the next `next()`.
    tail_pos: usize,
    data: &'d mut [u8],
    data_pos: usize,
    /// Where the buffer given out by the last `next()` starts.
    last: (Src, usize),
}

impl<'d> Input<'d> {
    /// `tail`: bytes kept from earlier reads (may be an empty buffer to
    /// reuse); `data`: what was just read.
    #[inline]
    pub fn new(tail: Vec<u8>, data: &'d mut [u8]) -> Input<'d> {
        Input {
            tail,
            tail_pos: 0,
            data,
            data_pos: 0,
            last: (Src::Data, 0),
        }
    }

    /// Bytes of the carried-over tail not yet consumed.
    #[inline]
    pub fn tail_len(&self) -> usize {
        self.tail.len() - self.tail_pos
    }

    /// The bytes to decode next, or `None` when everything was consumed.
    /// While a tail is waiting it is topped up with at most `want` (at
    /// least one) new bytes and given out; once it is used up, the new
    /// bytes are given out in place.
    #[inline]
    pub fn next(&mut self, want: usize) -> Option<&mut [u8]> {
        if self.tail_pos > 0 {
            self.tail.drain(..self.tail_pos);
            self.tail_pos = 0;
        }
        if !self.tail.is_empty() {
            let n = want.clamp(1, usize::MAX).min(self.data.len() - self.data_pos);
            self.tail
                .extend_from_slice(&self.data[self.data_pos..self.data_pos + n]);
            self.data_pos += n;
            self.last = (Src::Tail, 0);
            return Some(&mut self.tail[..]);
        }
        if self.data_pos == self.data.len() {
            return None;
        }
        self.last = (Src::Data, self.data_pos);
        Some(&mut self.data[self.data_pos..])
    }

    /// The decoder found what the last `next()` gave out too short: whether
    /// another `next()` can give more. Bytes given out in place are all
    /// there is; a topped-up tail can grow while unread data remains.
    #[inline]
    pub fn can_give_more(&self) -> bool {
        self.last.0 == Src::Tail && self.data_pos < self.data.len()
    }

    /// Marks `n` bytes of what the last `next()` gave out as consumed.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        match self.last.0 {
            Src::Tail => self.tail_pos += n,
            Src::Data => self.data_pos += n,
        }
    }

    /// The buffer the last `next()` gave out, from the same start, for
    /// resolving a decoded frame's ranges.
    #[inline]
    pub fn last(&self) -> &[u8] {
        match self.last {
            (Src::Tail, start) => &self.tail[start..],
            (Src::Data, start) => &self.data[start..],
        }
    }

    /// Drops everything not yet consumed (the connection stopped reading).
    pub fn discard(&mut self) {
        self.tail_pos = self.tail.len();
        self.data_pos = self.data.len();
    }

    /// What is left unconsumed, as the connection's new tail.
    #[inline]
    pub fn finish(mut self) -> Vec<u8> {
        self.tail.drain(..self.tail_pos);
        self.tail.extend_from_slice(&self.data[self.data_pos..]);
        self.tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_tail_the_data_is_given_out_in_place() {
        let mut data = *b"abcdef";
        let mut input = Input::new(Vec::new(), &mut data);
        assert_eq!(input.next(usize::MAX).unwrap(), b"abcdef");
        input.consume(4);
        assert_eq!(input.next(9).unwrap(), b"ef");
        assert_eq!(input.last(), b"ef");
        assert!(!input.can_give_more(), "in place, the rest is all there is");
        assert_eq!(input.finish(), b"ef");
    }

    #[test]
    fn a_tail_is_topped_up_with_what_it_wants_then_the_rest_is_in_place() {
        let mut data = *b"3456789";
        let mut input = Input::new(b"012".to_vec(), &mut data);
        // The frame in the tail needs 2 more bytes.
        assert_eq!(input.next(2).unwrap(), b"01234");
        assert!(input.can_give_more());
        input.consume(5);
        // The tail is used up: the rest is given out where it was read.
        assert_eq!(input.next(2).unwrap(), b"56789");
        input.consume(1);
        assert_eq!(input.finish(), b"6789");
    }

    #[test]
    fn a_tail_that_cannot_be_topped_up_says_so() {
        let mut data = *b"";
        let mut input = Input::new(b"01".to_vec(), &mut data);
        assert_eq!(input.next(5).unwrap(), b"01");
        assert!(!input.can_give_more());
        assert_eq!(input.tail_len(), 2);
        input.discard();
        assert_eq!(input.finish(), b"");
    }
}
