//! permessage-deflate (RFC 7692) between the two cores: what the handshake
//! agrees, RSV1 on the frames the pair moves, context takeover, the RFC's
//! own example frames, and what a receiver refuses (1002, 1007, 1009).
//!
//! Frames are shown one per line as they crossed (`"text rsv1 fin"`); hand-
//! made ones are built here with hvws's frame encoder and codec.

use std::time::{Duration, Instant};

use hvws::proto::client::Request;
use hvws::proto::deflate::{Deflate, DeflateParams};
use hvws::proto::frame::{encode_frame, parse_header, Opcode};
use hvws::proto::handshake::encode_accept;
use hvws::proto::server::Broadcast;
use hvws::proto::{ClientConn, IdleActivity, Limits};
use hvws::DeflateConfig;

use crate::pair::{client_line, Pair, Side};

/// A game-state snapshot of about `players * 60` bytes of JSON with
/// repetitive keys: what deflate is for.
fn snapshot(tick: u32, players: u32) -> String {
    let players: Vec<String> = (0..players)
        .map(|id| {
            format!(
                r#"{{"id":{id},"x":{},"y":{},"hp":100,"state":"running"}}"#,
                id * 7 + tick,
                id * 3
            )
        })
        .collect();
    format!(
        r#"{{"type":"snapshot","tick":{tick},"players":[{}]}}"#,
        players.join(",")
    )
}

fn with_deflate(config: DeflateConfig) -> Limits {
    Limits {
        deflate: Some(config),
        ..Limits::default()
    }
}

/// The server's defaults with context takeover both ways.
fn server_with_takeover() -> DeflateConfig {
    DeflateConfig {
        no_context_takeover: false,
        peer_no_context_takeover: false,
        ..DeflateConfig::server()
    }
}

/// A pair driven through its handshake; returns it, with the wire logs
/// emptied, and the client's open line (which names what was agreed).
#[track_caller]
fn open(server: Limits, client: Limits) -> (Pair, String) {
    let mut p = Pair::new(server, client);
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["upgrade /chat"]);
    let log = p.take_log(Side::Client);
    assert!(matches!(&log[..], [line] if line.starts_with("open")), "{log:?}");
    p.wire_to_server.clear();
    p.wire_to_client.clear();
    (p, log[0].clone())
}

/// The frames in `wire` as (line, payload length); the line is the opcode,
/// then `rsv1` and `fin` when set.
fn parse_frames(wire: &[u8]) -> Vec<(String, usize)> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let h = parse_header(&wire[pos..]).unwrap().expect("whole frames");
        let mut line = format!("{:?}", h.opcode).to_lowercase();
        if h.rsv1 {
            line.push_str(" rsv1");
        }
        if h.fin {
            line.push_str(" fin");
        }
        frames.push((line, h.payload_len as usize));
        pos += h.header_len + h.payload_len as usize;
    }
    assert_eq!(pos, wire.len(), "the wire ends with a whole frame");
    frames
}

/// The frames that crossed towards `side` since the last look.
fn frames_to(p: &mut Pair, side: Side) -> Vec<String> {
    parse_frames(&take_wire(p, side)).into_iter().map(|(l, _)| l).collect()
}

/// The payload sizes of the frames that crossed towards `side`.
fn sizes_to(p: &mut Pair, side: Side) -> Vec<usize> {
    parse_frames(&take_wire(p, side)).into_iter().map(|(_, n)| n).collect()
}

fn take_wire(p: &mut Pair, side: Side) -> Vec<u8> {
    match side {
        Side::Server => std::mem::take(&mut p.wire_to_server),
        Side::Client => std::mem::take(&mut p.wire_to_client),
    }
}

/// `payload` deflated as one message by a codec that keeps no context.
fn deflated(payload: &[u8]) -> Vec<u8> {
    let params = DeflateParams {
        no_context_takeover: true,
        peer_no_context_takeover: true,
        window_bits: 15,
        peer_window_bits: 15,
    };
    let mut out = Vec::new();
    Deflate::new(params, &DeflateConfig::server()).compress(payload, &mut out);
    out
}

/// A client frame (masked), with RSV1 when `rsv1`.
fn client_frame(fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]));
    if rsv1 {
        out[0] |= 0x40;
    }
    out
}

/// A server frame (unmasked), with RSV1 when `rsv1`.
fn server_frame(fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, None);
    if rsv1 {
        out[0] |= 0x40;
    }
    out
}

/// What the server said to the client, as the client logs it, when the
/// server fails the WebSocket with `code` and `reason`.
fn failed(code: u16, reason: &str, error: &str) -> [String; 2] {
    [
        format!("closed {code} {reason:?} unclean local (protocol violation: {error})"),
        format!("closed {code} {reason:?} clean remote"),
    ]
}

#[test]
fn both_cores_agree_and_compress_both_ways() {
    let (mut p, opened) = open(
        with_deflate(DeflateConfig::server()),
        with_deflate(DeflateConfig::client()),
    );
    let agreed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    assert_eq!(opened, format!("open with {agreed}"));
    assert_eq!(p.server.info().unwrap().extensions(), Some(agreed));

    let msg = snapshot(1, 16);
    p.client_text(&msg);
    p.server_text(&msg);
    // Under the threshold (64 bytes): sent as it is.
    p.client_text("short");
    let l = p.client_limits.clone();
    p.client.send_raw(Opcode::Ping, b"p", true, &l).unwrap();
    // A binary message compresses the same way; this one is opted out.
    let l = p.server_limits.clone();
    p.server.send_message(Opcode::Binary, &[7; 500], &l);
    p.server.send_message_with(Opcode::Binary, &[7; 500], false, &l);
    p.drive();
    assert_eq!(
        p.take_log(Side::Server),
        [format!("text {msg}"), "text short".into(), "ping \"p\"".into()]
    );
    assert_eq!(
        p.take_log(Side::Client),
        [
            format!("text {msg}"),
            "binary 500 bytes".into(),
            "binary 500 bytes".into(),
            "pong \"p\"".into()
        ]
    );
    let up = parse_frames(&p.wire_to_server);
    assert_eq!(
        frames_to(&mut p, Side::Server),
        ["text rsv1 fin", "text fin", "ping fin"]
    );
    assert_eq!(
        frames_to(&mut p, Side::Client),
        ["text rsv1 fin", "binary rsv1 fin", "binary fin", "pong fin"]
    );
    assert!(up[0].1 < msg.len() / 4, "{} of {} bytes", up[0].1, msg.len());
}

#[test]
fn context_takeover_shrinks_a_repeated_message_and_no_takeover_does_not() {
    let msg = snapshot(7, 16);
    let (mut p, opened) = open(
        with_deflate(server_with_takeover()),
        with_deflate(DeflateConfig::client()),
    );
    assert_eq!(opened, "open with permessage-deflate");
    for _ in 0..3 {
        p.server_text(&msg);
        p.client_text(&msg);
        p.drive();
    }
    assert_eq!(p.take_log(Side::Server), vec![format!("text {msg}"); 3]);
    assert_eq!(p.take_log(Side::Client), vec![format!("text {msg}"); 3]);
    for side in [Side::Server, Side::Client] {
        let sizes = sizes_to(&mut p, side);
        // The copies after the first are references back into the window.
        assert!(
            sizes[1] < sizes[0] / 4 && sizes[2] < sizes[0] / 4,
            "{side:?}: {sizes:?}"
        );
    }

    // The server's defaults: each message starts from an empty context, so
    // each copy costs what the first did.
    let (mut p, _) = open(
        with_deflate(DeflateConfig::server()),
        with_deflate(DeflateConfig::client()),
    );
    for _ in 0..3 {
        p.server_text(&msg);
        p.client_text(&msg);
        p.drive();
    }
    assert_eq!(p.take_log(Side::Client).len(), 3);
    assert_eq!(p.take_log(Side::Server).len(), 3);
    for side in [Side::Server, Side::Client] {
        let sizes = sizes_to(&mut p, side);
        assert!(sizes[0] == sizes[1] && sizes[1] == sizes[2], "{side:?}: {sizes:?}");
    }
}

#[test]
fn a_smaller_window_asked_for_is_used_and_messages_still_arrive() {
    let client = DeflateConfig {
        peer_window_bits: 10,
        window_bits: 9,
        ..DeflateConfig::client()
    };
    let (mut p, opened) = open(with_deflate(server_with_takeover()), with_deflate(client));
    assert_eq!(
        opened,
        "open with permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
    );
    // Longer than either window, so references must stay inside it.
    let msg = snapshot(3, 200);
    for _ in 0..2 {
        p.server_text(&msg);
        p.client_text(&msg);
    }
    p.drive();
    assert_eq!(p.take_log(Side::Server), vec![format!("text {msg}"); 2]);
    assert_eq!(p.take_log(Side::Client), vec![format!("text {msg}"); 2]);
}

#[test]
fn a_fragmented_compressed_message_is_inflated_whole() {
    let (mut p, _) = open(
        with_deflate(DeflateConfig::server()),
        with_deflate(DeflateConfig::client()),
    );
    let msg = snapshot(2, 16);
    let data = deflated(msg.as_bytes());
    let (a, rest) = data.split_at(10);
    let (b, c) = rest.split_at(rest.len() / 2);
    // RSV1 on the first frame only; a ping may come between fragments.
    let mut wire = client_frame(false, true, Opcode::Text, a);
    wire.extend(client_frame(true, false, Opcode::Ping, b"between"));
    wire.extend(client_frame(false, false, Opcode::Continuation, b));
    wire.extend(client_frame(true, false, Opcode::Continuation, c));
    // An empty final fragment is fine too.
    wire.extend(client_frame(false, true, Opcode::Binary, &data));
    wire.extend(client_frame(true, false, Opcode::Continuation, b""));
    p.feed_server(&mut wire);
    assert_eq!(
        p.take_log(Side::Server),
        [
            "ping \"between\"".into(),
            format!("text {msg}"),
            format!("binary {} bytes", msg.len())
        ]
    );
}

#[test]
fn the_compressed_size_of_a_fragmented_message_is_limited_too() {
    let small = Limits {
        max_message_size: 100,
        ..with_deflate(DeflateConfig::server())
    };
    let (mut p, _) = open(small, with_deflate(DeflateConfig::client()));
    // 60 + 60 compressed bytes: over the limit before anything is inflated.
    let mut wire = client_frame(false, true, Opcode::Binary, &[0x55; 60]);
    wire.extend(client_frame(true, false, Opcode::Continuation, &[0x55; 60]));
    p.feed_server(&mut wire);
    p.drive();
    let reason = "message of at least 120 bytes exceeds the limit of 100";
    let [server, client] = failed(1009, reason, reason);
    assert_eq!(p.take_log(Side::Server), [server]);
    assert_eq!(p.take_log(Side::Client), [client]);
}

/// RFC 7692 §7.2.3's example frames, all "Hello", on a client that keeps
/// the server's context (so the shared-window example can refer back).
#[test]
fn the_rfc_7692_example_frames_arrive_as_hello() {
    let server = DeflateConfig {
        no_context_takeover: false,
        ..DeflateConfig::server()
    };
    let (mut p, opened) = open(with_deflate(server), with_deflate(DeflateConfig::client()));
    assert_eq!(opened, "open with permessage-deflate; client_no_context_takeover");
    let hello = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let examples: [(&str, &[u8]); 7] = [
        ("7.2.3.1, one compressed block", &hello),
        (
            "7.2.3.2, sharing the window",
            &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00],
        ),
        (
            "7.2.3.1, in two fragments",
            &[0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00],
        ),
        (
            "7.2.3.3, a block with no compression",
            &[
                0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
        ),
        (
            "7.2.3.5, two blocks",
            &[
                0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ),
        (
            "7.2.3.4, a block with BFINAL set",
            &[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        ),
        // The peer's deflate stream ended with that block: its next message
        // starts a new one, which must inflate (not come out empty).
        ("7.2.3.1 after the BFINAL block", &hello),
    ];
    for (section, frame) in examples {
        p.feed_client(&mut frame.to_vec());
        assert_eq!(p.take_log(Side::Client), ["text Hello"], "{section}");
    }
    // §7.2.3.6: an empty message is one 0x00 byte.
    p.feed_client(&mut [0xc1, 0x01, 0x00]);
    assert_eq!(p.take_log(Side::Client), ["text "]);
    // A payload of no bytes at all (no RFC sender makes one) is an empty
    // message too, and leaves the context as it was.
    p.feed_client(&mut [0xc1, 0x00]);
    p.feed_client(&mut hello.to_vec());
    assert_eq!(p.take_log(Side::Client), ["text ", "text Hello"]);
}

#[test]
fn a_small_message_that_inflates_past_the_limit_is_1009() {
    let server = Limits {
        max_message_size: 256 << 10,
        ..with_deflate(DeflateConfig::server())
    };
    let (mut p, _) = open(server, with_deflate(DeflateConfig::client()));
    // 1 MiB of one letter deflates to about 1 KiB.
    p.client_text(&"a".repeat(1 << 20));
    p.drive();
    let sizes = sizes_to(&mut p, Side::Server);
    assert!(sizes[0] < 1100, "{sizes:?}");
    // Inflating stopped one byte past the limit.
    let reason = "message of at least 262145 bytes exceeds the limit of 262144";
    let [server, client] = failed(1009, reason, reason);
    assert_eq!(p.take_log(Side::Server), [server]);
    assert_eq!(p.take_log(Side::Client), [client]);
}

#[test]
fn data_that_does_not_inflate_is_1007_and_so_is_text_that_inflates_to_bad_utf8() {
    for (frame, error) in [
        // BTYPE 11: a reserved block type.
        (
            client_frame(true, true, Opcode::Text, &[0xff; 8]),
            "invalid compressed data",
        ),
        (
            client_frame(true, true, Opcode::Text, &deflated(b"caf\xe9 au lait")),
            "invalid UTF-8 in a text message",
        ),
    ] {
        let (mut p, _) = open(
            with_deflate(DeflateConfig::server()),
            with_deflate(DeflateConfig::client()),
        );
        p.feed_server(&mut frame.clone());
        p.drive();
        let [server, client] = failed(1007, error, error);
        assert_eq!(p.take_log(Side::Server), [server]);
        assert_eq!(p.take_log(Side::Client), [client]);
    }
    // The same bytes as binary are fine.
    let (mut p, _) = open(
        with_deflate(DeflateConfig::server()),
        with_deflate(DeflateConfig::client()),
    );
    p.feed_server(&mut client_frame(true, true, Opcode::Binary, &deflated(b"caf\xe9")));
    assert_eq!(p.take_log(Side::Server), ["binary 4 bytes"]);
}

#[test]
fn rsv1_anywhere_but_the_first_frame_of_a_message_is_1002() {
    let rsv = "reserved bits set where no negotiated extension allows them";
    let data = deflated(b"hello hello hello");
    for (what, wire) in [
        ("a continuation of a plain message", {
            let mut w = client_frame(false, false, Opcode::Text, b"hel");
            w.extend(client_frame(true, true, Opcode::Continuation, b"lo"));
            w
        }),
        ("a continuation of a compressed message", {
            let mut w = client_frame(false, true, Opcode::Text, &data[..4]);
            w.extend(client_frame(true, true, Opcode::Continuation, &data[4..]));
            w
        }),
        ("a ping", client_frame(true, true, Opcode::Ping, b"")),
        ("a close", client_frame(true, true, Opcode::Close, &[0x03, 0xe8])),
    ] {
        let (mut p, _) = open(
            with_deflate(DeflateConfig::server()),
            with_deflate(DeflateConfig::client()),
        );
        p.feed_server(&mut wire.clone());
        p.drive();
        let [server, client] = failed(1002, rsv, rsv);
        assert_eq!(p.take_log(Side::Server), [server], "{what}");
        assert_eq!(p.take_log(Side::Client), [client], "{what}");
    }
}

#[test]
fn rsv1_without_deflate_agreed_is_1002_on_both_sides() {
    let rsv = "reserved bits set where no negotiated extension allows them";
    // The client offered, the server does not do deflate.
    let (mut p, opened) = open(Limits::default(), with_deflate(DeflateConfig::client()));
    assert_eq!(opened, "open");
    p.feed_server(&mut client_frame(true, true, Opcode::Text, &deflated(b"hi")));
    p.drive();
    let [server, client] = failed(1002, rsv, rsv);
    assert_eq!(p.take_log(Side::Server), [server]);
    assert_eq!(p.take_log(Side::Client), [client]);

    let (mut p, _) = open(with_deflate(DeflateConfig::server()), Limits::default());
    p.feed_client(&mut server_frame(true, true, Opcode::Text, &deflated(b"hi")));
    assert_eq!(
        p.take_log(Side::Client),
        [format!("closed 1002 {rsv:?} unclean local (protocol violation: {rsv})")]
    );
}

#[test]
fn a_declined_offer_falls_back_to_plain_frames() {
    let (mut p, opened) = open(Limits::default(), with_deflate(DeflateConfig::client()));
    assert_eq!(opened, "open");
    assert_eq!(p.server.info().unwrap().extensions(), None);
    let msg = snapshot(1, 16);
    p.client_text(&msg);
    p.server_text(&msg);
    p.drive();
    assert_eq!(p.take_log(Side::Server), [format!("text {msg}")]);
    assert_eq!(p.take_log(Side::Client), [format!("text {msg}")]);
    assert_eq!(frames_to(&mut p, Side::Server), ["text fin"]);
    assert_eq!(frames_to(&mut p, Side::Client), ["text fin"]);
}

/// The server's `Sec-WebSocket-Extensions` answer to a request offering
/// `offers` (one header each), `None` when it declined.
fn server_answer(config: DeflateConfig, offers: &[&str]) -> Option<String> {
    let mut p = Pair::new(with_deflate(config), Limits::default());
    let mut request = String::from(
        "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for offer in offers {
        request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    request.push_str("\r\n");
    p.feed_server(&mut request.into_bytes());
    let answer = String::from_utf8(p.server.transmit().to_vec()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    let header = answer
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: ").map(str::to_owned));
    assert_eq!(header.as_deref(), p.server.info().unwrap().extensions());
    header
}

#[test]
fn the_server_answers_the_first_offer_it_can_take_and_declines_the_rest() {
    let ours = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let server = DeflateConfig::server;
    assert_eq!(server_answer(server(), &["permessage-deflate"]).as_deref(), Some(ours));
    // A browser's offer.
    assert_eq!(
        server_answer(server(), &["permessage-deflate; client_max_window_bits"]).as_deref(),
        Some(ours)
    );
    // zlib cannot compress with a 256-byte window: that offer is declined,
    // the next one (in a second header) taken.
    assert_eq!(
        server_answer(
            server(),
            &["permessage-deflate; server_max_window_bits=8", "permessage-deflate"]
        )
        .as_deref(),
        Some(ours)
    );
    assert_eq!(
        server_answer(server(), &["permessage-deflate; server_max_window_bits=8"]),
        None
    );
    assert_eq!(server_answer(server(), &["x-webkit-deflate-frame"]), None);
    assert_eq!(server_answer(server(), &[]), None);
    // A window asked for is granted; the client's own limit is echoed, never
    // raised past what it offered (RFC 7692 §7.1.2.2).
    assert_eq!(
        server_answer(
            server(),
            &["permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"]
        )
        .as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        )
    );
    assert_eq!(
        server_answer(server(), &["permessage-deflate; client_max_window_bits=8"]).as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             client_max_window_bits=8"
        )
    );
    // A client that promises no context takeover is held to it (and the
    // server keeps no decompressor for it) even when the server would
    // allow takeover.
    assert_eq!(
        server_answer(
            server_with_takeover(),
            &["permessage-deflate; client_no_context_takeover"]
        )
        .as_deref(),
        Some("permessage-deflate; client_no_context_takeover")
    );
    assert_eq!(
        server_answer(server_with_takeover(), &["permessage-deflate"]).as_deref(),
        Some("permessage-deflate")
    );
}

/// What a client that offers with `config` (or offers nothing) makes of a
/// 101 carrying `answers` (one `Sec-WebSocket-Extensions` header each).
fn client_meets(config: Option<DeflateConfig>, answers: &[&str]) -> String {
    let limits = Limits {
        deflate: config,
        ..Limits::default()
    };
    let now = Instant::now();
    let request = Request {
        authority: "h".into(),
        resource: "/".into(),
        ..Request::default()
    };
    let mut c = ClientConn::new(&request, now, &limits);
    c.handle_connected();
    let sent = String::from_utf8(c.transmit().clone()).unwrap();
    let key = sent
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let mut answer = Vec::new();
    encode_accept(key, None, None, &mut answer);
    answer.truncate(answer.len() - 2);
    for a in answers {
        answer.extend_from_slice(format!("Sec-WebSocket-Extensions: {a}\r\n").as_bytes());
    }
    answer.extend_from_slice(b"\r\n");
    let mut input = c.begin_input(&mut answer);
    let event = c.poll_input(&mut input, now, &limits).expect("an event");
    client_line(&event)
}

#[test]
fn the_client_fails_the_handshake_on_an_answer_it_cannot_take() {
    let client = || Some(DeflateConfig::client());
    let refused = |why: &str| {
        format!("closed 1006 \"\" unclean local (handshake failed: server answered extensions we cannot accept: {why})")
    };
    assert_eq!(
        client_meets(
            client(),
            &["permessage-deflate; client_no_context_takeover; client_max_window_bits=9"]
        ),
        "open with permessage-deflate; client_no_context_takeover; client_max_window_bits=9"
    );
    assert_eq!(client_meets(client(), &[]), "open");
    assert_eq!(
        client_meets(client(), &["permessage-deflate; client_max_window_bits=8"]),
        refused("server asks for client_max_window_bits=8, which zlib cannot do")
    );
    assert_eq!(
        client_meets(client(), &["x-webkit-deflate-frame"]),
        refused("server chose extension \"x-webkit-deflate-frame\", which was not offered")
    );
    assert_eq!(
        client_meets(client(), &["permessage-deflate; server_max_window_bits=16"]),
        refused("bad server_max_window_bits in \"permessage-deflate; server_max_window_bits=16\"")
    );
    assert_eq!(
        client_meets(client(), &["permessage-deflate; mystery"]),
        refused("unexpected parameter mystery in \"permessage-deflate; mystery\"")
    );
    // Two headers are one list: the second extension was not offered.
    assert_eq!(
        client_meets(client(), &["permessage-deflate", "x-other"]),
        refused("server answered extensions \"permessage-deflate, x-other\"; one permessage-deflate was offered")
    );
    // Asked for a smaller server window, the server may not answer with a
    // larger one; asked for no server context takeover, it must agree.
    let picky = DeflateConfig {
        peer_window_bits: 10,
        peer_no_context_takeover: true,
        ..DeflateConfig::client()
    };
    assert_eq!(
        client_meets(
            Some(picky.clone()),
            &["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"]
        ),
        refused("bad server_max_window_bits in \"permessage-deflate; server_no_context_takeover; server_max_window_bits=11\"")
    );
    assert_eq!(
        client_meets(Some(picky), &["permessage-deflate; server_max_window_bits=10"]),
        refused("server did not accept server_no_context_takeover")
    );
    // Nothing offered, something answered.
    assert_eq!(
        client_meets(None, &["permessage-deflate"]),
        "closed 1006 \"\" unclean local (handshake failed: server answered extensions we cannot accept: \"permessage-deflate\", none offered)"
    );
}

#[test]
fn compressed_messages_count_as_activity_for_the_idle_timeout() {
    let server = Limits {
        idle_timeout: Some(Duration::from_secs(10)),
        idle_activity: IdleActivity::DataMessages,
        ..with_deflate(DeflateConfig::server())
    };
    let (mut p, _) = open(server, with_deflate(DeflateConfig::client()));
    let msg = snapshot(5, 16);
    for _ in 0..3 {
        p.advance(Duration::from_secs(6));
        p.client_text(&msg);
        p.drive();
    }
    assert_eq!(p.take_log(Side::Server), vec![format!("text {msg}"); 3]);
    assert_eq!(frames_to(&mut p, Side::Server), ["text rsv1 fin"; 3]);
    assert!(p.server.is_open() && p.client.is_open());
}

#[test]
fn a_broadcast_is_compressed_once_for_the_receivers_that_can_share_it() {
    let msg = snapshot(4, 16);
    let shared = || DeflateConfig {
        peer_no_context_takeover: true,
        ..DeflateConfig::client()
    };
    // The server would keep its context; two clients ask it not to.
    let mut pairs = [
        open(with_deflate(server_with_takeover()), with_deflate(shared())).0,
        open(with_deflate(server_with_takeover()), with_deflate(shared())).0,
        open(
            with_deflate(server_with_takeover()),
            with_deflate(DeflateConfig::client()),
        )
        .0,
        open(with_deflate(server_with_takeover()), Limits::default()).0,
    ];
    for round in 0..2 {
        let mut b = Broadcast::new(Opcode::Text, msg.as_bytes(), Vec::new());
        for p in &mut pairs {
            let l = p.server_limits.clone();
            assert!(p.server.push_broadcast(&mut b, &l).is_queued());
        }
        let wires: Vec<Vec<u8>> = pairs
            .iter_mut()
            .map(|p| {
                p.drive();
                assert_eq!(p.take_log(Side::Client), [format!("text {msg}")]);
                take_wire(p, Side::Client)
            })
            .collect();
        let lines: Vec<Vec<String>> = wires
            .iter()
            .map(|w| parse_frames(w).into_iter().map(|(l, _)| l).collect())
            .collect();
        assert_eq!(
            lines,
            [["text rsv1 fin"], ["text rsv1 fin"], ["text rsv1 fin"], ["text fin"]],
            "round {round}"
        );
        // The two without context takeover got the same bytes, made once;
        // the one with takeover got its own, smaller from the second round.
        assert_eq!(wires[0], wires[1]);
        if round == 1 {
            assert!(
                wires[2].len() < wires[0].len() / 4,
                "{} vs {}",
                wires[2].len(),
                wires[0].len()
            );
        }
    }
}
