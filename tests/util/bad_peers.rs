//! The server-side setup shared by `tests/hostile.rs` and
//! `tests/regressions.rs`: a recording echo server with tight limits and a
//! well-behaved client that chats alongside each bad peer (it must get every
//! echo, in order).

use std::time::Duration;

use hvws::{Channel, CloseInfo, Context, HttpResponse, HvWebServer, Routes, Server, ServerConfig, WsError};
use tungstenite::Message;

use super::{connect, pump_until, recv, send_text, server_with, Client, Raw};

/// Echoes; answers `GET /ping` with "pong" and `POST /echo` with its body;
/// panics on the message "panic" and on `GET /boom`; records opens, closes
/// and errors.
#[derive(Default)]
pub struct Target {
    pub opened: Vec<Channel>,
    pub closes: Vec<(Channel, u16)>,
    pub errors: Vec<String>,
}

impl HvWebServer for Target {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/boom", |_, _, _| panic!("route handler bug"))
            .post("/echo", |_, _, req| {
                HttpResponse::bytes("application/octet-stream", req.body())
            });
    }
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, ch: Channel, _url: &str) {
        self.opened.push(ch);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        assert!(msg != "panic", "application bug triggered by a message");
        ctx.send_text(ch, msg);
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, ch: Channel, data: &[u8]) {
        ctx.send_binary(ch, data);
    }
    fn on_ws_error(&mut self, _ctx: &mut Context<'_>, _ch: Channel, error: &WsError) {
        self.errors.push(error.to_string());
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, ch: Channel, close: &CloseInfo) {
        self.closes.push((ch, close.code));
    }
}

/// A well-behaved client that checks its echoes arrive, all and in order.
pub struct Good {
    pub client: Client,
    pub sent: usize,
}

impl Good {
    pub fn join(server: &mut Server<Target>) -> Good {
        Good {
            client: connect(server, "/good"),
            sent: 0,
        }
    }

    /// Sends three numbered messages and checks the next three received are
    /// exactly their echoes. Pings from the server are answered on the way.
    #[track_caller]
    pub fn round(&mut self, server: &mut Server<Target>) {
        let first = self.sent;
        for _ in 0..3 {
            send_text(server, &mut self.client, &format!("good-{}", self.sent));
            self.sent += 1;
        }
        for i in first..self.sent {
            loop {
                match recv(server, &mut self.client) {
                    Message::Text(t) => {
                        assert_eq!(
                            t.as_str(),
                            format!("good-{i}"),
                            "the good client lost or reordered a message"
                        );
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                    other => panic!("the good client got {other:?}"),
                }
            }
        }
    }
}

/// Tight limits, so a bad peer reaches them quickly.
pub fn config() -> ServerConfig {
    ServerConfig {
        max_message_size: 64 << 10,
        max_frame_size: 64 << 10,
        max_request_head: 1024,
        max_request_body: 1024,
        close_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

/// A server with one good client already chatting.
pub fn setup(config: ServerConfig) -> (Server<Target>, Good) {
    let mut server = server_with(Target::default(), config);
    let mut good = Good::join(&mut server);
    good.round(&mut server);
    (server, good)
}

/// The close code the server gave the channel opened after `nth_open`
/// others.
#[track_caller]
pub fn close_code_of(server: &mut Server<Target>, nth_open: usize) -> u16 {
    pump_until(server, "the channel's on_ws_close", |s| {
        let ch = s.handler().opened.get(nth_open).copied();
        ch.is_some_and(|ch| s.handler().closes.iter().any(|(c, _)| *c == ch))
    });
    let ch = server.handler().opened[nth_open];
    server.handler().closes.iter().find(|(c, _)| *c == ch).unwrap().1
}

/// Sends `request` on a fresh connection and returns the answer's status
/// and its `Sec-WebSocket-Version` header, reading on to EOF.
#[track_caller]
pub fn http_status(server: &mut Server<Target>, request: &[u8]) -> (u16, Option<String>) {
    let mut raw = Raw::connect(server);
    raw.write(server, request);
    let resp = raw.response(server);
    raw.read_to_eof(server);
    (resp.status, resp.header("sec-websocket-version").map(str::to_owned))
}
