//! The HV-06 tutorial's chat server replayed with two clients and HTTP on
//! the same port; binary messages of every length class echoed unchanged.

use std::collections::HashMap;

use hvws::{Channel, CloseInfo, CloseInitiator, Context, HttpResponse, HvWebServer, Opcode, Routes};
use tungstenite::Message;

use crate::common::{http_get, Probe};
use crate::util::{
    self, close, connect, masked_frame, recv_binary, recv_close, recv_text, send, send_text, until_closed, Raw,
};

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
            msg.as_bytes(),
            Opcode::Text,
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
        ctx.send_text(channel, &format!("welcome {nickname}"));
        self.broadcast(ctx, &format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        ctx.send_text(channel, &format!("echo: {msg}"));
        self.broadcast(ctx, &format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = self.clients.remove(&channel).unwrap_or_else(|| "unknown".into());
        self.broadcast(ctx, &format!("{nickname} left"), None);
        self.closes.push((nickname, close.clone()));
    }
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
