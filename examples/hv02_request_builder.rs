//! dasHV HV-02 on hvws: the request builder. Method, URL, headers, query
//! parameters, timeouts, Basic and Bearer auth, redirects, Content-Type;
//! then what hvws adds: JSON with serde, urlencoded and multipart forms
//! (a file included), what the server saw of the credentials, a server
//! that never answers, and redirects followed or not. Sent from a game loop
//! that never waits for the network.
//!
//! ```text
//! cargo run --example hv02_request_builder -- --selftest                    # its own server in-process; every line checked
//! cargo run --example tutorial_server -- --port 8080                        # or: a server in one terminal,
//! cargo run --example hv02_request_builder -- --url http://127.0.0.1:8080   # the transcript against it in another
//! ```
//!
//! `--selftest` serves the tutorial server's four routes and, for the
//! last sections, four of its own: `GET /auth` (answers the
//! `Authorization` header it got, 401 without one), `POST /upload` (what
//! it parsed of a multipart form), `GET /never` (never answers) and
//! `GET /old-ping` (302 to `/ping`). With `--url`, against
//! `tutorial_server`, those sections are skipped.
//!
//! Needs the `json` feature (on by default).
//!
//! Walkthrough: `tutorials/13-request-builder.md`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hvws::{
    ClientRequest, ClientResponse, FramePacer, HttpClient, HttpClientError, HttpResponse, HvHttpClient, HvWebServer,
    Method, RequestId, ResponseId, Routes, Server,
};
use serde::{Deserialize, Serialize};

/// dasHV's HV-02 transcript (the lines after `[frame N] `); `{base}` is
/// the server's URL.
const DASHV: &str = r#"
=== Basic request builder ===
request(GET /ping) -> 200: pong

=== Request with body and headers ===
request(POST /echo) -> 200: Hello from request builder!

=== Timeouts ===
request with timeout -> 200: pong

=== Authentication ===
Basic auth request -> 200
Bearer token request -> 200

=== Query parameters ===
Parameters: page=1, limit=10
request with params -> 200

=== Redirect control ===
redirect enabled -> 200

=== Content-Type ===
JSON POST -> 200: {"key":"value"}

=== Inspect request fields ===
Request fields:
  method:  POST
  url:     {base}/echo
  body:    inspect me
  timeout: 15
"#;

/// hvws's own sections, against any server with the tutorial routes.
const HVWS: &str = r#"
=== Query parameters on the wire ===
GET /ping?q=red%20fox%20%26%20co&page=2 -> 200: pong

=== OPTIONS ===
OPTIONS /echo -> 204, Allow: POST, OPTIONS

=== JSON with serde ===
POST /echo -> 200: {"player":"ada","score":42}
  parsed back: Score { player: "ada", score: 42 }
GET /json -> 200 (application/json): status=ok, value=42

=== An urlencoded form ===
POST /echo form -> 200: name=Ada%20Lovelace&score=42

=== The blocking call ===
send_blocking(GET /data) -> 200: resource state
"#;

/// The sections that need the selftest server's own routes.
const SELFTEST_ONLY: &str = r#"
=== What the server saw ===
GET /auth, basic_auth -> 200: Basic dXNlcjpzZWNyZXQ=
GET /auth, bearer_auth -> 200: Bearer eyJhbGciOiJIUzI1NiJ9.example
GET /auth, no credentials -> 401: no Authorization header
POST /upload -> 200: title=screenshot, file=notes.txt (text/plain, 20 bytes)

=== A server that never answers ===
GET /never, timeout 300 ms: queued
error: request timed out

=== Redirects ===
GET /old-ping -> 200: pong (1 redirect, answered by /ping)
GET /old-ping, allow_redirect(false) -> 302, Location: /ping
"#;

/// One frame of the game: 60 a second.
const FRAME: Duration = Duration::from_millis(16);

// --- the game: requests queued, answers handled in callbacks (as in HV-01) --

/// What the game prints when an answer arrives (lines separated by `\n`).
type Show = Box<dyn FnOnce(&ClientResponse) -> String>;

#[derive(Default)]
struct Game {
    frame: u64,
    waiting: HashMap<RequestId, Show>,
    transcript: Vec<String>,
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

fn frame(http: &mut HttpClient<Game>) {
    http.handler_mut().frame += 1;
    http.process_event_que();
    std::thread::sleep(FRAME);
}

/// Queues `req`, then runs frames until it is answered (one at a time, to
/// keep dasHV's order).
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

fn example_basic_request(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // dasHV's `with_http_request` + `req.method = ...` + `req.url := ...`
    // is one value here: `ClientRequest::new(method, url)` (or the
    // shorthands `get`, `post`, `put`, `patch`, `delete`, `head`, `options`).
    let req = ClientRequest::new(Method::Get, &format!("{base}/ping")).timeout(Duration::from_secs(10));
    call(http, req, |r| {
        format!("request(GET /ping) -> {}: {}", r.status(), r.text())
    })
}

fn example_request_with_body(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    let req = ClientRequest::new(Method::Post, &format!("{base}/echo"))
        .body("Hello from request builder!")
        .header("X-Custom", "tutorial-02")
        .header("Content-Type", "text/plain");
    call(http, req, |r| {
        format!("request(POST /echo) -> {}: {}", r.status(), r.text())
    })
}

fn example_timeouts(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // The whole exchange (redirects included), and TCP's connect alone.
    let req = ClientRequest::get(&format!("{base}/ping"))
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5));
    call(http, req, |r| {
        format!("request with timeout -> {}: {}", r.status(), r.text())
    })
}

fn example_auth(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // Authorization: Basic base64("user:secret")
    let req = ClientRequest::get(&format!("{base}/ping")).basic_auth("user", "secret");
    call(http, req, |r| format!("Basic auth request -> {}", r.status()))?;
    // Authorization: Bearer <token>
    let req = ClientRequest::get(&format!("{base}/ping")).bearer_auth("eyJhbGciOiJIUzI1NiJ9.example");
    call(http, req, |r| format!("Bearer token request -> {}", r.status()))
}

fn example_params(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    let req = ClientRequest::get(&format!("{base}/ping"))
        .set_param("page", "1")
        .set_param("limit", "10");
    // Read back what was set (dasHV's `get_param`).
    let page = req.query_param("page").unwrap_or("");
    let limit = req.query_param("limit").unwrap_or("");
    let line = format!("Parameters: page={page}, limit={limit}");
    http.handler_mut().print(&line);
    call(http, req, |r| format!("request with params -> {}", r.status()))
}

fn example_redirect(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // Followed by default (at most 5); `allow_redirect(false)` hands the
    // 3xx to the caller (see "Redirects" below).
    let req = ClientRequest::get(&format!("{base}/ping")).allow_redirect(true);
    call(http, req, |r| format!("redirect enabled -> {}", r.status()))
}

fn example_content_type(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    let req = ClientRequest::post(&format!("{base}/echo"))
        .body(r#"{"key":"value"}"#)
        .header("Content-Type", "application/json");
    call(http, req, |r| format!("JSON POST -> {}: {}", r.status(), r.text()))
}

fn example_inspect_request(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    let req = ClientRequest::post(&format!("{base}/echo"))
        .body_text("inspect me")
        .timeout(Duration::from_secs(15));
    let body = String::from_utf8_lossy(req.payload().unwrap_or_default());
    let timeout = req.total_timeout().map_or(0, |t| t.as_secs());
    let mut out = String::from("Request fields:\n");
    out += &format!("  method:  {}\n", req.method());
    out += &format!("  url:     {}\n", req.url());
    out += &format!("  body:    {body}\n");
    out += &format!("  timeout: {timeout}\n");
    http.handler_mut().print(&out);
    Ok(())
}

// --- hvws's own sections, against any server with the tutorial routes ------

fn example_params_on_the_wire(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // Names and values are percent-encoded; `url()` is what was asked for.
    let req = ClientRequest::get(&format!("{base}/ping"))
        .set_param("q", "red fox & co")
        .set_param("page", "2");
    let base = base.to_owned();
    call(http, req, move |r| {
        let sent = r.url().strip_prefix(base.as_str()).unwrap_or(r.url());
        format!("GET {sent} -> {}: {}", r.status(), r.text())
    })
}

fn example_options(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    call(http, ClientRequest::options(&format!("{base}/echo")), |r| {
        format!(
            "OPTIONS /echo -> {}, Allow: {}",
            r.status(),
            r.header("allow").unwrap_or("-")
        )
    })
}

/// A score as the game sends it, and reads it back.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Score {
    player: String,
    score: u32,
}

/// `GET /json`'s body.
#[derive(Deserialize)]
struct Status {
    status: String,
    value: i64,
}

fn example_json(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // `json(&value)` serializes with serde and sets `application/json`;
    // `r.json::<T>()` parses the answer.
    let score = Score {
        player: "ada".into(),
        score: 42,
    };
    let req = ClientRequest::post(&format!("{base}/echo")).json(&score);
    call(http, req, |r| {
        let mut out = format!("POST /echo -> {}: {}\n", r.status(), r.text());
        match r.json::<Score>() {
            Ok(back) => out += &format!("  parsed back: {back:?}"),
            Err(e) => out += &format!("  not a Score: {e}"),
        }
        out
    })?;
    call(http, ClientRequest::get(&format!("{base}/json")), |r| {
        let ct = r.header("content-type").unwrap_or("-").to_owned();
        match r.json::<Status>() {
            Ok(s) => format!(
                "GET /json -> {} ({ct}): status={}, value={}",
                r.status(),
                s.status,
                s.value
            ),
            Err(e) => format!("GET /json -> {} ({ct}): not JSON: {e}", r.status()),
        }
    })
}

/// Writes the file the multipart example uploads; the directory goes when
/// the returned guard is dropped.
fn upload_file() -> Result<(tempfile::TempDir, std::path::PathBuf), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "notes for the upload").map_err(|e| e.to_string())?;
    Ok((dir, path))
}

fn example_form(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // `application/x-www-form-urlencoded`, as a browser's <form> sends it;
    // /echo shows the body that went out.
    let req = ClientRequest::post(&format!("{base}/echo")).form(&[("name", "Ada Lovelace"), ("score", "42")]);
    call(http, req, |r| {
        format!("POST /echo form -> {}: {}", r.status(), r.text())
    })
}

fn example_blocking(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // dasHV's `request(req) $(resp)` waits for the answer; so does
    // `send_blocking`, on the same client (the frame counter stands still).
    let resp = http
        .send_blocking(ClientRequest::get(&format!("{base}/data")))
        .map_err(|e| e.to_string())?;
    let line = format!("send_blocking(GET /data) -> {}: {}", resp.status(), resp.text());
    http.handler_mut().print(&line);
    Ok(())
}

// --- hvws's own sections on the selftest server's routes --------------------

fn example_server_saw(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // GET /auth answers the Authorization header it received.
    let url = format!("{base}/auth");
    call(http, ClientRequest::get(&url).basic_auth("user", "secret"), |r| {
        format!("GET /auth, basic_auth -> {}: {}", r.status(), r.text())
    })?;
    let req = ClientRequest::get(&url).bearer_auth("eyJhbGciOiJIUzI1NiJ9.example");
    call(http, req, |r| {
        format!("GET /auth, bearer_auth -> {}: {}", r.status(), r.text())
    })?;
    call(http, ClientRequest::get(&url), |r| {
        format!("GET /auth, no credentials -> {}: {}", r.status(), r.text())
    })?;
    // Multipart (dasHV HV-05's set_form_data / set_form_file): each field
    // and file in its part; the file is read when the request is sent.
    // POST /upload answers what hvws's server parsed of it.
    let (_dir, path) = upload_file()?;
    let req = ClientRequest::post(&format!("{base}/upload"))
        .set_form_data("title", "screenshot")
        .set_form_file("file", &path);
    call(http, req, |r| format!("POST /upload -> {}: {}", r.status(), r.text()))
}

fn example_never(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // GET /never is never answered. The timeout ends the request with an
    // error in `on_error`; the frames go on meanwhile.
    let req = ClientRequest::get(&format!("{base}/never")).timeout(Duration::from_millis(300));
    let id = http.request(req).map_err(|e| e.to_string())?;
    http.handler_mut().print("GET /never, timeout 300 ms: queued");
    http.handler_mut()
        .waiting
        .insert(id, Box::new(|r| format!("answered?! {}", r.status())));
    while http.pending() > 0 {
        frame(http);
    }
    Ok(())
}

fn example_redirects(http: &mut HttpClient<Game>, base: &str) -> Result<(), String> {
    // GET /old-ping answers 302 with `Location: /ping`.
    let url = format!("{base}/old-ping");
    let base = base.to_owned();
    call(http, ClientRequest::get(&url), move |r| {
        let answered_by = r.url().strip_prefix(base.as_str()).unwrap_or(r.url());
        format!(
            "GET /old-ping -> {}: {} ({} redirect, answered by {answered_by})",
            r.status(),
            r.text(),
            r.redirects()
        )
    })?;
    call(http, ClientRequest::get(&url).allow_redirect(false), |r| {
        let location = r.header("location").unwrap_or("-");
        format!(
            "GET /old-ping, allow_redirect(false) -> {}, Location: {location}",
            r.status()
        )
    })
}

/// A section of the transcript: its requests, made against `base`.
type Section = fn(&mut HttpClient<Game>, &str) -> Result<(), String>;

fn transcript(base: &str, own_routes: bool) -> Result<(), String> {
    let mut http = HttpClient::new(Game::default());
    let mut sections: Vec<(&str, Section)> = vec![
        ("Basic request builder", example_basic_request),
        ("Request with body and headers", example_request_with_body),
        ("Timeouts", example_timeouts),
        ("Authentication", example_auth),
        ("Query parameters", example_params),
        ("Redirect control", example_redirect),
        ("Content-Type", example_content_type),
        ("Inspect request fields", example_inspect_request),
        ("Query parameters on the wire", example_params_on_the_wire),
        ("OPTIONS", example_options),
        ("JSON with serde", example_json),
        ("An urlencoded form", example_form),
        ("The blocking call", example_blocking),
    ];
    let mut want = format!("{DASHV}{HVWS}");
    if own_routes {
        sections.push(("What the server saw", example_server_saw));
        sections.push(("A server that never answers", example_never));
        sections.push(("Redirects", example_redirects));
        want.push_str(SELFTEST_ONLY);
    }
    for (title, section) in sections {
        http.handler_mut().heading(title);
        section(&mut http, base)?;
    }
    if !own_routes {
        println!("\n(/auth, /upload, /never and /old-ping are routes of --selftest's server: those sections skipped)");
    }
    check_transcript(&http.handler().transcript, &want.replace("{base}", base))
}

/// Fails at the first line that differs from `want` (blank lines aside).
fn check_transcript(got: &[String], want: &str) -> Result<(), String> {
    let got: Vec<&str> = got.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
    let want: Vec<&str> = want.lines().filter(|l| !l.is_empty()).collect();
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

// --- the selftest's server: the tutorial server's routes and four more ------
// The first four are a copy of examples/tutorial_server.rs's: examples cannot
// share a module.

/// The tutorial server, plus what the last sections need. It keeps the
/// requests to `/never`, unanswered, until their client gives up.
#[derive(Default)]
struct SelftestServer {
    never: Vec<ResponseId>,
}

impl HvWebServer for SelftestServer {
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
            })
            // The selftest's own.
            .get("/auth", |_, _, req| match req.header("authorization") {
                Some(credentials) => HttpResponse::text(credentials),
                None => HttpResponse::text("no Authorization header").with_status(401),
            })
            .post("/upload", |_, _, req| {
                let Some(form) = req.form() else {
                    return HttpResponse::text("not a form").with_status(400);
                };
                let title = form.field("title").unwrap_or("-");
                match form.file("file") {
                    Some(f) => HttpResponse::text(format!(
                        "title={title}, file={} ({}, {} bytes)",
                        f.file_name().unwrap_or("-"),
                        f.content_type(),
                        f.len()
                    )),
                    None => HttpResponse::text("no file").with_status(400),
                }
            })
            .get("/never", |app: &mut SelftestServer, ctx, _| {
                app.never.extend(ctx.defer());
                HttpResponse::deferred()
            })
            .get("/old-ping", |_, _, _| HttpResponse::redirect(302, "/ping"));
    }

    fn on_response_abandoned(&mut self, _ctx: &mut hvws::Context<'_>, id: ResponseId) {
        self.never.retain(|&n| n != id);
    }
}

/// A server started for the selftest: its base URL, its stop flag, its loop.
type Running = (String, Arc<AtomicBool>, JoinHandle<Result<(), String>>);

/// Starts the selftest's server on 127.0.0.1:0, its loop on a thread.
fn start_server() -> Result<Running, String> {
    let mut server = Server::new(SelftestServer::default());
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
    let result = transcript(&base, true);
    stop.store(true, Ordering::SeqCst);
    server.join().map_err(|_| "the server loop panicked")??;
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest(),
        ["--url", url] => transcript(url.trim_end_matches('/'), false),
        _ => Err("usage: hv02_request_builder --selftest | --url http://HOST:PORT".into()),
    };
    match result {
        Ok(()) => {
            println!("hv02: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hv02: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
