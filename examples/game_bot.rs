//! Bot players for `game_server`: N WebSocket clients pumped from one 60 Hz
//! loop, each sending random moves and checking that the server's
//! snapshots move it by exactly what it sent.
//!
//! ```text
//! cargo run --release --example game_bot -- --url ws://127.0.0.1:8080/game [--bots 20] [--secs 30]
//! ```
//!
//! They reconnect (a `Reconnect` policy: 250 ms, then doubling up to 2 s)
//! when the server goes away and comes back, and a bot that the server
//! closed with 4000-4999 (kicked, idle) stays out: that is the policy's
//! default `retry_if`.
//!
//! One line per bot event on stdout, `bot K EVENT key=value...`:
//!
//! ```text
//! bot 0 open id=16777216
//! bot 0 close code=1001 reason="server shutting down" clean=true by=Remote
//! bot 0 reconnecting attempt=1 delay_ms=250
//! bot 0 error connect failed: Connection refused (os error 111)
//! bot 0 mismatch tick=812 at=(3,-4) sent=(5,-4)
//! ```
//!
//! then, after `--secs`, every bot closes (1000) and prints
//! `bot K summary kind=good opens=2 snapshots=311 inputs=52 moves_seen=50 mismatches=0 missing=0 pings=0`
//! (`moves_seen`: moves that showed in a snapshot, each where it should),
//! and the process exits 0.
//!
//! For tests, the last bots can misbehave (these flags are not meant for
//! play):
//!
//! - `--bad-bots K`: K bots send one input that is not a move (an unknown
//!   field with a 200-character name, so the server's `bad input` reason
//!   is longer than a close frame holds) and expect 4000;
//! - `--silent-bots K`: K bots send nothing (their client still answers
//!   pings) and expect the server's idle close.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    ClientConfig, ClientContext, ClientError, CloseInfo, FramePacer, HvWebSocketClient, Reconnect, WebSocketClient,
};
use serde::Deserialize;

/// What the server sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerMsg {
    Welcome { id: u64 },
    Snapshot { tick: u64, players: Vec<PlayerState> },
}

#[derive(Deserialize)]
struct PlayerState {
    id: u64,
    x: i64,
    y: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Sends random moves and checks the snapshots.
    Good,
    /// Sends one input that is not a move.
    Bad,
    /// Sends nothing.
    Silent,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Good => "good",
            Kind::Bad => "bad",
            Kind::Silent => "silent",
        }
    }
}

struct Bot {
    index: usize,
    kind: Kind,
    rng: u64,
    /// This connection's player id, from the welcome.
    id: Option<u64>,
    /// Where the player was in the first snapshot after the welcome; moves
    /// are sent only from then on.
    spawn: Option<(i64, i64)>,
    /// Sums of the moves sent on this connection: `sent[k]` is where the
    /// first k moves take the player, relative to `spawn`.
    sent: Vec<(i64, i64)>,
    /// How many of them the last snapshot showed applied.
    applied: usize,
    /// Moves seen applied, over every connection.
    moves_seen: u64,
    /// The bad bot's garbage is out.
    garbage_sent: bool,
    opens: u32,
    snapshots: u64,
    inputs: u64,
    mismatches: u64,
    /// Snapshots after the welcome that did not list this player.
    missing: u64,
    pings: u64,
}

impl Bot {
    fn new(index: usize, kind: Kind, seed: u64) -> Bot {
        Bot {
            index,
            kind,
            rng: seed | 1,
            id: None,
            spawn: None,
            sent: Vec::new(),
            applied: 0,
            moves_seen: 0,
            garbage_sent: false,
            opens: 0,
            snapshots: 0,
            inputs: 0,
            mismatches: 0,
            missing: 0,
            pings: 0,
        }
    }

    /// xorshift64: random enough for moves, and no dependency.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A move of -3..=3 on each axis, never (0, 0), so every move shows.
    fn random_move(&mut self) -> (i32, i32) {
        loop {
            let dx = (self.random() % 7) as i32 - 3;
            let dy = (self.random() % 7) as i32 - 3;
            if (dx, dy) != (0, 0) {
                return (dx, dy);
            }
        }
    }

    /// What this bot sends this frame, if anything.
    fn next_input(&mut self, frame: u64) -> Option<String> {
        match self.kind {
            Kind::Good if self.spawn.is_some() && frame.is_multiple_of(6) => {
                let (dx, dy) = self.random_move();
                let last = *self.sent.last().expect("sent starts with (0, 0)");
                self.sent.push((last.0 + i64::from(dx), last.1 + i64::from(dy)));
                self.inputs += 1;
                Some(format!(r#"{{"dx":{dx},"dy":{dy}}}"#))
            }
            Kind::Bad if self.id.is_some() && !self.garbage_sent => {
                self.garbage_sent = true;
                Some(format!(r#"{{"dx":1,"dy":1,"{}":true}}"#, "jump".repeat(50)))
            }
            _ => None,
        }
    }

    /// Checks a snapshot against the moves sent: it must show the player
    /// where some prefix of them (no shorter than last time) takes it.
    fn check(&mut self, tick: u64, players: &[PlayerState]) {
        let Some(id) = self.id else { return };
        let Some(me) = players.iter().find(|p| p.id == id) else {
            self.missing += 1;
            return;
        };
        let Some(spawn) = self.spawn else {
            self.spawn = Some((me.x, me.y));
            self.sent = vec![(0, 0)];
            self.applied = 0;
            return;
        };
        let at = (me.x - spawn.0, me.y - spawn.1);
        match self.sent[self.applied..].iter().position(|&s| s == at) {
            Some(k) => {
                self.applied += k;
                self.moves_seen += k as u64;
            }
            None => {
                self.mismatches += 1;
                let sent = self.sent.last().copied().unwrap_or_default();
                println!("bot {} mismatch tick={tick} at={at:?} sent={sent:?}", self.index);
            }
        }
    }
}

impl HvWebSocketClient for Bot {
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        match serde_json::from_str::<ServerMsg>(msg) {
            Ok(ServerMsg::Welcome { id }) => {
                // A new connection, a new player: start over.
                self.id = Some(id);
                self.spawn = None;
                self.sent.clear();
                self.applied = 0;
                self.opens += 1;
                println!("bot {} open id={id}", self.index);
            }
            Ok(ServerMsg::Snapshot { tick, players }) => {
                self.snapshots += 1;
                self.check(tick, &players);
            }
            Err(e) => println!("bot {} error unexpected message ({e}): {msg}", self.index),
        }
    }

    fn on_ping(&mut self, _ctx: &mut ClientContext<'_>, _payload: &[u8]) {
        self.pings += 1; // the pong is already queued
    }

    fn on_close(&mut self, close: &CloseInfo) {
        self.id = None;
        println!(
            "bot {} close code={} reason={:?} clean={} by={:?}",
            self.index, close.code, close.reason, close.was_clean, close.initiator
        );
    }

    fn on_reconnecting(&mut self, attempt: u32, delay: Duration) {
        println!(
            "bot {} reconnecting attempt={attempt} delay_ms={}",
            self.index,
            delay.as_millis()
        );
    }

    fn on_error(&mut self, error: &ClientError) {
        println!("bot {} error {error}", self.index);
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("game_bot: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: game_bot --url ws://HOST:PORT/game [--bots N] [--secs S] [--bad-bots K] [--silent-bots K]";
    let mut url: Option<String> = None;
    let mut bots = 4usize;
    let mut secs = 10.0f64;
    let mut bad = 0usize;
    let mut silent = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value; {usage}"));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--bots" => bots = value()?.parse()?,
            "--secs" => secs = value()?.parse()?,
            "--bad-bots" => bad = value()?.parse()?,
            "--silent-bots" => silent = value()?.parse()?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    let url = url.ok_or(usage)?;
    let run_for = Duration::try_from_secs_f64(secs)?;
    if bad + silent > bots {
        return Err(format!("--bad-bots {bad} and --silent-bots {silent} make more than --bots {bots}").into());
    }

    // Back soon after a restart; the default retry_if keeps kicked (1008,
    // 4000-4999) bots out.
    let config = ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            ..Reconnect::default()
        }),
        ..ClientConfig::default()
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut clients: Vec<WebSocketClient<Bot>> = (0..bots)
        .map(|i| {
            let kind = if i >= bots - silent {
                Kind::Silent
            } else if i >= bots - silent - bad {
                Kind::Bad
            } else {
                Kind::Good
            };
            let bot = Bot::new(i, kind, seed.wrapping_mul(i as u64 + 1).wrapping_add(0x9E37_79B9));
            WebSocketClient::with_config(bot, config.clone())
        })
        .collect();
    for client in &mut clients {
        client.init(&url)?;
    }

    // One loop for every bot at 60 Hz. Each client has its own poller, so
    // the loop cannot sleep in all of them at once: it sleeps until the
    // frame, then pumps each without waiting.
    let mut pacer = FramePacer::new(60);
    let end = Instant::now() + run_for;
    while Instant::now() < end {
        let (due, frame) = pacer.next_frame(Instant::now());
        thread::sleep(due.saturating_duration_since(Instant::now()));
        for client in &mut clients {
            if client.is_connected() {
                if let Some(input) = client.handler_mut().next_input(frame) {
                    client.send(&input);
                }
            }
            client.process_event_que(); // writes the input, reads, runs callbacks
        }
    }

    // Leave cleanly (1000), waiting at most a second for the answers.
    for client in &mut clients {
        client.close();
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while clients.iter().any(|c| c.is_connected()) && Instant::now() < deadline {
        for client in &mut clients {
            client.process_event_que_timeout(Duration::from_millis(5));
        }
    }
    for client in &clients {
        let b = client.handler();
        println!(
            "bot {} summary kind={} opens={} snapshots={} inputs={} moves_seen={} mismatches={} missing={} pings={}",
            b.index,
            b.kind.name(),
            b.opens,
            b.snapshots,
            b.inputs,
            b.moves_seen,
            b.mismatches,
            b.missing,
            b.pings
        );
    }
    Ok(())
}
