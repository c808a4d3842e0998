//! Handshake decisions (reject, accept, choose a subprotocol), what the
//! channel info shows afterwards, and stale channel ids that must not reach
//! the connection that reused their slot.

use std::net::SocketAddr;

use hvws::{
    offered_protocols, Channel, Context, Handshake, HttpRequest, HttpResponse, HvWebServer, KeepHeaders, Opcode,
    Routes, SendStatus, Server, ServerConfig,
};
use tungstenite::http::Uri;
use tungstenite::ClientRequestBuilder;

use crate::common::{close_info, nth_open, Probe};
use crate::util::{
    self, close, connect, pump_for, pump_n, pump_until, recv_close, recv_text, try_connect, until_closed,
};

#[derive(Debug, Clone)]
struct Seen {
    url: String,
    target: String,
    path: String,
    room: Option<String>,
    key: Option<String>,
    origin: Option<String>,
    header_names: Vec<String>,
    peer: SocketAddr,
    protocol: Option<String>,
}

#[derive(Default)]
struct Gate {
    handshakes: usize,
    /// Header names each handshake callback saw.
    seen_in_handshake: Vec<Vec<String>>,
    opened: Vec<Seen>,
}

impl HvWebServer for Gate {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.websocket("/chat");
    }

    fn on_ws_handshake(&mut self, request: &HttpRequest) -> Handshake {
        self.handshakes += 1;
        self.seen_in_handshake
            .push(request.headers().iter().map(|(k, _)| k.clone()).collect());
        if request.header("x-api-key") != Some("s3cret") {
            return Handshake::Reject(HttpResponse::error(403));
        }
        if offered_protocols(request).any(|p| p == "chat") {
            Handshake::AcceptProtocol("chat".into())
        } else {
            Handshake::Accept
        }
    }

    fn on_ws_open(&mut self, ctx: &mut Context<'_>, ch: Channel, url: &str) {
        let info = ctx.info(ch).expect("info of an open channel");
        self.opened.push(Seen {
            url: url.to_owned(),
            target: info.target().to_owned(),
            path: info.path().to_owned(),
            room: info.query_param("room"),
            key: info.header("X-API-KEY").map(str::to_owned),
            origin: info.header("origin").map(str::to_owned),
            header_names: info.headers().iter().map(|(k, _)| k.clone()).collect(),
            peer: info.peer_addr(),
            protocol: info.protocol().map(str::to_owned),
        });
    }
}

fn request(server: &Server<Gate>, target: &str) -> ClientRequestBuilder {
    let uri: Uri = util::ws_url(server, target).parse().unwrap();
    ClientRequestBuilder::new(uri)
}

#[test]
fn handshake_reject_accept_and_subprotocol() {
    let config = ServerConfig {
        keep_headers: KeepHeaders::only(["X-Api-Key"]),
        ..ServerConfig::default()
    };
    let mut server = util::server_with(Gate::default(), config);

    // No key, then a wrong key: 403, and no channel.
    for req in [
        request(&server, "/chat"),
        request(&server, "/chat").with_header("X-Api-Key", "wrong"),
    ] {
        match try_connect(&mut server, req) {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 403);
                assert_eq!(resp.body().as_deref(), Some(&b"Forbidden"[..]));
            }
            Err(e) => panic!("expected an HTTP 403, got {e}"),
            Ok(_) => panic!("the handshake without the key was accepted"),
        }
    }
    pump_n(&mut server, 10);
    assert_eq!(server.handler().handshakes, 2);
    assert!(
        server.handler().opened.is_empty(),
        "on_ws_open ran for a rejected handshake"
    );

    // With the key, no subprotocol offered.
    let req = request(&server, "/chat").with_header("X-Api-Key", "s3cret");
    let plain = try_connect(&mut server, req).expect("handshake with the key");
    assert_eq!(plain.response.headers().get("sec-websocket-protocol"), None);
    let seen = pump_for(&mut server, "on_ws_open", |s| s.handler().opened.first().cloned());
    assert_eq!(seen.protocol, None);
    assert_eq!(seen.peer, plain.local_addr());

    // With the key and two offered subprotocols: "chat" is chosen.
    let req = request(&server, "/chat?room=main%20hall&x=1")
        .with_header("X-Api-Key", "s3cret")
        .with_sub_protocol("superchat")
        .with_sub_protocol("chat");
    let chat = try_connect(&mut server, req).expect("handshake with a subprotocol");
    assert_eq!(
        chat.response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("chat")
    );
    let seen = pump_for(&mut server, "the second on_ws_open", |s| {
        s.handler().opened.get(1).cloned()
    });
    assert_eq!(seen.protocol.as_deref(), Some("chat"));
    assert_eq!(seen.url, "/chat?room=main%20hall&x=1");
    assert_eq!(seen.target, seen.url);
    assert_eq!(seen.path, "/chat");
    assert_eq!(seen.room.as_deref(), Some("main hall"));
    assert_eq!(seen.key.as_deref(), Some("s3cret"), "header lookup is case-insensitive");
    assert_eq!(seen.header_names, ["x-api-key"], "only the listed header is kept");
    assert_eq!(seen.peer, chat.local_addr());
    assert_eq!(server.handler().handshakes, 4);

    // Another path than the declared WebSocket one: 404, before the handler.
    let req = request(&server, "/other").with_header("X-Api-Key", "s3cret");
    match try_connect(&mut server, req) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected an HTTP 404, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.handler().handshakes, 4);
}

/// What `ChannelInfo` keeps under each `KeepHeaders`; the handshake
/// callback sees every header whatever is kept.
#[test]
fn kept_headers_follow_the_policy() {
    let policies = [
        (KeepHeaders::default(), vec!["origin"]),
        (KeepHeaders::None, vec![]),
        (KeepHeaders::only(["ORIGIN", "x-api-key"]), vec!["origin", "x-api-key"]),
        (
            KeepHeaders::All,
            vec![
                "host",
                "connection",
                "upgrade",
                "sec-websocket-version",
                "sec-websocket-key",
                "x-api-key",
                "origin",
            ],
        ),
    ];
    for (keep, kept) in policies {
        let config = ServerConfig {
            keep_headers: keep.clone(),
            ..ServerConfig::default()
        };
        let mut server = util::server_with(Gate::default(), config);
        let req = request(&server, "/chat")
            .with_header("X-Api-Key", "s3cret")
            .with_header("Origin", "https://game.example");
        let _ws = try_connect(&mut server, req).expect("handshake with the key");
        let seen = pump_for(&mut server, "on_ws_open", |s| s.handler().opened.first().cloned());
        let mut names = seen.header_names.clone();
        let mut want: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
        names.sort();
        want.sort();
        assert_eq!(names, want, "{keep:?}");
        assert_eq!(seen.key.is_some(), keep.keeps("x-api-key"), "{keep:?}");
        assert_eq!(
            seen.origin.as_deref(),
            keep.keeps("origin").then_some("https://game.example"),
            "{keep:?}"
        );
        let in_handshake = &server.handler().seen_in_handshake[0];
        for name in ["host", "sec-websocket-key", "x-api-key", "origin"] {
            assert!(in_handshake.iter().any(|h| h == name), "{keep:?}: {in_handshake:?}");
        }
        assert!(
            in_handshake.iter().all(|h| *h == h.to_ascii_lowercase()),
            "header names must be lower-cased: {in_handshake:?}"
        );
    }
}

#[test]
fn stale_channel_id_cannot_reach_the_slot_reuser() {
    let mut server = util::server(Probe::default());
    let handle = server.handle();

    let mut first = connect(&mut server, "/");
    let old = nth_open(&mut server, 1);
    close(&mut server, &mut first, 1000, "");
    recv_close(&mut server, &mut first);
    until_closed(&mut server, &mut first);
    drop(first);
    close_info(&mut server, old);
    // The slot is free once the server has seen the TCP close. Server's
    // Debug output is the only public view of the connection count.
    pump_until(&mut server, "the closed connection to leave its slot", |s| {
        format!("{s:?}").contains("connections: 0")
    });

    let mut second = connect(&mut server, "/");
    let new = nth_open(&mut server, 2);
    assert_eq!(new.index(), old.index(), "the new connection should reuse the slot");
    assert_ne!(new, old);

    server.with_context(|_, ctx| {
        assert_eq!(ctx.send_text(old, "to the old one"), SendStatus::Closed);
        assert_eq!(ctx.send_binary(old, b"old"), SendStatus::Closed);
        assert_eq!(ctx.send(old, b"old", Opcode::Text, false), Ok(SendStatus::Closed));
        assert_eq!(ctx.ping(old, b"old"), Ok(SendStatus::Closed));
        assert_eq!(ctx.close(old, 1000, ""), Ok(()), "closing a stale id does nothing");
        assert_eq!(ctx.broadcast_to([old], b"old", Opcode::Text), Ok(0));
        assert!(!ctx.is_open(old));
        assert!(ctx.info(old).is_none());
        assert_eq!(ctx.buffered_amount(old), 0);
        assert!(ctx.is_open(new));
        assert!(ctx.send_text(new, "to the new one").is_queued());
    });
    // Through the handle the stale send is queued, then dropped by the tick.
    handle.send_text(old, "old via handle").unwrap();
    handle.close(old, 1000, "").unwrap();
    handle.send_text(new, "marker").unwrap();

    assert_eq!(recv_text(&mut server, &mut second), "to the new one");
    assert_eq!(recv_text(&mut server, &mut second), "marker");
    pump_n(&mut server, 20);
    assert_eq!(
        second.try_recv(),
        None,
        "the new client got something meant for the old one"
    );
    assert!(server.with_context(|_, ctx| ctx.is_open(new)));
}
