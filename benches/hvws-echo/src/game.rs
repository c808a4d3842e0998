//! `--game-hz HZ --snapshot S`: the game-loop benchmark's server
//! (`wsload game`). Clients on `/game` send small inputs; the loop runs at
//! HZ frames a second, and each frame ticks the server, steps a (trivial)
//! simulation, broadcasts one S-byte binary snapshot to every channel and
//! flushes it, as `examples/game_server.rs` does:
//!
//! * `--game-loop pacer` (the default): between frames the server is
//!   ticked until the next frame is due ([`FramePacer::next_frame`] and
//!   the loop of [`Server::tick_until`], written out so that the frame's
//!   own tick can be timed), so inputs are read as they arrive.
//! * `--game-loop sleep`: the thread sleeps until the next frame is due,
//!   and the frame's `tick()` reads every input that came meanwhile.
//!
//! Every WebSocket message is an input: it is counted (not parsed; the
//! peer does the same). The snapshot's first 8 bytes are the frame number (1, 2, ...,
//! one per frame run; little-endian), the next 8 the inputs counted so far,
//! the rest padding.
//!
//! The frame's tick time is measured from the start of its `tick()` to the
//! end of its `flush()` (`read`: the `tick()`, `send`: the broadcast and
//! the flush); its lateness from when it was due to that start. With
//! `--write-budget N` (`TickBudget::writes`) a flush writes at most N
//! connections and the pacer loop's ticks write the rest; `drain` is then
//! from the frame's start until its last snapshot was written
//! (`Context::unflushed` back to 0), and `undrained` counts frames whose
//! snapshots were not all written when the next frame began (they leave
//! with the next one's, in one write per client).
//! `--ticks-per-frame N` makes the frame call `tick()` N times (default 1):
//! each tick takes at most 1024 readiness events from the poller.
//! `GET /frame-stats` answers, as `key=value` lines, the frames since the
//! last `GET /frame-stats?reset`, the frames the pacer skipped, the inputs
//! counted, and the tick time and lateness p50/p99/max in microseconds.

use std::time::{Duration, Instant};

use hvws::{FramePacer, HttpResponse, Server};

use crate::EchoServer;

/// How the loop waits for the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Ticking the server until the frame is due.
    Pacer,
    /// Sleeping; the frame's own tick reads what came meanwhile.
    Sleep,
}

/// The game's state and the frame statistics.
#[derive(Debug, Default)]
pub struct Game {
    /// Inputs counted since the last reset.
    inputs: u64,
    /// Inputs counted in all (folded into the snapshot).
    inputs_total: u64,
    /// Per frame since the last reset: tick time and lateness, ns.
    tick_ns: Vec<u64>,
    late_ns: Vec<u64>,
    /// The frame's parts: its `tick()`, and the broadcast and `flush()`.
    read_ns: Vec<u64>,
    send_ns: Vec<u64>,
    /// From the frame's start until its last snapshot was written.
    drain_ns: Vec<u64>,
    /// Frames not all written when the next began.
    undrained: u64,
    /// Frames the pacer had skipped at the last reset, and now.
    skipped_base: u64,
    skipped: u64,
}

impl Game {
    /// One input arrived.
    pub fn input(&mut self) {
        self.inputs += 1;
        self.inputs_total += 1;
    }

    /// Writes frame `frame`'s snapshot into `snap`.
    fn step(&self, frame: u64, snap: &mut [u8]) {
        snap[..8].copy_from_slice(&frame.to_le_bytes());
        snap[8..16].copy_from_slice(&self.inputs_total.to_le_bytes());
    }

    /// `GET /frame-stats[?reset]`.
    pub fn stats(&mut self, reset: bool) -> HttpResponse {
        let q = |v: &mut Vec<u64>, p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_unstable();
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1] as f64 / 1000.0
        };
        let text = format!(
            "frames={}\nskipped={}\ninputs={}\ntick_p50_us={}\ntick_p99_us={}\ntick_max_us={}\nlate_p50_us={}\nlate_p99_us={}\nlate_max_us={}\nread_p50_us={}\nread_p99_us={}\nsend_p50_us={}\nsend_p99_us={}\ndrain_p50_us={}\ndrain_p99_us={}\nundrained={}\n",
            self.tick_ns.len(),
            self.skipped - self.skipped_base,
            self.inputs,
            q(&mut self.tick_ns, 0.5),
            q(&mut self.tick_ns, 0.99),
            q(&mut self.tick_ns, 1.0),
            q(&mut self.late_ns, 0.5),
            q(&mut self.late_ns, 0.99),
            q(&mut self.late_ns, 1.0),
            q(&mut self.read_ns, 0.5),
            q(&mut self.read_ns, 0.99),
            q(&mut self.send_ns, 0.5),
            q(&mut self.send_ns, 0.99),
            q(&mut self.drain_ns, 0.5),
            q(&mut self.drain_ns, 0.99),
            self.undrained,
        );
        if reset {
            self.tick_ns.clear();
            self.late_ns.clear();
            self.read_ns.clear();
            self.send_ns.clear();
            self.drain_ns.clear();
            self.undrained = 0;
            self.inputs = 0;
            self.skipped_base = self.skipped;
        }
        HttpResponse::text(text)
    }
}

/// Runs the game loop at `hz` until the server stops.
pub fn run(
    server: &mut Server<EchoServer>,
    hz: u32,
    size: usize,
    wait: Wait,
    ticks: usize,
) -> Result<(), hvws::ServerError> {
    let mut pacer = FramePacer::new(hz);
    let mut snap = vec![0u8; size.max(16)];
    for (i, b) in snap.iter_mut().enumerate().skip(16) {
        *b = b'a' + (i % 26) as u8;
    }
    // The last frame's start, while its snapshots are still being written.
    let mut draining: Option<Instant> = None;
    while server.is_running() {
        let (due, frame) = pacer.next_frame(Instant::now());
        // Until the frame is due: serve the network, or sleep.
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            match wait {
                Wait::Pacer => server.tick_timeout(due - now)?,
                Wait::Sleep => std::thread::sleep(due - now),
            }
            if let Some(start) = draining {
                if server.context().unflushed() == 0 {
                    draining = None;
                    let game = server.handler_mut().game.as_mut().expect("game mode");
                    game.drain_ns.push(nanos(start.elapsed()));
                }
            }
        }
        // The frame: read what is left, step, queue the snapshot, send it.
        let start = Instant::now();
        for _ in 0..ticks {
            server.tick()?;
        }
        let read = start.elapsed();
        server.with_context(|h, ctx| {
            let game = h.game.as_mut().expect("game mode");
            game.step(frame, &mut snap);
            ctx.broadcast_binary(&snap, None);
        });
        server.flush()?;
        let took = start.elapsed();
        let unflushed = server.context().unflushed();
        let game = server.handler_mut().game.as_mut().expect("game mode");
        if draining.is_some() {
            game.undrained += 1;
        }
        draining = None;
        if unflushed == 0 {
            game.drain_ns.push(nanos(took));
        } else {
            draining = Some(start);
        }
        game.tick_ns.push(nanos(took));
        game.late_ns.push(nanos(start.saturating_duration_since(due)));
        game.read_ns.push(nanos(read));
        game.send_ns.push(nanos(took - read));
        game.skipped = pacer.skipped();
    }
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}
