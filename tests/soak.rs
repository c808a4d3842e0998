//! A bounded soak: good clients chat while bad ones (slowloris, never
//! reading, garbage, abrupt disconnects mid-frame, oversized messages) come
//! and go, and the test thread ticks the server in a loop. Every good
//! client must get every echo, in order, nothing lost or duplicated.
//!
//! Ignored by a plain `cargo test`; `.ci/run` runs it with `cargo test
//! --test soak -- --ignored --nocapture`. Runs 20 s by default;
//! `HVWS_SOAK_SECS=600 cargo test --release --test soak -- --ignored
//! --nocapture` for longer. Prints the longest tick and the memory at the
//! end.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hvws::{Channel, Context, HvWebServer, Server, ServerConfig};
use tungstenite::Message;
use util::{connect, masked_frame, server_with};

struct Echo;

impl HvWebServer for Echo {
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        ctx.send_binary(ch, data);
    }
}

const GOOD: usize = 100;
const IN_FLIGHT: usize = 4;

struct Good {
    client: util::Client,
    id: usize,
    sent: u64,
    received: u64,
}

impl Good {
    /// Keeps up to IN_FLIGHT messages outstanding and checks each echo is
    /// the next one expected.
    fn drive(&mut self) {
        while self.sent - self.received < IN_FLIGHT as u64 {
            let msg = Message::text(format!("{}:{}", self.id, self.sent));
            match self.client.ws.write(msg) {
                Ok(()) => self.sent += 1,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("good client {} write failed: {e}", self.id),
            }
        }
        match self.client.ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("good client {} flush failed: {e}", self.id),
        }
        while let Some(m) = self.client.try_recv() {
            match m {
                Message::Text(t) => {
                    let expect = format!("{}:{}", self.id, self.received);
                    assert_eq!(
                        t.as_str(),
                        expect,
                        "good client {} lost, duplicated or reordered",
                        self.id
                    );
                    self.received += 1;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("good client {} got {other:?}", self.id),
            }
        }
    }
}

/// A misbehaving connection and when to give up on it.
struct Bad {
    stream: TcpStream,
    kind: Kind,
    born: Instant,
    step: usize,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Slowloris,
    NeverReads,
    Garbage,
    AbruptMidFrame,
    Oversized,
}

const KINDS: [Kind; 5] = [
    Kind::Slowloris,
    Kind::NeverReads,
    Kind::Garbage,
    Kind::AbruptMidFrame,
    Kind::Oversized,
];

const UPGRADE: &[u8] = b"GET /bad HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

impl Bad {
    fn spawn(server: &Server<Echo>, kind: Kind) -> Bad {
        let stream = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let mut bad = Bad {
            stream,
            kind,
            born: Instant::now(),
            step: 0,
        };
        let opening: Vec<u8> = match kind {
            Kind::Slowloris => b"GET /bad HTTP/1.1\r\n".to_vec(),
            Kind::Garbage => (0..512u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
            Kind::NeverReads | Kind::AbruptMidFrame | Kind::Oversized => UPGRADE.to_vec(),
        };
        let _ = bad.stream.write(&opening);
        bad
    }

    /// One step of misbehaviour; false once this one is done with.
    fn act(&mut self) -> bool {
        self.step += 1;
        let age = self.born.elapsed();
        match self.kind {
            Kind::Slowloris => {
                if self.step.is_multiple_of(50) {
                    let _ = self.stream.write(b"X: y\r\n");
                }
                age < Duration::from_secs(3)
            }
            Kind::NeverReads => {
                let frame = masked_frame(true, 0x2, &[9u8; 16 << 10]);
                let _ = self.stream.write(&frame);
                age < Duration::from_secs(3)
            }
            Kind::Garbage => age < Duration::from_millis(500),
            Kind::AbruptMidFrame => {
                if self.step == 20 {
                    let frame = masked_frame(true, 0x1, &[b'x'; 4000]);
                    let _ = self.stream.write(&frame[..1000]);
                }
                self.step < 40
            }
            Kind::Oversized => {
                if self.step == 20 {
                    let _ = self.stream.write(&masked_frame(true, 0x2, &vec![1u8; 100 << 10]));
                }
                age < Duration::from_secs(1)
            }
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "20 s soak; run by .ci/run with --ignored"]
fn soak_good_clients_lose_nothing_among_bad_ones() {
    let secs: u64 = std::env::var("HVWS_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let config = ServerConfig {
        max_message_size: 64 << 10,
        max_frame_size: 64 << 10,
        max_write_buffer: 256 << 10,
        request_timeout: Duration::from_secs(1),
        ping_interval: Some(Duration::from_millis(500)),
        idle_timeout: Some(Duration::from_secs(2)),
        close_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let mut server = server_with(Echo, config);
    let mut good: Vec<Good> = (0..GOOD)
        .map(|id| Good {
            client: connect(&mut server, "/good"),
            id,
            sent: 0,
            received: 0,
        })
        .collect();
    let mut bad: Vec<Bad> = Vec::new();
    let (mut spawned, mut ticks, mut longest) = (0usize, 0u64, Duration::ZERO);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    while Instant::now() < end {
        let t = Instant::now();
        server.tick().unwrap();
        longest = longest.max(t.elapsed());
        ticks += 1;
        for g in &mut good {
            g.drive();
        }
        if bad.len() < 60 {
            bad.push(Bad::spawn(&server, KINDS[spawned % KINDS.len()]));
            spawned += 1;
        }
        bad.retain_mut(Bad::act);
        std::thread::sleep(Duration::from_micros(300));
    }
    drop(bad);
    // Let the last echoes arrive.
    let deadline = Instant::now() + util::TIMEOUT;
    while good.iter().any(|g| g.received < g.sent) {
        assert!(Instant::now() < deadline, "good clients still waiting for echoes");
        server.tick().unwrap();
        for g in &mut good {
            g.drive_reads_only();
        }
    }
    let echoes: u64 = good.iter().map(|g| g.received).sum();
    assert!(good.iter().all(|g| g.received > 0), "every good client was served");
    println!(
        "soak: {secs} s, {ticks} ticks, longest tick {longest:?}, {echoes} echoes to {GOOD} good clients, \
         {spawned} bad connections, RSS at the end {} KiB",
        rss_kib()
    );
    server.stop().unwrap();
}

impl Good {
    fn drive_reads_only(&mut self) {
        let _ = self.client.ws.flush();
        while let Some(m) = self.client.try_recv() {
            if let Message::Text(t) = m {
                assert_eq!(t.as_str(), format!("{}:{}", self.id, self.received));
                self.received += 1;
            }
        }
    }
}
