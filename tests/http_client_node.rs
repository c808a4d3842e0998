//! The HTTP client against a server nobody on this project wrote: Node's
//! own `http` module (`tests/interop/http_server.mjs`, no npm package),
//! started on a free port for the test and stopped by its PID. Chunked
//! bodies, an SSE stream written over time, redirect chains, a connection
//! the server ends with `Connection: close`, kept-alive connections the
//! server closes after 200 ms idle (the client's one retry of an idempotent
//! request), a slow body for the total timeout.
//!
//! Without `node` the test is skipped with a message, unless
//! `HVWS_REQUIRE_NODE` is set (`tests/interop/run.sh` sets it): then it
//! fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hvws::{
    BodyChunk, ClientRequest, ClientResponse, HttpClient, HttpClientError, HvHttpClient, RequestId, ResponseHead,
    SseMessage, SseReader,
};

const WAIT: Duration = Duration::from_secs(10);
/// Long enough for the Node server to close an idle kept-alive connection
/// (`keepAliveTimeout` 50 ms, plus Node's second of grace).
const IDLE_CLOSED: Duration = Duration::from_millis(1400);

/// `node tests/interop/http_server.mjs`, killed (by its PID) when dropped.
struct NodeServer {
    child: Child,
    base: String,
}

impl NodeServer {
    fn start() -> Option<NodeServer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/http_server.mjs");
        let spawned = Command::new("node")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var_os("HVWS_REQUIRE_NODE").is_some() => {
                panic!("HVWS_REQUIRE_NODE is set but node cannot run: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: node cannot run ({e}); set HVWS_REQUIRE_NODE to make this a failure");
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "listening on http://127.0.0.1:40123"
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("node said {line:?}"))
            .to_owned();
        Some(NodeServer { child, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the callbacks saw; SSE bodies are parsed as they arrive.
#[derive(Default)]
struct Seen {
    heads: Vec<(RequestId, u16)>,
    chunks: Vec<(RequestId, Vec<u8>)>,
    responses: Vec<(RequestId, ClientResponse)>,
    errors: Vec<(RequestId, HttpClientError)>,
    sse: SseReader,
    events: Vec<SseMessage>,
    /// Events parsed when each response ended.
    events_at_end: Vec<(RequestId, usize)>,
}

impl HvHttpClient for Seen {
    fn on_head(&mut self, id: RequestId, head: &ResponseHead) {
        self.heads.push((id, head.status()));
    }
    fn on_chunk(&mut self, id: RequestId, chunk: &BodyChunk<'_>) {
        self.chunks.push((id, chunk.bytes().to_vec()));
        self.sse.feed(chunk.bytes()).unwrap();
        while let Some(event) = self.sse.poll_event() {
            self.events.push(event);
        }
    }
    fn on_response(&mut self, id: RequestId, response: ClientResponse) {
        self.events_at_end.push((id, self.events.len()));
        self.responses.push((id, response));
    }
    fn on_error(&mut self, id: RequestId, error: HttpClientError) {
        self.errors.push((id, error));
    }
}

impl Seen {
    fn ended(&self, id: RequestId) -> bool {
        self.responses.iter().any(|(i, _)| *i == id) || self.errors.iter().any(|(i, _)| *i == id)
    }

    fn take(&mut self, id: RequestId) -> Result<ClientResponse, HttpClientError> {
        if let Some(i) = self.responses.iter().position(|(i, _)| *i == id) {
            return Ok(self.responses.remove(i).1);
        }
        let i = self.errors.iter().position(|(i, _)| *i == id).expect("ended");
        Err(self.errors.remove(i).1)
    }
}

#[track_caller]
fn pump_until(c: &mut HttpClient<Seen>, what: &str, done: impl Fn(&Seen) -> bool) {
    let start = Instant::now();
    while !done(c.handler()) {
        c.process_event_que_timeout(Duration::from_millis(5));
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
    }
}

#[track_caller]
fn run(c: &mut HttpClient<Seen>, req: ClientRequest) -> Result<ClientResponse, HttpClientError> {
    let id = c.request(req).unwrap();
    pump_until(c, "the request to end", |seen| seen.ended(id));
    c.handler_mut().take(id)
}

/// `(connections accepted, requests answered)` by the Node server so far.
fn stats(c: &mut HttpClient<Seen>, node: &NodeServer) -> (u64, u64) {
    let resp = run(c, ClientRequest::get(&node.url("/stats"))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    (v["connections"].as_u64().unwrap(), v["requests"].as_u64().unwrap())
}

#[test]
fn node_http_server() {
    let Some(node) = NodeServer::start() else { return };
    let mut c = HttpClient::new(Seen::default());

    // --- a chunked body, three writes 40 ms apart
    let resp = run(&mut c, ClientRequest::get(&node.url("/chunked"))).unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.text(), "first piecesecondthird!");
    let pieces = c.handler().chunks.len();
    assert!(pieces >= 1);
    eprintln!("/chunked arrived in {pieces} piece(s)");

    // --- SSE written over time, parsed from on_chunk as it arrives
    c.handler_mut().chunks.clear();
    let id = c
        .request(ClientRequest::get(&node.url("/sse")).no_timeout().keep_body(false))
        .unwrap();
    pump_until(&mut c, "the SSE stream to end", |seen| seen.ended(id));
    let resp = c.handler_mut().take(id).unwrap();
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert!(resp.body().is_empty(), "keep_body(false)");
    let seen = c.handler();
    let got: Vec<(&str, &str, Option<&str>)> = seen
        .events
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.id.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("tick", "one", Some("1")),
            ("message", "line one\nline two", Some("2")),
            ("score", "{\"a\":1}", Some("3")),
            ("message", "no id", Some("3")),
        ]
    );
    assert_eq!(
        seen.events[0].retry, None,
        "retry came with no event (its own blank line)"
    );
    assert_eq!(
        resp.body_len(),
        seen.chunks.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
    );
    let at_end = seen.events_at_end.iter().find(|(i, _)| *i == id).unwrap().1;
    assert_eq!(at_end, 4, "every event was parsed by the time the body ended");
    eprintln!("/sse arrived in {} piece(s)", seen.chunks.len());

    // --- redirect chains
    let resp = run(&mut c, ClientRequest::get(&node.url("/redirect/3"))).unwrap();
    assert_eq!(
        (resp.status(), resp.text().as_ref(), resp.redirects()),
        (200, "landed", 3)
    );
    assert_eq!(resp.url(), node.url("/redirect/0"));
    let resp = run(&mut c, ClientRequest::get(&node.url("/absolute/2"))).unwrap();
    assert_eq!((resp.text().as_ref(), resp.redirects()), ("landed", 3));
    let err = run(&mut c, ClientRequest::get(&node.url("/redirect/6"))).unwrap_err();
    assert!(
        matches!(err, HttpClientError::TooManyRedirects { limit: 5, .. }),
        "{err}"
    );
    let resp = run(&mut c, ClientRequest::post(&node.url("/see-other")).body_text("form")).unwrap();
    assert_eq!(
        (resp.status(), resp.text().as_ref(), resp.redirects()),
        (200, "landed", 1)
    );

    // --- Connection: close from the server: the connection is not pooled
    let resp = run(&mut c, ClientRequest::get(&node.url("/close"))).unwrap();
    assert_eq!(
        (resp.text().as_ref(), resp.header("connection")),
        ("bye", Some("close"))
    );
    assert_eq!(c.connections(), 0, "the server ended it; it is not kept");
    assert_eq!(
        run(&mut c, ClientRequest::get(&node.url("/hello"))).unwrap().text(),
        "hello"
    );

    // --- keep-alive closed by the server between requests: Node closes an
    // idle connection about 1.05 s after its last response. The client is
    // not pumped meanwhile, so it still holds the connection, sends the
    // next GET on it, finds it closed, and sends the GET again, once, on a
    // new connection.
    let (conns_before, _) = stats(&mut c, &node);
    assert_eq!(c.connections(), 1);
    std::thread::sleep(IDLE_CLOSED);
    assert_eq!(c.connections(), 1, "the close is not seen without a pump");
    let resp = run(&mut c, ClientRequest::get(&node.url("/hello"))).unwrap();
    assert_eq!(resp.text(), "hello");
    let (conns_after, requests_before) = stats(&mut c, &node);
    assert!(
        conns_after > conns_before,
        "{conns_before} -> {conns_after}: the GET went again on a new connection"
    );

    // A POST is not sent twice: on a connection the server closed, it fails.
    std::thread::sleep(IDLE_CLOSED);
    let err = run(&mut c, ClientRequest::post(&node.url("/echo")).body_text("once")).unwrap_err();
    assert!(matches!(err, HttpClientError::Closed | HttpClientError::Io(_)), "{err}");
    let (_, requests_after) = stats(&mut c, &node);
    assert_eq!(requests_after, requests_before, "the POST never reached the server");
    let resp = run(&mut c, ClientRequest::post(&node.url("/echo")).body_text("again")).unwrap();
    assert_eq!(resp.text(), "again");

    // --- a slow body hits the total timeout while another request completes
    let slow = c
        .request(ClientRequest::get(&node.url("/slow")).timeout(Duration::from_millis(400)))
        .unwrap();
    let quick = c.request(ClientRequest::get(&node.url("/hello"))).unwrap();
    pump_until(&mut c, "both requests to end", |seen| {
        seen.ended(slow) && seen.ended(quick)
    });
    assert_eq!(c.handler_mut().take(quick).unwrap().text(), "hello");
    let err = c.handler_mut().take(slow).unwrap_err();
    assert!(matches!(err, HttpClientError::Timeout), "{err}");
    assert!(
        c.handler()
            .heads
            .iter()
            .any(|&(id, status)| id == slow && status == 200),
        "the head came before the timeout"
    );
    assert!(
        c.handler().chunks.iter().any(|(id, _)| *id == slow),
        "some of the body came before the timeout"
    );
}
