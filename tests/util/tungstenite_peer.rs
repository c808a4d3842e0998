//! hvws's client against a tungstenite server on a thread, shared by
//! `tests/client.rs` and `tests/regressions.rs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hvws::{ClientContext, ClientError, CloseInfo, HvWebSocketClient, WebSocketClient};
use tungstenite::WebSocket;

use super::TIMEOUT;

/// Records everything the client saw, in order.
#[derive(Default, Debug)]
pub struct Recorder {
    pub log: Vec<String>,
    pub opens: usize,
    pub closes: Vec<(u16, String, bool)>,
    pub errors: Vec<String>,
    /// The attempt numbers `on_reconnecting` announced.
    pub reconnecting: Vec<u32>,
}

impl HvWebSocketClient for Recorder {
    fn on_open(&mut self, _ctx: &mut ClientContext<'_>) {
        self.opens += 1;
        self.log.push("open".into());
    }
    fn on_message(&mut self, _ctx: &mut ClientContext<'_>, msg: &str) {
        self.log.push(format!("text:{msg}"));
    }
    fn on_binary(&mut self, _ctx: &mut ClientContext<'_>, data: &[u8]) {
        self.log.push(format!("binary:{}", data.len()));
    }
    fn on_pong(&mut self, _ctx: &mut ClientContext<'_>, payload: &[u8]) {
        self.log.push(format!("pong:{}", String::from_utf8_lossy(payload)));
    }
    fn on_close(&mut self, close: &CloseInfo) {
        self.closes.push((close.code, close.reason.clone(), close.was_clean));
    }
    fn on_error(&mut self, error: &ClientError) {
        self.errors.push(error.to_string());
    }
    fn on_reconnecting(&mut self, attempt: u32, _delay: std::time::Duration) {
        self.reconnecting.push(attempt);
    }
}

/// Pumps the client until `done` holds, for at most [`TIMEOUT`]; the
/// timeout message shows what the client saw.
#[track_caller]
pub fn pump_client_until(
    client: &mut WebSocketClient<Recorder>,
    what: &str,
    done: impl Fn(&WebSocketClient<Recorder>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(client) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; client saw {:?}",
            client.handler()
        );
        client.process_event_que_timeout(Duration::from_millis(10));
    }
}

/// Runs a tungstenite server for one connection on a thread; `script`
/// gets the accepted socket.
pub fn tungstenite_server(
    script: impl FnOnce(&mut WebSocket<TcpStream>) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let join = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        script(&mut ws);
    });
    (addr, join)
}
