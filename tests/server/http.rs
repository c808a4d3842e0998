//! Plain HTTP on the server's port: routes that change the handler's
//! state, keep-alive and pipelining, bodies in pieces, half-close,
//! `Connection: close`, and the error answers.

use hvws::{HttpResponse, HvWebServer, Routes};

use crate::common::http_get;
use crate::util::{self, pump_n, Raw};

#[derive(Default)]
struct Counter {
    total: i64,
    bodies: Vec<String>,
}

impl HvWebServer for Counter {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .get("/total", |c: &mut Counter, _, _| {
                HttpResponse::text(c.total.to_string())
            })
            .post("/add", |c: &mut Counter, _, req| {
                let body = req.body_text().unwrap_or_default().to_owned();
                match body.trim().parse::<i64>() {
                    Ok(n) => {
                        c.total += n;
                        c.bodies.push(body);
                        HttpResponse::text(c.total.to_string())
                    }
                    Err(_) => HttpResponse::error(400),
                }
            })
            .websocket("/chat");
    }
}

#[test]
fn http_routes_keep_alive_and_errors() {
    let mut server = util::server(Counter::default());

    // Three pipelined requests in one write, answered in order; the
    // connection stays open for a fourth.
    let mut conn = Raw::connect(&server);
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n40\
          GET /total HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /ping HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for want in ["40", "40", "pong"] {
        let r = conn.response(&mut server);
        assert_eq!((r.status, r.text()), (200, want));
        assert_eq!(r.header("connection"), None);
    }
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n+2\n",
    );
    let r = conn.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "42"));
    assert_eq!(server.handler().total, 42, "the route changed the handler's state");
    assert_eq!(server.handler().bodies, ["40", "+2\n"]);

    // Errors on the same keep-alive connection.
    let r = http_get(&mut server, &mut conn, "/nope");
    assert_eq!((r.status, r.text()), (404, "Not Found"));
    conn.write(&mut server, b"DELETE /ping HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = conn.response(&mut server);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = http_get(&mut server, &mut conn, "/chat");
    assert_eq!(r.status, 400, "a plain GET to a WebSocket-only path");
    let r = http_get(&mut server, &mut conn, "/ping");
    assert_eq!((r.status, r.text()), (200, "pong"));
    assert!(!conn.eof);

    // A body that arrives in pieces.
    conn.write(
        &mut server,
        b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n10",
    );
    pump_n(&mut server, 10);
    conn.fill();
    assert!(conn.buf.is_empty(), "answered before the body was complete");
    conn.write(&mut server, b"00");
    let r = conn.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "1042"));
    assert_eq!(server.handler().bodies, ["40", "+2\n", "1000"]);

    // A client that half-closes after its request still gets the answer.
    let mut half = Raw::connect(&server);
    half.write(&mut server, b"GET /total HTTP/1.1\r\nHost: t\r\n\r\n");
    half.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let r = half.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "1042"));
    assert_eq!(half.read_to_eof(&mut server), b"");

    // Connection: close.
    let mut once = Raw::connect(&server);
    once.write(
        &mut server,
        b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let r = once.response(&mut server);
    assert_eq!((r.status, r.text()), (200, "pong"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(once.read_to_eof(&mut server), b"");

    // A malformed request: 400, then the server closes (read returns 0).
    let mut bad = Raw::connect(&server);
    bad.write(&mut server, b"\x01\x02 nonsense\r\n\r\n");
    let r = bad.response(&mut server);
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(bad.read_to_eof(&mut server), b"");
    assert!(bad.eof);
    let mut byte = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut bad.stream, &mut byte).unwrap(), 0);

    assert_eq!(server.handler().total, 1042);
}

struct Seer;

impl HvWebServer for Seer {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes.any("/see/:id", |_, _, req| {
            let names: Vec<&str> = req.headers().iter().map(|(k, _)| k.as_str()).collect();
            HttpResponse::text(format!(
                "{} {} q={} body={} headers={}",
                req.method(),
                req.param("id").unwrap_or("-"),
                req.query(),
                req.body().len(),
                names.join(",")
            ))
        });
    }
}

/// The server builds each request in the box and head buffer of the one it
/// answered before: nothing of the earlier request (its parameters,
/// query, body, headers, or `headers()` list) may show through.
#[test]
fn a_request_sees_nothing_of_the_one_before() {
    let mut server = util::server(Seer);
    let mut conn = Raw::connect(&server);
    conn.write(
        &mut server,
        b"POST /see/1?q=a HTTP/1.1\r\nHost: t\r\nX-One: 1\r\nX-Two: 2\r\nContent-Length: 3\r\n\r\nxyz\
          GET /see/22 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /see/3?z HTTP/1.1\r\nX-Three: \xff\r\n\r\n",
    );
    let want = [
        "POST 1 q=q=a body=3 headers=host,x-one,x-two,content-length",
        "GET 22 q= body=0 headers=host",
        "GET 3 q=z body=0 headers=x-three",
    ];
    for want in want {
        let r = conn.response(&mut server);
        assert_eq!((r.status, r.text()), (200, want));
    }
    let mut other = Raw::connect(&server);
    let r = http_get(&mut server, &mut other, "/see/4");
    assert!(r.text().starts_with("GET 4 q= body=0 headers=host"), "{}", r.text());
}
