//! `Server::tick()` with nothing to do, with 10 and with 10,000 idle
//! WebSocket connections open: the cost of a tick must not grow with the
//! number of idle connections.
//!
//! ```text
//! cargo bench --bench tick
//! ```
//!
//! The clients live in a second process (this binary, started again with
//! `HVWS_TICK_CLIENTS` set), since one process may not hold both ends of
//! 10,000 connections within a 20,000-descriptor limit. Under `cargo test`
//! (criterion's test mode) the large case opens 500 connections, which fits
//! the common default limit of 1,024 descriptors per process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use hvws::{Channel, Context, HvWebServer, Routes, Server};

const CLIENTS_ENV: &str = "HVWS_TICK_CLIENTS";

/// Counts opened channels; does nothing else.
#[derive(Debug, Default)]
struct Idle {
    open: usize,
}

impl HvWebServer for Idle {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/idle");
    }
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, _ch: Channel, _url: &str) {
        self.open += 1;
    }
}

/// The client process: opens `n` WebSockets to `addr`, says `ready`, and
/// holds them until its stdin closes.
fn hold_clients(spec: &str) {
    let (addr, n) = spec.split_once(' ').expect("\"ADDR N\"");
    let addr: SocketAddr = addr.parse().expect("address");
    let n: usize = n.parse().expect("count");
    let request = format!(
        "GET /idle HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).expect("connect (raise the limit: ulimit -n 20000)");
        s.write_all(request.as_bytes()).expect("write");
        socks.push(s);
    }
    let mut buf = [0u8; 512];
    for s in &mut socks {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let k = s.read(&mut buf).expect("read");
            assert!(k > 0, "server closed during the handshake");
            head.extend_from_slice(&buf[..k]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
    }
    println!("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// A running server with `n` idle channels, and the process holding them.
fn server_with(n: usize) -> (Server<Idle>, Child) {
    let mut server = Server::new(Idle::default());
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CLIENTS_ENV, format!("{addr} {n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.handler().open < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} channels opened",
            server.handler().open
        );
        assert!(child.try_wait().unwrap().is_none(), "the client process failed");
        server.tick_timeout(Duration::from_millis(10)).unwrap();
    }
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // Let the last writable edges and ACKs pass.
    for _ in 0..100 {
        server.tick_timeout(Duration::from_millis(1)).unwrap();
    }
    (server, child)
}

fn idle_tick(c: &mut Criterion, many: usize) {
    let mut g = c.benchmark_group("tick_idle");
    for n in [10, many] {
        let (mut server, mut child) = server_with(n);
        g.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| server.tick().unwrap()));
        drop(child.stdin.take());
        child.wait().unwrap();
        drop(server);
    }
    g.finish();
}

fn main() {
    if let Ok(spec) = std::env::var(CLIENTS_ENV) {
        hold_clients(&spec);
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    // Short defaults keep a full run near a minute; flags still override.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    idle_tick(&mut c, if benchmarking { 10_000 } else { 500 });
    c.final_summary();
}
