//! The router over loopback: path parameters and wildcards, ANY, 405 and
//! OPTIONS, middleware, CORS preflights byte for byte, a panicking handler,
//! WebSocket paths with parameters, and `init` refusing a route table with
//! a conflict. Raw TCP on the test thread; every wait ends after
//! `util::TIMEOUT`.

#[path = "util/mod.rs"]
mod util;

use std::time::Duration;

use hvws::{Cors, HttpResponse, HvWebServer, Method, RouteError, Routes, Server, ServerError};

use util::{pump_for, Raw};

const GAME: &str = "https://game.example";

#[derive(Default)]
struct Api {
    /// What the before-middleware saw: method, path and `:id`.
    seen: Vec<String>,
    /// The `:room` of each WebSocket handshake.
    rooms: Vec<String>,
}

impl HvWebServer for Api {
    fn on_ws_handshake(&mut self, request: &hvws::HttpRequest) -> hvws::Handshake {
        self.rooms.push(request.param("room").unwrap_or("-").to_owned());
        hvws::Handshake::Accept
    }

    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .cors(
                Cors::new()
                    .allow_origin(GAME)
                    .allow_methods(&[Method::Get, Method::Post, Method::Put])
                    .expose_headers(&["X-Served-By"])
                    .allow_credentials(true)
                    .max_age(Duration::from_secs(600)),
            )
            .before(|api: &mut Api, _, req| {
                let id = req.param("id").unwrap_or("-");
                api.seen.push(format!("{} {} {id}", req.method(), req.path()));
                let authorized = req.header("authorization") == Some("Bearer s3cret");
                (req.path().starts_with("/admin/") && !authorized)
                    .then(|| HttpResponse::error(401).with_header("WWW-Authenticate", "Bearer"))
            })
            .after(|_, resp| resp.set_header("X-Served-By", "hvws"))
            .get("/users/new", |_, _, _| HttpResponse::text("the form"))
            .get("/users/:id", |_, _, req| {
                HttpResponse::text(format!("user {}", req.param("id").unwrap_or_default()))
            })
            .get("/users/:id/posts/:post_id", |_, _, req| {
                let (id, post) = (
                    req.param("id").unwrap_or_default(),
                    req.param("post_id").unwrap_or_default(),
                );
                HttpResponse::text(format!("post {post} of {id}"))
            })
            .get("/files/*path", |_, _, req| {
                HttpResponse::text(format!("file {:?}", req.param("path").unwrap_or_default()))
            })
            .any("/echo", |_, _, req| HttpResponse::text(format!("any {}", req.method())))
            .post("/echo", |_, _, req| {
                HttpResponse::text(format!("post {}", req.body_text().unwrap_or_default()))
            })
            .get("/admin/stats", |_, _, _| HttpResponse::text("42 players"))
            .get("/boom", |_, _, _| panic!("a handler bug"))
            .websocket("/rooms/:room");
    }
}

/// Sends `request` (head and body, as written) and reads the answer.
#[track_caller]
fn exchange(server: &mut Server<Api>, conn: &mut Raw, request: &str) -> util::HttpResp {
    conn.write(server, request.as_bytes());
    conn.response(server)
}

/// `GET path` on `conn`: status and body.
#[track_caller]
fn get(server: &mut Server<Api>, conn: &mut Raw, path: &str) -> (u16, String) {
    let r = exchange(server, conn, &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    (r.status, r.text().to_owned())
}

/// The next response head as sent, for a bodiless answer, without its
/// `Date` line (checked here: RFC 9110 wants one, its value is the clock's).
#[track_caller]
fn raw_head(server: &mut Server<Api>, conn: &mut Raw) -> String {
    let head = pump_for(server, "a response head", |_| {
        conn.fill();
        let end = conn.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head: Vec<u8> = conn.buf.drain(..end).collect();
        Some(String::from_utf8(head).expect("UTF-8 head"))
    });
    let (mut kept, mut dates) = (String::new(), 0);
    for line in head.split_inclusive("\r\n") {
        match line.strip_prefix("Date: ") {
            Some(date) => {
                assert!(date.ends_with(" GMT\r\n"), "an IMF-fixdate: {date:?}");
                dates += 1;
            }
            None => kept.push_str(line),
        }
    }
    assert_eq!(dates, 1, "one Date header: {head}");
    kept
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_owned())
}

#[test]
fn parameters_wildcards_and_precedence() {
    let mut server = util::server(Api::default());
    let mut conn = Raw::connect(&server);
    assert_eq!(get(&mut server, &mut conn, "/users/new"), ok("the form"));
    assert_eq!(get(&mut server, &mut conn, "/users/7?full=1"), ok("user 7"));
    assert_eq!(get(&mut server, &mut conn, "/users/new/posts/3"), ok("post 3 of new"));
    assert_eq!(get(&mut server, &mut conn, "/users/a%2Fb"), ok("user a/b"));
    assert_eq!(get(&mut server, &mut conn, "/users/").0, 404);
    assert_eq!(
        get(&mut server, &mut conn, "/files/css/site%20v2.css"),
        ok(r#"file "css/site v2.css""#)
    );
    assert_eq!(get(&mut server, &mut conn, "/files/"), ok(r#"file """#));
    assert_eq!(get(&mut server, &mut conn, "/files").0, 404);
    assert!(!conn.eof, "one keep-alive connection for all of them");
    assert_eq!(
        server.handler().seen[..3],
        ["GET /users/new -", "GET /users/7 7", "GET /users/new/posts/3 new"],
        "before-middleware sees the parameters"
    );
}

#[test]
fn any_head_405_and_options() {
    let mut server = util::server(Api::default());
    let mut conn = Raw::connect(&server);
    let r = exchange(
        &mut server,
        &mut conn,
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!((r.status, r.text()), (200, "post hi"));
    let r = exchange(&mut server, &mut conn, "DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "any DELETE"));
    let r = exchange(&mut server, &mut conn, "BREW /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "any BREW"));

    // HEAD gets GET's head without the body.
    conn.write(&mut server, b"HEAD /users/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = raw_head(&mut server, &mut conn);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("Content-Length: 6\r\n\r\n"), "{head}");

    let r = exchange(&mut server, &mut conn, "DELETE /users/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(
        r.header("x-served-by"),
        Some("hvws"),
        "after-middleware on the table's own answers"
    );

    conn.write(&mut server, b"OPTIONS /users/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        raw_head(&mut server, &mut conn),
        "HTTP/1.1 204 No Content\r\n\
         Allow: GET, HEAD, OPTIONS\r\n\
         Vary: Origin\r\n\
         X-Served-By: hvws\r\n\r\n"
    );
    let r = exchange(&mut server, &mut conn, "OPTIONS /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
}

#[test]
fn middleware_answers_early_and_after_middleware_sees_every_answer() {
    let mut server = util::server(Api::default());
    let mut conn = Raw::connect(&server);
    let r = exchange(&mut server, &mut conn, "GET /admin/stats HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.text()), (401, "Unauthorized"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.header("x-served-by"), Some("hvws"));
    let r = exchange(
        &mut server,
        &mut conn,
        "GET /admin/stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.text(), r.header("x-served-by")),
        (200, "42 players", Some("hvws"))
    );

    // A panicking handler: a 500 through the chain, then the connection
    // closes; the server carries on.
    let r = exchange(&mut server, &mut conn, "GET /boom HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (500, Some("close")));
    assert_eq!(r.header("x-served-by"), Some("hvws"));
    conn.read_to_eof(&mut server);
    let mut conn = Raw::connect(&server);
    assert_eq!(get(&mut server, &mut conn, "/users/1"), ok("user 1"));
}

#[test]
fn cors_preflight_and_simple_requests_on_the_wire() {
    let mut server = util::server(Api::default());
    let mut conn = Raw::connect(&server);

    // Answered before routing and before the middleware that would ask a
    // preflight (which carries no credentials) for its Authorization.
    conn.write(
        &mut server,
        b"OPTIONS /admin/stats HTTP/1.1\r\nHost: t\r\nOrigin: https://game.example\r\n\
          Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n",
    );
    assert_eq!(
        raw_head(&mut server, &mut conn),
        "HTTP/1.1 204 No Content\r\n\
         Vary: Origin, Access-Control-Request-Headers\r\n\
         Access-Control-Allow-Origin: https://game.example\r\n\
         Access-Control-Allow-Methods: GET, POST, PUT\r\n\
         Access-Control-Allow-Headers: authorization, content-type\r\n\
         Access-Control-Max-Age: 600\r\n\
         Access-Control-Allow-Credentials: true\r\n\
         X-Served-By: hvws\r\n\r\n"
    );
    assert!(server.handler().seen.is_empty(), "no before-middleware for a preflight");

    // Another origin's preflight: a bare 204, the browser blocks.
    conn.write(
        &mut server,
        b"OPTIONS /users/1 HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\
          Access-Control-Request-Method: GET\r\n\r\n",
    );
    assert_eq!(
        raw_head(&mut server, &mut conn),
        "HTTP/1.1 204 No Content\r\nVary: Origin\r\nX-Served-By: hvws\r\n\r\n"
    );

    // The real request from the allowed origin, and from another.
    let r = exchange(
        &mut server,
        &mut conn,
        "GET /users/1 HTTP/1.1\r\nHost: t\r\nOrigin: https://game.example\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(GAME));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Served-By"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = exchange(
        &mut server,
        &mut conn,
        "GET /nope HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\r\n",
    );
    assert_eq!((r.status, r.header("vary")), (404, Some("Origin")));
    assert!(
        !r.headers.iter().any(|(k, _)| k.starts_with("access-control-")),
        "{r:?}"
    );
    // Without Origin: no CORS headers, but still `Vary: Origin` for caches.
    let r = exchange(&mut server, &mut conn, "GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        !r.headers.iter().any(|(k, _)| k.starts_with("access-control-")),
        "{r:?}"
    );
    assert_eq!(r.header("vary"), Some("Origin"));
}

#[test]
fn websocket_paths_take_parameters() {
    let mut server = util::server(Api::default());
    Raw::ws(&mut server, "/rooms/lobby");
    Raw::ws(&mut server, "/rooms/caf%C3%A9");
    assert_eq!(
        server.handler().rooms,
        ["lobby", "café"],
        "on_ws_handshake reads the parameters"
    );
    let mut conn = Raw::connect(&server);
    conn.write(
        &mut server,
        b"GET /rooms/ HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(conn.response(&mut server).status, 404);
    let mut conn = Raw::connect(&server);
    let (status, _) = get(&mut server, &mut conn, "/rooms/lobby");
    assert_eq!(status, 400, "a plain GET to a WebSocket-only path");
}

struct Conflicting;

impl HvWebServer for Conflicting {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/users/:id", |_, _, _| HttpResponse::text("user"))
            .get("/users/:name/posts", |_, _, _| HttpResponse::text("posts"));
    }
}

#[test]
fn init_fails_on_a_route_conflict() {
    util::init_logging();
    let mut server = Server::new(Conflicting);
    match server.init_addr("127.0.0.1:0".parse().unwrap()) {
        Err(ServerError::InvalidRoute(RouteError::ParamConflict { pattern, existing, new })) => {
            assert_eq!(
                (pattern.as_str(), existing.as_str(), new.as_str()),
                ("/users/:name/posts", "id", "name")
            );
        }
        other => panic!("expected InvalidRoute, got {other:?}"),
    }
    assert_eq!(server.local_addr(), None, "the listener is closed again");
    assert!(matches!(server.start(), Err(ServerError::NotInitialized)));
}

#[test]
fn a_body_refused_by_the_core_still_gets_cors_and_after_middleware() {
    let mut server = util::server(Api::default());
    let mut conn = Raw::connect(&server);
    let resp = exchange(
        &mut server,
        &mut conn,
        &format!("POST /items HTTP/1.1\r\nOrigin: {GAME}\r\nContent-Length: 999999999\r\n\r\n"),
    );
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some(GAME),
        "a page may read why"
    );
    assert_eq!(resp.header("x-served-by"), Some("hvws"));
    assert_eq!(resp.header("connection"), Some("close"));
}
