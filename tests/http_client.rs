//! The HTTP client over loopback: against hvws's own server (keep-alive,
//! chunked streams written tick after tick, redirects, timeouts, caps),
//! against scripted hostile servers on a thread, and against Python's
//! `http.server`. The client and the hvws server are pumped on the test
//! thread, in turn; no test asserts how long anything took.

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
        self.chunks.push((id, chunk.bytes().to_vec()));
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
