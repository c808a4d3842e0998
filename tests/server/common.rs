//! What several topics share: the `Probe` handler that records every
//! callback and echoes, the waits built on it, and one HTTP GET.

use hvws::{Channel, CloseInfo, Context, HvWebServer, Server, WsError};

use crate::util::{self, pump_for, Raw};

/// Records every callback; echoes text and binary messages.
#[derive(Debug, Default)]
pub struct Probe {
    /// Channels opened, in order.
    pub opened: Vec<Channel>,
    /// Close callbacks, in order.
    pub closes: Vec<(Channel, CloseInfo)>,
    /// Error callbacks, as text.
    pub errors: Vec<(Channel, String)>,
    /// Text messages received.
    pub texts: usize,
    /// Every callback run, of any kind.
    pub callbacks: usize,
}

impl Probe {
    /// What `ch`'s close callback got, if it ran.
    pub fn close_of(&self, ch: Channel) -> Option<&CloseInfo> {
        self.closes.iter().find(|(c, _)| *c == ch).map(|(_, info)| info)
    }
}

impl HvWebServer for Probe {
    fn on_ws_open(&mut self, _ctx: &mut Context<'_>, channel: Channel, _url: &str) {
        self.callbacks += 1;
        self.opened.push(channel);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, channel: Channel, msg: &str) {
        self.callbacks += 1;
        self.texts += 1;
        assert!(ctx.send_text(channel, msg).is_queued(), "echo text");
    }
    fn on_ws_binary(&mut self, ctx: &mut Context<'_>, channel: Channel, data: &[u8]) {
        self.callbacks += 1;
        assert!(ctx.send_binary(channel, data).is_queued(), "echo binary");
    }
    fn on_ws_ping(&mut self, _ctx: &mut Context<'_>, _channel: Channel, _payload: &[u8]) {
        self.callbacks += 1;
    }
    fn on_ws_pong(&mut self, _ctx: &mut Context<'_>, _channel: Channel, _payload: &[u8]) {
        self.callbacks += 1;
    }
    fn on_ws_error(&mut self, _ctx: &mut Context<'_>, channel: Channel, error: &WsError) {
        self.callbacks += 1;
        self.errors.push((channel, error.to_string()));
    }
    fn on_ws_close(&mut self, _ctx: &mut Context<'_>, channel: Channel, close: &CloseInfo) {
        self.callbacks += 1;
        assert!(self.close_of(channel).is_none(), "on_ws_close ran twice for {channel}");
        self.closes.push((channel, close.clone()));
    }
}

/// Waits until the probe has seen `n` channels open; returns the `n`th.
#[track_caller]
pub fn nth_open(server: &mut Server<Probe>, n: usize) -> Channel {
    pump_for(server, &format!("channel #{n} to open"), |s| {
        s.handler().opened.get(n - 1).copied()
    })
}

/// Waits until `ch`'s close callback ran; returns what it got.
#[track_caller]
pub fn close_info(server: &mut Server<Probe>, ch: Channel) -> CloseInfo {
    pump_for(server, &format!("on_ws_close for {ch}"), |s| {
        s.handler().close_of(ch).cloned()
    })
}

/// Sends a GET for `path` on `conn` and waits for the answer.
#[track_caller]
pub fn http_get<H: HvWebServer>(server: &mut Server<H>, conn: &mut Raw, path: &str) -> util::HttpResp {
    conn.write(server, format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.response(server)
}
