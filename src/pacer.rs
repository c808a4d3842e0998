//! A fixed-rate frame loop: the wait between frames is spent serving the
//! network (the server's `tick_until`, the client's pump), and a loop that
//! falls behind skips frames instead of bursting to catch up.

use std::time::{Duration, Instant};

use crate::client::{HvWebSocketClient, WebSocketClient};
use crate::error::ServerError;
use crate::handler::HvWebServer;
use crate::server::Server;

/// Runs a game loop at a fixed rate.
///
/// Each [`FramePacer::wait`] ticks the server until the next frame is due
/// (reading inputs and running callbacks as they arrive, sleeping in the
/// poller in between), then returns the frame's number. A frame that ran
/// long makes the next start at once; one that ran more than a whole period
/// late skips the missed frames (counted in [`FramePacer::skipped`]) rather
/// than run them back to back.
///
/// ```no_run
/// use hvws::{FramePacer, HvWebServer, Server};
/// # struct Game;
/// # impl HvWebServer for Game {}
/// # impl Game { fn step(&mut self, _: &mut hvws::Context<'_>) {} }
/// let mut server = Server::new(Game);
/// server.init(8080)?;
/// server.start()?;
/// let mut pacer = FramePacer::new(30); // 30 frames a second
/// while server.is_running() {
///     pacer.wait(&mut server)?;           // inputs arrive, callbacks run
///     server.with_context(|game, ctx| game.step(ctx)); // simulate, queue the snapshot
///     server.flush()?;                    // the snapshot leaves now
/// }
/// # Ok::<(), hvws::ServerError>(())
/// ```
#[derive(Clone, Debug)]
pub struct FramePacer {
    period: Duration,
    next: Option<Instant>,
    frame: u64,
    skipped: u64,
}

impl FramePacer {
    /// A pacer for `hz` frames a second (at least 1).
    pub fn new(hz: u32) -> FramePacer {
        FramePacer::with_period(Duration::from_secs(1) / hz.max(1))
    }

    /// A pacer with frames `period` apart (at least 1 ms).
    pub fn with_period(period: Duration) -> FramePacer {
        FramePacer {
            period: period.max(Duration::from_millis(1)),
            next: None,
            frame: 0,
            skipped: 0,
        }
    }

    /// The time between frames.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Frames skipped because the loop fell more than a period behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// When the next frame is due (the first: now), and its number. Moves
    /// the schedule on; `now` is the caller's clock.
    pub fn next_frame(&mut self, now: Instant) -> (Instant, u64) {
        let due = match self.next {
            None => now,
            Some(next) if now > next + self.period => {
                // More than a period late: start afresh from now.
                let missed = (now - next).as_nanos() / self.period.as_nanos().max(1);
                self.skipped += missed as u64;
                now
            }
            Some(next) => next,
        };
        self.next = Some(due + self.period);
        self.frame += 1;
        (due, self.frame)
    }

    /// Ticks `server` until the next frame is due; returns its number
    /// (1, 2, ...). Returns early if the server stops.
    pub fn wait<H: HvWebServer>(&mut self, server: &mut Server<H>) -> Result<u64, ServerError> {
        let (due, frame) = self.next_frame(Instant::now());
        server.tick_until(due)?;
        Ok(frame)
    }

    /// Pumps `client` until the next frame is due; returns its number.
    pub fn wait_client<H: HvWebSocketClient>(&mut self, client: &mut WebSocketClient<H>) -> u64 {
        let (due, frame) = self.next_frame(Instant::now());
        loop {
            let now = Instant::now();
            if now >= due {
                client.process_event_que();
                return frame;
            }
            client.process_event_que_timeout(due - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_a_period_apart_and_a_late_loop_skips() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut p = FramePacer::with_period(Duration::from_millis(10));
        assert_eq!(p.next_frame(ms(0)), (ms(0), 1));
        // A frame that took 3 ms: the next is still 10 ms after the last.
        assert_eq!(p.next_frame(ms(3)), (ms(10), 2));
        // One that took 15 ms (late by 5): the next starts at once, on the
        // old schedule.
        assert_eq!(p.next_frame(ms(25)), (ms(20), 3));
        assert_eq!(p.next_frame(ms(31)), (ms(30), 4));
        // A stall of 100 ms: missed frames are skipped, not burst.
        assert_eq!(p.next_frame(ms(140)), (ms(140), 5));
        assert_eq!(p.skipped(), 10);
        assert_eq!(p.next_frame(ms(141)), (ms(150), 6));
        assert_eq!(FramePacer::new(30).period(), Duration::from_nanos(33_333_333));
        assert_eq!(FramePacer::new(0).period(), Duration::from_secs(1));
    }
}
