//! The Autobahn|Testsuite behaviours that matter most, as exact bytes over
//! loopback, so `cargo test` catches a regression before the suite does.
//! Each test names the suite cases it mirrors.

mod util;

use hvws::{Channel, Context, HvWebServer};
use util::{masked_frame, server, Raw};

/// The suite's testee: echo every message unchanged.
struct Echo;

impl HvWebServer for Echo {
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        ctx.send_binary(ch, data);
    }
}

/// Sends `wire` and asserts the server fails the connection with `code`:
/// a close frame carrying it, then the TCP close.
#[track_caller]
fn expect_failure(wire: &[u8], code: u16) {
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    raw.write(&mut s, wire);
    let close = raw.frame(&mut s);
    assert_eq!(close.close_code().0, code, "close frame {close:?}");
    raw.read_to_eof(&mut s);
}

/// 6.4.3 / 6.4.4: a text frame whose payload turns invalid early is failed
/// with 1007 while the rest of the frame has not even been sent.
#[test]
fn invalid_utf8_fails_fast_inside_an_incomplete_frame() {
    let payload = "κόσμε\u{FFFD}edited".as_bytes().to_vec();
    let mut bad = payload.clone();
    bad[10] = 0xF4;
    bad[11] = 0x90; // above U+10FFFF: invalid at the second byte
    let frame = masked_frame(true, 0x1, &bad);
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    raw.write(&mut s, &frame[..6 + 12]); // header + the first 12 payload bytes
    let close = raw.frame(&mut s);
    assert_eq!(close.close_code().0, 1007);
    raw.read_to_eof(&mut s);
}

/// 6.2.x: a multi-byte character split across fragments is valid.
#[test]
fn utf8_split_across_fragments_is_echoed() {
    let text = "Hello-µ@ßöäüàá-UTF-8!!".as_bytes();
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    let mut wire = Vec::new();
    for (i, byte) in text.iter().enumerate() {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        wire.extend(masked_frame(i == text.len() - 1, opcode, &[*byte]));
    }
    raw.write(&mut s, &wire);
    let echo = raw.frame(&mut s);
    assert_eq!((echo.fin, echo.opcode, echo.payload.as_slice()), (true, 0x1, text));
}

/// 2.3 / 2.4 / 2.5: pings are answered with the same payload; a ping over
/// 125 bytes is a protocol error.
#[test]
fn ping_payloads_and_their_limit() {
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    raw.write(&mut s, &masked_frame(true, 0x9, &[0xFE; 125]));
    let pong = raw.frame(&mut s);
    assert_eq!((pong.opcode, pong.payload.len()), (0xA, 125));
    expect_failure(&masked_frame(true, 0x9, &[0; 126]), 1002);
}

/// 3.x: RSV bits without an extension; 4.x: reserved opcodes.
#[test]
fn reserved_bits_and_opcodes_fail_with_1002() {
    for first in [0xC1u8, 0xA1, 0x91] {
        let mut frame = masked_frame(true, 0x1, b"x");
        frame[0] = first;
        expect_failure(&frame, 1002);
    }
    for opcode in [0x3u8, 0x7, 0xB, 0xF] {
        expect_failure(&masked_frame(true, opcode, b""), 1002);
    }
}

/// 5.1 / 5.2: fragmented control frames; 5.9: a continuation with nothing
/// to continue; 5.18: a new message before the fragmented one ended.
#[test]
fn fragmentation_errors_fail_with_1002() {
    expect_failure(&masked_frame(false, 0x9, b"frag"), 1002);
    expect_failure(&masked_frame(true, 0x0, b"cont"), 1002);
    let mut wire = masked_frame(false, 0x1, b"a");
    wire.extend(masked_frame(true, 0x1, b"b"));
    expect_failure(&wire, 1002);
}

/// 5.6 / 5.7: a ping between fragments is answered at once, the message
/// still arrives whole.
#[test]
fn ping_between_fragments() {
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    let mut wire = masked_frame(false, 0x1, b"frag");
    wire.extend(masked_frame(true, 0x9, b"mid"));
    wire.extend(masked_frame(true, 0x0, b"ment"));
    raw.write(&mut s, &wire);
    let pong = raw.frame(&mut s);
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"mid"[..]));
    let echo = raw.frame(&mut s);
    assert_eq!(echo.payload, b"fragment");
}

/// 7.3.1: an empty close is answered with an empty close; 7.3.2: a 1-byte
/// close payload is a protocol error; 7.5.1: an invalid UTF-8 reason is 1007.
#[test]
fn close_payload_rules() {
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    raw.write(&mut s, &masked_frame(true, 0x8, b""));
    let close = raw.frame(&mut s);
    assert_eq!((close.opcode, close.payload.len()), (0x8, 0));
    raw.read_to_eof(&mut s);

    expect_failure(&masked_frame(true, 0x8, &[0x03]), 1002);
    expect_failure(&masked_frame(true, 0x8, &[0x03, 0xE8, 0xCE, 0xBA, 0xE1]), 1007);
}

/// 7.7.x: valid codes are echoed; 7.9.x and 7.13.x: codes nobody may send
/// fail with 1002.
#[test]
fn close_codes_valid_and_invalid() {
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 3999, 4000, 4999] {
        let mut s = server(Echo);
        let mut raw = Raw::ws(&mut s, "/");
        raw.write(&mut s, &masked_frame(true, 0x8, &code.to_be_bytes()));
        assert_eq!(raw.frame(&mut s).close_code().0, code);
        raw.read_to_eof(&mut s);
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        expect_failure(&masked_frame(true, 0x8, &code.to_be_bytes()), 1002);
    }
}

/// 7.1.5 / 7.1.6: data after our close is not echoed; data before it is.
#[test]
fn messages_before_close_are_echoed_and_nothing_after() {
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    let mut wire = masked_frame(true, 0x1, b"before");
    wire.extend(masked_frame(true, 0x8, &1000u16.to_be_bytes()));
    wire.extend(masked_frame(true, 0x1, b"after"));
    raw.write(&mut s, &wire);
    assert_eq!(raw.frame(&mut s).payload, b"before");
    assert_eq!(raw.frame(&mut s).close_code().0, 1000);
    assert!(raw.read_to_eof(&mut s).is_empty(), "nothing may follow the close");
}

/// 9.5.x / 9.6.x: one large frame arriving in small pieces is echoed whole.
#[test]
fn large_frame_in_small_pieces() {
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let frame = masked_frame(true, 0x2, &payload);
    let mut s = server(Echo);
    let mut raw = Raw::ws(&mut s, "/");
    for piece in frame.chunks(4096) {
        raw.write(&mut s, piece);
        s.tick().unwrap();
    }
    let echo = raw.frame(&mut s);
    assert_eq!((echo.opcode, echo.payload.len()), (0x2, payload.len()));
    assert!(echo.payload == payload);
}
