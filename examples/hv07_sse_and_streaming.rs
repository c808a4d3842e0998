//! dasHV HV-07 on hvws: Server-Sent Events and streamed responses, written
//! on this tick and on later ones by the game loop.
//!
//! ```text
//! cargo run --example hv07_sse_and_streaming -- --selftest      # exit 0 if the transcript happened
//! cargo run --example hv07_sse_and_streaming -- --port 8080     # serve until Ctrl-C
//! curl -N http://127.0.0.1:8080/events
//! curl -N -d 'hello stream' http://127.0.0.1:8080/stream-echo
//! curl -N 'http://127.0.0.1:8080/ticks?n=5&ms=500'               # one event every half second
//! ```
//!
//! Routes (HV-07's own, then one beyond it):
//! - `/events`, any method: `text/event-stream` with the events
//!   `message`/`first`, `message`/`second` and `complete`/`all done`, then
//!   the end of the stream;
//! - `POST /stream-echo`: one `echo` event carrying the request body;
//! - `GET /plain`: `hello from plain endpoint`;
//! - `GET /ticks?n=N&ms=M`: N events `tick` with data `1`..`N` and ids,
//!   one every M milliseconds, each written by the frame it happens in
//!   (dasHV's tutorial sends its whole event list at once; here a client
//!   sees the first tick long before the last one exists).
//!
//! Walkthrough: `tutorials/11-sse-and-streaming.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hvws::{Context, FramePacer, HttpResponse, HvWebServer, ResponseId, Routes, Server, SseEvent};

/// A `/ticks` stream: what it has sent and when the next event is due.
struct Ticker {
    id: ResponseId,
    total: u32,
    sent: u32,
    every: Duration,
    next_at: Instant,
}

/// The application: the open `/ticks` streams, and how many tick events
/// it has produced (the selftest reads it from another thread).
#[derive(Default)]
struct Streams {
    tickers: Vec<Ticker>,
    produced: Arc<AtomicU32>,
}

impl HvWebServer for Streams {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            // HV-07's `SSE("/events")`: any method; the whole list now.
            .sse("/events", |_, ctx, _req, id| {
                ctx.send_event(id, &SseEvent::new("first").event("message"));
                ctx.send_event(id, &SseEvent::new("second").event("message"));
                ctx.send_event(id, &SseEvent::new("all done").event("complete"));
                ctx.end(id);
            })
            // An event stream whose whole body is known now needs no stream.
            .post("/stream-echo", |_, _, req| {
                let body = String::from_utf8_lossy(req.body()).into_owned();
                HttpResponse::events(&[SseEvent::new(body).event("echo")])
            })
            .get("/plain", |_, _, _| HttpResponse::text("hello from plain endpoint"))
            // The stream stays open; the game loop writes it (`update`).
            .sse("/ticks", |app: &mut Streams, _ctx, req, id| {
                let param = |name: &str, default: u64| {
                    req.query_param(name)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(default)
                };
                let every = Duration::from_millis(param("ms", 1000).min(60_000));
                app.tickers.push(Ticker {
                    id,
                    total: param("n", 5).min(10_000) as u32,
                    sent: 0,
                    every,
                    next_at: Instant::now() + every,
                });
            });
    }

    fn on_response_abandoned(&mut self, _ctx: &mut Context<'_>, id: ResponseId) {
        // The client went away: stop producing for it.
        self.tickers.retain(|t| t.id != id);
    }
}

impl Streams {
    /// Once a frame: every `/ticks` stream whose next event is due gets it;
    /// a stream that has sent its last event is ended.
    fn update(&mut self, ctx: &mut Context<'_>, now: Instant) {
        for t in &mut self.tickers {
            while t.sent < t.total && now >= t.next_at {
                t.sent += 1;
                t.next_at += t.every;
                let n = t.sent.to_string();
                ctx.send_event(t.id, &SseEvent::new(n.as_str()).event("tick").id(&n));
                self.produced.fetch_add(1, Ordering::SeqCst);
            }
            if t.sent == t.total {
                ctx.end(t.id);
            }
        }
        self.tickers.retain(|t| t.sent < t.total);
    }
}

/// The game loop: 60 frames a second, the network served between them.
fn run(mut server: Server<Streams>, stop: &AtomicBool) -> Result<(), String> {
    let mut pacer = FramePacer::new(60);
    while !stop.load(Ordering::SeqCst) {
        pacer.wait(&mut server).map_err(|e| e.to_string())?;
        server.with_context(|app, ctx| app.update(ctx, Instant::now()));
    }
    server.stop().map_err(|e| e.to_string())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(Streams::default());
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    // Port 0 lets the OS choose: print the one it chose (tests read it).
    let bound = server.local_addr().map_or(port, |a| a.port());
    println!("hv07: serving on http://127.0.0.1:{bound}/ (Ctrl-C stops)");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    run(server, &stop)
}

// --- the selftest: a raw HTTP client that prints what arrives, as it arrives --

/// Sends `request` and reads the answer's head; returns the head and the
/// connection.
fn open(addr: SocketAddr, request: &str) -> Result<(String, Vec<u8>, TcpStream), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok((head, buf[end + 4..].to_vec(), s));
        }
        let n = s.read(&mut chunk).map_err(|e| format!("reading the head: {e}"))?;
        if n == 0 {
            return Err("closed before the head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the next chunk of a chunked body (`None` at its end).
fn next_chunk(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, String> {
    let mut more = [0u8; 4096];
    loop {
        if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..eol]).unwrap_or("?"), 16)
                .map_err(|_| "bad chunk size".to_string())?;
            if buf.len() >= eol + 2 + size + 2 {
                let data = buf[eol + 2..eol + 2 + size].to_vec();
                buf.drain(..eol + 2 + size + 2);
                return Ok((size > 0).then_some(data));
            }
        }
        let n = s.read(&mut more).map_err(|e| format!("reading a chunk: {e}"))?;
        if n == 0 {
            return Err("closed mid-stream".into());
        }
        buf.extend_from_slice(&more[..n]);
    }
}

/// Splits an event stream's text into events of (field, value) lines.
fn parse_events(text: &str) -> Vec<Vec<(String, String)>> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.lines()
                .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect()
        })
        .collect()
}

fn check(what: &str, ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn selftest() -> Result<(), String> {
    let mut server = Server::new(Streams::default());
    let produced = Arc::clone(&server.handler().produced);
    server
        .init_addr("127.0.0.1:0".parse().unwrap())
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let addr = server.local_addr().ok_or("no address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let loop_flag = Arc::clone(&stop);
    let game = std::thread::spawn(move || run(server, &loop_flag));

    println!("== GET /events");
    let (head, mut buf, mut s) = open(addr, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")?;
    check("text/event-stream", head.contains("Content-Type: text/event-stream"))?;
    check("no-cache", head.contains("Cache-Control: no-cache"))?;
    let mut text = String::new();
    while let Some(chunk) = next_chunk(&mut s, &mut buf)? {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = parse_events(&text);
    for e in &events {
        println!("event: {:<8} data: {}", e[0].1, e[1].1);
    }
    let pairs: Vec<(&str, &str)> = events.iter().map(|e| (e[0].1.as_str(), e[1].1.as_str())).collect();
    check(
        "the three events of /events",
        pairs == [("message", "first"), ("message", "second"), ("complete", "all done")],
    )?;

    println!("== POST /events (any method)");
    let (head, _, _) = open(addr, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")?;
    check("POST /events is a stream too", head.contains("text/event-stream"))?;
    println!("{}", head.lines().next().unwrap_or(""));

    println!("== POST /stream-echo");
    let (head, mut body, mut s) = open(
        addr,
        "POST /stream-echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nhello stream",
    )?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .ok_or("a length")?;
    while body.len() < len {
        let mut more = [0u8; 256];
        let n = s.read(&mut more).map_err(|e| e.to_string())?;
        body.extend_from_slice(&more[..n]);
    }
    let echo = parse_events(&String::from_utf8_lossy(&body));
    println!("event: {:<8} data: {}", echo[0][0].1, echo[0][1].1);
    check(
        "one echo event with the body",
        echo == [vec![
            ("event".into(), "echo".into()),
            ("data".into(), "hello stream".into()),
        ]],
    )?;

    println!("== GET /plain");
    let (head, body, _) = open(addr, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    println!(
        "{} -> {}",
        head.lines().next().unwrap_or(""),
        String::from_utf8_lossy(&body)
    );
    check("plain endpoint", body == b"hello from plain endpoint")?;

    println!("== GET /ticks?n=5&ms=200 (each event printed as it arrives)");
    let (_, mut buf, mut s) = open(addr, "GET /ticks?n=5&ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    while let Some(chunk) = next_chunk(&mut s, &mut buf)? {
        let event = parse_events(&String::from_utf8_lossy(&chunk));
        let produced_now = produced.load(Ordering::SeqCst);
        for e in event {
            println!(
                "tick id={} data={} (server has produced {produced_now} of 5)",
                e[1].1, e[2].1
            );
            got.push((e[1].1.clone(), produced_now));
        }
    }
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    check("ticks 1..5 with their ids", ids == ["1", "2", "3", "4", "5"])?;
    check("the first tick arrived before the last was produced", got[0].1 < 5)?;

    stop.store(true, Ordering::SeqCst);
    game.join().map_err(|_| "the game loop panicked")??;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("hv07: OK")),
        ["--port", p] => p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}")).and_then(serve),
        _ => Err("usage: hv07_sse_and_streaming --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv07: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
