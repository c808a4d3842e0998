//! `--http`: the HTTP routes of the HTTP benchmarks on hyper 1.x, in the
//! same one-thread runtime as the WebSocket peer.
//!
//! * `GET /hello`: `Hello, world!` as `text/plain`.
//! * `GET /static/<file>`: the file below `--static-dir DIR`, through
//!   tower-http's `ServeDir` (what an axum application mounts with
//!   `nest_service("/static", ServeDir::new(DIR))`: path checks, metadata,
//!   `Content-Type`, `Last-Modified`, conditional and range requests, the
//!   body read with `tokio::fs` in 64 KiB pieces on the blocking pool).
//! * anything else: 404.
//!
//! Each connection is hyper's HTTP/1.1 server connection
//! (`hyper::server::conn::http1`), keep-alive on, and `pipeline_flush`
//! on so that the answers to requests read together go out in one write.
//! Nagle is off, as in hvws. As `axum::serve` does (since axum PR 3478), the
//! connection gets a `TokioTimer`, which arms hyper's header-read timeout
//! (30 s by default; `--header-timeout SECS` sets another), as hvws always
//! runs its request timer; `--no-header-timeout` leaves the timer out (hyper's
//! timeout is then inert), as the first runs were measured. hyper's other
//! defaults are kept, among them a `Date` header on every response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_http::services::fs::ServeFileSystemResponseBody;
use tower_http::services::ServeDir;
use tower_service::Service;

type Body = Either<Full<Bytes>, ServeFileSystemResponseBody>;

/// How hyper's header-read timeout is set up.
#[derive(Debug, Clone, Copy)]
pub enum HeaderTimeout {
    /// No timer: hyper's timeout is inert.
    Off,
    /// A `TokioTimer`, with hyper's default timeout (30 s), as `axum::serve`.
    Default,
    /// A `TokioTimer` and this timeout.
    After(Duration),
}

/// Accepts connections on `addr` and serves each on its own local task.
pub async fn serve(addr: SocketAddr, static_dir: PathBuf, header_timeout: HeaderTimeout) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!(
        "http on http://{local}/hello and http://{local}/static/ ({})",
        static_dir.display()
    );
    let files = ServeDir::new(static_dir);
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).pipeline_flush(true);
    match header_timeout {
        HeaderTimeout::Off => {}
        HeaderTimeout::Default => {
            builder.timer(TokioTimer::new());
        }
        HeaderTimeout::After(timeout) => {
            builder.timer(TokioTimer::new()).header_read_timeout(timeout);
        }
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let files = files.clone();
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(move |req| route(req, files.clone())));
        tokio::task::spawn_local(async move {
            // A reset or a malformed request ends the connection; nothing to report.
            let _ = conn.await;
        });
    }
}

async fn route(req: Request<Incoming>, mut files: ServeDir) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == "/hello" {
        let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(b"Hello, world!"))));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return Ok(resp);
    }
    if let Some(rest) = path.strip_prefix("/static") {
        if rest.starts_with('/') {
            // As axum's nest_service does: ServeDir sees the path below the mount point.
            let rel = match req.uri().query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_owned(),
            };
            let (mut parts, body) = req.into_parts();
            parts.uri = rel.parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/"));
            let resp = files.call(Request::from_parts(parts, body)).await?;
            return Ok(resp.map(Either::Right));
        }
    }
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(b"not found"))));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    Ok(resp)
}
