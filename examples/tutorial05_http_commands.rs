//! Tutorial chapter 5: commands over HTTP, updates over WebSocket (ARO), and
//! a client that reconnects with exponential backoff.
//!
//! ```text
//! cargo run --example tutorial05_http_commands -- --selftest        # exit 0 if the whole story happened
//! cargo run --example tutorial05_http_commands -- --port 8080       # the server
//! cargo run --example tutorial05_http_commands -- --listen ws://127.0.0.1:8080/ws   # a client; restart the server and watch
//! curl -d '{"message":"hello"}' http://127.0.0.1:8080/messages
//! ```
//!
//! `POST /messages` with a JSON body `{"message": "..."}` creates a message
//! `{"id":N,"message":"...","createdAt":MILLIS}`, answers 201 with it, and
//! broadcasts the same JSON to every client on `/ws`. `GET /messages` lists
//! them. The client sets `ClientConfig::reconnect`, so when the server goes
//! away it retries after 100 ms, 200 ms, 400 ms ... until it is back.
//!
//! `--selftest` posts a message, checks that the client got it as JSON,
//! stops the server, watches the client's attempts fail at growing
//! intervals, starts a new server on the same port, and checks that the
//! client reconnected and gets the next message. Walkthrough:
//! `tutorials/05-http-commands-ws-updates.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hvws::{
    Channel, ClientConfig, ClientContext, CloseInfo, Context, HttpRequest, HttpResponse, HvWebServer,
    HvWebSocketClient, Reconnect, Routes, Server, WebSocketClient,
};

// --- a little JSON (a real application would use serde_json) -----------------

/// Quotes and escapes `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a flat JSON object whose values are strings or numbers, e.g.
/// `{"message": "hi", "id": 3}`, into (key, value) pairs (numbers as text).
fn parse_flat_object(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = text.trim().chars().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    fn string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
        if chars.next() != Some('"') {
            return Err("expected a string".into());
        }
        let mut out = String::new();
        loop {
            match chars.next().ok_or("unterminated string")? {
                '"' => return Ok(out),
                '\\' => match chars.next().ok_or("unterminated escape")? {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    c => out.push(c), // \" \\ \/
                },
                c => out.push(c),
            }
        }
    }
    let mut pairs = Vec::new();
    if chars.next() != Some('{') {
        return Err("expected a JSON object".into());
    }
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        return Ok(pairs);
    }
    loop {
        skip_ws(&mut chars);
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next() != Some(':') {
            return Err("expected ':'".into());
        }
        skip_ws(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            string(&mut chars)?
        } else {
            let mut num = String::new();
            while chars.peek().is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(*c)) {
                num.extend(chars.next());
            }
            num.parse::<f64>()
                .map_err(|_| format!("value of {key:?} is not a string or number"))?;
            num
        };
        pairs.push((key, value));
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => continue,
            Some('}') => return Ok(pairs),
            _ => return Err("expected ',' or '}'".into()),
        }
    }
}

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

// --- the server ---------------------------------------------------------------

struct Message {
    id: u64,
    message: String,
    created_at: u128,
}

impl Message {
    fn to_json(&self) -> String {
        format!(
            r#"{{"id":{},"message":{},"createdAt":{}}}"#,
            self.id,
            json_string(&self.message),
            self.created_at
        )
    }
}

#[derive(Default)]
struct WebChat {
    messages: Vec<Message>,
}

impl WebChat {
    /// `POST /messages`: the command. Creates, stores, broadcasts, answers 201.
    fn post_message(&mut self, ctx: &mut Context<'_>, req: &HttpRequest) -> HttpResponse {
        let body = req.body_text().unwrap_or("");
        let text = match parse_flat_object(body) {
            Ok(pairs) => match field(&pairs, "message") {
                Some(t) if !t.is_empty() => t.to_owned(),
                _ => {
                    return HttpResponse::json_text(r#"{"error":"body needs a non-empty \"message\""}"#)
                        .with_status(400)
                }
            },
            Err(e) => return HttpResponse::json_text(format!(r#"{{"error":{}}}"#, json_string(&e))).with_status(400),
        };
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let message = Message {
            id: self.messages.len() as u64 + 1,
            message: text,
            created_at,
        };
        let json = message.to_json();
        // The update: every WebSocket client gets the object as JSON.
        let delivered = ctx.broadcast_text(&json, None);
        println!("server: POST /messages -> {json} (to {delivered} clients)");
        self.messages.push(message);
        HttpResponse::json_text(json).with_status(201)
    }
}

impl HvWebServer for WebChat {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .post("/messages", WebChat::post_message)
            .get("/messages", |chat: &mut WebChat, _, _| {
                let all: Vec<String> = chat.messages.iter().map(Message::to_json).collect();
                HttpResponse::json_text(format!("[{}]", all.join(",")))
            })
            .websocket("/ws");
    }
    // ARO's Connect / Disconnect events: a connection id, path, remote address.
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, url: &str) {
        let peer = ctx.info(ch).map(|i| i.peer_addr().to_string()).unwrap_or_default();
        println!("server: connect id={ch} path={url} remoteAddress={peer}");
    }
    fn on_ws_message(&mut self, _ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        println!("server: message id={ch}: {msg} (commands go over HTTP)");
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        println!("server: disconnect id={ch} ({} {:?})", close.code, close.reason);
    }
}

/// Runs a server on `addr` on a thread until `stop` is set; returns its port.
fn spawn_server(addr: SocketAddr, stop: Arc<AtomicBool>) -> Result<(u16, thread::JoinHandle<()>), String> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut server = Server::new(WebChat::default());
        if let Err(e) = server.init_addr(addr).and_then(|()| server.start()) {
            return drop(tx.send(Err(e.to_string())));
        }
        let _ = tx.send(Ok(server.local_addr().map_or(0, |a| a.port())));
        while !stop.load(Ordering::Relaxed) {
            if server.tick_timeout(Duration::from_millis(10)).is_err() {
                break;
            }
        }
        let _ = server.stop();
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())??;
    Ok((port, thread))
}

// --- the client ---------------------------------------------------------------

#[derive(Default)]
struct Listener {
    opens: usize,
    /// Every update, as JSON text.
    updates: Vec<String>,
    /// When each connection ended, and its code.
    closes: Vec<(Instant, u16)>,
    /// Each planned reconnect: its number and its delay.
    retries: Vec<(u32, Duration)>,
    /// Failed attempts (connection refused while the server is down).
    errors: usize,
    verbose: bool,
}

impl HvWebSocketClient for Listener {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opens += 1;
        println!("client: connected ({} time(s))", self.opens);
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        if self.verbose {
            println!("client: update {msg}");
        }
        self.updates.push(msg.to_owned());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        println!("client: closed ({} {:?})", close.code, close.reason);
        self.closes.push((Instant::now(), close.code));
    }
    fn on_error(&mut self, error: &hvws::ClientError) {
        println!("client: {error}");
        self.errors += 1;
    }
    fn on_reconnecting(&mut self, attempt: u32, delay: Duration) {
        println!("client: reconnecting in {delay:?} (attempt {attempt})");
        self.retries.push((attempt, delay));
    }
}

/// Reconnects after 100 ms, 200 ms, 400 ms ... at most 2 s apart, forever
/// (but not after a close the server chose for it, 4000-4999 or 1008).
fn reconnecting_client() -> WebSocketClient<Listener> {
    let config = ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            factor: 2.0,
            max_attempts: None,
            ..Reconnect::default()
        }),
        ..ClientConfig::default()
    };
    WebSocketClient::with_config(Listener::default(), config)
}

// --- the selftest -------------------------------------------------------------

/// A blocking `POST /messages`; returns (status, body).
fn post(port: u16, body: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let status = resp.get(9..12).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn pump_until(
    client: &mut WebSocketClient<Listener>,
    secs: u64,
    what: &str,
    done: impl Fn(&Listener) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(client.handler()) {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        client.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

fn selftest() -> Result<(), String> {
    let stop_a = Arc::new(AtomicBool::new(false));
    let (port, server_a) = spawn_server(([127, 0, 0, 1], 0).into(), stop_a.clone())?;
    let mut client = reconnecting_client();
    client
        .init(&format!("ws://127.0.0.1:{port}/ws"))
        .map_err(|e| e.to_string())?;
    pump_until(&mut client, 5, "the first connection", |l| l.opens == 1)?;

    // The command goes over HTTP; the update arrives over the WebSocket.
    let (status, created) = post(port, r#"{"message": "hello \"world\" from HTTP"}"#)?;
    if status != 201 {
        return Err(format!("POST answered {status} {created}"));
    }
    pump_until(&mut client, 5, "the update", |l| !l.updates.is_empty())?;
    let update = parse_flat_object(&client.handler().updates[0])?;
    println!("client got {update:?}");
    if client.handler().updates[0] != created || field(&update, "message") != Some("hello \"world\" from HTTP") {
        return Err(format!(
            "update {:?} is not the created {created}",
            client.handler().updates
        ));
    }
    let (status, _) = post(port, "not json")?;
    if status != 400 {
        return Err(format!("a bad body got {status}, wanted 400"));
    }

    // The server restarts: the client sees 1001, then retries with backoff.
    // (The client is pumped while the server stops, so it answers the 1001
    // close and the server's stop() finishes cleanly.)
    stop_a.store(true, Ordering::Relaxed);
    pump_until(&mut client, 5, "the server's close", |l| l.closes.len() == 1)?;
    server_a.join().map_err(|_| "server A panicked")?;
    pump_until(&mut client, 5, "three failed reconnects", |l| l.errors >= 3)?;
    let stop_b = Arc::new(AtomicBool::new(false));
    let (_, server_b) = spawn_server(([127, 0, 0, 1], port).into(), stop_b.clone())?;
    pump_until(&mut client, 10, "the reconnection", |l| l.opens == 2)?;
    let (status, created) = post(port, r#"{"message": "after the restart"}"#)?;
    pump_until(&mut client, 5, "the second update", |l| l.updates.len() == 2)?;
    client.close();
    pump_until(&mut client, 5, "the final close", |l| l.closes.len() == 2)?;
    stop_b.store(true, Ordering::Relaxed);
    server_b.join().map_err(|_| "server B panicked")?;

    let l = client.handler();
    if status != 201 || l.updates[1] != created {
        return Err(format!("after the restart: {status}, {:?}", l.updates));
    }
    // Two closes (1001 from the stopping server, our own 1000); between
    // them, failed attempts reported as errors and announced retries.
    let codes: Vec<u16> = l.closes.iter().map(|c| c.1).collect();
    let delays: Vec<Duration> = l.retries.iter().map(|r| r.1).collect();
    println!("client closes {codes:?}; retries after {delays:?}");
    if codes != [1001, 1000] {
        return Err(format!("close codes {codes:?}: wanted [1001, 1000]"));
    }
    // Exponential: 100, 200, 400 ms..., numbered 1, 2, 3...
    let numbered = l.retries.iter().enumerate().all(|(i, r)| r.0 == i as u32 + 1);
    let doubling = delays
        .windows(2)
        .all(|w| w[1] == (w[0] * 2).min(Duration::from_secs(2)));
    if !numbered || !doubling || delays.len() < 3 || delays[0] != Duration::from_millis(100) {
        return Err(format!("reconnects are not 100, 200, 400 ms...: {:?}", l.retries));
    }
    Ok(())
}

fn listen(url: &str) -> Result<(), String> {
    let mut client = reconnecting_client();
    client.handler_mut().verbose = true;
    client.init(url).map_err(|e| e.to_string())?;
    loop {
        client.process_event_que_timeout(Duration::from_millis(100));
    }
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(WebChat::default());
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let port = server.local_addr().map_or(port, |a| a.port());
    println!("POST http://127.0.0.1:{port}/messages, updates on ws://127.0.0.1:{port}/ws");
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
        ["--selftest"] => selftest().map(|()| println!("tutorial05: OK")),
        ["--port", port] => port.parse().map_err(|e| format!("--port: {e}")).and_then(serve),
        ["--listen", url] => listen(url),
        _ => Err("usage: tutorial05_http_commands --selftest | --port N | --listen URL".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial05: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
