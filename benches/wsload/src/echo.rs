//! echo: C connections on `/echo`, each keeping K messages of S bytes in
//! flight. Every echo that comes back is answered by a new message, queued
//! and written with the connection's other queued messages in one `write`.
//! Replies are counted by length (the server echoes our frame unfragmented);
//! only the first byte of each reply frame is checked.

use std::collections::VecDeque;
use std::time::Duration;

use mio::{Events, Poll};

use crate::hist::Hist;
use crate::ws::{self, header_len, masked_frame, BINARY, TEXT};
use crate::{Common, Metrics, Window};

/// The echo workload's parameters.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Connections.
    pub conns: usize,
    /// Messages in flight per connection.
    pub inflight: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Binary frames instead of text.
    pub binary: bool,
    /// Game-state snapshots instead (`json_*.rs`).
    pub json: bool,
    /// Whether permessage-deflate is offered, and must be agreed (with `json`).
    pub pmd: crate::json::Pmd,
}

struct Conn {
    sock: crate::sock::Sock,
    /// Queued bytes not yet written: a suffix of back-to-back frames.
    unsent: usize,
    /// Where in a frame the next unsent byte is.
    send_off: usize,
    /// Bytes received of the reply frame in progress.
    rx_off: usize,
    /// Queue times (ns since start) of messages not yet answered, in order.
    times: VecDeque<u64>,
    dirty: bool,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Echo) -> Result<Metrics, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let socks = ws::open_many(&mut poll, c.addr, &c.tls, "/echo", o.conns, 0, 128)?;
    let payload: Vec<u8> = if o.binary {
        (0..o.size).map(|i| (i % 251) as u8).collect()
    } else {
        (0..o.size).map(|i| b'a' + (i % 26) as u8).collect()
    };
    let b0 = if o.binary { BINARY } else { TEXT };
    let mut frame = Vec::new();
    masked_frame(&mut frame, b0, &payload);
    let flen = frame.len();
    // K+1 frames back to back: any queued suffix of up to K frames is a slice.
    let wire = frame.repeat(o.inflight + 1);
    let rflen = header_len(o.size, false) + o.size;

    let mut conns: Vec<Conn> = socks
        .into_iter()
        .map(|sock| Conn {
            sock,
            unsent: o.inflight * flen,
            send_off: 0,
            rx_off: 0,
            times: VecDeque::with_capacity(o.inflight),
            dirty: true,
        })
        .collect();
    let mut dirty: Vec<usize> = (0..conns.len()).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut win = Window::new(c);
    let mut replies: u64 = 0;
    let now = win.now_ns();
    for conn in &mut conns {
        conn.times.extend(std::iter::repeat_n(now, o.inflight));
    }
    loop {
        for &i in &dirty {
            let conn = &mut conns[i];
            conn.dirty = false;
            let n = conn
                .sock
                .write_some(&wire[conn.send_off..conn.send_off + conn.unsent])
                .map_err(|e| format!("write: {e}"))?;
            conn.unsent -= n;
            conn.send_off = (conn.send_off + n) % flen;
        }
        dirty.clear();
        if win.tick()? {
            break;
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
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let mut done = 0usize;
                let mut bad = false;
                let rx_off = &mut conn.rx_off;
                let alive = conn
                    .sock
                    .read_chunks(&mut buf, |chunk| {
                        let mut pos = 0;
                        while pos < chunk.len() {
                            if *rx_off == 0 && chunk[pos] != b0 {
                                bad = true;
                            }
                            let take = (rflen - *rx_off).min(chunk.len() - pos);
                            *rx_off += take;
                            pos += take;
                            if *rx_off == rflen {
                                *rx_off = 0;
                                done += 1;
                            }
                        }
                    })
                    .map_err(|e| format!("read: {e}"))?;
                if bad {
                    return Err("reply is not the frame we sent".into());
                }
                if !alive {
                    return Err("server closed an echo connection".into());
                }
                for _ in 0..done {
                    let sent = conn.times.pop_front().ok_or("more replies than messages sent")?;
                    if measuring {
                        hist.record(now.saturating_sub(sent));
                    }
                    conn.times.push_back(now);
                }
                if measuring {
                    replies += done as u64;
                }
                conn.unsent += done * flen;
            }
            if conn.unsent > 0 && !conn.dirty {
                conn.dirty = true;
                dirty.push(i);
            }
        }
    }
    let secs = win.elapsed();
    let mut m = Metrics::default();
    m.push("msg_per_s", replies as f64 / secs);
    m.push("mb_per_s", (replies * o.size as u64) as f64 / secs / 1e6);
    m.push("rtt_p50_us", hist.quantile_us(0.5));
    m.push("rtt_p99_us", hist.quantile_us(0.99));
    m.push("rtt_p999_us", hist.quantile_us(0.999));
    if let Some(cpu) = win.cpu() {
        m.push("cpu_ns_per_msg", cpu * 1e9 / replies.max(1) as f64);
    }
    Ok(m)
}
