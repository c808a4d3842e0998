//! broadcast: C receivers and N senders on `/broadcast`, where the server
//! sends every message to every `/broadcast` connection (senders included).
//! Messages carry a sequence number and their send time; at most W messages
//! are undelivered (not yet received by every connection) at any time, and
//! each delivery's latency is recorded. After the window, sending stops and
//! what is still missing after a drain period counts as lost.

use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::hist::Hist;
use crate::ws::{self, header_len, masked_frame, BINARY, MASK, TEXT};
use crate::{Common, Metrics, Window};

/// The broadcast workload's parameters.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// Receiving connections.
    pub receivers: usize,
    /// Sending connections (they receive too).
    pub senders: usize,
    /// Payload bytes per message (at least 16; 32 for text).
    pub size: usize,
    /// Most messages not yet delivered everywhere.
    pub window: usize,
    /// Text frames (sequence and time in hex) instead of binary.
    pub text: bool,
    /// Game-state snapshots instead (`json_*.rs`).
    pub json: bool,
    /// Whether permessage-deflate is offered, and must be agreed (with `json`).
    pub pmd: crate::json::Pmd,
}

/// Bytes of payload that carry the sequence number and send time.
pub(crate) fn stamp_len(text: bool) -> usize {
    if text {
        32
    } else {
        16
    }
}

pub(crate) fn put_stamp(dst: &mut [u8], seq: u64, t: u64, text: bool) {
    if text {
        dst[..32].copy_from_slice(format!("{seq:016x}{t:016x}").as_bytes());
    } else {
        dst[..8].copy_from_slice(&seq.to_le_bytes());
        dst[8..16].copy_from_slice(&t.to_le_bytes());
    }
}

pub(crate) fn get_stamp(src: &[u8], text: bool) -> Option<(u64, u64)> {
    if text {
        let s = std::str::from_utf8(&src[..32]).ok()?;
        Some((
            u64::from_str_radix(&s[..16], 16).ok()?,
            u64::from_str_radix(&s[16..], 16).ok()?,
        ))
    } else {
        Some((
            u64::from_le_bytes(src[..8].try_into().ok()?),
            u64::from_le_bytes(src[8..16].try_into().ok()?),
        ))
    }
}

struct Rx {
    sock: crate::sock::Sock,
    /// Bytes received of the frame in progress.
    off: usize,
    /// The frame's header and stamp, as they arrive.
    head: [u8; 48],
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Broadcast) -> Result<Metrics, String> {
    let stamp = stamp_len(o.text);
    if o.size < stamp || o.senders == 0 || o.window == 0 {
        return Err(format!(
            "broadcast needs --size >= {stamp}, --senders >= 1, --window >= 1"
        ));
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let total = o.receivers + o.senders;
    // Senders last: tokens receivers.. are the senders.
    let socks = ws::open_many(&mut poll, c.addr, &c.tls, "/broadcast", total, 0, 128)?;
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

    let mut conns: Vec<Rx> = socks
        .into_iter()
        .map(|sock| Rx {
            sock,
            off: 0,
            head: [0; 48],
        })
        .collect();
    let mut outbox: Vec<Vec<u8>> = vec![Vec::new(); o.senders];
    let cap = o.window.next_power_of_two();
    let mask = cap as u64 - 1;
    let mut counts = vec![0u32; cap];
    let (mut low, mut next): (u64, u64) = (0, 0);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let mut deliveries: u64 = 0;
    let mut stamp_buf = [0u8; 32];
    let mut drain_until: Option<Instant> = None;
    loop {
        if drain_until.is_none() {
            // Fill the window, round-robin over the senders.
            let now = win.now_ns();
            while next < low + o.window as u64 {
                let out = &mut outbox[(next % o.senders as u64) as usize];
                let at = out.len();
                out.extend_from_slice(&template);
                put_stamp(&mut stamp_buf, next, now, o.text);
                for (i, b) in stamp_buf[..stamp].iter().enumerate() {
                    out[at + mhdr + i] = b ^ MASK[i % 4];
                }
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
            let mut err = None;
            let (off, head) = (&mut conn.off, &mut conn.head);
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
                        counts[(seq & mask) as usize] += 1;
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
    if let Some(cpu) = win.cpu() {
        m.push("cpu_ns_per_delivery", cpu * 1e9 / deliveries.max(1) as f64);
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
}
