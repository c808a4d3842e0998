//! dasHV HV-05 on hvws: cookies, urlencoded forms and multipart uploads,
//! the uploads parsed as they arrive and saved where the client cannot
//! choose the path.
//!
//! ```text
//! cargo run --example hv05_cookies_and_forms -- --selftest      # exit 0 if the transcript happened
//! cargo run --example hv05_cookies_and_forms -- --port 8080 --upload-dir /tmp/uploads
//! curl -i -c - http://127.0.0.1:8080/set-cookies
//! curl -b 'session=abc123' http://127.0.0.1:8080/read-cookies
//! curl -b 'token=xyz789; lang=en' http://127.0.0.1:8080/list-cookies
//! curl -F title=x -F description=y -F attachment=@notes.txt http://127.0.0.1:8080/upload
//! curl -d 'username=admin&password=secret123' http://127.0.0.1:8080/login
//! ```
//!
//! Routes (HV-05's own):
//! - `GET /set-cookies`: `cookies set`, with the cookies `session=abc123` and
//!   `prefs=dark-mode` (each `Path=/`, `Max-Age=3600`, `HttpOnly`);
//! - `GET /read-cookies`: `{"session":…,"prefs":…}`, `not found` for a
//!   cookie the request lacks;
//! - `GET /list-cookies`: every cookie of the request, `n=v, n=v`;
//! - `POST /upload` (multipart: `title`, `description`, file `attachment`):
//!   saves the file in the upload directory and answers
//!   `{"title":…,"description":…,"save_status":…,"field_count":…}`
//!   (`save_status` 200 when saved, else the `UploadError`'s status: 409 for
//!   a name already taken; `field_count` counts text fields and files);
//! - `POST /login` (urlencoded `username`, `password`):
//!   `{"username":…,"password":…}`.
//!
//! Files over 8 MiB get 413 before the route runs; files over 64 KiB go to
//! a temporary file in the upload directory as they arrive.
//!
//! Walkthrough: `tutorials/10-cookies-and-forms.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hvws::cookie::time::Duration as CookieDuration;
use hvws::cookie::CookieBuilder;
use hvws::{
    Context, Cookie, FormLimits, FramePacer, HttpRequest, HttpResponse, HvWebServer, Routes, Server, ServerConfig,
};
use serde::Serialize;

/// The largest file `/upload` takes. A game's uploads (screenshots,
/// replays, crash dumps) are small; a limit sized to them keeps one client
/// from filling the disk (hvws's default is 64 MiB).
const MAX_FILE_SIZE: u64 = 8 << 20;

/// The application: where uploads are saved.
struct CookiesAndForms {
    upload_dir: PathBuf,
}

/// `GET /read-cookies`'s answer.
#[derive(Serialize)]
struct CookieValues {
    session: String,
    prefs: String,
}

/// `POST /upload`'s answer, in HV-05's field order.
#[derive(Serialize)]
struct UploadReply<'a> {
    title: &'a str,
    description: &'a str,
    save_status: u16,
    field_count: usize,
}

/// `POST /login`'s answer.
#[derive(Serialize)]
struct Login<'a> {
    username: &'a str,
    password: &'a str,
}

/// HV-05's cookie attributes: the whole site, one hour, out of reach of
/// the page's scripts.
fn site_cookie(name: &'static str, value: &'static str) -> CookieBuilder<'static> {
    Cookie::build((name, value))
        .path("/")
        .max_age(CookieDuration::hours(1))
        .http_only(true)
}

impl HvWebServer for CookiesAndForms {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/set-cookies", |_, _, _| {
                HttpResponse::text("cookies set")
                    .with_cookie(site_cookie("session", "abc123"))
                    .with_cookie(site_cookie("prefs", "dark-mode"))
            })
            .get("/read-cookies", |_, _, req| {
                let value = |name| req.cookie(name).unwrap_or_else(|| "not found".to_owned());
                HttpResponse::json(&CookieValues {
                    session: value("session"),
                    prefs: value("prefs"),
                })
            })
            .get("/list-cookies", |_, _, req| {
                let pairs: Vec<String> = req.cookies().iter().map(|(n, v)| format!("{n}={v}")).collect();
                HttpResponse::text(pairs.join(", "))
            })
            .post("/upload", CookiesAndForms::upload)
            .post("/login", |_, _, req| {
                HttpResponse::json(&Login {
                    username: req.form_field("username").unwrap_or(""),
                    password: req.form_field("password").unwrap_or(""),
                })
            });
    }
}

impl CookiesAndForms {
    /// `POST /upload`. The form was parsed before this runs, as the body
    /// arrived: the text fields are in memory, the file in memory or in a
    /// temporary file.
    fn upload(&mut self, _ctx: &mut Context<'_>, req: &HttpRequest) -> HttpResponse {
        // Saved under the sent name's last component, never over a file.
        let saved = req.save_form_file("attachment", &self.upload_dir);
        let save_status = match &saved {
            Ok(_) => 200,
            Err(e) => e.status(),
        };
        match (&saved, req.form().and_then(|form| form.file("attachment"))) {
            (Ok(path), Some(file)) => {
                // Past the memory threshold, the bytes went to a temporary
                // file as they arrived.
                let held = if file.path().is_some() {
                    "a temporary file"
                } else {
                    "memory"
                };
                let name = path.file_name().unwrap_or_default();
                println!("server: saved {name:?} ({} bytes, received in {held})", file.len());
            }
            (Err(e), _) => println!("server: not saved ({}): {e}", e.status()),
            (Ok(_), None) => {}
        }
        // HV-05 counts every part of the form: text fields and files.
        let field_count = req.form().map_or(0, |form| form.fields().len() + form.files().len());
        HttpResponse::json(&UploadReply {
            title: req.form_field("title").unwrap_or(""),
            description: req.form_field("description").unwrap_or(""),
            save_status,
            field_count,
        })
    }
}

/// The server's settings: the upload limits.
fn config(upload_dir: &Path) -> ServerConfig {
    ServerConfig {
        form_limits: FormLimits {
            max_file_size: MAX_FILE_SIZE,
            // The file, plus room for the text fields and the part headers.
            max_total_size: MAX_FILE_SIZE + (1 << 20),
            // Larger files go to a temporary file as they arrive.
            memory_threshold: 64 << 10,
            // On the uploads' file system, so saving one is a hard link.
            temp_dir: Some(upload_dir.to_owned()),
            ..FormLimits::default()
        },
        ..ServerConfig::default()
    }
}

/// The game loop: 60 frames a second, the network served between them.
fn run(mut server: Server<CookiesAndForms>, stop: &AtomicBool) -> Result<(), String> {
    let mut pacer = FramePacer::new(60);
    while !stop.load(Ordering::SeqCst) {
        pacer.wait(&mut server).map_err(|e| e.to_string())?;
    }
    server.stop().map_err(|e| e.to_string())
}

fn start(upload_dir: &Path, addr: SocketAddr) -> Result<Server<CookiesAndForms>, String> {
    std::fs::create_dir_all(upload_dir).map_err(|e| format!("{}: {e}", upload_dir.display()))?;
    let app = CookiesAndForms {
        upload_dir: upload_dir.to_owned(),
    };
    let mut server = Server::with_config(app, config(upload_dir));
    server.init_addr(addr).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    Ok(server)
}

fn serve(port: u16, upload_dir: &Path) -> Result<(), String> {
    let server = start(upload_dir, SocketAddr::from(([0, 0, 0, 0], port)))?;
    println!(
        "hv05: serving on http://0.0.0.0:{port}/, uploads saved in {} (Ctrl-C stops)",
        upload_dir.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    run(server, &stop)
}

// --- the selftest: a raw HTTP client (hvws's own comes later) -------------

/// An answer: status, head, body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    /// Every value of header `name`.
    fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.lines().filter_map(move |l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Reads the answer to a `Connection: close` request, to the end.
fn answer(mut s: TcpStream) -> Result<Reply, String> {
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(format!("no answer ({read:?})"));
    };
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("a status")?;
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// Sends one request on a new connection and reads the answer.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<Reply, String> {
    let mut s = connect(addr)?;
    // A server that refuses a body (413) may answer before it is all sent
    // and stop reading: its answer is what counts, not this write.
    let _ = s.write_all(request);
    answer(s)
}

fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Result<Reply, String> {
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{cookie}Connection: close\r\n\r\n").as_bytes(),
    )
}

const BOUNDARY: &str = "hv05-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` POST to `/upload`, as `curl -F` or a browser
/// builds it: the text fields, then the file (with its name as sent).
fn upload_request(fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// The JSON number `key` of a flat object.
fn json_number(body: &str, key: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get(key)?.as_u64()
}

/// The server's temporary files in `dir` and their sizes.
fn temp_files(dir: &Path) -> Vec<(String, u64)> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().ok()?.len();
            name.starts_with("hvws-upload-").then_some((name, len))
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
    // The upload directory is site/uploads in a directory of our own, so
    // `../../etc/passwd` from it is `etc/passwd` in there too: where a
    // server that joins names unchecked would write.
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = root.path().join("site").join("uploads");
    std::fs::create_dir_all(root.path().join("etc")).map_err(|e| e.to_string())?;
    let server = start(&dir, "127.0.0.1:0".parse().unwrap())?;
    let addr = server.local_addr().ok_or("no address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let loop_flag = Arc::clone(&stop);
    let game = std::thread::spawn(move || run(server, &loop_flag));

    println!("=== Section 1a: Set cookies ===");
    let r = get(addr, "/set-cookies", None)?;
    println!("GET /set-cookies -> {}: {}", r.status, r.body);
    let set: Vec<&str> = r.headers("set-cookie").collect();
    for line in &set {
        println!("  Set-Cookie: {line}");
    }
    check(
        "two cookies, each Path=/, Max-Age=3600, HttpOnly",
        set == [
            "session=abc123; HttpOnly; Path=/; Max-Age=3600",
            "prefs=dark-mode; HttpOnly; Path=/; Max-Age=3600",
        ],
    )?;

    println!("\n=== Section 1b: Read cookies ===");
    // Sent back as a browser does: each cookie's name=value, joined by "; ".
    let jar: Vec<&str> = set.iter().filter_map(|l| l.split(';').next()).collect();
    let r = get(addr, "/read-cookies", Some(&jar.join("; ")))?;
    println!("GET /read-cookies -> {}", r.body);
    check(
        "both cookies read",
        r.body == r#"{"session":"abc123","prefs":"dark-mode"}"#,
    )?;
    let r = get(addr, "/read-cookies", Some("session=abc123"))?;
    println!("GET /read-cookies (session only) -> {}", r.body);
    check(
        "a missing cookie",
        r.body == r#"{"session":"abc123","prefs":"not found"}"#,
    )?;

    println!("\n=== Section 1c: List all cookies ===");
    let r = get(addr, "/list-cookies", Some("token=xyz789; lang=en; theme=dark"))?;
    println!("GET /list-cookies -> {}", r.body);
    check("every cookie in order", r.body == "token=xyz789, lang=en, theme=dark")?;

    println!("\n=== Section 2: Multipart form upload ===");
    let content = b"this is test file content for upload";
    let fields = [("title", "My Document"), ("description", "A test upload")];
    let r = exchange(addr, &upload_request(&fields, "testfile.txt", content))?;
    println!("POST /upload -> {}: {}", r.status, r.body);
    check(
        "HV-05's answer",
        r.body == r#"{"title":"My Document","description":"A test upload","save_status":200,"field_count":3}"#,
    )?;
    let saved = std::fs::read(dir.join("testfile.txt")).map_err(|e| format!("testfile.txt: {e}"))?;
    println!("  Saved file content: {}", String::from_utf8_lossy(&saved));
    check("the file saved as sent", saved == content)?;

    println!("\n=== Section 3: URL-encoded form ===");
    let body = "username=admin&password=secret123";
    let r = exchange(
        addr,
        format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    println!("POST /login -> {}: {}", r.status, r.body);
    check(
        "both fields",
        r.body == r#"{"username":"admin","password":"secret123"}"#,
    )?;

    println!("\n=== Beyond HV-05: uploads that libhv gets wrong ===");
    let fields = [("title", "t"), ("description", "d")];
    let r = exchange(
        addr,
        &upload_request(&fields, "../../etc/passwd", b"not a password file"),
    )?;
    println!(
        "POST /upload (file name \"../../etc/passwd\") -> {}: {}",
        r.status, r.body
    );
    check("saved", json_number(&r.body, "save_status") == Some(200))?;
    check("under its base name", dir.join("passwd").is_file())?;
    check(
        "not beside the upload directory",
        !root.path().join("etc/passwd").exists(),
    )?;
    println!("  saved as uploads/passwd; nothing written to ../../etc");

    let r = exchange(
        addr,
        &upload_request(&fields, "testfile.txt", b"a second file, same name"),
    )?;
    println!("POST /upload (\"testfile.txt\" again) -> {}: {}", r.status, r.body);
    check("refused: 409", json_number(&r.body, "save_status") == Some(409))?;
    check(
        "the first file untouched",
        std::fs::read(dir.join("testfile.txt")).ok().as_deref() == Some(&content[..]),
    )?;

    // A browser sends an empty file part when no file was chosen.
    let r = exchange(addr, &upload_request(&fields, "", b""))?;
    println!("POST /upload (no file chosen) -> {}: {}", r.status, r.body);
    check("400: no file", json_number(&r.body, "save_status") == Some(400))?;
    check(
        "the two text fields only",
        json_number(&r.body, "field_count") == Some(2),
    )?;

    let big = vec![b'x'; MAX_FILE_SIZE as usize + 1];
    let r = exchange(addr, &upload_request(&fields, "too-big.bin", &big))?;
    println!("POST /upload (8 MiB + 1 byte) -> {}: {}", r.status, r.body);
    check(
        "413 before the route",
        r.status == 413 && !dir.join("too-big.bin").exists(),
    )?;
    check("its temporary file removed", temp_files(&dir).is_empty())?;

    // 4 MiB, sent in two halves: between them the server has already
    // written the first half to a temporary file, and the route has not
    // run yet.
    let file: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let request = upload_request(&fields, "big.bin", &file);
    let half = request.len() / 2;
    let mut s = connect(addr)?;
    s.write_all(&request[..half]).map_err(|e| e.to_string())?;
    // All of it but what the parser and the file's write buffer still hold.
    let expected = (file.len() / 2) as u64 - (64 << 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    let spooled = loop {
        let on_disk: u64 = temp_files(&dir).iter().map(|(_, len)| len).sum();
        if on_disk >= expected || Instant::now() > deadline {
            break on_disk;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("POST /upload (4 MiB), half sent: {spooled} bytes already in the server's temporary file");
    check("the first half reached the disk", spooled >= expected)?;
    check("the route waits for the whole body", !dir.join("big.bin").exists())?;
    s.write_all(&request[half..]).map_err(|e| e.to_string())?;
    let r = answer(s)?;
    println!("  the rest sent -> {}: {}", r.status, r.body);
    check("saved", json_number(&r.body, "save_status") == Some(200))?;
    check(
        "saved whole",
        std::fs::read(dir.join("big.bin")).ok().as_deref() == Some(&file[..]),
    )?;
    check("the temporary file is gone", temp_files(&dir).is_empty())?;

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    println!("uploads/: {}", names.join(", "));
    check("only the saved files", names == ["big.bin", "passwd", "testfile.txt"])?;

    stop.store(true, Ordering::SeqCst);
    game.join().map_err(|_| "the game loop panicked")??;
    Ok(())
}

/// What the command line asks for.
enum Mode {
    Selftest,
    Serve { port: u16, upload_dir: PathBuf },
}

fn parse_args() -> Result<Mode, String> {
    const USAGE: &str = "usage: hv05_cookies_and_forms --selftest | [--port N] [--upload-dir DIR]";
    let (mut port, mut upload_dir) = (8080, PathBuf::from("uploads"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--selftest" => return Ok(Mode::Selftest),
            "--port" => {
                let p = args.next().ok_or(USAGE)?;
                port = p.parse().map_err(|e| format!("port {p:?}: {e}"))?;
            }
            "--upload-dir" => upload_dir = args.next().ok_or(USAGE)?.into(),
            _ => return Err(USAGE.into()),
        }
    }
    Ok(Mode::Serve { port, upload_dir })
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|mode| match mode {
        Mode::Selftest => selftest().map(|()| println!("hv05: OK")),
        Mode::Serve { port, upload_dir } => serve(port, &upload_dir),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hv05: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
