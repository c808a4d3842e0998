//! Tutorial chapter 1: a WebSocket server and a client (HV-06).
//!
//! ```text
//! cargo run --example tutorial01_hello -- --selftest    # server + client in one loop; exit 0 if it all happened
//! cargo run --example tutorial01_hello -- --port 8080   # only the server; try chat_client or a browser
//! ```
//!
//! The server keeps a channel table (`HashMap<Channel, String>`: who is who)
//! and implements the three HV-06 callbacks, `on_ws_open`, `on_ws_message`
//! and `on_ws_close`. The client implements `on_open`, `on_message` and
//! `on_close`, and is pumped with `process_event_que()`. In `--selftest`
//! both live in one thread and one loop: nothing in hvws runs unless you
//! pump it. Walkthrough: `tutorials/01-hello-websocket.md`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, CloseInfo, Context, HvWebServer, HvWebSocketClient, Opcode, Routes, Server, WebSocketClient,
};

// --- the server ---------------------------------------------------------------

/// The application: the channel table, and what the selftest checks.
#[derive(Default)]
struct ChatServer {
    /// Every open channel and its nickname.
    clients: HashMap<Channel, String>,
    next_id: u32,
    /// (nickname, close code) of every channel that closed.
    closed: Vec<(String, u16)>,
}

impl ChatServer {
    /// HV-06's `broadcast`: one `send` per channel but `exclude`.
    fn broadcast(&self, ctx: &mut Context<'_>, msg: &str, exclude: Option<Channel>) {
        for &ch in self.clients.keys().filter(|&&ch| Some(ch) != exclude) {
            // A whole text message is always a valid frame; a channel that is
            // closing drops it (`SendStatus::Closed`): nothing to do then.
            ctx.send(ch, msg.as_bytes(), Opcode::Text, true)
                .expect("a whole text message is a valid frame");
        }
    }
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        // Upgrades are accepted on /chat only; other paths get 404.
        routes.websocket("/chat");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        self.next_id += 1;
        let nickname = format!("user_{}", self.next_id);
        println!("server: {channel} opened {url} as {nickname}");
        // send(channel, msg, opcode, fin): a whole text message.
        ctx.send(channel, format!("welcome {nickname}").as_bytes(), Opcode::Text, true)
            .expect("a whole text message is a valid frame");
        self.broadcast(ctx, &format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        println!("server: {nickname} says {msg:?}");
        ctx.send_text(channel, &format!("echo: {msg}"));
        self.broadcast(ctx, &format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = self.clients.remove(&channel).unwrap_or_else(|| "unknown".into());
        println!("server: {nickname} left ({} {:?})", close.code, close.reason);
        self.broadcast(ctx, &format!("{nickname} left"), None);
        self.closed.push((nickname, close.code));
    }
}

// --- the client ---------------------------------------------------------------

/// HV-06's `ChatClient`: a name and the messages received.
struct ChatClient {
    name: &'static str,
    received: Vec<String>,
    close_code: Option<u16>,
}

impl HvWebSocketClient for ChatClient {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        println!("[{}] connected", self.name);
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        println!("[{}] received {msg:?}", self.name);
        self.received.push(msg.to_owned());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        println!(
            "[{}] disconnected ({} {:?}, clean: {})",
            self.name, close.code, close.reason, close.was_clean
        );
        self.close_code = Some(close.code);
    }
}

// --- running them -------------------------------------------------------------

/// Ticks the server and pumps the client until `done` holds (5 s at most).
fn pump(
    server: &mut Server<ChatServer>,
    client: &mut WebSocketClient<ChatClient>,
    what: &str,
    done: impl Fn(&Server<ChatServer>, &WebSocketClient<ChatClient>) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(server, client) {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        server.tick().map_err(|e| e.to_string())?; // never blocks
        client.process_event_que(); // never blocks either
        std::thread::sleep(Duration::from_millis(1)); // a real program does its frame here
    }
    Ok(())
}

fn selftest() -> Result<(), String> {
    let mut server = Server::new(ChatServer::default());
    server
        .init_addr(([127, 0, 0, 1], 0).into())
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let url = format!("ws://{}/chat", server.local_addr().ok_or("no address")?);

    let mut alice = WebSocketClient::new(ChatClient {
        name: "alice",
        received: Vec::new(),
        close_code: None,
    });
    alice.init(&url).map_err(|e| e.to_string())?;
    pump(&mut server, &mut alice, "the welcome", |_, c| {
        !c.handler().received.is_empty()
    })?;

    alice.send("hello server!");
    pump(&mut server, &mut alice, "the echo", |_, c| {
        c.handler().received.len() >= 2
    })?;
    if server.handler().clients.len() != 1 {
        return Err(format!("channel table: {:?}", server.handler().clients));
    }

    alice.close();
    pump(&mut server, &mut alice, "the close", |s, c| {
        !c.is_connected() && s.handler().clients.is_empty()
    })?;
    server.stop().map_err(|e| e.to_string())?;

    let got = &alice.handler().received;
    if got != &["welcome user_1", "echo: hello server!"] {
        return Err(format!("alice received {got:?}"));
    }
    if alice.handler().close_code != Some(1000) {
        return Err(format!("alice closed with {:?}", alice.handler().close_code));
    }
    if server.handler().closed != [("user_1".to_owned(), 1000)] {
        return Err(format!("server saw closes {:?}", server.handler().closed));
    }
    Ok(())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(ChatServer::default());
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let port = server.local_addr().map_or(port, |a| a.port());
    println!("chat on ws://127.0.0.1:{port}/chat; Ctrl-C to stop");
    while server.is_running() {
        server.tick().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(10)); // the game's frame
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("tutorial01: OK")),
        ["--port", port] => match port.parse() {
            Ok(port) => serve(port),
            Err(e) => Err(format!("--port: {e}")),
        },
        _ => Err("usage: tutorial01_hello --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial01: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
