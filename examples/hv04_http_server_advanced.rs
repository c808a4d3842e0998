//! dasHV HV-04 on hvws: static files, CORS, redirects, caching headers and
//! 304s, binary and HTML bodies, 201/204/404 answers, and middleware.
//!
//! ```text
//! cargo run --example hv04_http_server_advanced -- --selftest                 # exit 0 if the transcript happened
//! cargo run --example hv04_http_server_advanced -- --port 8080 --static ./public   # serve until Ctrl-C
//! curl -i http://127.0.0.1:8080/static/
//! curl -i -H 'Range: bytes=0-99' http://127.0.0.1:8080/static/index.html
//! curl -i -X OPTIONS -H 'Origin: https://a.example' -H 'Access-Control-Request-Method: POST' \
//!      http://127.0.0.1:8080/items
//! curl -i -H 'If-None-Match: "v1.0"' http://127.0.0.1:8080/cached
//! curl -i -d 'new item' http://127.0.0.1:8080/items
//! curl -i -H 'Authorization: Bearer letmein' http://127.0.0.1:8080/admin/stats
//! ```
//!
//! Without `--static`, the server makes a small sample site in the temp
//! directory and serves that. Each answer is logged to stderr (the access
//! log; `RUST_LOG` changes what else is).
//!
//! Routes (HV-04's, then one beyond it), CORS on all of them:
//! - `/static/*`: the files under the static directory, with their types,
//!   validators and ranges; a directory gives its `index.html`;
//! - `GET /old-path`: 301 to `/new-path`; `GET /new-path`:
//!   `you arrived at /new-path`;
//! - `GET /cached`: `cached response` with `Cache-Control`, `ETag: "v1.0"`
//!   and `X-Server`; 304 to `If-None-Match: "v1.0"`;
//! - `GET /binary`: the 15 bytes `BINARY\0DATA1234`,
//!   `application/octet-stream`;
//! - `GET /html`: `<h1>Hello from hvws!</h1>` as `text/html`;
//! - `GET /not-found`: 404 `{"error":"resource not found","code":404}`;
//! - `POST /items`: 201, `Location: /items/42`, `{"id":42,"body":"<body>"}`;
//! - `POST /ack`: 204;
//! - `GET /admin/stats`: `3 players online`, for `Authorization: Bearer
//!   letmein` only (a before-middleware answers 401 to anything under
//!   `/admin/` without it); an after-middleware adds
//!   `X-Content-Type-Options: nosniff` to every answer.
//!
//! Walkthrough: `tutorials/09-http-server-advanced.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hvws::{Cors, FramePacer, HttpResponse, HvWebServer, Routes, Server};
use serde::Serialize;

/// The version of `/cached`'s body, as its `ETag` names it.
const CACHED_ETAG: &str = "\"v1.0\"";

/// What `/admin/*` wants in `Authorization`.
const ADMIN_TOKEN: &str = "Bearer letmein";

/// HV-04's server: the directory that `/static/*` serves.
struct AdvancedServer {
    static_dir: PathBuf,
}

/// `GET /not-found`'s body.
#[derive(Serialize)]
struct ApiError {
    error: &'static str,
    code: u16,
}

/// `POST /items`'s body: the item made from the request.
#[derive(Serialize)]
struct Item {
    id: u32,
    body: String,
}

impl HvWebServer for AdvancedServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            // Section 1: the files under a directory.
            .static_dir("/static", self.static_dir.clone())
            // Section 2: CORS on every route; preflights are answered
            // before routing.
            .cors(
                Cors::new()
                    .allow_any_origin()
                    .expose_headers(&["ETag", "Location", "X-Server"])
                    .max_age(Duration::from_secs(600)),
            )
            // Section 3: a redirect.
            .get("/old-path", |_, _, _| HttpResponse::redirect(301, "/new-path"))
            .get("/new-path", |_, _, _| HttpResponse::text("you arrived at /new-path"))
            // Section 4: caching headers, and the 304 they make possible.
            .get("/cached", |_, _, req| {
                let unchanged = req
                    .header("if-none-match")
                    .is_some_and(|tags| etag_matches(tags, CACHED_ETAG));
                let resp = if unchanged {
                    HttpResponse::new(304)
                } else {
                    HttpResponse::text("cached response")
                };
                resp.with_header("Cache-Control", "max-age=3600, public")
                    .with_header("ETag", CACHED_ETAG)
                    .with_header("X-Server", "hvws-tutorial")
            })
            // Section 5: bytes that are not text.
            .get("/binary", |_, _, _| HttpResponse::binary(b"BINARY\0DATA1234"))
            // Section 6: content types and status codes.
            .get("/html", |_, _, _| HttpResponse::html("<h1>Hello from hvws!</h1>"))
            .get("/not-found", |_, _, _| {
                HttpResponse::json(&ApiError {
                    error: "resource not found",
                    code: 404,
                })
                .with_status(404)
            })
            .post("/items", |_, _, req| {
                let item = Item {
                    id: 42,
                    body: String::from_utf8_lossy(req.body()).into_owned(),
                };
                let json = serde_json::to_vec(&item).expect("a number and a string serialize");
                HttpResponse::created("/items/42")
                    .with_header("Content-Type", "application/json")
                    .with_body(json)
            })
            .post("/ack", |_, _, _| HttpResponse::new(204))
            // Section 7: middleware. Before: `/admin/*` wants a token.
            .before(|_, _, req| {
                let admin = req.path().starts_with("/admin/");
                let authorized = req.header("authorization") == Some(ADMIN_TOKEN);
                (admin && !authorized).then(|| HttpResponse::error(401).with_header("WWW-Authenticate", "Bearer"))
            })
            .get("/admin/stats", |_, _, _| HttpResponse::text("3 players online"))
            // After: every answer, early ones and the router's own too.
            .after(|_req, resp| resp.set_header("X-Content-Type-Options", "nosniff"))
            // One line per answer through the `log` crate (target `hvws::access`).
            .access_log(true);
    }
}

/// Whether an `If-None-Match` value (`"v1.0"`, `"a", W/"b"` or `*`) names
/// `etag`: RFC 9110's weak comparison, which ignores `W/`.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// The game loop: 60 frames a second, requests answered as they arrive
/// while `wait` waits for the next frame.
fn run(mut server: Server<AdvancedServer>, stop: &AtomicBool) -> Result<(), String> {
    let mut pacer = FramePacer::new(60);
    while !stop.load(Ordering::SeqCst) {
        pacer.wait(&mut server).map_err(|e| e.to_string())?;
        // The game's frame would run here.
    }
    server.stop().map_err(|e| e.to_string())
}

fn serve(port: u16, static_dir: Option<PathBuf>) -> Result<(), String> {
    // The access log's lines go to stderr.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("hvws::access=info")).init();
    let sample;
    let static_dir = match static_dir {
        Some(dir) if dir.is_dir() => dir,
        Some(dir) => return Err(format!("--static {}: not a directory", dir.display())),
        None => {
            sample = SampleSite::create()?;
            sample.site.clone()
        }
    };
    let mut server = Server::new(AdvancedServer {
        static_dir: static_dir.clone(),
    });
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    println!(
        "hv04: serving on http://0.0.0.0:{port}/, /static/ from {} (Ctrl-C stops)",
        static_dir.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    run(server, &stop)
}

/// A sample site in the temp directory, removed when dropped:
/// `site/` (what `/static/` serves) holds `index.html`, `style.css`,
/// `data.json` and `docs/index.html`; `secret.txt` lies next to `site/`,
/// outside it, for the traversal attempts to aim at.
struct SampleSite {
    root: PathBuf,
    site: PathBuf,
}

impl SampleSite {
    fn create() -> Result<SampleSite, String> {
        let root = std::env::temp_dir().join(format!("hvws-hv04-{}", std::process::id()));
        let site = root.join("site");
        let files: [(&str, &str); 5] = [
            ("site/index.html", "<h1>Welcome</h1>"),
            ("site/style.css", "body { color: red; }"),
            ("site/data.json", r#"{"hello":"world"}"#),
            ("site/docs/index.html", "<h1>Docs</h1>"),
            ("secret.txt", "the static route must never serve this"),
        ];
        let write = |rel: &str, content: &str| -> std::io::Result<()> {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(path, content)
        };
        for (rel, content) in files {
            write(rel, content).map_err(|e| format!("{}: {e}", root.join(rel).display()))?;
        }
        Ok(SampleSite { root, site })
    }
}

impl Drop for SampleSite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
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

fn check(what: &str, ok: bool) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

/// Fails unless `r` is `status` with `body`.
fn expect(what: &str, r: &Reply, status: u16, body: &[u8]) -> Result<(), String> {
    check(
        &format!(
            "{what}: wanted {status} {:?}, got {} {:?}",
            String::from_utf8_lossy(body),
            r.status,
            r.text()
        ),
        r.status == status && r.body == body,
    )
}

/// Prints `  Name: value` for each of `names` that `r` has.
fn show_headers(r: &Reply, names: &[&str]) {
    for name in names {
        if let Some(value) = r.header(name) {
            println!("  {name}: {value}");
        }
    }
}

fn selftest() -> Result<(), String> {
    let sample = SampleSite::create()?;
    let mut server = Server::new(AdvancedServer {
        static_dir: sample.site.clone(),
    });
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
    let get = |target: &str, headers: &[(&str, &str)]| fetch(addr, "GET", target, headers, b"");
    let nosniff = |r: &Reply| r.header("x-content-type-options") == Some("nosniff");

    println!("=== Section 1: Static file serving ===");
    let r = get("/static/index.html", &[])?;
    println!("GET /static/index.html -> {}: {}", r.status, r.text());
    expect("index.html", &r, 200, b"<h1>Welcome</h1>")?;
    let r = get("/static/style.css", &[])?;
    let content_type = r.header("content-type").unwrap_or("-");
    println!("GET /static/style.css -> {} (Content-Type: {content_type})", r.status);
    check(
        "style.css is CSS",
        r.status == 200 && content_type == "text/css; charset=utf-8",
    )?;
    let r = get("/static/data.json", &[])?;
    println!("GET /static/data.json -> {}: {}", r.status, r.text());
    show_headers(&r, &["Content-Type", "ETag", "Last-Modified", "Accept-Ranges"]);
    expect("data.json", &r, 200, br#"{"hello":"world"}"#)?;
    let etag = r.header("etag").ok_or("data.json has an ETag")?.to_owned();
    check(
        "validators",
        r.header("last-modified").is_some() && r.header("accept-ranges") == Some("bytes"),
    )?;

    let r = get("/static/data.json", &[("If-None-Match", &etag)])?;
    println!(
        "GET /static/data.json, If-None-Match: {etag} -> {} ({} body bytes)",
        r.status,
        r.body.len()
    );
    check("304 for the tag we have", r.status == 304 && r.body.is_empty())?;
    let r = get("/static/data.json", &[("Range", "bytes=0-7")])?;
    let range = r.header("content-range").unwrap_or("-");
    println!(
        "GET /static/data.json, Range: bytes=0-7 -> {}: {} (Content-Range: {range})",
        r.status,
        r.text()
    );
    expect("the first 8 bytes", &r, 206, br#"{"hello""#)?;
    check("Content-Range", range == "bytes 0-7/17")?;
    let r = fetch(addr, "HEAD", "/static/style.css", &[], b"")?;
    let length = r.header("content-length").unwrap_or("-");
    println!(
        "HEAD /static/style.css -> {}, Content-Length: {length}, {} body bytes",
        r.status,
        r.body.len()
    );
    check(
        "HEAD: the length, no body",
        r.status == 200 && length == "20" && r.body.is_empty(),
    )?;

    let r = get("/static/", &[])?;
    println!("GET /static/ -> {}: {}", r.status, r.text());
    expect("the directory's index.html", &r, 200, b"<h1>Welcome</h1>")?;
    let r = get("/static/docs", &[])?;
    let location = r.header("location").unwrap_or("-");
    println!("GET /static/docs -> {}, Location: {location}", r.status);
    check("301 to the slash", r.status == 301 && location == "/static/docs/")?;
    let r = get("/static/docs/", &[])?;
    println!("GET /static/docs/ -> {}: {}", r.status, r.text());
    expect("docs/index.html", &r, 200, b"<h1>Docs</h1>")?;
    for evil in [
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/docs/../../secret.txt",
    ] {
        let r = get(evil, &[])?;
        println!("GET {evil} -> {}: {}", r.status, r.text());
        expect("no way out of the directory", &r, 404, b"Not Found")?;
        check("nosniff on the static 404", nosniff(&r))?;
    }

    println!("\n=== Section 2: CORS ===");
    let preflight = [
        ("Origin", "https://a.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    let r = fetch(addr, "OPTIONS", "/items", &preflight, b"")?;
    println!(
        "OPTIONS /items (preflight from https://a.example for POST) -> {}",
        r.status
    );
    show_headers(
        &r,
        &[
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers",
            "Access-Control-Max-Age",
        ],
    );
    check(
        "the preflight's answer",
        r.status == 204
            && r.header("access-control-allow-origin") == Some("*")
            && r.header("access-control-allow-methods") == Some("GET, HEAD, POST, PUT, PATCH, DELETE")
            && r.header("access-control-allow-headers") == Some("content-type")
            && r.header("access-control-max-age") == Some("600")
            && nosniff(&r),
    )?;
    let r = get("/new-path", &[("Origin", "https://a.example")])?;
    println!(
        "GET /new-path (Origin: https://a.example) -> {}: {}",
        r.status,
        r.text()
    );
    show_headers(&r, &["Access-Control-Allow-Origin", "Access-Control-Expose-Headers"]);
    check(
        "CORS headers on an ordinary answer",
        r.header("access-control-allow-origin") == Some("*")
            && r.header("access-control-expose-headers") == Some("ETag, Location, X-Server"),
    )?;

    println!("\n=== Section 3: Redirect ===");
    let r = get("/old-path", &[])?;
    let location = r.header("location").unwrap_or("-").to_owned();
    println!("GET /old-path -> {}, Location: {location}", r.status);
    check("301 to /new-path", r.status == 301 && location == "/new-path")?;
    let r = get(&location, &[])?;
    println!("GET {location} (followed) -> {}: {}", r.status, r.text());
    expect("/new-path", &r, 200, b"you arrived at /new-path")?;

    println!("\n=== Section 4: Custom headers and caching ===");
    let r = get("/cached", &[])?;
    println!("GET /cached -> {}: {}", r.status, r.text());
    show_headers(&r, &["Cache-Control", "ETag", "X-Server"]);
    expect("/cached", &r, 200, b"cached response")?;
    check(
        "the caching headers",
        r.header("cache-control") == Some("max-age=3600, public")
            && r.header("etag") == Some(CACHED_ETAG)
            && r.header("x-server") == Some("hvws-tutorial"),
    )?;
    for tags in [CACHED_ETAG, "\"v0.9\", W/\"v1.0\""] {
        let r = get("/cached", &[("If-None-Match", tags)])?;
        println!(
            "GET /cached, If-None-Match: {tags} -> {} ({} body bytes, ETag: {})",
            r.status,
            r.body.len(),
            r.header("etag").unwrap_or("-")
        );
        check(
            "304 for a tag that matches",
            r.status == 304 && r.body.is_empty() && nosniff(&r),
        )?;
    }
    let r = get("/cached", &[("If-None-Match", "\"v0.9\"")])?;
    println!("GET /cached, If-None-Match: \"v0.9\" -> {}: {}", r.status, r.text());
    expect("an old tag gets the body", &r, 200, b"cached response")?;

    println!("\n=== Section 5: Binary response ===");
    let r = get("/binary", &[])?;
    println!(
        "GET /binary -> {} ({} bytes, {}): {:?}",
        r.status,
        r.body.len(),
        r.header("content-type").unwrap_or("-"),
        r.text()
    );
    expect("/binary", &r, 200, b"BINARY\0DATA1234")?;
    check(
        "octet-stream",
        r.header("content-type") == Some("application/octet-stream"),
    )?;

    println!("\n=== Section 6: Content-Type and status codes ===");
    let r = get("/html", &[])?;
    let content_type = r.header("content-type").unwrap_or("-");
    println!("GET /html -> {} ({content_type}): {}", r.status, r.text());
    expect("/html", &r, 200, b"<h1>Hello from hvws!</h1>")?;
    check("HTML", content_type == "text/html; charset=utf-8")?;
    let r = get("/not-found", &[])?;
    let content_type = r.header("content-type").unwrap_or("-");
    println!("GET /not-found -> {} ({content_type}): {}", r.status, r.text());
    expect("/not-found", &r, 404, br#"{"error":"resource not found","code":404}"#)?;
    check("JSON", content_type == "application/json")?;
    let r = fetch(addr, "POST", "/items", &[], b"new item")?;
    let location = r.header("location").unwrap_or("-");
    println!(
        "POST /items 'new item' -> {}, Location: {location}: {}",
        r.status,
        r.text()
    );
    expect("/items", &r, 201, br#"{"id":42,"body":"new item"}"#)?;
    check("Location", location == "/items/42")?;
    let r = fetch(addr, "POST", "/ack", &[], b"done")?;
    println!(
        "POST /ack 'done' -> {} (Content-Length: {}, {} body bytes)",
        r.status,
        r.header("content-length").unwrap_or("none"),
        r.body.len()
    );
    check(
        "204, no body, no length",
        r.status == 204 && r.body.is_empty() && r.header("content-length").is_none(),
    )?;

    println!("\n=== Section 7: Middleware ===");
    let r = get("/admin/stats", &[])?;
    let challenge = r.header("www-authenticate").unwrap_or("-");
    println!(
        "GET /admin/stats -> {}, WWW-Authenticate: {challenge}: {}",
        r.status,
        r.text()
    );
    expect("no token", &r, 401, b"Unauthorized")?;
    check(
        "the challenge, and the after-middleware's header",
        challenge == "Bearer" && nosniff(&r),
    )?;
    let r = get("/admin/stats", &[("Authorization", "Bearer guess")])?;
    println!("GET /admin/stats, Authorization: Bearer guess -> {}", r.status);
    check("a wrong token", r.status == 401)?;
    let preflight = [
        ("Origin", "https://a.example"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "authorization"),
    ];
    let r = fetch(addr, "OPTIONS", "/admin/stats", &preflight, b"")?;
    println!(
        "OPTIONS /admin/stats (preflight, no token) -> {}, Access-Control-Allow-Headers: {}",
        r.status,
        r.header("access-control-allow-headers").unwrap_or("-")
    );
    check(
        "a preflight never meets the auth middleware",
        r.status == 204 && nosniff(&r),
    )?;
    let r = get("/admin/stats", &[("Authorization", ADMIN_TOKEN)])?;
    println!(
        "GET /admin/stats, Authorization: {ADMIN_TOKEN} -> {}: {}",
        r.status,
        r.text()
    );
    expect("the token", &r, 200, b"3 players online")?;
    println!(
        "X-Content-Type-Options: nosniff on every answer (checked on the 401, the 404s, the 304s and the preflights)"
    );
    check("nosniff", nosniff(&r))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("hv04: OK")),
        ["--port", p] => port(p).and_then(|p| serve(p, None)),
        ["--port", p, "--static", dir] | ["--static", dir, "--port", p] => {
            port(p).and_then(|p| serve(p, Some(PathBuf::from(dir))))
        }
        _ => Err("usage: hv04_http_server_advanced --selftest | --port N [--static DIR]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv04: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn port(p: &str) -> Result<u16, String> {
    p.parse().map_err(|e| format!("port {p:?}: {e}"))
}
