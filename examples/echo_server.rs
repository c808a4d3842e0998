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

use std::collections::HashSet;
use std::error::Error;
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

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let usage = "usage: echo_server [--port N] [--host H] [--tls-cert CERT.pem --tls-key KEY.pem] [--deflate]";
    let mut deflate = false;
    let mut port = 9001u16;
    let mut host = String::from("127.0.0.1");
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--host" => host = args.next().ok_or("--host needs a value")?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--deflate" => deflate = true,
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
    #[allow(unused_mut)]
    let mut config = ServerConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        ..Default::default()
    };
    if deflate {
        #[cfg(feature = "deflate")]
        {
            config.deflate = Some(hvws::DeflateConfig::server());
        }
        #[cfg(not(feature = "deflate"))]
        return Err("--deflate: this echo_server was built without deflate; rebuild with --features deflate".into());
    }
    let mut server = Server::with_config(EchoServer::default(), config);
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
