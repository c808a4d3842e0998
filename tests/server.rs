//! The server over real loopback sockets: tungstenite's client as an
//! independent peer, raw TCP for byte-exact checks. The server is ticked on
//! the test thread; every wait ends after `util::TIMEOUT` with a message.

mod util;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::thread;

use hvws::{
    offered_protocols, Channel, CloseInfo, CloseInitiator, Context, Handshake, HttpRequest, HttpResponse, HvWebServer,
    Opcode, Routes, SendError, Server, ServerConfig, ServerError, WsError,
};
use tungstenite::http::Uri;
use tungstenite::{ClientRequestBuilder, Message};

use util::{
    close, connect, masked_frame, pump_for, pump_n, pump_until, recv, recv_binary, recv_close, recv_text, send,
    send_text, try_connect, unmasked_frame, until_closed, Raw, TIMEOUT,
};

/// Records every callback; echoes text and binary messages.
#[derive(Debug, Default)]
struct Probe {
    opened: Vec<Channel>,
    closes: Vec<(Channel, CloseInfo)>,
    errors: Vec<(Channel, String)>,
    /// Text messages received.
    texts: usize,
    /// Every callback run, of any kind.
    callbacks: usize,
}

impl Probe {
    fn close_of(&self, ch: Channel) -> Option<&CloseInfo> {
        self.closes.iter().find(|(c, _)| *c == ch).map(|(_, info)| info)
    }
}

impl HvWebServer for Probe {
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        self.callbacks += 1;
        self.opened.push(channel);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        self.callbacks += 1;
        self.texts += 1;
        ctx.send_text(channel, msg).expect("echo text");
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        self.callbacks += 1;
        ctx.send_binary(channel, data).expect("echo binary");
    }
    fn on_ws_ping(&mut self, _ctx: &mut Context<'_>, _channel: Channel, _payload: &[u8]) {
        self.callbacks += 1;
    }
    fn on_ws_pong(&mut self, _ctx: &mut Context<'_>, _channel: Channel, _payload: &[u8]) {
        self.callbacks += 1;
    }
    fn on_ws_error(&mut self, _ctx: &mut Context<'_>, channel: Channel, error: &WsError) {
        self.callbacks += 1;
        self.errors.push((channel, error.to_string()));
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        self.callbacks += 1;
        assert!(self.close_of(channel).is_none(), "on_ws_close ran twice for {channel}");
        self.closes.push((channel, close.clone()));
    }
}

/// Waits until the probe has seen `n` channels open; returns the `n`th.
#[track_caller]
fn nth_open(server: &mut Server<Probe>, n: usize) -> Channel {
    pump_for(server, &format!("channel #{n} to open"), |s| {
        s.handler().opened.get(n - 1).copied()
    })
}

/// Waits until `ch`'s close callback ran; returns what it got.
#[track_caller]
fn close_info(server: &mut Server<Probe>, ch: Channel) -> CloseInfo {
    pump_for(server, &format!("on_ws_close for {ch}"), |s| {
        s.handler().close_of(ch).cloned()
    })
}

// ---------------------------------------------------------------------------
// 1. The HV-06 tutorial, replayed.

/// examples/chat_server.rs, plus a record of close callbacks.
#[derive(Default)]
struct ChatServer {
    clients: HashMap<Channel, String>,
    next_id: u32,
    closes: Vec<(String, CloseInfo)>,
}

impl ChatServer {
    fn broadcast(&self, ctx: &mut Context<'_>, msg: &str, exclude: Option<Channel>) {
        ctx.broadcast_to(
            self.clients.keys().copied().filter(|c| Some(*c) != exclude),
            Opcode::Text,
            msg.as_bytes(),
        )
        .expect("text is a data opcode");
    }
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/clients", |chat: &mut ChatServer, _, _| {
                HttpResponse::text(chat.clients.len().to_string())
            })
            .websocket("/chat");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        self.next_id += 1;
        let nickname = format!("user_{}", self.next_id);
        let _ = ctx.send_text(channel, &format!("welcome {nickname}"));
        self.broadcast(ctx, &format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        let _ = ctx.send_text(channel, &format!("echo: {msg}"));
        self.broadcast(ctx, &format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = self.clients.remove(&channel).unwrap_or_else(|| "unknown".into());
        self.broadcast(ctx, &format!("{nickname} left"), None);
        self.closes.push((nickname, close.clone()));
    }
}

#[track_caller]
fn http_get<H: HvWebServer>(server: &mut Server<H>, conn: &mut Raw, path: &str) -> util::HttpResp {
    conn.write(server, format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.response(server)
}

#[test]
fn tutorial_chat_replay() {
    let mut server = util::server(ChatServer::default());

    let mut alice = connect(&mut server, "/chat");
    assert_eq!(recv_text(&mut server, &mut alice), "welcome user_1");
    send_text(&mut server, &mut alice, "hello server!");
    assert_eq!(recv_text(&mut server, &mut alice), "echo: hello server!");

    let mut bob = connect(&mut server, "/chat");
    assert_eq!(recv_text(&mut server, &mut bob), "welcome user_2");
    assert_eq!(recv_text(&mut server, &mut alice), "user_2 joined");

    send_text(&mut server, &mut bob, "hi everyone!");
    assert_eq!(recv_text(&mut server, &mut bob), "echo: hi everyone!");
    assert_eq!(recv_text(&mut server, &mut alice), "user_2: hi everyone!");

    // HTTP on the same port while both are connected, on one keep-alive
    // connection.
    let mut http = Raw::connect(&server);
    let clients = http_get(&mut server, &mut http, "/clients");
    assert_eq!((clients.status, clients.text()), (200, "2"));
    assert_eq!(clients.header("content-type"), Some("text/plain; charset=utf-8"));
    let ping = http_get(&mut server, &mut http, "/ping");
    assert_eq!((ping.status, ping.text()), (200, "pong"));

    // Alice leaves with a close frame and gets the server's reply.
    close(&mut server, &mut alice, 1000, "");
    assert_eq!(recv_close(&mut server, &mut alice).0, 1000);
    let late = until_closed(&mut server, &mut alice);
    assert!(late.is_empty(), "alice got messages after her close: {late:?}");
    assert_eq!(recv_text(&mut server, &mut bob), "user_1 left");
    let closes = &server.handler().closes;
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].0, "user_1");
    assert_eq!(
        closes[0].1,
        CloseInfo {
            code: 1000,
            reason: String::new(),
            was_clean: true,
            initiator: CloseInitiator::Remote
        }
    );
    let clients = http_get(&mut server, &mut http, "/clients");
    assert_eq!(clients.text(), "1");

    // Then Bob.
    close(&mut server, &mut bob, 1000, "bye");
    assert_eq!(recv_close(&mut server, &mut bob).0, 1000);
    let late = until_closed(&mut server, &mut bob);
    assert!(late.is_empty(), "bob got messages after his close: {late:?}");
    let closes = &server.handler().closes;
    assert_eq!(closes.len(), 2);
    assert_eq!(closes[1].0, "user_2");
    assert_eq!(
        closes[1].1,
        CloseInfo {
            code: 1000,
            reason: "bye".into(),
            was_clean: true,
            initiator: CloseInitiator::Remote
        }
    );
    let clients = http_get(&mut server, &mut http, "/clients");
    assert_eq!(clients.text(), "0");
}

// ---------------------------------------------------------------------------
// 2. Binary messages.

#[test]
fn binary_messages_echo_unchanged() {
    let mut server = util::server(Probe::default());
    let mut client = connect(&mut server, "/");
    let big: Vec<u8> = (0..100 * 1024).map(|i: u32| (i.wrapping_mul(7) % 251) as u8).collect();
    let payloads = [
        Vec::new(),
        vec![0, 1, 0x80, 0xff],
        vec![0xaa; 126],
        big.clone(),
        Vec::new(),
        big,
    ];
    for payload in payloads {
        send(&mut server, &mut client, Message::binary(payload.clone()));
        let echoed = recv_binary(&mut server, &mut client);
        assert_eq!(echoed.len(), payload.len());
        assert!(
            echoed == payload,
            "binary message of {} bytes came back changed",
            payload.len()
        );
    }

    // Byte-exact, with the first frame in the same write as the handshake
    // request, and a ping answered with the same payload.
    let mut raw = Raw::connect(&server);
    let mut bytes = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        util::addr(&server)
    )
    .into_bytes();
    bytes.extend(masked_frame(true, 2, &[0, 0xff, 0x10]));
    bytes.extend(masked_frame(true, 2, b""));
    bytes.extend(masked_frame(true, 9, b"are you there"));
    raw.write(&mut server, &bytes);
    let resp = raw.response(&mut server);
    assert_eq!(resp.status, 101);
    assert_eq!(
        resp.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    let frames: Vec<util::Frame> = (0..3).map(|_| raw.frame(&mut server)).collect();
    let summary: Vec<(bool, u8, &[u8])> = frames.iter().map(|f| (f.fin, f.opcode, &f.payload[..])).collect();
    assert_eq!(
        summary,
        [
            (true, 2, &[0, 0xff, 0x10][..]),
            (true, 2, &b""[..]),
            (true, 10, &b"are you there"[..])
        ]
    );
}

// ---------------------------------------------------------------------------
// 3. Fragmented sends.

/// On "frag", sends "hel" + ping + "lo" as one fragmented text message with a
/// whole message and a few invalid sends issued in between.
#[derive(Default)]
struct Fragments {
    results: Vec<Result<(), SendError>>,
}

impl HvWebServer for Fragments {
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        assert_eq!(msg, "frag");
        self.results = vec![
            ctx.send(ch, b"x", Opcode::Continuation, true),
            ctx.send(ch, b"hel", Opcode::Text, false),
            ctx.send_text(ch, "between"),
            ctx.send(ch, b"x", Opcode::Binary, false),
            ctx.ping(ch, b"mid"),
            ctx.send(ch, b"lo", Opcode::Continuation, true),
            ctx.send(ch, b"x", Opcode::Continuation, true),
            ctx.send(ch, b"x", Opcode::Close, true),
        ];
    }
}

fn expected_fragment_results() -> Vec<Result<(), SendError>> {
    vec![
        Err(SendError::InvalidOpcode(Opcode::Continuation)),
        Ok(()),
        Ok(()),
        Err(SendError::InvalidOpcode(Opcode::Binary)),
        Ok(()),
        Ok(()),
        Err(SendError::InvalidOpcode(Opcode::Continuation)),
        Err(SendError::InvalidOpcode(Opcode::Close)),
    ]
}

#[test]
fn fragmented_sends_arrive_as_one_message() {
    let mut server = util::server(Fragments::default());

    // tungstenite reassembles: one text message, the ping (control frames
    // may interleave) first, the whole message after.
    let mut client = connect(&mut server, "/");
    send_text(&mut server, &mut client, "frag");
    assert_eq!(recv(&mut server, &mut client), Message::Ping("mid".into()));
    assert_eq!(recv_text(&mut server, &mut client), "hello");
    assert_eq!(recv_text(&mut server, &mut client), "between");
    assert_eq!(server.handler().results, expected_fragment_results());

    // The exact frames.
    let mut raw = Raw::ws(&mut server, "/");
    raw.write(&mut server, &masked_frame(true, 1, b"frag"));
    let frames: Vec<util::Frame> = (0..4).map(|_| raw.frame(&mut server)).collect();
    let summary: Vec<(bool, u8, &[u8])> = frames.iter().map(|f| (f.fin, f.opcode, &f.payload[..])).collect();
    assert_eq!(
        summary,
        [
            (false, 1, &b"hel"[..]),
            (true, 9, &b"mid"[..]),
            (true, 0, &b"lo"[..]),
            (true, 1, &b"between"[..]),
        ]
    );
    assert_eq!(server.handler().results, expected_fragment_results());
}

// ---------------------------------------------------------------------------
// 4. Close codes and reasons, both ways.

#[test]
fn close_codes_and_reasons_both_ways() {
    let mut server = util::server(Probe::default());

    // The client closes with 4001 "bye".
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);
    close(&mut server, &mut client, 4001, "bye");
    assert_eq!(
        recv_close(&mut server, &mut client).0,
        4001,
        "the server echoes the code"
    );
    until_closed(&mut server, &mut client);
    assert_eq!(
        close_info(&mut server, ch),
        CloseInfo {
            code: 4001,
            reason: "bye".into(),
            was_clean: true,
            initiator: CloseInitiator::Remote
        }
    );

    // The server closes with 4002 "done", after refusing invalid closes.
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 2);
    let handle = server.handle().unwrap();
    server.with_context(|_, ctx| {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, u16::MAX] {
            assert_eq!(ctx.close(ch, code, ""), Err(SendError::InvalidCloseCode(code)));
            assert_eq!(handle.close(ch, code, ""), Err(SendError::InvalidCloseCode(code)));
        }
        let long = "r".repeat(124);
        assert_eq!(ctx.close(ch, 1000, &long), Err(SendError::ReasonTooLong(124)));
        assert_eq!(handle.close(ch, 4000, &long), Err(SendError::ReasonTooLong(124)));
        let long_utf8 = "é".repeat(62);
        assert_eq!(ctx.close(ch, 4000, &long_utf8), Err(SendError::ReasonTooLong(124)));
        assert!(ctx.is_open(ch), "a refused close must leave the channel open");
        ctx.send_text(ch, "still open").unwrap();
    });
    // Nothing was sent by the refused closes: the next frame is the text.
    assert_eq!(recv_text(&mut server, &mut client), "still open");
    assert_eq!(server.handler().closes.len(), 1);

    server.with_context(|_, ctx| {
        ctx.close(ch, 4002, "done").unwrap();
        assert!(!ctx.is_open(ch));
        assert_eq!(ctx.send_text(ch, "after close"), Err(SendError::ChannelClosed));
        assert_eq!(ctx.close(ch, 1000, ""), Err(SendError::ChannelClosed));
    });
    // The close frame is out, but the client has not answered yet: no
    // callback.
    pump_n(&mut server, 20);
    assert!(
        server.handler().close_of(ch).is_none(),
        "on_ws_close ran before the peer answered"
    );
    assert_eq!(recv_close(&mut server, &mut client), (4002, "done".to_owned()));
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.was_clean, info.initiator),
        (4002, true, CloseInitiator::Local)
    );
    until_closed(&mut server, &mut client);
    assert!(server.handler().errors.is_empty(), "{:?}", server.handler().errors);
}

// ---------------------------------------------------------------------------
// 5. Handshake decisions and channel info.

#[derive(Debug, Clone)]
struct Seen {
    url: String,
    target: String,
    path: String,
    room: Option<String>,
    key: Option<String>,
    header_names: Vec<String>,
    peer: SocketAddr,
    protocol: Option<String>,
}

#[derive(Default)]
struct Gate {
    handshakes: usize,
    opened: Vec<Seen>,
}

impl HvWebServer for Gate {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/chat");
    }

    fn on_ws_handshake(&mut self, request: &HttpRequest) -> Handshake {
        self.handshakes += 1;
        if request.header("x-api-key") != Some("s3cret") {
            return Handshake::Reject(HttpResponse::error(403));
        }
        if offered_protocols(request).any(|p| p == "chat") {
            Handshake::AcceptProtocol("chat".into())
        } else {
            Handshake::Accept
        }
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, url: &str) {
        let info = ctx.info(ch).expect("info of an open channel");
        self.opened.push(Seen {
            url: url.to_owned(),
            target: info.target().to_owned(),
            path: info.path().to_owned(),
            room: info.query_param("room"),
            key: info.header("X-API-KEY").map(str::to_owned),
            header_names: info.headers().iter().map(|(k, _)| k.clone()).collect(),
            peer: info.peer_addr(),
            protocol: info.protocol().map(str::to_owned),
        });
    }
}

fn request(server: &Server<Gate>, target: &str) -> ClientRequestBuilder {
    let uri: Uri = util::ws_url(server, target).parse().unwrap();
    ClientRequestBuilder::new(uri)
}

#[test]
fn handshake_reject_accept_and_subprotocol() {
    let mut server = util::server(Gate::default());

    // No key, then a wrong key: 403, and no channel.
    for req in [
        request(&server, "/chat"),
        request(&server, "/chat").with_header("X-Api-Key", "wrong"),
    ] {
        match try_connect(&mut server, req) {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 403);
                assert_eq!(resp.body().as_deref(), Some(&b"Forbidden"[..]));
            }
            Err(e) => panic!("expected an HTTP 403, got {e}"),
            Ok(_) => panic!("the handshake without the key was accepted"),
        }
    }
    pump_n(&mut server, 10);
    assert_eq!(server.handler().handshakes, 2);
    assert!(
        server.handler().opened.is_empty(),
        "on_ws_open ran for a rejected handshake"
    );

    // With the key, no subprotocol offered.
    let req = request(&server, "/chat").with_header("X-Api-Key", "s3cret");
    let plain = try_connect(&mut server, req).expect("handshake with the key");
    assert_eq!(plain.response.headers().get("sec-websocket-protocol"), None);
    let seen = pump_for(&mut server, "on_ws_open", |s| s.handler().opened.first().cloned());
    assert_eq!(seen.protocol, None);
    assert_eq!(seen.peer, plain.local_addr());

    // With the key and two offered subprotocols: "chat" is chosen.
    let req = request(&server, "/chat?room=main%20hall&x=1")
        .with_header("X-Api-Key", "s3cret")
        .with_sub_protocol("superchat")
        .with_sub_protocol("chat");
    let chat = try_connect(&mut server, req).expect("handshake with a subprotocol");
    assert_eq!(
        chat.response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("chat")
    );
    let seen = pump_for(&mut server, "the second on_ws_open", |s| {
        s.handler().opened.get(1).cloned()
    });
    assert_eq!(seen.protocol.as_deref(), Some("chat"));
    assert_eq!(seen.url, "/chat?room=main%20hall&x=1");
    assert_eq!(seen.target, seen.url);
    assert_eq!(seen.path, "/chat");
    assert_eq!(seen.room.as_deref(), Some("main hall"));
    assert_eq!(seen.key.as_deref(), Some("s3cret"), "header lookup is case-insensitive");
    assert!(
        seen.header_names.iter().any(|h| h == "x-api-key"),
        "{:?}",
        seen.header_names
    );
    assert!(
        seen.header_names.iter().all(|h| *h == h.to_ascii_lowercase()),
        "header names must be lower-cased: {:?}",
        seen.header_names
    );
    assert_eq!(seen.peer, chat.local_addr());
    assert_eq!(server.handler().handshakes, 4);

    // Another path than the declared WebSocket one: 404, before the handler.
    let req = request(&server, "/other").with_header("X-Api-Key", "s3cret");
    match try_connect(&mut server, req) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected an HTTP 404, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.handler().handshakes, 4);
}

// ---------------------------------------------------------------------------
// 6. Stale channel ids.

#[test]
fn stale_channel_id_cannot_reach_the_slot_reuser() {
    let mut server = util::server(Probe::default());
    let handle = server.handle().unwrap();

    let mut first = connect(&mut server, "/");
    let old = nth_open(&mut server, 1);
    close(&mut server, &mut first, 1000, "");
    recv_close(&mut server, &mut first);
    until_closed(&mut server, &mut first);
    drop(first);
    close_info(&mut server, old);
    // The slot is free once the server has seen the TCP close. Server's
    // Debug output is the only public view of the connection count.
    pump_until(&mut server, "the closed connection to leave its slot", |s| {
        format!("{s:?}").contains("connections: 0")
    });

    let mut second = connect(&mut server, "/");
    let new = nth_open(&mut server, 2);
    assert_eq!(new.index(), old.index(), "the new connection should reuse the slot");
    assert_ne!(new, old);

    server.with_context(|_, ctx| {
        assert_eq!(ctx.send_text(old, "to the old one"), Err(SendError::ChannelClosed));
        assert_eq!(ctx.send_binary(old, b"old"), Err(SendError::ChannelClosed));
        assert_eq!(
            ctx.send(old, b"old", Opcode::Text, false),
            Err(SendError::ChannelClosed)
        );
        assert_eq!(ctx.ping(old, b"old"), Err(SendError::ChannelClosed));
        assert_eq!(ctx.close(old, 1000, ""), Err(SendError::ChannelClosed));
        assert_eq!(ctx.broadcast_to([old], Opcode::Text, b"old"), Ok(0));
        assert!(!ctx.is_open(old));
        assert!(ctx.info(old).is_none());
        assert_eq!(ctx.buffered_amount(old), 0);
        assert!(ctx.is_open(new));
        ctx.send_text(new, "to the new one").unwrap();
    });
    // Through the handle the stale send is queued, then dropped by the tick.
    handle.send_text(old, "old via handle").unwrap();
    handle.close(old, 1000, "").unwrap();
    handle.send_text(new, "marker").unwrap();

    assert_eq!(recv_text(&mut server, &mut second), "to the new one");
    assert_eq!(recv_text(&mut server, &mut second), "marker");
    pump_n(&mut server, 20);
    assert_eq!(
        second.try_recv(),
        None,
        "the new client got something meant for the old one"
    );
    assert!(server.with_context(|_, ctx| ctx.is_open(new)));
}

// ---------------------------------------------------------------------------
// 7. The cross-thread handle.

#[test]
fn server_handle_from_another_thread() {
    let mut server = util::server(Probe::default());
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);

    let handle = server.handle().unwrap();
    let sender = thread::spawn(move || {
        for i in 0..100 {
            handle.send_text(ch, format!("n{i}")).unwrap();
        }
        handle.broadcast_text("to everyone", None).unwrap();
        handle
    });
    for i in 0..100 {
        assert_eq!(recv_text(&mut server, &mut client), format!("n{i}"));
    }
    assert_eq!(recv_text(&mut server, &mut client), "to everyone");
    let handle = sender.join().expect("sender thread");

    thread::spawn({
        let handle = handle.clone();
        move || handle.stop().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(recv_close(&mut server, &mut client).0, 1001);
    until_closed(&mut server, &mut client);
    drop(client);
    pump_until(&mut server, "the server to stop", |s| !s.is_running());

    let info = server.handler().close_of(ch).cloned().expect("on_ws_close ran");
    assert_eq!((info.code, info.initiator), (1001, CloseInitiator::Local));
    assert_eq!(handle.send_text(ch, "late"), Err(SendError::NotRunning));
    assert!(matches!(server.tick(), Err(ServerError::NotRunning)));
}

// ---------------------------------------------------------------------------
// 8. Idle ticks.

#[test]
fn idle_ticks_return_and_deliver_nothing() {
    let mut server = util::server(Probe::default());
    for _ in 0..1000 {
        server.tick().expect("idle tick without connections");
    }

    let mut clients: Vec<util::Client> = (0..50).map(|_| connect(&mut server, "/")).collect();
    nth_open(&mut server, 50);
    let before = server.handler().callbacks;
    for _ in 0..1000 {
        server.tick().expect("idle tick with 50 connections");
    }
    assert_eq!(server.handler().callbacks, before, "idle ticks ran callbacks");
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.try_recv(), None, "idle client {i} received something");
    }

    // Still serving.
    send_text(&mut server, &mut clients[37], "awake");
    assert_eq!(recv_text(&mut server, &mut clients[37]), "awake");
}

// ---------------------------------------------------------------------------
// 9. HTTP.

#[derive(Default)]
struct Counter {
    total: i64,
    bodies: Vec<String>,
}

impl HvWebServer for Counter {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/total", |c: &mut Counter, _, _| {
                HttpResponse::text(c.total.to_string())
            })
            .post("/add", |c: &mut Counter, _, req| {
                let body = req.body_text().unwrap_or_default().to_owned();
                match body.trim().parse::<i64>() {
                    Ok(n) => {
                        c.total += n;
                        c.bodies.push(body);
                        HttpResponse::text(c.total.to_string())
                    }
                    Err(_) => HttpResponse::error(400),
                }
            })
            .websocket("/chat");
    }
}

#[test]
fn http_routes_keep_alive_and_errors() {
    let mut server = util::server(Counter::default());

    // Three pipelined requests in one write, answered in order; the
    // connection stays open for a fourth.
    let mut conn = Raw::connect(&server);
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n40\
          GET /total HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /ping HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for want in ["40", "40", "pong"] {
        let r = conn.response(&mut server);
        assert_eq!((r.status, r.text()), (200, want));
        assert_eq!(r.header("connection"), None);
    }
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n+2\n",
    );
    let r = conn.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "42"));
    assert_eq!(server.handler().total, 42, "the route changed the handler's state");
    assert_eq!(server.handler().bodies, ["40", "+2\n"]);

    // Errors on the same keep-alive connection.
    let r = http_get(&mut server, &mut conn, "/nope");
    assert_eq!((r.status, r.text()), (404, "Not Found"));
    conn.write(&mut server, b"DELETE /ping HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = conn.response(&mut server);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = http_get(&mut server, &mut conn, "/chat");
    assert_eq!(r.status, 400, "a plain GET to a WebSocket-only path");
    let r = http_get(&mut server, &mut conn, "/ping");
    assert_eq!((r.status, r.text()), (200, "pong"));
    assert!(!conn.eof);

    // A body that arrives in pieces.
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n10",
    );
    pump_n(&mut server, 10);
    conn.fill();
    assert!(conn.buf.is_empty(), "answered before the body was complete");
    conn.write(&mut server, b"00");
    let r = conn.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "1042"));
    assert_eq!(server.handler().bodies, ["40", "+2\n", "1000"]);

    // A client that half-closes after its request still gets the answer.
    let mut half = Raw::connect(&server);
    half.write(&mut server, b"GET /total HTTP/1.1\r\nHost: t\r\n\r\n");
    half.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let r = half.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "1042"));
    assert_eq!(half.read_to_eof(&mut server), b"");

    // Connection: close.
    let mut once = Raw::connect(&server);
    once.write(
        &mut server,
        b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let r = once.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "pong"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(once.read_to_eof(&mut server), b"");

    // A malformed request: 400, then the server closes (read returns 0).
    let mut bad = Raw::connect(&server);
    bad.write(&mut server, b"\x01\x02 nonsense\r\n\r\n");
    let r = bad.response(&mut server);
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(bad.read_to_eof(&mut server), b"");
    assert!(bad.eof);
    let mut byte = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut bad.stream, &mut byte).unwrap(), 0);

    assert_eq!(server.handler().total, 1042);
}

// ---------------------------------------------------------------------------
// 10. stop() with clients connected.

/// Reads `client` on its own thread (blocking, with a timeout) until the
/// connection ends; returns the messages before the close frame and the
/// close frame's code.
fn read_on_thread(client: util::Client) -> thread::JoinHandle<(Vec<Message>, u16)> {
    let util::Client { mut ws, .. } = client;
    ws.get_mut().set_nonblocking(false).unwrap();
    ws.get_mut().set_read_timeout(Some(TIMEOUT)).unwrap();
    thread::spawn(move || {
        let mut messages = Vec::new();
        let code = loop {
            match ws.read() {
                Ok(Message::Close(frame)) => break frame.map_or(1005, |f| u16::from(f.code)),
                Ok(m) => messages.push(m),
                Err(e) => panic!("client read failed before the close frame: {e}"),
            }
        };
        // This read sends the reply, then sees the server's TCP close.
        match ws.read() {
            Ok(m) => panic!("message after the close frame: {m:?}"),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                panic!("timed out waiting for the server to close TCP")
            }
            Err(e) => panic!("client read failed after the close frame: {e}"),
        }
        (messages, code)
    })
}

#[test]
fn stop_delivers_queued_messages_before_1001() {
    let config = ServerConfig {
        shutdown_timeout: TIMEOUT,
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);
    let clients: Vec<util::Client> = (0..3).map(|_| connect(&mut server, "/")).collect();
    nth_open(&mut server, 3);
    let channels = server.handler().opened.clone();

    // Queued between ticks, with a message larger than the sockets take
    // while nobody reads, so part of it is still queued in the server when
    // stop begins and the 1001 close has to wait behind it.
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    server.with_context(|_, ctx| {
        for &ch in &channels {
            for i in 0..20 {
                ctx.send_text(ch, &format!("m{i}")).unwrap();
            }
            ctx.send_binary(ch, &big).unwrap();
            ctx.send_text(ch, "last").unwrap();
        }
    });
    server.tick().unwrap();
    server.with_context(|_, ctx| {
        for &ch in &channels {
            assert!(
                ctx.buffered_amount(ch) > 0,
                "precondition: the socket of {ch} took all {} bytes at once; use a larger message",
                big.len()
            );
        }
    });
    let readers: Vec<_> = clients.into_iter().map(read_on_thread).collect();
    server.stop().expect("stop");
    assert!(!server.is_running());

    let mut expected: Vec<Message> = (0..20).map(|i| Message::text(format!("m{i}"))).collect();
    expected.push(Message::binary(big));
    expected.push(Message::text("last"));
    for reader in readers {
        let (messages, code) = reader.join().expect("reader thread");
        assert_eq!(code, 1001);
        assert_eq!(messages.len(), expected.len());
        assert!(messages == expected, "messages arrived changed or out of order");
    }
    let probe = server.handler();
    assert_eq!(probe.closes.len(), channels.len());
    for ch in channels {
        let info = probe.close_of(ch).expect("on_ws_close ran for every channel");
        assert_eq!(
            (info.code, info.initiator, info.was_clean),
            (1001, CloseInitiator::Local, true)
        );
    }
}

// ---------------------------------------------------------------------------
// 11. Protocol violations.

#[test]
fn protocol_violations_fail_only_the_offender() {
    let config = ServerConfig {
        max_message_size: 1024,
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);
    let mut good = connect(&mut server, "/");
    let good_ch = nth_open(&mut server, 1);

    let mut fragmented = masked_frame(false, 2, &[1; 600]);
    fragmented.extend(masked_frame(true, 0, &[2; 600]));
    let cases = [
        ("unmasked frame", unmasked_frame(true, 1, b"hi"), 1002),
        ("invalid UTF-8", masked_frame(true, 1, b"ok \xff\xfe"), 1007),
        ("message over max_message_size", masked_frame(true, 2, &[7; 2000]), 1009),
        ("fragmented message over max_message_size", fragmented, 1009),
    ];
    for (i, (name, bytes, code)) in cases.into_iter().enumerate() {
        let mut raw = Raw::ws(&mut server, "/");
        let ch = nth_open(&mut server, i + 2);
        // The good client's message and the violation reach the same tick.
        util::send_text(&mut server, &mut good, &format!("still fine {i}"));
        raw.write(&mut server, &bytes);

        let frame = raw.frame(&mut server);
        assert_eq!(frame.close_code().0, code, "{name}: close code");
        assert_eq!(raw.read_to_eof(&mut server), b"", "{name}: bytes after the close frame");

        let info = close_info(&mut server, ch);
        assert_eq!(
            (info.code, info.was_clean, info.initiator),
            (code, false, CloseInitiator::Local),
            "{name}: {info:?}"
        );
        assert!(
            server.handler().errors.iter().any(|(c, _)| *c == ch),
            "{name}: on_ws_error did not run"
        );
        assert_eq!(recv_text(&mut server, &mut good), format!("still fine {i}"), "{name}");
    }
    assert_eq!(server.handler().closes.len(), 4);

    // The good client closes normally at the end.
    close(&mut server, &mut good, 1000, "");
    recv_close(&mut server, &mut good);
    until_closed(&mut server, &mut good);
    assert_eq!(close_info(&mut server, good_ch).code, 1000);
}

// ---------------------------------------------------------------------------
// 12. Ends without a closing handshake.

#[test]
fn dropped_peers_and_close_timeout() {
    let config = ServerConfig {
        close_timeout: std::time::Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Probe::default(), config);

    // TCP closed without a close frame: 1006 from the remote side.
    let client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 1);
    drop(client);
    assert_eq!(
        close_info(&mut server, ch),
        CloseInfo {
            code: 1006,
            reason: String::new(),
            was_clean: false,
            initiator: CloseInitiator::Remote
        }
    );

    // Dropped with unread data (a reset, on Linux): 1006 as well.
    let mut client = connect(&mut server, "/");
    let ch = nth_open(&mut server, 2);
    send_text(&mut server, &mut client, "unread echo");
    pump_until(&mut server, "the echo to reach the client socket", |s| {
        s.handler().texts == 1 && s.with_context(|_, ctx| ctx.buffered_amount(ch) == 0)
    });
    drop(client);
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.was_clean, info.initiator),
        (1006, false, CloseInitiator::Remote)
    );

    // Our close is never answered: after close_timeout, 1006 and an error.
    let mut raw = Raw::ws(&mut server, "/");
    let ch = nth_open(&mut server, 3);
    server.with_context(|_, ctx| ctx.close(ch, 4000, "go away")).unwrap();
    assert_eq!(raw.frame(&mut server).close_code(), (4000, "go away".to_owned()));
    let info = close_info(&mut server, ch);
    assert_eq!(
        (info.code, info.was_clean, info.initiator),
        (1006, false, CloseInitiator::Local)
    );
    assert!(
        server
            .handler()
            .errors
            .iter()
            .any(|(c, e)| *c == ch && e.contains("closing handshake")),
        "{:?}",
        server.handler().errors
    );
    assert_eq!(raw.read_to_eof(&mut server), b"");
}

/// `on_ws_close` can still read the channel's handshake details (to log the
/// peer or clean up per-path state) even though sends to it already fail.
#[test]
fn close_callback_still_sees_channel_info() {
    #[derive(Default)]
    struct Logger {
        seen: Vec<(String, bool)>,
    }
    impl HvWebServer for Logger {
        fn on_ws_close(&mut self, ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
            let path = ctx.info(ch).map(|i| i.path().to_owned()).unwrap_or_default();
            self.seen.push((path, ctx.is_open(ch)));
        }
    }
    let mut s = util::server(Logger::default());
    let mut c = connect(&mut s, "/room/7?x=1");
    close(&mut s, &mut c, 1000, "");
    pump_until(&mut s, "the close callback", |s| !s.handler().seen.is_empty());
    assert_eq!(s.handler().seen, [("/room/7".to_owned(), false)]);
}

/// A server may close with the registered codes a client may not use, such
/// as 1008 (policy violation) after a failed auth, as Aussom-Server does.
#[test]
fn server_closes_with_policy_violation() {
    let mut s = util::server(Probe::default());
    let mut client = connect(&mut s, "/secure");
    let ch = nth_open(&mut s, 1);
    s.with_context(|_, ctx| ctx.close(ch, 1008, "missing x-api-key"))
        .unwrap();
    assert_eq!(recv_close(&mut s, &mut client), (1008, "missing x-api-key".to_owned()));
}
