//! The bytes a connection is given to read: what it kept from earlier reads
//! (a frame or head cut by the end of a read) followed by newly read bytes.
//!
//! The driver reads every socket into one shared buffer. Complete frames are
//! decoded straight from it, unmasked in place; only an incomplete tail is
//! copied into the connection's own buffer. When such a tail is waiting, the
//! new bytes first top it up with just what its frame still needs, and the
//! rest is again decoded in place, so a stream of frames is not copied
//! through the connection's buffer once one has straddled a read: as soon
//! as the carried frame (or HTTP head) is done, whatever of the top-up it
//! did not use is read where it arrived.
//!
//! A tick whose work budget runs out stops between two events; what is
//! left (whole frames among it) becomes the tail and is read in place,
//! without new bytes, when the connection's turn comes again.
//!
//! Consumption is lazy: an event handed out borrows the bytes it came from,
//! so they are only dropped when the connection asks for the next ones.

use super::http::HttpRequest;

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
    /// How many bytes at the end of `tail` were copied from `data` (the
    /// bytes just before `data_pos`) and are still untouched there.
    topped: usize,
    /// A buffer the owner lent that the tail did not need, to hand back.
    spare: Vec<u8>,
    /// A finished request the owner lent to build the next one in.
    request: Option<Box<HttpRequest>>,
    /// When a WebSocket first read from this input, as a millisecond stamp
    /// (`proto::ws`): its frames arrived together, so they all count as
    /// heard then, and the clock is converted once per read, not once per
    /// frame (a 32-byte echo's per-message work is small enough for it to
    /// show; a read holds 16 of them under load).
    stamped: Option<u32>,
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
            topped: 0,
            spare: Vec::new(),
            request: None,
            stamped: None,
        }
    }

    /// Holds `spare` (an empty buffer the owner lent for a tail that turned
    /// out to exist already) until [`Input::take_spare`].
    pub fn set_spare(&mut self, spare: Vec<u8>) {
        self.spare = spare;
    }

    /// The buffer given to [`Input::set_spare`], if any.
    pub fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Lends a finished request (answered, and not kept by anyone) for the
    /// next request head read from this input to be built in: its box and
    /// its head's buffer are reused, so a server reading requests one after
    /// the other allocates nothing for them. The owner takes it back with
    /// [`Input::take_request`] if no request used it.
    pub fn lend_request(&mut self, request: Box<HttpRequest>) {
        self.request = Some(request);
    }

    /// The request lent with [`Input::lend_request`], if it was not used.
    pub fn take_request(&mut self) -> Option<Box<HttpRequest>> {
        self.request.take()
    }

    /// Whether a request is lent.
    pub fn has_request(&self) -> bool {
        self.request.is_some()
    }

    /// Whether [`Input::stamp`] was called: a WebSocket has noted when
    /// this input's frames were heard (an input is one read, decoded in
    /// one tick unless a budget defers the rest, which then becomes a new
    /// input).
    #[inline]
    pub(crate) fn is_stamped(&self) -> bool {
        self.stamped.is_some()
    }

    /// Notes `ms` (a WebSocket's millisecond stamp, `proto::ws`) as when
    /// this input's frames were heard; returns it.
    pub(crate) fn stamp(&mut self, ms: u32) -> u32 {
        *self.stamped.insert(ms)
    }

    /// Bytes of the carried-over tail not yet consumed.
    #[inline]
    pub fn tail_len(&self) -> usize {
        self.tail.len() - self.tail_pos
    }

    /// Bytes not yet consumed, the tail's and the new data's.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.tail_len() + (self.data.len() - self.data_pos)
    }

    /// The bytes to decode next, or `None` when everything was consumed.
    /// While a tail is waiting it is topped up with at most `want` (at
    /// least one) new bytes and given out; once it is used up, the new
    /// bytes are given out in place.
    #[inline]
    pub fn next(&mut self, want: usize) -> Option<&mut [u8]> {
        // The common case first: no tail, the new bytes read in place. (A
        // tail being used up always leaves `tail_pos > 0`, so an empty tail
        // has nothing to drop.)
        if self.tail.is_empty() {
            if self.data_pos == self.data.len() {
                return None;
            }
            self.last = (Src::Data, self.data_pos);
            return Some(&mut self.data[self.data_pos..]);
        }
        if self.tail_pos > 0 {
            let left = self.tail.len() - self.tail_pos;
            if left <= self.topped {
                // What the tail still holds is all copied from the new
                // bytes, which are still there as they were: the carried
                // frame or head is done, so go back to reading in place.
                // (A tail that kept growing by a header's worth per small
                // frame would be shifted once per frame.)
                self.data_pos -= left;
                self.tail.clear();
                self.tail_pos = 0;
                self.topped = 0;
                self.last = (Src::Data, self.data_pos);
                return Some(&mut self.data[self.data_pos..]);
            }
            if self.data_pos == self.data.len() {
                // Nothing new to top it up with: a tail of whole frames
                // that a tick's budget left undelivered. Read it where it
                // is, rather than shift it down once per frame.
                self.last = (Src::Tail, self.tail_pos);
                return Some(&mut self.tail[self.tail_pos..]);
            }
            self.tail.drain(..self.tail_pos);
            self.tail_pos = 0;
        }
        let n = want.clamp(1, usize::MAX).min(self.data.len() - self.data_pos);
        self.tail
            .extend_from_slice(&self.data[self.data_pos..self.data_pos + n]);
        self.data_pos += n;
        self.topped += n;
        self.last = (Src::Tail, 0);
        Some(&mut self.tail[..])
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
        self.topped = 0;
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
    fn once_the_carried_frame_is_done_the_unused_top_up_is_read_in_place() {
        let mut data = *b"3456789";
        let mut input = Input::new(b"012".to_vec(), &mut data);
        // Topped up by 4 (a cut header asks for up to 14)...
        assert_eq!(input.next(4).unwrap(), b"0123456");
        // ...but the frame ended after byte 4: bytes 5 and 6 were copied
        // for nothing, and are read again where they arrived.
        input.consume(5);
        assert_eq!(input.next(14).unwrap(), b"56789");
        assert_eq!(input.tail_len(), 0);
        input.consume(5);
        assert!(input.next(14).is_none());
        assert_eq!(input.finish(), b"");
    }

    #[test]
    fn a_tail_of_whole_frames_is_read_in_place_without_new_bytes() {
        let mut data = *b"";
        let mut input = Input::new(b"aabbbc".to_vec(), &mut data);
        assert_eq!(input.next(usize::MAX).unwrap(), b"aabbbc");
        input.consume(2);
        assert_eq!(input.next(usize::MAX).unwrap(), b"bbbc");
        assert_eq!(input.last(), b"bbbc");
        input.consume(3);
        assert_eq!(input.remaining(), 1);
        // Stopped here (the tick's budget ran out): the rest is kept.
        assert_eq!(input.finish(), b"c");
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
