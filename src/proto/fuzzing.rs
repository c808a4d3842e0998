//! Entry points shared by the fuzz targets (`fuzz/`) and the regression
//! test that replays their findings (`tests/fuzz_regressions.rs`). Each
//! takes arbitrary bytes, drives one parser the way hvws drives it, and
//! panics only if an invariant breaks.

use std::net::SocketAddr;

use super::decoder::{Decoded, Decoder, Role};
use super::handshake::{is_upgrade, offered_protocols, parse_response, validate_request};
use super::http::HttpResponse;
use super::http1::{encode_response, parse_head};
use super::utf8::Utf8Validator;

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

/// The request-head parser with small limits, then the response encoder.
pub fn http_head(data: &[u8]) {
    match parse_head(data, peer(), 4096, 1 << 16) {
        Ok(Some(head)) => {
            assert!(head.head_len <= data.len(), "head longer than the input");
            let req = head.request;
            let _ = (req.path(), req.query(), req.query_params(), req.header("host"));
            let mut out = Vec::new();
            encode_response(
                &HttpResponse::text(req.target().to_owned()),
                head.keep_alive,
                false,
                &mut out,
            );
        }
        Ok(None) => assert!(data.len() <= 4096, "an over-long head must be an error, not Partial"),
        Err(e) => {
            let _ = e.status();
        }
    }
}

/// The server's upgrade checks on a parsed request, and the client's check
/// of a server answer.
pub fn handshake(data: &[u8]) {
    if let Ok(Some(head)) = parse_head(data, peer(), 8192, 0) {
        if is_upgrade(&head.request) {
            let _ = validate_request(&head.request);
            let _ = offered_protocols(&head.request).count();
        }
    }
    let offered = ["chat".to_owned()];
    if let Ok(Some(acc)) = parse_response(data, "dGhlIHNhbXBsZSBub25jZQ==", &offered, true) {
        assert!(acc.head_len <= data.len());
    }
}

/// The frame decoder in both roles. The first byte picks the piece size
/// the rest arrives in; pieces are buffered and consumed frames drained,
/// as the driver does.
pub fn frame_decoder(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split % 64) + 1;
    for role in [Role::Server, Role::Client] {
        let mut decoder = Decoder::new(role, 1 << 12, 1 << 14);
        let mut buf = Vec::new();
        'feed: for chunk in rest.chunks(piece) {
            buf.extend_from_slice(chunk);
            loop {
                let len = buf.len();
                match decoder.decode(&mut buf) {
                    Ok(Decoded::NeedMore) => break,
                    Ok(Decoded::Frame { consumed, frame }) => {
                        assert!(consumed > 0 && consumed <= len, "consumed {consumed} of {len}");
                        // The event checks what decode leaves to it: a whole
                        // text frame's UTF-8, a close frame's code and reason.
                        if let Some(Err(e)) = frame.map(|f| f.event(&buf[..consumed])) {
                            assert!(matches!(e.close_code(), 1002 | 1007), "{e:?}");
                            break 'feed;
                        }
                        buf.drain(..consumed);
                    }
                    Err(e) => {
                        assert!(matches!(e.close_code(), 1002 | 1007 | 1009), "{e:?}");
                        break 'feed;
                    }
                }
            }
        }
    }
    utf8_agrees_with_std(rest, piece);
}

/// The incremental validator must agree with `std::str::from_utf8` however
/// the input is split.
fn utf8_agrees_with_std(data: &[u8], piece: usize) {
    let mut v = Utf8Validator::default();
    let incremental = data.chunks(piece).all(|c| v.feed(c).is_ok()) && v.is_complete();
    assert_eq!(incremental, std::str::from_utf8(data).is_ok(), "UTF-8 verdicts differ");
}
