//! RFC 6455 §5.2 frame headers: parse, encode, and the masking transform.

use super::ProtocolError;

/// A WebSocket frame opcode (RFC 6455 §5.2).
///
/// `Text` and `Binary` start a message, `Continuation` carries its further
/// fragments; `Close`, `Ping` and `Pong` are control frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A further fragment of the message in progress (0x0).
    Continuation,
    /// A UTF-8 text message, or its first fragment (0x1).
    Text,
    /// A binary message, or its first fragment (0x2).
    Binary,
    /// A close frame (0x8).
    Close,
    /// A ping (0x9); the peer answers with a pong carrying the same payload.
    Ping,
    /// A pong (0xA).
    Pong,
}

impl Opcode {
    /// The opcode's 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// The opcode for a wire value, `None` for the reserved ones.
    pub fn from_u8(v: u8) -> Option<Opcode> {
        Some(match v {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: last fragment of its message.
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate). Allowed by
    /// [`parse_header`] on any frame; whoever knows what was negotiated
    /// decides (the [`Decoder`](super::decoder::Decoder)).
    pub rsv1: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// Masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Bytes the header occupies on the wire (2 to 14).
    pub header_len: usize,
}

/// Parses the frame header at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold the whole header.
/// Rejects what no endpoint may accept: RSV2 and RSV3 (no extension hvws
/// speaks uses them), reserved opcodes, fragmented or oversized control
/// frames, and a 64-bit length with its top bit set. RSV1 is reported in
/// [`FrameHeader::rsv1`].
// Inlined into the decoder's per-frame path: left to itself the compiler
// stopped inlining it when unrelated code grew (48 instructions a 32-byte
// message in callgrind).
#[inline]
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let rsv1 = b0 & 0x40 != 0;
    let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut header_len) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidLength);
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControl);
        }
        if payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::ControlTooLong);
        }
    }
    let mask = if masked {
        let Some(m) = buf.get(header_len..header_len + 4) else {
            return Ok(None);
        };
        header_len += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        opcode,
        mask,
        payload_len,
        header_len,
    }))
}

/// Appends a frame header to `out`.
pub fn encode_header(out: &mut Vec<u8>, fin: bool, opcode: Opcode, len: usize, mask: Option<[u8; 4]>) {
    let b0 = (u8::from(fin) << 7) | opcode.as_u8();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.extend_from_slice(&[b0, mask_bit | len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.extend_from_slice(&[b0, mask_bit | 126]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[b0, mask_bit | 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
}

/// Appends a whole frame to `out`, masking the payload when `mask` is given.
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    out.reserve(payload.len() + 14);
    encode_header(out, fin, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        apply_mask(&mut out[start..], m, 0);
    }
}

/// Appends a whole compressed message's frame (FIN and RSV1 set; the
/// payload is the deflated message).
pub fn encode_compressed_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    let at = out.len();
    encode_frame(out, true, opcode, payload, mask);
    out[at] |= 0x40;
}

/// XORs `buf` with the masking key, `offset` being the position of `buf[0]`
/// within the frame's payload (so a payload can be unmasked piece by piece).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = [0u8; 4];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(offset + i) % 4];
    }
    // Word-at-a-time: the key repeats every 4 bytes, so an 8-byte word of it
    // lines up with every 8-byte chunk.
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn header(bytes: &[u8]) -> FrameHeader {
        parse_header(bytes).unwrap().expect("complete header")
    }

    #[test]
    fn parses_rfc_examples() {
        // RFC 6455 §5.7: unmasked "Hello", masked "Hello".
        let h = header(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (true, Opcode::Text, 5, 2)
        );
        assert_eq!(h.mask, None);
        let mut frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let h = header(&frame);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.header_len, 6);
        apply_mask(&mut frame[6..], h.mask.unwrap(), 0);
        assert_eq!(&frame[6..], b"Hello");
    }

    #[test]
    fn extended_lengths() {
        assert_eq!(header(&[0x82, 0x7E, 0x01, 0x00]).payload_len, 256);
        let h = header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.payload_len, h.header_len), (65536, 10));
        assert_eq!(
            parse_header(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn partial_headers_ask_for_more() {
        for partial in [&[][..], &[0x81], &[0x82, 0x7E, 0x01], &[0x81, 0x85, 1, 2, 3]] {
            assert_eq!(parse_header(partial), Ok(None), "{partial:?}");
        }
    }

    #[test]
    fn rejects_what_the_rfc_forbids() {
        assert_eq!(parse_header(&[0xA1, 0x00]), Err(ProtocolError::ReservedBits));
        assert_eq!(parse_header(&[0x91, 0x00]), Err(ProtocolError::ReservedBits));
        assert!(
            parse_header(&[0xC1, 0x00]).unwrap().unwrap().rsv1,
            "RSV1 is the decoder's call"
        );
        assert_eq!(parse_header(&[0x83, 0x00]), Err(ProtocolError::ReservedOpcode(3)));
        assert_eq!(parse_header(&[0x8B, 0x00]), Err(ProtocolError::ReservedOpcode(11)));
        assert_eq!(parse_header(&[0x09, 0x00]), Err(ProtocolError::FragmentedControl));
        assert_eq!(parse_header(&[0x89, 0x7E, 0, 126]), Err(ProtocolError::ControlTooLong));
    }

    #[test]
    fn encode_roundtrips_every_length_class() {
        for len in [0usize, 1, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_frame(&mut out, true, Opcode::Binary, &payload, Some([9, 8, 7, 6]));
            let h = header(&out);
            assert_eq!(h.payload_len as usize, len);
            let body = &mut out[h.header_len..];
            apply_mask(body, h.mask.unwrap(), 0);
            assert_eq!(body, &payload[..]);
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let data: Vec<u8> = (0..100u8).collect();
        let mask = [0xde, 0xad, 0xbe, 0xef];
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        let mut pieces = data.clone();
        let (a, rest) = pieces.split_at_mut(7);
        let (b, c) = rest.split_at_mut(30);
        apply_mask(a, mask, 0);
        apply_mask(b, mask, 7);
        apply_mask(c, mask, 37);
        assert_eq!(whole, pieces);
    }
}
