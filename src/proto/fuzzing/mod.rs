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
#[cfg(feature = "deflate")]
use super::Limits;

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
                "Thu, 01 Jan 1970 00:00:00 GMT",
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

/// A WebSocket with permessage-deflate agreed, fed arbitrary frames in
/// pieces: a server connection (`ServerConn`, masked frames) or a client
/// one (`ClientConn`, unmasked), as the first byte says, with or without
/// context takeover and with one of four window sizes. Every message
/// received is echoed (so compressed again). Nothing may panic, a message
/// may not pass `max_message_size` (64 KiB here, so a bomb stops there),
/// and a failure must be 1002, 1007 or 1009. The rest of the input is also
/// compressed and inflated back by the codec, which must give it back.
///
/// The first byte: bit 0 the role (0 server), bit 1 context takeover, bits
/// 2-3 the window (9, 10, 12, 15), bits 5-7 the piece size.
#[cfg(feature = "deflate")]
pub fn deflate_decoder(data: &[u8]) {
    use super::deflate::{Deflate, DeflateConfig, DeflateParams};

    let Some((&knobs, rest)) = data.split_first() else {
        return;
    };
    let takeover = knobs & 2 != 0;
    let window = [9, 10, 12, 15][usize::from((knobs >> 2) & 3)];
    let piece = [1, 2, 3, 5, 7, 14, 64, usize::MAX][usize::from(knobs >> 5)];
    let config = DeflateConfig {
        no_context_takeover: !takeover,
        peer_no_context_takeover: !takeover,
        window_bits: window,
        peer_window_bits: window,
        // Every echo is compressed.
        threshold: 0,
        ..DeflateConfig::server()
    };
    let limits = Limits {
        max_frame_size: 1 << 14,
        max_message_size: 1 << 16,
        deflate: Some(config.clone()),
        ..Limits::default()
    };
    if knobs & 1 == 0 {
        deflate_server(rest, piece, &limits);
    } else {
        deflate_client(rest, piece, &limits, takeover, window);
    }

    // The codec both ways on the input itself, twice (with takeover the
    // second message refers back to the first).
    let params = DeflateParams {
        no_context_takeover: !takeover,
        peer_no_context_takeover: !takeover,
        window_bits: window,
        peer_window_bits: window,
    };
    let (mut ours, mut theirs) = (Deflate::new(params, &config), Deflate::new(params, &config));
    for _ in 0..2 {
        let mut wire = Vec::new();
        ours.compress(rest, &mut wire);
        let mut back = Vec::new();
        theirs
            .decompress(&wire, &mut back, rest.len())
            .expect("our own output inflates, to no more than the input");
        assert!(back == rest, "the round trip changed the message");
    }
}

/// Whether a WebSocket's end is one a peer's bytes may cause.
#[cfg(feature = "deflate")]
fn check_end(end: &super::close::Ended) {
    if let Some(super::ConnError::Protocol(e)) = &end.error {
        assert!(matches!(e.close_code(), 1002 | 1007 | 1009), "{e:?}");
    }
}

#[cfg(feature = "deflate")]
fn deflate_server(frames: &[u8], piece: usize, limits: &Limits) {
    use super::frame::Opcode;
    use super::info::ChannelInfo;
    use super::server::{ServerConn, ServerEvent};

    let now = std::time::Instant::now();
    let mut conn = ServerConn::new(peer(), now, limits);
    let mut request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        .to_vec();
    let mut input = conn.begin_input(&mut request, Vec::new());
    match conn.poll_input(&mut input, now, limits) {
        Some(ServerEvent::Upgrade(req)) => {
            assert!(conn.accept_upgrade(ChannelInfo::new(&req, None), now, limits));
        }
        other => panic!("expected the upgrade, got {other:?}"),
    }
    conn.end_input(input);
    assert!(
        conn.info().and_then(ChannelInfo::extensions).is_some(),
        "deflate agreed"
    );
    for chunk in frames.chunks(piece) {
        let mut chunk = chunk.to_vec();
        let mut input = conn.begin_input(&mut chunk, Vec::new());
        let mut over = false;
        while let Some(event) = conn.poll_input(&mut input, now, limits) {
            let echo = match event {
                ServerEvent::Text(t) => Some((Opcode::Text, t.into_owned().into_bytes())),
                ServerEvent::Binary(b) => Some((Opcode::Binary, b.into_owned())),
                ServerEvent::Closed(end) => {
                    check_end(&end);
                    over = true;
                    None
                }
                _ => None,
            };
            if let Some((opcode, payload)) = echo {
                assert!(payload.len() <= limits.max_message_size, "{} bytes", payload.len());
                conn.send_message(opcode, &payload, limits);
            }
        }
        conn.end_input(input);
        conn.transmit().clear();
        let _ = conn.handle_flushed();
        if over {
            return;
        }
    }
}

#[cfg(feature = "deflate")]
fn deflate_client(frames: &[u8], piece: usize, limits: &Limits, takeover: bool, window: u8) {
    use super::client::{ClientConn, ClientEvent, Request};
    use super::frame::Opcode;
    use super::handshake::encode_accept;

    let now = std::time::Instant::now();
    let request = Request {
        authority: "h".into(),
        resource: "/".into(),
        ..Request::default()
    };
    let mut conn = ClientConn::new(&request, now, limits);
    conn.handle_connected();
    let sent = String::from_utf8(std::mem::take(conn.transmit())).expect("ASCII request");
    let key = sent
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key");
    let mut answer = String::from("permessage-deflate");
    if !takeover {
        answer.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    if window < 15 {
        answer.push_str(&format!(
            "; server_max_window_bits={window}; client_max_window_bits={window}"
        ));
    }
    let mut response = Vec::new();
    encode_accept(key, None, Some(&answer), &mut response);
    let mut input = conn.begin_input(&mut response);
    match conn.poll_input(&mut input, now, limits) {
        Some(ClientEvent::Open {
            extensions: Some(_), ..
        }) => {}
        other => panic!("expected the open with deflate, got {other:?}"),
    }
    conn.end_input(input);
    for chunk in frames.chunks(piece) {
        let mut chunk = chunk.to_vec();
        let mut input = conn.begin_input(&mut chunk);
        let mut over = false;
        while let Some(event) = conn.poll_input(&mut input, now, limits) {
            let echo = match event {
                ClientEvent::Text(t) => Some((Opcode::Text, t.into_owned().into_bytes())),
                ClientEvent::Binary(b) => Some((Opcode::Binary, b.into_owned())),
                ClientEvent::Closed(end) => {
                    check_end(&end);
                    over = true;
                    None
                }
                _ => None,
            };
            if let Some((opcode, payload)) = echo {
                assert!(payload.len() <= limits.max_message_size, "{} bytes", payload.len());
                conn.send_message(opcode, &payload, limits);
            }
        }
        conn.end_input(input);
        conn.transmit().clear();
        conn.handle_flushed();
        if over {
            return;
        }
    }
}

/// Seed inputs for [`deflate_decoder`], made with hvws's own codec rather
/// than typed in: for each role, with and without context takeover, with
/// windows 15 and 9, a compressed text message, a compressed binary one in
/// three fragments around a ping, a plain one, the compressed text again
/// (a back-reference with takeover), and a close; for the client role the
/// RFC 7692 §7.2.3 example frames too. Server-bound frames are masked with
/// a zero key, so their payloads are the deflate bytes themselves.
#[cfg(feature = "deflate")]
pub fn deflate_decoder_seeds() -> Vec<(String, Vec<u8>)> {
    use super::deflate::{Deflate, DeflateConfig, DeflateParams};
    use super::frame::{encode_frame, Opcode};

    let snapshot = {
        let players: Vec<String> = (0..12)
            .map(|id| format!(r#"{{"id":{id},"x":{},"y":{},"hp":100}}"#, id * 7, id * 3))
            .collect();
        format!(r#"{{"type":"snapshot","tick":42,"players":[{}]}}"#, players.join(","))
    };
    let mut seeds = Vec::new();
    for (role, client) in [("server", false), ("client", true)] {
        for takeover in [false, true] {
            for (window, window_knob) in [(15u8, 3u8), (9, 0)] {
                let params = DeflateParams {
                    no_context_takeover: !takeover,
                    peer_no_context_takeover: !takeover,
                    window_bits: window,
                    peer_window_bits: window,
                };
                let mut codec = Deflate::new(params, &DeflateConfig::server());
                let mask = (!client).then_some([0u8; 4]);
                let frame = |out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8]| {
                    let at = out.len();
                    encode_frame(out, fin, opcode, payload, mask);
                    if rsv1 {
                        out[at] |= 0x40;
                    }
                };
                let mut wire = Vec::new();
                let mut text = Vec::new();
                codec.compress(snapshot.as_bytes(), &mut text);
                frame(&mut wire, true, true, Opcode::Text, &text);
                let mut binary = Vec::new();
                codec.compress(&[0, 1, 2, 3, 4, 5, 6, 7].repeat(40), &mut binary);
                let third = binary.len() / 3;
                frame(&mut wire, false, true, Opcode::Binary, &binary[..third]);
                frame(&mut wire, true, false, Opcode::Ping, b"ping");
                frame(&mut wire, false, false, Opcode::Continuation, &binary[third..2 * third]);
                frame(&mut wire, true, false, Opcode::Continuation, &binary[2 * third..]);
                frame(&mut wire, true, false, Opcode::Text, b"plain");
                let mut again = Vec::new();
                codec.compress(snapshot.as_bytes(), &mut again);
                frame(&mut wire, true, true, Opcode::Text, &again);
                if client {
                    // RFC 7692 §7.2.3.1-5 (the shared-window example needs
                    // the first one's context).
                    wire.extend_from_slice(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
                    if takeover {
                        wire.extend_from_slice(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
                    }
                    wire.extend_from_slice(&[0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00]);
                    wire.extend_from_slice(&[
                        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                    ]);
                    wire.extend_from_slice(&[
                        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
                    ]);
                    wire.extend_from_slice(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
                    wire.extend_from_slice(&[0xc1, 0x01, 0x00]);
                }
                frame(&mut wire, true, false, Opcode::Close, &[0x03, 0xe8]);
                // Whole reads, and (for one of them) reads of one byte.
                let pieces: &[(u8, &str)] = if window == 15 && !takeover {
                    &[(7, "whole"), (0, "bytes")]
                } else {
                    &[(7, "whole")]
                };
                for &(piece, how) in pieces {
                    let knobs = (piece << 5) | (window_knob << 2) | (u8::from(takeover) << 1) | u8::from(client);
                    let name = format!(
                        "seed-{role}-{}-window{window}-{how}",
                        if takeover { "takeover" } else { "no-takeover" }
                    );
                    let mut input = vec![knobs];
                    input.extend_from_slice(&wire);
                    seeds.push((name, input));
                }
            }
        }
    }
    seeds
}

mod http;
pub use http::{http_response, sse_reader};
