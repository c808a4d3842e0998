//! The HV-06 tutorial's chat server: WebSockets on `/chat`, `GET /ping` and
//! `GET /clients` on the same port, and at `GET /` a chat page for browsers.
//!
//! ```text
//! cargo run --release --example chat_server -- --port 8080
//! ```
//!
//! Then open <http://127.0.0.1:8080/> in two browser tabs, or run the
//! `chat_client` example. The page (`examples/assets/chat.html`, built into
//! the binary) shows your nickname, the log and a text box, and reconnects
//! with exponential backoff when the server goes away.
//!
//! Over https/wss (the same page, routes and chat), in a build with the
//! `tls` feature, with a certificate and its key in PEM
//! (`examples/gen_test_certs.rs` makes a throwaway pair for tests):
//!
//! ```text
//! cargo run --release --example gen_test_certs -- --out /tmp/hvws-certs
//! cargo run --release --features tls --example chat_server -- --port 8443 \
//!     --tls-cert /tmp/hvws-certs/cert.pem --tls-key /tmp/hvws-certs/key.pem
//! cargo run --release --features tls --example chat_client -- \
//!     --url wss://127.0.0.1:8443/chat --ca /tmp/hvws-certs/ca.pem
//! ```
//!
//! A browser warns about the test CA unless it is told to trust it (the
//! browser test, `tests/browser/chat.test.mjs`, shows how). Without the
//! `tls` feature the two flags are refused: rebuild with `--features tls`.
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) from clients that offer
//! it, as every browser does, with the server's defaults
//! ([`hvws::DeflateConfig::server`]: no context takeover either way). It
//! needs the `deflate` feature; without it the flag is refused: rebuild with
//! `--features deflate`. Each connection's log line shows what was agreed:
//!
//! ```text
//! cargo run --release --features deflate --example chat_server -- --port 8080 --deflate
//! ```
//!
//! On open the new client gets `welcome user_K` and everyone else
//! `user_K joined`; a message M gets `echo: M` back and `user_K: M` to the
//! others; a close tells the rest `user_K left`.
//!
//! `--threads N` (default 1) serves the chat from N threads on the one port
//! ([`hvws::ServerGroup`]: the kernel spreads connections over them). Every
//! chat client subscribes to the `chat` topic and the server publishes
//! there, so the group's hub carries each line to the clients of every
//! thread; names come from one counter shared by the threads, so they stay
//! unique, and `GET /clients` counts the clients of every thread. With 1
//! (the default) the server runs on the main thread as it always did, and
//! is the only way to serve https/wss (a group binds plain listeners only):
//!
//! ```text
//! cargo run --release --example chat_server -- --port 8080 --threads 4
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server, ServerConfig, ServerGroup};

/// The browser client served at `GET /`: one self-contained HTML file.
const CHAT_PAGE: &str = include_str!("assets/chat.html");

/// The topic every chat client subscribes to: a publish there reaches the
/// clients of every thread.
const CHAT: &str = "chat";

/// What the threads share: the last nickname number given, and how many
/// clients are connected over all of them.
#[derive(Default, Clone)]
struct Shared {
    next_id: Arc<AtomicU32>,
    clients: Arc<AtomicUsize>,
}

/// One thread's chat: its own clients' nicknames.
#[derive(Default)]
struct ChatServer {
    clients: HashMap<Channel, String>,
    shared: Shared,
    thread: usize,
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/", |_, _, _| HttpResponse::html(CHAT_PAGE))
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/clients", |chat: &mut ChatServer, _, _| {
                HttpResponse::text(chat.shared.clients.load(Ordering::SeqCst).to_string())
            })
            .websocket("/chat");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        let id = self.shared.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let nickname = format!("user_{id}");
        let info = ctx.info(channel);
        let extensions = info.and_then(|info| info.extensions()).unwrap_or("none");
        let peer = info.map(|info| info.peer_addr().to_string()).unwrap_or_default();
        // Tests read this line: the extensions stay at its end.
        log::info!(
            "{channel} opened {url} as {nickname}, thread {}, from {peer}, extensions: {extensions}",
            self.thread
        );
        ctx.send_text(channel, &format!("welcome {nickname}"));
        // Published before the newcomer subscribes: everyone else hears it.
        ctx.publish_text(CHAT, &format!("{nickname} joined"), None);
        ctx.subscribe(channel, CHAT);
        self.shared.clients.fetch_add(1, Ordering::SeqCst);
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        ctx.send_text(channel, &format!("echo: {msg}"));
        ctx.publish_text(CHAT, &format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = match self.clients.remove(&channel) {
            Some(nickname) => {
                self.shared.clients.fetch_sub(1, Ordering::SeqCst);
                nickname
            }
            None => "unknown".into(),
        };
        log::info!("{channel} ({nickname}) closed: {} {:?}", close.code, close.reason);
        // The closing channel is still subscribed (closing unsubscribes
        // after this callback), but nothing more reaches it.
        ctx.publish_text(CHAT, &format!("{nickname} left"), Some(channel));
    }
}

/// Binds `port` for https/wss with the certificate chain and key in the
/// PEM files `cert` and `key`; returns the port bound.
#[cfg(feature = "tls")]
fn init_tls(server: &mut Server<ChatServer>, port: u16, cert: &str, key: &str) -> Result<u16, Box<dyn Error>> {
    let tls = hvws::ServerTls::from_pem_files(cert, key)?;
    server.init_tls(port, tls)?;
    Ok(server.tls_addr().map_or(port, |a| a.port()))
}

/// A build without the `tls` feature has no TLS to offer: say how to get it
/// rather than serve plain text where the user asked for TLS.
#[cfg(not(feature = "tls"))]
fn init_tls(_: &mut Server<ChatServer>, _: u16, _: &str, _: &str) -> Result<u16, Box<dyn Error>> {
    Err("--tls-cert/--tls-key: this chat_server was built without TLS; rebuild with --features tls".into())
}

/// permessage-deflate with the server's defaults.
#[cfg(feature = "deflate")]
fn enable_deflate(config: &mut ServerConfig) -> Result<(), Box<dyn Error>> {
    config.deflate = Some(hvws::DeflateConfig::server());
    Ok(())
}

/// A build without the `deflate` feature cannot compress: say how to get it
/// rather than quietly chat uncompressed.
#[cfg(not(feature = "deflate"))]
fn enable_deflate(_: &mut ServerConfig) -> Result<(), Box<dyn Error>> {
    Err("--deflate: this chat_server was built without deflate; rebuild with --features deflate".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let usage = "usage: chat_server [--port N] [--threads N] [--tls-cert CERT.pem --tls-key KEY.pem] [--deflate]";
    let mut config = ServerConfig::default();
    let mut port = 8080u16;
    let mut threads = 1usize;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--threads" => threads = args.next().ok_or("--threads needs a value")?.parse()?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--deflate" => enable_deflate(&mut config)?,
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    match (threads, cert.is_some() || key.is_some()) {
        (0, _) => return Err(format!("--threads wants at least 1; {usage}").into()),
        (1, _) => {}
        (_, false) => return serve_threads(port, threads, config),
        (_, true) => return Err("--threads N > 1 serves plain ws/http only: a server group binds no TLS".into()),
    }
    let mut server = Server::with_config(ChatServer::default(), config);
    match (cert, key) {
        (None, None) => {
            server.init(port)?;
            server.start()?;
            log::info!(
                "chat on ws://127.0.0.1:{}/chat",
                server.local_addr().map_or(port, |a| a.port())
            );
        }
        (Some(cert), Some(key)) => {
            let port = init_tls(&mut server, port, &cert, &key)?;
            server.start()?;
            log::info!("chat on wss://127.0.0.1:{port}/chat, page at https://127.0.0.1:{port}/");
        }
        _ => return Err(format!("--tls-cert and --tls-key go together; {usage}").into()),
    }
    // A game would do its frame here; the chat only waits for the network.
    while server.is_running() {
        server.tick_timeout(Duration::from_millis(100))?;
    }
    Ok(())
}

/// The chat on `threads` servers sharing `port` (every interface, as
/// `Server::init`), one nickname counter and one client count.
fn serve_threads(port: u16, threads: usize, config: ServerConfig) -> Result<(), Box<dyn Error>> {
    let shared = Shared::default();
    let group = ServerGroup::spawn(
        SocketAddr::from(([0, 0, 0, 0], port)),
        threads,
        config,
        move |thread| ChatServer {
            shared: shared.clone(),
            thread,
            ..ChatServer::default()
        },
        |server, _thread| server.run(),
    )?;
    log::info!(
        "chat on ws://127.0.0.1:{}/chat, {threads} threads",
        group.local_addr().port()
    );
    group.join()?;
    Ok(())
}
