//! Tutorial chapter 3: the server inside a game loop.
//!
//! ```text
//! cargo run --release --features json --example tutorial03_game_loop -- --selftest              # both designs; exit 0 if they worked
//! cargo run --release --features json --example tutorial03_game_loop -- --port 8080             # design A, until Ctrl-C
//! cargo run --release --features json --example tutorial03_game_loop -- --port 8080 --threaded  # design B
//! ```
//!
//! A tiny simulation: every player is a dot that moves in the direction its
//! last input `{"seq":N,"dx":DX,"dy":DY}` set. It steps at a fixed rate (60
//! Hz by default, `--hz N`) and after every step sends every player a JSON
//! snapshot of the world, in which each player's `ack` is the `seq` of its
//! last input applied. Players who send nothing for `--idle-secs` (10) are
//! closed with 4001 `idle`; anything but an input is closed with 4000
//! `bad input: ...`; Ctrl-C or SIGTERM closes everyone with 1001 and exits.
//!
//! * Design A, one thread: the game loop owns the `Server`; a `FramePacer`
//!   serves the network until each frame is due, then the loop steps the
//!   world with the inputs that arrived and flushes the snapshot: an input
//!   is in the very next snapshot.
//! * Design B, two threads: the server ticks on a network thread of its own
//!   (`tick_timeout`, which sleeps until there is work); the simulation
//!   thread gets inputs over an `mpsc` channel and sends snapshots through
//!   the `Send + Clone` `ServerHandle`.
//!
//! `--selftest` runs both designs with four bot players on another thread
//! (two that steer, one that stays silent, one that sends the old chapter's
//! `move 1 0`) and checks the frame rate, that every player got every
//! frame's snapshot in order, that inputs moved the right dots and showed
//! in the next snapshot, the idle and bad-input closes, and that a SIGTERM
//! closed the players with 1001. Walkthrough: `tutorials/03-game-loop.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientContext, CloseInfo, Context, FramePacer, HvWebServer, HvWebSocketClient, IdleActivity, Opcode,
    Routes, Server, ServerConfig, ServerHandle, TickBudget, WebSocketClient,
};
use serde::{Deserialize, Serialize};

// --- the messages ------------------------------------------------------------------

/// What a player sends: the direction to move in (each axis -1 to 1), and a
/// number the snapshots acknowledge.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Input {
    seq: u32,
    dx: f32,
    dy: f32,
}

/// `{"type":"welcome","id":ID}`; a `Channel` is JSON as its `id()`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename = "welcome")]
struct Welcome {
    id: Channel,
}

/// `{"type":"snapshot","tick":T,"players":[{"id":ID,"x":X,"y":Y,"ack":SEQ},...]}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename = "snapshot")]
struct Snapshot {
    tick: u64,
    players: Vec<PlayerView>,
}

#[derive(Debug, Deserialize, Serialize)]
struct PlayerView {
    id: Channel,
    x: f32,
    y: f32,
    /// The `seq` of the last input applied.
    ack: u32,
}

// --- the simulation (knows nothing about networking) ---------------------------

const SPEED: f32 = 20.0; // units per second
const WORLD: f32 = 100.0; // the world is WORLD x WORLD

struct Player {
    pos: (f32, f32),
    vel: (f32, f32),
    ack: u32,
}

#[derive(Default)]
struct Game {
    /// Players by channel; a BTreeMap so snapshots list them in a stable order.
    players: BTreeMap<Channel, Player>,
    /// Inputs that arrived since the last step, in order.
    inputs: Vec<(Channel, Input)>,
    tick: u64,
}

impl Game {
    fn join(&mut self, ch: Channel) {
        let start = (WORLD / 2.0, WORLD / 2.0);
        let player = Player {
            pos: start,
            vel: (0.0, 0.0),
            ack: 0,
        };
        self.players.insert(ch, player);
    }

    fn leave(&mut self, ch: Channel) {
        self.players.remove(&ch);
    }

    /// One fixed step: this frame's inputs first, then the movement.
    fn step(&mut self, tick: u64, dt: f32) {
        self.tick = tick;
        for (ch, input) in self.inputs.drain(..) {
            if let Some(p) = self.players.get_mut(&ch) {
                p.vel = (input.dx.clamp(-1.0, 1.0) * SPEED, input.dy.clamp(-1.0, 1.0) * SPEED);
                p.ack = input.seq;
            }
        }
        for p in self.players.values_mut() {
            p.pos.0 = (p.pos.0 + p.vel.0 * dt).clamp(0.0, WORLD);
            p.pos.1 = (p.pos.1 + p.vel.1 * dt).clamp(0.0, WORLD);
        }
    }

    fn snapshot(&self) -> Snapshot {
        let players = self.players.iter().map(|(&id, p)| PlayerView {
            id,
            x: p.pos.0,
            y: p.pos.1,
            ack: p.ack,
        });
        Snapshot {
            tick: self.tick,
            players: players.collect(),
        }
    }
}

/// Game-level idle: a player who sends no input for `idle` is closed with
/// 4001 "idle", however well its client answers pings.
fn game_config(idle: Duration) -> ServerConfig {
    ServerConfig {
        idle_timeout: Some(idle),
        idle_activity: IdleActivity::DataMessages,
        idle_close_code: 4001,
        idle_close_reason: "idle".into(),
        // Pings keep NAT and proxies open and find dead links; with
        // DataMessages their pongs do not keep an idle player.
        ping_interval: Some(idle / 4),
        // A frame's network work, bounded: inputs handed to the callbacks
        // per tick (the rest next tick, round-robin) and socket writes per
        // flush (the rest in the ticks between frames).
        tick_budget: TickBudget {
            messages: 256,
            writes: 250,
            ..TickBudget::UNLIMITED
        },
        ..ServerConfig::default()
    }
}

// --- design A: the game loop owns the server ------------------------------------

/// The game is the server application: callbacks change it directly.
impl HvWebServer for Game {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/game");
    }
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.join(ch);
        ctx.send_json(ch, &Welcome { id: ch }).expect("a welcome is JSON");
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        // Queued for the next step, which comes at the end of this wait.
        match serde_json::from_str::<Input>(msg) {
            Ok(input) => self.inputs.push((ch, input)),
            Err(e) => {
                self.leave(ch);
                // A long reason is cut to fit; only a bad code can fail.
                ctx.close(ch, 4000, &format!("bad input: {e}")).expect("4000 is valid");
            }
        }
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
        self.leave(ch);
    }
}

/// Design A. Runs until `stop` is set (by SIGINT or SIGTERM), then stops
/// the server; tells the address it listens on through `on_listen`.
fn run_game_loop(
    addr: SocketAddr,
    hz: u32,
    config: ServerConfig,
    stop: &AtomicBool,
    on_listen: Box<dyn FnOnce(SocketAddr)>,
) -> Result<Game, String> {
    let mut server = Server::with_config(Game::default(), config);
    server.init_addr(addr).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    on_listen(server.local_addr().ok_or("no address")?);

    let mut pacer = FramePacer::new(hz);
    let dt = pacer.period().as_secs_f32();
    while !stop.load(Ordering::Relaxed) {
        // 1. Serve the network until the frame is due: inputs arrive and
        //    on_ws_message queues them; newcomers get their welcome.
        let tick = pacer.wait(&mut server).map_err(|e| e.to_string())?;
        server.with_context(|game: &mut Game, ctx| {
            // 2. Simulate one fixed step with this frame's inputs.
            game.step(tick, dt);
            // 3. Queue the snapshot for every player (serialized and framed once).
            ctx.broadcast_json(&game.snapshot(), None).expect("a snapshot is JSON");
        });
        // 4. Send it now, not at the next frame's first tick.
        server.flush().map_err(|e| e.to_string())?;
    }
    server.stop().map_err(|e| e.to_string())?; // every player gets 1001
    Ok(std::mem::take(server.handler_mut()))
}

// --- design B: a network thread, fed through the ServerHandle --------------------

/// What the network thread tells the simulation.
enum Event {
    Join(Channel),
    Input(Channel, Input),
    Leave(Channel),
}

/// The network thread's application: it checks inputs, welcomes and kicks,
/// and forwards the rest to the simulation.
struct Relay {
    events: mpsc::Sender<Event>,
}

impl HvWebServer for Relay {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/game");
    }
    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        ctx.send_json(ch, &Welcome { id: ch }).expect("a welcome is JSON");
        let _ = self.events.send(Event::Join(ch));
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        match serde_json::from_str::<Input>(msg) {
            Ok(input) => {
                let _ = self.events.send(Event::Input(ch, input));
            }
            Err(e) => ctx.close(ch, 4000, &format!("bad input: {e}")).expect("4000 is valid"),
        }
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, _close: &CloseInfo) {
        let _ = self.events.send(Event::Leave(ch));
    }
}

/// Design B. The simulation runs on the calling thread; the server on a
/// thread of its own.
fn run_threaded(
    addr: SocketAddr,
    hz: u32,
    config: ServerConfig,
    stop: &AtomicBool,
    on_listen: Box<dyn FnOnce(SocketAddr)>,
) -> Result<Game, String> {
    let (events_tx, events) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel::<Result<(ServerHandle, SocketAddr), String>>();
    let net = thread::spawn(move || {
        let mut server = Server::with_config(Relay { events: events_tx }, config);
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
    let mut pacer = FramePacer::new(hz);
    let dt = pacer.period().as_secs_f32();
    while !stop.load(Ordering::Relaxed) {
        // No server on this thread to serve while waiting: just sleep.
        let (due, tick) = pacer.next_frame(Instant::now());
        thread::sleep(due.saturating_duration_since(Instant::now()));
        for event in events.try_iter() {
            match event {
                Event::Join(ch) => game.join(ch),
                Event::Input(ch, input) => game.inputs.push((ch, input)),
                Event::Leave(ch) => game.leave(ch),
            }
        }
        game.step(tick, dt);
        // Only the players the simulation knows get the snapshot.
        let players: Vec<Channel> = game.players.keys().copied().collect();
        let json = serde_json::to_vec(&game.snapshot()).expect("a snapshot is JSON");
        handle
            .broadcast_to(players, json, Opcode::Text)
            .map_err(|e| e.to_string())?;
    }
    handle.stop().map_err(|e| e.to_string())?; // every player gets 1001
    net.join().map_err(|_| "network thread panicked")?;
    Ok(game)
}

// --- the selftest's bot players --------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Role {
    /// Steers along +x, stopping and going every 5 snapshots.
    #[default]
    Right,
    /// Steers along -y, likewise.
    Down,
    /// Sends nothing (its client still answers pings): closed as idle.
    Silent,
    /// Sends the old chapter's `move 1 0`: closed as bad input.
    Bad,
}

#[derive(Default)]
struct Bot {
    role: Role,
    id: Option<Channel>,
    /// (tick, own x, own y) of every snapshot after the welcome.
    seen: Vec<(u64, f32, f32)>,
    /// Snapshots that arrived before the welcome (must be none).
    early: usize,
    seq: u32,
    /// The input in flight: its seq, and the tick of the snapshot it answered.
    pending: Option<(u32, u64)>,
    /// Snapshots from an input's send to the first that acknowledged it.
    latencies: Vec<u64>,
    pings: usize,
    close: Option<CloseInfo>,
}

impl Bot {
    fn steer(&mut self, ctx: &mut ClientContext<'_>, tick: u64) {
        let go = (tick / 5).is_multiple_of(2);
        let (dx, dy) = match (self.role, go) {
            (Role::Right, true) => (1.0, 0.0),
            (Role::Down, true) => (0.0, -1.0),
            _ => (0.0, 0.0),
        };
        self.seq += 1;
        let input = Input { seq: self.seq, dx, dy };
        ctx.send(&serde_json::to_string(&input).expect("an input is JSON"));
        self.pending = Some((self.seq, tick));
    }
}

impl HvWebSocketClient for Bot {
    fn on_message(&mut self, ctx: &mut ClientContext<'_>, msg: &str) {
        if let Ok(welcome) = serde_json::from_str::<Welcome>(msg) {
            self.id = Some(welcome.id);
            if self.role == Role::Bad {
                ctx.send("move 1 0");
            }
            return;
        }
        let Ok(snapshot) = serde_json::from_str::<Snapshot>(msg) else {
            return;
        };
        let Some(id) = self.id else {
            self.early += 1;
            return;
        };
        let Some(me) = snapshot.players.iter().find(|p| p.id == id) else {
            return;
        };
        self.seen.push((snapshot.tick, me.x, me.y));
        if let Some((seq, sent_at)) = self.pending {
            if me.ack >= seq {
                self.latencies.push(snapshot.tick - sent_at);
                self.pending = None;
            }
        }
        // A new input every 5 snapshots, answering this one.
        if matches!(self.role, Role::Right | Role::Down) && snapshot.tick % 5 == 0 && self.pending.is_none() {
            self.steer(ctx, snapshot.tick);
        }
    }
    fn on_ping(&mut self, _ctx: &mut ClientContext<'_>, _payload: &[u8]) {
        self.pings += 1;
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some(close.clone());
    }
}

/// Snapshots each steering bot must see before the selftest sends SIGTERM.
const FRAMES: usize = 90;

/// Four bots on one thread. Once the steering bots have seen `FRAMES`
/// snapshots and the others were closed, SIGTERM to this process (which
/// the game loop turns into a graceful stop); then pumps until every bot
/// is closed (15 s at most).
fn run_bots(url: String) -> Result<Vec<Bot>, String> {
    let roles = [Role::Right, Role::Down, Role::Silent, Role::Bad];
    let mut bots: Vec<WebSocketClient<Bot>> = roles
        .into_iter()
        .map(|role| WebSocketClient::new(Bot { role, ..Bot::default() }))
        .collect();
    for bot in &mut bots {
        bot.init(&url).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut signalled = false;
    while bots.iter().any(|b| b.handler().close.is_none()) {
        let done = bots.iter().all(|b| match b.handler().role {
            Role::Right | Role::Down => b.handler().seen.len() >= FRAMES,
            _ => b.handler().close.is_some(),
        });
        if !signalled && (done || Instant::now() > deadline) {
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).map_err(|e| e.to_string())?;
            signalled = true;
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            return Err("bots: the server never closed them all".into());
        }
        for bot in &mut bots {
            bot.process_event_que_timeout(Duration::from_millis(1));
        }
    }
    Ok(bots.into_iter().map(|mut b| std::mem::take(b.handler_mut())).collect())
}

type Runner = fn(SocketAddr, u32, ServerConfig, &AtomicBool, Box<dyn FnOnce(SocketAddr)>) -> Result<Game, String>;

fn check_design(label: &str, run: Runner, hz: u32, stop: &AtomicBool) -> Result<(), String> {
    stop.store(false, Ordering::Relaxed);
    let (url_tx, url_rx) = mpsc::channel();
    let bots = thread::spawn(move || {
        let url: String = url_rx.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
        run_bots(url)
    });
    let started = Instant::now();
    let config = game_config(Duration::from_millis(600));
    let on_listen = Box::new(move |addr| {
        let _ = url_tx.send(format!("ws://{addr}/game"));
    });
    let game = run(([127, 0, 0, 1], 0).into(), hz, config, stop, on_listen)?;
    let elapsed = started.elapsed();
    let bots = bots.join().map_err(|_| "bot thread panicked")??;

    let rate = game.tick as f64 / elapsed.as_secs_f64();
    println!("{label}: {} frames in {elapsed:.2?} ({rate:.1} Hz)", game.tick);
    if rate < 0.8 * f64::from(hz) || rate > 1.05 * f64::from(hz) {
        return Err(format!("{label}: ran at {rate:.1} Hz, wanted {hz}"));
    }
    for bot in &bots {
        let role = bot.role;
        let close = bot.close.as_ref().ok_or(format!("{label}: {role:?} never closed"))?;
        let closed = format!("closed {} {:?}", close.code, close.reason);
        match role {
            Role::Silent => {
                println!("{label}: Silent answered {} pings, {closed}", bot.pings);
                if close.code != 4001 || close.reason != "idle" || bot.pings == 0 {
                    return Err(format!(
                        "{label}: Silent {closed} after {} pings; wanted 4001 idle",
                        bot.pings
                    ));
                }
                continue;
            }
            Role::Bad => {
                println!("{label}: Bad sent \"move 1 0\", {closed}");
                if close.code != 4000 || !close.reason.starts_with("bad input: ") {
                    return Err(format!("{label}: Bad {closed}; wanted 4000 bad input"));
                }
                continue;
            }
            Role::Right | Role::Down => {}
        }
        let (first, last) = match (bot.seen.first(), bot.seen.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return Err(format!("{label}: {role:?} got no snapshot")),
        };
        let mut latencies = bot.latencies.clone();
        latencies.sort_unstable();
        let median = latencies.get(latencies.len() / 2).copied().unwrap_or(u64::MAX);
        let next = latencies.iter().filter(|&&l| l == 1).count();
        println!(
            "{label}: {role:?} got {} snapshots (ticks {}..={}), moved ({:.1},{:.1}) -> ({:.1},{:.1}), \
             {next} of {} inputs in the next snapshot, {closed}",
            bot.seen.len(),
            first.0,
            last.0,
            first.1,
            first.2,
            last.1,
            last.2,
            latencies.len(),
        );
        // Every frame after the welcome reached the player, in order.
        let consecutive = bot.seen.windows(2).all(|w| w[1].0 == w[0].0 + 1);
        if !consecutive || bot.early != 0 || bot.seen.len() < FRAMES {
            return Err(format!(
                "{label}: {role:?} frames not one per step: {} snapshots, {} early",
                bot.seen.len(),
                bot.early
            ));
        }
        // Its inputs moved its own dot, and only along that axis.
        let moved = (last.1 - first.1, last.2 - first.2);
        let ok = match role {
            Role::Right => moved.0 > 5.0 && moved.1 == 0.0,
            _ => moved.1 < -5.0 && moved.0 == 0.0,
        };
        if !ok {
            return Err(format!("{label}: {role:?} moved {moved:?}"));
        }
        // An input sent on snapshot T is applied in frame T + 1: the
        // frame reads before it steps. (The median, so that a loaded
        // machine's late packet does not fail the test.)
        if latencies.len() < 5 || median != 1 {
            return Err(format!(
                "{label}: {role:?} inputs acknowledged after {latencies:?} snapshots; wanted mostly 1"
            ));
        }
        if close.code != 1001 {
            return Err(format!("{label}: {role:?} {closed}, wanted 1001"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut selftest = false;
    let mut threaded = false;
    let mut port = 8080u16;
    let mut hz = 60u32;
    let mut idle_secs = 10u32;
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
            "--idle-secs" => value("--idle-secs").map(|v| idle_secs = v.max(1)),
            _ => Err(format!("unknown argument {arg:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("{e}; usage: tutorial03_game_loop --selftest | [--port N] [--hz N] [--idle-secs N] [--threaded]");
            return ExitCode::from(2);
        }
    }

    // Ctrl-C and SIGTERM set `stop`; the loop sees it at its next frame and
    // stops the server, so every player gets 1001 rather than a dropped
    // connection.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("tutorial03: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }

    let result = if selftest {
        check_design("A game loop", run_game_loop, hz, &stop)
            .and_then(|()| check_design("B threaded", run_threaded, hz, &stop))
            .map(|()| println!("tutorial03: OK"))
    } else {
        let addr = ([0, 0, 0, 0], port).into();
        let config = game_config(Duration::from_secs(idle_secs.into()));
        let on_listen = Box::new(move |a| {
            println!("game on ws://{a}/game at {hz} Hz; send {{\"seq\":1,\"dx\":1,\"dy\":0}}; Ctrl-C to stop");
        });
        let run: Runner = if threaded { run_threaded } else { run_game_loop };
        run(addr, hz, config, &stop, on_listen).map(drop)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial03: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
