//! Tutorial chapter 3: the server inside a game loop.
//!
//! ```text
//! cargo run --release --example tutorial03_game_loop -- --selftest              # both designs; exit 0 if they worked
//! cargo run --release --example tutorial03_game_loop -- --port 8080             # design A, until Ctrl-C
//! cargo run --release --example tutorial03_game_loop -- --port 8080 --threaded  # design B
//! ```
//!
//! A tiny simulation: every player is a dot that moves with the velocity
//! its last `move DX DY` message set. It steps at a fixed rate (60 Hz by
//! default, `--hz N`) and after every step pushes a JSON snapshot of the
//! world to every player.
//!
//! * Design A, one thread: the game loop owns the `Server` and calls
//!   `tick()` once per frame. The game state *is* the `HvWebServer`, so the
//!   callbacks change it directly; `with_context` sends the snapshot.
//! * Design B, two threads: the server ticks on a network thread of its own
//!   (`tick_timeout`, which sleeps until there is work); the simulation
//!   thread gets inputs over an `mpsc` channel and sends snapshots through
//!   the `Send + Clone` `ServerHandle`.
//!
//! `--selftest` runs both designs for 90 frames with two bot players on
//! another thread and checks the frame rate, that every player got every
//! frame's snapshot in order, that inputs moved the right dots, and that
//! `stop()` closed the players with 1001. Walkthrough:
//! `tutorials/03-game-loop.md`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, CloseInfo, Context, HvWebServer, HvWebSocketClient, Opcode, Routes, Server, ServerHandle,
    WebSocketClient,
};

// --- the simulation (knows nothing about networking) ---------------------------

const SPEED: f32 = 20.0; // units per second
const WORLD: f32 = 100.0; // the world is WORLD x WORLD

struct Player {
    name: String,
    pos: (f32, f32),
    vel: (f32, f32),
}

#[derive(Default)]
struct Game {
    /// Players by channel; a BTreeMap so snapshots list them in a stable order.
    players: BTreeMap<Channel, Player>,
    next_id: u32,
    frame: u64,
}

impl Game {
    /// Adds a player; returns its name.
    fn join(&mut self, ch: Channel) -> String {
        self.next_id += 1;
        let name = format!("user_{}", self.next_id);
        let start = (WORLD / 2.0, WORLD / 2.0);
        self.players.insert(
            ch,
            Player {
                name: name.clone(),
                pos: start,
                vel: (0.0, 0.0),
            },
        );
        name
    }

    fn leave(&mut self, ch: Channel) {
        self.players.remove(&ch);
    }

    /// Applies an input message: `move DX DY`, each -1, 0 or 1.
    fn input(&mut self, ch: Channel, msg: &str) {
        let mut words = msg.split_whitespace();
        if words.next() != Some("move") {
            return;
        }
        let mut axis = || {
            words
                .next()
                .and_then(|w| w.parse::<f32>().ok())
                .unwrap_or(0.0)
                .clamp(-1.0, 1.0)
        };
        let vel = (axis() * SPEED, axis() * SPEED);
        if let Some(p) = self.players.get_mut(&ch) {
            p.vel = vel;
        }
    }

    /// Advances the world by one fixed step.
    fn step(&mut self, dt: f32) {
        self.frame += 1;
        for p in self.players.values_mut() {
            p.pos.0 = (p.pos.0 + p.vel.0 * dt).clamp(0.0, WORLD);
            p.pos.1 = (p.pos.1 + p.vel.1 * dt).clamp(0.0, WORLD);
        }
    }

    /// The world as JSON: `{"frame":N,"players":[{"name":"user_1","x":50.00,"y":50.00}]}`.
    fn snapshot(&self) -> String {
        let players: Vec<String> = self
            .players
            .values()
            .map(|p| format!(r#"{{"name":"{}","x":{:.2},"y":{:.2}}}"#, p.name, p.pos.0, p.pos.1))
            .collect();
        format!(r#"{{"frame":{},"players":[{}]}}"#, self.frame, players.join(","))
    }
}

// --- design A: the game loop owns the server ------------------------------------

/// The game is the server application: callbacks change it directly.
impl HvWebServer for Game {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/game");
    }
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        let name = self.join(ch);
        ctx.send_text(ch, &format!("welcome {name}"));
    }
    fn on_ws_message(&mut self, _ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        self.input(ch, msg);
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
        self.leave(ch);
    }
}

/// Sleeps until the next frame is due; a frame that ran late does not make
/// the following ones run fast to catch up.
fn wait_for_frame(next: &mut Instant, dt: Duration) {
    *next += dt;
    let now = Instant::now();
    if *next > now {
        thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

/// Design A. Runs `frames` frames (forever if `None`), then stops the
/// server; returns the address it listened on through `on_listen`.
fn run_game_loop(
    addr: std::net::SocketAddr,
    hz: u32,
    frames: Option<u64>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<Game, String> {
    let mut server = Server::new(Game::default());
    server.init_addr(addr).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    on_listen(server.local_addr().ok_or("no address")?);

    let dt = Duration::from_secs(1) / hz;
    let mut next = Instant::now();
    while frames.is_none_or(|n| server.handler().frame < n) {
        // 1. Simulate one fixed step with the inputs that arrived so far.
        server.handler_mut().step(dt.as_secs_f32());
        // 2. Queue this frame's snapshot for every player (encoded once).
        server.with_context(|game: &mut Game, ctx| {
            ctx.broadcast_text(&game.snapshot(), None);
        });
        // 3. One tick: flush the snapshots, read inputs, accept newcomers.
        server.tick().map_err(|e| e.to_string())?;
        // 4. Wait for the next frame.
        wait_for_frame(&mut next, dt);
    }
    server.stop().map_err(|e| e.to_string())?; // every player gets 1001
    Ok(std::mem::take(server.handler_mut()))
}

// --- design B: a network thread, fed through the ServerHandle --------------------

/// What the network thread tells the simulation.
enum Input {
    Join(Channel),
    Message(Channel, String),
    Leave(Channel),
}

/// The network thread's application: it only forwards to the simulation.
struct Relay {
    inputs: mpsc::Sender<Input>,
}

impl HvWebServer for Relay {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/game");
    }
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        let _ = self.inputs.send(Input::Join(ch));
    }
    fn on_ws_message(&mut self, _ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        let _ = self.inputs.send(Input::Message(ch, msg.to_owned()));
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
        let _ = self.inputs.send(Input::Leave(ch));
    }
}

/// Design B. The simulation runs on the calling thread; the server on a
/// thread of its own.
fn run_threaded(
    addr: std::net::SocketAddr,
    hz: u32,
    frames: Option<u64>,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<Game, String> {
    let (inputs_tx, inputs) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel::<Result<(ServerHandle, std::net::SocketAddr), String>>();
    let net = thread::spawn(move || {
        let mut server = Server::new(Relay { inputs: inputs_tx });
        let up = server.init_addr(addr).and_then(|()| server.start());
        match (up, server.local_addr()) {
            (Ok(()), Some(local)) => {
                let _ = ready_tx.send(Ok((server.handle(), local)));
            }
            (up, _) => {
                let _ = ready_tx.send(Err(format!("server did not start: {up:?}")));
                return;
            }
        }
        // Sleeps in the poller until a socket or the handle wakes it.
        while server.is_running() {
            if let Err(e) = server.tick_timeout(Duration::from_millis(100)) {
                eprintln!("network thread: {e}");
                return;
            }
        }
    });
    let (handle, local) = ready
        .recv_timeout(Duration::from_secs(5))
        .map_err(|e| format!("network thread: {e}"))??;
    on_listen(local);

    let mut game = Game::default();
    let dt = Duration::from_secs(1) / hz;
    let mut next = Instant::now();
    while frames.is_none_or(|n| game.frame < n) {
        for input in inputs.try_iter() {
            match input {
                Input::Join(ch) => {
                    let name = game.join(ch);
                    let _ = handle.send_text(ch, format!("welcome {name}"));
                }
                Input::Message(ch, msg) => game.input(ch, &msg),
                Input::Leave(ch) => game.leave(ch),
            }
        }
        game.step(dt.as_secs_f32());
        // Only the players the simulation knows get the snapshot.
        let players: Vec<Channel> = game.players.keys().copied().collect();
        handle
            .broadcast_to(players, game.snapshot(), Opcode::Text)
            .map_err(|e| e.to_string())?;
        wait_for_frame(&mut next, dt);
    }
    handle.stop().map_err(|e| e.to_string())?;
    net.join().map_err(|_| "network thread panicked")?;
    Ok(game)
}

// --- the selftest's bot players --------------------------------------------------

#[derive(Default)]
struct Bot {
    /// The input this bot sends once welcomed.
    input: &'static str,
    name: Option<String>,
    /// (frame, own x, own y) of every snapshot after the welcome.
    seen: Vec<(u64, f32, f32)>,
    /// Snapshots that arrived before the welcome (must be none).
    early: usize,
    close: Option<u16>,
}

/// The number after `"key":` in a flat JSON object.
fn json_number(obj: &str, key: &str) -> Option<f64> {
    let start = obj.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &obj[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl HvWebSocketClient for Bot {
    fn on_message(&mut self, ctx: &mut ClientContext<'_>, msg: &str) {
        if let Some(name) = msg.strip_prefix("welcome ") {
            self.name = Some(name.to_owned());
            ctx.send(self.input);
            return;
        }
        let Some(name) = &self.name else {
            self.early += 1;
            return;
        };
        let frame = json_number(msg, "frame").unwrap_or(-1.0) as u64;
        let me = msg
            .find(&format!(r#""name":"{name}""#))
            .and_then(|i| msg[i..].find('}').map(|end| &msg[i..i + end]));
        if let Some(me) = me {
            let x = json_number(me, "x").unwrap_or(f64::NAN) as f32;
            let y = json_number(me, "y").unwrap_or(f64::NAN) as f32;
            self.seen.push((frame, x, y));
        }
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some(close.code);
    }
}

/// Two bots on one thread until the server closes them (10 s at most).
fn run_bots(url: String) -> Result<Vec<Bot>, String> {
    let mut bots: Vec<WebSocketClient<Bot>> = ["move 1 0", "move 0 -1"]
        .into_iter()
        .map(|input| {
            WebSocketClient::new(Bot {
                input,
                ..Bot::default()
            })
        })
        .collect();
    for bot in &mut bots {
        bot.init(&url).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while bots.iter().any(|b| b.handler().close.is_none()) {
        if Instant::now() > deadline {
            return Err("bots: the server never closed".into());
        }
        for bot in &mut bots {
            bot.process_event_que_timeout(Duration::from_millis(2));
        }
    }
    Ok(bots.into_iter().map(|mut b| std::mem::take(b.handler_mut())).collect())
}

type Runner = fn(std::net::SocketAddr, u32, Option<u64>, Box<dyn FnOnce(std::net::SocketAddr)>) -> Result<Game, String>;

fn check_design(label: &str, run: Runner, hz: u32) -> Result<(), String> {
    const FRAMES: u64 = 90;
    let (url_tx, url_rx) = mpsc::channel();
    let bots = thread::spawn(move || {
        let url: String = url_rx.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
        run_bots(url)
    });
    let started = Instant::now();
    let game = run(
        ([127, 0, 0, 1], 0).into(),
        hz,
        Some(FRAMES),
        Box::new(move |addr| {
            let _ = url_tx.send(format!("ws://{addr}/game"));
        }),
    )?;
    let elapsed = started.elapsed();
    let bots = bots.join().map_err(|_| "bot thread panicked")??;

    let rate = game.frame as f64 / elapsed.as_secs_f64();
    println!("{label}: {} frames in {elapsed:.2?} ({rate:.1} Hz)", game.frame);
    if game.frame != FRAMES || rate < 0.8 * f64::from(hz) || rate > 1.05 * f64::from(hz) {
        return Err(format!("{label}: ran at {rate:.1} Hz, wanted {hz}"));
    }
    for bot in &bots {
        let name = bot
            .name
            .as_deref()
            .ok_or(format!("{label}: a bot was never welcomed"))?;
        let (first, last) = match (bot.seen.first(), bot.seen.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return Err(format!("{label}: {name} got no snapshot")),
        };
        println!(
            "{label}: {name} sent {:?}, got {} snapshots (frames {}..={}), moved ({:.1},{:.1}) -> ({:.1},{:.1}), closed {:?}",
            bot.input,
            bot.seen.len(),
            first.0,
            last.0,
            first.1,
            first.2,
            last.1,
            last.2,
            bot.close
        );
        // Every frame after the welcome reached the player, in order.
        let consecutive = bot.seen.windows(2).all(|w| w[1].0 == w[0].0 + 1);
        if !consecutive || bot.early != 0 || bot.seen.len() < (FRAMES / 2) as usize {
            return Err(format!(
                "{label}: {name} frames not one per step: {} snapshots, {} early",
                bot.seen.len(),
                bot.early
            ));
        }
        // Its input moved its own dot, and only along that axis.
        let moved = (last.1 - first.1, last.2 - first.2);
        let ok = match bot.input {
            "move 1 0" => moved.0 > 5.0 && moved.1 == 0.0,
            _ => moved.1 < -5.0 && moved.0 == 0.0,
        };
        if !ok {
            return Err(format!("{label}: {name} sent {:?} but moved {moved:?}", bot.input));
        }
        if bot.close != Some(1001) {
            return Err(format!("{label}: {name} closed with {:?}, wanted 1001", bot.close));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut selftest = false;
    let mut threaded = false;
    let mut port = 8080u16;
    let mut hz = 60u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or(format!("{name} needs a number"))
        };
        let parsed = match arg.as_str() {
            "--selftest" => {
                selftest = true;
                Ok(())
            }
            "--threaded" => {
                threaded = true;
                Ok(())
            }
            "--port" => value("--port")
                .and_then(|v| u16::try_from(v).map_err(|e| e.to_string()))
                .map(|v| port = v),
            "--hz" => value("--hz").map(|v| hz = v.max(1)),
            _ => Err(format!("unknown argument {arg:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("{e}; usage: tutorial03_game_loop --selftest | [--port N] [--hz N] [--threaded]");
            return ExitCode::from(2);
        }
    }
    let result = if selftest {
        check_design("A game loop", run_game_loop, hz)
            .and_then(|()| check_design("B threaded", run_threaded, hz))
            .map(|()| println!("tutorial03: OK"))
    } else {
        let addr = ([0, 0, 0, 0], port).into();
        let on_listen = |a| println!("game on ws://{a}/game at {hz} Hz; send `move 1 0`; Ctrl-C to stop");
        let run = if threaded { run_threaded } else { run_game_loop };
        run(addr, hz, None, on_listen).map(drop)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial03: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
