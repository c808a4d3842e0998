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

use std::collections::HashMap;
use std::error::Error;
use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server, ServerConfig};

/// The browser client served at `GET /`: one self-contained HTML file.
const CHAT_PAGE: &str = include_str!("assets/chat.html");

#[derive(Default)]
struct ChatServer {
    clients: HashMap<Channel, String>,
    next_id: u32,
}

impl ChatServer {
    fn broadcast(&self, ctx: &mut Context<'_>, msg: &str, exclude: Option<Channel>) {
        ctx.broadcast_to(
            self.clients.keys().copied().filter(|c| Some(*c) != exclude),
            msg.as_bytes(),
            hvws::Opcode::Text,
        )
        .expect("text is a data opcode");
    }
}

impl HvWebServer for ChatServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/", |_, _, _| HttpResponse::html(CHAT_PAGE))
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/clients", |chat: &mut ChatServer, _, _| {
                HttpResponse::text(chat.clients.len().to_string())
            })
            .websocket("/chat");
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, channel: Channel, url: &str) {
        self.next_id += 1;
        let nickname = format!("user_{}", self.next_id);
        let extensions = ctx.info(channel).and_then(|info| info.extensions()).unwrap_or("none");
        log::info!("{channel} opened {url} as {nickname}, extensions: {extensions}");
        ctx.send_text(channel, &format!("welcome {nickname}"));
        self.broadcast(ctx, &format!("{nickname} joined"), Some(channel));
        self.clients.insert(channel, nickname);
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        let nickname = self.clients.get(&channel).cloned().unwrap_or_else(|| "unknown".into());
        ctx.send_text(channel, &format!("echo: {msg}"));
        self.broadcast(ctx, &format!("{nickname}: {msg}"), Some(channel));
    }

    fn on_ws_close(&mut self, ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        let nickname = self.clients.remove(&channel).unwrap_or_else(|| "unknown".into());
        log::info!("{channel} ({nickname}) closed: {} {:?}", close.code, close.reason);
        self.broadcast(ctx, &format!("{nickname} left"), None);
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
    let usage = "usage: chat_server [--port N] [--tls-cert CERT.pem --tls-key KEY.pem] [--deflate]";
    let mut config = ServerConfig::default();
    let mut port = 8080u16;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--deflate" => enable_deflate(&mut config)?,
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
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
