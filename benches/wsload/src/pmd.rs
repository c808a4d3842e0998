//! The client side of permessage-deflate (RFC 7692) for the load
//! generator, on zlib-rs (the zlib hvws uses): the offer, the server's
//! answer, a compressor that starts every message afresh, and a
//! decompressor per connection (or one shared, when the server resets its
//! context after every message).
//!
//! We always compress every message with an empty context, which any
//! agreement allows (context takeover lets a sender refer to earlier
//! messages; it never obliges it to), so a message's compressed bytes do
//! not depend on the connection and can be made once.

/// What wsload offers: what browsers offer.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The four bytes a sync flush ends with, which the sender removes.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the server agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The server starts each message with an empty context: the same
    /// message compresses to the same bytes on every connection.
    pub server_no_context_takeover: bool,
    /// Our compressor's largest window.
    pub client_max_window_bits: u8,
}

/// The value of a response head's `Sec-WebSocket-Extensions` header, if any.
pub fn extensions_header(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-extensions")
            .then(|| value.trim().to_string())
    })
}

/// The parameters of the server's answer to [`OFFER`] (`None`: declined).
pub fn parse_answer(value: Option<&str>) -> Result<Option<Params>, String> {
    let Some(value) = value else { return Ok(None) };
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate"))
        || value.contains(',')
    {
        return Err(format!(
            "server answered extensions {value:?}; one permessage-deflate was offered"
        ));
    }
    let mut p = Params {
        server_no_context_takeover: false,
        client_max_window_bits: 15,
    };
    for part in parts.filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        let bits = || -> Result<u8, String> {
            v.and_then(|v| v.parse().ok())
                .filter(|b| (8..=15).contains(b))
                .ok_or_else(|| format!("bad {k} in {value:?}"))
        };
        match k.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => p.server_no_context_takeover = true,
            // We reset after every message anyway.
            "client_no_context_takeover" => {}
            // Our decompressors take any window up to 15.
            "server_max_window_bits" => {
                bits()?;
            }
            // zlib cannot compress with 8; 9 is what it does instead.
            "client_max_window_bits" => p.client_max_window_bits = bits()?.max(9),
            _ => return Err(format!("unexpected parameter {k} in {value:?}")),
        }
    }
    Ok(Some(p))
}

/// A compressor that starts every message with an empty context.
pub struct Compressor(zlib_rs::Deflate);

impl Compressor {
    /// zlib level 6, memLevel 8, the given window (the defaults of zlib and
    /// of most WebSocket libraries).
    pub fn new(window_bits: u8) -> Compressor {
        Compressor(zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
            level: 6,
            window_bits: -i32::from(window_bits),
            mem_level: 8,
            ..zlib_rs::DeflateConfig::default()
        }))
    }

    /// `input` compressed as one message (sync flush, tail removed).
    pub fn compress(&mut self, input: &[u8]) -> Vec<u8> {
        let d = &mut self.0;
        let mut out = vec![0u8; input.len() + 64];
        let mut len = 0;
        let mut consumed = 0;
        loop {
            if out.len() - len < 64 {
                out.resize(out.len() * 2, 0);
            }
            let (i0, o0) = (d.total_in(), d.total_out());
            let room = out.len() - len;
            d.compress(&input[consumed..], &mut out[len..], zlib_rs::DeflateFlush::SyncFlush)
                .expect("deflate on valid state");
            consumed += (d.total_in() - i0) as usize;
            let written = (d.total_out() - o0) as usize;
            len += written;
            if consumed == input.len() && written < room {
                break;
            }
        }
        out.truncate(len);
        assert!(out.ends_with(&TAIL), "a sync flush ends with 00 00 ff ff");
        out.truncate(len - TAIL.len());
        d.reset();
        out
    }
}

/// A decompressor: one connection's when the server keeps its context, or
/// one for all (reset after every message) when it does not.
pub struct Inflater(zlib_rs::Inflate);

impl Default for Inflater {
    fn default() -> Self {
        Inflater(zlib_rs::Inflate::new(false, 15))
    }
}

impl Inflater {
    /// Inflates one message (the tail put back) into `out` (cleared
    /// first), at most `max` bytes.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), String> {
        out.clear();
        for chunk in [input, &TAIL[..]] {
            let mut consumed = 0;
            loop {
                let len = out.len();
                let room = (chunk.len() - consumed).max(256) * 4;
                out.resize(len + room, 0);
                let (i0, o0) = (self.0.total_in(), self.0.total_out());
                let status = self
                    .0
                    .decompress(&chunk[consumed..], &mut out[len..], zlib_rs::InflateFlush::SyncFlush)
                    .map_err(|e| format!("inflate: {e:?}"))?;
                consumed += (self.0.total_in() - i0) as usize;
                let written = (self.0.total_out() - o0) as usize;
                out.truncate(len + written);
                if out.len() > max {
                    return Err(format!("a message inflated past {max} bytes"));
                }
                match status {
                    zlib_rs::Status::StreamEnd => break,
                    _ if consumed == chunk.len() && written < room => break,
                    zlib_rs::Status::BufError if written == 0 && consumed == chunk.len() => break,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Forgets the context (after a message from a server without context
    /// takeover).
    pub fn reset(&mut self) {
        self.0.reset(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(parse_answer(None), Ok(None));
        let p = parse_answer(Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ))
        .unwrap()
        .unwrap();
        assert!(p.server_no_context_takeover);
        let p = parse_answer(Some(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.client_max_window_bits, 12);
        assert!(!p.server_no_context_takeover);
        assert!(parse_answer(Some("x-webkit-deflate-frame")).is_err());
        assert!(parse_answer(Some("permessage-deflate; what")).is_err());
        let head = b"HTTP/1.1 101 Switching Protocols\r\nsec-websocket-extensions: permessage-deflate\r\n\r\n";
        assert_eq!(extensions_header(head).as_deref(), Some("permessage-deflate"));
    }

    #[test]
    fn round_trip_with_and_without_reset() {
        let msgs = crate::snapshot::ticks(4);
        let mut c = Compressor::new(15);
        let mut keep = Inflater::default();
        let mut out = Vec::new();
        for m in &msgs {
            let z = c.compress(m);
            assert!(z.len() < m.len() / 2, "{} of {}", z.len(), m.len());
            keep.inflate(&z, &mut out, 1 << 20).unwrap();
            assert_eq!(&out, m);
            let mut fresh = Inflater::default();
            fresh.inflate(&z, &mut out, 1 << 20).unwrap();
            assert_eq!(&out, m);
        }
        assert!(keep.inflate(&c.compress(&msgs[0]), &mut out, 100).is_err());
    }
}
