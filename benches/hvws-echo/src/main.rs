//! hvws-echo: the `echo_server` protocol on hvws (as `examples/echo_server`),
//! plain or over TLS, for the wss rows of `benches/compare.sh`. It is a
//! bench crate of its own so the benchmark's TLS flags do not depend on
//! the example's.
//!
//! ```text
//! cargo run --release -p hvws-echo -- --port N [--host H] [--tls-cert CERT.pem --tls-key KEY.pem]
//! ```
//!
//! * `/echo`: every text and binary message is sent back unchanged.
//! * `/broadcast`: every message is sent to every open `/broadcast`
//!   connection, the sender included, encoded once.
//! * `/pub?topic=NAME`: the connection subscribes to topic NAME (`all`
//!   without the parameter), and every message it sends is published to
//!   that topic as it came (text as text, binary as binary), the sender
//!   included as on `/broadcast`, so the two deliver the same messages to
//!   the same connections (`Context::publish`; `wsload topics`).
//!
//! `--threads N` runs N servers on the port, one per thread
//! ([`hvws::ServerGroup`]: `SO_REUSEPORT`, one [`hvws::Hub`], each thread
//! [`hvws::Server::run`]), for the echo scaling rows. `/echo` and `/pub`
//! work as with one (topics span the threads through the hub);
//! `/broadcast` reaches only the connections of the sender's thread. Plain
//! ws only: not with `--tls-cert`. Without the flag the server is one
//! `Server` ticked by `main`, as before.
//!
//! With `--tls-cert` and `--tls-key` the listener speaks https/wss only
//! (rustls on ring, `hvws::ServerTls::from_pem_files`, its defaults).
//! `--tls-tickets N` sets rustls's `send_tls13_tickets` (default 2), for
//! measuring what the session tickets cost.
//!
//! `--deflate` accepts permessage-deflate with the server's defaults
//! ([`hvws::DeflateConfig::server`]: no context takeover either way, level
//! 6, window 15, memLevel 8); `--deflate-takeover` accepts it with context
//! takeover both ways (a compressor and a decompressor per connection, made
//! on its first compressed message); `--deflate-level N` sets the level.
//!
//! HTTP, for the HTTP rows (`http-*`): `GET /hello` answers
//! `Hello, world!` (`HttpResponse::text`), and with `--static-dir DIR`
//! `GET /static/<file>` answers with the file below DIR
//! ([`hvws::serve_dir`]: its body is read from disk as the socket drains).
//!
//! `--game-hz HZ --snapshot S [--game-loop pacer|sleep] [--tick-budget N] [--write-budget N] [--ticks-per-frame N]`
//! is the game-loop benchmark's server (`wsload game`, see `game.rs`):
//! inputs on `/game`, one S-byte snapshot to every channel per frame,
//! `GET /frame-stats` for the frames' tick times. `--tick-budget N` sets
//! `ServerConfig::tick_budget` to N messages a tick (bytes unbounded),
//! `--write-budget N` its `writes` (socket writes per flush).

mod game;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hvws::{
    Channel, CloseInfo, Context, HttpResponse, HvWebServer, Opcode, Routes, Server, ServerConfig, ServerGroup,
    ServerTls,
};

#[derive(Default)]
struct EchoServer {
    /// The open `/broadcast` channels.
    broadcast: HashSet<Channel>,
    /// The open `/pub` channels and the topic each publishes to (and
    /// subscribes to). A channel in neither map is on `/echo`.
    publish: HashMap<Channel, String>,
    /// `--static-dir`: what `/static/*` serves (no such route without it).
    static_dir: Option<PathBuf>,
    /// `--game-hz`: every message is a game input (`game.rs`).
    game: Option<game::Game>,
}

impl EchoServer {
    /// Broadcasts a message from a `/broadcast` channel, or publishes one
    /// from a `/pub` channel to its topic; false for an `/echo` channel.
    fn broadcast(&mut self, ctx: &mut Context<'_>, channel: Channel, opcode: Opcode, data: &[u8]) -> bool {
        if let Some(topic) = self.publish.get(&channel) {
            ctx.publish(topic, data, opcode, None)
                .expect("text and binary are data opcodes");
            return true;
        }
        if !self.broadcast.contains(&channel) {
            return false;
        }
        ctx.broadcast_to(self.broadcast.iter().copied(), data, opcode)
            .expect("text and binary are data opcodes");
        true
    }
}

impl HvWebServer for EchoServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/echo").websocket("/broadcast").websocket("/pub");
        routes.get("/hello", |_: &mut EchoServer, _, _| HttpResponse::text("Hello, world!"));
        if self.game.is_some() {
            routes.websocket("/game");
            routes.get("/frame-stats", |s: &mut EchoServer, _, req| {
                let reset = req.query().split('&').any(|p| p == "reset");
                s.game.as_mut().expect("game mode").stats(reset)
            });
        }
        if let Some(dir) = self.static_dir.clone() {
            routes.get("/static/*", move |_: &mut EchoServer, _, req| {
                hvws::serve_dir(req, &dir, req.path().strip_prefix("/static/").unwrap_or(""))
            });
        }
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        let Some(info) = ctx.info(channel) else { return };
        match info.path() {
            "/broadcast" => {
                self.broadcast.insert(channel);
            }
            "/pub" => {
                let topic = info.query_param("topic").unwrap_or_else(|| "all".into());
                ctx.subscribe(channel, &topic);
                self.publish.insert(channel, topic);
            }
            _ => {}
        }
    }

    // Echoes go out as whole messages (`send_text`/`send_binary`, not
    // `ctx.send`, which queues one raw frame and never compresses), so they
    // are compressed when permessage-deflate was agreed.
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        if let Some(game) = &mut self.game {
            game.input();
            return;
        }
        if !self.broadcast(ctx, channel, Opcode::Text, msg.as_bytes()) {
            ctx.send_text(channel, msg);
        }
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        if let Some(game) = &mut self.game {
            game.input();
            return;
        }
        if !self.broadcast(ctx, channel, Opcode::Binary, data) {
            ctx.send_binary(channel, data);
        }
    }

    // hvws unsubscribes a closed channel from its topics itself.
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, _close: &CloseInfo) {
        self.broadcast.remove(&channel);
        self.publish.remove(&channel);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let usage = "usage: hvws-echo [--port N] [--host H] [--tls-cert CERT.pem --tls-key KEY.pem [--tls-tickets N]]\n                 [--deflate | --deflate-takeover] [--deflate-level N] [--static-dir DIR] [--threads N] [--redis URL]\n                 [--game-hz HZ [--snapshot BYTES] [--game-loop pacer|sleep] [--tick-budget N] [--write-budget N] [--ticks-per-frame N]]";
    let mut port = 9001u16;
    let mut host = String::from("127.0.0.1");
    let (mut cert, mut key, mut tickets) = (None, None, None);
    let mut deflate: Option<hvws::DeflateConfig> = None;
    let mut level = None;
    let mut static_dir = None;
    let mut threads: Option<usize> = None;
    let mut redis: Option<String> = None;
    let (mut game_hz, mut snapshot, mut game_wait) = (None::<u32>, 1024usize, game::Wait::Pacer);
    let mut tick_budget = hvws::TickBudget::UNLIMITED;
    let mut ticks_per_frame = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--host" => host = args.next().ok_or("--host needs a value")?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--tls-tickets" => tickets = Some(args.next().ok_or("--tls-tickets needs a number")?.parse()?),
            "--deflate" => deflate = Some(hvws::DeflateConfig::server()),
            "--deflate-takeover" => {
                deflate = Some(hvws::DeflateConfig {
                    no_context_takeover: false,
                    peer_no_context_takeover: false,
                    ..hvws::DeflateConfig::server()
                })
            }
            "--deflate-level" => level = Some(args.next().ok_or("--deflate-level needs a number")?.parse()?),
            "--static-dir" => static_dir = Some(PathBuf::from(args.next().ok_or("--static-dir needs a directory")?)),
            "--threads" => threads = Some(args.next().ok_or("--threads needs a number")?.parse()?),
            "--redis" => redis = Some(args.next().ok_or("--redis needs a URL")?),
            "--game-hz" => game_hz = Some(args.next().ok_or("--game-hz needs a number")?.parse()?),
            "--snapshot" => snapshot = args.next().ok_or("--snapshot needs a number")?.parse()?,
            "--game-loop" => {
                game_wait = match args.next().as_deref() {
                    Some("pacer") => game::Wait::Pacer,
                    Some("sleep") => game::Wait::Sleep,
                    _ => return Err("--game-loop is pacer or sleep".into()),
                }
            }
            "--ticks-per-frame" => ticks_per_frame = args.next().ok_or("--ticks-per-frame needs a number")?.parse()?,
            "--tick-budget" => {
                tick_budget.messages = args.next().ok_or("--tick-budget needs a number")?.parse()?;
            }
            "--write-budget" => {
                tick_budget.writes = args.next().ok_or("--write-budget needs a number")?.parse()?;
            }
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
    if let (Some(d), Some(level)) = (deflate.as_mut(), level) {
        d.level = level;
    }
    let config = ServerConfig {
        max_message_size: 16 << 20,
        max_frame_size: 16 << 20,
        deflate,
        tick_budget,
        ..Default::default()
    };
    // --redis: topics (`/pub`) span every hvws-echo on the same Redis.
    if redis.is_some() && threads.is_none() {
        threads = Some(1);
    }
    if let Some(n) = threads {
        if game_hz.is_some() {
            return Err(format!("--game-hz runs one server: not with --threads or --redis; {usage}").into());
        }
        if cert.is_some() || key.is_some() {
            return Err(format!("--threads serves plain ws only, not with --tls-cert/--tls-key; {usage}").into());
        }
        let hub = match &redis {
            Some(url) => hvws::Hub::with_redis(hvws::RedisBridge::new(url, "hvws-echo")?),
            None => hvws::Hub::new(),
        };
        let group = ServerGroup::spawn_with_hub(
            addr,
            n,
            config,
            hub,
            move |_thread| EchoServer {
                static_dir: static_dir.clone(),
                ..Default::default()
            },
            |server, _thread| server.run(),
        )?;
        let local = group.local_addr();
        println!("echo on ws://{local}/echo, broadcast on ws://{local}/broadcast, {n} threads");
        group.join()?;
        return Ok(());
    }
    let handler = EchoServer {
        static_dir,
        game: game_hz.map(|_| game::Game::default()),
        ..Default::default()
    };
    if game_hz.is_some() && (cert.is_some() || key.is_some()) {
        return Err(format!("--game-hz serves plain ws only; {usage}").into());
    }
    let mut server = Server::with_config(handler, config);
    let scheme = match (cert, key) {
        (Some(cert), Some(key)) => {
            let tls = match tickets {
                None => ServerTls::from_pem_files(cert, key)?,
                Some(n) => ServerTls::from_rustls(rustls_config(&cert, &key, n)?),
            };
            server.init_tls_addr(addr, tls)?;
            "wss"
        }
        (None, None) => {
            server.init_addr(addr)?;
            "ws"
        }
        _ => return Err(format!("--tls-cert and --tls-key go together; {usage}").into()),
    };
    server.start()?;
    let local = server.local_addr().unwrap_or(addr);
    if let Some(hz) = game_hz {
        println!("game on {scheme}://{local}/game at {hz} Hz, {snapshot}-byte snapshots, {game_wait:?} loop");
        game::run(&mut server, hz, snapshot, game_wait, ticks_per_frame.max(1))?;
        return Ok(());
    }
    println!("echo on {scheme}://{local}/echo, broadcast on {scheme}://{local}/broadcast");
    while server.is_running() {
        server.tick_timeout(Duration::from_millis(100))?;
    }
    Ok(())
}

/// What `ServerTls::from_pem_files` makes, with `send_tls13_tickets = tickets`.
fn rustls_config(
    cert: &str,
    key: &str,
    tickets: usize,
) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.send_tls13_tickets = tickets;
    Ok(Arc::new(config))
}
