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
//! The selftest is HV-07's client half: hvws's `HttpClient`, pumped once a
//! frame, prints each piece of the body as `on_chunk` gets it (its size
//! and its text) and the events an `SseReader` reads from the pieces.
//!
//! Walkthrough: `tutorials/11-sse-and-streaming.md`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hvws::{
    BodyChunk, ClientRequest, ClientResponse, Context, FramePacer, HttpClient, HttpClientError, HttpResponse,
    HvHttpClient, HvWebServer, RequestId, ResponseHead, ResponseId, Routes, Server, SseEvent, SseMessage, SseReader,
};

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

// --- the selftest: hvws's HTTP client, printing what arrives as it arrives --

/// One frame of the client's loop.
const FRAME: Duration = Duration::from_millis(16);

/// The client's side (dasHV's `request_cb`): each piece of the body as it
/// comes off the wire, as bytes and as text, and the events an
/// [`SseReader`] reads from them.
#[derive(Default)]
struct Reader {
    /// The client's frame, for the printout.
    frame: u64,
    /// Reads the stream's events from the pieces, wherever they are cut.
    sse: SseReader,
    /// What the callbacks saw of the current request.
    head: Option<ResponseHead>,
    events: Vec<SseMessage>,
    chunks: u32,
    body: Option<Vec<u8>>,
    error: Option<String>,
    /// How many ticks the server had produced when each tick was read.
    produced: Arc<AtomicU32>,
    produced_when_read: Vec<u32>,
}

impl HvHttpClient for Reader {
    fn on_head(&mut self, _id: RequestId, head: &ResponseHead) {
        let content_type = head.header("content-type").unwrap_or("-");
        println!("[frame {:>3}] {} {content_type}", self.frame, head.status());
        self.head = Some(head.clone());
    }

    fn on_chunk(&mut self, _id: RequestId, chunk: &BodyChunk<'_>) {
        // The piece as it arrived: its size, and its bytes as text.
        let (n, size, text) = (chunk.index(), chunk.len(), chunk.text());
        println!("[frame {:>3}]   chunk {n}: {size} bytes {text:?}", self.frame);
        self.chunks += 1;
        // The events it completes: a piece may hold several, or a part of one.
        if let Err(e) = self.sse.feed(chunk.bytes()) {
            self.error = Some(e.to_string());
        }
        while let Some(event) = self.sse.poll_event() {
            let id = event.id.as_deref().map(|id| format!(" id: {id}")).unwrap_or_default();
            println!(
                "[frame {:>3}]     event: {:<8} data: {}{id}",
                self.frame, event.event, event.data
            );
            if event.event == "tick" {
                let produced = self.produced.load(Ordering::SeqCst);
                println!(
                    "[frame {:>3}]     (the server has produced {produced} of 5)",
                    self.frame
                );
                self.produced_when_read.push(produced);
            }
            self.events.push(event);
        }
    }

    fn on_response(&mut self, _id: RequestId, response: ClientResponse) {
        let (bytes, chunks) = (response.body_len(), self.chunks);
        println!("[frame {:>3}]   done: {bytes} bytes in {chunks} chunk(s)", self.frame);
        self.body = Some(response.into_body());
    }

    fn on_error(&mut self, _id: RequestId, error: HttpClientError) {
        println!("[frame {:>3}]   error: {error}", self.frame);
        self.error = Some(error.to_string());
    }
}

/// Queues `req` and runs the client's frames until it is done. Returns
/// what the callbacks saw, leaving a fresh reader for the next request.
fn fetch(http: &mut HttpClient<Reader>, label: &str, req: ClientRequest) -> Result<Reader, String> {
    println!("== {label}");
    http.request(req).map_err(|e| format!("{label}: {e}"))?;
    while http.pending() > 0 {
        http.handler_mut().frame += 1;
        http.process_event_que();
        std::thread::sleep(FRAME);
    }
    let fresh = Reader {
        frame: http.handler().frame,
        produced: Arc::clone(&http.handler().produced),
        ..Reader::default()
    };
    let seen = std::mem::replace(http.handler_mut(), fresh);
    match seen.error {
        Some(e) => Err(format!("{label}: {e}")),
        None => Ok(seen),
    }
}

impl Reader {
    fn header(&self, name: &str) -> &str {
        self.head.as_ref().and_then(|h| h.header(name)).unwrap_or("-")
    }

    /// The events read, as (type, data).
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.events
            .iter()
            .map(|e| (e.event.as_str(), e.data.as_str()))
            .collect()
    }
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
    let base = format!("http://{}", server.local_addr().ok_or("no address")?);
    let stop = Arc::new(AtomicBool::new(false));
    let loop_flag = Arc::clone(&stop);
    let game = std::thread::spawn(move || run(server, &loop_flag));
    let result = client(&base, produced);
    stop.store(true, Ordering::SeqCst);
    game.join().map_err(|_| "the game loop panicked")??;
    result
}

fn client(base: &str, produced: Arc<AtomicU32>) -> Result<(), String> {
    let mut http = HttpClient::new(Reader {
        produced,
        ..Reader::default()
    });

    let seen = fetch(&mut http, "GET /events", ClientRequest::get(&format!("{base}/events")))?;
    check("text/event-stream", seen.header("content-type") == "text/event-stream")?;
    check("no-cache", seen.header("cache-control") == "no-cache")?;
    check(
        "the three events of /events",
        seen.pairs() == [("message", "first"), ("message", "second"), ("complete", "all done")],
    )?;

    let req = ClientRequest::post(&format!("{base}/events"));
    let seen = fetch(&mut http, "POST /events (any method)", req)?;
    check(
        "POST /events is a stream too",
        seen.header("content-type") == "text/event-stream",
    )?;
    check("with the same events", seen.events.len() == 3)?;

    let req = ClientRequest::post(&format!("{base}/stream-echo")).body_text("hello stream");
    let seen = fetch(&mut http, "POST /stream-echo", req)?;
    check(
        "one echo event with the body",
        seen.pairs() == [("echo", "hello stream")],
    )?;

    let seen = fetch(&mut http, "GET /plain", ClientRequest::get(&format!("{base}/plain")))?;
    check(
        "plain endpoint",
        seen.body.as_deref() == Some(&b"hello from plain endpoint"[..]),
    )?;
    check("no events in a plain body", seen.events.is_empty())?;

    // A stream read piece by piece needs no copy of the whole body.
    let req = ClientRequest::get(&format!("{base}/ticks"))
        .set_param("n", "5")
        .set_param("ms", "200")
        .keep_body(false);
    let seen = fetch(
        &mut http,
        "GET /ticks?n=5&ms=200 (each event printed as it arrives)",
        req,
    )?;
    let ids: Vec<&str> = seen.events.iter().filter_map(|e| e.id.as_deref()).collect();
    check("ticks 1..5 with their ids", ids == ["1", "2", "3", "4", "5"])?;
    check(
        "the first tick arrived before the last was produced",
        seen.produced_when_read.first().is_some_and(|&n| n < 5),
    )?;
    check("a body not kept", seen.body.as_ref().is_some_and(Vec::is_empty))?;
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
