//! The HTTP side of a server connection: pipelining, keep-alive, the
//! upgrade with bytes after it, refusals, limits.

use hvws::proto::Limits;
use hvws::HttpResponse;

use crate::pair::{Pair, Side};

fn echo_path(req: &hvws::HttpRequest) -> HttpResponse {
    HttpResponse::text(req.path().to_owned())
}

fn take_out(p: &mut Pair) -> String {
    String::from_utf8(p.server.transmit().take_all()).unwrap()
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    p.router = echo_path;
    let mut wire = b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\nHEAD /three HTTP/1.1\r\n\r\n".to_vec();
    p.feed_server(&mut wire);
    assert_eq!(
        p.take_log(Side::Server),
        ["request GET /one", "request GET /two", "request HEAD /three"]
    );
    let out = take_out(&mut p);
    let bodies: Vec<&str> = out
        .split("\r\n\r\n")
        .skip(1)
        .map(|s| s.split("HTTP/").next().unwrap())
        .collect();
    assert_eq!(bodies, ["/one", "/two", ""], "HEAD gets no body: {out}");
}

#[test]
fn a_request_cut_anywhere_is_answered_once_whole() {
    let wire = b"POST /in HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    for cut in 1..wire.len() {
        let mut p = Pair::new(Limits::default(), Limits::default());
        p.router = echo_path;
        p.feed_server(&mut wire[..cut].to_vec());
        assert!(p.server.transmit().is_empty(), "cut at {cut}: answered early");
        p.feed_server(&mut wire[cut..].to_vec());
        assert_eq!(p.take_log(Side::Server), ["request POST /in"], "cut at {cut}");
    }
}

#[test]
fn connection_close_ends_the_connection_after_the_answer() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    let mut wire = b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n\r\n".to_vec();
    p.feed_server(&mut wire);
    assert_eq!(
        p.take_log(Side::Server),
        ["request GET /x"],
        "nothing after the close is read"
    );
    assert!(take_out(&mut p).contains("Connection: close"));
    assert!(!p.server.wants_input());
}

#[test]
fn garbage_and_limits_get_their_status_and_a_close() {
    for (wire, status) in [
        (&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..], "400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", "413"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
        (b"POST / HTTP/1.1\r\nExpect: the-moon\r\n\r\n", "417"),
        (
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "400",
        ),
    ] {
        let mut p = Pair::new(Limits::default(), Limits::default());
        p.feed_server(&mut wire.to_vec());
        let out = take_out(&mut p);
        assert!(out.starts_with(&format!("HTTP/1.1 {status}")), "{out}");
        assert!(!p.server.wants_input());
    }
}

#[test]
fn frames_right_after_the_upgrade_request_are_not_lost() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    // The client's request and its first frame, in one read.
    let mut request = std::mem::take(p.client.transmit());
    let l = p.client_limits.clone();
    p.client.handle_flushed();
    // The client cannot send before it is open; encode the frame by hand.
    let mut frame = Vec::new();
    hvws::proto::frame::encode_frame(&mut frame, true, hvws::Opcode::Text, b"early", Some([1, 2, 3, 4]));
    request.extend_from_slice(&frame);
    p.feed_server(&mut request);
    assert_eq!(p.take_log(Side::Server), ["upgrade /chat", "text early"]);
    let _ = l;
}

#[test]
fn a_refused_upgrade_fails_the_client_handshake() {
    let mut p = Pair::new(Limits::default(), Limits::default());
    p.refuse_upgrades = Some(HttpResponse::error(403));
    p.drive();
    assert_eq!(p.take_log(Side::Server), ["upgrade /chat"]);
    assert_eq!(
        p.take_log(Side::Client),
        ["closed 1006 \"\" unclean local (handshake failed: server refused the upgrade with HTTP 403)"]
    );
}

#[test]
fn answers_piling_up_unread_past_the_write_cap_close_the_connection() {
    let capped = Limits {
        max_write_buffer: 300,
        ..Limits::default()
    };
    let mut p = Pair::new(capped, Limits::default());
    p.router = echo_path;
    let mut wire = b"GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n".repeat(100);
    p.feed_server(&mut wire);
    let answered = p.take_log(Side::Server).len();
    assert!(answered < 100, "stopped at the cap after {answered}");
    assert!(!p.server.wants_input());
}
