//! A small authoritative game server: players on one WebSocket path, JSON
//! inputs, a JSON snapshot of the world to every player every frame, at a
//! fixed rate.
//!
//! ```text
//! cargo run --release --features json --example game_server -- --port 8080 [--hz 30] [--idle-secs 10] [--host 127.0.0.1]
//! cargo run --release --example game_bot -- --url ws://127.0.0.1:8080/game --bots 20 --secs 30
//! curl http://127.0.0.1:8080/state
//! ```
//!
//! The protocol (checked from outside by `tests/game/run.sh`):
//!
//! - WebSocket `/game`. On open the player gets `{"type":"welcome","id":ID}`,
//!   ID being its channel's stable id (`Channel::id()`).
//! - Every frame every player gets
//!   `{"type":"snapshot","tick":T,"players":[{"id":ID,"x":X,"y":Y},...]}`.
//! - A player sends `{"dx":DX,"dy":DY}` (integers) to move by (DX, DY); the
//!   move shows in the snapshot of the frame it arrived in. Anything else
//!   closes the player with 4000 and `bad input: <what serde said>`.
//! - A player who sends no input for `--idle-secs` is closed with 4001
//!   `idle`, even though its client answers the server's pings.
//! - `GET /state` answers the latest snapshot (`application/json`),
//!   `GET /health` answers `ok`.
//! - SIGINT or SIGTERM: every player gets 1001 (`Server::stop`), then the
//!   process exits 0. A second Ctrl-C exits at once.
//!
//! The frame, with the `FramePacer`: wait for the frame while serving the
//! network (inputs arrive, the callbacks queue them), step the world with
//! them, queue the snapshot, flush it. So an input that arrives between two
//! frames is in the very next snapshot.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hvws::{
    Channel, CloseInfo, Context, FramePacer, HttpResponse, HvWebServer, IdleActivity, Routes, Server, ServerConfig,
};
use serde::{Deserialize, Serialize};

/// What a player sends: a move, in whole units. Unknown fields are bad
/// input too, so a typo is kicked rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    dx: i32,
    dy: i32,
}

/// `{"type":"welcome","id":ID}`: `Channel` serializes as its `id()`
/// (feature `json`).
#[derive(Serialize)]
#[serde(tag = "type", rename = "welcome")]
struct Welcome {
    id: Channel,
}

#[derive(Clone, Debug, Serialize)]
struct PlayerState {
    id: Channel,
    x: i64,
    y: i64,
}

/// `{"type":"snapshot","tick":T,"players":[...]}`.
#[derive(Debug, Default, Serialize)]
#[serde(tag = "type", rename = "snapshot")]
struct Snapshot {
    tick: u64,
    players: Vec<PlayerState>,
}

#[derive(Default)]
struct Game {
    /// Positions by channel; a BTreeMap so snapshots list players in a
    /// stable order (oldest slot first).
    players: BTreeMap<Channel, (i64, i64)>,
    /// Inputs that arrived since the last step, in arrival order.
    inputs: Vec<(Channel, Input)>,
    /// The last snapshot sent, for `GET /state`.
    latest: Snapshot,
}

impl Game {
    /// One frame of simulation: this frame's inputs, then the snapshot.
    fn step(&mut self, tick: u64) {
        for (ch, input) in self.inputs.drain(..) {
            // A player kicked or gone since its input arrived is skipped.
            if let Some(pos) = self.players.get_mut(&ch) {
                pos.0 = pos.0.saturating_add(i64::from(input.dx));
                pos.1 = pos.1.saturating_add(i64::from(input.dy));
            }
        }
        self.latest.tick = tick;
        self.latest.players.clear();
        let players = self.players.iter().map(|(&id, &(x, y))| PlayerState { id, x, y });
        self.latest.players.extend(players);
    }

    /// Closes `ch` with 4000; the reason may be long (a serde error with
    /// the player's text in it): hvws cuts it to fit a close frame.
    fn kick(&mut self, ctx: &mut Context<'_>, ch: Channel, reason: &str) {
        self.players.remove(&ch);
        ctx.close(ch, 4000, reason).expect("4000 is a code a server may send");
    }
}

impl HvWebServer for Game {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/game");
        routes.get("/state", |game: &mut Game, _, _| {
            HttpResponse::json_text(serde_json::to_string(&game.latest).expect("a snapshot is JSON"))
        });
        routes.get("/health", |_, _, _| HttpResponse::text("ok"));
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.players.insert(ch, (0, 0));
        ctx.send_json(ch, &Welcome { id: ch }).expect("a welcome is JSON");
        println!("player {} joined ({} playing)", ch.id(), self.players.len());
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        if !self.players.contains_key(&ch) {
            return; // kicked this frame; its close is on the way
        }
        match serde_json::from_str::<Input>(msg) {
            Ok(input) => self.inputs.push((ch, input)),
            Err(e) => self.kick(ctx, ch, &format!("bad input: {e}")),
        }
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, _data: &[u8]) {
        self.kick(ctx, ch, "bad input: binary message, expected JSON text");
    }

    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        self.players.remove(&ch);
        println!(
            "player {} left: {} {:?} ({:?}, clean: {})",
            ch.id(),
            close.code,
            close.reason,
            close.initiator,
            close.was_clean
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: game_server --port N [--hz 30] [--idle-secs 10] [--host 127.0.0.1]";
    let mut port: Option<u16> = None;
    let mut hz = 30u32;
    let mut idle_secs = 10.0f64;
    let mut host = String::from("127.0.0.1");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value; {usage}"));
        match arg.as_str() {
            "--port" => port = Some(value()?.parse()?),
            "--hz" => hz = value()?.parse::<u32>()?.max(1),
            "--idle-secs" => idle_secs = value()?.parse()?,
            "--host" => host = value()?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    let port = port.ok_or(usage)?;
    let addr: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;
    let idle = Duration::try_from_secs_f64(idle_secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(format!("--idle-secs {idle_secs}: give a number of seconds above 0"))?;

    // SIGINT and SIGTERM set `stop`; the loop sees it at the next frame and
    // stops the server gracefully. A second Ctrl-C while stopping exits at
    // once (the conditional handler runs first and sees the flag set).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }

    let config = ServerConfig {
        // Game-level idle: only the player's own messages count, so a
        // client that answers pings but stopped playing is closed, with the
        // game's code (which the client's reconnect policy does not retry).
        idle_timeout: Some(idle),
        idle_activity: IdleActivity::DataMessages,
        idle_close_code: 4001,
        idle_close_reason: "idle".into(),
        // Pings still go out, to keep NAT and proxies open and find dead
        // links; with DataMessages their pongs do not keep a player.
        ping_interval: Some(idle / 4),
        // Inputs are a few bytes.
        max_message_size: 4 << 10,
        max_frame_size: 4 << 10,
        ..ServerConfig::default()
    };
    let mut server = Server::with_config(Game::default(), config);
    server.init_addr(addr)?;
    server.start()?;
    let local = server.local_addr().unwrap_or(addr);
    println!("game_server: ws://{local}/game at {hz} Hz, idle after {idle:?}; Ctrl-C to stop");

    let mut pacer = FramePacer::new(hz);
    while !stop.load(Ordering::Relaxed) {
        // 1. Until the frame is due, serve the network: inputs arrive and
        //    on_ws_message queues them; newcomers are welcomed.
        let tick = pacer.wait(&mut server)?;
        // 2. Step the world with this frame's inputs, 3. queue the snapshot
        //    for every player (serialized and framed once).
        server.with_context(|game, ctx| {
            game.step(tick);
            ctx.broadcast_json(&game.latest, None).expect("a snapshot is JSON");
        });
        // 4. Send it now rather than at the next frame's first tick.
        server.flush()?;
    }
    println!(
        "game_server: stopping; {} players get 1001 ({} frames skipped)",
        server.channel_count(),
        pacer.skipped()
    );
    server.stop()?;
    println!("game_server: stopped");
    Ok(())
}
