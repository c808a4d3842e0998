//! Chat rooms on topics, on every core: WebSockets on `/rooms`, one server
//! per thread on one port ([`ServerGroup`]), their topics joined by the
//! group's [`Hub`]. Chapter 14 of the tutorial
//! (`tutorials/14-rooms-and-threads.md`) walks through it.
//!
//! ```text
//! cargo run --example room_server -- --port 8080 --threads 4
//! cargo run --example room_server -- --selftest
//! ```
//!
//! Flags: `--port N` (required; 0 picks a free port, and the line printed
//! at start says which), `--threads K` (default 1), `--redis URL` (rooms
//! across every process on that Redis: build with `--features redis`; a
//! build without it refuses the flag with exit status 2; see [`hub_for`]).
//! It listens
//! on 127.0.0.1 and prints
//! `room_server listening on 127.0.0.1:PORT, K threads: ws://127.0.0.1:PORT/rooms`.
//! Ctrl-C or SIGTERM stops it: every client gets a 1001 close, and it exits
//! 0. Logs at `info` unless `RUST_LOG` says otherwise: each connection's
//! thread and address, each room becoming active or inactive on a thread.
//!
//! The protocol, one text message per command (names are case-sensitive,
//! arguments are separated by one space):
//!
//! | the client sends | it gets back |
//! | --- | --- |
//! | `join ROOM` | `joined ROOM`; `error: already in ROOM`; `error: at most 16 rooms per client` |
//! | `leave ROOM` | `left ROOM`; `error: not in ROOM` |
//! | `say ROOM TEXT` | every subscriber of ROOM, on every thread, the sender included, gets `ROOM: TEXT` once; a sender not in ROOM gets `error: not in ROOM` and nobody else anything |
//! | `rooms` | `rooms: a b c` (its rooms, sorted, one space apart); `rooms:` when none |
//! | anything else | `error: ...` saying what was wrong |
//!
//! A ROOM is 1 to 32 printable ASCII characters without spaces (`!` to
//! `~`); TEXT is the rest of the message after ROOM and one space, at least
//! one character, spaces kept. A message over 4 KiB closes the connection
//! with 1009 (the server's `max_message_size`); a binary message gets
//! `error: commands are text messages`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, Hub, HvWebServer, Routes, ServerConfig, ServerGroup};

/// The longest room name, in bytes.
const MAX_ROOM_LEN: usize = 32;
/// How many rooms one client may be in: a client cannot make the server
/// keep an unbounded number of topics.
const MAX_ROOMS: usize = 16;
/// The longest message a client may send.
const MAX_MESSAGE: usize = 4 << 10;

/// One client command, parsed.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Join(&'a str),
    Leave(&'a str),
    Say(&'a str, &'a str),
    Rooms,
}

/// Parses one text message; the error is what follows `error: ` in the
/// answer.
fn parse(msg: &str) -> Result<Command<'_>, String> {
    let (cmd, rest) = match msg.split_once(' ') {
        Some((cmd, rest)) => (cmd, Some(rest)),
        None => (msg, None),
    };
    match (cmd, rest) {
        ("join", Some(room)) => room_name(room).map(Command::Join),
        ("leave", Some(room)) => room_name(room).map(Command::Leave),
        ("join" | "leave", None) => Err(format!("{cmd} needs a room: {cmd} ROOM")),
        ("say", Some(rest)) => match rest.split_once(' ') {
            Some((room, text)) if !text.is_empty() => Ok(Command::Say(room_name(room)?, text)),
            _ => Err("say needs a room and a text: say ROOM TEXT".into()),
        },
        ("say", None) => Err("say needs a room and a text: say ROOM TEXT".into()),
        ("rooms", None) => Ok(Command::Rooms),
        ("rooms", Some(_)) => Err("rooms takes no argument".into()),
        _ => Err("unknown command; the commands are join ROOM, leave ROOM, say ROOM TEXT, rooms".into()),
    }
}

/// `name` if it is a valid room name.
fn room_name(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        Err("empty room name".into())
    } else if name.len() > MAX_ROOM_LEN {
        Err(format!("room name over {MAX_ROOM_LEN} bytes"))
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        Err("a room name is printable ASCII without spaces".into())
    } else {
        Ok(name)
    }
}

/// Which thread each client landed on, by its address: for the self-test,
/// which needs clients on two threads.
type Placement = Arc<Mutex<HashMap<SocketAddr, usize>>>;

/// One thread's server. Rooms are topics, so the server keeps no room
/// table of its own: the topic table is it.
struct RoomServer {
    thread: usize,
    placement: Option<Placement>,
}

impl HvWebServer for RoomServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/rooms");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        let Some(peer) = ctx.info(channel).map(|i| i.peer_addr()) else {
            return;
        };
        log::info!("thread {}: {channel} opened from {peer}", self.thread);
        if let Some(placement) = &self.placement {
            placement.lock().unwrap().insert(peer, self.thread);
        }
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let answer = match parse(msg) {
            Ok(Command::Join(room)) => {
                if ctx.is_subscribed(channel, room) {
                    format!("error: already in {room}")
                } else if ctx.topics(channel).count() >= MAX_ROOMS {
                    format!("error: at most {MAX_ROOMS} rooms per client")
                } else {
                    ctx.subscribe(channel, room);
                    format!("joined {room}")
                }
            }
            Ok(Command::Leave(room)) => {
                if ctx.unsubscribe(channel, room) {
                    format!("left {room}")
                } else {
                    format!("error: not in {room}")
                }
            }
            Ok(Command::Say(room, text)) => {
                if !ctx.is_subscribed(channel, room) {
                    format!("error: not in {room}")
                } else {
                    // This thread's subscribers now, the sender included;
                    // the hub hands it to the other threads after the tick.
                    ctx.publish_text(room, &format!("{room}: {text}"), None);
                    return;
                }
            }
            Ok(Command::Rooms) => {
                let mut rooms: Vec<&str> = ctx.topics(channel).collect();
                rooms.sort_unstable();
                format!("rooms:{}", rooms.iter().map(|r| format!(" {r}")).collect::<String>())
            }
            Err(e) => format!("error: {e}"),
        };
        ctx.send_text(channel, &answer);
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, _data: &[u8]) {
        ctx.send_text(channel, "error: commands are text messages");
    }

    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        // Its rooms are left for it after this callback.
        log::info!("thread {}: {channel} closed: {}", self.thread, close.code);
    }

    fn on_topic_active(&mut self, _ctx: &mut Context<'_>, room: &str) {
        log::info!("thread {}: room {room} active (its first subscriber here)", self.thread);
    }

    fn on_topic_inactive(&mut self, _ctx: &mut Context<'_>, room: &str) {
        log::info!(
            "thread {}: room {room} inactive (its last subscriber here left)",
            self.thread
        );
    }
}

/// The hub the threads join: a plain one, or with `--redis URL` one whose
/// bridge carries the rooms to every process on that Redis (feature
/// `redis`; `"rooms"` is the bridge's namespace, so other applications on
/// the same Redis do not hear these rooms).
fn hub_for(redis: Option<&str>) -> Result<Hub, String> {
    match redis {
        None => Ok(Hub::new()),
        #[cfg(feature = "redis")]
        Some(url) => {
            let bridge = hvws::RedisBridge::new(url, "rooms").map_err(|e| e.to_string())?;
            Ok(Hub::with_redis(bridge))
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => Err("--redis needs the Redis bridge: build with --features redis".into()),
    }
}

fn config() -> ServerConfig {
    ServerConfig {
        max_message_size: MAX_MESSAGE,
        ..ServerConfig::default()
    }
}

/// Starts `threads` servers on `addr` sharing `hub`; `ended` counts the
/// threads whose loop returned.
fn spawn(
    addr: SocketAddr,
    threads: usize,
    hub: Hub,
    placement: Option<Placement>,
    ended: Arc<AtomicUsize>,
) -> Result<ServerGroup, hvws::ServerError> {
    ServerGroup::spawn_with_hub(
        addr,
        threads,
        config(),
        hub,
        move |thread| RoomServer {
            thread,
            placement: placement.clone(),
        },
        move |server, _thread| {
            let result = server.run();
            ended.fetch_add(1, Ordering::SeqCst);
            result
        },
    )
}

/// Serves until Ctrl-C or SIGTERM (or until a thread fails).
fn serve(port: u16, threads: usize, redis: Option<&str>) -> ExitCode {
    let hub = match hub_for(redis) {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("room_server: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        let registered = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("room_server: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let ended = Arc::new(AtomicUsize::new(0));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let group = match spawn(addr, threads, hub, None, Arc::clone(&ended)) {
        Ok(group) => group,
        Err(e) => {
            eprintln!("room_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = group.local_addr();
    let noun = if threads == 1 { "thread" } else { "threads" };
    println!("room_server listening on {local}, {threads} {noun}: ws://{local}/rooms");
    while !stop.load(Ordering::SeqCst) && ended.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every server says 1001 to its clients and waits for their answers
    // (up to `shutdown_timeout`); a thread that failed is reported here.
    group.stop();
    match group.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("room_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let usage = "usage: room_server --port N [--threads K] [--redis redis://HOST:PORT] | --selftest";
    let (mut port, mut threads, mut redis, mut selftest) = (None, 1usize, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let parsed = match arg.as_str() {
            "--selftest" => {
                selftest = true;
                Ok(())
            }
            "--port" => value().and_then(|v| {
                port = Some(v.parse().map_err(|e| format!("--port {v:?}: {e}"))?);
                Ok(())
            }),
            "--threads" => value().and_then(|v| match v.parse() {
                Ok(k) if k >= 1 => {
                    threads = k;
                    Ok(())
                }
                _ => Err(format!("--threads {v:?}: want a number of threads, at least 1")),
            }),
            "--redis" => value().map(|v| redis = Some(v)),
            "-h" | "--help" => {
                println!("{usage}");
                return ExitCode::SUCCESS;
            }
            _ => Err(format!("unknown argument {arg:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("room_server: {e}; {usage}");
            return ExitCode::from(2);
        }
    }
    // The self-test prints what it checked; a server logs its connections.
    let level = if selftest { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if selftest {
        return match selftest_run() {
            Ok(()) => {
                println!("room_server: OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("room_server selftest FAILED: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(port) = port else {
        eprintln!("room_server: --port is required; {usage}");
        return ExitCode::from(2);
    };
    serve(port, threads, redis.as_deref())
}

// --- the self-test: blocking tungstenite clients against two threads -------

type Ws = tungstenite::WebSocket<TcpStream>;

/// How long any wait of the self-test may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of `/rooms`, and the address the server sees it from.
struct Client {
    ws: Ws,
    addr: SocketAddr,
}

impl Client {
    fn connect(server: SocketAddr) -> Result<Client, String> {
        let stream = TcpStream::connect(server).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        let addr = stream.local_addr().map_err(|e| e.to_string())?;
        let (ws, _) = tungstenite::client(format!("ws://{server}/rooms"), stream).map_err(|e| e.to_string())?;
        Ok(Client { ws, addr })
    }

    fn send(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(tungstenite::Message::text(text))
            .map_err(|e| e.to_string())
    }

    fn recv(&mut self) -> Result<String, String> {
        loop {
            match self.ws.read().map_err(|e| format!("{}: {e}", self.addr))? {
                tungstenite::Message::Text(t) => return Ok(t.to_string()),
                tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
                other => return Err(format!("{}: expected text, got {other:?}", self.addr)),
            }
        }
    }

    /// Sends `command` and checks the answer.
    fn ask(&mut self, command: &str, want: &str) -> Result<(), String> {
        self.send(command)?;
        let got = self.recv()?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{command:?} answered {got:?}, want {want:?}"))
        }
    }
}

fn selftest_run() -> Result<(), String> {
    let placement = Placement::default();
    let ended = Arc::new(AtomicUsize::new(0));
    let group = spawn(
        "127.0.0.1:0".parse().unwrap(),
        2,
        hub_for(None)?,
        Some(Arc::clone(&placement)),
        ended,
    )
    .map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    let result = conversation(group.local_addr(), &placement, &mut clients);
    group.stop();
    // Stopping: every client still connected gets the server's 1001.
    let goodbyes = result.and_then(|()| {
        for c in &mut clients {
            match c.ws.read() {
                // Flushing sends the close answer, so the server need not
                // wait for it.
                Ok(tungstenite::Message::Close(Some(f))) if u16::from(f.code) == 1001 => {
                    let _ = c.ws.flush();
                }
                other => return Err(format!("{}: wanted the 1001 close, got {other:?}", c.addr)),
            }
        }
        println!("stopped: {} clients got 1001", clients.len());
        Ok(())
    });
    group.join().map_err(|e| e.to_string())?;
    goodbyes
}

fn conversation(server: SocketAddr, placement: &Placement, clients: &mut Vec<Client>) -> Result<(), String> {
    // Clients until each thread has two (the kernel hashes each
    // connection to a listener, so it may take a few).
    let thread_of = |c: &Client| placement.lock().unwrap().get(&c.addr).copied();
    loop {
        let mut c = Client::connect(server)?;
        // The first answer comes after on_ws_open ran, so it is placed.
        c.ask("rooms", "rooms:")?;
        clients.push(c);
        let on = |t| clients.iter().filter(|c| thread_of(c) == Some(t)).count();
        if on(0) >= 2 && on(1) >= 2 {
            break;
        }
        if clients.len() >= 64 {
            return Err("64 clients and a thread still without two".into());
        }
    }
    let threads: Vec<usize> = clients.iter().map(|c| thread_of(c).unwrap_or(9)).collect();
    println!("{} clients, on threads {threads:?}", clients.len());

    // The protocol, on one client.
    let c = &mut clients[0];
    c.ask("join red", "joined red")?;
    c.ask("join red", "error: already in red")?;
    c.ask("join blue", "joined blue")?;
    c.ask("rooms", "rooms: blue red")?;
    c.ask("leave blue", "left blue")?;
    c.ask("leave blue", "error: not in blue")?;
    c.ask("say green hello", "error: not in green")?;
    c.ask("say red hello there", "red: hello there")?;
    c.ask("join", "error: join needs a room: join ROOM")?;
    c.ask("join a b", "error: a room name is printable ASCII without spaces")?;
    c.ask("join ", "error: empty room name")?;
    c.ask(&format!("join {}", "x".repeat(33)), "error: room name over 32 bytes")?;
    c.ask("say red", "error: say needs a room and a text: say ROOM TEXT")?;
    c.ask("rooms please", "error: rooms takes no argument")?;
    c.ask(
        "dance",
        "error: unknown command; the commands are join ROOM, leave ROOM, say ROOM TEXT, rooms",
    )?;
    c.ws.send(tungstenite::Message::binary(vec![1, 2, 3]))
        .map_err(|e| e.to_string())?;
    if c.recv()? != "error: commands are text messages" {
        return Err("a binary message got no error".into());
    }
    c.ask("leave red", "left red")?;
    for i in 0..MAX_ROOMS {
        c.ask(&format!("join r{i}"), &format!("joined r{i}"))?;
    }
    c.ask("join one-too-many", "error: at most 16 rooms per client")?;
    for i in 0..MAX_ROOMS {
        c.ask(&format!("leave r{i}"), &format!("left r{i}"))?;
    }
    println!("join, leave, say, rooms and every error answer: as documented");

    // Across threads: everyone in the lobby, each says one line; each
    // hears every line once.
    for c in clients.iter_mut() {
        c.ask("join lobby", "joined lobby")?;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&format!("say lobby line {i}"))?;
    }
    let n = clients.len();
    for c in clients.iter_mut() {
        let mut heard = Vec::new();
        for _ in 0..n {
            heard.push(c.recv()?);
        }
        heard.sort();
        let mut want: Vec<String> = (0..n).map(|i| format!("lobby: line {i}")).collect();
        want.sort();
        if heard != want {
            return Err(format!("{} heard {heard:?}", c.addr));
        }
        // Nothing more: had a line come twice, it would come before this
        // answer (it travels in the same batch as its first copy).
        c.ask("rooms", "rooms: lobby")?;
    }
    println!("{n} lines said in the lobby on 2 threads: each client heard each once");

    // A client that left hears no more, while one on its thread still does.
    let leaver = (0..n).find(|&i| threads[i] == 1).ok_or("no client on thread 1")?;
    let sayer = (0..n).find(|&i| threads[i] == 0).ok_or("no client on thread 0")?;
    clients[leaver].ask("leave lobby", "left lobby")?;
    clients[sayer].send("say lobby after the leave")?;
    for (i, c) in clients.iter_mut().enumerate() {
        if i != leaver {
            let got = c.recv()?;
            if got != "lobby: after the leave" {
                return Err(format!("{} got {got:?}", c.addr));
            }
        }
    }
    clients[leaver].ask("rooms", "rooms:")?;
    println!("a client that left the lobby on thread 1 heard nothing from thread 0");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_documented() {
        assert_eq!(parse("join red"), Ok(Command::Join("red")));
        assert_eq!(parse("leave red"), Ok(Command::Leave("red")));
        assert_eq!(parse("say red a b  c"), Ok(Command::Say("red", "a b  c")));
        assert_eq!(parse("rooms"), Ok(Command::Rooms));
        for bad in [
            "",
            "JOIN red",
            "join",
            "join ",
            "join a b",
            "say red",
            "say red ",
            "say  red x",
            "rooms x",
            "join é",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("join {}", "x".repeat(MAX_ROOM_LEN))).is_ok());
        assert!(parse(&format!("join {}", "x".repeat(MAX_ROOM_LEN + 1))).is_err());
    }
}
