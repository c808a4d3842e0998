//! idle: opens C WebSocket connections on `/echo` and holds them. The
//! server's RSS is read after the first few connections (warming its pools
//! and code paths) and again once all are open and settled; the difference
//! over the connections opened in between is the memory per idle
//! connection. The server's CPU while holding them shows what idle
//! connections cost per second.

use std::time::Duration;

use mio::Poll;

use crate::procfs::{rss_bytes, CpuMark};
use crate::{ws, Common, Metrics};

/// Connections opened before the baseline RSS reading.
const WARM: usize = 16;

/// The idle workload's parameters.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Connections in all (including the warm-up ones).
    pub conns: usize,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Idle) -> Result<Metrics, String> {
    let pid = c.pid.ok_or("idle needs --pid")?;
    if o.conns <= WARM {
        return Err(format!("idle needs more than {WARM} connections"));
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let warm = ws::open_many(&mut poll, c.addr, &c.tls, "/echo", WARM, 0, 16)?;
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_bytes(pid)?;
    let n = o.conns - WARM;
    let rest = ws::open_many(&mut poll, c.addr, &c.tls, "/echo", n, WARM, 128)?;
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
