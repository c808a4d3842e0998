//! The same two cores under TLS, in memory (feature `tls`): each side's
//! plaintext goes through a `TlsLayer`, and only ciphertext crosses between
//! them. The driver's rules are spelled out in `TlsPair`: a `close_notify`
//! or a TCP EOF ends the peer's side; our shutdown sends `close_notify`.

use std::time::Instant;

use hvws::proto::client::Request;
use hvws::proto::tls::TlsLayer;
use hvws::proto::{ClientConn, Flushed, Limits, ServerConn, ServerEvent};
use hvws::{ChannelInfo, Opcode};

use crate::certs::Pki;
use crate::pair::{client_line, server_line};

/// A server core and a client core, each under its TLS layer.
struct TlsPair {
    now: Instant,
    limits: Limits,
    server: ServerConn,
    client: ClientConn,
    server_tls: TlsLayer,
    client_tls: TlsLayer,
    /// Ciphertext on its way.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    server_log: Vec<String>,
    client_log: Vec<String>,
    /// The client's TCP ends (FIN after its last ciphertext).
    client_fin: bool,
    server_saw_end: bool,
    client_saw_end: bool,
}

impl TlsPair {
    fn new() -> TlsPair {
        let pki = Pki::new("hvws pair CA");
        let now = Instant::now();
        let limits = Limits::default();
        let request = Request {
            authority: "localhost:9001".into(),
            resource: "/chat".into(),
            protocols: Vec::new(),
            headers: Vec::new(),
        };
        let mut client = ClientConn::new(&request, now, &limits);
        client.handle_connected();
        TlsPair {
            now,
            server: ServerConn::new("127.0.0.1:40000".parse().unwrap(), now, &limits),
            client,
            server_tls: TlsLayer::server(pki.server_tls().rustls(), 64 << 10).unwrap(),
            client_tls: TlsLayer::client(pki.client_tls().build().unwrap(), "localhost", 64 << 10).unwrap(),
            limits,
            to_server: Vec::new(),
            to_client: Vec::new(),
            server_log: Vec::new(),
            client_log: Vec::new(),
            client_fin: false,
            server_saw_end: false,
            client_saw_end: false,
        }
    }

    /// Moves bytes until nothing moves.
    fn drive(&mut self) {
        for _ in 0..1000 {
            if !self.step() {
                return;
            }
        }
        panic!("the TLS pair did not go quiet");
    }

    fn step(&mut self) -> bool {
        let (now, limits) = (self.now, self.limits.clone());
        let mut moved = false;

        // Client plaintext -> client TLS -> wire.
        let out = std::mem::take(self.client.transmit());
        let took = self.client_tls.write_plain(&out);
        self.client.transmit().extend_from_slice(&out[took..]);
        self.client.handle_flushed();
        while self.client_tls.wants_write() {
            self.client_tls.write_tls(&mut self.to_server).unwrap();
        }

        // Server plaintext -> server TLS -> wire. The driver ends our side
        // with close_notify whether the core says "shut down" (we close
        // first) or "close" (the peer closed first).
        let out = self.server.transmit().to_vec();
        let took = self.server_tls.write_plain(&out);
        self.server.transmit().consume(took);
        if took == out.len() {
            if let Flushed::ShutdownWrite | Flushed::Close = self.server.handle_flushed().0 {
                self.server_tls.close();
            }
        }
        while self.server_tls.wants_write() {
            self.server_tls.write_tls(&mut self.to_client).unwrap();
        }

        // Wire -> server TLS -> server core.
        if !self.to_server.is_empty() {
            moved = true;
            let wire = std::mem::take(&mut self.to_server);
            let plain = read_all(&mut self.server_tls, &wire);
            if let Some(info) = self.server_tls.info().filter(|_| !self.server.is_tls()) {
                self.server.set_tls(info);
            }
            let mut plain = plain;
            if !plain.is_empty() {
                let mut input = self.server.begin_input(&mut plain, Vec::new());
                while let Some(ev) = self.server.poll_input(&mut input, now, &limits) {
                    self.server_log.push(server_line(&ev));
                    if let ServerEvent::Upgrade(req) = &ev {
                        let alpn = req.tls().and_then(|t| t.alpn.clone());
                        self.server_log.push(format!(
                            "  scheme {}, sni {:?}, alpn {alpn:?}",
                            req.scheme(),
                            req.tls().and_then(|t| t.sni.as_deref())
                        ));
                        let info = ChannelInfo::new(req, None);
                        self.server.accept_upgrade(info, now, &limits);
                    }
                }
                self.server.end_input(input);
            }
        }
        if (self.server_tls.peer_closed() || self.client_fin) && !self.server_saw_end {
            self.server_saw_end = true;
            moved = true;
            let how = if self.server_tls.peer_closed() {
                "close_notify"
            } else {
                "EOF without close_notify"
            };
            self.server_log.push(format!("tls: {how}"));
            if let Some(ev) = self.server.handle_eof(now, &limits) {
                self.server_log.push(server_line(&ev));
            }
        }

        // Wire -> client TLS -> client core.
        if !self.to_client.is_empty() {
            moved = true;
            let wire = std::mem::take(&mut self.to_client);
            let plain = read_all(&mut self.client_tls, &wire);
            let mut plain = plain;
            if !plain.is_empty() {
                let mut input = self.client.begin_input(&mut plain);
                while let Some(ev) = self.client.poll_input(&mut input, now, &limits) {
                    self.client_log.push(client_line(&ev));
                }
                self.client.end_input(input);
            }
        }
        if self.client_tls.peer_closed() && !self.client_saw_end {
            self.client_saw_end = true;
            moved = true;
            self.client_log.push("tls: close_notify".into());
            if let Some(ev) = self.client.handle_eof(now, &limits) {
                self.client_log.push(client_line(&ev));
            }
        }
        moved
    }
}

/// Takes all of `wire` into `tls`, draining the plaintext after each read
/// (rustls refuses to read on while its 16 KiB plaintext buffer is full).
fn read_all(tls: &mut TlsLayer, wire: &[u8]) -> Vec<u8> {
    let mut rd = wire;
    let mut plain = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        loop {
            let n = tls.read_plain(&mut buf);
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&buf[..n]);
        }
        if rd.is_empty() {
            return plain;
        }
        tls.read_tls(&mut rd).unwrap();
    }
}

#[test]
fn handshake_messages_and_a_close_that_ends_with_close_notify() {
    let mut p = TlsPair::new();
    p.drive();
    assert_eq!(p.client_log, ["open"]);
    assert_eq!(
        p.server_log,
        [
            "upgrade /chat",
            "  scheme https, sni Some(\"localhost\"), alpn Some(\"http/1.1\")"
        ]
    );
    // The HTTP phase's TLS details went to the channel's info at the
    // upgrade (the connection keeps them once, there).
    assert!(p.server.is_tls(), "still TLS after the upgrade");
    let tls = p
        .server
        .info()
        .and_then(|i| i.tls())
        .expect("the channel's TLS details");
    assert_eq!(tls.sni.as_deref(), Some("localhost"));
    p.server_log.clear();
    p.client_log.clear();

    // A message bigger than a TLS record (16 KiB) crosses in several.
    let big = "x".repeat(100_000);
    assert!(p
        .client
        .send_message(Opcode::Text, big.as_bytes(), &p.limits)
        .is_queued());
    assert!(p
        .server
        .send_message(Opcode::Text, b"hello over TLS", &p.limits)
        .is_queued());
    p.drive();
    assert_eq!(p.server_log, ["text ".to_owned() + &big]);
    assert_eq!(p.client_log, ["text hello over TLS"]);
    p.server_log.clear();
    p.client_log.clear();

    let (now, limits) = (p.now, p.limits.clone());
    p.client.close(1000, "bye", now, &limits).unwrap();
    p.drive();
    assert_eq!(p.server_log, ["closed 1000 \"bye\" clean remote"]);
    // The server's close frame, then its close_notify: the client's side
    // ends cleanly, not with a truncation.
    assert_eq!(p.client_log, ["closed 1000 \"bye\" clean local", "tls: close_notify"]);
}

#[test]
fn tcp_ending_without_close_notify_mid_message_is_not_clean() {
    let mut p = TlsPair::new();
    p.drive();
    p.server_log.clear();
    // The client's first fragment, then its TCP just ends: no close frame,
    // no close_notify.
    let limits = p.limits.clone();
    p.client
        .send_raw(Opcode::Text, b"half of a mess", false, &limits)
        .unwrap();
    p.client_fin = true;
    p.drive();
    assert_eq!(
        p.server_log,
        ["tls: EOF without close_notify", "closed 1006 \"\" unclean remote"]
    );
}
