//! An echo server for conformance tests (Autobahn|Testsuite) and benchmarks.
//!
//! ```text
//! cargo run --release --example echo_server -- --port N
//! ```
//!
//! * `/echo`: every text and binary message is sent back unchanged.
//! * `/broadcast`: every message is sent to every open `/broadcast`
//!   connection, the sender included, encoded once (they subscribe to the
//!   `broadcast` topic, so with `--threads` it reaches every thread's).
//!
//! Both paths also accept a query string (`/echo?case=1`). Flags: `--port N`
//! (default 9001), `--host H` (default 127.0.0.1), `--threads N` (default
//! 1: one server on the main thread; more: a [`hvws::ServerGroup`] of N
//! servers on the one port, plain ws only). Logs at `warn` unless
//! `RUST_LOG` says otherwise.
//!
//! Over wss, in a build with the `tls` feature, with a certificate and its
//! key in PEM (`examples/gen_test_certs.rs` makes a throwaway pair):
//!
//! ```text
//! cargo run --release --features tls --example echo_server -- --port N \
//!     --tls-cert CERT.pem --tls-key KEY.pem
//! ```
//!
//! Without the `tls` feature the two flags are refused: rebuild with
//! `--features tls`.
//!
//! `--deflate` accepts permessage-deflate from clients that offer it (the
//! server's defaults, [`hvws::DeflateConfig::server`]); it needs the
//! `deflate` feature, as the Autobahn sections 12 and 13 run in `.ci/run`:
//!
//! ```text
//! cargo run --release --features deflate --example echo_server -- --port N --deflate
//! ```
//!
//! `--deflate-takeover` is `--deflate` with context takeover both ways
//! (`no_context_takeover: false, peer_no_context_takeover: false`): a
//! compressor and a decompressor kept per connection, the best ratio
//! (`tests/interop/` runs its peers against both).

use std::error::Error;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HvWebServer, KeepHeaders, Opcode, Routes, Server, ServerConfig, ServerGroup};

/// The topic the `/broadcast` channels subscribe to; every other channel
/// is on `/echo`.
const BROADCAST: &str = "broadcast";

struct EchoServer;

impl EchoServer {
    /// Sends a `/broadcast` message to every `/broadcast` channel (of every
    /// thread); false for a channel on `/echo`.
    fn broadcast(&self, ctx: &mut Context<'_>, channel: Channel, opcode: Opcode, data: &[u8]) -> bool {
        if !ctx.is_subscribed(channel, BROADCAST) {
            return false;
        }
        ctx.publish(BROADCAST, data, opcode, None)
            .expect("text and binary are data opcodes");
        true
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
            ctx.subscribe(channel, BROADCAST);
        }
    }

    // Echoes go out as whole messages (`send_text`, `send_binary`), which
    // permessage-deflate compresses; a raw `send` frame never is. If the
    // channel is already closing the message is dropped, and nothing is to do.
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        if !self.broadcast(ctx, channel, Opcode::Text, msg.as_bytes()) {
            ctx.send_text(channel, msg);
        }
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        if !self.broadcast(ctx, channel, Opcode::Binary, data) {
            ctx.send_binary(channel, data);
        }
    }

    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        log::info!("{channel} closed: {} {:?}", close.code, close.reason);
    }
}

/// Binds `addr` for wss with the certificate chain and key in the PEM files
/// `cert` and `key`; returns the address bound.
#[cfg(feature = "tls")]
fn init_tls(
    server: &mut Server<EchoServer>,
    addr: SocketAddr,
    cert: &str,
    key: &str,
) -> Result<SocketAddr, Box<dyn Error>> {
    let tls = hvws::ServerTls::from_pem_files(cert, key)?;
    server.init_tls_addr(addr, tls)?;
    Ok(server.tls_addr().unwrap_or(addr))
}

/// A build without the `tls` feature has no TLS to offer: say how to get it
/// rather than serve plain text where the user asked for TLS.
#[cfg(not(feature = "tls"))]
fn init_tls(_: &mut Server<EchoServer>, _: SocketAddr, _: &str, _: &str) -> Result<SocketAddr, Box<dyn Error>> {
    Err("--tls-cert/--tls-key: this echo_server was built without TLS; rebuild with --features tls".into())
}

/// permessage-deflate with the server's defaults, or with context takeover
/// both ways (`takeover`).
#[cfg(feature = "deflate")]
fn enable_deflate(config: &mut ServerConfig, takeover: bool) -> Result<(), Box<dyn Error>> {
    config.deflate = Some(hvws::DeflateConfig {
        no_context_takeover: !takeover,
        peer_no_context_takeover: !takeover,
        ..hvws::DeflateConfig::server()
    });
    Ok(())
}

/// A build without the `deflate` feature cannot compress: say how to get it.
#[cfg(not(feature = "deflate"))]
fn enable_deflate(_: &mut ServerConfig, _: bool) -> Result<(), Box<dyn Error>> {
    Err("--deflate: this echo_server was built without deflate; rebuild with --features deflate".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let usage = "usage: echo_server [--port N] [--host H] [--threads N] [--tls-cert CERT.pem --tls-key KEY.pem] [--deflate | --deflate-takeover]";
    // None, or Some(whether to keep context between messages).
    let mut deflate = None;
    let mut port = 9001u16;
    let mut host = String::from("127.0.0.1");
    let mut threads = 1usize;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--host" => host = args.next().ok_or("--host needs a value")?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--deflate" => deflate = Some(false),
            "--deflate-takeover" => deflate = Some(true),
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
    // frames of up to 16 MiB. An echo reads no header after the open, so
    // its channels keep none (the cheapest idle connection).
    let mut config = ServerConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        keep_headers: KeepHeaders::None,
        ..Default::default()
    };
    if let Some(takeover) = deflate {
        enable_deflate(&mut config, takeover)?;
    }
    match (threads, cert.is_some() || key.is_some()) {
        (0, _) => return Err(format!("--threads wants at least 1; {usage}").into()),
        (1, _) => {}
        (_, false) => return serve_threads(addr, threads, config),
        (_, true) => return Err("--threads N > 1 serves plain ws only: a server group binds no TLS".into()),
    }
    let mut server = Server::with_config(EchoServer, config);
    let (scheme, local) = match (cert, key) {
        (None, None) => {
            server.init_addr(addr)?;
            ("ws", server.local_addr().unwrap_or(addr))
        }
        (Some(cert), Some(key)) => ("wss", init_tls(&mut server, addr, &cert, &key)?),
        _ => return Err(format!("--tls-cert and --tls-key go together; {usage}").into()),
    };
    server.start()?;
    println!("echo on {scheme}://{local}/echo, broadcast on {scheme}://{local}/broadcast");
    while server.is_running() {
        server.tick_timeout(Duration::from_millis(100))?;
    }
    Ok(())
}

/// `threads` servers on `addr`, one per thread (a [`ServerGroup`]), until
/// the process is stopped.
fn serve_threads(addr: SocketAddr, threads: usize, config: ServerConfig) -> Result<(), Box<dyn Error>> {
    let group = ServerGroup::spawn(addr, threads, config, |_| EchoServer, |server, _| server.run())?;
    let local = group.local_addr();
    println!("echo on ws://{local}/echo, broadcast on ws://{local}/broadcast, {threads} threads");
    group.join()?;
    Ok(())
}
