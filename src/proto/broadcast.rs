//! One message for many receivers, encoded once (see [`Broadcast`]).

use bytes::Bytes;

use super::frame::{encode_frame, encode_header, Opcode};
use super::outbox::SHARE_MIN;

/// One message for many receivers, encoded once: as a plain frame, and
/// (permessage-deflate) compressed once for all receivers that keep no
/// compression context and share settings. A payload of at least
/// [`SHARE_MIN`] bytes is not copied per receiver: the frame's header is
/// encoded once and every receiver queues it plus a reference to one
/// shared payload (see `outbox.rs`).
#[derive(Debug)]
pub struct Broadcast<'a> {
    pub(super) opcode: Opcode,
    /// The payload, when the caller lent it.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(super) payload: &'a [u8],
    /// The payload, when it is held as shared bytes (then `payload` is
    /// empty).
    pub(super) owned: Option<Bytes>,
    /// Receivers queue `plain` (the frame's header only) and then `owned`
    /// by reference; otherwise `plain` is the whole frame.
    pub(super) by_ref: bool,
    pub(super) plain: Vec<u8>,
    /// The compressed frame, and the settings it was made with.
    #[cfg(feature = "deflate")]
    pub(super) deflated: Option<(super::deflate::DeflateParams, Vec<u8>)>,
}

impl<'a> Broadcast<'a> {
    /// A broadcast of a text or binary `payload`; `buf` is an empty buffer
    /// to encode into (kept by the caller between broadcasts). A large
    /// payload is copied once, into the buffer all receivers share.
    pub fn new(opcode: Opcode, payload: &'a [u8], buf: Vec<u8>) -> Broadcast<'a> {
        if payload.len() >= SHARE_MIN {
            return Broadcast::shared(opcode, Bytes::copy_from_slice(payload), buf);
        }
        Broadcast::make(opcode, payload, None, buf)
    }

    /// A broadcast of a payload already held as [`Bytes`]: a large one is
    /// shared without any copy, a small one copied into every receiver's
    /// queue as with [`Broadcast::new`].
    pub fn shared(opcode: Opcode, payload: Bytes, buf: Vec<u8>) -> Broadcast<'a> {
        Broadcast::make(opcode, &[], Some(payload), buf)
    }

    fn make(opcode: Opcode, payload: &'a [u8], owned: Option<Bytes>, mut buf: Vec<u8>) -> Broadcast<'a> {
        buf.clear();
        let by_ref = owned.as_ref().is_some_and(|b| b.len() >= SHARE_MIN);
        match &owned {
            Some(bytes) if by_ref => encode_header(&mut buf, true, opcode, bytes.len(), None),
            Some(bytes) => encode_frame(&mut buf, true, opcode, bytes, None),
            None => encode_frame(&mut buf, true, opcode, payload, None),
        }
        Broadcast {
            opcode,
            payload,
            owned,
            by_ref,
            plain: buf,
            #[cfg(feature = "deflate")]
            deflated: None,
        }
    }

    /// The payload's length.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }

    /// The message's payload.
    #[inline]
    pub(super) fn payload(&self) -> &[u8] {
        self.owned.as_deref().unwrap_or(self.payload)
    }

    /// The plain frame's buffer, for the next broadcast.
    pub fn into_buffer(self) -> Vec<u8> {
        self.plain
    }
}
