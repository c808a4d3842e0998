//! Bad clients, one at a time, over loopback: each gets its exact answer
//! (status or close code), its channel's `on_ws_close` runs, and a
//! well-behaved client connected throughout receives every message it is
//! sent, in order. Deadlines (pings, idle, close timeouts) are tested on the
//! in-memory pair's clock in `tests/protocol/timers.rs`.

mod util;

use std::time::Duration;

use hvws::{Channel, SendStatus, Server, ServerConfig, SlowConsumer};
use tungstenite::Message;
use util::bad_peers::{close_code_of, config, http_status, setup, Target};
use util::{connect, masked_frame, pump_until, recv, send_text, Raw};

#[test]
fn http_limits_answer_and_close() {
    let (mut s, mut good) = setup(config());
    let long_head = format!("GET /ping HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(2000));
    assert_eq!(http_status(&mut s, long_head.as_bytes()).0, 431);
    good.round(&mut s);
    let big_body = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: 2000\r\n\r\n{}",
        "b".repeat(2000)
    );
    assert_eq!(http_status(&mut s, big_body.as_bytes()).0, 413);
    // A TLS ClientHello is not HTTP.
    assert_eq!(
        http_status(
            &mut s,
            &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]
        )
        .0,
        400
    );
    // Chunked bodies are read, but not other codings, and not past the
    // body limit however the chunks cut it.
    assert_eq!(
        http_status(
            &mut s,
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        )
        .0,
        501
    );
    let chunk = format!("100\r\n{}\r\n", "c".repeat(256));
    let chunked_flood = format!(
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        chunk.repeat(9)
    );
    assert_eq!(http_status(&mut s, chunked_flood.as_bytes()).0, 413);
    assert_eq!(
        http_status(
            &mut s,
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        )
        .0,
        400
    );
    good.round(&mut s);

    // Pipelined requests, one of them with a body, answered in order.
    let mut raw = Raw::connect(&s);
    raw.write(
        &mut s,
        b"GET /ping HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /nope HTTP/1.1\r\n\r\n",
    );
    let answers: Vec<(u16, Vec<u8>)> = (0..3)
        .map(|_| raw.response(&mut s))
        .map(|r| (r.status, r.body))
        .collect();
    assert_eq!(
        answers,
        [
            (200, b"pong".to_vec()),
            (200, b"abc".to_vec()),
            (404, b"Not Found".to_vec())
        ]
    );
    good.round(&mut s);
}

#[test]
fn bad_handshakes_get_400_with_the_version_we_speak() {
    let (mut s, mut good) = setup(config());
    let no_key = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(http_status(&mut s, no_key).0, 400);
    let bad_version = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    assert_eq!(http_status(&mut s, bad_version), (400, Some("13".to_owned())));
    good.round(&mut s);
    assert_eq!(s.handler().opened.len(), 1, "no bad handshake opened a channel");
}

#[test]
fn origin_allow_list() {
    let config = ServerConfig {
        allowed_origins: Some(vec!["https://game.example".into()]),
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let upgrade = |origin: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{origin}\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    assert_eq!(
        http_status(&mut s, upgrade("Origin: https://evil.example\r\n").as_bytes()).0,
        403
    );
    for allowed in ["Origin: https://GAME.example\r\n", ""] {
        let mut raw = Raw::connect(&s);
        raw.write(&mut s, upgrade(allowed).as_bytes());
        assert_eq!(raw.response(&mut s).status, 101, "{allowed:?}");
    }
    good.round(&mut s);
}

#[test]
fn max_connections_answers_503_and_spares_the_rest() {
    let config = ServerConfig {
        max_connections: 2,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let _second = connect(&mut s, "/second");
    let mut third = Raw::connect(&s);
    third.write(&mut s, b"GET /ping HTTP/1.1\r\n\r\n");
    assert_eq!(third.response(&mut s).status, 503);
    third.read_to_eof(&mut s);
    good.round(&mut s);
}

/// The request timeout's protocol (408, keep-alive resets it) is tested on
/// the in-memory pair's clock (`tests/protocol/timers.rs`); this checks that
/// the driver's schedule fires it for real sockets while a good client
/// chats. It waits for the deadline but asserts no timing.
#[test]
fn slowloris_and_silent_connections_get_408() {
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let mut trickle = Raw::connect(&s);
    let mut silent = Raw::connect(&s);
    for piece in [&b"GET /ping HTTP/1.1\r\n"[..], b"X-A: 1\r\n", b"X-B: 2\r\n"] {
        trickle.write(&mut s, piece);
        good.round(&mut s);
    }
    // Keep-alive: a finished request resets the clock, so a client that
    // asks in time is served.
    let mut prompt = Raw::connect(&s);
    prompt.write(&mut s, b"GET /ping HTTP/1.1\r\n\r\n");
    assert_eq!(prompt.response(&mut s).status, 200);
    for raw in [&mut trickle, &mut silent] {
        assert_eq!(raw.response(&mut s).status, 408);
        raw.read_to_eof(&mut s);
    }
    good.round(&mut s);
}

#[test]
fn bad_frames_get_their_close_codes() {
    let (mut s, mut good) = setup(config());
    let oversized = masked_frame(true, 0x2, &vec![0u8; (64 << 10) + 1]);
    let mut fragmented_oversize = masked_frame(false, 0x2, &vec![0u8; 40 << 10]);
    fragmented_oversize.extend(masked_frame(true, 0x0, &vec![0u8; 40 << 10]));
    let mut unmasked = masked_frame(true, 0x1, b"hi");
    unmasked[1] &= 0x7F;
    unmasked.drain(2..6);
    let mut reserved = masked_frame(true, 0x1, b"hi");
    reserved[0] |= 0x40;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("oversized frame", oversized, 1009),
        ("oversized message", fragmented_oversize, 1009),
        ("invalid UTF-8", masked_frame(true, 0x1, b"\xce\xba\xe1\xbd"), 1007),
        ("unmasked frame", unmasked, 1002),
        ("reserved bits", reserved, 1002),
        ("bad opcode", masked_frame(true, 0x5, b""), 1002),
        ("fragmented ping", masked_frame(false, 0x9, b""), 1002),
        ("one-byte close", masked_frame(true, 0x8, b"\x03"), 1002),
        ("close code 1005", masked_frame(true, 0x8, &1005u16.to_be_bytes()), 1002),
    ];
    for (i, (what, wire, code)) in cases.into_iter().enumerate() {
        let mut bad = Raw::ws(&mut s, "/bad");
        bad.write(&mut s, &wire);
        assert_eq!(bad.frame(&mut s).close_code().0, code, "{what}");
        bad.read_to_eof(&mut s);
        assert_eq!(close_code_of(&mut s, i + 1), code, "on_ws_close for {what}");
        good.round(&mut s);
    }
}

#[test]
fn abrupt_disconnect_mid_frame() {
    let (mut s, mut good) = setup(config());
    let mut quitter = Raw::ws(&mut s, "/quit");
    let frame = masked_frame(true, 0x2, &[1u8; 1000]);
    quitter.write(&mut s, &frame[..300]);
    good.round(&mut s);
    drop(quitter);
    assert_eq!(close_code_of(&mut s, 1), 1006);
    good.round(&mut s);
}

/// Sends 16 KiB messages to `ch` from the loop, ticking, until one is not
/// queued; returns what became of it.
fn flood(s: &mut Server<Target>, ch: Channel) -> SendStatus {
    let chunk = vec![7u8; 16 << 10];
    for _ in 0..10_000 {
        let status = s.with_context(|_, ctx| ctx.send_binary(ch, &chunk));
        if !status.is_queued() {
            return status;
        }
        s.tick().unwrap();
    }
    panic!("10,000 sends to a client that never reads were all accepted");
}

#[test]
fn slow_consumer_is_closed_with_1008() {
    let config = ServerConfig {
        max_write_buffer: 256 << 10,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let _sloth = Raw::ws(&mut s, "/sloth"); // never reads
    pump_until(&mut s, "the sloth's channel", |s| s.handler().opened.len() == 2);
    let ch = s.handler().opened[1];
    assert_eq!(flood(&mut s, ch), SendStatus::Dropped);
    assert_eq!(close_code_of(&mut s, 1), 1008);
    assert!(s.handler().errors.iter().any(|e| e.contains("not reading")));
    assert_eq!(s.with_context(|_, ctx| ctx.send_text(ch, "late")), SendStatus::Closed);
    good.round(&mut s);
}

#[test]
fn slow_consumer_can_keep_its_channel_and_lose_messages_instead() {
    let config = ServerConfig {
        max_write_buffer: 256 << 10,
        slow_consumer: SlowConsumer::DropMessages,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let mut sloth = Raw::ws(&mut s, "/sloth");
    pump_until(&mut s, "the sloth's channel", |s| s.handler().opened.len() == 2);
    let ch = s.handler().opened[1];
    assert_eq!(flood(&mut s, ch), SendStatus::Dropped);
    // A broadcast skips it, and it stays open.
    let delivered = s.with_context(|_, ctx| ctx.broadcast_text("news", None));
    assert_eq!(delivered, 1, "only the good client gets the broadcast");
    assert!(s.with_context(|_, ctx| ctx.is_open(ch)));
    // Once it reads, it catches up and sends work again.
    pump_until(&mut s, "the sloth to drain its backlog", |s| {
        sloth.fill();
        sloth.buf.clear();
        s.with_context(|_, ctx| ctx.send_text(ch, "caught up")).is_queued()
    });
    assert!(s.handler().closes.is_empty());
    let _ = good.client.try_recv(); // the broadcast
    good.round(&mut s);
}

#[test]
fn callback_panics_close_only_their_channel() {
    let (mut s, mut good) = setup(config());
    let mut victim = connect(&mut s, "/victim");
    send_text(&mut s, &mut victim, "panic");
    match recv(&mut s, &mut victim) {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1011),
        other => panic!("expected close 1011, got {other:?}"),
    }
    assert_eq!(close_code_of(&mut s, 1), 1011);
    assert!(s.handler().errors.iter().any(|e| e.contains("panicked")));
    good.round(&mut s);
    assert_eq!(http_status(&mut s, b"GET /boom HTTP/1.1\r\n\r\n").0, 500);
    good.round(&mut s);
    assert!(s.is_running());
}

/// The same bad peers on a TLS port (feature `tls`), with a good wss client
/// beside them that must lose nothing.
#[cfg(feature = "tls")]
mod tls {
    use std::time::{Duration, Instant};

    use hvws::{ClientConfig, Server, ServerConfig, SlowConsumer, WebSocketClient};

    use super::util::bad_peers::{config, Target};
    use super::util::certs::Pki;
    use super::util::tungstenite_peer::Recorder;
    use super::util::{init_logging, pump_until, Raw, TIMEOUT};

    type Client = WebSocketClient<Recorder>;

    struct Setup {
        server: Server<Target>,
        pki: Pki,
        good: Client,
        sent: usize,
    }

    impl Setup {
        fn new(config: ServerConfig) -> Setup {
            init_logging();
            let pki = Pki::new("hvws hostile CA");
            let mut server = Server::with_config(Target::default(), config);
            server
                .init_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
                .unwrap();
            server.start().unwrap();
            let mut good = client(&pki);
            good.init(&format!("wss://{}/good", server.tls_addr().unwrap()))
                .unwrap();
            let mut s = Setup {
                server,
                pki,
                good,
                sent: 0,
            };
            s.pump("the good client to open", |s| s.good.handler().opens == 1);
            s.round();
            s
        }

        #[track_caller]
        fn pump(&mut self, what: &str, done: impl Fn(&Setup) -> bool) {
            let deadline = Instant::now() + TIMEOUT;
            while !done(self) {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                self.server.tick().unwrap();
                self.good.process_event_que();
                std::thread::sleep(Duration::from_micros(300));
            }
        }

        /// Three numbered messages, echoed back in order.
        #[track_caller]
        fn round(&mut self) {
            let first = self.sent;
            for _ in 0..3 {
                assert!(self.good.send(&format!("good-{}", self.sent)).is_queued());
                self.sent += 1;
            }
            let want: Vec<String> = (first..self.sent).map(|i| format!("text:good-{i}")).collect();
            self.pump("the good client's echoes", |s| s.good.handler().log.len() > s.sent);
            let log = &self.good.handler().log;
            assert_eq!(
                log[log.len() - 3..],
                want[..],
                "the good client lost or reordered a message"
            );
        }

        /// A raw TCP connection to the TLS port that sends `bytes`; returns
        /// once the server has closed it.
        #[track_caller]
        fn raw_until_closed(&mut self, bytes: &[u8]) {
            let mut raw = Raw::connect_to(self.server.tls_addr().unwrap());
            if !bytes.is_empty() {
                raw.write(&mut self.server, bytes);
            }
            raw.read_to_eof(&mut self.server);
        }
    }

    fn client(pki: &Pki) -> Client {
        Client::with_config(
            Recorder::default(),
            ClientConfig {
                tls: pki.client_tls(),
                ..ClientConfig::default()
            },
        )
    }

    #[test]
    fn garbage_plaintext_http_and_stalled_handshakes_are_closed() {
        let mut s = Setup::new(ServerConfig {
            request_timeout: Duration::from_millis(300),
            ..config()
        });
        // Plaintext HTTP on the TLS port.
        s.raw_until_closed(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        s.round();
        // Bytes that are no TLS at all.
        s.raw_until_closed(&[0xde, 0xad, 0xbe, 0xef].repeat(64));
        s.round();
        // A ClientHello cut short, then silence; and plain silence: the
        // request timeout bounds the handshake too.
        s.raw_until_closed(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
        s.raw_until_closed(b"");
        s.round();
        assert!(s.server.handler().opened.len() == 1, "no bad peer got a channel");
    }

    #[test]
    fn a_tls_client_that_stops_reading_meets_the_write_cap() {
        let mut s = Setup::new(ServerConfig {
            max_write_buffer: 256 << 10,
            slow_consumer: SlowConsumer::Close,
            ..config()
        });
        let mut sloth = client(&s.pki);
        sloth
            .init(&format!("wss://{}/sloth", s.server.tls_addr().unwrap()))
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while s.server.handler().opened.len() < 2 {
            assert!(Instant::now() < deadline, "the sloth never opened");
            s.server.tick().unwrap();
            sloth.process_event_que();
        }
        // From here on the sloth is never pumped again: it reads nothing.
        let ch = s.server.handler().opened[1];
        let chunk = vec![7u8; 16 << 10];
        let mut status = hvws::SendStatus::Queued;
        for _ in 0..10_000 {
            status = s.server.with_context(|_, ctx| ctx.send_binary(ch, &chunk));
            if !status.is_queued() {
                break;
            }
            s.server.tick().unwrap();
        }
        assert_eq!(status, hvws::SendStatus::Dropped, "the cap was never reached");
        pump_until(&mut s.server, "the sloth's close", |srv| {
            srv.handler().closes.iter().any(|(c, _)| *c == ch)
        });
        let code = s.server.handler().closes.iter().find(|(c, _)| *c == ch).unwrap().1;
        assert_eq!(code, 1008);
        s.round();
    }
}
