//! Turns received bytes into WebSocket events: frame reassembly, unmasking,
//! UTF-8 validation, limits.
//!
//! Call order: pass the buffered bytes, starting at the first unconsumed one,
//! to [`Decoder::decode`]; on `Frame { consumed, .. }` drop `consumed` bytes
//! (after handling the event) and call again; on `NeedMore` read more and
//! call again with the same start. The decoder unmasks in place, so bytes it
//! has seen must be handed back unchanged.

use std::borrow::Cow;
use std::ops::Range;

use super::close::parse_close_payload;
use super::frame::{apply_mask, parse_header, FrameHeader, Opcode};
use super::utf8::Utf8Validator;
use super::ProtocolError;

/// Which end of the connection the decoder serves: servers receive masked
/// frames, clients unmasked ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives client frames, which must be masked.
    Server,
    /// Receives server frames, which must not be.
    Client,
}

/// One thing a peer said, borrowed from the buffer it arrived in (or
/// owning the reassembled payload of a fragmented message).
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message.
    Text(Cow<'a, str>),
    /// A complete binary message.
    Binary(Cow<'a, [u8]>),
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong with its payload.
    Pong(&'a [u8]),
    /// A close frame; code 1005 when it carried none.
    Close {
        /// The close code.
        code: u16,
        /// The UTF-8 reason, possibly empty.
        reason: &'a str,
    },
}

/// A frame that completed something. It holds no borrow, so the decoder
/// (and whatever owns it) is free again; [`Frame::event`] turns it into an
/// [`Event`] borrowing the buffer it was decoded from. Ranges index that
/// buffer. One flat enum: it is matched once per message.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole text frame: `buf[range]` (UTF-8 checked by [`Frame::event`]).
    Text(Range<usize>),
    /// A whole binary frame: `buf[range]`.
    Binary(Range<usize>),
    /// A text message reassembled from fragments (UTF-8 checked as it came).
    AssembledText(Vec<u8>),
    /// A binary message reassembled from fragments.
    AssembledBinary(Vec<u8>),
    /// A ping; its payload's range.
    Ping(Range<usize>),
    /// A pong; its payload's range.
    Pong(Range<usize>),
    /// A close frame; its payload's range (checked by [`Frame::event`]).
    Close(Range<usize>),
    /// A whole compressed message in one frame (permessage-deflate, when
    /// the decoder [accepts compressed messages](Decoder::accept_compressed)):
    /// its deflated payload's range, to inflate before use.
    Deflated {
        /// A text message (validate it once inflated).
        text: bool,
        /// The compressed payload.
        range: Range<usize>,
    },
    /// A compressed message reassembled from fragments, to inflate.
    DeflatedAssembled {
        /// A text message.
        text: bool,
        /// The compressed payload.
        data: Vec<u8>,
    },
}

impl Frame {
    /// The event, borrowing `buf`: the same buffer (from the same start)
    /// that [`Decoder::decode`] was given. Fails on a text message or close
    /// reason that is not UTF-8, or a close code nobody may send. A
    /// compressed message has no event until it is inflated (with the
    /// connection's permessage-deflate codec): it fails with
    /// `BadCompressedData` here.
    #[inline]
    pub fn event(self, buf: &[u8]) -> Result<Event<'_>, ProtocolError> {
        Ok(match self {
            Frame::Text(r) => Event::Text(Cow::Borrowed(
                std::str::from_utf8(&buf[r]).map_err(|_| ProtocolError::InvalidUtf8)?,
            )),
            Frame::AssembledText(v) => Event::Text(Cow::Owned(
                String::from_utf8(v).map_err(|_| ProtocolError::InvalidUtf8)?,
            )),
            Frame::Binary(r) => Event::Binary(Cow::Borrowed(&buf[r])),
            Frame::AssembledBinary(v) => Event::Binary(Cow::Owned(v)),
            Frame::Ping(r) => Event::Ping(&buf[r]),
            Frame::Pong(r) => Event::Pong(&buf[r]),
            Frame::Close(r) => {
                let (code, reason) = parse_close_payload(&buf[r])?;
                Event::Close { code, reason }
            }
            Frame::Deflated { .. } | Frame::DeflatedAssembled { .. } => return Err(ProtocolError::BadCompressedData),
        })
    }
}

/// The outcome of one [`Decoder::decode`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The buffer ends inside a frame.
    NeedMore,
    /// A whole frame was consumed; `frame` is `None` for a non-final fragment.
    Frame {
        /// Bytes of the buffer the frame occupied.
        consumed: usize,
        /// What the frame completed, if anything.
        frame: Option<Frame>,
    },
}

/// The frame being decoded: its header, kept compact (a header is at most
/// 14 bytes long), and how much of its payload is done. Every open
/// WebSocket holds one, so its size is paid 10,000 times over.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    header_len: u8,
    payload_len: u64,
    /// Payload bytes already unmasked (and validated, for text).
    done: usize,
}

impl InFrame {
    fn header(&self) -> FrameHeader {
        FrameHeader {
            fin: self.fin,
            // Checked when the frame started; the message remembers it.
            rsv1: false,
            opcode: self.opcode,
            mask: self.mask,
            payload_len: self.payload_len,
            header_len: usize::from(self.header_len),
        }
    }
}

/// Per-connection receive state. Holds no heap memory unless a fragmented
/// message is being assembled. Every open WebSocket holds one (10,000 idle
/// ones hold 10,000), so it is kept to 48 bytes: the limits as `u32`s, and
/// what only a fragmented message needs in a box made when one starts.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    /// The limits, `u32::MAX` meaning none (see [`Decoder::new`]).
    max_frame: u32,
    max_message: u32,
    frame: Option<InFrame>,
    /// The fragmented data message in progress, if any.
    message: Option<Box<Assembly>>,
    utf8: Utf8Validator,
    /// RSV1 may mark a message as compressed (permessage-deflate agreed).
    compressed_ok: bool,
    /// The message in progress is compressed.
    compressed: bool,
}

/// A fragmented message being put together: made by its first frame,
/// dropped when its last hands it over, so an idle connection holds no
/// buffer and no box.
#[derive(Debug)]
struct Assembly {
    opcode: Opcode,
    /// The payload so far.
    data: Vec<u8>,
}

/// A limit kept in 32 bits: 4 GiB - 1 and over count as none (no frame or
/// message that large fits in memory anyway).
fn cap(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// A kept limit as the caller gave it (none: `usize::MAX`).
#[inline]
fn uncap(limit: u32) -> usize {
    if limit == u32::MAX {
        usize::MAX
    } else {
        limit as usize
    }
}

impl Decoder {
    /// A decoder for `role` that rejects frames over `max_frame` bytes and
    /// messages over `max_message` bytes (close code 1009). A limit of
    /// 4 GiB - 1 or more means none.
    pub fn new(role: Role, max_frame: usize, max_message: usize) -> Decoder {
        Decoder {
            role,
            max_frame: cap(max_frame),
            max_message: cap(max_message),
            frame: None,
            message: None,
            utf8: Utf8Validator::default(),
            compressed_ok: false,
            compressed: false,
        }
    }

    /// Which end this decoder reads for.
    #[inline]
    pub fn role(&self) -> Role {
        self.role
    }

    /// From now on a message whose first frame has RSV1 set is compressed
    /// (permessage-deflate was agreed): it is handed over as
    /// [`Frame::Deflated`] or [`Frame::DeflatedAssembled`], its size limit
    /// checked on the wire bytes here and on the inflated ones by whoever
    /// inflates it. Without this, RSV1 fails with `ReservedBits`.
    pub fn accept_compressed(&mut self) {
        self.compressed_ok = true;
    }

    /// Decodes the frame at the start of `buf`. See the module docs for the
    /// call order. After an error the decoder must not be used again.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Decoded, ProtocolError> {
        let mut frame = match self.frame {
            Some(f) => f,
            None => match parse_header(buf)? {
                None => return Ok(Decoded::NeedMore),
                Some(h) => self.start_frame(h)?,
            },
        };
        let h = frame.header();
        let len = h.payload_len as usize;
        let avail = (buf.len() - h.header_len).min(len);
        let whole_at_once = frame.done == 0 && avail == len;
        // The common case, in short: a whole unfragmented message in the
        // buffer. Unmask it and hand it over (a text one is validated once,
        // when its `&str` is made).
        if whole_at_once && h.fin && matches!(h.opcode, Opcode::Text | Opcode::Binary) && !self.compressed {
            // (Its header may have been read by an earlier call that
            // found the payload short.)
            self.frame = None;
            let consumed = h.header_len + len;
            if let Some(m) = h.mask {
                apply_mask(&mut buf[h.header_len..consumed], m, 0);
            }
            let at = h.header_len..consumed;
            let frame = if h.opcode == Opcode::Text {
                Frame::Text(at)
            } else {
                Frame::Binary(at)
            };
            return Ok(Decoded::Frame {
                consumed,
                frame: Some(frame),
            });
        }
        // Compressed bytes are not text yet: checked once inflated.
        let text = self.is_text(h.opcode) && !self.compressed;
        if avail > frame.done {
            let new = &mut buf[h.header_len + frame.done..h.header_len + avail];
            if let Some(m) = h.mask {
                apply_mask(new, m, frame.done);
            }
            // A whole unfragmented text frame is validated once, below, when
            // its &str is made; anything arriving in pieces is checked as it
            // comes, so bad UTF-8 fails fast.
            if text && !(whole_at_once && h.fin && h.opcode == Opcode::Text) {
                self.utf8.feed(new).map_err(|()| ProtocolError::InvalidUtf8)?;
            }
            frame.done = avail;
        }
        if frame.done < len {
            self.frame = Some(frame);
            return Ok(Decoded::NeedMore);
        }
        self.frame = None;
        let consumed = h.header_len + len;
        let frame = self.finish_frame(h, &buf[h.header_len..consumed], h.header_len..consumed)?;
        Ok(Decoded::Frame { consumed, frame })
    }

    /// The wire length (header and payload) of the frame whose start the
    /// last `decode` saw but could not finish, or `None` when no frame is
    /// in progress or its header is incomplete. A caller that buffers the
    /// partial frame can use it to copy no more than that frame still needs.
    #[inline]
    pub fn pending_frame_len(&self) -> Option<u64> {
        self.frame.map(|f| u64::from(f.header_len) + f.payload_len)
    }

    fn is_text(&self, opcode: Opcode) -> bool {
        opcode == Opcode::Text
            || (opcode == Opcode::Continuation && self.message.as_ref().is_some_and(|m| m.opcode == Opcode::Text))
    }

    fn start_frame(&mut self, h: FrameHeader) -> Result<InFrame, ProtocolError> {
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.rsv1 {
            // Only the first frame of a data message may carry it, and only
            // once compression was agreed.
            if !self.compressed_ok || !matches!(h.opcode, Opcode::Text | Opcode::Binary) {
                return Err(ProtocolError::ReservedBits);
            }
        }
        if matches!(h.opcode, Opcode::Text | Opcode::Binary) {
            self.compressed = h.rsv1;
        }
        let max_frame = uncap(self.max_frame);
        if h.payload_len > max_frame as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: max_frame,
            });
        }
        match (h.opcode, &self.message) {
            (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (Opcode::Text, None) => self.utf8.reset(),
            _ => {}
        }
        if !h.opcode.is_control() {
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len());
            let total = so_far as u64 + h.payload_len;
            let max_message = uncap(self.max_message);
            if total > max_message as u64 {
                return Err(ProtocolError::MessageTooLarge {
                    len: total,
                    max: max_message,
                });
            }
        }
        Ok(InFrame {
            fin: h.fin,
            opcode: h.opcode,
            mask: h.mask,
            // At most 14: a header's longest form.
            header_len: h.header_len as u8,
            payload_len: h.payload_len,
            done: 0,
        })
    }

    fn finish_frame(
        &mut self,
        h: FrameHeader,
        payload: &[u8],
        at: Range<usize>,
    ) -> Result<Option<Frame>, ProtocolError> {
        let frame = match h.opcode {
            Opcode::Ping => Frame::Ping(at),
            Opcode::Pong => Frame::Pong(at),
            Opcode::Close => Frame::Close(at),
            Opcode::Text | Opcode::Binary if h.fin && self.compressed => Frame::Deflated {
                text: h.opcode == Opcode::Text,
                range: at,
            },
            Opcode::Text if h.fin => Frame::Text(at),
            Opcode::Binary if h.fin => Frame::Binary(at),
            Opcode::Text | Opcode::Binary => {
                self.message = Some(Box::new(Assembly {
                    opcode: h.opcode,
                    data: payload.to_vec(),
                }));
                return Ok(None);
            }
            Opcode::Continuation => {
                // (`start_frame` refused a continuation with no message.)
                let Some(mut message) = self.message.take() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                message.data.extend_from_slice(payload);
                if !h.fin {
                    self.message = Some(message);
                    return Ok(None);
                }
                let Assembly { opcode, data: whole } = *message;
                if self.compressed {
                    return Ok(Some(Frame::DeflatedAssembled {
                        text: opcode == Opcode::Text,
                        data: whole,
                    }));
                }
                if opcode == Opcode::Text && !self.utf8.is_complete() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                if opcode == Opcode::Text {
                    Frame::AssembledText(whole)
                } else {
                    Frame::AssembledBinary(whole)
                }
            }
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests;
