//! echo --json: C connections on `/echo`, each keeping K game-state
//! snapshots in flight (64 consecutive ticks, in turn), compressed with
//! permessage-deflate under `--deflate`. Every reply is checked against the
//! snapshot it answers ([`crate::json`]). Besides echo's metrics: bytes on
//! the wire per reply (server to client, frame headers included), text
//! bytes per reply, and the share of replies that came compressed.

use std::collections::VecDeque;
use std::time::Duration;

use mio::{Events, Poll};

use crate::echo::Echo;
use crate::hist::Hist;
use crate::json::{self, Framer, Opener, WireCount};
use crate::pmd::Inflater;
use crate::ws::{self, FrameReader};
use crate::{snapshot, Common, Metrics, Window};

/// Consecutive ticks sent in turn.
const TICKS: usize = 64;

struct Conn {
    sock: crate::sock::Sock,
    reader: FrameReader,
    /// Its decompressor, if the server keeps its context.
    inflater: Option<Inflater>,
    /// Frames not yet written.
    out: Vec<u8>,
    /// Queue time (ns since start) and tick of messages not yet answered.
    sent: VecDeque<(u64, usize)>,
    /// The next tick to send.
    next: usize,
    dirty: bool,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Echo) -> Result<Metrics, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let opened = ws::open_many_ext(&mut poll, c.addr, &c.tls, "/echo", o.pmd.offer(), o.conns, 0, 128)?;
    let answers: Vec<Option<String>> = opened.iter().map(|(_, a)| a.clone()).collect();
    let params = json::agree(&answers, o.pmd)?;
    let ticks = snapshot::ticks(TICKS);
    let mut framer = Framer::new(params);
    let frames: Vec<Vec<u8>> = ticks
        .iter()
        .map(|t| {
            let mut f = Vec::new();
            framer.frame(&mut f, t);
            f
        })
        .collect();
    let mut opener = Opener::new(params);
    // The compressed form of each tick's reply once one has been checked
    // (servers without context takeover only).
    let mut known: Vec<Option<Vec<u8>>> = vec![None; TICKS];

    let mut win = Window::new(c);
    let now = win.now_ns();
    let mut conns: Vec<Conn> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (sock, _))| {
            let mut conn = Conn {
                sock,
                reader: FrameReader::default(),
                inflater: None,
                out: Vec::new(),
                sent: VecDeque::with_capacity(o.inflight),
                next: i % TICKS,
                dirty: true,
            };
            for _ in 0..o.inflight {
                let t = conn.next;
                conn.out.extend_from_slice(&frames[t]);
                conn.sent.push_back((now, t));
                conn.next = (t + 1) % TICKS;
            }
            conn
        })
        .collect();
    let mut dirty: Vec<usize> = (0..conns.len()).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 << 10];
    let mut hist = Hist::default();
    let mut replies: u64 = 0;
    let mut wire = WireCount::default();
    loop {
        for &i in &dirty {
            let conn = &mut conns[i];
            conn.dirty = false;
            let n = conn.sock.write_some(&conn.out).map_err(|e| format!("write: {e}"))?;
            conn.out.drain(..n);
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
                let Conn {
                    sock,
                    reader,
                    inflater,
                    out,
                    sent,
                    next,
                    ..
                } = conn;
                let mut err = None;
                let alive = sock
                    .read_chunks(&mut buf, |chunk| {
                        if err.is_some() {
                            return;
                        }
                        let r = reader.feed(chunk, |m| {
                            let (at, t) = sent.pop_front().ok_or("more replies than messages sent")?;
                            let shortcut = opener.shareable() && m.compressed && known[t].as_deref() == Some(m.payload);
                            let text_len = if shortcut {
                                ticks[t].len()
                            } else {
                                let shareable = opener.shareable();
                                let text = opener.open(&m, inflater)?;
                                if text.bytes() != ticks[t] {
                                    return Err(format!("the reply to tick {t} is not what was sent"));
                                }
                                if shareable && matches!(text, json::Opened::Inflated(_)) {
                                    known[t] = Some(m.payload.to_vec());
                                }
                                ticks[t].len()
                            };
                            if measuring {
                                replies += 1;
                                hist.record(now.saturating_sub(at));
                                wire.add(&m, text_len);
                            }
                            let t = *next;
                            out.extend_from_slice(&frames[t]);
                            sent.push_back((now, t));
                            *next = (t + 1) % TICKS;
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
                    return Err("server closed an echo connection".into());
                }
            }
            if !conn.out.is_empty() && !conn.dirty {
                conn.dirty = true;
                dirty.push(i);
            }
        }
    }
    let secs = win.elapsed();
    let mut m = Metrics::default();
    m.push("msg_per_s", replies as f64 / secs);
    m.push("rtt_p50_us", hist.quantile_us(0.5));
    m.push("rtt_p99_us", hist.quantile_us(0.99));
    wire.push(&mut m);
    if let Some(cpu) = win.cpu() {
        m.push("cpu_ns_per_msg", cpu * 1e9 / replies.max(1) as f64);
    }
    Ok(m)
}
