//! Answers that outlive their route handler, over loopback: deferred
//! responses given on a later tick or from another thread, streams
//! (Server-Sent Events, chunked) written tick after tick, clients that
//! leave first, uploads in chunks, and file bodies read from disk as the
//! socket drains (a 1 GiB file in bounded memory).

mod util;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use hvws::{HttpResponse, HvWebServer, ResponseId, Routes, SendStatus, SseEvent};
use util::{pump_for_within, pump_until, Raw};

#[derive(Default)]
struct Late {
    waiting: Vec<ResponseId>,
    streams: Vec<ResponseId>,
    abandoned: Vec<ResponseId>,
    root: PathBuf,
    /// Where `/thread` sends its ids.
    to_thread: Option<mpsc::Sender<ResponseId>>,
}

impl HvWebServer for Late {
    fn on_init(&mut self, routes: &mut Routes<Self>) {
        routes
            .get("/later", |app: &mut Late, ctx, _| {
                app.waiting.push(ctx.defer().expect("in a route"));
                HttpResponse::deferred()
            })
            .get("/thread", |app: &mut Late, ctx, _| {
                let id = ctx.defer().expect("in a route");
                app.to_thread.as_ref().unwrap().send(id).unwrap();
                HttpResponse::deferred()
            })
            .get("/events", |app: &mut Late, ctx, req| {
                let id = ctx.defer().expect("in a route");
                ctx.start_stream(id, HttpResponse::event_stream());
                let last = req.header("last-event-id").unwrap_or("none").to_owned();
                ctx.send_event(id, &SseEvent::new(format!("resumed after {last}")).event("hello"));
                app.streams.push(id);
                HttpResponse::deferred()
            })
            .get("/forgot", |_, _, _| HttpResponse::deferred())
            .post("/echo", |_, _, req| HttpResponse::binary(req.body().to_vec()))
            .get("/files/*", |app: &mut Late, _, req| {
                let rel = req.path().strip_prefix("/files/").unwrap_or("");
                hvws::serve_dir(req, &app.root, rel)
            });
    }

    fn on_response_abandoned(&mut self, _ctx: &mut hvws::Context<'_>, id: ResponseId) {
        self.abandoned.push(id);
    }
}

fn server() -> hvws::Server<Late> {
    util::server(Late::default())
}

/// Decodes a chunked body from `buf`, if it is complete.
fn dechunk(mut buf: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
        buf = &buf[line_end + 2..];
        if size == 0 {
            return buf.starts_with(b"\r\n").then_some(out);
        }
        if buf.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

fn head_and_rest(raw: &Raw) -> Option<(String, Vec<u8>)> {
    let end = raw.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((
        String::from_utf8(raw.buf[..end].to_vec()).unwrap(),
        raw.buf[end..].to_vec(),
    ))
}

#[test]
fn a_deferred_answer_is_given_on_a_later_tick_and_the_pipelined_request_follows() {
    let mut s = server();
    let mut raw = Raw::connect(&s);
    raw.write(
        &mut s,
        b"GET /later HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nnext",
    );
    pump_until(&mut s, "the request to be deferred", |s| s.handler().waiting.len() == 1);
    util::pump_n(&mut s, 5);
    raw.fill();
    assert!(raw.buf.is_empty(), "nothing is answered before the application answers");
    let id = s.handler().waiting[0];
    assert!(s.context().is_pending(id));
    let status = s.context().respond(id, HttpResponse::text("after the step"));
    assert_eq!(status, SendStatus::Queued);
    assert_eq!(raw.response(&mut s).text(), "after the step");
    assert_eq!(
        raw.response(&mut s).text(),
        "next",
        "the pipelined request was read after the answer"
    );
    assert_eq!(s.context().respond(id, HttpResponse::text("twice")), SendStatus::Closed);
    assert!(!s.context().is_pending(id));
}

#[test]
fn a_deferred_answer_can_come_from_another_thread() {
    let mut s = server();
    let (tx, rx) = mpsc::channel();
    s.handler_mut().to_thread = Some(tx);
    let handle = s.handle();
    let worker = std::thread::spawn(move || {
        let id = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("an id");
        handle.respond(id, HttpResponse::json_text(r#"{"done":true}"#)).unwrap();
    });
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /thread HTTP/1.1\r\n\r\n");
    let resp = raw.response(&mut s);
    assert_eq!((resp.status, resp.text()), (200, r#"{"done":true}"#));
    worker.join().unwrap();
}

#[test]
fn a_client_that_leaves_first_is_reported_and_its_late_answer_dropped() {
    let mut s = server();
    let raw = {
        let mut raw = Raw::connect(&s);
        raw.write(&mut s, b"GET /later HTTP/1.1\r\n\r\n");
        raw
    };
    pump_until(&mut s, "the request to be deferred", |s| s.handler().waiting.len() == 1);
    drop(raw);
    pump_until(&mut s, "the abandoned answer to be reported", |s| {
        !s.handler().abandoned.is_empty()
    });
    let id = s.handler().waiting[0];
    assert_eq!(s.handler().abandoned, [id]);
    assert_eq!(
        s.context().respond(id, HttpResponse::text("too late")),
        SendStatus::Closed
    );
    // The server carries on.
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(raw.response(&mut s).text(), "ok");
}

#[test]
fn a_handler_returning_deferred_without_deferring_gets_a_500() {
    let mut s = server();
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /forgot HTTP/1.1\r\n\r\n");
    assert_eq!(raw.response(&mut s).status, 500);
}

#[test]
fn server_sent_events_are_written_tick_after_tick_then_ended() {
    let mut s = server();
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /events HTTP/1.1\r\nLast-Event-ID: 41\r\n\r\n");
    pump_until(&mut s, "the first event", |_| {
        raw.fill();
        raw.buf.ends_with(b"data: resumed after 41\n\n\r\n")
    });
    let (head, _) = head_and_rest(&raw).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream\r\n"));
    assert!(head.contains("Cache-Control: no-cache\r\n"));
    assert!(head.contains("Transfer-Encoding: chunked\r\n"));
    let id = s.handler().streams[0];
    for n in 42..45 {
        let ev = SseEvent::new(format!("tick {n}")).id(&n.to_string());
        assert_eq!(s.context().send_event(id, &ev), SendStatus::Queued);
        util::pump_n(&mut s, 2);
    }
    // From another thread too.
    s.handle().send_event(id, &SseEvent::comment("heartbeat")).unwrap();
    util::pump_n(&mut s, 2);
    assert_eq!(s.context().end(id), SendStatus::Queued);
    let body = util::pump_for(&mut s, "the end of the stream", |_| {
        raw.fill();
        dechunk(&head_and_rest(&raw)?.1)
    });
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "event: hello\ndata: resumed after 41\n\n\
         id: 42\ndata: tick 42\n\nid: 43\ndata: tick 43\n\nid: 44\ndata: tick 44\n\n: heartbeat\n\n"
    );
    assert_eq!(s.context().write(id, b"after the end"), SendStatus::Closed);
    assert!(
        s.handler().abandoned.is_empty(),
        "ended by the application, not abandoned"
    );
}

#[test]
fn a_stream_whose_client_leaves_is_reported() {
    let mut s = server();
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /events HTTP/1.1\r\n\r\n");
    pump_until(&mut s, "the stream to start", |s| s.handler().streams.len() == 1);
    drop(raw);
    let id = s.handler().streams[0];
    pump_until(&mut s, "the stream to be reported gone", |s| {
        s.handler().abandoned == [id]
    });
    assert_eq!(s.context().send_event(id, &SseEvent::new("x")), SendStatus::Closed);
}

#[test]
fn a_chunked_upload_is_read_and_answered() {
    let mut s = server();
    let mut raw = Raw::connect(&s);
    raw.write(
        &mut s,
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    );
    pump_until(&mut s, "100 Continue", |_| {
        raw.fill();
        raw.buf.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n")
    });
    raw.buf.drain(..25);
    raw.write(&mut s, b"6\r\nchunks\r\n1\r\n!\r\n0\r\n\r\n");
    let resp = raw.response(&mut s);
    assert_eq!((resp.status, resp.text()), (200, "chunks!"));
    assert_eq!(resp.header("content-type"), Some("application/octet-stream"));
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn a_1_gib_file_is_streamed_in_bounded_memory_with_ranges_and_validators() {
    let root = std::env::temp_dir().join(format!("hvws-late-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    // Sparse: a gibibyte of zeros that costs no disk, with a marker at the end.
    let big = std::fs::File::create(root.join("big.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    use std::os::unix::fs::FileExt;
    big.write_all_at(b"THE END", (1 << 30) - 7).unwrap();
    std::fs::write(root.join("small.txt"), "0123456789").unwrap();
    let mut s = server();
    s.handler_mut().root = root.clone();

    // A range, and the validators a cache needs.
    let mut raw = Raw::connect(&s);
    raw.write(&mut s, b"GET /files/small.txt HTTP/1.1\r\nRange: bytes=2-4\r\n\r\n");
    let resp = raw.response(&mut s);
    assert_eq!((resp.status, resp.text()), (206, "234"));
    assert_eq!(resp.header("content-range"), Some("bytes 2-4/10"));
    let etag = resp.header("etag").unwrap().to_owned();
    raw.write(
        &mut s,
        format!("GET /files/small.txt HTTP/1.1\r\nIf-None-Match: W/\"x\", {etag}\r\n\r\n").as_bytes(),
    );
    let resp = raw.response(&mut s);
    assert_eq!(
        (resp.status, resp.body.len(), resp.header("content-length")),
        (304, 0, None)
    );
    raw.write(&mut s, b"GET /files/../http_late.rs HTTP/1.1\r\n\r\n");
    assert_eq!(raw.response(&mut s).status, 404);

    // The gibibyte, read as fast as loopback goes; only its counts kept.
    let before = rss_bytes();
    raw.write(&mut s, b"GET /files/big.bin HTTP/1.1\r\n\r\n");
    let mut head: Option<String> = None;
    let (mut got, mut tail) = (0u64, Vec::new());
    let mut chunk = vec![0u8; 256 << 10];
    let mut peak = 0;
    // A gibibyte through a debug build: give it a minute, not `TIMEOUT`
    // (under a loaded CI machine it took over 5 s).
    pump_for_within(&mut s, "the whole file", Duration::from_secs(60), |_| {
        use std::io::Read;
        loop {
            match raw.stream.read(&mut chunk) {
                Ok(0) => panic!("closed mid-file"),
                Ok(n) => {
                    let mut data = &chunk[..n];
                    if head.is_none() {
                        raw.buf.extend_from_slice(data);
                        let Some((h, rest)) = head_and_rest(&raw) else { continue };
                        head = Some(h);
                        raw.buf.clear();
                        tail = rest;
                        got += tail.len() as u64;
                        data = &[];
                    }
                    got += data.len() as u64;
                    tail.extend_from_slice(data);
                    let keep = tail.len().saturating_sub(7);
                    tail.drain(..keep);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        peak = peak.max(rss_bytes().saturating_sub(before));
        (got >= 1 << 30).then_some(())
    });
    let head = head.unwrap();
    assert!(head.contains("Content-Length: 1073741824\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/octet-stream\r\n"), "{head}");
    assert_eq!((got, tail.as_slice()), (1 << 30, &b"THE END"[..]));
    assert!(peak < 32 << 20, "memory grew by {peak} bytes while serving 1 GiB");
    std::fs::remove_dir_all(&root).unwrap();
}
