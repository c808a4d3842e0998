//! The operator's figures over loopback: WebSockets open and close with
//! codes, a handshake is refused, a client stops reading, and
//! `Server::stats`, the handle's copy (as of the last tick) and
//! `GET /metrics` (the Prometheus text format, checked against its
//! grammar line by line) all say so.

mod util;

use std::collections::HashMap;

use hvws::{
    Channel, CloseInfo, Context, Handshake, HttpRequest, HttpResponse, HvWebServer, Routes, SendStatus, Server,
    ServerConfig, Stats,
};
use util::{close, connect, pump_until, recv_text, send_text, server_with, try_connect, ws_url, Raw};

#[derive(Default)]
struct App {
    opened: Vec<Channel>,
    closes: Vec<u16>,
}

impl HvWebServer for App {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.metrics("/metrics");
    }
    fn on_ws_handshake(&mut self, request: &HttpRequest) -> Handshake {
        match request.path() {
            "/refused" => Handshake::Reject(HttpResponse::error(403)),
            _ => Handshake::Accept,
        }
    }
    fn on_ws_open(&mut self, _: &mut Context<'_>, ch: Channel, _: &str) {
        self.opened.push(ch);
    }
    fn on_ws_message(&mut self, ctx: &mut Context<'_>, ch: Channel, msg: &str) {
        ctx.send_text(ch, msg);
    }
    fn on_ws_close(&mut self, _: &mut Context<'_>, _: Channel, close: &CloseInfo) {
        self.closes.push(close.code);
    }
}

const CAP: usize = 256 << 10;

fn start() -> Server<App> {
    server_with(
        App::default(),
        ServerConfig {
            max_write_buffer: CAP,
            ..ServerConfig::default()
        },
    )
}

/// Sends 16 KiB messages to `ch` from the loop, ticking, until one is not
/// queued; returns how many were.
fn flood(s: &mut Server<App>, ch: Channel) -> u64 {
    let chunk = vec![7u8; 16 << 10];
    for queued in 0..10_000 {
        match s.with_context(|_, ctx| ctx.send_binary(ch, &chunk)) {
            SendStatus::Queued => s.tick().unwrap(),
            SendStatus::Dropped => return queued,
            other => panic!("send to the sloth: {other:?}"),
        }
    }
    panic!("10,000 sends to a client that never reads were all accepted");
}

#[test]
fn the_figures_follow_a_session_and_reach_the_handle_and_prometheus() {
    let mut s = start();
    let handle = s.handle();
    assert_eq!(s.stats(), Stats::default(), "nothing yet, not even a tick");

    // Three WebSockets, each echoed one 5-byte message.
    let mut clients: Vec<_> = (0..3).map(|_| connect(&mut s, "/chat")).collect();
    for c in &mut clients {
        send_text(&mut s, c, "hello");
        assert_eq!(recv_text(&mut s, c), "hello");
    }
    let st = s.stats();
    assert_eq!(
        (st.websockets, st.handshakes_accepted, st.connections_accepted),
        (3, 3, 3)
    );
    assert_eq!(
        (st.messages_in, st.bytes_in, st.messages_out, st.bytes_out),
        (3, 15, 3, 15)
    );
    assert!(st.bytes_read > 15 && st.bytes_written > 15, "heads and frames: {st:?}");
    assert!(st.ticks > 0);

    // Two close, with their codes; one stays.
    let mut a = clients.remove(0);
    let mut b = clients.remove(0);
    close(&mut s, &mut a, 1000, "bye");
    close(&mut s, &mut b, 4001, "gone to lunch");
    pump_until(&mut s, "two closes", |s| s.handler().closes.len() == 2);

    // A handshake the application refuses.
    let url = ws_url(&s, "/refused");
    assert!(
        try_connect(&mut s, url.as_str()).is_err(),
        "the /refused handshake was accepted"
    );

    // A client that never reads: 1008 once its backlog reaches the cap.
    let sloth = Raw::ws(&mut s, "/sloth");
    pump_until(&mut s, "the sloth's channel", |s| s.handler().opened.len() == 4);
    let ch = s.handler().opened[3];
    let queued = flood(&mut s, ch);
    pump_until(&mut s, "the sloth's close", |s| s.handler().closes.contains(&1008));

    let st = s.stats();
    assert!(st.bytes_buffered >= CAP as u64, "the sloth's unread backlog: {st:?}");
    assert_eq!(st.websockets, 1, "one of four is still open");
    assert_eq!(st.handshakes_accepted, 4);
    assert_eq!(st.handshakes_refused, 1);
    assert_eq!(st.closes, [(1000, 1), (1008, 1), (4001, 1)]);
    assert_eq!((st.closes_with(1008), st.closes_total()), (1, 3));
    assert_eq!((st.slow_consumer_closes, st.slow_consumer_drops), (1, 1));
    assert_eq!(st.messages_out, 3 + queued);
    assert_eq!(st.bytes_out, 15 + queued * (16 << 10));
    assert_eq!(st.http_requests, 0, "upgrades are not HTTP requests");

    // The handle's copy is the last tick's: the same, right after one.
    s.tick().unwrap();
    let h = handle.clone();
    let from_thread = std::thread::spawn(move || h.stats()).join().unwrap();
    assert_eq!(from_thread, s.stats());

    // The sloth goes: its backlog leaves the gauge.
    drop(sloth);
    pump_until(&mut s, "the sloth's backlog to go", |s| s.stats().bytes_buffered == 0);

    // Prometheus scrapes it.
    let mut scraper = Raw::connect(&s);
    scraper.write(&mut s, b"GET /metrics HTTP/1.1\r\nHost: hvws\r\n\r\n");
    let resp = scraper.response(&mut s);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let samples = check_exposition(resp.text());
    let at = |name: &str| samples.get(name).copied().unwrap_or_else(|| panic!("no sample {name}"));
    assert_eq!(at("hvws_websockets"), 1.0);
    assert_eq!(at("hvws_handshakes_accepted_total"), 4.0);
    assert_eq!(at("hvws_handshakes_refused_total"), 1.0);
    assert_eq!(at("hvws_http_requests_total"), 1.0, "this scrape");
    assert_eq!(at("hvws_ws_closes_total{code=\"1000\"}"), 1.0);
    assert_eq!(at("hvws_ws_closes_total{code=\"1008\"}"), 1.0);
    assert_eq!(at("hvws_ws_closes_total{code=\"4001\"}"), 1.0);
    assert_eq!(at("hvws_slow_consumer_closes_total"), 1.0);
    assert_eq!(at("hvws_slow_consumer_drops_total"), 1.0);
    assert_eq!(at("hvws_messages_received_total"), 3.0);
    assert_eq!(at("hvws_message_bytes_received_total"), 15.0);
    assert_eq!(at("hvws_messages_sent_total"), (3 + queued) as f64);
    assert_eq!(at("hvws_bytes_buffered"), 0.0);
    assert!(at("hvws_connections") >= 2.0, "the open WebSocket and the scraper");
    assert!(at("hvws_ticks_total") > 0.0);
}

#[test]
fn the_exposition_of_an_idle_server_is_well_formed() {
    let text = Stats::default().to_prometheus();
    let samples = check_exposition(&text);
    assert!(samples.values().all(|&v| v == 0.0));
    assert!(samples.len() >= 16, "every figure, even at zero: {samples:?}");
}

/// Whether `s` is a metric name (`colons`) or a label name.
fn is_name(s: &str, colons: bool) -> bool {
    let ok = |c: char, first: bool| {
        c == '_' || (colons && c == ':') || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
    };
    let mut chars = s.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// Checks `text` against the Prometheus text format (0.0.4) line by line:
/// metric and label names, `# HELP` and `# TYPE` at most once per metric
/// and before its samples, a metric's samples together, counters named
/// `_total`, escapes, values numbers, a final newline. Returns every
/// sample as (name with labels, value).
#[track_caller]
fn check_exposition(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    let mut helped = Vec::new();
    let mut typed: HashMap<&str, &str> = HashMap::new();
    let mut finished: Vec<&str> = Vec::new(); // metrics whose samples are over
    let mut current: Option<&str> = None;
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("# HELP name text");
            assert!(is_name(name, true), "metric name {name:?}");
            assert!(
                help.split('\\').skip(1).all(|after| after.starts_with(['\\', 'n'])),
                "HELP escapes only \\ and newline: {help:?}"
            );
            assert!(!helped.contains(&name), "a second HELP for {name}");
            assert!(
                !finished.contains(&name) && current != Some(name),
                "HELP after {name}'s samples"
            );
            helped.push(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            assert!(is_name(name, true), "metric name {name:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "type {kind:?}"
            );
            assert!(typed.insert(name, kind).is_none(), "a second TYPE for {name}");
            assert!(
                !finished.contains(&name) && current != Some(name),
                "TYPE after {name}'s samples"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} ends in _total");
            }
        } else if !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, Some(rest.strip_suffix('}').expect("labels end with }"))),
                None => (series, None),
            };
            assert!(is_name(name, true), "metric name {name:?}");
            if let Some(labels) = labels {
                check_labels(labels);
            }
            assert!(typed.contains_key(name), "{name}'s samples come after its TYPE");
            if current != Some(name) {
                assert!(!finished.contains(&name), "{name}'s samples are not together");
                finished.extend(current);
                current = Some(name);
            }
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value {value:?}"));
            assert!(samples.insert(series.to_owned(), value).is_none(), "{series} twice");
        }
    }
    samples
}

/// `name="value",...` with label names as the grammar has them and values
/// with only `\\`, `\"` and `\n` escapes.
#[track_caller]
fn check_labels(mut labels: &str) {
    while !labels.is_empty() {
        let (name, rest) = labels.split_once("=\"").expect("label=\"value\"");
        assert!(is_name(name, false), "label name {name:?}");
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (true, '\\' | '"' | 'n') => escaped = false,
                (true, other) => panic!("bad escape \\{other}"),
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.expect("label value closes with \"");
        labels = rest[end + 1..].strip_prefix(',').unwrap_or(&rest[end + 1..]);
    }
}
