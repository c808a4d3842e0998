//! game: the game-loop benchmark. C clients on `/game` (hvws-echo
//! `--game-hz`, peer-tokio `--game-hz`), each sending a small JSON text
//! input (64 bytes by default) R times a second, spread evenly: input n
//! goes out at `n / (R * C)` seconds from client `n mod C`, so the sends
//! are one every 1/(R*C) s (at the poller's 1 ms granularity), each one
//! `write`. The server runs a fixed-rate frame loop and sends every
//! client one S-byte binary snapshot per frame, whose first 8 bytes are
//! the frame number (little-endian; one per frame the server ran).
//!
//! Measured, over the window:
//! * server CPU % of one core (utime + stime from `/proc/PID/stat`), and
//!   its user and kernel shares;
//! * snapshots per second per client: the mean, and the least and most
//!   any client got ("degrades evenly": every client gets the same frames);
//! * input-to-next-snapshot latency: from writing an input to having read
//!   the whole of the first snapshot that arrives after it (every input
//!   sent before a snapshot counts once, against that snapshot). It is
//!   not checked that the snapshot reflects the input: an input that
//!   reaches the server after a frame's tick goes in the next one. For a
//!   fixed-rate server it includes the wait for the next frame, uniform
//!   over 0..1/HZ (8.3 ms on average at 60 Hz);
//! * snapshots lost: gaps in the frame numbers a client received;
//! * the server's frame tick time p50/p99/max and lateness p99, from its
//!   `GET /frame-stats` (reset when the window opens, read when it closes);
//! * inputs sent, and inputs the server counted, per second;
//! * this process's own CPU %, to show when the load generator is the
//!   limit.
//!
//! `--flood` adds one client that writes inputs as fast as the socket
//! takes them; it is not counted among the C (its snapshots are read and
//! dropped), and its inputs sent per second are reported.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::hist::Hist;
use crate::procfs;
use crate::ws::{self, masked_frame, TEXT};
use crate::{Common, Metrics, Window};

/// The game workload's parameters.
#[derive(Debug, Clone)]
pub struct Game {
    /// Well-behaved clients.
    pub clients: usize,
    /// Inputs per second per client.
    pub rate: f64,
    /// Bytes of each input (JSON text).
    pub input: usize,
    /// Bytes of each snapshot the server sends (checked).
    pub snapshot: usize,
    /// One more client that sends inputs as fast as it can.
    pub flood: bool,
}

/// A server frame parsed as it streams in: only the header and the first
/// 8 payload bytes are kept.
#[derive(Debug, Default)]
struct Frames {
    hdr: [u8; 14],
    hlen: usize,
    /// In the payload, with this many bytes still to come.
    payload: Option<u64>,
    len: u64,
    first: [u8; 8],
}

impl Frames {
    /// Feeds bytes; calls `f(opcode, payload length, first 8 bytes as u64)`
    /// for every complete frame.
    fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(u8, u64, u64)) -> Result<(), String> {
        while !data.is_empty() {
            match self.payload {
                None => {
                    let need = if self.hlen < 2 {
                        2
                    } else {
                        match self.hdr[1] & 0x7f {
                            126 => 4,
                            127 => 10,
                            _ => 2,
                        }
                    };
                    let k = (need - self.hlen).min(data.len());
                    self.hdr[self.hlen..self.hlen + k].copy_from_slice(&data[..k]);
                    self.hlen += k;
                    data = &data[k..];
                    if self.hlen < need || (self.hlen == 2 && need == 2 && self.hdr[1] & 0x7f >= 126) {
                        continue;
                    }
                    if self.hdr[1] & 0x80 != 0 {
                        return Err("the server sent a masked frame".into());
                    }
                    self.len = match self.hdr[1] & 0x7f {
                        126 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
                        127 => u64::from_be_bytes(self.hdr[2..10].try_into().expect("8 bytes")),
                        n => u64::from(n),
                    };
                    self.first = [0; 8];
                    self.payload = Some(self.len);
                }
                Some(left) => {
                    let k = (left as usize).min(data.len());
                    let done = (self.len - left) as usize;
                    if done < 8 {
                        let c = (8 - done).min(k);
                        self.first[done..done + c].copy_from_slice(&data[..c]);
                    }
                    self.payload = Some(left - k as u64);
                    data = &data[k..];
                }
            }
            if self.payload == Some(0) {
                f(self.hdr[0] & 0x0f, self.len, u64::from_le_bytes(self.first));
                self.payload = None;
                self.hlen = 0;
            }
        }
        Ok(())
    }
}

struct Client {
    sock: crate::sock::Sock,
    frames: Frames,
    /// Inputs not yet written in full (the socket was full).
    out: Vec<u8>,
    /// Send times (ns) of inputs no snapshot has followed yet.
    pending: Vec<u64>,
    /// Snapshots in the window.
    got: u64,
    /// The last frame number received.
    last: u64,
}

/// The input: JSON text of exactly `size` bytes (at least 40).
fn input_json(size: usize) -> Vec<u8> {
    let head = br#"{"type":"input","dx":1,"dy":-1,"pad":""#;
    let mut v = head.to_vec();
    v.extend(std::iter::repeat_n(b'x', size.saturating_sub(head.len() + 2)));
    v.extend_from_slice(b"\"}");
    v
}

/// `GET /frame-stats[?reset]` from the server, as `key -> value`.
fn frame_stats(addr: SocketAddr, reset: bool) -> Result<HashMap<String, f64>, String> {
    let err = |e: std::io::Error| format!("GET /frame-stats: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
    let q = if reset { "?reset" } else { "" };
    write!(
        s,
        "GET /frame-stats{q} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .map_err(err)?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the body is complete (Content-Length) or the server closes.
    loop {
        let n = s.read(&mut buf).map_err(err)?;
        resp.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&resp);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            if !head.starts_with("HTTP/1.1 200") {
                return Err(format!("GET /frame-stats: {}", head.lines().next().unwrap_or_default()));
            }
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(usize::MAX);
            if body.len() >= len || n == 0 {
                return Ok(body
                    .lines()
                    .filter_map(|l| {
                        let (k, v) = l.split_once('=')?;
                        Some((k.to_string(), v.trim().parse().ok()?))
                    })
                    .collect());
            }
        }
        if n == 0 {
            return Err("GET /frame-stats: no answer".into());
        }
    }
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Game) -> Result<Metrics, String> {
    if o.clients == 0 || o.rate <= 0.0 || o.input < 40 || o.snapshot < 8 {
        return Err("game needs --clients >= 1, --rate > 0, --input >= 40, --snapshot >= 8".into());
    }
    if c.tls.is_some() {
        return Err("game is plain ws only".into());
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let total = o.clients + usize::from(o.flood);
    // The flooder last: token C.
    // The server sends snapshots as soon as a connection is open: they may
    // come with the 101.
    let socks = ws::open_many_keep(&mut poll, c.addr, &c.tls, "/game", total, 0, 128)?;
    std::thread::sleep(Duration::from_millis(200));
    let mut template = Vec::new();
    masked_frame(&mut template, TEXT, &input_json(o.input));
    let flood_buf: Vec<u8> = template.repeat((64 << 10) / template.len());
    let mut flood_off = 0usize;
    let mut flood_bytes = 0u64;
    let mut clients: Vec<Client> = socks
        .into_iter()
        .map(|(sock, first)| {
            let mut frames = Frames::default();
            frames.feed(&first, |_, _, _| {})?;
            Ok(Client {
                sock,
                frames,
                out: Vec::new(),
                pending: Vec::new(),
                got: 0,
                last: 0,
            })
        })
        .collect::<Result<_, String>>()?;
    let flooder = o.flood.then(|| clients.pop().expect("opened"));
    let mut flooder = flooder.map(|f| {
        let frames = f.frames;
        (f.sock, frames)
    });
    let step_ns = 1e9 / (o.rate * o.clients as f64);
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let t0 = win.now_ns();
    let mut next_input: u64 = 0;
    let (mut sent, mut lost) = (0u64, 0u64);
    let mut flood_at_start = 0u64;
    let mut opened: Option<(Instant, (f64, f64), f64)> = None;
    let pid = c.pid;
    let me = std::process::id();
    loop {
        // The inputs that are due, each in its own write.
        let now = win.now_ns();
        let measuring = win.measuring();
        while t0 + (next_input as f64 * step_ns) as u64 <= now {
            let cl = &mut clients[(next_input % o.clients as u64) as usize];
            if cl.out.is_empty() {
                let n = cl.sock.write_some(&template).map_err(|e| format!("write: {e}"))?;
                cl.out.extend_from_slice(&template[n..]);
            } else {
                cl.out.extend_from_slice(&template);
            }
            cl.pending.push(now);
            next_input += 1;
            if measuring {
                sent += 1;
            }
        }
        if let Some((f, _)) = flooder.as_mut() {
            let n = f
                .write_some(&flood_buf[flood_off..])
                .map_err(|e| format!("write: {e}"))?;
            flood_off = (flood_off + n) % flood_buf.len();
            flood_bytes += n as u64;
        }
        if win.tick()? {
            break;
        }
        if win.measuring() && opened.is_none() {
            // The window opened: the server's frame statistics start now.
            frame_stats(c.addr, true)?;
            let split = pid.map(procfs::cpu_split).transpose()?.unwrap_or((0.0, 0.0));
            opened = Some((Instant::now(), split, procfs::cpu_seconds(me)?));
            flood_at_start = flood_bytes;
        }
        let wait = (t0 + ((next_input as f64) * step_ns) as u64).saturating_sub(win.now_ns());
        let wait = Duration::from_nanos(wait).min(Duration::from_millis(5));
        let wait = if flooder.is_some() { Duration::ZERO } else { wait };
        poll.poll(&mut events, Some(wait)).map_err(|e| e.to_string())?;
        let measuring = win.measuring();
        for ev in events.iter() {
            let i = ev.token().0;
            if i == o.clients {
                let (f, frames) = flooder.as_mut().expect("the flooder's token");
                let mut err = Ok(());
                let alive = f
                    .read_chunks(&mut buf, |chunk| {
                        if err.is_ok() {
                            err = frames.feed(chunk, |_, _, _| {});
                        }
                    })
                    .map_err(|e| format!("read: {e}"))?;
                err?;
                if !alive {
                    return Err("server closed the flooder".into());
                }
                continue;
            }
            let cl = &mut clients[i];
            if ev.is_writable() && !cl.out.is_empty() {
                let n = cl.sock.write_some(&cl.out).map_err(|e| format!("write: {e}"))?;
                cl.out.drain(..n);
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let mut err = Ok(());
            let mut bad = None;
            let Client {
                sock,
                frames,
                pending,
                got,
                last,
                ..
            } = cl;
            let alive = sock
                .read_chunks(&mut buf, |chunk| {
                    if err.is_err() {
                        return;
                    }
                    err = frames.feed(chunk, |opcode, len, frame| {
                        if opcode != 2 || len != o.snapshot as u64 {
                            // Pings and pongs are the protocol's; any other
                            // message is not a snapshot.
                            if opcode != 9 && opcode != 10 {
                                bad = Some(format!(
                                    "not a {}-byte snapshot: opcode {opcode}, {len} bytes",
                                    o.snapshot
                                ));
                            }
                            return;
                        }
                        let t = win.now_ns();
                        if measuring {
                            *got += 1;
                            for &s in pending.iter() {
                                hist.record(t.saturating_sub(s));
                            }
                            if *last != 0 && frame > *last + 1 {
                                lost += frame - *last - 1;
                            }
                        }
                        pending.clear();
                        *last = frame;
                    });
                })
                .map_err(|e| format!("read: {e}"))?;
            err?;
            if let Some(e) = bad {
                return Err(e);
            }
            if !alive {
                return Err("server closed a game connection".into());
            }
        }
    }
    let secs = win.elapsed();
    let (at, (u0, s0), me0) = opened.ok_or("the window never opened")?;
    let stats = frame_stats(c.addr, false)?;
    let stats_secs = at.elapsed().as_secs_f64();
    let client_cpu = procfs::cpu_seconds(me)? - me0;
    let per_client: Vec<f64> = clients.iter().map(|cl| cl.got as f64 / secs).collect();
    let mut m = Metrics::default();
    if let (Some(pid), Some(cpu)) = (pid, win.cpu()) {
        let (u1, s1) = procfs::cpu_split(pid)?;
        m.push("cpu_pct", cpu * 100.0 / secs);
        m.push("user_pct", (u1 - u0) * 100.0 / stats_secs);
        m.push("sys_pct", (s1 - s0) * 100.0 / stats_secs);
    }
    m.push(
        "snapshots_per_s",
        per_client.iter().sum::<f64>() / per_client.len() as f64,
    );
    m.push(
        "snapshots_per_s_min",
        per_client.iter().copied().fold(f64::MAX, f64::min),
    );
    m.push("snapshots_per_s_max", per_client.iter().copied().fold(0.0, f64::max));
    m.push("latency_p50_us", hist.quantile_us(0.5));
    m.push("latency_p99_us", hist.quantile_us(0.99));
    let stat = |k: &str| stats.get(k).copied().unwrap_or(f64::NAN);
    m.push("tick_p50_us", stat("tick_p50_us"));
    m.push("tick_p99_us", stat("tick_p99_us"));
    m.push("tick_max_us", stat("tick_max_us"));
    m.push("late_p99_us", stat("late_p99_us"));
    // hvws-echo's parts of the frame: its tick() and its broadcast + flush.
    for (k, name) in [
        ("read_p50_us", "tick_read_p50_us"),
        ("read_p99_us", "tick_read_p99_us"),
        ("send_p50_us", "tick_send_p50_us"),
        ("send_p99_us", "tick_send_p99_us"),
        ("drain_p50_us", "frame_drain_p50_us"),
        ("drain_p99_us", "frame_drain_p99_us"),
        ("undrained", "frames_undrained"),
    ] {
        if let Some(&v) = stats.get(k) {
            m.push(name, v);
        }
    }
    m.push("frames_per_s", stat("frames") / stats_secs);
    m.push("lost", lost as f64);
    m.push("inputs_per_s", sent as f64 / secs);
    m.push("server_inputs_per_s", stat("inputs") / stats_secs);
    if o.flood {
        let frames = (flood_bytes - flood_at_start) / template.len() as u64;
        m.push("flood_inputs_per_s", frames as f64 / secs);
    }
    m.push("client_cpu_pct", client_cpu * 100.0 / stats_secs);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_pieces() {
        // A 1024-byte binary (16-bit length) numbered 7, a ping, a
        // 3-byte text.
        let mut wire = vec![0x82, 126, 4, 0];
        wire.extend_from_slice(&7u64.to_le_bytes());
        wire.extend(std::iter::repeat_n(b'a', 1016));
        wire.extend([0x89, 0, 0x81, 3, b'a', b'b', b'c']);
        for step in [1, 2, 3, 5, 9, wire.len()] {
            let mut f = Frames::default();
            let mut got = Vec::new();
            for c in wire.chunks(step) {
                f.feed(c, |op, len, first| got.push((op, len, first))).unwrap();
            }
            let abc = u64::from_le_bytes([b'a', b'b', b'c', 0, 0, 0, 0, 0]);
            assert_eq!(got, vec![(2, 1024, 7), (9, 0, 0), (1, 3, abc)], "step {step}");
        }
    }

    #[test]
    fn input_is_json_of_the_size_asked() {
        for size in [40, 64, 100] {
            let v = input_json(size);
            assert_eq!(v.len(), size);
            assert!(std::str::from_utf8(&v).unwrap().ends_with("\"}"));
        }
    }
}
