//! The HTTP client over loopback: against hvws's own server (keep-alive,
//! chunked streams written tick after tick, redirects, timeouts, caps, the
//! cookie jar), against scripted hostile servers on threads (each ends in
//! a clear error while requests to a good server go on), through proxies
//! on a thread (absolute-form requests, a `CONNECT` tunnel), and against
//! Python's `http.server`. The client and the hvws server are pumped on
//! the test thread, in turn; no test asserts how long anything took.

mod util;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hvws::{
    BodyChunk, ClientRequest, ClientResponse, HttpClient, HttpClientError, HttpResponse, HvHttpClient, HvWebServer,
    RequestId, ResponseHead, ResponseId, Routes, Server, SseEvent,
};

#[derive(Default)]
struct App {
    /// Every client address a request came from: one per connection.
    peers: HashSet<SocketAddr>,
    streams: Vec<ResponseId>,
    never: Vec<ResponseId>,
}

impl HvWebServer for App {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/hello", |app: &mut App, _, req| {
                app.peers.insert(req.peer_addr());
                HttpResponse::text("hello")
            })
            .post("/echo", |app: &mut App, _, req| {
                app.peers.insert(req.peer_addr());
                HttpResponse::binary(req.body().to_vec())
            })
            .get("/big", |_, _, _| HttpResponse::binary(vec![b'x'; 100_000]))
            .get("/hop/:n", |_, _, req| {
                let n: u32 = req.param("n").unwrap().parse().unwrap();
                if n == 0 {
                    HttpResponse::text("landed")
                } else {
                    HttpResponse::redirect(302, &format!("/hop/{}", n - 1))
                }
            })
            .get("/loop", |_, _, _| HttpResponse::redirect(302, "/loop"))
            .get("/auth", |_, _, req| {
                HttpResponse::text(req.header("authorization").unwrap_or("none").to_owned())
            })
            .get("/to-localhost", |_, _, req| {
                let port = req.header("host").unwrap().rsplit(':').next().unwrap().to_owned();
                HttpResponse::redirect(302, &format!("http://localhost:{port}/auth"))
            })
            .get("/stream", |app: &mut App, ctx, _| {
                let id = ctx.defer().expect("in a route");
                ctx.start_stream(id, HttpResponse::event_stream());
                app.streams.push(id);
                HttpResponse::deferred()
            })
            .get("/never", |app: &mut App, ctx, _| {
                app.never.push(ctx.defer().expect("in a route"));
                HttpResponse::deferred()
            })
            .get("/cookies", |_, _, _| {
                HttpResponse::text("c")
                    .with_header("Set-Cookie", "a=1")
                    .with_header("Set-Cookie", "b=2")
            })
            .get("/set-cookies", |_, _, _| {
                HttpResponse::text("set")
                    .with_header("Set-Cookie", "session=abc; Path=/; HttpOnly")
                    .with_header("Set-Cookie", "scoped=1; Path=/read-cookies/deep")
                    // Refused: Secure over plain http.
                    .with_header("Set-Cookie", "secure=1; Secure")
                    // Refused: another site's domain.
                    .with_header("Set-Cookie", "foreign=1; Domain=example.com")
                    // Stored and deleted at once.
                    .with_header("Set-Cookie", "gone=1; Max-Age=0")
            })
            .get("/set-cookie", |_, _, req| {
                HttpResponse::text("set").with_header("Set-Cookie", &req.query_param("c").unwrap())
            })
            .get("/read-cookies", |_, _, req| {
                HttpResponse::text(req.header("cookie").unwrap_or("none").to_owned())
            })
            .get("/read-cookies/deep", |_, _, req| {
                HttpResponse::text(req.header("cookie").unwrap_or("none").to_owned())
            })
            .post("/login", |_, _, _| {
                HttpResponse::redirect(303, "/read-cookies").with_header("Set-Cookie", "login=ok; Path=/")
            })
            .get("/to-localhost-cookies", |_, _, req| {
                let port = req.header("host").unwrap().rsplit(':').next().unwrap().to_owned();
                HttpResponse::redirect(302, &format!("http://localhost:{port}/read-cookies"))
            });
    }
}

/// What the client's callbacks saw, in order.
#[derive(Default)]
struct Seen {
    heads: Vec<(RequestId, u16)>,
    chunks: Vec<(RequestId, Vec<u8>)>,
    responses: Vec<(RequestId, ClientResponse)>,
    errors: Vec<(RequestId, HttpClientError)>,
}

impl HvHttpClient for Seen {
    fn on_head(&mut self, id: RequestId, head: &ResponseHead) {
        self.heads.push((id, head.status()));
    }
    fn on_chunk(&mut self, id: RequestId, chunk: &BodyChunk<'_>) {
        // The first MiB of each body: a flood must not fill the test's memory.
        if chunk.offset() < 1 << 20 {
            self.chunks.push((id, chunk.bytes().to_vec()));
        }
    }
    fn on_response(&mut self, id: RequestId, response: ClientResponse) {
        self.responses.push((id, response));
    }
    fn on_error(&mut self, id: RequestId, error: HttpClientError) {
        self.errors.push((id, error));
    }
}

impl Seen {
    fn outcome(&self, id: RequestId) -> Option<Result<&ClientResponse, &HttpClientError>> {
        self.responses
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| Ok(r))
            .or_else(|| self.errors.iter().find(|(i, _)| *i == id).map(|(_, e)| Err(e)))
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// Pumps the server (if any) and the client in turn until `done`.
#[track_caller]
fn pump_until(
    mut server: Option<&mut Server<App>>,
    client: &mut HttpClient<Seen>,
    what: &str,
    mut done: impl FnMut(&Seen) -> bool,
) {
    let start = Instant::now();
    loop {
        if let Some(s) = server.as_deref_mut() {
            s.tick().unwrap();
        }
        client.process_event_que_timeout(Duration::from_millis(1));
        if done(client.handler()) {
            return;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
    }
}

/// Sends `req` and pumps until it is answered or fails.
#[track_caller]
fn run(
    server: Option<&mut Server<App>>,
    client: &mut HttpClient<Seen>,
    req: ClientRequest,
) -> Result<ClientResponse, HttpClientError> {
    let id = client.request(req).unwrap();
    pump_until(server, client, "the request to end", |seen| seen.outcome(id).is_some());
    let seen = client.handler_mut();
    if let Some(i) = seen.responses.iter().position(|(i, _)| *i == id) {
        return Ok(seen.responses.remove(i).1);
    }
    let i = seen.errors.iter().position(|(i, _)| *i == id).unwrap();
    Err(seen.errors.remove(i).1)
}

fn setup() -> (Server<App>, HttpClient<Seen>, String) {
    let server = util::server(App::default());
    let base = format!("http://{}", util::addr(&server));
    (server, HttpClient::new(Seen::default()), base)
}

#[test]
fn keep_alive_connections_are_reused() {
    let (mut s, mut c, base) = setup();
    for _ in 0..3 {
        let resp = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/hello"))).unwrap();
        assert_eq!(
            (resp.status(), resp.reason(), resp.text().as_ref()),
            (200, "OK", "hello")
        );
    }
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::post(&format!("{base}/echo")).body_text("ping"),
    )
    .unwrap();
    assert_eq!(resp.text(), "ping");
    assert_eq!(s.handler().peers.len(), 1, "four requests, one connection");
    assert_eq!(c.connections(), 1, "kept in the pool");
}

#[test]
fn concurrent_requests_each_get_their_answer() {
    let (mut s, mut c, base) = setup();
    let ids: Vec<_> = (0..4)
        .map(|i| {
            c.request(ClientRequest::post(&format!("{base}/echo")).body_text(format!("n{i}")))
                .unwrap()
        })
        .collect();
    pump_until(Some(&mut s), &mut c, "four answers", |seen| seen.responses.len() == 4);
    for (i, id) in ids.iter().enumerate() {
        let resp = c.handler().outcome(*id).unwrap().unwrap();
        assert_eq!(resp.text(), format!("n{i}"));
    }
    assert!(s.handler().peers.len() <= 4);
}

#[test]
fn a_stream_arrives_piece_by_piece_before_it_ends() {
    let (mut s, mut c, base) = setup();
    let id = c.request(ClientRequest::get(&format!("{base}/stream"))).unwrap();
    pump_until(Some(&mut s), &mut c, "the head", |seen| !seen.heads.is_empty());
    let stream = s.handler().streams[0];
    s.context().send_event(stream, &SseEvent::new("one"));
    pump_until(Some(&mut s), &mut c, "the first piece", |seen| !seen.chunks.is_empty());
    assert!(c.handler().responses.is_empty(), "not complete yet");
    assert_eq!(c.handler().chunks[0], (id, b"data: one\n\n".to_vec()));
    s.context().send_event(stream, &SseEvent::new("two"));
    pump_until(Some(&mut s), &mut c, "the second piece", |seen| seen.chunks.len() == 2);
    s.context().end(stream);
    pump_until(Some(&mut s), &mut c, "the end", |seen| !seen.responses.is_empty());
    let resp = c.handler().outcome(id).unwrap().unwrap();
    assert_eq!(resp.text(), "data: one\n\ndata: two\n\n");
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    // The pieces, as on_chunk saw them, read back as events.
    let mut sse = hvws::SseReader::new();
    for (_, piece) in &c.handler().chunks {
        sse.feed(piece).unwrap();
    }
    let data: Vec<String> = std::iter::from_fn(|| sse.poll_event()).map(|e| e.data).collect();
    assert_eq!(data, ["one", "two"]);
}

#[test]
fn repeated_headers_are_kept() {
    let (mut s, mut c, base) = setup();
    let resp = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/cookies"))).unwrap();
    assert_eq!(resp.header_all("set-cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let (mut s, mut c, base) = setup();
    let resp = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/hop/3"))).unwrap();
    assert_eq!(
        (resp.status(), resp.text().as_ref(), resp.redirects()),
        (200, "landed", 3)
    );
    assert_eq!(resp.url(), format!("{base}/hop/0"));
    assert_eq!(c.handler().heads.len(), 1, "only the final head is reported");

    let err = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/hop/6"))).unwrap_err();
    assert!(
        matches!(err, HttpClientError::TooManyRedirects { limit: 5, .. }),
        "{err}"
    );
    let err = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/loop"))).unwrap_err();
    assert!(matches!(err, HttpClientError::TooManyRedirects { .. }), "{err}");

    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/hop/2")).allow_redirect(false),
    )
    .unwrap();
    assert_eq!((resp.status(), resp.header("location")), (302, Some("/hop/1")));
}

#[test]
fn credentials_stay_on_their_origin() {
    let (mut s, mut c, base) = setup();
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/auth")).bearer_auth("secret"),
    )
    .unwrap();
    assert_eq!(resp.text(), "Bearer secret");
    // 127.0.0.1 -> localhost is another origin (and localhost may try ::1
    // first, where nothing listens: the next address is tried).
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/to-localhost")).bearer_auth("secret"),
    )
    .unwrap();
    assert_eq!((resp.text().as_ref(), resp.redirects()), ("none", 1));
}

#[test]
fn the_cookie_jar_keeps_cookies_and_sends_them_where_they_match() {
    let (mut s, _, base) = setup();
    let config = hvws::HttpClientConfig {
        cookie_jar: true,
        ..hvws::HttpClientConfig::default()
    };
    let mut c = HttpClient::with_config(Seen::default(), config);
    let get = |c: &mut HttpClient<Seen>, s: &mut Server<App>, path: &str| {
        run(Some(s), c, ClientRequest::get(&format!("{base}{path}")))
            .unwrap()
            .text()
            .into_owned()
    };
    get(&mut c, &mut s, "/set-cookies");
    let held: Vec<(String, String, String, bool)> = c
        .cookies()
        .map(|k| {
            (
                k.name().to_owned(),
                k.domain().to_owned(),
                k.path().to_owned(),
                k.host_only(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            ("session".into(), "127.0.0.1".into(), "/".into(), true),
            ("scoped".into(), "127.0.0.1".into(), "/read-cookies/deep".into(), true),
        ],
        "Secure over http, a foreign Domain and Max-Age=0 are not kept"
    );
    assert!(c.cookies().next().unwrap().http_only());
    assert_eq!(get(&mut c, &mut s, "/read-cookies"), "session=abc");
    assert_eq!(
        get(&mut c, &mut s, "/read-cookies/deep"),
        "scoped=1; session=abc",
        "the longer path first"
    );

    // A cookie set by a redirect goes with the next hop.
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::post(&format!("{base}/login")).body_text("user=ada"),
    )
    .unwrap();
    assert_eq!((resp.text().as_ref(), resp.redirects()), ("session=abc; login=ok", 1));

    // The caller's own Cookie header joins the jar's, in one header.
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/read-cookies")).header("Cookie", "mine=1"),
    )
    .unwrap();
    assert_eq!(resp.text(), "mine=1; session=abc; login=ok");

    // A hop to another host (localhost) gets that host's cookies only:
    // neither 127.0.0.1's nor the caller's header.
    let port = base.rsplit(':').next().unwrap();
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("http://localhost:{port}/set-cookie?c=lh%3D1")),
    )
    .unwrap();
    assert_eq!(resp.text(), "set");
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/to-localhost-cookies")).header("Cookie", "mine=1"),
    )
    .unwrap();
    assert_eq!((resp.text().as_ref(), resp.redirects()), ("lh=1", 1));

    // Max-Age=0 deletes.
    get(
        &mut c,
        &mut s,
        "/set-cookie?c=session%3D%3B%20Path%3D%2F%3B%20Max-Age%3D0",
    );
    assert_eq!(get(&mut c, &mut s, "/read-cookies"), "login=ok");
    c.cookie_jar_mut().unwrap().clear();
    assert_eq!(get(&mut c, &mut s, "/read-cookies"), "none");
}

#[test]
fn without_the_jar_no_cookie_is_kept_until_it_is_enabled() {
    let (mut s, mut c, base) = setup();
    run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/set-cookies"))).unwrap();
    assert_eq!(c.cookies().count(), 0);
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/read-cookies")),
    )
    .unwrap();
    assert_eq!(resp.text(), "none");
    c.enable_cookies();
    run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/set-cookies"))).unwrap();
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/read-cookies")),
    )
    .unwrap();
    assert_eq!(resp.text(), "session=abc");
}

#[test]
fn a_server_that_never_answers_hits_the_total_timeout() {
    let (mut s, mut c, base) = setup();
    let err = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/never")).timeout(Duration::from_millis(200)),
    )
    .unwrap_err();
    assert!(matches!(err, HttpClientError::Timeout), "{err}");
    assert_eq!(c.connections(), 0, "the connection is dropped");
}

#[test]
fn a_body_over_the_cap_is_refused() {
    let (mut s, mut c, base) = setup();
    let err = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("{base}/big")).max_response_size(1000),
    )
    .unwrap_err();
    assert!(matches!(err, HttpClientError::TooLarge { limit: 1000 }), "{err}");
    let resp = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/big"))).unwrap();
    assert_eq!(resp.body().len(), 100_000);
}

#[test]
fn a_refused_connection_and_an_unknown_host_are_named() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = HttpClient::new(Seen::default());
    let err = run(None, &mut c, ClientRequest::get(&format!("http://127.0.0.1:{port}/"))).unwrap_err();
    assert!(matches!(err, HttpClientError::Refused { .. }), "{err}");
    let err = run(None, &mut c, ClientRequest::get("http://nonexistent.invalid/")).unwrap_err();
    assert!(matches!(err, HttpClientError::Dns { .. }), "{err}");
    assert!(matches!(
        c.request(ClientRequest::get("gopher://x/")),
        Err(HttpClientError::UnsupportedScheme(_))
    ));
}

#[test]
fn the_blocking_calls_use_the_same_client() {
    let mut s = util::server(App::default());
    let base = format!("http://{}", util::addr(&s));
    // The server needs ticks while the blocking call waits.
    let handle = s.handle();
    let worker = std::thread::spawn(move || {
        let a = hvws::http::get(&format!("{base}/hello")).unwrap();
        let b = hvws::http::send(ClientRequest::post(&format!("{base}/echo")).body_text("x")).unwrap();
        handle.stop().unwrap();
        (a.text().into_owned(), b.text().into_owned())
    });
    let start = Instant::now();
    while s.is_running() && start.elapsed() < WAIT {
        s.tick_timeout(Duration::from_millis(5)).unwrap();
    }
    assert_eq!(worker.join().unwrap(), ("hello".to_owned(), "x".to_owned()));
}

/// A scripted server on a thread: for each connection accepted, reads one
/// request and answers with each of `answers` in turn (`None`: close
/// without answering).
fn scripted(answers: Vec<Vec<Option<Vec<u8>>>>) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let worker = std::thread::spawn(move || {
        let mut accepted = 0;
        for conn_answers in answers {
            let (sock, _) = listener.accept().unwrap();
            accepted += 1;
            sock.set_read_timeout(Some(WAIT)).unwrap();
            let mut reader = BufReader::new(sock.try_clone().unwrap());
            let mut sock = sock;
            for answer in conn_answers {
                // Read one request head (these requests have no body).
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                match answer {
                    Some(bytes) => {
                        let _ = sock.write_all(&bytes);
                    }
                    None => break,
                }
            }
        }
        accepted
    });
    (addr, worker)
}

#[test]
fn a_kept_alive_connection_closed_by_the_server_is_retried_once() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    // First connection: one answer, then the second request is met with a
    // close (the server's idle close racing the request); second
    // connection: the retried request is answered.
    let (addr, worker) = scripted(vec![vec![Some(ok.clone()), None], vec![Some(ok.clone())]]);
    let mut c = HttpClient::new(Seen::default());
    let url = format!("http://{addr}/");
    assert_eq!(run(None, &mut c, ClientRequest::get(&url)).unwrap().text(), "ok");
    assert_eq!(run(None, &mut c, ClientRequest::get(&url)).unwrap().text(), "ok");
    assert_eq!(worker.join().unwrap(), 2);
}

#[test]
fn a_post_on_a_closed_connection_is_not_retried() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let (addr, worker) = scripted(vec![vec![Some(ok), None]]);
    let mut c = HttpClient::new(Seen::default());
    let url = format!("http://{addr}/");
    run(None, &mut c, ClientRequest::get(&url)).unwrap();
    let err = run(None, &mut c, ClientRequest::post(&url)).unwrap_err();
    assert!(matches!(err, HttpClientError::Closed), "{err}");
    worker.join().unwrap();
}

#[test]
fn hostile_servers_end_in_clear_errors() {
    let endless = {
        let mut v = b"HTTP/1.1 200 OK\r\nX-Endless: ".to_vec();
        v.extend(std::iter::repeat_n(b'a', 200_000));
        v
    };
    let overflow = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n".to_vec();
    let not_http = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
    for (answer, what) in [(endless, "head over"), (overflow, "chunked"), (not_http, "malformed")] {
        let (addr, worker) = scripted(vec![vec![Some(answer)]]);
        let mut c = HttpClient::new(Seen::default());
        let err = run(None, &mut c, ClientRequest::get(&format!("http://{addr}/"))).unwrap_err();
        assert!(
            matches!(&err, HttpClientError::BadResponse(m) if m.contains(what)),
            "{what}: {err}"
        );
        worker.join().unwrap();
    }
}

/// A server on a thread that gives each connection to `handle` on a thread
/// of its own, for `WAIT`. Handlers end when the client closes (a write or
/// read fails) or after `WAIT`.
fn hostile(handle: fn(std::net::TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            match listener.accept() {
                Ok((sock, _)) => {
                    sock.set_nonblocking(false).unwrap();
                    sock.set_read_timeout(Some(WAIT)).unwrap();
                    sock.set_write_timeout(Some(WAIT)).unwrap();
                    std::thread::spawn(move || handle(sock));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    addr
}

/// Reads one request head (these requests have no body); false at EOF.
fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return true,
            Ok(_) => {}
        }
    }
}

/// Writes `bytes` over and over, 1 ms apart, until the client goes away.
fn write_forever(sock: &mut std::net::TcpStream, bytes: &[u8], pause: bool) {
    let start = Instant::now();
    while start.elapsed() < WAIT && sock.write_all(bytes).is_ok() {
        if pause {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn hostile_servers_never_stall_the_loop() {
    let endless_header = hostile(|mut sock| {
        let _ = read_request(&mut BufReader::new(sock.try_clone().unwrap()));
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ");
        write_forever(&mut sock, &[b'a'; 1024], true);
    });
    let endless_body = hostile(|mut sock| {
        let _ = read_request(&mut BufReader::new(sock.try_clone().unwrap()));
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        write_forever(&mut sock, &[b'b'; 1024], true);
    });
    let overflowing_chunk = hostile(|mut sock| {
        let _ = read_request(&mut BufReader::new(sock.try_clone().unwrap()));
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        std::thread::sleep(Duration::from_millis(50));
        let _ = sock.write_all(b"10000000000000000000\r\n");
        let _ = read_request(&mut BufReader::new(sock));
    });
    let redirect_loop = hostile(|mut sock| {
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        while read_request(&mut reader) {
            let _ = sock.write_all(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let never_answers = hostile(|sock| {
        // Reads the request, then holds the connection until the client
        // gives up on it.
        let mut reader = BufReader::new(sock);
        let _ = read_request(&mut reader);
        let _ = read_request(&mut reader);
    });
    let flood = hostile(|mut sock| {
        let _ = read_request(&mut BufReader::new(sock.try_clone().unwrap()));
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        write_forever(&mut sock, &[b'f'; 64 << 10], false);
    });

    let (mut s, mut c, base) = setup();
    let long = Duration::from_secs(3);
    // The flood writes as fast as it can: half as long.
    let bad: Vec<(RequestId, &str)> = vec![
        (
            c.request(ClientRequest::get(&format!("http://{endless_header}/")))
                .unwrap(),
            "endless header",
        ),
        (
            c.request(ClientRequest::get(&format!("http://{endless_body}/")).max_response_size(64 << 10))
                .unwrap(),
            "body over the cap",
        ),
        (
            c.request(ClientRequest::get(&format!("http://{overflowing_chunk}/")))
                .unwrap(),
            "overflowing chunk size",
        ),
        (
            c.request(ClientRequest::get(&format!("http://{redirect_loop}/")))
                .unwrap(),
            "redirect loop",
        ),
        (
            c.request(ClientRequest::get(&format!("http://{never_answers}/")).timeout(long))
                .unwrap(),
            "never answers",
        ),
        (
            c.request(
                ClientRequest::get(&format!("http://{flood}/"))
                    .keep_body(false)
                    .max_response_size(u64::MAX)
                    .timeout(long / 2),
            )
            .unwrap(),
            "flood",
        ),
    ];
    // Good requests, one after the other, while the bad ones run: each
    // completes, the first of them while the two slowest bad ones (3 s and
    // 1.5 s) are still pending.
    for i in 0..5 {
        let resp = run(Some(&mut s), &mut c, ClientRequest::get(&format!("{base}/hello"))).unwrap();
        assert_eq!(resp.text(), "hello");
        if i == 0 {
            for &(id, what) in &bad[4..] {
                assert!(c.handler().outcome(id).is_none(), "{what} ended before a good request");
            }
        }
    }
    pump_until(Some(&mut s), &mut c, "every bad request to end", |seen| {
        bad.iter().all(|(id, _)| seen.outcome(*id).is_some())
    });
    let error = |i: usize| match c.handler().outcome(bad[i].0).unwrap() {
        Ok(resp) => panic!("{}: a response, status {}", bad[i].1, resp.status()),
        Err(e) => e.to_string(),
    };
    let expect = [
        "bad response: response head over 65536 bytes",
        "response larger than the cap of 65536 bytes",
        "bad response: malformed chunked body",
        "too many redirects (more than 5), last to /again",
        "request timed out",
        "request timed out",
    ];
    for (i, want) in expect.iter().enumerate() {
        assert!(error(i).starts_with(want), "{}: {}", bad[i].1, error(i));
    }
    assert!(
        c.handler().chunks.iter().any(|(id, _)| *id == bad[5].0),
        "the flood was read (in budgets) while the rest went on"
    );
    assert_eq!(
        c.connections(),
        1,
        "the hostile connections are closed; the good one kept"
    );
}

#[cfg(feature = "tls")]
#[test]
fn https_works_and_never_redirects_to_http() {
    use util::certs::Pki;
    let pki = Pki::new("hvws http client test CA");
    let mut s = Server::new(App::default());
    s.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    s.listen_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
        .unwrap();
    s.start().unwrap();
    let secure = s.tls_addr().unwrap();
    let config = hvws::HttpClientConfig {
        tls: pki.client_tls(),
        ..hvws::HttpClientConfig::default()
    };
    let mut c = HttpClient::with_config(Seen::default(), config);
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("https://{secure}/hello")),
    )
    .unwrap();
    assert_eq!(resp.text(), "hello");
    let resp = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("https://{secure}/hello")),
    )
    .unwrap();
    assert_eq!(resp.text(), "hello");
    assert_eq!(s.handler().peers.len(), 1, "the TLS connection was reused");

    // A Location that leads to plain http is refused.
    let to_plain = format!("https://{secure}/to-localhost");
    let err = run(Some(&mut s), &mut c, ClientRequest::get(&to_plain)).unwrap_err();
    assert!(matches!(err, HttpClientError::InsecureRedirect { .. }), "{err}");

    // A client that does not trust the CA says so.
    let mut strict = HttpClient::new(Seen::default());
    let err = run(
        Some(&mut s),
        &mut strict,
        ClientRequest::get(&format!("https://{secure}/hello")),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            HttpClientError::Tls {
                kind: hvws::TlsFailure::UntrustedCertificate,
                ..
            }
        ),
        "{err}"
    );
}

/// A proxy on a thread, for one connection: sends the request head it
/// reads back on the channel; a `CONNECT` gets `connect_answer` and, if
/// that is a 200, a relay to the target; anything else gets
/// `plain_answer`. Its threads end when either side closes (or after
/// `WAIT` of silence).
fn fake_proxy(
    connect_answer: &'static str,
    plain_answer: &'static str,
) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut sock = sock;
        let connect_to = head
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_owned);
        tx.send(head).unwrap();
        let Some(target) = connect_to else {
            let _ = sock.write_all(plain_answer.as_bytes());
            return;
        };
        let _ = sock.write_all(connect_answer.as_bytes());
        if !connect_answer.starts_with("HTTP/1.1 200") {
            return;
        }
        let upstream = std::net::TcpStream::connect(target).unwrap();
        upstream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
        let mut down_write = sock;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut up_write);
            let _ = up_write.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut up_read, &mut down_write);
        let _ = down_write.shutdown(std::net::Shutdown::Write);
    });
    (addr, rx)
}

#[test]
fn plain_http_through_a_proxy_sends_the_whole_url_to_it() {
    let (proxy, heads) = fake_proxy("", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nvia proxy");
    let config = hvws::HttpClientConfig::default()
        .with_proxy(&format!("http://us%40er:p%3Ass@{proxy}"))
        .unwrap();
    let mut c = HttpClient::with_config(Seen::default(), config);
    // The host needs no lookup: the proxy is the one connected to.
    let resp = run(
        None,
        &mut c,
        ClientRequest::get("http://game.invalid:8080/scores?top=3").bearer_auth("t"),
    )
    .unwrap();
    assert_eq!(resp.text(), "via proxy");
    let head = heads.recv_timeout(WAIT).unwrap();
    let lines: Vec<&str> = head.lines().collect();
    assert_eq!(lines[0], "GET http://game.invalid:8080/scores?top=3 HTTP/1.1");
    assert_eq!(lines[1], "Host: game.invalid:8080");
    assert!(lines.contains(&"Authorization: Bearer t"), "{head}");
    // base64("us@er:p:ss")
    assert!(lines.contains(&"Proxy-Authorization: Basic dXNAZXI6cDpzcw=="), "{head}");

    let err = hvws::HttpClientConfig::default()
        .with_proxy("socks5://u:secret@h:1")
        .unwrap_err();
    assert!(matches!(err, HttpClientError::InvalidUrl { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn a_proxy_that_is_not_there_is_named() {
    // Nothing listens: the proxy's address is the one refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = hvws::HttpClientConfig::default()
        .with_proxy(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let mut c = HttpClient::with_config(Seen::default(), config);
    let err = run(None, &mut c, ClientRequest::get("http://game.invalid/")).unwrap_err();
    assert!(
        matches!(err, HttpClientError::Refused { addr } if addr.port() == port),
        "{err}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn https_through_a_proxy_tunnels_with_connect() {
    use util::certs::Pki;
    let pki = Pki::new("hvws http client proxy test CA");
    let mut s = Server::new(App::default());
    s.init_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    s.listen_tls_addr("127.0.0.1:0".parse().unwrap(), pki.server_tls())
        .unwrap();
    s.start().unwrap();
    let secure = s.tls_addr().unwrap();

    let (proxy, heads) = fake_proxy("HTTP/1.1 200 Connection established\r\n\r\n", "");
    let config = hvws::HttpClientConfig {
        tls: pki.client_tls(),
        ..hvws::HttpClientConfig::default()
    }
    .with_proxy(&format!("http://u:p@{proxy}"))
    .unwrap();
    let mut c = HttpClient::with_config(Seen::default(), config);
    for _ in 0..2 {
        let resp = run(
            Some(&mut s),
            &mut c,
            ClientRequest::get(&format!("https://{secure}/hello")),
        )
        .unwrap();
        assert_eq!(resp.text(), "hello");
    }
    let head = heads.recv_timeout(WAIT).unwrap();
    assert_eq!(
        head,
        format!("CONNECT {secure} HTTP/1.1\r\nHost: {secure}\r\nProxy-Authorization: Basic dTpw\r\n")
    );
    assert_eq!(s.handler().peers.len(), 1, "one tunnel, reused");

    // A proxy that wants other credentials: its refusal, named.
    let (proxy, _heads) = fake_proxy("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "");
    let config = hvws::HttpClientConfig {
        tls: pki.client_tls(),
        ..hvws::HttpClientConfig::default()
    }
    .with_proxy(&format!("http://{proxy}"))
    .unwrap();
    let mut c = HttpClient::with_config(Seen::default(), config);
    let err = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("https://{secure}/hello")),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            HttpClientError::Proxy {
                source: hvws::proto::proxy::TunnelError::Refused { status: 407, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("407"), "{err}");

    // One that hangs up instead of answering.
    let (proxy, _heads) = fake_proxy("", "");
    let config = hvws::HttpClientConfig {
        tls: pki.client_tls(),
        ..hvws::HttpClientConfig::default()
    }
    .with_proxy(&format!("http://{proxy}"))
    .unwrap();
    let mut c = HttpClient::with_config(Seen::default(), config);
    let err = run(
        Some(&mut s),
        &mut c,
        ClientRequest::get(&format!("https://{secure}/hello")),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("closed the connection before answering CONNECT"),
        "{err}"
    );
}

/// Python's `http.server`, serving `dir` on a free port, stopped (by its
/// PID) when dropped.
struct PyServer {
    child: std::process::Child,
    port: u16,
}

impl PyServer {
    fn start(dir: &std::path::Path) -> Option<PyServer> {
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .ok()?;
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line.split(" port ").nth(1)?.split(' ').next()?.parse().ok()?;
        Some(PyServer { child, port })
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_http_server() {
    if std::process::Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED python_http_server: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from python\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub").join("index.html"), "<p>sub</p>").unwrap();
    let py = PyServer::start(dir.path()).expect("python3 -m http.server starts");
    let base = format!("http://127.0.0.1:{}", py.port);
    let mut c = HttpClient::new(Seen::default());

    let resp = run(None, &mut c, ClientRequest::get(&format!("{base}/hello.txt"))).unwrap();
    assert_eq!((resp.status(), resp.text().as_ref()), (200, "hello from python\n"));
    assert_eq!(resp.head().minor_version(), 0, "http.server answers HTTP/1.0");

    // A directory without its slash: a 301 to add it, followed.
    let resp = run(None, &mut c, ClientRequest::get(&format!("{base}/sub"))).unwrap();
    assert_eq!(
        (resp.status(), resp.text().as_ref(), resp.redirects()),
        (200, "<p>sub</p>", 1)
    );
    assert_eq!(resp.url(), format!("{base}/sub/"));

    let resp = run(None, &mut c, ClientRequest::head(&format!("{base}/hello.txt"))).unwrap();
    assert_eq!((resp.status(), resp.body().len()), (200, 0));
    assert_eq!(resp.header("content-length"), Some("18"));

    let resp = run(None, &mut c, ClientRequest::get(&format!("{base}/missing"))).unwrap();
    assert_eq!(resp.status(), 404, "a 404 is a response, not an error");
}
