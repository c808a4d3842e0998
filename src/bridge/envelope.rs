//! The bridge's wire format: one Redis pub/sub message per published topic
//! message. Pure: bytes in, bytes out, no I/O.
//!
//! Layout, version 1 (all integers big-endian):
//!
//! ```text
//! offset  size  field
//!      0     1  version (1); a node refuses any other
//!      1     1  opcode: 0x1 text, 0x2 binary (the WebSocket opcodes)
//!      2     1  flags: bit 0 set = an `except` channel follows; others 0
//!      3     8  origin node id (a node drops its own echo)
//!     11    (8) except: the channel's `Channel::id`, only with flag bit 0
//!      .     4  topic length T
//!      .     T  topic, UTF-8
//!      .     4  payload length P
//!      .     P  payload, any bytes
//! ```
//!
//! The message must end right after the payload. Both lengths are
//! explicit, so a payload may hold any byte and a message cut short (or
//! padded) is caught rather than misread. A later version changes the
//! first byte; nodes of this version count such messages in
//! `decode_errors` and skip them, so a mixed-version cluster degrades to
//! "not delivered" instead of misdelivery.

use crate::channel::Channel;
use crate::proto::frame::Opcode;

/// The version this node writes and the only one it reads.
pub(crate) const VERSION: u8 = 1;

/// Flag bit: an `except` channel id follows the origin.
const FLAG_EXCEPT: u8 = 0x01;

/// Bytes before the optional `except`: version, opcode, flags, origin.
const FIXED_LEN: usize = 1 + 1 + 1 + 8;

/// One message as it travels between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    /// The node that published it.
    pub origin: u64,
    /// `Text` or `Binary`.
    pub opcode: Opcode,
    /// The channel the origin left out (meaningful only on the origin).
    pub except: Option<Channel>,
    /// The topic, as given to `publish`.
    pub topic: &'a str,
    /// The message's bytes.
    pub payload: &'a [u8],
}

/// Why bytes are not an envelope this node can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// The bytes end before the envelope does.
    #[error("envelope truncated")]
    Truncated,
    /// Another version's envelope (or not an envelope at all).
    #[error("envelope version {0}, this node reads version 1")]
    Version(u8),
    /// An opcode other than text (1) or binary (2).
    #[error("envelope opcode {0:#x} is not text or binary")]
    Opcode(u8),
    /// Flag bits this version does not define.
    #[error("envelope flags {0:#x} unknown")]
    Flags(u8),
    /// An `except` id no channel can have.
    #[error("envelope except id {0} is not a channel id")]
    Except(u64),
    /// The topic is not UTF-8.
    #[error("envelope topic is not UTF-8")]
    TopicNotUtf8,
    /// Bytes after the payload.
    #[error("{0} bytes after the envelope's payload")]
    TrailingBytes(usize),
}

/// Why a message cannot be put in an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// Only text and binary messages travel between nodes.
    Opcode(Opcode),
    /// A topic or payload of 4 GiB or more.
    TooLong,
}

impl Envelope<'_> {
    /// The envelope's size on the wire.
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + if self.except.is_some() { 8 } else { 0 } + 4 + self.topic.len() + 4 + self.payload.len()
    }

    /// Appends the envelope to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !matches!(self.opcode, Opcode::Text | Opcode::Binary) {
            return Err(EncodeError::Opcode(self.opcode));
        }
        let topic_len = u32::try_from(self.topic.len()).map_err(|_| EncodeError::TooLong)?;
        let payload_len = u32::try_from(self.payload.len()).map_err(|_| EncodeError::TooLong)?;
        out.reserve(self.encoded_len());
        out.push(VERSION);
        out.push(self.opcode.as_u8());
        out.push(if self.except.is_some() { FLAG_EXCEPT } else { 0 });
        out.extend_from_slice(&self.origin.to_be_bytes());
        if let Some(except) = self.except {
            out.extend_from_slice(&except.id().to_be_bytes());
        }
        out.extend_from_slice(&topic_len.to_be_bytes());
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(&payload_len.to_be_bytes());
        out.extend_from_slice(self.payload);
        Ok(())
    }

    /// The envelope as a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

/// Reads an envelope from untrusted bytes; never panics.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != VERSION {
        return Err(EnvelopeError::Version(version));
    }
    let op = r.u8()?;
    let opcode = match Opcode::from_u8(op) {
        Some(o @ (Opcode::Text | Opcode::Binary)) => o,
        _ => return Err(EnvelopeError::Opcode(op)),
    };
    let flags = r.u8()?;
    if flags & !FLAG_EXCEPT != 0 {
        return Err(EnvelopeError::Flags(flags));
    }
    let origin = r.u64()?;
    let except = if flags & FLAG_EXCEPT != 0 {
        let id = r.u64()?;
        Some(Channel::from_id(id).ok_or(EnvelopeError::Except(id))?)
    } else {
        None
    };
    let topic_len = r.u32()?;
    let topic = std::str::from_utf8(r.take(topic_len)?).map_err(|_| EnvelopeError::TopicNotUtf8)?;
    let payload_len = r.u32()?;
    let payload = r.take(payload_len)?;
    if !r.0.is_empty() {
        return Err(EnvelopeError::TrailingBytes(r.0.len()));
    }
    Ok(Envelope {
        origin,
        opcode,
        except,
        topic,
        payload,
    })
}

/// A cursor over the bytes left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u32) -> Result<&'a [u8], EnvelopeError> {
        let n = usize::try_from(n).map_err(|_| EnvelopeError::Truncated)?;
        if self.0.len() < n {
            return Err(EnvelopeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u32)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, EnvelopeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_byte() -> Vec<u8> {
        (0..=255u8).chain((0..=255u8).rev()).collect()
    }

    fn samples(payload: &[u8]) -> Vec<Envelope<'_>> {
        vec![
            Envelope {
                origin: 0,
                opcode: Opcode::Text,
                except: None,
                topic: "",
                payload: b"",
            },
            Envelope {
                origin: u64::MAX,
                opcode: Opcode::Binary,
                except: Some(Channel { index: 7, gen: 3 }),
                topic: "room/42 é",
                payload,
            },
            Envelope {
                origin: 0x0102_0304_0506_0708,
                opcode: Opcode::Text,
                except: Some(Channel {
                    index: (1 << 24) - 1,
                    gen: u32::MAX,
                }),
                topic: "t",
                payload: "héllo".as_bytes(),
            },
        ]
    }

    #[test]
    fn round_trips() {
        let payload = every_byte();
        for env in samples(&payload) {
            let bytes = env.encode().unwrap();
            assert_eq!(bytes.len(), env.encoded_len());
            assert_eq!(bytes[0], VERSION);
            assert_eq!(decode(&bytes), Ok(env));
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let env = Envelope {
            origin: 0x0102_0304_0506_0708,
            opcode: Opcode::Binary,
            except: Some(Channel { index: 5, gen: 1 }),
            topic: "ab",
            payload: &[0xff, 0x00],
        };
        let expected: Vec<u8> = [
            &[1, 2, 1][..],
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &((1u64 << 24) | 5).to_be_bytes(),
            &[0, 0, 0, 2],
            b"ab",
            &[0, 0, 0, 2],
            &[0xff, 0x00],
        ]
        .concat();
        assert_eq!(env.encode().unwrap(), expected);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let payload = every_byte();
        for env in samples(&payload) {
            let bytes = env.encode().unwrap();
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]), Err(EnvelopeError::Truncated), "cut at {cut}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = samples(b"x")[1].encode().unwrap();
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(EnvelopeError::TrailingBytes(1)));
    }

    #[test]
    fn another_version_is_refused() {
        let mut bytes = samples(b"x")[0].encode().unwrap();
        for v in [0u8, 2, 0x7b, 0xff] {
            bytes[0] = v;
            assert_eq!(decode(&bytes), Err(EnvelopeError::Version(v)));
        }
        // JSON someone else published on the channel.
        assert_eq!(decode(b"{\"a\":1}"), Err(EnvelopeError::Version(b'{')));
    }

    #[test]
    fn bad_fields_are_refused() {
        let good = samples(b"x")[0].encode().unwrap();
        for op in [0x0u8, 0x8, 0x9, 0xA, 0x3, 0xff] {
            let mut b = good.clone();
            b[1] = op;
            assert_eq!(decode(&b), Err(EnvelopeError::Opcode(op)));
        }
        let mut b = good.clone();
        b[2] = 0x02;
        assert_eq!(decode(&b), Err(EnvelopeError::Flags(0x02)));

        let mut b = samples(b"x")[1].encode().unwrap();
        b[FIXED_LEN..FIXED_LEN + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(decode(&b), Err(EnvelopeError::Except(u64::MAX)));

        let bad_topic = Envelope {
            topic: "ab",
            ..samples(b"")[0]
        };
        let mut b = bad_topic.encode().unwrap();
        b[FIXED_LEN + 4] = 0xff;
        assert_eq!(decode(&b), Err(EnvelopeError::TopicNotUtf8));

        // A length past the end, however large.
        let mut b = good.clone();
        b[FIXED_LEN..FIXED_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&b), Err(EnvelopeError::Truncated));
    }

    #[test]
    fn only_text_and_binary_are_encoded() {
        for op in [Opcode::Close, Opcode::Ping, Opcode::Pong, Opcode::Continuation] {
            let env = Envelope {
                opcode: op,
                ..samples(b"")[0]
            };
            assert_eq!(env.encode(), Err(EncodeError::Opcode(op)));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = samples(b"payload")[1].encode().unwrap();
        for _ in 0..20_000 {
            let mut b = base.clone();
            // Flip a few bytes of a valid envelope, or make noise.
            if rng.random_bool(0.5) {
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            } else {
                b = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
            }
            let _ = decode(&b);
        }
    }
}
