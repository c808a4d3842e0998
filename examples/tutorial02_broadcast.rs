//! Tutorial chapter 2: several clients, broadcasting, HTTP on the same port,
//! and closing gracefully from either side.
//!
//! ```text
//! cargo run --example tutorial02_broadcast -- --selftest    # exit 0 if everything the chapter shows happened
//! cargo run --example tutorial02_broadcast -- --port 8080   # only the server
//! ```
//!
//! The server ticks on a background thread with a stop flag, as in HV-06's
//! "Server Lifecycle"; alice and bob are pumped on the main thread; plain
//! HTTP requests (`GET /ping`, `GET /clients`) go to the same port while
//! they are connected. Walkthrough: `tutorials/02-broadcast-http-close.md`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, CloseInfo, CloseInitiator, Context, HttpResponse, HvWebServer, HvWebSocketClient, Routes,
    Server, WebSocketClient,
};

// --- the server ---------------------------------------------------------------

#[derive(Default)]
struct ChatServer {
    clients: HashMap<Channel, String>,
    next_id: u32,
    /// (nickname, code, who started the close), for the selftest.
    closes: Vec<(String, u16, CloseInitiator)>,
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        // HTTP routes share the port with the WebSocket endpoint. Their
        // handlers get the application, so they can read the channel table.
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
        // broadcast_text encodes the frame once and queues it for every open
        // channel but the one given: here, everyone but the newcomer.
        ctx.broadcast_text(&format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_default();
        ctx.send_text(channel, &format!("echo: {msg}"));
        ctx.broadcast_text(&format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = self.clients.remove(&channel).unwrap_or_default();
        // The closing channel no longer takes sends, so `None` is fine.
        ctx.broadcast_text(&format!("{nickname} left"), None);
        self.closes.push((nickname, close.code, close.initiator));
    }
}

/// HV-06's `with_ws_server`: the server runs on its own thread, ticking
/// every 10 ms until `stop` is set; then `stop()` closes every channel with
/// 1001 and the thread returns the application.
fn spawn_server(stop: Arc<AtomicBool>) -> Result<(u16, thread::JoinHandle<ChatServer>), String> {
    let (started_tx, started) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut server = Server::new(ChatServer::default());
        let up = server
            .init_addr(([127, 0, 0, 1], 0).into())
            .and_then(|()| server.start());
        if let Err(e) = up {
            let _ = started_tx.send(Err(e.to_string()));
            return ChatServer::default();
        }
        let _ = started_tx.send(Ok(server.local_addr().map_or(0, |a| a.port())));
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = server.tick() {
                eprintln!("tick failed: {e}");
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = server.stop(); // graceful: 1001 to everyone still connected
        std::mem::take(server.handler_mut())
    });
    let port = started
        .recv_timeout(Duration::from_secs(5))
        .map_err(|e| format!("server did not start: {e}"))??;
    Ok((port, thread))
}

// --- the clients --------------------------------------------------------------

#[derive(Default)]
struct ChatClient {
    received: Vec<String>,
    close: Option<(u16, String, bool)>,
}

impl HvWebSocketClient for ChatClient {
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.received.push(msg.to_owned());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some((close.code, close.reason.clone(), close.was_clean));
    }
}

type Client = WebSocketClient<ChatClient>;

/// Pumps both clients until `done` holds (5 s at most).
fn wait(
    alice: &mut Client,
    bob: &mut Client,
    what: &str,
    done: impl Fn(&Client, &Client) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(alice, bob) {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for {what}; alice has {:?}, bob has {:?}",
                alice.handler().received,
                bob.handler().received
            ));
        }
        alice.process_event_que_timeout(Duration::from_millis(5));
        bob.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

fn has(c: &Client, msg: &str) -> bool {
    c.handler().received.iter().any(|m| m == msg)
}

/// A blocking `GET`; returns the response body.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (_, body) = resp.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    Ok(body.to_owned())
}

fn selftest() -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (port, server) = spawn_server(stop.clone())?;
    let url = format!("ws://127.0.0.1:{port}/chat");
    let e = |e: hvws::ClientError| e.to_string();

    let mut alice = Client::new(ChatClient::default());
    let mut bob = Client::new(ChatClient::default());
    alice.init(&url).map_err(e)?;
    wait(&mut alice, &mut bob, "alice's welcome", |a, _| has(a, "welcome user_1"))?;
    alice.send("hello server!");
    wait(&mut alice, &mut bob, "alice's echo", |a, _| {
        has(a, "echo: hello server!")
    })?;

    // A second client: alice hears that bob joined.
    bob.init(&url).map_err(e)?;
    wait(&mut alice, &mut bob, "bob's welcome and join", |a, b| {
        has(b, "welcome user_2") && has(a, "user_2 joined")
    })?;

    // Broadcasting: bob gets the echo, alice the broadcast.
    bob.send("hi everyone!");
    wait(&mut alice, &mut bob, "the broadcast", |a, b| {
        has(b, "echo: hi everyone!") && has(a, "user_2: hi everyone!")
    })?;

    // HTTP alongside: same port, while both are connected.
    let clients = http_get(port, "/clients")?;
    let ping = http_get(port, "/ping")?;
    println!("GET /clients -> {clients}, GET /ping -> {ping}");
    if clients != "2" || ping != "pong" {
        return Err(format!("HTTP answered {clients:?} and {ping:?}"));
    }

    // Graceful close from the client: a close frame, answered by the server.
    alice.close();
    wait(&mut alice, &mut bob, "alice's close and bob's notice", |a, b| {
        !a.is_connected() && has(b, "user_1 left")
    })?;
    if http_get(port, "/clients")? != "1" {
        return Err("the channel table still lists alice".into());
    }

    // Graceful close from the server: stop() sends 1001 to everyone left.
    stop.store(true, Ordering::Relaxed);
    wait(&mut alice, &mut bob, "bob's close by the server", |_, b| {
        !b.is_connected()
    })?;
    let app = server.join().map_err(|_| "server thread panicked")?;

    println!(
        "alice received {:?}, closed {:?}",
        alice.handler().received,
        alice.handler().close
    );
    println!(
        "bob received {:?}, closed {:?}",
        bob.handler().received,
        bob.handler().close
    );
    println!("server saw closes {:?}", app.closes);
    let want_alice = [
        "welcome user_1",
        "echo: hello server!",
        "user_2 joined",
        "user_2: hi everyone!",
    ];
    if alice.handler().received != want_alice {
        return Err(format!("alice received {:?}", alice.handler().received));
    }
    if alice.handler().close != Some((1000, String::new(), true)) {
        return Err(format!("alice's close: {:?}", alice.handler().close));
    }
    if bob.handler().close != Some((1001, "server shutting down".into(), true)) {
        return Err(format!("bob's close: {:?}", bob.handler().close));
    }
    let want_server = [
        ("user_1".to_owned(), 1000, CloseInitiator::Remote),
        ("user_2".to_owned(), 1001, CloseInitiator::Local),
    ];
    if app.closes != want_server {
        return Err(format!("server saw closes {:?}", app.closes));
    }
    Ok(())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(ChatServer::default());
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let port = server.local_addr().map_or(port, |a| a.port());
    println!("chat on ws://127.0.0.1:{port}/chat, http://127.0.0.1:{port}/clients; Ctrl-C to stop");
    while server.is_running() {
        server
            .tick_timeout(Duration::from_millis(100))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("tutorial02: OK")),
        ["--port", port] => port.parse().map_err(|e| format!("--port: {e}")).and_then(serve),
        _ => Err("usage: tutorial02_broadcast --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial02: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
