//! Regression tests for I/O bugs, each named after what broke and with a
//! one-line doc comment saying how. Each scripts the peer that found the bug
//! over loopback: raw TCP with hand-made frames against the server while a
//! well-behaved client chats alongside (it must get every echo, in order),
//! or a tungstenite server on a thread against hvws's client.
//!
//! | Test | Fixed by |
//! |------|----------|
//! | `eof_left_behind_by_an_exhausted_read_budget_was_lost` | owed reads drain to EOF on the next tick |
//! | `pongs_to_a_peer_that_never_reads_grew_without_bound` | pongs count against the write cap (1008) |
//! | `answers_to_unread_pipelined_requests_grew_without_bound` | HTTP answers count against the write cap |
//! | `zero_ping_interval_spun_forever_inside_one_tick` | a zero ping interval is clamped |
//! | `failed_reinit_left_the_client_reporting_open` | a failed re-init leaves the client CLOSED |
//! | `closing_while_connecting_was_reported_as_the_peers_drop` | abandoning an attempt is a local 1006 |
//!
//! A new I/O bug gets its test here, named after what broke, in the commit
//! that fixes it (mio's `tests/regressions.rs`, tungstenite's `tests/auto_pong_flush.rs`).

mod util;

use std::net::TcpListener;
use std::time::Duration;

use hvws::{ClientError, CloseInfo, HvWebSocketClient, ReadyState, SendStatus, ServerConfig, WebSocketClient};
use util::bad_peers::{close_code_of, config, setup};
use util::tungstenite_peer::{pump_client_until, tungstenite_server, Recorder};
use util::{masked_frame, pump_until, Raw};

// ---------------------------------------------------------------------------
// Server side: one bad peer while a good client chats (as in tests/hostile.rs),
// set up by `util::bad_peers`.

/// A peer that sent past one tick's read budget, then shut its side, never had its EOF read.
#[test]
fn eof_left_behind_by_an_exhausted_read_budget_was_lost() {
    // The reads of the first tick use up the budget; the next tick's read
    // finds the last 1,000 bytes, and then only the EOF is left.
    let config = ServerConfig {
        idle_timeout: None,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let mut quitter = Raw::ws(&mut s, "/quit");
    let mut burst = Vec::new();
    while burst.len() < (1 << 20) + 1000 {
        burst.extend(masked_frame(true, 0x2, &[3u8; 1000]));
    }
    burst.truncate((1 << 20) + 1000);
    quitter.stream.set_nonblocking(false).unwrap();
    std::io::Write::write_all(&mut quitter.stream, &burst).unwrap();
    quitter.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(close_code_of(&mut s, 1), 1006);
    good.round(&mut s);
}

/// Pongs answering pings from a peer that never read them grew the output without bound.
#[test]
fn pongs_to_a_peer_that_never_reads_grew_without_bound() {
    let config = ServerConfig {
        max_write_buffer: 64 << 10,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let mut flooder = Raw::ws(&mut s, "/flood");
    let ping = masked_frame(true, 0x9, &[b'p'; 125]);
    pump_until(&mut s, "the flooder's channel to close", |s| {
        for _ in 0..64 {
            let _ = std::io::Write::write(&mut flooder.stream, &ping);
        }
        s.handler()
            .closes
            .iter()
            .any(|(ch, _)| Some(ch) == s.handler().opened.get(1))
    });
    assert_eq!(close_code_of(&mut s, 1), 1008);
    good.round(&mut s);
}

/// Answers to pipelined requests nobody read were queued into an unbounded buffer.
#[test]
fn answers_to_unread_pipelined_requests_grew_without_bound() {
    let config = ServerConfig {
        max_write_buffer: 64 << 10,
        ..config()
    };
    let (mut s, mut good) = setup(config);
    let mut pipeliner = Raw::connect(&s);
    let mut batch = Vec::new();
    for _ in 0..500 {
        batch.extend_from_slice(b"POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
        batch.extend([b'x'; 1000]);
    }
    pipeliner.write(&mut s, &batch);
    let rest = pipeliner.read_to_eof(&mut s);
    let answers = rest.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert!(
        answers > 0 && answers < 500,
        "{answers} of 500 answered before the server stopped"
    );
    good.round(&mut s);
}

/// A zero ping interval re-armed its timer at `now`, so one tick spun forever.
#[test]
fn zero_ping_interval_spun_forever_inside_one_tick() {
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            ping_interval: Some(Duration::ZERO),
            ..config()
        };
        let (mut s, mut good) = setup(config);
        for _ in 0..20 {
            good.round(&mut s);
        }
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(Duration::from_secs(20))
        .expect("ticks with a zero ping interval returned");
}

// ---------------------------------------------------------------------------
// Client side: hvws's client against a tungstenite server on a thread
// (`util::tungstenite_peer`).

type Client = WebSocketClient<Recorder>;

/// A failed `init` on an open client left it reporting OPEN with no socket behind it.
#[test]
fn failed_reinit_left_the_client_reporting_open() {
    // The re-init drops the first connection without a closing handshake.
    let (addr, server) = tungstenite_server(|ws| while ws.read().is_ok() {});
    let mut c = Client::new(Recorder::default());
    c.init(&format!("ws://{addr}/")).unwrap();
    pump_client_until(&mut c, "open", |c| c.handler().opens == 1);
    assert!(matches!(
        c.init("ws://no-such-host.invalid/"),
        Err(ClientError::Resolve { .. })
    ));
    assert_eq!(c.ready_state(), ReadyState::Closed);
    assert!(!c.is_connected());
    assert_eq!(c.send("ghost"), SendStatus::Closed);
    server.join().unwrap();
}

/// Records each close the client reports, with who started it.
#[derive(Default)]
struct CloseRecorder {
    closes: Vec<(u16, hvws::CloseInitiator)>,
}

impl HvWebSocketClient for CloseRecorder {
    fn on_close(&mut self, close: &CloseInfo) {
        self.closes.push((close.code, close.initiator));
    }
}

/// `close()` while TCP was still connecting went through the "socket lost"
/// path and reported a 1006 started by the peer; the user gave up on the
/// attempt, so it is ours.
#[test]
fn closing_while_connecting_was_reported_as_the_peers_drop() {
    // A listener that never accepts: the connect stays pending or done but
    // unanswered, and the handshake never completes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = WebSocketClient::new(CloseRecorder::default());
    c.init(&format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
    for _ in 0..5 {
        c.process_event_que_timeout(Duration::from_millis(10));
    }
    assert_eq!(c.ready_state(), ReadyState::Connecting);
    c.close();
    assert_eq!(c.handler().closes, [(1006, hvws::CloseInitiator::Local)]);
    assert_eq!(c.ready_state(), ReadyState::Closed);
    c.process_event_que();
    assert_eq!(c.handler().closes.len(), 1, "reported once");
}
