//! The HTTP/1.1 head parser and encoder, byte for byte.

use super::*;

fn peer() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[track_caller]
fn parse(buf: &[u8]) -> Result<Option<Head>, HttpError> {
    parse_head(buf, peer(), 256, 10)
}

#[test]
fn parses_a_post_with_body_length() {
    let h = parse(b"POST /m?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap()
        .unwrap();
    assert_eq!(h.request.method(), &Method::Post);
    assert_eq!(h.request.path(), "/m");
    assert_eq!(h.request.query(), "x=1");
    assert_eq!(h.request.header("host"), Some("a"));
    assert_eq!((h.head_len, h.body_len, h.keep_alive), (52, 5, true));
}

#[test]
fn partial_then_limits() {
    assert!(parse(b"GET / HTTP/1.1\r\nHost:").unwrap().is_none());
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(300));
    assert_eq!(parse(long.as_bytes()).unwrap_err(), HttpError::HeadTooLarge(256));
    let e = parse(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n").unwrap_err();
    assert_eq!((e, e.status()), (HttpError::BodyTooLarge { len: 11, max: 10 }, 413));
    let e = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap_err();
    assert_eq!(e.status(), 501);
    let e = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e.unwrap_err().status(), 501);
    let e = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(e.unwrap_err(), HttpError::AmbiguousLength);
    let e = parse(b"POST / HTTP/1.1\r\nExpect: the-moon\r\n\r\n").unwrap_err();
    assert_eq!((e, e.status()), (HttpError::Expectation, 417));
    let e = parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").unwrap_err();
    assert_eq!(e.status(), 400);
    let e = parse(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(e.unwrap_err(), HttpError::InvalidContentLength);
    for bad in [&b"+5"[..], b"-1", b"5 5", b"0x5", b""] {
        let mut req = b"POST / HTTP/1.1\r\nContent-Length: ".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&req).unwrap_err(), HttpError::InvalidContentLength, "{bad:?}");
    }
}

#[test]
fn chunked_expect_and_multipart_heads() {
    let h = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.chunked && h.expect_continue && !h.streamed);
    let h = parse(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.expect_continue, "nothing to wait for without a body");
    // An upload over the buffered-body limit is the caller's to judge.
    let h = parse(b"POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 99\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.streamed && h.body_len == 99);
}

#[test]
fn date_and_no_response_splitting() {
    let mut out = Vec::new();
    let resp = HttpResponse::new(200)
        .with_header("X-Evil", "a\r\nSet-Cookie: admin=1")
        .with_header("X-Fine", "b");
    encode_response(&resp, true, false, "Mon, 30 Nov 2026 06:00:00 GMT", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nX-Fine: b\r\nDate: Mon, 30 Nov 2026 06:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
    );
    let mut out = Vec::new();
    let own = HttpResponse::new(200).with_header("Date", "Thu, 01 Jan 1970 00:00:00 GMT");
    encode_response(&own, true, false, "Mon, 30 Nov 2026 06:00:00 GMT", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap().matches("Date: ").count(),
        1,
        "the application's own wins"
    );
}

#[test]
fn a_head_exactly_at_the_limits_is_read_and_one_past_is_not() {
    // 64 headers (the last padded) and exactly `max_head` bytes.
    let mut head = String::from("GET /x HTTP/1.1\r\n");
    for i in 0..MAX_HEADERS - 1 {
        head.push_str(&format!("H{i:02}: v\r\n"));
    }
    let pad = 1024 - head.len() - "X: \r\n\r\n".len();
    head.push_str(&format!("X: {}\r\n\r\n", "p".repeat(pad)));
    let n = head.len();
    assert_eq!(n, 1024);
    let h = parse_head(head.as_bytes(), peer(), n, 0).unwrap().unwrap();
    assert_eq!(h.head_len, n);
    assert_eq!(h.request.headers().len(), MAX_HEADERS);
    assert_eq!(h.request.header("h00"), Some("v"));
    assert_eq!(h.request.header("X").map(str::len), Some(pad));
    assert_eq!(h.request.target(), "/x");
    // One byte over, and one header over.
    assert_eq!(
        parse_head(head.as_bytes(), peer(), n - 1, 0).unwrap_err(),
        HttpError::HeadTooLarge(n - 1)
    );
    let more = head.replace("X: ", "H64: v\r\nX: ");
    assert_eq!(
        parse_head(more.as_bytes(), peer(), 4096, 0).unwrap_err(),
        HttpError::TooManyHeaders
    );
}

#[test]
fn header_values_that_are_not_utf8() {
    // obs-text (RFC 9110 §5.5): read lossily, the rest of the head as
    // sent, and the headers hvws acts on still understood.
    let raw = b"POST /u HTTP/1.1\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\nHost: h\r\n\r\nok";
    let h = parse(raw).unwrap().unwrap();
    assert_eq!(h.request.header("x-name"), Some("caf\u{fffd}"));
    assert_eq!(h.request.header("host"), Some("h"));
    assert_eq!(h.body_len, 2);
    let bad_length = b"POST / HTTP/1.1\r\nContent-Length: 1\xff\r\n\r\n";
    assert_eq!(parse(bad_length).unwrap_err(), HttpError::InvalidContentLength);
}

#[test]
fn a_reused_buffer_reads_the_same_head() {
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n";
    let fresh = parse(raw).unwrap().unwrap();
    let mut used = HttpRequest::builder(Method::Post, "/stale?x=1")
        .header("X-Stale", "1")
        .body("old body")
        .param("id", "9")
        .build();
    let cap = used.head.capacity();
    let info = parse_head_into(raw, 256, 10, &mut used).unwrap().unwrap();
    assert_eq!(info.head_len, raw.len());
    assert_eq!(used.headers(), fresh.request.headers());
    assert_eq!((used.method(), used.path(), used.query()), (&Method::Get, "/a", "b=1"));
    assert!(used.body().is_empty() && used.params().is_empty());
    assert!(used.head.capacity() >= cap, "the buffer was reused");
    // A partial head leaves the request as it was.
    assert!(parse_head_into(b"GET / HTTP/1.1\r\n", 256, 10, &mut used)
        .unwrap()
        .is_none());
    assert_eq!(used.path(), "/a");
}

#[test]
fn keep_alive_rules() {
    let ka = |s: &[u8]| parse(s).unwrap().unwrap().keep_alive;
    assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

#[test]
fn decimals_at_every_length() {
    for n in [
        0,
        7,
        9,
        10,
        13,
        99,
        100,
        404,
        999,
        1000,
        1001,
        9999,
        10_000,
        65_536,
        u64::MAX,
    ] {
        let mut out = b"x".to_vec();
        push_decimal(n, &mut out);
        assert_eq!(out, format!("x{n}").as_bytes());
    }
}

#[test]
fn encodes_exact_bytes() {
    let mut out = Vec::new();
    let resp = HttpResponse::text("pong").with_header("Content-Length", "99");
    encode_response(&resp, true, false, "", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\n\r\npong"
    );
    let mut out = Vec::new();
    encode_response(&HttpResponse::new(204).with_header("X", "y"), true, false, "", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"
    );
    let mut out = Vec::new();
    let head = HttpResponse::new(200).with_header("Transfer-Encoding", "gzip");
    encode_head(&head, true, Framing::Chunked, "", &mut out);
    encode_chunk(b"hello", &mut out);
    encode_chunk(b"", &mut out);
    out.extend_from_slice(LAST_CHUNK);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let mut out = Vec::new();
    encode_response(&HttpResponse::error(404), false, true, "", &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 9\r\n\r\n"
    );
}
