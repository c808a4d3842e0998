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

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, ClientError, CloseInfo, Context, HttpResponse, HvWebServer, HvWebSocketClient, ReadyState,
    Routes, SendStatus, Server, ServerConfig, WebSocketClient,
};
use tungstenite::{Message, WebSocket};
use util::{connect, masked_frame, pump_until, recv, send_text, server_with, Raw};

// ---------------------------------------------------------------------------
// Server side: one bad peer while a good client chats (as in tests/hostile.rs).

/// Echoes; answers `POST /echo` with its body; records opens and closes.
#[derive(Default)]
struct Target {
    opened: Vec<Channel>,
    closes: Vec<(Channel, u16)>,
}

impl HvWebServer for Target {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.post("/echo", |_, _, req| {
            HttpResponse::bytes("application/octet-stream", req.body())
        });
    }
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.opened.push(ch);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        ctx.send_binary(ch, data);
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        self.closes.push((ch, close.code));
    }
}

/// A well-behaved client that checks its echoes arrive, all and in order.
struct Good {
    client: util::Client,
    sent: usize,
}

impl Good {
    fn join(server: &mut Server<Target>) -> Good {
        Good {
            client: connect(server, "/good"),
            sent: 0,
        }
    }

    /// Sends three numbered messages and checks the next three received are
    /// exactly their echoes. Pings from the server are answered on the way.
    #[track_caller]
    fn round(&mut self, server: &mut Server<Target>) {
        let first = self.sent;
        for _ in 0..3 {
            send_text(server, &mut self.client, &format!("good-{}", self.sent));
            self.sent += 1;
        }
        for i in first..self.sent {
            loop {
                match recv(server, &mut self.client) {
                    Message::Text(t) => {
                        assert_eq!(
                            t.as_str(),
                            format!("good-{i}"),
                            "the good client lost or reordered a message"
                        );
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                    other => panic!("the good client got {other:?}"),
                }
            }
        }
    }
}

/// Tight limits, so a bad peer reaches them quickly.
fn config() -> ServerConfig {
    ServerConfig {
        max_message_size: 64 << 10,
        max_frame_size: 64 << 10,
        max_request_head: 1024,
        max_request_body: 1024,
        close_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

/// A server with one good client already chatting.
fn setup(config: ServerConfig) -> (Server<Target>, Good) {
    let mut server = server_with(Target::default(), config);
    let mut good = Good::join(&mut server);
    good.round(&mut server);
    (server, good)
}

/// The close code the server gave the channel opened after `nth_open`
/// others.
#[track_caller]
fn close_code_of(server: &mut Server<Target>, nth_open: usize) -> u16 {
    pump_until(server, "the channel's on_ws_close", |s| {
        let ch = s.handler().opened.get(nth_open).copied();
        ch.is_some_and(|ch| s.handler().closes.iter().any(|(c, _)| *c == ch))
    });
    let ch = server.handler().opened[nth_open];
    server.handler().closes.iter().find(|(c, _)| *c == ch).unwrap().1
}

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
// Client side: hvws's client against a tungstenite server on a thread.

/// Records what the client saw, for the timeout message.
#[derive(Default, Debug)]
struct Recorder {
    opens: usize,
    closes: Vec<(u16, String, bool)>,
    errors: Vec<String>,
}

impl HvWebSocketClient for Recorder {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opens += 1;
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.closes.push((close.code, close.reason.clone(), close.was_clean));
    }
    fn on_error(&mut self, error: &ClientError) {
        self.errors.push(error.to_string());
    }
}

type Client = WebSocketClient<Recorder>;

/// Pumps the client until `done` holds, for at most `util::TIMEOUT`.
#[track_caller]
fn pump_client_until(client: &mut Client, what: &str, done: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + util::TIMEOUT;
    while !done(client) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; client saw {:?}",
            client.handler()
        );
        client.process_event_que_timeout(Duration::from_millis(10));
    }
}

/// Runs a tungstenite server for one connection on a thread; `script`
/// gets the accepted socket.
fn tungstenite_server(
    script: impl FnOnce(&mut WebSocket<TcpStream>) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let join = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        script(&mut ws);
    });
    (addr, join)
}

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
