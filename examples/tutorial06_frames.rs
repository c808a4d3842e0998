//! Tutorial chapter 6: handshake control and raw frames (Alusus / CivetWeb).
//!
//! ```text
//! cargo run --example tutorial06_frames -- --selftest     # exit 0 if every step was seen on the wire
//! cargo run --example tutorial06_frames -- --port 8080    # the server alone (at most 2 clients)
//! ```
//!
//! * **Reject at connect** (CivetWeb's connect callback returning non-zero):
//!   `on_ws_handshake` refuses a wrong `Origin` (403), a full server (503)
//!   and a client offering no subprotocol we speak (400).
//! * **Subprotocol choice**: the server speaks `frames.v2` and `frames.v1`,
//!   prefers v2, and picks the best one the client offered.
//! * **Ping/pong**: the server pings every new channel (`on_ws_pong` sees
//!   the answer); a client's ping reaches `on_ws_ping`, its pong is automatic.
//! * **Fragments**: `send(channel, data, opcode, fin)` with `fin == false`
//!   sends a message in pieces, a ping may go between them; the receiver
//!   gets one message.
//! * **Observing opcodes**: Alusus hands its data callback the opcode bits
//!   (1 text, 2 binary, 8 close, 9 ping, 10 pong); hvws has one callback per
//!   opcode, and the server logs the opcode of each. A hand-written client
//!   built on `hvws::proto::frame` shows the frames as they are on the wire,
//!   FIN bit and all.
//!
//! Walkthrough: `tutorials/06-handshake-and-frames.md`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hvws::proto::frame::{encode_frame, parse_header};
use hvws::{
    offered_protocols, Channel, ClientConfig, ClientContext, ClientError, CloseInfo, Context, Handshake, HttpRequest,
    HttpResponse, HvWebServer, HvWebSocketClient, Opcode, Routes, SendError, Server, WebSocketClient,
};

// --- the server ---------------------------------------------------------------

/// Subprotocols we speak, best first.
const PROTOCOLS: [&str; 2] = ["frames.v2", "frames.v1"];
const ALLOWED_ORIGINS: [&str; 2] = ["http://127.0.0.1", "http://localhost"];

struct FrameServer {
    max_clients: usize,
    open: usize,
    /// (channel, opcode as on the wire, what came with it), in arrival order.
    log: Vec<(Channel, u8, String)>,
}

impl FrameServer {
    fn observe(&mut self, ch: Channel, opcode: Opcode, detail: String) {
        println!("server: {ch} opcode {} ({opcode:?}) {detail}", opcode.as_u8());
        self.log.push((ch, opcode.as_u8(), detail));
    }
}

impl HvWebServer for FrameServer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/frames");
    }

    /// Runs for every upgrade request, before any WebSocket exists.
    fn on_ws_handshake(&mut self, req: &HttpRequest) -> Handshake {
        // Browsers always send Origin; other clients may not.
        if let Some(origin) = req.header("origin") {
            // Any port: compare scheme and host only.
            let without_port = match origin.rsplit_once(':') {
                Some((rest, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => origin,
            };
            if !ALLOWED_ORIGINS.contains(&without_port) {
                return Handshake::Reject(HttpResponse::text("origin not allowed").with_status(403));
            }
        }
        if self.open >= self.max_clients {
            return Handshake::Reject(
                HttpResponse::text("server full")
                    .with_status(503)
                    .with_header("Retry-After", "5"),
            );
        }
        let offered: Vec<&str> = offered_protocols(req).collect();
        if offered.is_empty() {
            return Handshake::Accept; // no subprotocol asked, none chosen
        }
        match PROTOCOLS.iter().find(|p| offered.contains(p)) {
            Some(p) => Handshake::AcceptProtocol(p.to_string()),
            None => Handshake::Reject(
                HttpResponse::text(format!("offer one of {PROTOCOLS:?}"))
                    .with_status(400)
                    .with_header("Sec-WebSocket-Version", "13"),
            ),
        }
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.open += 1;
        let protocol = ctx.info(ch).and_then(|i| i.protocol()).unwrap_or("none").to_owned();
        ctx.send_text(ch, &format!("protocol: {protocol}"));
        // A heartbeat; the answer arrives in on_ws_pong.
        ctx.ping(ch, b"hb-1").expect("a ping payload under 125 bytes");
    }

    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        self.observe(ch, Opcode::Text, format!("{msg:?}"));
        if msg == "fragments please" {
            // One text message in three frames, a ping between two of them.
            // In this order every frame is valid, so none can fail.
            ctx.send(ch, b"Hel", Opcode::Text, false).expect("starts a message");
            ctx.send(ch, b"lo, ", Opcode::Continuation, false).expect("goes on");
            ctx.ping(ch, b"mid").expect("a short ping may go between fragments");
            ctx.send(ch, b"fragments", Opcode::Continuation, true).expect("ends it");
        }
    }

    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        self.observe(ch, Opcode::Binary, format!("{} bytes", data.len()));
        ctx.send_binary(ch, data);
    }

    fn on_ws_ping(&mut self, _ctx: &mut Context<'_>, ch: Channel, payload: &[u8]) {
        // The pong is already queued: nothing to do but look.
        self.observe(ch, Opcode::Ping, format!("{:?}", String::from_utf8_lossy(payload)));
    }

    fn on_ws_pong(&mut self, _ctx: &mut Context<'_>, ch: Channel, payload: &[u8]) {
        self.observe(ch, Opcode::Pong, format!("{:?}", String::from_utf8_lossy(payload)));
    }

    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        self.open -= 1;
        self.observe(ch, Opcode::Close, format!("{} {:?}", close.code, close.reason));
    }
}

// --- a raw client: frames as they are on the wire ----------------------------------

/// A blocking WebSocket client written by hand on `hvws::proto::frame`, to
/// see each frame's FIN bit and opcode (the hvws client, like a browser,
/// hands over whole messages only).
struct Wire {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Sends the upgrade request and reads the `101`; returns the chosen subprotocol.
    fn connect(port: u16, protocols: &str) -> Result<(Wire, String), String> {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            sock,
            "GET /frames HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut wire = Wire { sock, buf: Vec::new() };
        let end = loop {
            if let Some(i) = wire.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            wire.fill()?;
        };
        let head = String::from_utf8_lossy(&wire.buf[..end]).to_string();
        wire.buf.drain(..end);
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("not upgraded: {head}"));
        }
        let protocol = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("sec-websocket-protocol:")
                    .map(|p| p.trim().to_owned())
            })
            .unwrap_or_default();
        Ok((wire, protocol))
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err("connection closed".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next frame: (FIN, opcode, payload).
    fn read_frame(&mut self) -> Result<(bool, Opcode, Vec<u8>), String> {
        loop {
            if let Some(h) = parse_header(&self.buf).map_err(|e| e.to_string())? {
                let end = h.header_len + h.payload_len as usize;
                if self.buf.len() >= end {
                    let payload = self.buf[h.header_len..end].to_vec();
                    self.buf.drain(..end);
                    return Ok((h.fin, h.opcode, payload));
                }
            }
            self.fill()?;
        }
    }

    /// Writes one frame, masked as every client frame must be.
    fn write_frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8]) -> Result<(), String> {
        let mut out = Vec::new();
        encode_frame(&mut out, fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]));
        self.sock.write_all(&out).map_err(|e| e.to_string())
    }
}

// --- an hvws client ---------------------------------------------------------------

#[derive(Default)]
struct Peer {
    opened: bool,
    texts: Vec<String>,
    binaries: Vec<Vec<u8>>,
    pings: Vec<String>,
    pongs: Vec<String>,
    error: Option<String>,
    close: Option<(u16, String)>,
}

impl HvWebSocketClient for Peer {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opened = true;
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.texts.push(msg.to_owned());
    }
    fn on_binary(&mut self, _ctx: &mut ClientContext<'_>, data: &[u8]) {
        self.binaries.push(data.to_vec());
    }
    fn on_ping(&mut self, _ctx: &mut ClientContext<'_>, payload: &[u8]) {
        self.pings.push(String::from_utf8_lossy(payload).into());
    }
    fn on_pong(&mut self, _ctx: &mut ClientContext<'_>, payload: &[u8]) {
        self.pongs.push(String::from_utf8_lossy(payload).into());
    }
    fn on_error(&mut self, error: &ClientError) {
        self.error = Some(error.to_string());
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.close = Some((close.code, close.reason.clone()));
    }
}

type Client = WebSocketClient<Peer>;

fn client(port: u16, protocols: &[&str], headers: &[(&str, &str)]) -> Result<Client, String> {
    let config = ClientConfig {
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..ClientConfig::default()
    };
    let mut c = Client::with_config(Peer::default(), config);
    c.init(&format!("ws://127.0.0.1:{port}/frames"))
        .map_err(|e| e.to_string())?;
    Ok(c)
}

fn pump(c: &mut Client, what: &str, done: impl Fn(&Peer) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(c.handler()) {
        if Instant::now() > deadline {
            let p = c.handler();
            return Err(format!(
                "timed out waiting for {what}: texts {:?}, pings {:?}, error {:?}, close {:?}",
                p.texts, p.pings, p.error, p.close
            ));
        }
        c.process_event_que_timeout(Duration::from_millis(5));
    }
    Ok(())
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        println!("ok   {what}: {got:?}");
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, wanted {want:?}"))
    }
}

/// A refused handshake: the client never opens, and its error names the status.
fn expect_refused(
    port: u16,
    what: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
    status: u16,
) -> Result<(), String> {
    let mut c = client(port, protocols, headers)?;
    pump(&mut c, what, |p| p.close.is_some())?;
    let want = format!("handshake failed: server refused the upgrade with HTTP {status}");
    expect(
        what,
        (c.handler().opened, c.handler().error.clone()),
        (false, Some(want)),
    )
}

fn run_checks(port: u16) -> Result<(), String> {
    // Rejected at connect.
    expect_refused(port, "foreign Origin", &[], &[("Origin", "http://evil.example")], 403)?;
    expect_refused(port, "unknown subprotocol", &["chat.v9"], &[], 400)?;

    // Accepted: the server picks its favourite of what was offered.
    let mut a = client(
        port,
        &["frames.v1", "frames.v2"],
        &[("Origin", "http://127.0.0.1:8080")],
    )?;
    pump(&mut a, "a's greeting and ping", |p| {
        !p.texts.is_empty() && !p.pings.is_empty()
    })?;
    expect("a: chosen subprotocol", a.protocol(), Some("frames.v2"))?;
    expect(
        "a: greeting",
        a.handler().texts.clone(),
        vec!["protocol: frames.v2".to_owned()],
    )?;
    expect(
        "a: server's heartbeat ping",
        a.handler().pings.clone(),
        vec!["hb-1".to_owned()],
    )?;

    // The raw client: the second of two allowed connections.
    let (mut wire, chosen) = Wire::connect(port, "frames.v1")?;
    expect("wire: chosen subprotocol", chosen.as_str(), "frames.v1")?;

    // A third is one too many.
    expect_refused(port, "third client", &[], &[], 503)?;

    // a sends a text message in three fragments, a binary one, and a ping.
    let e = |e: SendError| e.to_string();
    a.send_frame(b"Hel", Opcode::Text, false).map_err(e)?;
    a.send_frame(b"lo, ", Opcode::Continuation, false).map_err(e)?;
    a.send_frame(b"server", Opcode::Continuation, true).map_err(e)?;
    a.send_binary(&[1, 2, 3]);
    a.ping(b"are you there").map_err(e)?;
    a.send("fragments please");
    pump(&mut a, "the echo, the pong and the fragments", |p| {
        !p.binaries.is_empty() && !p.pongs.is_empty() && p.texts.len() == 2
    })?;
    expect("a: pong", a.handler().pongs.clone(), vec!["are you there".to_owned()])?;
    expect("a: binary echo", a.handler().binaries.clone(), vec![vec![1u8, 2, 3]])?;
    expect(
        "a: fragmented reply, reassembled",
        a.handler().texts[1].as_str(),
        "Hello, fragments",
    )?;
    expect(
        "a: pings",
        a.handler().pings.clone(),
        vec!["hb-1".to_owned(), "mid".to_owned()],
    )?;

    // The same reply seen on the wire: FIN bit and opcode of every frame.
    let mut frames = Vec::new();
    let text = |(fin, op, p): &(bool, Opcode, Vec<u8>)| {
        let shown = match (op, &p[..]) {
            // A close payload is a big-endian code, then the reason.
            (Opcode::Close, [hi, lo, reason @ ..]) => {
                format!("{} {}", u16::from_be_bytes([*hi, *lo]), String::from_utf8_lossy(reason))
            }
            _ => String::from_utf8_lossy(p).to_string(),
        };
        (*fin, *op, shown)
    };
    frames.push(wire.read_frame()?); // protocol: frames.v1
    frames.push(wire.read_frame()?); // ping hb-1
    wire.write_frame(true, Opcode::Pong, &frames[1].2)?; // answer it by hand
    wire.write_frame(true, Opcode::Text, b"fragments please")?;
    for _ in 0..4 {
        frames.push(wire.read_frame()?);
    }
    wire.write_frame(true, Opcode::Close, &[0x03, 0xe8])?; // 1000, no reason
    frames.push(wire.read_frame()?);
    for (fin, op, payload) in frames.iter().map(text) {
        println!("wire: fin={} opcode={} ({op:?}) {payload:?}", u8::from(fin), op.as_u8());
    }
    let seen: Vec<_> = frames.iter().map(text).collect();
    let s = |t: &str| t.to_owned();
    expect(
        "wire frames",
        seen,
        vec![
            (true, Opcode::Text, s("protocol: frames.v1")),
            (true, Opcode::Ping, s("hb-1")),
            (false, Opcode::Text, s("Hel")),
            (false, Opcode::Continuation, s("lo, ")),
            (true, Opcode::Ping, s("mid")),
            (true, Opcode::Continuation, s("fragments")),
            (true, Opcode::Close, s("1000 ")),
        ],
    )?;

    a.close_with(4000, "done").map_err(e)?;
    pump(&mut a, "a's close", |p| p.close.is_some())?;
    // A close this side started is reported with its own code and reason.
    expect("a: close", a.handler().close.clone(), Some((4000, s("done"))))?;
    Ok(())
}

fn selftest() -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let stop_flag = stop.clone();
    let server = thread::spawn(move || {
        let mut server = Server::new(FrameServer {
            max_clients: 2,
            open: 0,
            log: Vec::new(),
        });
        if let Err(e) = server
            .init_addr(([127, 0, 0, 1], 0).into())
            .and_then(|()| server.start())
        {
            let _ = tx.send(Err(e.to_string()));
            return Vec::new();
        }
        let _ = tx.send(Ok(server.local_addr().map_or(0, |a| a.port())));
        while !stop_flag.load(Ordering::Relaxed) && server.tick_timeout(Duration::from_millis(10)).is_ok() {}
        let _ = server.stop();
        std::mem::take(&mut server.handler_mut().log)
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())??;
    let result = run_checks(port);
    stop.store(true, Ordering::Relaxed);
    let log = server.join().map_err(|_| "server thread panicked")?;
    result?;

    // What the server observed from each channel, as opcodes.
    let mut channels: Vec<Channel> = Vec::new();
    for (ch, _, _) in &log {
        if !channels.contains(ch) {
            channels.push(*ch);
        }
    }
    let opcodes = |ch: Channel| log.iter().filter(|e| e.0 == ch).map(|e| e.1).collect::<Vec<u8>>();
    let details = |ch: Channel| {
        log.iter()
            .filter(|e| e.0 == ch)
            .map(|e| e.2.clone())
            .collect::<Vec<_>>()
    };
    let [a, wire] = channels[..] else {
        return Err(format!("server log has channels {channels:?}"));
    };
    // a: pong(hb-1), text (from 3 fragments), binary, ping, text, pong(mid), close.
    expect("server saw from a (opcodes)", opcodes(a), vec![10, 1, 2, 9, 1, 10, 8])?;
    expect(
        "server saw from a",
        details(a),
        [
            "\"hb-1\"",
            "\"Hello, server\"",
            "3 bytes",
            "\"are you there\"",
            "\"fragments please\"",
            "\"mid\"",
            "4000 \"done\"",
        ]
        .map(String::from)
        .to_vec(),
    )?;
    expect(
        "server saw from the wire client (opcodes)",
        opcodes(wire),
        vec![10, 1, 8],
    )?;
    Ok(())
}

fn serve(port: u16) -> Result<(), String> {
    let mut server = Server::new(FrameServer {
        max_clients: 2,
        open: 0,
        log: Vec::new(),
    });
    server.init(port).map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    let port = server.local_addr().map_or(port, |a| a.port());
    println!("frames on ws://127.0.0.1:{port}/frames (subprotocols {PROTOCOLS:?}, 2 clients at most)");
    while server.is_running() {
        server
            .tick_timeout(Duration::from_millis(100))
            .map_err(|e| e.to_string())?;
        server.handler_mut().log.clear();
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--selftest"] => selftest().map(|()| println!("tutorial06: OK")),
        ["--port", port] => port.parse().map_err(|e| format!("--port: {e}")).and_then(serve),
        _ => Err("usage: tutorial06_frames --selftest | --port N".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tutorial06: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
