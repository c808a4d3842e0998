//! topics: broadcast over topics. R receivers spread over T topics
//! (receiver i on topic `t{i % T}`, through `/pub?topic=t{i % T}`, where
//! the server subscribes the connection to that topic and publishes every
//! message it sends there, the sender included: hvws-echo's `/pub`). With
//! N > 0 senders, N more connections (sender s on topic `t{s % T}`) send
//! every message, each from one of them picked at random; with N = 0
//! every receiver is a sender too, so a message goes to a random topic
//! and reaches that topic's subscribers only.
//!
//! `--remote ADDR` puts the receivers on another server (hvws-echo
//! `--redis URL` on the same Redis as `--addr`'s), the senders on
//! `--addr`: the fan-out time is then the latency across processes.
//!
//! `--broadcast` sends the same load to `/broadcast` instead (T must be
//! 1): with `--topics 1 --receivers R --senders 1` the two deliver the
//! same messages to the same R + 1 connections, so their CPU per delivery
//! compares publish with broadcast directly.
//!
//! As in `broadcast`, messages carry a sequence number and their send
//! time, at most W are undelivered (not yet received by all of their
//! topic's subscribers) at any time, every delivery is checked to belong
//! to the receiver's topic, and what is missing after a drain period
//! counts as lost. With `--syscalls` the server's writes (`sendto`, ...)
//! and ticks (`epoll_wait`) in the window are counted instead of its CPU.

use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::broadcast::{get_stamp, put_stamp, stamp_len};
use crate::hist::Hist;
use crate::ws::{self, header_len, masked_frame, BINARY, MASK, TEXT};
use crate::{Common, Metrics, Window};

/// The topics workload's parameters.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Topics the receivers are spread over.
    pub topics: usize,
    /// Receiving connections.
    pub receivers: usize,
    /// Sending connections (they receive their topic's messages too); 0:
    /// the receivers send.
    pub senders: usize,
    /// Payload bytes per message (at least 16; 32 for text).
    pub size: usize,
    /// Most messages not yet delivered everywhere.
    pub window: usize,
    /// Text frames (sequence and time in hex) instead of binary.
    pub text: bool,
    /// `/broadcast` instead of `/pub?topic=` (one topic).
    pub broadcast: bool,
    /// Seed of the sender choice.
    pub seed: u64,
    /// Where the receivers connect, if not to `--addr` (the senders'):
    /// another server on the same Redis, for the latency across processes.
    pub remote: Option<std::net::SocketAddr>,
}

/// xorshift64*: a sender choice that is the same in every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % n
    }
}

struct Conn {
    sock: crate::sock::Sock,
    topic: u32,
    /// Bytes received of the frame in progress.
    off: usize,
    /// The frame's header and stamp, as they arrive.
    head: [u8; 48],
    /// Frames queued to send, not yet written.
    out: Vec<u8>,
    /// In `dirty`.
    dirty: bool,
}

/// One message in the window: its topic, the deliveries it needs, and the
/// deliveries so far.
#[derive(Clone, Copy, Default)]
struct Slot {
    topic: u32,
    expected: u32,
    got: u32,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Topics) -> Result<Metrics, String> {
    let stamp = stamp_len(o.text);
    if o.size < stamp || o.window == 0 || o.topics == 0 || o.receivers + o.senders == 0 {
        return Err(format!(
            "topics needs --size >= {stamp}, --window >= 1, --topics >= 1 and a connection"
        ));
    }
    if o.broadcast && o.topics != 1 {
        return Err("--broadcast has one topic: --topics 1".into());
    }
    let total = o.receivers + o.senders;
    let topic_of = |i: usize| -> usize {
        if i < o.receivers {
            i % o.topics
        } else {
            (i - o.receivers) % o.topics
        }
    };
    let mut members = vec![0u32; o.topics];
    for i in 0..total {
        members[topic_of(i)] += 1;
    }
    // Who sends: the senders, or (N = 0) everyone.
    let pool = if o.senders > 0 { o.receivers..total } else { 0..total };
    let path_of = |i: usize| -> String {
        if o.broadcast {
            "/broadcast".into()
        } else {
            format!("/pub?topic=t{}", topic_of(i))
        }
    };
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let opened = match o.remote {
        None => ws::open_many_paths(&mut poll, c.addr, &c.tls, &path_of, None, total, 0, 128)?,
        Some(remote) => {
            if o.senders == 0 {
                return Err("--remote needs --senders >= 1 (they connect to --addr)".into());
            }
            // Receivers on the remote server, senders on this one.
            let mut opened = ws::open_many_paths(&mut poll, remote, &c.tls, &path_of, None, o.receivers, 0, 128)?;
            let sender_path = |i: usize| path_of(o.receivers + i);
            opened.extend(ws::open_many_paths(
                &mut poll,
                c.addr,
                &c.tls,
                &sender_path,
                None,
                o.senders,
                o.receivers,
                128,
            )?);
            opened
        }
    };
    // Let the server finish registering the last connections.
    std::thread::sleep(Duration::from_millis(200));
    let b0 = if o.text { TEXT } else { BINARY };
    let mut template = Vec::new();
    let pad: Vec<u8> = (0..o.size).map(|i| b'a' + (i % 26) as u8).collect();
    masked_frame(&mut template, b0, &pad);
    let mhdr = header_len(o.size, true);
    let rhdr = header_len(o.size, false);
    let rflen = rhdr + o.size;
    let headlen = rhdr + stamp;

    let mut conns: Vec<Conn> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (sock, _))| Conn {
            sock,
            topic: topic_of(i) as u32,
            off: 0,
            head: [0; 48],
            out: Vec::new(),
            dirty: false,
        })
        .collect();
    let mut dirty: Vec<usize> = Vec::new();
    let cap = o.window.next_power_of_two();
    let mask = cap as u64 - 1;
    let mut slots = vec![Slot::default(); cap];
    let (mut low, mut next): (u64, u64) = (0, 0);
    let mut rng = Rng(o.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let mut deliveries: u64 = 0;
    let mut stamp_buf = [0u8; 32];
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() {
            // Fill the window, each message from a sender picked at random.
            let now = win.now_ns();
            while next < low + o.window as u64 {
                let from = pool.start + rng.below(pool.len());
                let conn = &mut conns[from];
                let topic = conn.topic;
                slots[(next & mask) as usize] = Slot {
                    topic,
                    expected: members[topic as usize],
                    got: 0,
                };
                let at = conn.out.len();
                conn.out.extend_from_slice(&template);
                put_stamp(&mut stamp_buf, next, now, o.text);
                for (i, b) in stamp_buf[..stamp].iter().enumerate() {
                    conn.out[at + mhdr + i] = b ^ MASK[i % 4];
                }
                if !conn.dirty {
                    conn.dirty = true;
                    dirty.push(from);
                }
                next += 1;
            }
        }
        // Each sender's queued frames in one write; what the socket did not
        // take waits for the next round.
        let mut write_err = None;
        dirty.retain(|&i| {
            let conn = &mut conns[i];
            match conn.sock.write_some(&conn.out) {
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) => write_err = Some(format!("write: {e}")),
            }
            conn.dirty = !conn.out.is_empty();
            conn.dirty
        });
        if let Some(e) = write_err {
            return Err(e);
        }
        if drain_until.is_none() && win.tick()? {
            drain_until = Some(Instant::now() + Duration::from_secs(3));
        }
        if let Some(t) = drain_until {
            if low == next || Instant::now() >= t {
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        let now = win.now_ns();
        let measuring = win.measuring();
        for ev in events.iter() {
            let i = ev.token().0;
            let conn = &mut conns[i];
            if ev.is_writable() {
                conn.sock.flush().map_err(|e| format!("write: {e}"))?;
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            let mut err = None;
            let (off, head, topic) = (&mut conn.off, &mut conn.head, conn.topic);
            let alive = conn
                .sock
                .read_chunks(&mut buf, |chunk| {
                    let mut pos = 0;
                    while pos < chunk.len() {
                        let take = (rflen - *off).min(chunk.len() - pos);
                        if *off < headlen {
                            let k = (headlen - *off).min(take);
                            head[*off..*off + k].copy_from_slice(&chunk[pos..pos + k]);
                        }
                        *off += take;
                        pos += take;
                        if *off < rflen {
                            continue;
                        }
                        *off = 0;
                        let Some((seq, t)) = get_stamp(&head[rhdr..headlen], o.text).filter(|_| head[0] == b0) else {
                            err = Some("a delivery is not a frame we sent".to_string());
                            return;
                        };
                        if seq < low || seq >= next {
                            err = Some(format!("sequence {seq} outside the window {low}..{next}"));
                            return;
                        }
                        let slot = &mut slots[(seq & mask) as usize];
                        if slot.topic != topic {
                            err = Some(format!(
                                "message {seq} to topic t{} reached a subscriber of t{topic}",
                                slot.topic
                            ));
                            return;
                        }
                        slot.got += 1;
                        if measuring {
                            deliveries += 1;
                            hist.record(now.saturating_sub(t));
                        }
                    }
                })
                .map_err(|e| format!("read: {e}"))?;
            if let Some(e) = err {
                return Err(e);
            }
            if !alive {
                return Err("server closed a topics connection".into());
            }
        }
        while low < next {
            let slot = &mut slots[(low & mask) as usize];
            if slot.got < slot.expected {
                break;
            }
            *slot = Slot::default();
            low += 1;
        }
    }
    let lost: u64 = (low..next)
        .map(|s| {
            let slot = slots[(s & mask) as usize];
            u64::from(slot.expected - slot.got)
        })
        .sum();
    let secs = win.elapsed();
    let mut m = Metrics::default();
    m.push("deliveries_per_s", deliveries as f64 / secs);
    m.push("fanout_p50_us", hist.quantile_us(0.5));
    m.push("fanout_p99_us", hist.quantile_us(0.99));
    m.push("lost", lost as f64);
    if let Some(cpu) = win.cpu() {
        m.push("cpu_ns_per_delivery", cpu * 1e9 / deliveries.max(1) as f64);
    }
    if let Some(sys) = win.syscalls() {
        let d = deliveries.max(1) as f64;
        m.push("writes_per_delivery", sys.writes as f64 / d);
        m.push("writes_per_tick", sys.writes as f64 / sys.polls.max(1) as f64);
        m.push("deliveries_per_tick", d / sys.polls.max(1) as f64);
        m.push("reads_per_tick", sys.reads as f64 / sys.polls.max(1) as f64);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_roundtrip() {
        for text in [false, true] {
            let mut b = [0u8; 32];
            put_stamp(&mut b, 123_456, u64::MAX - 7, text);
            assert_eq!(get_stamp(&b, text), Some((123_456, u64::MAX - 7)));
        }
    }

    #[test]
    fn sender_choice_covers_the_pool() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 | 1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
