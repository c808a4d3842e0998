//! storm: a reconnect storm. C clients connect at once (every TCP connect
//! started before the first handshake completes, as after a server
//! restart) and each completes a WebSocket handshake on `/echo`; reports
//! how fast they all got in (connections per second over the time from the
//! first connect to the last handshake answer) and the server's CPU per
//! connection. A connection refused or reset fails the run: the target is
//! that none is.

use std::time::Instant;

use mio::Poll;

use crate::procfs::CpuMark;
use crate::{ws, Common, Metrics};

/// The storm's parameters.
#[derive(Debug, Clone)]
pub struct Storm {
    /// Connections opened at once.
    pub conns: usize,
}

/// Runs the workload and returns its metrics.
pub fn run(c: &Common, o: &Storm) -> Result<Metrics, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let cpu = CpuMark::now(c.pid)?;
    let start = Instant::now();
    // `parallel = conns`: every connect is started up front.
    let opened = ws::open_many_ext(&mut poll, c.addr, &c.tls, "/echo", None, o.conns, 0, o.conns)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu.since(c.pid)?;
    let mut m = Metrics::default();
    m.push("storm_conns_per_s", opened.len() as f64 / secs);
    m.push("storm_secs", secs);
    if let Some(cpu) = cpu {
        m.push("cpu_us_per_conn", cpu * 1e6 / opened.len() as f64);
    }
    Ok(m)
}
