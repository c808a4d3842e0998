//! permessage-deflate over loopback: hvws's server with hvws's clients (and
//! a raw socket where the frames themselves are the point). What the
//! handshake agreed is visible on both ends, a broadcast reaches receivers
//! with and without context takeover (and one without deflate) intact, and
//! `Context::send_uncompressed` leaves without RSV1.
//!
//! Everything runs on the test thread; every wait ends after
//! `util::TIMEOUT` with a message.
#![cfg(feature = "deflate")]

mod util;

use std::time::{Duration, Instant};

use hvws::proto::deflate::{Deflate, DeflateParams};
use hvws::proto::frame::{encode_frame, parse_header, Opcode};
use hvws::{Channel, ClientConfig, Context, DeflateConfig, HvWebServer, Server, ServerConfig, WebSocketClient};
use util::tungstenite_peer::Recorder;
use util::{Raw, TIMEOUT};

/// A 2 KiB game-state snapshot: what deflate is for.
fn snapshot(tick: u32) -> String {
    let players: Vec<String> = (0..32)
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

/// Records what each channel agreed; answers "both" with the same snapshot
/// twice, compressed and not, and echoes anything else.
#[derive(Default)]
struct Hub {
    /// Each channel opened, with its `ChannelInfo::extensions()`.
    opened: Vec<(Channel, Option<String>)>,
}

impl HvWebServer for Hub {
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        let agreed = ctx.info(channel).and_then(|i| i.extensions()).map(str::to_owned);
        self.opened.push((channel, agreed));
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        if msg == "both" {
            let s = snapshot(0);
            assert!(ctx.send_text(channel, &s).is_queued());
            assert!(ctx
                .send_uncompressed(channel, s.as_bytes(), Opcode::Text)
                .unwrap()
                .is_queued());
        } else {
            assert!(ctx.send_text(channel, msg).is_queued());
        }
    }
}

/// A started server on `127.0.0.1:0` that accepts deflate with `config`.
fn server(config: DeflateConfig) -> Server<Hub> {
    util::server_with(
        Hub::default(),
        ServerConfig {
            deflate: Some(config),
            ..ServerConfig::default()
        },
    )
}

type Client = WebSocketClient<Recorder>;

/// A client that offers deflate with `config` (or nothing), connecting.
fn client(server: &Server<Hub>, config: Option<DeflateConfig>) -> Client {
    let mut c = WebSocketClient::with_config(
        Recorder::default(),
        ClientConfig {
            deflate: config,
            ..ClientConfig::default()
        },
    );
    c.init(&util::ws_url(server, "/")).unwrap();
    c
}

/// Ticks the server and pumps every client until `done` holds.
#[track_caller]
fn pump(server: &mut Server<Hub>, clients: &mut [Client], what: &str, done: impl Fn(&Server<Hub>, &[Client]) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(server, clients) {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        server.tick().unwrap();
        for c in clients.iter_mut() {
            c.process_event_que_timeout(Duration::from_millis(1));
        }
    }
}

#[test]
fn a_broadcast_reaches_receivers_with_and_without_context_takeover_intact() {
    // The server would keep its context; clients decide by asking for
    // server_no_context_takeover or not.
    let mut server = server(DeflateConfig {
        no_context_takeover: false,
        ..DeflateConfig::server()
    });
    let shared = DeflateConfig {
        peer_no_context_takeover: true,
        ..DeflateConfig::client()
    };
    let mut clients = vec![
        client(&server, Some(DeflateConfig::client())),
        client(&server, Some(DeflateConfig::client())),
        client(&server, Some(shared.clone())),
        client(&server, Some(shared)),
        client(&server, None),
    ];
    pump(&mut server, &mut clients, "every client to open", |s, cs| {
        s.handler().opened.len() == cs.len() && cs.iter().all(|c| c.handler().opens == 1)
    });
    let takeover = "permessage-deflate; client_no_context_takeover";
    let none = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let seen: Vec<Option<&str>> = clients.iter().map(|c| c.extensions()).collect();
    assert_eq!(seen, [Some(takeover), Some(takeover), Some(none), Some(none), None]);
    // The server's view of each channel is the same answer.
    let mut on_server: Vec<Option<&str>> = server.handler().opened.iter().map(|(_, e)| e.as_deref()).collect();
    on_server.sort();
    let mut expected = seen.clone();
    expected.sort();
    assert_eq!(on_server, expected);

    let ticks = [1, 2, 3];
    for tick in ticks {
        assert_eq!(server.context().broadcast_text(&snapshot(tick), None), clients.len());
    }
    pump(
        &mut server,
        &mut clients,
        "three broadcasts on every client",
        |_, cs| cs.iter().all(|c| c.handler().log.len() == 1 + ticks.len()),
    );
    let expect: Vec<String> = std::iter::once("open".to_owned())
        .chain(ticks.iter().map(|&t| format!("text:{}", snapshot(t))))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.handler().log, expect, "client {i}");
    }
    // And the other way, through each client's own compressor.
    for (i, c) in clients.iter_mut().enumerate() {
        assert!(c.send(&format!("{}{i}", snapshot(9))).is_queued());
    }
    pump(&mut server, &mut clients, "the echoes", |_, cs| {
        cs.iter().all(|c| c.handler().log.len() == 2 + ticks.len())
    });
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.handler().log.last().unwrap(), &format!("text:{}{i}", snapshot(9)));
    }
}

/// The frames in `buf` that are whole, as (RSV1, opcode, payload); the rest
/// is left in `buf`.
fn take_frames(buf: &mut Vec<u8>) -> Vec<(bool, Opcode, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Ok(Some(h)) = parse_header(buf) {
        let end = h.header_len + h.payload_len as usize;
        if buf.len() < end {
            break;
        }
        assert_eq!(h.mask, None, "server frames are not masked");
        frames.push((h.rsv1, h.opcode, buf[h.header_len..end].to_vec()));
        buf.drain(..end);
    }
    frames
}

#[test]
fn send_uncompressed_leaves_without_rsv1() {
    let mut server = server(DeflateConfig::server());
    let mut raw = Raw::connect(&server);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        util::addr(&server)
    );
    raw.write(&mut server, request.as_bytes());
    let resp = raw.response(&mut server);
    assert_eq!(resp.status, 101);
    assert_eq!(
        resp.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let mut ask = Vec::new();
    encode_frame(&mut ask, true, Opcode::Text, b"both", Some([1, 2, 3, 4]));
    raw.write(&mut server, &ask);
    let mut frames = Vec::new();
    util::pump_until(&mut server, "two frames", |_| {
        raw.fill();
        frames.extend(take_frames(&mut raw.buf));
        frames.len() >= 2
    });
    let s = snapshot(0);
    let [(true, Opcode::Text, compressed), (false, Opcode::Text, plain)] = &frames[..] else {
        panic!(
            "expected a compressed then a plain text frame, got {:?}",
            frames.iter().map(|f| (f.0, f.1, f.2.len())).collect::<Vec<_>>()
        );
    };
    assert_eq!(plain, s.as_bytes());
    assert!(compressed.len() < s.len() / 4, "{} of {}", compressed.len(), s.len());
    let params = DeflateParams {
        no_context_takeover: true,
        peer_no_context_takeover: true,
        window_bits: 15,
        peer_window_bits: 15,
    };
    let mut inflated = Vec::new();
    Deflate::new(params, &DeflateConfig::client())
        .decompress(compressed, &mut inflated, 1 << 20)
        .unwrap();
    assert_eq!(inflated, s.as_bytes());

    // A compressed message from the raw client is understood (and echoed
    // compressed).
    let mut data = Vec::new();
    Deflate::new(params, &DeflateConfig::client()).compress(snapshot(5).as_bytes(), &mut data);
    let mut frame = Vec::new();
    encode_frame(&mut frame, true, Opcode::Text, &data, Some([9, 8, 7, 6]));
    frame[0] |= 0x40;
    raw.write(&mut server, &frame);
    let echo = util::pump_for(&mut server, "the echo", |_| {
        raw.fill();
        take_frames(&mut raw.buf).pop()
    });
    assert!(echo.0, "the echo is compressed");
    let mut inflated = Vec::new();
    Deflate::new(params, &DeflateConfig::client())
        .decompress(&echo.2, &mut inflated, 1 << 20)
        .unwrap();
    assert_eq!(inflated, snapshot(5).as_bytes());
}
