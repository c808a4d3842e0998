//! An echo server for conformance tests (Autobahn|Testsuite) and benchmarks.
//!
//! ```text
//! cargo run --release --example echo_server -- --port N
//! ```
//!
//! * `/echo`: every text and binary message is sent back unchanged.
//! * `/broadcast`: every message is sent to every open `/broadcast`
//!   connection, the sender included, encoded once.
//!
//! Both paths also accept a query string (`/echo?case=1`). Flags: `--port N`
//! (default 9001), `--host H` (default 127.0.0.1). Logs at `warn` unless
//! `RUST_LOG` says otherwise.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HvWebServer, Opcode, Routes, Server, ServerConfig};

#[derive(Default)]
struct EchoServer {
    /// The open `/broadcast` channels; every other channel is on `/echo`.
    broadcast: HashSet<Channel>,
}

impl EchoServer {
    fn on_data(&mut self, ctx: &mut Context<'_>, channel: Channel, opcode: Opcode, data: &[u8]) {
        if self.broadcast.contains(&channel) {
            ctx.broadcast_to(self.broadcast.iter().copied(), data, opcode)
                .expect("text and binary are data opcodes");
        } else {
            // A whole text or binary message is always a valid frame; if the
            // channel is already closing it is dropped, and nothing is to do.
            ctx.send(channel, data, opcode, true)
                .expect("a whole text or binary message is a valid frame");
        }
    }
}

impl HvWebServer for EchoServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        // Routes match the path only, so `/echo?anything` is accepted too.
        routes.websocket("/echo").websocket("/broadcast");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        log::info!("{channel} opened {url}");
        if ctx.info(channel).is_some_and(|info| info.path() == "/broadcast") {
            self.broadcast.insert(channel);
        }
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        self.on_data(ctx, channel, Opcode::Text, msg.as_bytes());
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        self.on_data(ctx, channel, Opcode::Binary, data);
    }

    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        log::info!("{channel} closed: {} {:?}", close.code, close.reason);
        self.broadcast.remove(&channel);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let usage = "usage: echo_server [--port N] [--host H]";
    let mut port = 9001u16;
    let mut host = String::from("127.0.0.1");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--host" => host = args.next().ok_or("--host needs a value")?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    let addr: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;

    // The defaults, spelled out: Autobahn's 9.x cases send messages and
    // frames of up to 16 MiB.
    let config = ServerConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        ..Default::default()
    };
    let mut server = Server::with_config(EchoServer::default(), config);
    server.init_addr(addr)?;
    server.start()?;
    let local = server.local_addr().unwrap_or(addr);
    println!("echo on ws://{local}/echo, broadcast on ws://{local}/broadcast");
    while server.is_running() {
        server.tick_timeout(Duration::from_millis(100))?;
    }
    Ok(())
}
