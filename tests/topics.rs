//! Topics over loopback: subscribe, publish, unsubscribe, closes; the order
//! of publishes and direct sends; topics across servers of a hub (two
//! servers ticked on this thread) and across a `ServerGroup`'s threads.

#[path = "util/mod.rs"]
mod util;

use std::net::TcpStream;
use std::time::Instant;

use hvws::{Channel, Context, Hub, HvWebServer, Opcode, Server, ServerConfig, ServerGroup};
use tungstenite::Message;
use util::*;

/// The room protocol of `examples/room_server`, in miniature, and a record
/// of the topic callbacks.
#[derive(Default)]
struct Rooms {
    opened: Vec<Channel>,
    log: Vec<String>,
}

impl HvWebServer for Rooms {
    fn on_ws_open(&mut self, _: &mut Context<'_>, ch: Channel, _: &str) {
        self.opened.push(ch);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        let (cmd, rest) = msg.split_once(' ').unwrap_or((msg, ""));
        match (cmd, rest.split_once(' ')) {
            ("join", _) => {
                ctx.subscribe(ch, rest);
            }
            ("leave", _) => {
                ctx.unsubscribe(ch, rest);
            }
            ("say", Some((room, text))) => {
                ctx.publish_text(room, &format!("{room}: {text}"), None);
            }
            ("big", Some((room, n))) => {
                let data = hvws::Bytes::from(pattern(n.parse().unwrap()));
                ctx.publish_shared(room, data, Opcode::Binary, None).unwrap();
            }
            ("rooms", _) => {
                let mut rooms: Vec<&str> = ctx.topics(ch).collect();
                rooms.sort();
                ctx.send_text(ch, &format!("rooms: {}", rooms.join(" ")));
            }
            _ => {
                ctx.send_text(ch, "error: unknown command");
            }
        }
    }
    fn on_topic_active(&mut self, _: &mut Context<'_>, topic: &str) {
        self.log.push(format!("+{topic}"));
    }
    fn on_topic_inactive(&mut self, _: &mut Context<'_>, topic: &str) {
        self.log.push(format!("-{topic}"));
    }
}

/// A large payload whose bytes say where they are.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Joins `room` and waits until the server has the subscription.
fn join(server: &mut Server<Rooms>, c: &mut Client, room: &str) {
    send_text(server, c, &format!("join {room}"));
    send_text(server, c, "rooms");
    let rooms = recv_text(server, c);
    assert!(rooms.split(' ').any(|r| r == room), "{rooms}");
}

#[test]
fn subscribers_get_a_publish_and_others_do_not() {
    let mut server = server(Rooms::default());
    let mut a = connect(&mut server, "/rooms");
    let mut b = connect(&mut server, "/rooms");
    let mut c = connect(&mut server, "/rooms");
    join(&mut server, &mut a, "red");
    join(&mut server, &mut b, "red");
    join(&mut server, &mut c, "blue");
    assert_eq!(server.handler().log, ["+red", "+blue"]);

    send_text(&mut server, &mut a, "say red hello");
    assert_eq!(recv_text(&mut server, &mut a), "red: hello");
    assert_eq!(recv_text(&mut server, &mut b), "red: hello");
    send_text(&mut server, &mut c, "say blue only me");
    assert_eq!(
        recv_text(&mut server, &mut c),
        "blue: only me",
        "c got nothing from red before"
    );
    assert_eq!(server.context().subscriber_count("red"), 2);
    assert_eq!(server.context().topic_count(), 2);
}

#[test]
fn publishes_and_direct_sends_keep_their_order_and_unsubscribe_after_publish_delivers() {
    let mut server = server(Rooms::default());
    let mut a = connect(&mut server, "/rooms");
    join(&mut server, &mut a, "t");
    let ch = server.handler().opened[0];
    server.with_context(|_, ctx| {
        ctx.send_text(ch, "1");
        assert_eq!(ctx.publish_text("t", "2", None), 1);
        ctx.send_text(ch, "3");
        assert_eq!(ctx.publish("t", b"4", Opcode::Binary, None), Ok(1));
        // Published before the unsubscribe: still on its way.
        assert!(ctx.unsubscribe(ch, "t"));
        assert_eq!(ctx.publish_text("t", "not delivered", None), 0);
        ctx.send_text(ch, "5");
    });
    let got: Vec<Message> = (0..5).map(|_| recv(&mut server, &mut a)).collect();
    assert_eq!(
        got,
        [
            Message::text("1"),
            Message::text("2"),
            Message::text("3"),
            Message::binary(b"4".to_vec()),
            Message::text("5")
        ]
    );
    assert_eq!(server.handler().log, ["+t", "-t"]);
    assert!(server.context().publish("t", b"x", Opcode::Ping, None).is_err());
}

#[test]
fn except_skips_one_subscriber() {
    let mut server = server(Rooms::default());
    let mut a = connect(&mut server, "/rooms");
    let mut b = connect(&mut server, "/rooms");
    join(&mut server, &mut a, "t");
    join(&mut server, &mut b, "t");
    let first = server.handler().opened[0];
    assert_eq!(server.context().publish_text("t", "not to a", Some(first)), 1);
    server.context().publish_text("t", "to both", None);
    assert_eq!(recv_text(&mut server, &mut b), "not to a");
    assert_eq!(recv_text(&mut server, &mut b), "to both");
    assert_eq!(recv_text(&mut server, &mut a), "to both");
}

#[test]
fn closing_unsubscribes_after_on_ws_close() {
    let mut server = server(Rooms::default());
    let mut a = connect(&mut server, "/rooms");
    join(&mut server, &mut a, "x");
    join(&mut server, &mut a, "y");
    let ch = server.handler().opened[0];
    close(&mut server, &mut a, 1000, "bye");
    pump_until(&mut server, "the topics to empty", |s| s.context().topic_count() == 0);
    let mut log = server.handler().log.clone();
    log[2..].sort();
    assert_eq!(log, ["+x", "+y", "-x", "-y"]);
    assert!(!server.context().is_subscribed(ch, "x"));
    // A closed channel cannot subscribe again.
    assert!(!server.context().subscribe(ch, "x"));
}

#[test]
fn a_slow_subscriber_meets_the_write_cap() {
    let config = ServerConfig {
        max_write_buffer: 64 << 10,
        ..ServerConfig::default()
    };
    let mut server = server_with(Rooms::default(), config);
    let mut slow = connect(&mut server, "/rooms");
    let mut fast = connect(&mut server, "/rooms");
    join(&mut server, &mut slow, "feed");
    join(&mut server, &mut fast, "feed");
    let slow_ch = server.handler().opened[0];
    let chunk = vec![b'x'; 16 << 10];
    // `slow` never reads; `fast` does. The slow one is closed (the
    // default policy) and unsubscribed; the fast one gets everything.
    let mut sent = 0;
    let deadline = Instant::now() + TIMEOUT;
    while server.context().is_open(slow_ch) {
        assert!(Instant::now() < deadline, "the slow subscriber was never closed");
        server.context().publish_binary("feed", &chunk, None);
        sent += 1;
        tick(&mut server);
        while fast.try_recv().is_some() {
            sent -= 1;
        }
    }
    pump_until(&mut server, "fast to read everything", |_| {
        while fast.try_recv().is_some() {
            sent -= 1;
        }
        sent == 0
    });
    assert_eq!(server.context().subscriber_count("feed"), 1);
}

#[test]
fn a_hub_spans_servers() {
    let hub = Hub::new();
    let mut one = Server::new(Rooms::default());
    let mut two = Server::new(Rooms::default());
    for s in [&mut one, &mut two] {
        s.join_hub(&hub);
        s.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        s.start().unwrap();
    }
    assert_eq!(hub.servers(), 2);
    let mut a = connect(&mut one, "/rooms");
    let mut b = connect(&mut two, "/rooms");
    join(&mut one, &mut a, "lobby");
    join(&mut two, &mut b, "lobby");

    // From a client of one: both servers' subscribers, exactly once.
    send_text(&mut one, &mut a, "say lobby hi");
    assert_eq!(recv_text(&mut one, &mut a), "lobby: hi");
    // two delivers on its tick after one's forwarded the batch.
    assert_eq!(recv_text(&mut two, &mut b), "lobby: hi");
    // From another thread, through the hub and through a handle.
    hub.publish_text("lobby", "from the sim");
    two.handle().publish_text("lobby", "from two's handle", None).unwrap();
    for _ in 0..3 {
        tick(&mut one);
        tick(&mut two);
    }
    assert_eq!(recv_text(&mut one, &mut a), "from the sim");
    assert_eq!(recv_text(&mut one, &mut a), "from two's handle");
    assert_eq!(recv_text(&mut two, &mut b), "from the sim");
    assert_eq!(recv_text(&mut two, &mut b), "from two's handle");
    pump_n(&mut one, 5);
    assert!(a.try_recv().is_none(), "a message came twice");
    assert!(b.try_recv().is_none(), "a message came twice");

    // Large payloads, shared by reference within each server and across
    // the hub's batch: intact on both.
    send_text(&mut one, &mut a, "big lobby 100000");
    assert_eq!(recv_binary(&mut one, &mut a), pattern(100_000));
    assert_eq!(recv_binary(&mut two, &mut b), pattern(100_000));
    hub.publish_binary("lobby", &pattern(70_000));
    for _ in 0..3 {
        tick(&mut one);
        tick(&mut two);
    }
    assert_eq!(recv_binary(&mut one, &mut a), pattern(70_000));
    assert_eq!(recv_binary(&mut two, &mut b), pattern(70_000));

    two.stop().unwrap();
    assert_eq!(hub.servers(), 1, "a stopped server leaves its hub");
}

/// A blocking tungstenite client for servers on other threads.
fn blocking_client(addr: std::net::SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{addr}/rooms"), stream).unwrap();
    ws
}

fn read_text(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("a message within the timeout") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

#[test]
fn a_server_group_shares_one_port_and_its_topics() {
    init_logging();
    let group = ServerGroup::spawn(
        "127.0.0.1:0".parse().unwrap(),
        2,
        ServerConfig::default(),
        |_| Rooms::default(),
        |server, _| server.run(),
    )
    .unwrap();
    assert_eq!(group.threads(), 2);
    assert_eq!(group.hub().servers(), 2);
    let addr = group.local_addr();
    assert_ne!(addr.port(), 0);

    // Enough clients that the kernel puts some on each listener (its hash
    // is per connection; with 16 the chance all land on one is 2^-15).
    let mut clients: Vec<_> = (0..16).map(|_| blocking_client(addr)).collect();
    for c in &mut clients {
        c.send(Message::text("join all")).unwrap();
        c.send(Message::text("rooms")).unwrap();
        assert_eq!(read_text(c), "rooms: all");
    }
    // The kernel spread them (all 16 on one listener: a 2^-15 chance).
    let per_server: Vec<u64> = group.handles().iter().map(|h| h.stats().websockets).collect();
    assert_eq!(per_server.iter().sum::<u64>(), 16, "{per_server:?}");
    assert!(per_server.iter().all(|&n| n > 0), "{per_server:?}");
    assert_eq!(group.stats().websockets, 16);
    assert_eq!(group.stats().subscriptions, 16);
    clients[0].send(Message::text("say all one message")).unwrap();
    for c in &mut clients {
        assert_eq!(read_text(c), "all: one message");
    }
    group.stop();
    let deadline = Instant::now() + TIMEOUT;
    for c in &mut clients {
        // Each gets the server's 1001 goodbye.
        loop {
            assert!(Instant::now() < deadline);
            match c.read() {
                Ok(Message::Close(Some(f))) => {
                    assert_eq!(u16::from(f.code), 1001);
                    break;
                }
                Ok(_) => continue,
                Err(e) => panic!("expected the 1001 close, got {e}"),
            }
        }
    }
    group.join().unwrap();
}

#[test]
fn a_second_group_on_a_taken_port_is_refused() {
    init_logging();
    let spawn = |addr| {
        ServerGroup::spawn(
            addr,
            2,
            ServerConfig::default(),
            |_| Rooms::default(),
            |server, _| server.run(),
        )
    };
    let first = spawn("127.0.0.1:0".parse().unwrap()).unwrap();
    // Both would set SO_REUSEPORT: without the check the second would
    // bind and take half of the first's clients.
    let err = spawn(first.local_addr()).unwrap_err();
    assert!(matches!(err, hvws::ServerError::Bind { .. }), "{err}");
    first.stop();
    first.join().unwrap();
}

#[test]
fn a_group_that_cannot_bind_says_why() {
    // Something already listens on the port without SO_REUSEPORT.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = ServerGroup::spawn(
        taken.local_addr().unwrap(),
        2,
        ServerConfig::default(),
        |_| Rooms::default(),
        |server, _| server.run(),
    )
    .unwrap_err();
    assert!(matches!(err, hvws::ServerError::Bind { .. }), "{err}");
}

#[test]
fn stopping_accepts_the_queued_connections_and_closes_them_cleanly() {
    // More connections wait in the kernel's queue than one tick accepts
    // (256): closing the listener would reset those left in it.
    let mut server = server(Rooms::default());
    let waiting: Vec<TcpStream> = (0..300)
        .map(|i| TcpStream::connect_timeout(&addr(&server), TIMEOUT).unwrap_or_else(|e| panic!("connect {i}: {e}")))
        .collect();
    server.stop().unwrap();
    for (i, mut c) in waiting.into_iter().enumerate() {
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 64];
        match std::io::Read::read(&mut c, &mut buf) {
            Ok(0) => {}
            other => panic!("connection {i}: expected a clean EOF, got {other:?}"),
        }
    }
}

#[test]
fn a_ticks_publishes_and_sends_leave_in_one_write_per_subscriber() {
    let mut server = server(Rooms::default());
    let mut clients: Vec<Client> = (0..10).map(|_| connect(&mut server, "/rooms")).collect();
    for c in &mut clients {
        join(&mut server, c, "t");
    }
    let channels = server.handler().opened.clone();
    let before = server.stats();
    assert_eq!((before.topics, before.subscriptions), (1, 10));
    server.with_context(|_, ctx| {
        for i in 0..3 {
            ctx.publish_text("t", &format!("publish {i}"), None);
            for &ch in &channels {
                ctx.send_text(ch, &format!("direct {i}"));
            }
        }
    });
    server.flush().unwrap();
    let after = server.stats();
    assert_eq!(after.writes - before.writes, 10, "one write per subscriber");
    assert_eq!(after.publishes - before.publishes, 3);
    for c in &mut clients {
        for i in 0..3 {
            assert_eq!(recv_text(&mut server, c), format!("publish {i}"));
            assert_eq!(recv_text(&mut server, c), format!("direct {i}"));
        }
    }
}
