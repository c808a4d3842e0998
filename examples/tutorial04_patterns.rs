//! Tutorial chapter 4: per-connection patterns (Aussom-Server's manual), one
//! route each, on one server.
//!
//! ```text
//! cargo run --example tutorial04_patterns -- --selftest                       # exit 0 if every pattern behaved
//! cargo run --example tutorial04_patterns -- --port 8080 [--session-secs 60] [--api-key expected-secret]
//! ```
//!
//! | route | pattern |
//! | --- | --- |
//! | `/echo` | every text comes back as `echo: TEXT` |
//! | `/ticker` | `ready`, then `count:N` per message; `bye` gets `final:N` and a close (1000, `done`); a close by the client records `final:N (CODE REASON)` at `GET /ticker/summaries` |
//! | `/room` | chat room: `[*] someone joined`, `name:alice` names you, messages go to everyone as `alice: TEXT`, `[*] alice left` |
//! | `/bridge` | binary in, binary `ack:N` out (N = bytes received) |
//! | `/timeboxed` | `you said: TEXT` until the session is `--session-secs` old, then `session expired` and close 4001 `session timeout` |
//! | `/secure` | auth by `x-api-key` header or `?token=`; accepted, then closed with 1008 and a reason if the key is missing or wrong |
//! | `/private` | the same check in the handshake: a bad key never gets a WebSocket (HTTP 401) |
//!
//! Aussom gives each connection an object; in hvws the application keeps a
//! `HashMap<Channel, Session>` and dispatches on the session. Callbacks run
//! on the ticking thread one at a time, so shared state (the room) needs no
//! lock. `--selftest` runs the server on a thread with `--session-secs 1`
//! (unless given) and drives every route with hvws clients. Walkthrough:
//! `tutorials/04-connection-patterns.md`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientConfig, ClientContext, ClientError, CloseInfo, CloseInitiator, Context, Handshake, HttpRequest,
    HttpResponse, HvWebServer, HvWebSocketClient, KeepHeaders, Opcode, Routes, SendStatus, Server, ServerConfig,
    WebSocketClient,
};

// --- the server ---------------------------------------------------------------

/// What the server remembers about one connection: Aussom's per-connection
/// "ctx" object.
enum Session {
    Echo,
    Ticker { count: u32 },
    Room { name: String },
    Bridge,
    Timeboxed { started: Instant },
    Secure,
}

/// Close code for a failed auth: RFC 6455's 1008 (policy violation), as
/// Aussom uses.
const AUTH_FAILED: u16 = 1008;

struct Patterns {
    sessions: HashMap<Channel, Session>,
    session_limit: Duration,
    api_key: String,
    /// `final:N (CODE REASON)` of every ticker the client closed.
    summaries: Vec<String>,
}

impl Patterns {
    /// Header first (non-browser clients), then the query string (browsers
    /// cannot set headers on `new WebSocket(...)`).
    fn authorize(&self, header: Option<&str>, query: Option<String>) -> Result<(), &'static str> {
        match header.map(str::to_owned).or(query) {
            None => Err("missing x-api-key"),
            Some(key) if key != self.api_key => Err("bad x-api-key"),
            Some(_) => Ok(()),
        }
    }

    fn room(&self) -> Vec<Channel> {
        self.sessions
            .iter()
            .filter(|(_, s)| matches!(s, Session::Room { .. }))
            .map(|(&ch, _)| ch)
            .collect()
    }

    fn tell_room(&self, ctx: &mut Context<'_>, msg: &str) {
        ctx.broadcast_to(self.room(), msg.as_bytes(), Opcode::Text)
            .expect("text is a data opcode");
    }

    /// Called by the server loop after every tick: ends the timeboxed
    /// sessions that ran out, even if their client stays silent.
    fn expire_sessions(&mut self, ctx: &mut Context<'_>) {
        for (&ch, session) in &self.sessions {
            if let Session::Timeboxed { started } = session {
                if started.elapsed() >= self.session_limit && ctx.is_open(ch) {
                    ctx.send_text(ch, "session expired");
                    ctx.close(ch, 4001, "session timeout").expect("4001 and a short reason");
                }
            }
        }
    }
}

impl HvWebServer for Patterns {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        for path in [
            "/echo",
            "/ticker",
            "/room",
            "/bridge",
            "/timeboxed",
            "/secure",
            "/private",
        ] {
            routes.websocket(path);
        }
        routes.get("/ticker/summaries", |app: &mut Patterns, _, _| {
            HttpResponse::text(app.summaries.join("\n"))
        });
    }

    /// `/private` checks the key before the upgrade: a refused client gets
    /// an HTTP 401 and never a WebSocket.
    fn on_ws_handshake(&mut self, req: &HttpRequest) -> Handshake {
        if req.path() == "/private" {
            if let Err(reason) = self.authorize(req.header("x-api-key"), req.query_param("token")) {
                return Handshake::Reject(HttpResponse::text(reason).with_status(401));
            }
        }
        Handshake::Accept
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        let Some(info) = ctx.info(ch) else { return };
        let session = match info.path() {
            "/echo" => Session::Echo,
            "/ticker" => {
                ctx.send_text(ch, "ready");
                Session::Ticker { count: 0 }
            }
            "/room" => {
                self.sessions.insert(ch, Session::Room { name: "anon".into() });
                self.tell_room(ctx, "[*] someone joined");
                return;
            }
            "/bridge" => Session::Bridge,
            "/timeboxed" => Session::Timeboxed {
                started: Instant::now(),
            },
            "/secure" => {
                // Aussom's way: accept, look at the headers, close if wrong.
                if let Err(reason) = self.authorize(info.header("x-api-key"), info.query_param("token")) {
                    ctx.close(ch, AUTH_FAILED, reason).expect("1008 and a short reason");
                    return;
                }
                ctx.send_text(ch, "authorized");
                Session::Secure
            }
            _ => {
                // /private: on_ws_handshake already checked the key.
                ctx.send_text(ch, "authorized");
                Session::Secure
            }
        };
        self.sessions.insert(ch, session);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, text: &str) {
        let limit = self.session_limit;
        let Some(session) = self.sessions.get_mut(&ch) else {
            return;
        };
        match session {
            Session::Echo => {
                ctx.send_text(ch, &format!("echo: {text}"));
            }
            Session::Ticker { count } if text == "bye" => {
                // Server-initiated close: the summary can still go out first.
                ctx.send_text(ch, &format!("final:{count}"));
                ctx.close(ch, 1000, "done").expect("1000 and a short reason");
            }
            Session::Ticker { count } => {
                *count += 1;
                ctx.send_text(ch, &format!("count:{count}"));
            }
            Session::Room { name } => {
                if name == "anon" {
                    if let Some(new_name) = text.strip_prefix("name:") {
                        *name = new_name.to_owned();
                        let msg = format!("[*] {new_name} joined");
                        self.tell_room(ctx, &msg);
                        return;
                    }
                }
                let msg = format!("{name}: {text}");
                self.tell_room(ctx, &msg);
            }
            Session::Bridge => {
                ctx.send_text(ch, "the bridge takes binary messages");
            }
            Session::Timeboxed { started } => {
                if started.elapsed() >= limit {
                    ctx.send_text(ch, "session expired");
                    ctx.close(ch, 4001, "session timeout").expect("4001 and a short reason");
                } else {
                    ctx.send_text(ch, &format!("you said: {text}"));
                }
            }
            Session::Secure => {
                ctx.send_text(ch, &format!("secure echo: {text}"));
            }
        }
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        if let Some(Session::Bridge) = self.sessions.get(&ch) {
            ctx.send_binary(ch, format!("ack:{}", data.len()).as_bytes());
        }
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        match self.sessions.remove(&ch) {
            // The client closed: the channel takes no more sends, so the
            // summary is kept (and served over HTTP) instead. After `bye`
            // the server closed, and `final:N` already went out.
            Some(Session::Ticker { count }) if close.initiator == CloseInitiator::Remote => {
                self.summaries
                    .push(format!("final:{count} ({} {})", close.code, close.reason));
            }
            Some(Session::Room { name }) => self.tell_room(ctx, &format!("[*] {name} left")),
            _ => {}
        }
    }
}

/// The server loop: tick, then the per-tick work (session expiry).
fn run(server: &mut Server<Patterns>, stop: &AtomicBool) -> Result<(), String> {
    while server.is_running() && !stop.load(Ordering::Relaxed) {
        server
            .tick_timeout(Duration::from_millis(10))
            .map_err(|e| e.to_string())?;
        server.with_context(|app, ctx| app.expire_sessions(ctx));
    }
    server.stop().map_err(|e| e.to_string())
}

fn new_server(addr: SocketAddr, session_limit: Duration, api_key: String) -> Result<Server<Patterns>, String> {
    let app = Patterns {
        sessions: HashMap::new(),
        session_limit,
        api_key,
        summaries: Vec::new(),
    };
    // `/secure` reads its key after the open: the channel keeps that
    // header (by default it keeps only `Origin` and the proxy's
    // client-address headers).
    let config = ServerConfig {
        keep_headers: KeepHeaders::only(["x-api-key"]),
        ..ServerConfig::default()
    };
    let mut server = Server::with_config(app, config);
    server.init_addr(addr).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    Ok(server)
}

// --- the selftest ---------------------------------------------------------------

/// A client that records everything.
#[derive(Default)]
struct Probe {
    opened: bool,
    texts: Vec<String>,
    binaries: Vec<Vec<u8>>,
    error: Option<String>,
    close: Option<(u16, String)>,
}

impl HvWebSocketClient for Probe {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opened = true;
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.texts.push(msg.to_owned());
    }
    fn on_binary(&mut self, _ctx: &mut ClientContext<'_>, data: &[u8]) {
        self.binaries.push(data.to_vec());
    }
    fn on_error(&mut self, error: &ClientError) {
        self.error = Some(error.to_string());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some((close.code, close.reason.clone()));
    }
}

type Client = WebSocketClient<Probe>;

struct Tester {
    base: String,
    port: u16,
}

impl Tester {
    fn connect(&self, path: &str, headers: &[(&str, &str)]) -> Result<Client, String> {
        let config = ClientConfig {
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..ClientConfig::default()
        };
        let mut c = Client::with_config(Probe::default(), config);
        c.init(&format!("{}{path}", self.base)).map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn http_get(&self, path: &str) -> Result<String, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
        Ok(resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default())
    }
}

/// Pumps `clients` until `done` holds (`secs` at most).
fn wait(
    clients: &mut [&mut Client],
    secs: u64,
    what: &str,
    done: impl Fn(&[&mut Client]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(clients) {
        if Instant::now() > deadline {
            let state: Vec<_> = clients
                .iter()
                .map(|c| (&c.handler().texts, &c.handler().close, &c.handler().error))
                .collect();
            return Err(format!("timed out waiting for {what}: {state:?}"));
        }
        for c in clients.iter_mut() {
            c.process_event_que_timeout(Duration::from_millis(2));
        }
    }
    Ok(())
}

fn texts(c: &Client) -> Vec<&str> {
    c.handler().texts.iter().map(String::as_str).collect()
}

fn closed(c: &Client) -> bool {
    c.handler().close.is_some()
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        println!("ok   {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, wanted {want:?}"))
    }
}

fn send(c: &mut Client, text: &str) -> Result<(), String> {
    match c.send(text) {
        SendStatus::Queued => Ok(()),
        other => Err(format!("sending {text:?}: {other:?}")),
    }
}

fn check_all(t: &Tester, key: &str, limit: Duration) -> Result<(), String> {
    // /echo
    let mut echo = t.connect("/echo", &[])?;
    wait(&mut [&mut echo], 5, "echo open", |c| c[0].handler().opened)?;
    send(&mut echo, "hello")?;
    wait(&mut [&mut echo], 5, "echo reply", |c| !c[0].handler().texts.is_empty())?;
    expect("/echo", texts(&echo), vec!["echo: hello"])?;

    // /ticker, closed by the server after `bye`
    let mut ticker = t.connect("/ticker", &[])?;
    wait(&mut [&mut ticker], 5, "ready", |c| !c[0].handler().texts.is_empty())?;
    for m in ["a", "b", "bye"] {
        send(&mut ticker, m)?;
    }
    wait(&mut [&mut ticker], 5, "ticker close", |c| closed(c[0]))?;
    expect(
        "/ticker",
        texts(&ticker),
        vec!["ready", "count:1", "count:2", "final:2"],
    )?;
    expect(
        "/ticker close",
        ticker.handler().close.clone(),
        Some((1000, "done".into())),
    )?;

    // /ticker, closed by the client with a code and reason
    let mut ticker = t.connect("/ticker", &[])?;
    wait(&mut [&mut ticker], 5, "ready", |c| !c[0].handler().texts.is_empty())?;
    send(&mut ticker, "one")?;
    wait(&mut [&mut ticker], 5, "count", |c| c[0].handler().texts.len() == 2)?;
    ticker.close_with(4000, "see you").map_err(|e| e.to_string())?;
    wait(&mut [&mut ticker], 5, "client close", |c| closed(c[0]))?;
    expect(
        "GET /ticker/summaries",
        t.http_get("/ticker/summaries")?,
        "final:1 (4000 see you)".into(),
    )?;

    // /room: two members, names, a message, a leave
    let mut alice = t.connect("/room", &[])?;
    wait(&mut [&mut alice], 5, "alice joined", |c| {
        !c[0].handler().texts.is_empty()
    })?;
    let mut bob = t.connect("/room", &[])?;
    wait(&mut [&mut alice, &mut bob], 5, "bob joined", |c| {
        c[0].handler().texts.len() == 2
    })?;
    send(&mut alice, "name:alice")?;
    wait(&mut [&mut alice, &mut bob], 5, "alice named", |c| {
        c[1].handler().texts.len() == 2
    })?;
    send(&mut bob, "name:bob")?;
    wait(&mut [&mut alice, &mut bob], 5, "bob named", |c| {
        c[0].handler().texts.len() == 4
    })?;
    send(&mut alice, "hi bob")?;
    wait(&mut [&mut alice, &mut bob], 5, "message", |c| {
        c[1].handler().texts.len() == 4
    })?;
    alice.close();
    wait(&mut [&mut alice, &mut bob], 5, "alice left", |c| {
        c[1].handler().texts.len() == 5
    })?;
    expect(
        "/room (bob's view)",
        texts(&bob),
        vec![
            "[*] someone joined",
            "[*] alice joined",
            "[*] bob joined",
            "alice: hi bob",
            "[*] alice left",
        ],
    )?;

    // /bridge
    let mut bridge = t.connect("/bridge", &[])?;
    wait(&mut [&mut bridge], 5, "bridge open", |c| c[0].handler().opened)?;
    bridge.send_binary(&[0, 1, 2, 255, 254]);
    wait(&mut [&mut bridge], 5, "ack", |c| !c[0].handler().binaries.is_empty())?;
    expect("/bridge", bridge.handler().binaries.clone(), vec![b"ack:5".to_vec()])?;

    // /timeboxed: answered, then closed by the server loop's sweep
    let opened = Instant::now();
    let mut timeboxed = t.connect("/timeboxed", &[])?;
    wait(&mut [&mut timeboxed], 5, "timeboxed open", |c| c[0].handler().opened)?;
    send(&mut timeboxed, "x")?;
    let secs = limit.as_secs() + 5;
    wait(&mut [&mut timeboxed], secs, "session timeout", |c| closed(c[0]))?;
    let lasted = opened.elapsed();
    expect("/timeboxed", texts(&timeboxed), vec!["you said: x", "session expired"])?;
    expect(
        "/timeboxed close",
        timeboxed.handler().close.clone(),
        Some((4001, "session timeout".into())),
    )?;
    if lasted < limit {
        return Err(format!("the session ended after {lasted:?}, before {limit:?}"));
    }

    // /secure: accepted, then closed with a reason unless the key is right
    for (label, path, headers, want) in [
        ("no key", "/secure", vec![], Err("missing x-api-key")),
        (
            "wrong header",
            "/secure",
            vec![("x-api-key", "guess")],
            Err("bad x-api-key"),
        ),
        ("header", "/secure", vec![("x-api-key", key)], Ok(())),
        ("query", &format!("/secure?token={key}") as &str, vec![], Ok(())),
    ] {
        let mut c = t.connect(path, &headers)?;
        wait(&mut [&mut c], 5, label, |c| {
            closed(c[0]) || !c[0].handler().texts.is_empty()
        })?;
        match want {
            Err(reason) => expect(
                &format!("/secure {label}"),
                c.handler().close.clone(),
                Some((AUTH_FAILED, reason.into())),
            )?,
            Ok(()) => {
                send(&mut c, "ping")?;
                wait(&mut [&mut c], 5, label, |c| c[0].handler().texts.len() == 2)?;
                expect(
                    &format!("/secure {label}"),
                    texts(&c),
                    vec!["authorized", "secure echo: ping"],
                )?;
            }
        }
    }

    // /private: refused in the handshake, or accepted
    let mut c = t.connect("/private", &[])?;
    wait(&mut [&mut c], 5, "private refused", |c| closed(c[0]))?;
    expect(
        "/private without key: opened, error",
        (c.handler().opened, c.handler().error.clone()),
        (
            false,
            Some("handshake failed: server refused the upgrade with HTTP 401".into()),
        ),
    )?;
    let mut c = t.connect(&format!("/private?token={key}"), &[])?;
    wait(&mut [&mut c], 5, "private accepted", |c| {
        !c[0].handler().texts.is_empty()
    })?;
    expect("/private with ?token=", texts(&c), vec!["authorized"])?;
    Ok(())
}

fn selftest(limit: Duration, key: String) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let server_stop = stop.clone();
    let server_key = key.clone();
    let thread = thread::spawn(move || {
        let mut server = match new_server(([127, 0, 0, 1], 0).into(), limit, server_key) {
            Ok(s) => s,
            Err(e) => return drop(tx.send(Err(e))),
        };
        let _ = tx.send(Ok(server.local_addr().map_or(0, |a| a.port())));
        if let Err(e) = run(&mut server, &server_stop) {
            eprintln!("server: {e}");
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())??;
    let tester = Tester {
        base: format!("ws://127.0.0.1:{port}"),
        port,
    };
    let result = check_all(&tester, &key, limit);
    stop.store(true, Ordering::Relaxed);
    thread.join().map_err(|_| "server thread panicked")?;
    result
}

fn main() -> ExitCode {
    let mut selftest_mode = false;
    let mut port = 8080u16;
    let mut secs: Option<f64> = None;
    let mut key = "expected-secret".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let ok = match arg.as_str() {
            "--selftest" => {
                selftest_mode = true;
                true
            }
            "--port" => args.next().and_then(|v| v.parse().ok()).map(|v| port = v).is_some(),
            "--session-secs" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| secs = Some(v))
                .is_some(),
            "--api-key" => args.next().map(|v| key = v).is_some(),
            _ => false,
        };
        if !ok {
            eprintln!("usage: tutorial04_patterns --selftest | [--port N] [--session-secs S] [--api-key K]");
            return ExitCode::from(2);
        }
    }
    let default_secs = if selftest_mode { 1.0 } else { 60.0 };
    let limit = Duration::from_secs_f64(secs.unwrap_or(default_secs));
    let result = if selftest_mode {
        selftest(limit, key).map(|()| println!("tutorial04: OK"))
    } else {
        new_server(([0, 0, 0, 0], port).into(), limit, key).and_then(|mut server| {
            let port = server.local_addr().map_or(port, |a| a.port());
            println!("patterns on ws://127.0.0.1:{port}/{{echo,ticker,room,bridge,timeboxed,secure,private}}");
            run(&mut server, &AtomicBool::new(false))
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial04: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
