//! broadcast --json: the broadcast workload with game-state snapshots
//! (64 consecutive ticks, in turn) as text messages, compressed with
//! permessage-deflate under `--deflate`. The sequence number and send time
//! go in the snapshot's stamp; every delivery is checked against the
//! message sent with its sequence number ([`crate::json`]). Besides
//! broadcast's metrics: bytes on the wire per delivery (server to client,
//! frame headers included), text bytes per delivery, and the share of
//! deliveries that came compressed.

use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::broadcast::Broadcast;
use crate::hist::Hist;
use crate::json::{self, Framer, Opener, WireCount};
use crate::pmd::Inflater;
use crate::ws::{self, FrameReader};
use crate::{snapshot, Common, Metrics, Window};

/// Consecutive ticks sent in turn.
const TICKS: usize = 64;

struct Rx {
    sock: crate::sock::Sock,
    reader: FrameReader,
    /// Its decompressor, if the server keeps its context.
    inflater: Option<Inflater>,
}

/// A message in the window: its text, and (servers without context
/// takeover) its compressed form once one delivery has been checked.
#[derive(Default)]
struct Sent {
    text: Vec<u8>,
    known: Option<Vec<u8>>,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Broadcast) -> Result<Metrics, String> {
    if o.senders == 0 || o.window == 0 {
        return Err("broadcast needs --senders >= 1, --window >= 1".into());
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let total = o.receivers + o.senders;
    // Senders last: tokens receivers.. are the senders.
    let opened = ws::open_many_ext(&mut poll, c.addr, &c.tls, "/broadcast", o.pmd.offer(), total, 0, 128)?;
    let answers: Vec<Option<String>> = opened.iter().map(|(_, a)| a.clone()).collect();
    let params = json::agree(&answers, o.pmd)?;
    // Let the server finish registering the last connections.
    std::thread::sleep(Duration::from_millis(200));
    let ticks = snapshot::ticks(TICKS);
    let mut framer = Framer::new(params);
    let mut opener = Opener::new(params);

    let mut conns: Vec<Rx> = opened
        .into_iter()
        .map(|(sock, _)| Rx {
            sock,
            reader: FrameReader::default(),
            inflater: None,
        })
        .collect();
    let mut outbox: Vec<Vec<u8>> = vec![Vec::new(); o.senders];
    let cap = o.window.next_power_of_two();
    let mask = cap as u64 - 1;
    let mut counts = vec![0u32; cap];
    let mut sent: Vec<Sent> = (0..cap).map(|_| Sent::default()).collect();
    let (mut low, mut next): (u64, u64) = (0, 0);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let mut deliveries: u64 = 0;
    let mut wire = WireCount::default();
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() {
            // Fill the window, round-robin over the senders.
            let now = win.now_ns();
            while next < low + o.window as u64 {
                let slot = &mut sent[(next & mask) as usize];
                slot.text.clear();
                slot.text.extend_from_slice(&ticks[(next % TICKS as u64) as usize]);
                snapshot::put_stamp(&mut slot.text, next, now);
                slot.known = None;
                framer.frame(&mut outbox[(next % o.senders as u64) as usize], &slot.text);
                next += 1;
            }
        }
        for (s, out) in outbox.iter_mut().enumerate() {
            if !out.is_empty() {
                let n = conns[o.receivers + s]
                    .sock
                    .write_some(out)
                    .map_err(|e| format!("write: {e}"))?;
                out.drain(..n);
            }
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
            let Rx { sock, reader, inflater } = conn;
            let mut err = None;
            let alive = sock
                .read_chunks(&mut buf, |chunk| {
                    if err.is_some() {
                        return;
                    }
                    let r = reader.feed(chunk, |m| {
                        // A byte-identical copy of a checked compressed message?
                        let hit = if opener.shareable() && m.compressed {
                            (low..next).find(|&s| sent[(s & mask) as usize].known.as_deref() == Some(m.payload))
                        } else {
                            None
                        };
                        let seq = match hit {
                            Some(seq) => seq,
                            None => {
                                let shareable = opener.shareable();
                                let text = opener.open(&m, inflater)?;
                                let Some((seq, _)) = snapshot::get_stamp(text.bytes()) else {
                                    return Err("a delivery is not a snapshot we sent".into());
                                };
                                if seq < low || seq >= next {
                                    return Err(format!("sequence {seq} outside the window {low}..{next}"));
                                }
                                let slot = &mut sent[(seq & mask) as usize];
                                if text.bytes() != slot.text {
                                    return Err(format!("delivery of {seq} is not what was sent"));
                                }
                                if shareable && matches!(text, json::Opened::Inflated(_)) {
                                    slot.known = Some(m.payload.to_vec());
                                }
                                seq
                            }
                        };
                        let slot = (seq & mask) as usize;
                        counts[slot] += 1;
                        if measuring {
                            let (_, t) = snapshot::get_stamp(&sent[slot].text).expect("ours");
                            deliveries += 1;
                            hist.record(now.saturating_sub(t));
                            wire.add(&m, sent[slot].text.len());
                        }
                        Ok(())
                    });
                    if let Err(e) = r {
                        err = Some(e);
                    }
                })
                .map_err(|e| format!("read: {e}"))?;
            if let Some(e) = err {
                return Err(e);
            }
            if !alive {
                return Err("server closed a broadcast connection".into());
            }
            while low < next && counts[(low & mask) as usize] as usize == total {
                counts[(low & mask) as usize] = 0;
                low += 1;
            }
        }
    }
    let lost: u64 = (low..next)
        .map(|s| (total - counts[(s & mask) as usize] as usize) as u64)
        .sum();
    let secs = win.elapsed();
    let mut m = Metrics::default();
    m.push("deliveries_per_s", deliveries as f64 / secs);
    m.push("fanout_p50_us", hist.quantile_us(0.5));
    m.push("fanout_p99_us", hist.quantile_us(0.99));
    m.push("lost", lost as f64);
    wire.push(&mut m);
    if let Some(cpu) = win.cpu() {
        m.push("cpu_ns_per_delivery", cpu * 1e9 / deliveries.max(1) as f64);
    }
    Ok(m)
}
