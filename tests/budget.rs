//! `ServerConfig::tick_budget` under a flood: a raw client on its own
//! thread writes small numbered frames as fast as it can while
//! well-behaved clients each send one message a round. Everything is
//! counted (messages per tick, ticks until a message is handed out), never
//! timed: (a) no tick hands out more messages, or reads more bytes, than
//! the budget; (b) each well-behaved message is handed out within the
//! bound `TickBudget` documents, `C` ticks for `C` connections with input
//! waiting; (c) every flood message arrives, in order.
//!
//! The one pause here (`SETTLE`) only lets loopback deliver the
//! well-behaved clients' bytes before the ticks are counted: the bound
//! runs from the first tick that finds them, and a test cannot see that
//! moment from outside. Nothing is asserted about time.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server, ServerConfig, TickBudget};
use util::{connect, masked_frame, parse_frame, pump_until, send, send_text, server_with, Client, Raw};

/// Lets loopback deliver what was just written before ticks are counted.
const SETTLE: Duration = Duration::from_millis(30);

/// Records every message: the flood's checked for order as it comes, the
/// others kept with the tick that handed them out.
#[derive(Default)]
struct Game {
    /// The flooder's channel, once known (its first message is "f0").
    flooder: Option<Channel>,
    /// The flood message expected next.
    flood_next: usize,
    /// Flood messages out of order (must stay empty).
    flood_errors: Vec<String>,
    /// Messages handed out so far, all connections.
    messages: usize,
    /// The next message expected from each of several flooders
    /// (`x{f}-{n}`), and how many came in all.
    many_next: [usize; 3],
    many_total: usize,
    /// Other messages: (channel, text, tick they were handed out in).
    chat: Vec<(Channel, String, u64)>,
    /// Closes reported, with their tick.
    closes: Vec<(Channel, u64)>,
    /// The server's tick count, as the test sets it before each tick.
    tick: u64,
}

impl Game {
    fn message(&mut self, ch: Channel, data: &[u8]) {
        self.messages += 1;
        if let Some(rest) = data.strip_prefix(b"x") {
            let text = std::str::from_utf8(rest).unwrap();
            let (f, n) = text.split_once('-').unwrap();
            let (f, n): (usize, usize) = (f.parse().unwrap(), n.parse().unwrap());
            if n != self.many_next[f] && self.flood_errors.len() < 10 {
                self.flood_errors
                    .push(format!("flooder {f}: expected {}, got {n}", self.many_next[f]));
            }
            self.many_next[f] = n + 1;
            self.many_total += 1;
        } else if data.first() == Some(&b'f') || self.flooder == Some(ch) {
            self.flooder.get_or_insert(ch);
            // "f{n}", maybe followed by a space and padding.
            let want = format!("f{}", self.flood_next);
            let number = data.split(|&b| b == b' ').next().unwrap_or_default();
            if number == want.as_bytes() {
                self.flood_next += 1;
            } else if self.flood_errors.len() < 10 {
                self.flood_errors.push(format!(
                    "expected {want}, got {:?}",
                    String::from_utf8_lossy(&data[..data.len().min(16)])
                ));
            }
        } else {
            self.chat
                .push((ch, String::from_utf8_lossy(data).into_owned(), self.tick));
        }
    }
}

impl HvWebServer for Game {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.get("/n", |_, _, req| HttpResponse::text(req.query().to_owned()));
    }
    fn on_ws_message(&mut self, _ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        self.message(ch, msg.as_bytes());
    }
    fn on_ws_binary(&mut self, _ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        self.message(ch, data);
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
        self.closes.push((ch, self.tick));
    }
}

/// One tick, counted: returns the messages it handed out and the bytes it
/// read.
fn counted_tick(server: &mut Server<Game>) -> (usize, u64) {
    let (before, read) = (server.handler().messages, server.stats().bytes_read);
    server.handler_mut().tick += 1;
    server.tick().expect("tick");
    (server.handler().messages - before, server.stats().bytes_read - read)
}

/// A raw WebSocket client that writes `frames` on its own thread, with a
/// blocking socket, batching as many frames per `write` as fit in 16 KiB:
/// as fast as the server lets it.
fn flood(raw: Raw, frames: impl Iterator<Item = Vec<u8>> + Send + 'static) -> JoinHandle<TcpStream> {
    let mut stream = raw.stream;
    stream.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(32 << 10);
        for frame in frames {
            batch.extend_from_slice(&frame);
            if batch.len() >= 16 << 10 {
                stream.write_all(&batch).expect("flood write");
                batch.clear();
            }
        }
        stream.write_all(&batch).expect("flood write");
        stream
    })
}

/// `n` well-behaved clients, connected.
fn players(server: &mut Server<Game>, n: usize) -> Vec<Client> {
    (0..n).map(|i| connect(server, &format!("/p{i}"))).collect()
}

/// Each player sends one message (`p{i}-{round}`); then ticks, counted,
/// until all are handed out. Returns the worst wait in ticks (1: the first
/// tick handed it out) and whether some tick was held to its full budget.
#[track_caller]
fn round(server: &mut Server<Game>, players: &mut [Client], round: usize, budget: &TickBudget) -> (u64, bool) {
    for (i, p) in players.iter_mut().enumerate() {
        send_text(server, p, &format!("p{i}-{round}"));
    }
    std::thread::sleep(SETTLE);
    let start = server.handler().tick;
    let want = players.len();
    let mut full = false;
    for _ in 0..1000 {
        let (messages, bytes) = counted_tick(server);
        assert!(
            messages <= budget.messages,
            "a tick handed out {messages} messages, over the budget"
        );
        assert!(
            bytes as usize <= budget.bytes,
            "a tick read {bytes} bytes, over the budget"
        );
        full |= messages == budget.messages || bytes as usize == budget.bytes;
        let g = server.handler();
        let tag = format!("-{round}");
        let done: Vec<u64> = g
            .chat
            .iter()
            .filter(|c| c.1.starts_with('p') && c.1.ends_with(&tag))
            .map(|c| c.2)
            .collect();
        if done.len() == want {
            return (done.iter().map(|t| t - start).max().unwrap(), full);
        }
    }
    panic!("round {round}: the players' messages were not all handed out in 1000 ticks");
}

/// Ticks (counted, each within the budget) until the whole flood is in.
#[track_caller]
fn drain_flood(server: &mut Server<Game>, total: usize, budget: &TickBudget) {
    let mut ticks = 0u64;
    while server.handler().flood_next < total && server.handler().flood_errors.is_empty() {
        let (messages, bytes) = counted_tick(server);
        assert!(
            messages <= budget.messages,
            "a tick handed out {messages} messages, over the budget"
        );
        assert!(
            bytes as usize <= budget.bytes,
            "a tick read {bytes} bytes, over the budget"
        );
        ticks += 1;
        assert!(ticks < 10_000_000, "the flood never finished");
        if messages == 0 {
            // The flooder's thread is behind: let it write.
            std::thread::yield_now();
        }
    }
    assert_eq!(
        server.handler().flood_errors,
        Vec::<String>::new(),
        "the flood lost or reordered messages"
    );
    assert_eq!(server.handler().flood_next, total);
}

#[test]
fn a_message_budget_holds_every_tick_and_no_player_waits_past_the_bound() {
    let budget = TickBudget {
        messages: 16,
        ..TickBudget::UNLIMITED
    };
    let config = ServerConfig {
        tick_budget: budget,
        ..ServerConfig::default()
    };
    let mut server = server_with(Game::default(), config);
    let mut players = players(&mut server, 5);
    let flooder = Raw::ws(&mut server, "/flood");
    // Small numbered frames, text and binary: about 1.1 MB.
    const TOTAL: usize = 100_000;
    let writer = flood(
        flooder,
        (0..TOTAL).map(|i| masked_frame(true, if i % 2 == 0 { 0x1 } else { 0x2 }, format!("f{i}").as_bytes())),
    );
    pump_until(&mut server, "the flood to begin", |s| s.handler().flood_next > 0);

    // C: the flooder and the players all have input waiting.
    let bound = 1 + players.len() as u64;
    for r in 0..10 {
        let (waited, full) = round(&mut server, &mut players, r, &budget);
        assert!(
            waited <= bound,
            "round {r}: a player's message waited {waited} ticks (bound {bound})"
        );
        assert!(full, "round {r}: no tick used the whole budget: the flood was not on");
        assert!(
            server.handler().flood_next < TOTAL,
            "round {r}: the flood ended too soon to test anything"
        );
    }

    // A player's close is handed out within the bound too.
    util::close(&mut server, &mut players[0], 1000, "bye");
    std::thread::sleep(SETTLE);
    let start = server.handler().tick;
    while server.handler().closes.is_empty() {
        let (messages, _) = counted_tick(&mut server);
        assert!(messages <= budget.messages);
        assert!(
            server.handler().tick - start < bound,
            "a player's close waited past the bound"
        );
    }

    drain_flood(&mut server, TOTAL, &budget);
    writer.join().expect("flood thread");
    // Each player's messages came in order, all of them.
    for i in 1..players.len() {
        let ch = server
            .handler()
            .chat
            .iter()
            .find(|c| c.1 == format!("p{i}-0"))
            .unwrap()
            .0;
        let theirs: Vec<String> = server
            .handler()
            .chat
            .iter()
            .filter(|c| c.0 == ch)
            .map(|c| c.1.clone())
            .collect();
        assert_eq!(theirs, (0..10).map(|r| format!("p{i}-{r}")).collect::<Vec<_>>());
    }
}

#[test]
fn many_flooders_share_the_budget_round_robin() {
    // Three flooders: a player's message waits for one turn of each.
    let budget = TickBudget {
        messages: 8,
        ..TickBudget::UNLIMITED
    };
    let config = ServerConfig {
        tick_budget: budget,
        ..ServerConfig::default()
    };
    let mut server = server_with(Game::default(), config);
    let mut players = players(&mut server, 3);
    const EACH: usize = 20_000;
    let mut writers = Vec::new();
    for f in 0..3 {
        let raw = Raw::ws(&mut server, "/flood");
        // Each flooder's frames carry its number: "x{f}-{i}".
        writers.push(flood(
            raw,
            (0..EACH).map(move |i| masked_frame(true, 0x1, format!("x{f}-{i}").as_bytes())),
        ));
    }
    std::thread::sleep(SETTLE);
    let bound = 3 + players.len() as u64;
    for r in 0..5 {
        let (waited, full) = round(&mut server, &mut players, r, &budget);
        assert!(waited <= bound, "round {r}: waited {waited} ticks (bound {bound})");
        assert!(full, "round {r}: the flood was not on");
    }
    // Every flooder's messages, all of them, in order.
    let mut ticks = 0;
    while server.handler().many_total < 3 * EACH {
        let (messages, _) = counted_tick(&mut server);
        assert!(messages <= budget.messages);
        ticks += 1;
        assert!(ticks < 10_000_000, "the floods never finished");
        if messages == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(server.handler().flood_errors, Vec::<String>::new());
    assert_eq!(server.handler().many_next, [EACH; 3]);
    for w in writers {
        w.join().expect("flood thread");
    }
}

#[test]
fn a_byte_budget_bounds_what_a_tick_reads() {
    // Large messages count one each: the byte budget is what holds them.
    let budget = TickBudget {
        bytes: 16 << 10,
        ..TickBudget::UNLIMITED
    };
    let config = ServerConfig {
        tick_budget: budget,
        ..ServerConfig::default()
    };
    let mut server = server_with(Game::default(), config);
    let mut players = players(&mut server, 4);
    let flooder = Raw::ws(&mut server, "/flood");
    // 300 binary messages of 6 KiB, numbered: 1.8 MB.
    const TOTAL: usize = 300;
    let writer = flood(
        flooder,
        (0..TOTAL).map(|i| {
            let mut payload = format!("f{i} ").into_bytes();
            payload.resize(6 << 10, b'.');
            masked_frame(true, 0x2, &payload)
        }),
    );
    pump_until(&mut server, "the flood to begin", |s| s.handler().flood_next > 0);
    let bound = 1 + players.len() as u64;
    for r in 0..5 {
        let (waited, full) = round(&mut server, &mut players, r, &budget);
        assert!(waited <= bound, "round {r}: waited {waited} ticks (bound {bound})");
        assert!(full, "round {r}: no tick read the whole budget: the flood was not on");
    }
    // A large message, bigger than a tick's budget, still gets through.
    send(
        &mut server,
        &mut players[0],
        tungstenite::Message::binary(vec![b'b'; 100 << 10]),
    );
    drain_flood(&mut server, TOTAL, &budget);
    pump_until(&mut server, "the large message", |s| {
        s.handler().chat.iter().any(|c| c.1.len() == 100 << 10)
    });
    writer.join().expect("flood thread");
}

#[test]
fn pipelined_requests_are_answered_in_order_across_ticks() {
    let budget = TickBudget {
        messages: 3,
        ..TickBudget::UNLIMITED
    };
    let config = ServerConfig {
        tick_budget: budget,
        ..ServerConfig::default()
    };
    let mut server = server_with(Game::default(), config);
    let mut raw = Raw::connect(&server);
    let requests: String = (0..10)
        .map(|i| format!("GET /n?{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    raw.write(&mut server, requests.as_bytes());
    let bodies: Vec<String> = (0..10).map(|_| raw.response(&mut server).text().to_owned()).collect();
    assert_eq!(bodies, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn a_budget_of_zero_is_refused_at_init() {
    for tick_budget in [
        TickBudget {
            messages: 0,
            ..TickBudget::UNLIMITED
        },
        TickBudget {
            bytes: 0,
            ..TickBudget::UNLIMITED
        },
        TickBudget {
            writes: 0,
            ..TickBudget::UNLIMITED
        },
    ] {
        let mut server = Server::with_config(
            Game::default(),
            ServerConfig {
                tick_budget,
                ..ServerConfig::default()
            },
        );
        assert!(matches!(
            server.init_addr("127.0.0.1:0".parse().unwrap()),
            Err(hvws::ServerError::InvalidConfig(_))
        ));
    }
}

/// `TickBudget::writes`: a flush writes at most that many connections,
/// in the order they were first sent to; the rest keep their output and
/// are written first by the next flushes, and what is sent to them
/// meanwhile leaves in the same write. (Loopback delivers a finished
/// `write` before the call returns, so "not written yet" is seen as
/// nothing to read.)
#[test]
fn a_write_budget_spreads_a_broadcast_over_flushes_first_listed_first() {
    let budget = TickBudget {
        writes: 3,
        ..TickBudget::UNLIMITED
    };
    let config = ServerConfig {
        tick_budget: budget,
        ..ServerConfig::default()
    };
    let mut server = server_with(Game::default(), config);
    let mut raws: Vec<util::Raw> = (0..10).map(|_| Raw::ws(&mut server, "/w")).collect();
    for (i, raw) in raws.iter_mut().enumerate() {
        raw.write(&mut server, &masked_frame(true, 1, format!("hi{i}").as_bytes()));
    }
    pump_until(&mut server, "every hello", |s| s.handler().chat.len() == 10);
    let mut channel = vec![None; 10];
    for (ch, text, _) in &server.handler().chat {
        channel[text[2..].parse::<usize>().unwrap()] = Some(*ch);
    }
    let channel: Vec<Channel> = channel.into_iter().map(Option::unwrap).collect();

    // Sent to in reverse order: 9 is first in line, 0 last.
    let writes = server.stats().writes;
    for i in (0..10).rev() {
        assert!(server.context().send_text(channel[i], &format!("a{i}")).is_queued());
    }
    assert_eq!(server.context().unflushed(), 10);
    server.flush().unwrap();
    assert_eq!(server.stats().writes - writes, 3);
    assert_eq!(server.context().unflushed(), 7);
    for (i, raw) in raws.iter_mut().enumerate() {
        raw.fill();
        let written = parse_frame(&raw.buf).is_some();
        assert_eq!(written, i >= 7, "connection {i} after the first flush");
    }

    // A second message to everyone: those still waiting carry both in one
    // write; 7, 8 and 9 are listed again, behind them.
    for (i, &ch) in channel.iter().enumerate() {
        assert!(server.context().send_text(ch, &format!("b{i}")).is_queued());
    }
    let mut flushes = 1;
    while server.context().unflushed() > 0 {
        server.flush().unwrap();
        flushes += 1;
        assert!(flushes <= 10, "the budget never let the rest out");
    }
    assert_eq!(flushes, 5, "13 writes at 3 a flush");
    assert_eq!(server.stats().writes - writes, 13, "one write per connection per flush");
    for (i, raw) in raws.iter_mut().enumerate() {
        let texts: Vec<String> = (0..2)
            .map(|_| String::from_utf8(raw.frame(&mut server).payload).unwrap())
            .collect();
        assert_eq!(texts, [format!("a{i}"), format!("b{i}")], "connection {i}");
    }
    assert_eq!(server.stats().slow_consumer_closes, 0);
}

#[cfg(feature = "tls")]
#[test]
fn under_tls_the_budget_holds_and_nothing_is_lost() {
    // A small byte budget cuts reads inside TLS records: the plaintext
    // rustls keeps is read next tick, with no new edge to announce it.
    let budget = TickBudget {
        messages: 2,
        bytes: 1000,
        ..TickBudget::UNLIMITED
    };
    let pki = util::certs::Pki::new("hvws budget CA");
    let mut server = Server::with_config(
        Game::default(),
        ServerConfig {
            tick_budget: budget,
            ..ServerConfig::default()
        },
    );
    server
        .init_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
        .unwrap();
    server.start().unwrap();
    let mut client = hvws::WebSocketClient::with_config(
        util::tungstenite_peer::Recorder::default(),
        hvws::ClientConfig {
            tls: pki.client_tls(),
            ..hvws::ClientConfig::default()
        },
    );
    let url = format!("wss://127.0.0.1:{}/t", server.tls_addr().unwrap().port());
    client.init(&url).unwrap();
    pump_until(&mut server, "the wss open", |s| {
        client.process_event_que();
        s.channel_count() == 1 && client.handler().opens == 1
    });
    for i in 0..40 {
        assert!(client.send(&format!("t{i}")).is_queued());
    }
    assert!(client.send_binary(&[b'b'; 50 << 10]).is_queued());
    let mut ticks = 0;
    while server.handler().chat.len() < 41 {
        client.process_event_que();
        let (messages, bytes) = counted_tick(&mut server);
        assert!(messages <= budget.messages, "{messages} messages in a tick");
        assert!(bytes as usize <= budget.bytes, "{bytes} bytes in a tick");
        ticks += 1;
        assert!(ticks < 100_000, "the wss messages never all arrived");
        std::thread::sleep(Duration::from_micros(100));
    }
    let got: Vec<String> = server.handler().chat.iter().map(|c| c.1.clone()).collect();
    let mut want: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    want.push("b".repeat(50 << 10));
    assert_eq!(got, want);
}
