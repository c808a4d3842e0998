//! `--game-hz HZ --snapshot S`: the game-loop benchmark's peer
//! (`wsload game`), written as a tokio-tungstenite user would: a
//! `tokio::time::interval` task at HZ (missed ticks skipped, as hvws's
//! `FramePacer` does) makes one S-byte binary snapshot per frame and sends
//! it through a `tokio::sync::broadcast` channel (16 frames deep; a client
//! that falls further behind skips frames, `Lagged`); every `/game`
//! connection's task reads and counts inputs and writes each snapshot it
//! receives (all that are queued, then one flush).
//!
//! The snapshot is hvws-echo's: frame number (little-endian u64), inputs
//! counted so far, padding. `GET /frame-stats[?reset]` (recognised by
//! peeking at the connection's first bytes, answered by hand: not part of
//! what is measured) gives the same `key=value` lines as hvws-echo's. A
//! frame's tick time here is from the interval's wake-up to the moment the
//! last connection task has flushed that frame's snapshot (what hvws's
//! `tick()` + `flush()` covers); a frame overtaken by the next before every
//! connection wrote it counts until the next frame starts (`overtaken`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{accept_hdr_async, WebSocketStream};

/// What the frame loop and the connections share.
#[derive(Debug, Default)]
struct Stats {
    inputs: u64,
    inputs_total: u64,
    tick_ns: Vec<u64>,
    late_ns: Vec<u64>,
    overtaken: u64,
    since: Option<Instant>,
    period: Duration,
    /// The frame being written: its number, start, connections still to
    /// flush it.
    current: u64,
    started: Option<Instant>,
    pending: usize,
}

impl Stats {
    /// Frame `frame` was flushed by one more connection.
    fn flushed(&mut self, frame: u64) {
        if frame != self.current || self.pending == 0 {
            return;
        }
        self.pending -= 1;
        if self.pending == 0 {
            if let Some(start) = self.started.take() {
                self.tick_ns.push(start.elapsed().as_nanos() as u64);
            }
        }
    }

    fn render(&mut self, reset: bool) -> String {
        let q = |v: &mut Vec<u64>, p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_unstable();
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1] as f64 / 1000.0
        };
        let frames = self.late_ns.len() as u64;
        let due = self
            .since
            .map_or(0, |t| (t.elapsed().as_nanos() / self.period.as_nanos().max(1)) as u64);
        let text = format!(
            "frames={frames}\nskipped={}\ninputs={}\novertaken={}\ntick_p50_us={}\ntick_p99_us={}\ntick_max_us={}\nlate_p50_us={}\nlate_p99_us={}\nlate_max_us={}\n",
            due.saturating_sub(frames),
            self.inputs,
            self.overtaken,
            q(&mut self.tick_ns, 0.5),
            q(&mut self.tick_ns, 0.99),
            q(&mut self.tick_ns, 1.0),
            q(&mut self.late_ns, 0.5),
            q(&mut self.late_ns, 0.99),
            q(&mut self.late_ns, 1.0),
        );
        if reset {
            self.tick_ns.clear();
            self.late_ns.clear();
            self.inputs = 0;
            self.overtaken = 0;
            self.since = Some(Instant::now());
        }
        text
    }
}

type Shared = Rc<RefCell<Stats>>;

/// Serves `/game` and `/frame-stats` on `addr` with a frame loop at `hz`.
pub async fn serve(addr: SocketAddr, hz: u32, size: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!(
        "game on ws://{}/game at {hz} Hz, {size}-byte snapshots",
        listener.local_addr()?
    );
    let (tx, _) = broadcast::channel::<Message>(16);
    let period = Duration::from_secs(1) / hz.max(1);
    let shared = Shared::new(RefCell::new(Stats {
        since: Some(Instant::now()),
        period,
        ..Stats::default()
    }));
    tokio::task::spawn_local(frame_loop(tx.clone(), period, size, shared.clone()));
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
        tokio::task::spawn_local(connection(stream, tx.clone(), shared.clone()));
    }
}

async fn frame_loop(tx: broadcast::Sender<Message>, period: Duration, size: usize, shared: Shared) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut snap: Vec<u8> = (0..size.max(16)).map(|i| b'a' + (i % 26) as u8).collect();
    let mut frame = 0u64;
    loop {
        let due = interval.tick().await.into_std();
        let start = Instant::now();
        frame += 1;
        let mut s = shared.borrow_mut();
        if let Some(prev) = s.started.take() {
            // Not every connection has written the last frame yet.
            s.tick_ns.push((start - prev).as_nanos() as u64);
            s.overtaken += 1;
        }
        snap[..8].copy_from_slice(&frame.to_le_bytes());
        snap[8..16].copy_from_slice(&s.inputs_total.to_le_bytes());
        s.late_ns.push(start.saturating_duration_since(due).as_nanos() as u64);
        s.current = frame;
        s.pending = tx.receiver_count();
        if s.pending > 0 {
            s.started = Some(start);
        }
        drop(s);
        let _ = tx.send(Message::Binary(Bytes::copy_from_slice(&snap)));
    }
}

/// `GET /frame-stats` (by hand), or a `/game` WebSocket.
async fn connection(stream: TcpStream, tx: broadcast::Sender<Message>, shared: Shared) {
    let mut first = [0u8; 16];
    match stream.peek(&mut first).await {
        Ok(n) if first[..n].starts_with(b"GET /frame-stats") => {
            let _ = frame_stats(stream, &shared).await;
            return;
        }
        Ok(_) => {}
        Err(_) => return,
    }
    #[allow(clippy::result_large_err)]
    let route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/game" {
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
    // Snapshots from the next frame on.
    let rx = tx.subscribe();
    drop(tx);
    player(ws, rx, shared).await;
}

async fn frame_stats(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req.split(|&b| b == b'\r').next().unwrap_or_default();
    let reset = line.windows(6).any(|w| w == b"?reset");
    let body = shared.borrow_mut().render(reset);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn frame_of(msg: &Message) -> u64 {
    match msg {
        Message::Binary(b) if b.len() >= 8 => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        _ => 0,
    }
}

async fn player(mut ws: WebSocketStream<TcpStream>, mut rx: broadcast::Receiver<Message>, shared: Shared) {
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(msg)) if msg.is_text() || msg.is_binary() => {
                    let mut s = shared.borrow_mut();
                    s.inputs += 1;
                    s.inputs_total += 1;
                }
                Some(Ok(_)) => {
                    // Pongs and close replies.
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
                Some(Err(_)) | None => break,
            },
            snap = rx.recv() => {
                let mut next = match snap {
                    Ok(msg) => Some(msg),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                // Every snapshot queued, then one flush.
                let mut last = 0;
                let mut fed = Ok(());
                while let Some(msg) = next.take() {
                    last = frame_of(&msg);
                    fed = ws.feed(msg).await;
                    if fed.is_err() {
                        break;
                    }
                    next = match rx.try_recv() {
                        Ok(msg) => Some(msg),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => rx.try_recv().ok(),
                        Err(_) => None,
                    };
                }
                if fed.is_err() || ws.flush().await.is_err() {
                    break;
                }
                shared.borrow_mut().flushed(last);
            }
        }
    }
}
