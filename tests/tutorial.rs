//! The HV-06 tutorial as written: the chat server ticking on a background
//! thread with a stop flag (§7.6.6.9), alice and bob pumping
//! `process_event_que()` on the test thread, HTTP alongside.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, CloseInfo, Context, HttpResponse, HvWebServer, HvWebSocketClient, Opcode, Routes, Server,
    WebSocketClient,
};

#[derive(Default)]
struct ChatServer {
    clients: HashMap<Channel, String>,
    next_id: u32,
    closes: Vec<u16>,
}

impl ChatServer {
    fn broadcast(&self, ctx: &mut Context<'_>, msg: &str, exclude: Option<Channel>) {
        for &ch in self.clients.keys().filter(|c| Some(**c) != exclude) {
            ctx.send(ch, msg.as_bytes(), Opcode::Text, true)
                .expect("a whole text message is a valid frame");
        }
    }
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/clients", |s: &mut ChatServer, _, _| {
                HttpResponse::text(s.clients.len().to_string())
            });
    }
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        assert_eq!(url, "/chat");
        self.next_id += 1;
        let nickname = format!("user_{}", self.next_id);
        ctx.send(channel, format!("welcome {nickname}").as_bytes(), Opcode::Text, true)
            .expect("a whole text message is a valid frame");
        self.broadcast(ctx, &format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }
    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        self.closes.push(close.code);
        let nickname = self.clients.remove(&channel).unwrap_or_else(|| "unknown".into());
        self.broadcast(ctx, &format!("{nickname} left"), None);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        ctx.send(channel, format!("echo: {msg}").as_bytes(), Opcode::Text, true)
            .expect("a whole text message is a valid frame");
        self.broadcast(ctx, &format!("{nickname}: {msg}"), Some(channel));
    }
}

#[derive(Default)]
struct ChatClient {
    received: Vec<String>,
    opened: bool,
    closed: bool,
}

impl HvWebSocketClient for ChatClient {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opened = true;
    }
    fn on_close(&mut self, _close: &CloseInfo) {
        self.closed = true;
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.received.push(msg.to_owned());
    }
}

type Client = WebSocketClient<ChatClient>;

#[track_caller]
fn wait_for_messages(clients: &mut [&mut Client], who: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients[who].handler().received.len() < n {
        assert!(
            Instant::now() < deadline,
            "client {who} has {:?}, wanted {n}",
            clients[who].handler().received
        );
        for c in clients.iter_mut() {
            c.process_event_que();
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn hv06_chat_end_to_end() {
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    let stop_flag = stop.clone();
    let server_thread = thread::spawn(move || {
        let mut server = Server::new(ChatServer::default());
        server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        server.start().unwrap();
        started_tx.send(server.local_addr().unwrap().port()).unwrap();
        while !stop_flag.load(Ordering::Relaxed) {
            server.tick().unwrap();
            thread::sleep(Duration::from_millis(10));
        }
        server.stop().unwrap();
        server.handler().closes.clone()
    });
    let port = started.recv_timeout(Duration::from_secs(5)).unwrap();
    let base_url = format!("ws://127.0.0.1:{port}");

    let mut alice = Client::new(ChatClient::default());
    let mut bob = Client::new(ChatClient::default());
    alice.init(&format!("{base_url}/chat")).unwrap();
    wait_for_messages(&mut [&mut alice, &mut bob], 0, 1);
    assert_eq!(alice.handler().received, ["welcome user_1"]);

    assert!(alice.send("hello server!").is_queued());
    wait_for_messages(&mut [&mut alice, &mut bob], 0, 2);

    bob.init(&format!("{base_url}/chat")).unwrap();
    wait_for_messages(&mut [&mut alice, &mut bob], 1, 1);
    wait_for_messages(&mut [&mut alice, &mut bob], 0, 3);

    assert!(bob.send("hi everyone!").is_queued());
    wait_for_messages(&mut [&mut alice, &mut bob], 1, 2);
    wait_for_messages(&mut [&mut alice, &mut bob], 0, 4);

    assert_eq!(http_get(port, "/clients"), "2");
    assert_eq!(http_get(port, "/ping"), "pong");

    alice.close();
    bob.close();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alice.is_connected() || bob.is_connected() {
        assert!(Instant::now() < deadline, "graceful close did not finish");
        alice.process_event_que();
        bob.process_event_que();
        thread::sleep(Duration::from_millis(20));
    }
    assert!(alice.handler().closed && bob.handler().closed);
    assert_eq!(
        alice.handler().received,
        [
            "welcome user_1",
            "echo: hello server!",
            "user_2 joined",
            "user_2: hi everyone!"
        ]
    );
    // Bob may or may not see "user_1 left" before his own close goes out.
    assert_eq!(&bob.handler().received[..2], ["welcome user_2", "echo: hi everyone!"]);

    stop.store(true, Ordering::Relaxed);
    let closes = server_thread.join().unwrap();
    assert_eq!(closes, [1000, 1000], "the server saw both clean closes");
    assert!(http_get_fails(port), "the listener is closed after stop");
}

/// After stop the port no longer accepts.
fn http_get_fails(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}
