//! idle: opens C WebSocket connections on `/echo` and holds them. The
//! server's RSS is read after the first few connections (warming its pools
//! and code paths) and again once all are open and settled; the difference
//! over the connections opened in between is the memory per idle
//! connection. The server's CPU while holding them shows what idle
//! connections cost per second.
//!
//! `--deflate` offers permessage-deflate on every connection (it must be
//! accepted), `--offer` offers it expecting a decline; `--active` has every connection, the warm-up ones included,
//! echo one game-state snapshot before the RSS is read, so compressors and
//! decompressors that are made on first use are counted.

use std::time::Duration;

use mio::Poll;

use crate::procfs::{rss_bytes, CpuMark};
use crate::sock::Sock;
use crate::{json, ws, Common, Metrics};

/// Connections opened before the baseline RSS reading.
const WARM: usize = 16;

/// The idle workload's parameters.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Connections in all (including the warm-up ones).
    pub conns: usize,
    /// Whether permessage-deflate is offered, and must be agreed.
    pub pmd: json::Pmd,
    /// Echo one snapshot on every connection before reading the RSS.
    pub active: bool,
    /// Open with a browser's upgrade request (`--browser-headers`, `browser.rs`).
    pub browser: bool,
}

/// Opens `n` connections (tokens `first..`) and, with `--active`, echoes
/// one snapshot on each.
fn open(poll: &mut Poll, c: &Common, o: &Idle, n: usize, first: usize, parallel: usize) -> Result<Vec<Sock>, String> {
    let opened = match o.browser {
        true => crate::browser::open_many(poll, c.addr, &c.tls, "/echo", n, first, parallel)?,
        false => ws::open_many_ext(poll, c.addr, &c.tls, "/echo", o.pmd.offer(), n, first, parallel)?,
    };
    let answers: Vec<Option<String>> = opened.iter().map(|(_, a)| a.clone()).collect();
    let params = json::agree(&answers, crate::browser::expected(o.browser, o.pmd))?;
    let mut socks: Vec<Sock> = opened.into_iter().map(|(s, _)| s).collect();
    if o.active {
        json::exchange_one(poll, &mut socks, first, params)?;
    }
    Ok(socks)
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Idle) -> Result<Metrics, String> {
    let pid = c.pid.ok_or("idle needs --pid")?;
    if o.conns <= WARM {
        return Err(format!("idle needs more than {WARM} connections"));
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let warm = open(&mut poll, c, o, WARM, 0, 16)?;
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_bytes(pid)?;
    let n = o.conns - WARM;
    let rest = open(&mut poll, c, o, n, WARM, 128)?;
    std::thread::sleep(c.warmup.max(Duration::from_millis(500)));
    let rss1 = rss_bytes(pid)?;
    let cpu = CpuMark::now(Some(pid))?;
    std::thread::sleep(c.duration);
    let cpu = cpu.since(Some(pid))?.unwrap_or(0.0);
    let rss2 = rss_bytes(pid)?;
    drop((warm, rest));
    let mut m = Metrics::default();
    m.push("rss_bytes_per_conn", rss1.saturating_sub(rss0) as f64 / n as f64);
    m.push("rss_mb_total", rss2 as f64 / 1e6);
    m.push("idle_cpu_ms_per_s", cpu * 1e3 / c.duration.as_secs_f64());
    Ok(m)
}
