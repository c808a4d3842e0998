//! dasHV HV-01 on hvws: simple HTTP requests (GET, POST, PUT, PATCH,
//! DELETE, HEAD, headers sent and received, the status message, the body
//! as bytes), made from a game loop that never waits for the network.
//!
//! ```text
//! cargo run --example hv01_http_client -- --selftest                    # the tutorial server in-process; every line checked
//! cargo run --example tutorial_server -- --port 8080                    # or: a server in one terminal,
//! cargo run --example hv01_http_client -- --url http://127.0.0.1:8080   # the transcript against it in another
//! ```
//!
//! dasHV's calls block until the answer is there (`GET(url) $(resp)`).
//! Here each request is queued with [`HttpClient::request`], the game loop
//! calls `process_event_que()` once a frame, and the answer arrives in
//! `on_response` some frames later. Every line is printed with the frame
//! it arrived in; the text after `[frame N]` is dasHV's transcript. The
//! last two sections are hvws's own: the blocking calls, for scripts and
//! tests (the frame counter stands still while they wait), and several
//! requests queued at once.
//!
//! Walkthrough: `tutorials/12-http-client.md`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hvws::{
    ClientRequest, ClientResponse, FramePacer, HttpClient, HttpClientError, HttpResponse, HvHttpClient, HvWebServer,
    RequestId, Routes, Server,
};

/// dasHV's HV-01 transcript as hvws's tutorial server answers it (the
/// lines after `[frame N] `). The selftest checks every line; the last
/// section's lines may come in any order.
const TRANSCRIPT: &str = r#"
=== GET requests ===
GET /ping -> 200: pong
GET /ping (with headers) -> 200: pong

=== POST requests ===
POST /echo -> 200: hello from hvws!
POST /echo (JSON) -> 200: {"message":"hello"}

=== PUT and PATCH requests ===
PUT /echo -> 405
PUT /echo (headers) -> 405
PATCH /echo -> 405

=== DELETE and HEAD requests ===
DELETE /data -> 405
DELETE /data (auth) -> 405
HEAD /ping -> 200

=== Response headers ===
Content-Type: text/plain; charset=utf-8
Content-Length: 4
All response headers:
  Content-Type: text/plain; charset=utf-8
  Date: (the server's clock)
  Content-Length: 4

=== Status message ===
Status: 200 OK
Status: 404 Not Found

=== Binary data ===
Received 16 bytes

=== Blocking calls ===
hvws::http::get -> 200: pong
hvws::http::send -> 200: hello from a script

=== Several requests at once ===
queued GET /ping, GET /data and GET /json
GET /data -> 200: resource state
GET /json -> 200: {"status":"ok","value":42}
GET /ping -> 200: pong
"#;

/// The section whose answers may arrive in any order.
const UNORDERED: &str = "=== Several requests at once ===";

/// One frame of the game: 60 a second.
const FRAME: Duration = Duration::from_millis(16);

// --- the game: requests queued, answers handled in callbacks ----------------

/// What the game prints when an answer arrives: dasHV's line (or lines,
/// separated by `\n`) for it.
type Show = Box<dyn FnOnce(&ClientResponse) -> String>;

/// The game's side of the HTTP client: what to do with each answer.
#[derive(Default)]
struct Game {
    /// The frame being run.
    frame: u64,
    /// What to print for each request in flight, by its id.
    waiting: HashMap<RequestId, Show>,
    /// The lines printed, without their frame: what the selftest checks.
    transcript: Vec<String>,
    /// The longest `process_event_que()` so far.
    longest_pump: Duration,
}

impl HvHttpClient for Game {
    fn on_response(&mut self, id: RequestId, response: ClientResponse) {
        if let Some(show) = self.waiting.remove(&id) {
            let text = show(&response);
            self.print(&text);
        }
    }

    fn on_error(&mut self, id: RequestId, error: HttpClientError) {
        self.waiting.remove(&id);
        self.print(&format!("error: {error}"));
    }
}

impl Game {
    /// Prints each line of `text` with the frame it happened in.
    fn print(&mut self, text: &str) {
        for line in text.lines() {
            println!("[frame {:>3}] {line}", self.frame);
            self.transcript.push(line.to_owned());
        }
    }

    fn heading(&mut self, title: &str) {
        let heading = format!("=== {title} ===");
        if !self.transcript.is_empty() {
            println!();
        }
        println!("{heading}");
        self.transcript.push(heading);
    }
}

/// One frame: the network's turn, then the rest of the frame (input,
/// simulation, rendering), which here only sleeps.
fn frame(http: &mut HttpClient<Game>) {
    http.handler_mut().frame += 1;
    let started = Instant::now();
    http.process_event_que();
    let took = started.elapsed();
    let game = http.handler_mut();
    game.longest_pump = game.longest_pump.max(took);
    std::thread::sleep(FRAME);
}

/// Queues `req` with what to print for its answer, then runs frames until
/// it is answered. One request at a time keeps the lines in dasHV's order;
/// a game that needs no order queues them all at once (the last section).
fn call(
    http: &mut HttpClient<Game>,
    req: ClientRequest,
    show: impl FnOnce(&ClientResponse) -> String + 'static,
) -> Result<(), String> {
    let id = http.request(req).map_err(|e| e.to_string())?;
    http.handler_mut().waiting.insert(id, Box::new(show));
    while http.pending() > 0 {
        frame(http);
    }
    Ok(())
}

// --- dasHV's sections ---------------------------------------------------------

fn example_get(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // A GET: just a URL.
    call(http, ClientRequest::get(&format!("{base}/ping")), |r| {
        format!("GET /ping -> {}: {}", r.status(), r.text())
    })?;
    // A GET with headers of its own.
    let req = ClientRequest::get(&format!("{base}/ping"))
        .header("Accept", "text/plain")
        .header("X-Request-Id", "42");
    call(http, req, |r| {
        format!("GET /ping (with headers) -> {}: {}", r.status(), r.text())
    })
}

fn example_post(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // A POST with a text body (Content-Type: text/plain; charset=utf-8).
    let req = ClientRequest::post(&format!("{base}/echo")).body_text("hello from hvws!");
    call(http, req, |r| format!("POST /echo -> {}: {}", r.status(), r.text()))?;
    // A POST with a JSON body, its Content-Type set by hand.
    let json_body = r#"{"message":"hello"}"#;
    let req = ClientRequest::post(&format!("{base}/echo"))
        .header("Content-Type", "application/json")
        .body(json_body);
    call(http, req, |r| {
        format!("POST /echo (JSON) -> {}: {}", r.status(), r.text())
    })
}

fn example_put_patch(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // /echo has only a POST route: the server answers 405, with `Allow: POST`.
    let url = format!("{base}/echo");
    call(http, ClientRequest::put(&url).body_text("full replacement data"), |r| {
        format!("PUT /echo -> {}", r.status())
    })?;
    let req = ClientRequest::put(&url)
        .header("Content-Type", "text/plain")
        .body("replacement with header");
    call(http, req, |r| format!("PUT /echo (headers) -> {}", r.status()))?;
    call(http, ClientRequest::patch(&url).body_text("partial update"), |r| {
        format!("PATCH /echo -> {}", r.status())
    })
}

fn example_delete_head(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    call(http, ClientRequest::delete(&format!("{base}/data")), |r| {
        format!("DELETE /data -> {}", r.status())
    })?;
    let req = ClientRequest::delete(&format!("{base}/data")).header("Authorization", "Bearer token123");
    call(http, req, |r| format!("DELETE /data (auth) -> {}", r.status()))?;
    // Every GET route answers HEAD: GET's headers, no body.
    call(http, ClientRequest::head(&format!("{base}/ping")), |r| {
        format!("HEAD /ping -> {}", r.status())
    })
}

fn example_response_headers(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    call(http, ClientRequest::get(&format!("{base}/ping")), |r| {
        // One header by name (any case), then all of them in the order sent.
        let mut out = format!("Content-Type: {}\n", r.header("content-type").unwrap_or(""));
        out += &format!("Content-Length: {}\n", r.header("content-length").unwrap_or(""));
        out += "All response headers:\n";
        for (name, value) in r.headers() {
            // `Date` is the server's clock: the same line on every run.
            let value = if name.eq_ignore_ascii_case("date") {
                "(the server's clock)"
            } else {
                value
            };
            out += &format!("  {name}: {value}\n");
        }
        out
    })
}

fn example_status_message(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // `reason()` is the reason phrase the server sent with the status.
    call(http, ClientRequest::get(&format!("{base}/ping")), |r| {
        format!("Status: {} {}", r.status(), r.reason())
    })?;
    call(http, ClientRequest::get(&format!("{base}/nonexistent")), |r| {
        format!("Status: {} {}", r.status(), r.reason())
    })
}

fn example_binary_response(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    let req = ClientRequest::post(&format!("{base}/echo")).body_text("binary test data");
    call(http, req, |r| {
        let bytes: &[u8] = r.body();
        format!("Received {} bytes", bytes.len())
    })
}

// --- hvws's own: blocking calls, and several requests in flight ---------------

fn example_blocking(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // For scripts and tests: the call returns with the answer, and the
    // caller does nothing else meanwhile (the frame counter stands still).
    let resp = hvws::http::get(&format!("{base}/ping")).map_err(|e| e.to_string())?;
    let line = format!("hvws::http::get -> {}: {}", resp.status(), resp.text());
    http.handler_mut().print(&line);
    let req = ClientRequest::post(&format!("{base}/echo")).body_text("hello from a script");
    let resp = hvws::http::send(req).map_err(|e| e.to_string())?;
    let line = format!("hvws::http::send -> {}: {}", resp.status(), resp.text());
    http.handler_mut().print(&line);
    Ok(())
}

fn example_at_once(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // A game queues what it needs and goes on with its frames; each answer
    // is handled when it comes, in whatever order the server finishes.
    for path in ["/ping", "/data", "/json"] {
        let id = http
            .request(ClientRequest::get(&format!("{base}{path}")))
            .map_err(|e| e.to_string())?;
        let show = move |r: &ClientResponse| format!("GET {path} -> {}: {}", r.status(), r.text());
        http.handler_mut().waiting.insert(id, Box::new(show));
    }
    http.handler_mut().print("queued GET /ping, GET /data and GET /json");
    while http.pending() > 0 {
        frame(http);
    }
    Ok(())
}

/// A section of the transcript: its requests, made against `base`.
type Section = fn(&mut HttpClient<Game>, &str) -> Result<(), String>;

fn transcript(base: &str) -> Result<(), String> {
    let mut http = HttpClient::new(Game::default());
    let sections: [(&str, Section); 9] = [
        ("GET requests", example_get),
        ("POST requests", example_post),
        ("PUT and PATCH requests", example_put_patch),
        ("DELETE and HEAD requests", example_delete_head),
        ("Response headers", example_response_headers),
        ("Status message", example_status_message),
        ("Binary data", example_binary_response),
        ("Blocking calls", example_blocking),
        ("Several requests at once", example_at_once),
    ];
    for (title, section) in sections {
        http.handler_mut().heading(title);
        section(&mut http, base)?;
    }
    let game = http.handler();
    println!(
        "\n{} frames; the longest process_event_que() took {:.2} ms",
        game.frame,
        game.longest_pump.as_secs_f64() * 1000.0
    );
    check_transcript(&game.transcript, TRANSCRIPT)
}

/// Fails at the first line that differs from `want` (blank lines aside);
/// the lines of the [`UNORDERED`] section are compared sorted.
fn check_transcript(got: &[String], want: &str) -> Result<(), String> {
    fn sorted_tail<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let mut lines: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        if let Some(at) = lines.iter().position(|l| *l == UNORDERED) {
            lines[at + 1..].sort_unstable();
        }
        lines
    }
    let got = sorted_tail(got.iter().map(String::as_str));
    let want = sorted_tail(want.lines());
    for (i, w) in want.iter().enumerate() {
        match got.get(i) {
            Some(g) if g == w => {}
            Some(g) => return Err(format!("transcript line {}: wanted {w:?}, got {g:?}", i + 1)),
            None => return Err(format!("transcript line {}: wanted {w:?}, got nothing", i + 1)),
        }
    }
    if got.len() > want.len() {
        return Err(format!("unexpected line {:?}", got[want.len()]));
    }
    Ok(())
}

// --- the tutorial server's routes, for --selftest -----------------------------
// A copy of examples/tutorial_server.rs's: examples cannot share a module.

/// dasHV's `TutorialServer`: `GET /ping`, `POST /echo`, `GET /data`,
/// `GET /json`.
struct TutorialServer;

impl HvWebServer for TutorialServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .post("/echo", |_, _, req| match req.body_text() {
                Some(text) => HttpResponse::text(text),
                None => HttpResponse::binary(req.body()),
            })
            .get("/data", |_, _, _| HttpResponse::text("resource state"))
            .get("/json", |_, _, _| {
                HttpResponse::json_text(r#"{"status":"ok","value":42}"#)
            });
    }
}

/// A server started for the selftest: its base URL, its stop flag, its loop.
type Running = (String, Arc<AtomicBool>, JoinHandle<Result<(), String>>);

/// Starts the tutorial server on 127.0.0.1:0, its loop on a thread.
fn start_server() -> Result<Running, String> {
    let mut server = Server::new(TutorialServer);
    server
        .init_addr("127.0.0.1:0".parse().unwrap())
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let base = format!("http://{}", server.local_addr().ok_or("no address")?);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut pacer = FramePacer::new(60);
        while !flag.load(Ordering::SeqCst) {
            pacer.wait(&mut server).map_err(|e| e.to_string())?;
        }
        server.stop().map_err(|e| e.to_string())
    });
    Ok((base, stop, thread))
}

fn selftest() -> Result<(), String> {
    let (base, stop, server) = start_server()?;
    let result = transcript(&base);
    stop.store(true, Ordering::SeqCst);
    server.join().map_err(|_| "the server loop panicked")??;
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest(),
        ["--url", url] => transcript(url.trim_end_matches('/')),
        _ => Err("usage: hv01_http_client --selftest | --url http://HOST:PORT".into()),
    };
    match result {
        Ok(()) => {
            println!("hv01: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hv01: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
