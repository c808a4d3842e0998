//! permessage-deflate (RFC 7692), both roles: the settings, the
//! negotiation in the opening handshake, and the per-message codec
//! (feature `deflate`).
//!
//! Negotiation: a client offers with [`offer`]; a server picks the first
//! acceptable offer with [`accept`] (declining, not failing, when none is);
//! the client checks the answer with [`check_response`]. Both end with the
//! same [`DeflateParams`], seen from their own side.
//!
//! The codec ([`Deflate`]) compresses whole messages (sync flush, the
//! trailing `00 00 ff ff` removed) and inflates whole messages (the tail put
//! back), checking the size while it inflates: a small message that would
//! inflate past `max_message_size` is refused after at most that much
//! output. Memory is the cost that matters (zlib's window and hash tables):
//! a side that resets its context after every message (no context takeover)
//! needs no state between messages, so it borrows a compressor or
//! decompressor shared by the thread instead of keeping one per connection;
//! a side with context takeover keeps its own, made on its first message.

mod codec;

pub use codec::Deflate;

/// permessage-deflate settings of one side, server or client.
///
/// "Own" is the direction this side compresses, "peer" the one it
/// inflates. The defaults are for a server with many connections: both
/// directions without context takeover, so an idle connection holds no
/// zlib state at all and a broadcast is compressed once for all.
///
/// # Memory
///
/// Counted by `tools/deflate-memory` with zlib-rs 0.6 (heap bytes per
/// connection after a message each way):
///
/// - **No context takeover** (the server's defaults, both directions): no
///   zlib state per connection, whatever the window or memory level. A
///   connection holds its codec (32 bytes) and, on a server, the agreed
///   answer for [`ChannelInfo::extensions`](super::info::ChannelInfo::extensions)
///   (~75 bytes): 508 bytes per idle server connection against 402
///   without deflate (328 if the client offers nothing). Each thread keeps
///   one compressor and one decompressor per window size for all such
///   connections (~430 KB at the defaults), used during a message only.
/// - **Our context kept** (`no_context_takeover: false`, or the peer asks
///   for it): a compressor per connection, made on its first compressed
///   message: `4 * 2^window_bits + 7 * 2^(mem_level + 6)` bytes, plus a
///   128 KiB hash table whatever the settings (zlib-rs sizes it apart from
///   `mem_level`, unlike zlib) and ~3.5 KB of state. That is 380 KB at
///   15/8 (the defaults), 495 KB at 15/9, 166 KB at 12/5, 147 KB at 11/3,
///   138 KB at 9/1: a smaller window and memory level save little, and
///   nothing gets near zlib's 16 KB at 11/3.
/// - **The peer's context kept** (`peer_no_context_takeover: false`): a
///   decompressor per connection, made on the first compressed message
///   received: ~48 KB whatever `peer_window_bits` (zlib-rs always
///   allocates a 32 KiB window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib level, 0 (store) to 9 (smallest). Default 6. Level 1 costs
    /// about half the CPU for about 10% larger output on JSON.
    pub level: u8,
    /// Our compressor's window, 9-15 (a peer may ask for less). Default
    /// 15. With context takeover a kept compressor costs `4 * 2^window_bits`
    /// bytes for it (128 KiB at 15, 8 KiB at 11).
    pub window_bits: u8,
    /// Our compressor's memory level, 1-9. Default 8. With context takeover
    /// a kept compressor costs `7 * 2^(mem_level + 6)` bytes for it (112
    /// KiB at 8, 3.5 KiB at 3).
    pub mem_level: u8,
    /// Start every message we send with an empty context, so nothing is
    /// kept between messages. Default `true` on a server, `false` on a
    /// client.
    pub no_context_takeover: bool,
    /// Ask the peer to start every message it sends with an empty context,
    /// so we keep no decompressor between messages. Default `true` on a
    /// server, `false` on a client. (A peer that refuses is declined.)
    pub peer_no_context_takeover: bool,
    /// Ask the peer to compress with at most this window, 9-15. Default 15.
    /// This saves the peer's memory, not ours: zlib-rs gives every
    /// decompressor a 32 KiB window whatever this says.
    pub peer_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed (their
    /// header would eat the gain). Default 64.
    pub threshold: usize,
}

impl DeflateConfig {
    /// The defaults for a server (see the type's docs).
    pub fn server() -> DeflateConfig {
        DeflateConfig {
            level: 6,
            window_bits: 15,
            mem_level: 8,
            no_context_takeover: true,
            peer_no_context_takeover: true,
            peer_window_bits: 15,
            threshold: 64,
        }
    }

    /// The defaults for a client: context takeover both ways (one
    /// connection, the best ratio), whatever the server asks for.
    pub fn client() -> DeflateConfig {
        DeflateConfig {
            no_context_takeover: false,
            peer_no_context_takeover: false,
            ..DeflateConfig::server()
        }
    }

    /// The same settings with every value in its range.
    fn clamped(&self) -> DeflateConfig {
        DeflateConfig {
            level: self.level.min(9),
            window_bits: self.window_bits.clamp(9, 15),
            mem_level: self.mem_level.clamp(1, 9),
            peer_window_bits: self.peer_window_bits.clamp(9, 15),
            ..self.clone()
        }
    }
}

/// What a handshake agreed on, from one side's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// We start each message we send with an empty context.
    pub no_context_takeover: bool,
    /// The peer starts each message it sends with an empty context.
    pub peer_no_context_takeover: bool,
    /// Our compressor's window.
    pub window_bits: u8,
    /// The largest window the peer compresses with.
    pub peer_window_bits: u8,
}

/// One extension of a `Sec-WebSocket-Extensions` value: its name and its
/// parameters (name, optional value without quotes).
type Extension<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// Splits header values into extensions (`a; x=1, b` is two).
fn extensions<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Extension<'a>> {
    values
        .flat_map(|v| v.split(','))
        .filter_map(|ext| {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?;
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p, None),
                })
                .collect();
            Some((name, params))
        })
        .collect()
}

/// A window size parameter's value: 8-15, no leading zeros.
fn window_bits(v: &str) -> Option<u8> {
    match v.parse::<u8>() {
        Ok(n @ 8..=15) if !v.starts_with('0') => Some(n),
        _ => None,
    }
}

/// The server's choice among the offers in `values` (the request's
/// `Sec-WebSocket-Extensions` headers): the parameters and the response
/// header value, or `None` to decline (no offer, or none acceptable).
///
/// The value is one of a few strings kept for the life of the process
/// (see `intern`), so a channel keeps no copy of its own.
pub fn accept<'a>(
    values: impl Iterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<(DeflateParams, &'static str)> {
    let config = config.clamped();
    'offers: for (name, params) in extensions(values) {
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            continue;
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut server_nct = config.no_context_takeover;
        let mut client_nct = config.peer_no_context_takeover;
        let mut server_max: Option<u8> = None;
        let mut client_max: Option<Option<u8>> = None;
        for (k, v) in params {
            if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                continue 'offers; // a parameter twice: not acceptable
            }
            seen.push(k);
            match (k.to_ascii_lowercase().as_str(), v) {
                ("server_no_context_takeover", None) => server_nct = true,
                // The client will not take over its context (§7.1.1.2): so
                // we need no decompressor of our own for it, and say so.
                ("client_no_context_takeover", None) => client_nct = true,
                ("server_max_window_bits", Some(v)) => match window_bits(v) {
                    // zlib cannot compress with a 256-byte window.
                    Some(8) | None => continue 'offers,
                    Some(n) => server_max = Some(n),
                },
                ("client_max_window_bits", None) => client_max = Some(None),
                ("client_max_window_bits", Some(v)) => match window_bits(v) {
                    Some(n) => client_max = Some(Some(n)),
                    None => continue 'offers,
                },
                _ => continue 'offers,
            }
        }
        let window = server_max.map_or(config.window_bits, |m| m.min(config.window_bits));
        let mut response = String::from("permessage-deflate");
        if server_nct {
            response.push_str("; server_no_context_takeover");
        }
        if client_nct {
            response.push_str("; client_no_context_takeover");
        }
        if server_max.is_some() || window < 15 {
            response.push_str(&format!("; server_max_window_bits={window}"));
        }
        // The client's window: ours to limit only if it said it can be,
        // and never past what it offered (§7.1.2.2), 8 included: we inflate
        // with at least 9 bits, which reads a stream made with 8.
        let peer_window = match client_max {
            Some(offered) => {
                let w = offered.map_or(config.peer_window_bits, |o| o.min(config.peer_window_bits));
                if w < 15 || offered.is_some() {
                    response.push_str(&format!("; client_max_window_bits={w}"));
                }
                w
            }
            None => 15,
        };
        let params = DeflateParams {
            no_context_takeover: server_nct,
            peer_no_context_takeover: client_nct,
            window_bits: window,
            peer_window_bits: peer_window,
        };
        return Some((params, intern(response)));
    }
    None
}

/// A server's answer, kept once for the whole process: every channel that
/// agreed the same points at the same string instead of holding a copy
/// (with the defaults, 74 bytes and an allocation per connection). There
/// are few: an answer is two flags and at most two window sizes of 9-15,
/// so at most 2 x 2 x 8 x 8 = 256 strings can ever be kept.
fn intern(answer: String) -> &'static str {
    static ANSWERS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut answers = ANSWERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = answers.iter().find(|a| **a == answer) {
        return known;
    }
    let kept: &'static str = Box::leak(answer.into_boxed_str());
    answers.push(kept);
    kept
}

/// The client's offer, for its `Sec-WebSocket-Extensions` header.
pub fn offer(config: &DeflateConfig) -> String {
    let config = config.clamped();
    let mut offer = String::from("permessage-deflate");
    if config.no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if config.peer_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.peer_window_bits < 15 {
        offer.push_str(&format!("; server_max_window_bits={}", config.peer_window_bits));
    }
    if config.window_bits < 15 {
        offer.push_str(&format!("; client_max_window_bits={}", config.window_bits));
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// Checks the server's answer to [`offer`] (`value`, its
/// `Sec-WebSocket-Extensions`, or `None` when it declined). Returns the
/// parameters, `None` when declined, or why the answer is not acceptable
/// (the handshake then fails).
pub fn check_response(value: Option<&str>, config: &DeflateConfig) -> Result<Option<DeflateParams>, String> {
    let Some(value) = value else { return Ok(None) };
    let config = config.clamped();
    let exts = extensions(std::iter::once(value));
    let [(name, params)] = exts.as_slice() else {
        return Err(format!(
            "server answered extensions {value:?}; one permessage-deflate was offered"
        ));
    };
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!("server chose extension {name:?}, which was not offered"));
    }
    let mut p = DeflateParams {
        no_context_takeover: config.no_context_takeover,
        peer_no_context_takeover: false,
        window_bits: config.window_bits,
        peer_window_bits: 15,
    };
    let mut seen: Vec<&str> = Vec::new();
    for &(k, v) in params {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            return Err(format!("parameter {k} twice in {value:?}"));
        }
        seen.push(k);
        match (k.to_ascii_lowercase().as_str(), v) {
            ("server_no_context_takeover", None) => p.peer_no_context_takeover = true,
            ("client_no_context_takeover", None) => p.no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => match window_bits(v) {
                Some(n) if n <= config.peer_window_bits => p.peer_window_bits = n,
                _ => return Err(format!("bad server_max_window_bits in {value:?}")),
            },
            ("client_max_window_bits", Some(v)) => match window_bits(v) {
                // zlib cannot compress with a 256-byte window.
                Some(8) => return Err("server asks for client_max_window_bits=8, which zlib cannot do".into()),
                Some(n) => p.window_bits = n.min(config.window_bits),
                None => return Err(format!("bad client_max_window_bits in {value:?}")),
            },
            _ => return Err(format!("unexpected parameter {k} in {value:?}")),
        }
    }
    if config.peer_no_context_takeover && !p.peer_no_context_takeover {
        return Err("server did not accept server_no_context_takeover".into());
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_accepts(offer: &str) -> Option<(DeflateParams, &'static str)> {
        accept(std::iter::once(offer), &DeflateConfig::server())
    }

    #[test]
    fn the_server_takes_the_first_acceptable_offer_and_declines_the_rest() {
        let (p, r) = server_accepts("permessage-deflate; client_max_window_bits").unwrap();
        // The client's window is left at 15: no need to say so.
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(p.no_context_takeover && p.peer_no_context_takeover);
        // Unknown parameter, then a window of 8: both skipped; the third wins.
        let (p, r) = server_accepts(
            "permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
        )
        .unwrap();
        assert_eq!(p.window_bits, 10);
        assert!(r.contains("server_max_window_bits=10"), "{r}");
        assert_eq!(server_accepts("x-webkit-deflate-frame"), None);
        assert_eq!(server_accepts("permessage-deflate; client_max_window_bits=16"), None);
        assert_eq!(
            server_accepts("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            None
        );
        assert_eq!(
            server_accepts("permessage-deflate; server_max_window_bits"),
            None,
            "needs a value"
        );
        // A browser's offer.
        let (p, _) = server_accepts("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!((p.window_bits, p.peer_window_bits), (15, 15));
    }

    #[test]
    fn connections_that_agree_the_same_share_one_answer_string() {
        let (_, a) = server_accepts("permessage-deflate; client_max_window_bits").unwrap();
        let (_, b) = server_accepts("permessage-deflate").unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a, b), "the same answer is kept once");
        let (_, c) = server_accepts("permessage-deflate; server_max_window_bits=10").unwrap();
        assert!(!std::ptr::eq(a, c));
        assert_eq!(
            c,
            server_accepts("permessage-deflate; server_max_window_bits=10")
                .unwrap()
                .1
        );
    }

    #[test]
    fn the_client_checks_the_answer_to_its_offer() {
        let c = DeflateConfig::client();
        assert_eq!(offer(&c), "permessage-deflate; client_max_window_bits");
        assert_eq!(check_response(None, &c), Ok(None));
        let p = check_response(
            Some("permessage-deflate; client_no_context_takeover; client_max_window_bits=9"),
            &c,
        )
        .unwrap()
        .unwrap();
        assert!(p.no_context_takeover);
        assert_eq!(p.window_bits, 9);
        assert!(check_response(Some("permessage-deflate; client_max_window_bits=8"), &c).is_err());
        assert!(check_response(Some("permessage-deflate, permessage-deflate"), &c).is_err());
        assert!(check_response(Some("x-other"), &c).is_err());
        assert!(check_response(Some("permessage-deflate; mystery"), &c).is_err());
    }
}
