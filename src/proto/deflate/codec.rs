//! The per-message codec of permessage-deflate: whole messages compressed
//! with a sync flush (the `00 00 ff ff` tail removed) and inflated within
//! the message size limit, with zlib state kept per connection only for a
//! side that keeps context between messages.

use std::cell::RefCell;

use super::{DeflateConfig, DeflateParams};
use crate::proto::frame::{encode_compressed_frame, Opcode};
use crate::proto::ProtocolError;

/// The four bytes a sync flush ends with, which the sender removes.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Why a compressed message could not be inflated.
fn inflate_error(e: zlib_rs::InflateError) -> ProtocolError {
    log::debug!("inflate failed: {e:?}");
    ProtocolError::BadCompressedData
}

/// Compressors and decompressors shared by the connections of this thread
/// that keep no context between messages: one per window size.
#[derive(Default)]
struct Shared {
    deflaters: Vec<(u8, u8, u8, zlib_rs::Deflate)>,
    inflaters: Vec<(u8, zlib_rs::Inflate)>,
}

thread_local! {
    static SHARED: RefCell<Shared> = RefCell::new(Shared::default());
    /// Where a message is compressed before its frame header (which needs
    /// its length) is written.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One connection's permessage-deflate codec.
pub struct Deflate {
    params: DeflateParams,
    level: u8,
    mem_level: u8,
    threshold: usize,
    /// Our compressor, when we keep context between messages.
    own: Option<Box<zlib_rs::Deflate>>,
    /// Our decompressor, when the peer keeps context between messages.
    peer: Option<Box<zlib_rs::Inflate>>,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("params", &self.params)
            .field("compressor", &self.own.is_some())
            .field("decompressor", &self.peer.is_some())
            .finish()
    }
}

impl Deflate {
    /// The codec for what a handshake agreed (`params`), with this side's
    /// `config` for what the agreement leaves open.
    pub fn new(params: DeflateParams, config: &DeflateConfig) -> Deflate {
        let config = config.clamped();
        Deflate {
            params,
            level: config.level,
            mem_level: config.mem_level,
            threshold: config.threshold,
            own: None,
            peer: None,
        }
    }

    /// What was agreed.
    pub fn params(&self) -> DeflateParams {
        self.params
    }

    /// Whether a message of `len` bytes is worth compressing.
    #[inline]
    pub fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Whether this codec, keeping no context, compresses a message to the
    /// same bytes as one with `params` (a broadcast compresses once for
    /// all of them). Level and memory level are the server's, the same for
    /// every connection.
    pub fn same_output(&self, params: &DeflateParams) -> bool {
        self.params.no_context_takeover && params.no_context_takeover && self.params.window_bits == params.window_bits
    }

    /// Appends `payload` as one compressed frame (FIN and RSV1) to `out`.
    pub fn encode_message(&mut self, out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            self.compress(payload, &mut scratch);
            encode_compressed_frame(out, opcode, &scratch, mask);
            // A huge message's buffer is not kept for small ones.
            if scratch.capacity() > 1 << 20 {
                *scratch = Vec::new();
            }
        });
    }

    fn new_deflater(&self) -> zlib_rs::Deflate {
        zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
            level: i32::from(self.level),
            // Negative: a raw deflate stream, no zlib header.
            window_bits: -i32::from(self.params.window_bits),
            mem_level: i32::from(self.mem_level),
            ..zlib_rs::DeflateConfig::default()
        })
    }

    /// Compresses `payload` as one message, appending the bytes to `out`.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if self.params.no_context_takeover {
            let key = (self.params.window_bits, self.level, self.mem_level);
            SHARED.with(|shared| {
                let mut shared = shared.borrow_mut();
                let i = match shared.deflaters.iter().position(|d| (d.0, d.1, d.2) == key) {
                    Some(i) => i,
                    None => {
                        shared.deflaters.push((key.0, key.1, key.2, self.new_deflater()));
                        shared.deflaters.len() - 1
                    }
                };
                let d = &mut shared.deflaters[i].3;
                deflate_into(d, payload, out);
                d.reset();
            });
        } else {
            if self.own.is_none() {
                self.own = Some(Box::new(self.new_deflater()));
            }
            deflate_into(self.own.as_mut().expect("made above"), payload, out);
        }
    }

    /// Inflates one whole compressed message (its frames' payloads
    /// together), appending to `out`; fails with `MessageTooLarge` as soon
    /// as the output would pass `max` bytes, or `BadCompressedData`.
    pub fn decompress(&mut self, payload: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), ProtocolError> {
        if payload.is_empty() {
            // An empty message. RFC senders send one 0x00 byte (§7.2.3.6);
            // no bytes at all, with the tail put back, would leave a kept
            // decompressor inside a block header and break the next message.
            return Ok(());
        }
        let bits = self.params.peer_window_bits.max(9);
        if self.params.peer_no_context_takeover {
            SHARED.with(|shared| {
                let mut shared = shared.borrow_mut();
                let i = match shared.inflaters.iter().position(|(b, _)| *b == bits) {
                    Some(i) => i,
                    None => {
                        shared.inflaters.push((bits, zlib_rs::Inflate::new(false, bits)));
                        shared.inflaters.len() - 1
                    }
                };
                let inf = &mut shared.inflaters[i].1;
                let result = inflate_into(inf, payload, out, max);
                inf.reset(false);
                result.map(|_| ())
            })
        } else {
            let inf = self
                .peer
                .get_or_insert_with(|| Box::new(zlib_rs::Inflate::new(false, bits)));
            if inflate_into(inf, payload, out, max)? {
                // The peer ended its deflate stream with a BFINAL block
                // (§7.2.3.4): a finished decompressor would make every later
                // message empty. Its next message starts a new stream.
                inf.reset(false);
            }
            Ok(())
        }
    }
}

/// Deflates `input` with a sync flush into `out`, without the sync
/// flush's last four bytes.
fn deflate_into(d: &mut zlib_rs::Deflate, input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut consumed = 0;
    loop {
        // Room for the input at a poor ratio plus the flush's few bytes.
        let room = (input.len() - consumed) + 64;
        out.reserve(room);
        let len = out.len();
        out.resize(len + room, 0);
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d.compress(&input[consumed..], &mut out[len..], zlib_rs::DeflateFlush::SyncFlush);
        consumed += (d.total_in() - in_before) as usize;
        let written = (d.total_out() - out_before) as usize;
        out.truncate(len + written);
        match status {
            // Done when the input is taken and the output was not full
            // (zlib may have more to flush into a full buffer).
            Ok(_) if consumed == input.len() && written < room => break,
            Ok(_) => {}
            Err(e) => unreachable!("deflate cannot fail on valid state: {e:?}"),
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
}

/// Inflates `input` (plus the removed tail) into `out`, at most `max`
/// bytes. However much the input would inflate to, `out` holds at most
/// `max + 1` bytes more than it did, and its capacity grows no further
/// (doubling, as a `Vec` does, but capped there). Returns whether the
/// peer ended the deflate stream (a block with BFINAL set).
fn inflate_into(
    inf: &mut zlib_rs::Inflate,
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, ProtocolError> {
    let start = out.len();
    // One byte of room past the limit tells "more than max".
    let cap = max.saturating_add(1);
    for chunk in [input, &TAIL[..]] {
        let mut consumed = 0;
        loop {
            let produced = out.len() - start;
            // What the rest of the input may plausibly give, within the cap
            // (`produced <= max` here, so at least one byte).
            let room = (cap - produced).min((chunk.len() - consumed).max(1024).saturating_mul(4));
            let len = out.len();
            if out.capacity() - len < room {
                let grown = (out.capacity() - start).saturating_mul(2);
                let target = grown.max(produced + room).min(cap);
                out.reserve_exact(target - produced);
            }
            out.resize(len + room, 0);
            let (in_before, out_before) = (inf.total_in(), inf.total_out());
            let status = inf
                .decompress(&chunk[consumed..], &mut out[len..], zlib_rs::InflateFlush::SyncFlush)
                .map_err(inflate_error)?;
            let took = (inf.total_in() - in_before) as usize;
            let written = (inf.total_out() - out_before) as usize;
            consumed += took;
            out.truncate(len + written);
            if out.len() - start > max {
                return Err(ProtocolError::MessageTooLarge {
                    len: (out.len() - start) as u64,
                    max,
                });
            }
            match status {
                // The peer ended the stream (BFINAL): what follows within
                // this message is padding (§7.2.3.4 has one 0x00 byte) and
                // our tail, neither of which means anything.
                zlib_rs::Status::StreamEnd => return Ok(true),
                // All taken, and room was left: nothing more to come.
                _ if consumed == chunk.len() && written < room => break,
                // Input left and room to write, yet nothing moved: a stream
                // that cannot go on (never seen; better than a spin).
                _ if took == 0 && written == 0 => return Err(ProtocolError::BadCompressedData),
                _ => {}
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(nct: bool) -> Deflate {
        let params = DeflateParams {
            no_context_takeover: nct,
            peer_no_context_takeover: nct,
            window_bits: 15,
            peer_window_bits: 15,
        };
        Deflate::new(params, &DeflateConfig::server())
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        for nct in [true, false] {
            let (mut a, mut b) = (codec(nct), codec(nct));
            let msg = br#"{"type":"snapshot","players":[{"id":1,"x":10,"y":20},{"id":2,"x":11,"y":21}]}"#.repeat(20);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let mut wire = Vec::new();
                a.compress(&msg, &mut wire);
                assert!(!wire.ends_with(&TAIL));
                sizes.push(wire.len());
                let mut back = Vec::new();
                b.decompress(&wire, &mut back, 1 << 20).unwrap();
                assert_eq!(back, msg);
            }
            assert!(sizes[0] < msg.len() / 5, "{sizes:?} of {}", msg.len());
            if !nct {
                assert!(sizes[1] < sizes[0] / 4, "context takeover pays: {sizes:?}");
            }
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_is_bad_data() {
        let (mut a, mut b) = (codec(true), codec(true));
        let mut wire = Vec::new();
        a.compress(&vec![0u8; 10 << 20], &mut wire);
        assert!(wire.len() < 20 << 10, "{}", wire.len());
        let mut out = Vec::new();
        let e = b.decompress(&wire, &mut out, 1 << 20).unwrap_err();
        assert!(
            matches!(e, ProtocolError::MessageTooLarge { max, .. } if max == 1 << 20),
            "{e:?}"
        );
        assert!(out.len() <= (1 << 20) + 1, "stopped at the limit: {}", out.len());
        // Nor was more memory taken than that: growth is capped, not doubled
        // past the limit.
        assert!(out.capacity() <= (1 << 20) + 1, "capacity {}", out.capacity());
        // No limit at all is a limit too (and does not overflow).
        let mut out = Vec::new();
        b.decompress(&wire, &mut out, usize::MAX).unwrap();
        assert_eq!(out.len(), 10 << 20);
        let mut out = Vec::new();
        assert_eq!(
            b.decompress(&[0xff, 0xff, 0xff, 0xff, 0x01], &mut out, 1 << 20),
            Err(ProtocolError::BadCompressedData)
        );
        // An empty message compresses to something that inflates to empty.
        let mut wire = Vec::new();
        a.compress(b"", &mut wire);
        let mut out = Vec::new();
        b.decompress(&wire, &mut out, 10).unwrap();
        assert!(out.is_empty());
    }
}
