//! dasHV's shared tutorial server on hvws: the four routes its client
//! tutorials HV-01 and HV-02 call.
//!
//! ```text
//! cargo run --example tutorial_server -- --port 8080     # serve until Ctrl-C
//! cargo run --example tutorial_server -- --port 0        # the OS picks the port; the first line says which
//! cargo run --example tutorial_server -- --selftest      # exit 0 if the routes answer as below
//! cargo run --example hv01_http_client -- --url http://127.0.0.1:8080
//! cargo run --example hv02_request_builder -- --url http://127.0.0.1:8080
//! curl -d 'hello' http://127.0.0.1:8080/echo
//! ```
//!
//! Routes (dasHV's `tutorial_server.das`):
//! - `GET /ping`: `pong`;
//! - `POST /echo`: the request body, byte for byte;
//! - `GET /data`: `resource state`;
//! - `GET /json`: `{"status":"ok","value":42}` (dasHV sends it as
//!   `text/plain`; here it says `application/json`, the same bytes).
//!
//! HV-01 and HV-02 (`examples/hv01_http_client.rs`,
//! `examples/hv02_request_builder.rs`) carry a copy of these routes for
//! their own `--selftest`: examples cannot share a module.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hvws::{ClientRequest, FramePacer, HttpClient, HttpResponse, HvWebServer, Routes, Server};

/// dasHV's `TutorialServer`: every answer comes from the request alone.
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

/// The server's loop: 60 frames a second, requests answered as they
/// arrive while `wait` waits for the next frame.
fn run(mut server: Server<TutorialServer>, stop: &AtomicBool) -> Result<(), String> {
    let mut pacer = FramePacer::new(60);
    while !stop.load(Ordering::SeqCst) {
        pacer.wait(&mut server).map_err(|e| e.to_string())?;
    }
    server.stop().map_err(|e| e.to_string())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(TutorialServer);
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    // Port 0 lets the OS choose: print the one it chose (scripts read it).
    let bound = server.local_addr().map_or(port, |a| a.port());
    println!("tutorial_server: serving on http://127.0.0.1:{bound}/ (Ctrl-C stops)");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    run(server, &stop)
}

/// Starts the server on 127.0.0.1:0 and checks each route with hvws's
/// HTTP client (the blocking call: this is a test, not a game).
fn selftest() -> Result<(), String> {
    let mut server = Server::new(TutorialServer);
    server
        .init_addr("127.0.0.1:0".parse().unwrap())
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let base = format!("http://{}", server.local_addr().ok_or("no address")?);
    let stop = Arc::new(AtomicBool::new(false));
    let loop_flag = Arc::clone(&stop);
    let game = std::thread::spawn(move || run(server, &loop_flag));
    let result = check_routes(&base);
    stop.store(true, Ordering::SeqCst);
    game.join().map_err(|_| "the server loop panicked")??;
    result
}

fn check_routes(base: &str) -> Result<(), String> {
    let mut http = HttpClient::default();
    let cases = [
        (ClientRequest::get(&format!("{base}/ping")), 200, "pong"),
        (
            ClientRequest::post(&format!("{base}/echo")).body_text("hello from hvws!"),
            200,
            "hello from hvws!",
        ),
        (ClientRequest::get(&format!("{base}/data")), 200, "resource state"),
        (
            ClientRequest::get(&format!("{base}/json")),
            200,
            r#"{"status":"ok","value":42}"#,
        ),
        (ClientRequest::get(&format!("{base}/nonexistent")), 404, "Not Found"),
    ];
    for (req, status, body) in cases {
        let what = format!("{} {}", req.method(), req.url().trim_start_matches(base));
        let resp = http.send_blocking(req).map_err(|e| format!("{what}: {e}"))?;
        println!("{what} -> {}: {}", resp.status(), resp.text());
        if resp.status() != status || (status == 200 && resp.text() != body) {
            return Err(format!("{what}: wanted {status} {body:?}"));
        }
    }
    let bytes = [0xff, 0x00, 0xfe, 0x01];
    let resp = http
        .send_blocking(ClientRequest::post(&format!("{base}/echo")).body_bytes(bytes))
        .map_err(|e| e.to_string())?;
    println!("POST /echo {bytes:?} -> {}: {:?}", resp.status(), resp.body());
    if resp.body() != bytes {
        return Err("POST /echo did not send the bytes back as they were".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("tutorial_server: OK")),
        ["--port", p] => p.parse::<u16>().map_err(|e| format!("port {p:?}: {e}")).and_then(serve),
        _ => Err("usage: tutorial_server --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial_server: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
