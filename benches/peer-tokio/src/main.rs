//! peer-tokio: the `echo_server` protocol on tokio-tungstenite, in one
//! thread (a current-thread runtime), written to be as fast as that stack
//! allows so the comparison with hvws is fair:
//!
//! * `/echo`: every text and binary message is sent back. Each wake-up feeds
//!   every message that is already readable into the sink, then flushes
//!   once: one `write` per batch, as hvws does per tick.
//! * `/broadcast`: every message goes to every `/broadcast` connection, the
//!   sender included. The message is shared (its payload is reference
//!   counted), queued on each connection's unbounded queue, and each
//!   connection's task drains its whole queue, then flushes once.
//!
//! With `--tls-cert` and `--tls-key` it speaks wss only: tokio-rustls on
//! the same rustls and ring provider as hvws, configured as
//! `hvws::ServerTls::from_pem` does (rustls's safe defaults, no client
//! auth, ALPN `http/1.1`).
//!
//! With `--http --static-dir DIR` it is an HTTP server instead, on hyper
//! 1.x (`GET /hello`, `GET /static/<file>` from DIR; see `http.rs`), for
//! the HTTP rows of the benchmarks.
//!
//! With `--game-hz HZ [--snapshot S]` it is the game-loop benchmark's
//! peer instead (`/game`, an interval task broadcasting one snapshot per
//! frame; see `game.rs`).
//!
//! ```text
//! cargo run --release -p peer-tokio -- --port N [--host H] --game-hz 60 --snapshot 1024
//! cargo run --release -p peer-tokio -- --port N [--host H] [--tls-cert CERT.pem --tls-key KEY.pem]
//! cargo run --release -p peer-tokio -- --port N [--host H] --http --static-dir DIR [--header-timeout SECS | --no-header-timeout]
//! ```

mod game;
mod http;

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{accept_hdr_async, WebSocketStream};

/// A byte stream a WebSocket runs on: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Io for T {}

/// The open `/broadcast` connections' queues, by connection id.
type Registry = Rc<RefCell<Vec<(u64, UnboundedSender<Message>)>>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: peer-tokio [--port N] [--host H] [--tls-cert CERT.pem --tls-key KEY.pem]\n                  [--http [--static-dir DIR] [--header-timeout SECS | --no-header-timeout]]\n                  [--game-hz HZ [--snapshot BYTES]]";
    let (mut host, mut port) = (String::from("127.0.0.1"), 9002u16);
    let (mut cert, mut key) = (None, None);
    let (mut http, mut static_dir) = (false, std::path::PathBuf::from("."));
    let mut header_timeout = http::HeaderTimeout::Default;
    let (mut game_hz, mut snapshot) = (None::<u32>, 1024usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--host" => host = args.next().ok_or("--host needs a value")?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a file")?),
            "--http" => http = true,
            "--static-dir" => static_dir = args.next().ok_or("--static-dir needs a directory")?.into(),
            "--header-timeout" => {
                let secs: u64 = args.next().ok_or("--header-timeout needs seconds")?.parse()?;
                header_timeout = http::HeaderTimeout::After(std::time::Duration::from_secs(secs));
            }
            "--no-header-timeout" => header_timeout = http::HeaderTimeout::Off,
            "--game-hz" => game_hz = Some(args.next().ok_or("--game-hz needs a number")?.parse()?),
            "--snapshot" => snapshot = args.next().ok_or("--snapshot needs a number")?.parse()?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {usage}").into()),
        }
    }
    let addr: SocketAddr = format!("{host}:{port}").parse()?;
    if let Some(hz) = game_hz {
        if http || cert.is_some() || key.is_some() {
            return Err(format!("--game-hz is plain ws only; {usage}").into());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, game::serve(addr, hz, snapshot))?;
        return Ok(());
    }
    if http {
        if cert.is_some() || key.is_some() {
            return Err(format!("--http is plain HTTP only; {usage}").into());
        }
        let mut rt = tokio::runtime::Builder::new_current_thread();
        rt.enable_io();
        if !matches!(header_timeout, http::HeaderTimeout::Off) {
            // The header-read timeout runs on tokio's timer.
            rt.enable_time();
        }
        let rt = rt.build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, http::serve(addr, static_dir, header_timeout))?;
        return Ok(());
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(&cert, &key)?),
        (None, None) => None,
        _ => return Err(format!("--tls-cert and --tls-key go together; {usage}").into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(addr, tls))?;
    Ok(())
}

/// The TLS side, as `hvws::ServerTls::from_pem` configures it.
fn tls_acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, Box<dyn std::error::Error>> {
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve(addr: SocketAddr, tls: Option<TlsAcceptor>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!("echo on {scheme}://{local}/echo, broadcast on {scheme}://{local}/broadcast");
    let registry = Registry::default();
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: the connection waits in the backlog.
                eprintln!("accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let registry = registry.clone();
        match &tls {
            None => {
                tokio::task::spawn_local(connection(stream, registry, next_id));
            }
            Some(acceptor) => {
                let accept = acceptor.accept(stream);
                tokio::task::spawn_local(async move {
                    if let Ok(stream) = accept.await {
                        connection(stream, registry, next_id).await;
                    }
                });
            }
        }
    }
}

async fn connection<S: Io>(stream: S, registry: Registry, id: u64) {
    let mut path = String::new();
    // The signature is tungstenite's `Callback`; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        if path == "/echo" || path == "/broadcast" {
            Ok(resp)
        } else {
            let mut err = ErrorResponse::new(Some("not found".into()));
            *err.status_mut() = StatusCode::NOT_FOUND;
            Err(err)
        }
    };
    let Ok(ws) = accept_hdr_async(stream, route).await else {
        return;
    };
    if path == "/broadcast" {
        broadcast(ws, registry, id).await;
    } else {
        echo(ws).await;
    }
}

/// Feeds every data message that is ready into the sink without waiting;
/// `Ready(Ok(n))` once at least one message was read (n data messages fed),
/// `Ready(Err)` when the stream has ended.
fn feed_ready<S: Io>(ws: &mut WebSocketStream<S>, cx: &mut std::task::Context<'_>) -> Poll<Result<usize, ()>> {
    let mut read = 0usize;
    let mut fed = 0usize;
    loop {
        match ws.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(msg))) => {
                read += 1;
                if msg.is_text() || msg.is_binary() {
                    // tungstenite's sink is always ready unless its write
                    // buffer is over its (unbounded by default) maximum.
                    match ws.poll_ready_unpin(cx) {
                        Poll::Ready(Ok(())) => {}
                        _ => return Poll::Ready(Err(())),
                    }
                    if ws.start_send_unpin(msg).is_err() {
                        return Poll::Ready(Err(()));
                    }
                    fed += 1;
                }
            }
            Poll::Ready(_) => return Poll::Ready(Err(())),
            Poll::Pending if read > 0 => return Poll::Ready(Ok(fed)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

async fn echo<S: Io>(mut ws: WebSocketStream<S>) {
    loop {
        let fed = poll_fn(|cx| feed_ready(&mut ws, cx)).await;
        // Also sends the automatic pong and close replies.
        let flushed = ws.flush().await;
        if fed.is_err() || flushed.is_err() {
            return;
        }
    }
}

async fn broadcast<S: Io>(mut ws: WebSocketStream<S>, registry: Registry, id: u64) {
    let (tx, mut rx) = unbounded_channel::<Message>();
    registry.borrow_mut().push((id, tx));
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(msg)) if msg.is_text() || msg.is_binary() => {
                    for (_, q) in registry.borrow().iter() {
                        let _ = q.send(msg.clone());
                    }
                }
                Some(Ok(_)) => {
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
                Some(Err(Error::ConnectionClosed)) | Some(Err(_)) | None => break,
            },
            Some(first) = rx.recv() => {
                let mut batch = Ok(());
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    batch = ws.feed(msg).await;
                    if batch.is_err() {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                if batch.is_err() || ws.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    registry.borrow_mut().retain(|(i, _)| *i != id);
}
