//! hvws's client against an independent server (tungstenite, on a thread)
//! and against hvws's own server, over loopback.

mod util;

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{
    Channel, ClientConfig, ClientError, Context, HvWebServer, Opcode, ReadyState, Reconnect, SendStatus, Server,
    WebSocketClient,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};
use util::tungstenite_peer::{pump_client_until as pump_until, tungstenite_server, Recorder};

type Client = WebSocketClient<Recorder>;

/// Echoes data messages until the peer closes.
fn echo_until_close(ws: &mut WebSocket<TcpStream>) {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("server read failed: {e}"),
        }
    }
}

#[test]
fn text_binary_fragments_and_ping_against_tungstenite() {
    let (addr, server) = tungstenite_server(echo_until_close);
    let mut c = Client::new(Recorder::default());
    assert_eq!(c.ready_state(), ReadyState::Closed);
    c.init(&format!("ws://{addr}/echo")).unwrap();
    assert_eq!(c.ready_state(), ReadyState::Connecting);
    pump_until(&mut c, "open", |c| c.handler().opens == 1);
    assert_eq!(c.ready_state(), ReadyState::Open);

    assert!(c.send("hello").is_queued());
    assert!(c.send_binary(&[7u8; 100_000]).is_queued());
    assert!(c.send_binary(&[]).is_queued());
    assert_eq!(c.send_frame(b"frag", Opcode::Text, false), Ok(SendStatus::Queued));
    assert!(c.send("after").is_queued()); // waits for the fragmented message to end
    assert_eq!(
        c.send_frame(b"mented", Opcode::Continuation, true),
        Ok(SendStatus::Queued)
    );
    assert_eq!(c.ping(b"p1"), Ok(SendStatus::Queued));
    pump_until(&mut c, "echoes", |c| c.handler().log.len() == 7);
    assert_eq!(
        c.handler().log,
        [
            "open",
            "text:hello",
            "binary:100000",
            "binary:0",
            "text:fragmented",
            "text:after",
            "pong:p1"
        ]
    );

    c.close_with(4000, "done").unwrap();
    assert_eq!(c.ready_state(), ReadyState::Closing);
    pump_until(&mut c, "close", |c| !c.is_connected());
    assert_eq!(c.ready_state(), ReadyState::Closed);
    assert_eq!(c.handler().closes, [(4000, "done".to_owned(), true)]);
    server.join().unwrap();
}

#[test]
fn server_initiated_close_reports_code_and_reason() {
    let (addr, server) = tungstenite_server(|ws| {
        ws.send(Message::text("bye soon")).unwrap();
        ws.close(Some(CloseFrame {
            code: CloseCode::Library(4001),
            reason: "session timeout".into(),
        }))
        .unwrap();
        // Read until our close is answered.
        loop {
            match ws.read() {
                Err(tungstenite::Error::ConnectionClosed) => return,
                Err(e) => panic!("unexpected: {e}"),
                Ok(_) => {}
            }
        }
    });
    let mut c = Client::new(Recorder::default());
    c.init(&format!("ws://{addr}/")).unwrap();
    pump_until(&mut c, "close", |c| !c.handler().closes.is_empty());
    assert_eq!(c.handler().log, ["open", "text:bye soon"]);
    assert_eq!(c.handler().closes, [(4001, "session timeout".to_owned(), true)]);
    assert!(!c.is_connected());
    assert_eq!(c.send("late"), SendStatus::Closed);
    server.join().unwrap();
}

#[test]
fn masked_server_frame_fails_the_connection_with_1002() {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        write!(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").unwrap();
        // A masked text frame: servers must never mask.
        s.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']).unwrap();
        let n = s.read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let mut c = Client::new(Recorder::default());
    c.init(&format!("ws://{addr}/")).unwrap();
    pump_until(&mut c, "failure", |c| !c.handler().closes.is_empty());
    assert_eq!(c.handler().closes[0].0, 1002);
    assert!(!c.handler().closes[0].2, "a failed connection is not clean");
    assert!(c.handler().errors[0].contains("masked"), "{:?}", c.handler().errors);
    // The client told the server why: a masked close frame with 1002.
    let close = server.join().unwrap();
    assert_eq!(close[0], 0x88);
    let mask = [close[2], close[3], close[4], close[5]];
    assert_eq!([close[6] ^ mask[0], close[7] ^ mask[1]], 1002u16.to_be_bytes());
}

#[test]
fn connect_refused_reports_error_then_close() {
    // Bind and drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = Client::new(Recorder::default());
    c.init(&format!("ws://127.0.0.1:{port}/")).unwrap();
    pump_until(&mut c, "refusal", |c| !c.handler().closes.is_empty());
    assert_eq!(c.handler().closes, [(1006, String::new(), false)]);
    assert!(
        c.handler().errors[0].starts_with("connection failed"),
        "{:?}",
        c.handler().errors
    );
    assert_eq!(c.ready_state(), ReadyState::Closed);
}

#[test]
fn bad_urls_are_refused_at_init() {
    let mut c = Client::new(Recorder::default());
    if !cfg!(feature = "tls") {
        assert!(matches!(c.init("wss://example.com/"), Err(ClientError::UnsupportedScheme(s)) if s == "wss"));
    }
    assert!(matches!(c.init("ftp://example.com/"), Err(ClientError::UnsupportedScheme(s)) if s == "ftp"));
    assert!(matches!(c.init("127.0.0.1:80"), Err(ClientError::InvalidUrl { .. })));
}

struct Rejecting;
impl HvWebServer for Rejecting {
    fn on_ws_handshake(&mut self, req: &hvws::HttpRequest) -> hvws::Handshake {
        match req.header("x-api-key") {
            Some("secret") => hvws::Handshake::Accept,
            _ => hvws::Handshake::Reject(hvws::HttpResponse::error(403)),
        }
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
}

fn pump_both<H: HvWebServer>(server: &mut Server<H>, client: &mut Client, what: &str, done: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(client) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; client saw {:?}",
            client.handler()
        );
        server.tick().unwrap();
        client.process_event_que_timeout(Duration::from_millis(2));
    }
}

#[test]
fn handshake_headers_and_rejection_against_hvws_server() {
    let mut server = Server::new(Rejecting);
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    let url = format!("ws://{}/secure", server.local_addr().unwrap());

    let mut refused = Client::new(Recorder::default());
    refused.init(&url).unwrap();
    pump_both(&mut server, &mut refused, "rejection", |c| {
        !c.handler().closes.is_empty()
    });
    assert!(
        refused.handler().errors[0].contains("HTTP 403"),
        "{:?}",
        refused.handler().errors
    );
    assert_eq!(refused.handler().opens, 0);

    let config = ClientConfig {
        headers: vec![("X-Api-Key".into(), "secret".into())],
        ..ClientConfig::default()
    };
    let mut allowed = WebSocketClient::with_config(Recorder::default(), config);
    allowed.init(&url).unwrap();
    pump_both(&mut server, &mut allowed, "open", |c| c.handler().opens == 1);
    assert!(allowed.send("authorized").is_queued());
    pump_both(&mut server, &mut allowed, "echo", |c| c.handler().log.len() == 2);
    assert_eq!(allowed.handler().log[1], "text:authorized");
}

#[derive(Default)]
struct Quiet;
impl HvWebServer for Quiet {}

#[test]
fn reconnects_with_backoff_when_the_server_restarts() {
    let mut server = Server::new(Quiet);
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();

    let policy = Reconnect {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..Reconnect::default()
    };
    let config = ClientConfig {
        reconnect: Some(policy),
        ..ClientConfig::default()
    };
    let mut c = WebSocketClient::with_config(Recorder::default(), config);
    c.init(&format!("ws://{addr}/live")).unwrap();
    pump_both(&mut server, &mut c, "first open", |c| c.handler().opens == 1);

    // The server goes away: the client sees 1001 and starts reconnecting.
    let stopper = thread::spawn(move || {
        server.stop().unwrap();
        drop(server);
    });
    pump_until(&mut c, "close on shutdown", |c| !c.handler().closes.is_empty());
    stopper.join().unwrap();
    assert_eq!(c.handler().closes[0].0, 1001);
    assert_eq!(
        c.ready_state(),
        ReadyState::Connecting,
        "waiting to reconnect counts as connecting"
    );

    // Let a few attempts fail, then bring the server back on the same port.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        c.process_event_que_timeout(Duration::from_millis(10));
    }
    assert!(c.handler().errors.iter().any(|e| e.starts_with("connection failed")));
    // Each refused attempt is one error and one announced retry, not a
    // stream of 1006 closes.
    assert_eq!(c.handler().closes.len(), 1, "{:?}", c.handler().closes);
    let h = c.handler();
    assert!(h.reconnecting.len() >= 2, "{:?}", h.reconnecting);
    assert_eq!(h.reconnecting, (1..=h.reconnecting.len() as u32).collect::<Vec<_>>());
    assert_eq!(h.errors.len(), h.reconnecting.len() - 1, "{:?}", h.errors);
    let mut server = Server::new(Quiet);
    server.init_addr(addr).unwrap();
    server.start().unwrap();
    pump_both(&mut server, &mut c, "reopen", |c| c.handler().opens == 2);
    assert_eq!(c.ready_state(), ReadyState::Open);

    // A user close does not reconnect.
    c.close();
    pump_both(&mut server, &mut c, "final close", |c| !c.is_connected());
    let opens = c.handler().opens;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        server.tick().unwrap();
        c.process_event_que_timeout(Duration::from_millis(10));
    }
    assert_eq!(c.handler().opens, opens);
    assert_eq!(c.ready_state(), ReadyState::Closed);
}

#[test]
fn server_and_client_move_to_other_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Server<Quiet>>();
    assert_send::<Client>();
    assert_send::<hvws::ServerHandle>();
}

/// Closes every channel that sends "kick me" with the code it names.
struct Kicker;
impl HvWebServer for Kicker {
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        if let Some(code) = msg.strip_prefix("close ") {
            ctx.close(ch, code.parse().unwrap(), "by the game").unwrap();
        }
    }
}

#[test]
fn a_client_kicked_with_4000_to_4999_or_1008_does_not_come_back() {
    let mut server = Server::new(Kicker);
    server.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    server.start().unwrap();
    let url = format!("ws://{}/game", server.local_addr().unwrap());
    let reconnect = Reconnect {
        initial_delay: Duration::from_millis(10),
        ..Reconnect::default()
    };
    for (code, comes_back) in [(4000, false), (4999, false), (1008, false), (1011, true), (1000, true)] {
        let config = ClientConfig {
            reconnect: Some(reconnect.clone()),
            ..ClientConfig::default()
        };
        let mut c = WebSocketClient::with_config(Recorder::default(), config);
        c.init(&url).unwrap();
        pump_both(&mut server, &mut c, "open", |c| c.handler().opens == 1);
        c.send(&format!("close {code}"));
        pump_both(&mut server, &mut c, "the kick", |c| !c.handler().closes.is_empty());
        assert_eq!(c.handler().closes[0], (code, "by the game".to_owned(), true));
        if comes_back {
            pump_both(&mut server, &mut c, "the reconnect", |c| c.handler().opens == 2);
            assert_eq!(c.handler().reconnecting, [1]);
            c.close();
        } else {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(100) {
                server.tick().unwrap();
                c.process_event_que_timeout(Duration::from_millis(5));
            }
            assert_eq!((c.handler().opens, c.handler().reconnecting.len()), (1, 0), "{code}");
            assert_eq!(c.ready_state(), ReadyState::Closed);
        }
    }
}
