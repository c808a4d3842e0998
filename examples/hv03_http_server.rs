//! dasHV HV-03 on hvws: an HTTP server's routes for every method, path and
//! query parameters, response headers, JSON in and out, one route for any
//! method.
//!
//! ```text
//! cargo run --example hv03_http_server -- --selftest      # exit 0 if the transcript happened
//! cargo run --example hv03_http_server -- --port 8080     # serve until Ctrl-C
//! curl -i http://127.0.0.1:8080/hello
//! curl -d 'Hello from client!' http://127.0.0.1:8080/echo
//! curl -X PUT -d 'updated data' http://127.0.0.1:8080/resource
//! curl -I http://127.0.0.1:8080/resource
//! curl 'http://127.0.0.1:8080/search?q=hvws&page=1&limit=10'
//! curl -d '{"msg":"hello"}' http://127.0.0.1:8080/api/echo
//! curl -X PURGE http://127.0.0.1:8080/any-method
//! ```
//!
//! Routes (HV-03's):
//! - `GET /hello`: `Hello, world!`;
//! - `POST /echo`: the body, byte for byte;
//! - `PUT`/`PATCH /resource`: `PUT: <body>`/`PATCH: <body>`;
//!   `DELETE /resource`: `DELETE: ok`; `HEAD /resource`: the header
//!   `X-Resource-Exists: true` and no body;
//! - `GET /users/:id`: `user: <id>`; `GET /users/:id/posts/:post_id`:
//!   `user=<id>, post=<post_id>`;
//! - `GET /search`: `query: k=v k=v ...`, the query parameters decoded, in
//!   the order sent;
//! - `GET /headers`: `check headers` with `X-Custom: tutorial-03` and
//!   `X-Request-Id: 12345`;
//! - `GET /api/status`: `{"status":"ok","version":3}`;
//! - `POST /api/echo`: the JSON body parsed and written again, or 400
//!   `parse error: ...`;
//! - `/any-method`, every method: `method: <METHOD>`.
//!
//! Walkthrough: `tutorials/08-http-server.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hvws::{FramePacer, HttpResponse, HvWebServer, Routes, Server};
use serde::Serialize;

/// HV-03's server. Every answer comes from the request alone, so it holds
/// no state.
struct TutorialHttpServer;

/// `GET /api/status`'s body: a struct's fields are written in their order.
#[derive(Serialize)]
struct Status {
    status: &'static str,
    version: u32,
}

impl HvWebServer for TutorialHttpServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            // Section 1: a GET route.
            .get("/hello", |_, _, _| HttpResponse::text("Hello, world!"))
            // Section 2: POST; the body comes back byte for byte.
            .post("/echo", |_, _, req| match req.body_text() {
                Some(text) => HttpResponse::text(text),
                None => HttpResponse::binary(req.body()),
            })
            // Section 3: the other methods, on one path.
            .put("/resource", |_, _, req| {
                HttpResponse::text(format!("PUT: {}", String::from_utf8_lossy(req.body())))
            })
            .patch("/resource", |_, _, req| {
                HttpResponse::text(format!("PATCH: {}", String::from_utf8_lossy(req.body())))
            })
            .delete("/resource", |_, _, _| HttpResponse::text("DELETE: ok"))
            .head("/resource", |_, _, _| {
                HttpResponse::new(200).with_header("X-Resource-Exists", "true")
            })
            // Section 4: path parameters.
            .get("/users/:id", |_, _, req| {
                HttpResponse::text(format!("user: {}", req.param("id").unwrap_or_default()))
            })
            .get("/users/:id/posts/:post_id", |_, _, req| {
                let id = req.param("id").unwrap_or_default();
                let post_id = req.param("post_id").unwrap_or_default();
                HttpResponse::text(format!("user={id}, post={post_id}"))
            })
            // Section 5: query parameters, decoded, in the order sent.
            .get("/search", |_, _, req| {
                let mut result = String::from("query:");
                for (key, value) in req.query_params() {
                    result.push_str(&format!(" {key}={value}"));
                }
                HttpResponse::text(result)
            })
            // Section 6: response headers.
            .get("/headers", |_, _, _| {
                HttpResponse::text("check headers")
                    .with_header("X-Custom", "tutorial-03")
                    .with_header("X-Request-Id", "12345")
            })
            // Section 7: JSON out, and JSON in.
            .get("/api/status", |_, _, _| {
                HttpResponse::json(&Status {
                    status: "ok",
                    version: 3,
                })
            })
            .post("/api/echo", |_, _, req| match req.json::<serde_json::Value>() {
                Ok(value) => HttpResponse::json(&value),
                Err(e) => e.into(),
            })
            // Section 8: one handler for every method.
            .any("/any-method", |_, _, req| {
                HttpResponse::text(format!("method: {}", req.method()))
            });
    }
}

/// The game loop: 60 frames a second, requests answered as they arrive
/// while `wait` waits for the next frame.
fn run(mut server: Server<TutorialHttpServer>, stop: &AtomicBool) -> Result<(), String> {
    let mut pacer = FramePacer::new(60);
    while !stop.load(Ordering::SeqCst) {
        pacer.wait(&mut server).map_err(|e| e.to_string())?;
        // The game's frame would run here.
    }
    server.stop().map_err(|e| e.to_string())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(TutorialHttpServer);
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    println!("hv03: serving on http://0.0.0.0:{port}/ (Ctrl-C stops)");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    run(server, &stop)
}

// --- the selftest: a raw HTTP client, and what it sees ----------------------

/// An answer as it came off the wire.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a new connection (`Connection: close`) and reads
/// the whole answer; checks that a `Content-Length` says what came.
fn fetch(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, String> {
    let what = format!("{method} {target}");
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{what}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    s.write_all(&request).map_err(|e| format!("{what}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("{what}: reading: {e}"))?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(format!("{what}: no complete head in {raw:?}"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(format!("{what}: no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    // A HEAD's Content-Length is the GET's; no body follows it.
    let said = reply.header("content-length").filter(|_| method != "HEAD");
    if said.is_some_and(|len| len != reply.body.len().to_string()) {
        return Err(format!(
            "{what}: Content-Length {said:?}, {} bytes came",
            reply.body.len()
        ));
    }
    Ok(reply)
}

/// Prints dasHV's transcript line, `GET /hello -> 200: Hello, world!`,
/// with the body sent, if any, as curl's `-d` would have it.
fn show(method: &str, target: &str, sent: &str, r: &Reply) {
    let sent = if sent.is_empty() {
        String::new()
    } else {
        format!(" '{sent}'")
    };
    println!("{method} {target}{sent} -> {}: {}", r.status, r.text());
}

/// Fails unless `r` is `status` with `body`.
fn expect(r: &Reply, status: u16, body: &str) -> Result<(), String> {
    if r.status == status && r.body == body.as_bytes() {
        Ok(())
    } else {
        Err(format!("wanted {status} {body:?}, got {} {:?}", r.status, r.text()))
    }
}

fn check(what: &str, ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

/// Sends a request, prints its transcript line and checks the answer.
fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &str,
    status: u16,
    want: &str,
) -> Result<Reply, String> {
    let r = fetch(addr, method, target, &[], body.as_bytes())?;
    show(method, target, body, &r);
    expect(&r, status, want).map_err(|e| format!("{method} {target}: {e}"))?;
    Ok(r)
}

fn selftest() -> Result<(), String> {
    let mut server = Server::new(TutorialHttpServer);
    server
        .init_addr("127.0.0.1:0".parse().unwrap())
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let addr = server.local_addr().ok_or("no address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let loop_flag = Arc::clone(&stop);
    let game = std::thread::spawn(move || run(server, &loop_flag));
    let result = transcript(addr);
    stop.store(true, Ordering::SeqCst);
    game.join().map_err(|_| "the game loop panicked")??;
    result
}

fn transcript(addr: SocketAddr) -> Result<(), String> {
    println!("=== Section 1: Minimal GET route ===");
    exchange(addr, "GET", "/hello", "", 200, "Hello, world!")?;

    println!("\n=== Section 2: POST route ===");
    exchange(addr, "POST", "/echo", "Hello from client!", 200, "Hello from client!")?;
    let bytes = [0xff, 0x00, 0xfe, 0x01];
    let r = fetch(addr, "POST", "/echo", &[], &bytes)?;
    println!(
        "POST /echo {bytes:?} (not UTF-8) -> {}: {:?} ({})",
        r.status,
        r.body,
        r.header("content-type").unwrap_or("-")
    );
    check("bytes that are not text come back as they were", r.body == bytes)?;

    println!("\n=== Section 3: All HTTP methods ===");
    exchange(addr, "PUT", "/resource", "updated data", 200, "PUT: updated data")?;
    exchange(
        addr,
        "PATCH",
        "/resource",
        "partial update",
        200,
        "PATCH: partial update",
    )?;
    exchange(addr, "DELETE", "/resource", "", 200, "DELETE: ok")?;
    let r = fetch(addr, "HEAD", "/resource", &[], b"")?;
    let exists = r.header("x-resource-exists").unwrap_or("-");
    println!("HEAD /resource -> {}, X-Resource-Exists: {exists}", r.status);
    check(
        "HEAD /resource",
        r.status == 200 && exists == "true" && r.body.is_empty(),
    )?;
    let r = fetch(addr, "HEAD", "/hello", &[], b"")?;
    let length = r.header("content-length").unwrap_or("-");
    println!(
        "HEAD /hello -> {}, Content-Length: {length}, {} body bytes (GET's answer, without its body)",
        r.status,
        r.body.len()
    );
    check(
        "HEAD of a GET route",
        r.status == 200 && length == "13" && r.body.is_empty(),
    )?;
    let r = fetch(addr, "GET", "/resource", &[], b"")?;
    let allow = r.header("allow").unwrap_or("-");
    println!("GET /resource -> {}, Allow: {allow}", r.status);
    check("405 with Allow", r.status == 405 && allow == "HEAD, PUT, PATCH, DELETE")?;

    println!("\n=== Section 4: Path parameters ===");
    exchange(addr, "GET", "/users/42", "", 200, "user: 42")?;
    exchange(addr, "GET", "/users/7/posts/99", "", 200, "user=7, post=99")?;
    exchange(addr, "GET", "/users/ada%20lovelace", "", 200, "user: ada lovelace")?;
    exchange(addr, "GET", "/users/42?id=7", "", 200, "user: 42")?;

    println!("\n=== Section 5: Query parameters ===");
    exchange(
        addr,
        "GET",
        "/search?q=hvws&page=1&limit=10",
        "",
        200,
        "query: q=hvws page=1 limit=10",
    )?;
    exchange(
        addr,
        "GET",
        "/search?tag=b&tag=a&q=hello%20world",
        "",
        200,
        "query: tag=b tag=a q=hello world",
    )?;
    exchange(addr, "GET", "/search", "", 200, "query:")?;

    println!("\n=== Section 6: Response headers ===");
    let r = fetch(addr, "GET", "/headers", &[], b"")?;
    let custom = r.header("x-custom").unwrap_or("-");
    let request_id = r.header("x-request-id").unwrap_or("-");
    println!(
        "GET /headers -> {}, X-Custom: {custom}, X-Request-Id: {request_id}: {}",
        r.status,
        r.text()
    );
    check("the two headers", custom == "tutorial-03" && request_id == "12345")?;
    expect(&r, 200, "check headers")?;

    println!("\n=== Section 7: JSON responses ===");
    let r = fetch(addr, "GET", "/api/status", &[], b"")?;
    let content_type = r.header("content-type").unwrap_or("-");
    println!("GET /api/status -> {} ({content_type}): {}", r.status, r.text());
    expect(&r, 200, r#"{"status":"ok","version":3}"#)?;
    check("application/json", content_type == "application/json")?;
    let parsed: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    println!(
        "  parsed OK: status={}, version={}",
        parsed["status"].as_str().unwrap_or("?"),
        parsed["version"]
    );
    exchange(
        addr,
        "POST",
        "/api/echo",
        r#"{"msg":"hello"}"#,
        200,
        r#"{"msg":"hello"}"#,
    )?;
    exchange(
        addr,
        "POST",
        "/api/echo",
        r#"{ "name": "ada", "score": 12.5, "tags": ["a", "b"], "alive": true }"#,
        200,
        r#"{"alive":true,"name":"ada","score":12.5,"tags":["a","b"]}"#,
    )?;
    exchange(
        addr,
        "POST",
        "/api/echo",
        "{oops",
        400,
        "parse error: key must be a string at line 1 column 2",
    )?;

    println!("\n=== Section 8: ANY route ===");
    for method in ["GET", "POST", "DELETE", "PURGE"] {
        exchange(addr, method, "/any-method", "", 200, &format!("method: {method}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("hv03: OK")),
        ["--port", p] => p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}")).and_then(serve),
        _ => Err("usage: hv03_http_server --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv03: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
