//! Request bodies in (Content-Length, chunked, `Expect: 100-continue`,
//! uploads handed out in pieces) and response bodies out (late answers,
//! chunked streams, bodies with a length written piece by piece), on the
//! server core alone: exact bytes in, exact bytes out.

use std::time::{Duration, Instant};

use hvws::proto::{Limits, ServerConn, ServerEvent};
use hvws::HttpResponse;

/// A server connection and what it said, fed by hand.
struct Conn {
    conn: ServerConn,
    limits: Limits,
    now: Instant,
    /// What the core handed out, one line each.
    log: Vec<String>,
    /// Answer each complete request at once with its body echoed.
    answer: bool,
}

impl Conn {
    fn new(limits: Limits) -> Conn {
        let now = Instant::now();
        Conn {
            conn: ServerConn::new("127.0.0.1:9".parse().unwrap(), now, &limits),
            limits,
            now,
            log: Vec::new(),
            answer: true,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut data = bytes.to_vec();
        let mut input = self.conn.begin_input(&mut data, Vec::new());
        while let Some(ev) = self.conn.poll_input(&mut input, self.now, &self.limits) {
            match ev {
                ServerEvent::Request(req) => {
                    let body = String::from_utf8_lossy(req.body()).into_owned();
                    self.log
                        .push(format!("request {} {} {body:?}", req.method(), req.target()));
                    if self.answer {
                        let resp = HttpResponse::text(body);
                        self.conn.respond(&resp, self.now, &self.limits);
                    }
                }
                ServerEvent::RequestHead(req) => self.log.push(format!("head {} {}", req.method(), req.target())),
                ServerEvent::RequestBody(piece) => self.log.push(format!("piece {:?}", String::from_utf8_lossy(piece))),
                ServerEvent::Refused { request, response } => {
                    let target = request.map_or("-".to_owned(), |r| r.target().to_owned());
                    self.log.push(format!("refused {target} {}", response.status()));
                    self.conn.respond(&response, self.now, &self.limits);
                }
                ServerEvent::RequestEnd => {
                    self.log.push("end".into());
                    if self.answer {
                        self.conn.respond(&HttpResponse::new(204), self.now, &self.limits);
                    }
                }
                other => self.log.push(format!("{other:?}")),
            }
        }
        self.conn.end_input(input);
    }

    /// Feeds `bytes` one at a time.
    fn trickle(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.feed(std::slice::from_ref(b));
        }
    }

    fn out(&mut self) -> String {
        let out = String::from_utf8(self.conn.transmit().take_all()).unwrap();
        self.conn.handle_flushed();
        out
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

const CHUNKED: &[u8] =
    b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";

#[test]
fn a_chunked_body_is_read_whole_however_it_is_cut() {
    for cut in 1..CHUNKED.len() {
        let mut c = Conn::new(Limits::default());
        c.feed(&CHUNKED[..cut]);
        c.feed(&CHUNKED[cut..]);
        assert_eq!(c.take_log(), [r#"request POST /c "Wikipedia""#], "cut at {cut}");
        assert!(c.out().ends_with("\r\n\r\nWikipedia"));
    }
    let mut c = Conn::new(Limits::default());
    c.trickle(CHUNKED);
    assert_eq!(c.take_log(), [r#"request POST /c "Wikipedia""#]);
}

#[test]
fn the_request_after_a_chunked_one_is_read_too() {
    let mut c = Conn::new(Limits::default());
    let mut wire = CHUNKED.to_vec();
    wire.extend_from_slice(b"POST /n HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    c.feed(&wire);
    assert_eq!(
        c.take_log(),
        [r#"request POST /c "Wikipedia""#, r#"request POST /n "hi""#]
    );
}

#[test]
fn a_chunked_body_past_the_limit_is_refused_while_it_arrives() {
    let mut c = Conn::new(Limits {
        max_request_body: 8,
        ..Limits::default()
    });
    c.feed(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert!(c.out().is_empty(), "5 bytes are within the limit");
    c.feed(b"5\r\nworld\r\n");
    assert_eq!(
        c.take_log(),
        ["refused /c 413"],
        "the owner answers it (through its response chain)"
    );
    let out = c.out();
    assert!(out.starts_with("HTTP/1.1 413 Content Too Large\r\n"), "{out}");
    assert!(out.contains("Connection: close"));
    assert!(!c.conn.wants_input());
}

#[test]
fn malformed_chunks_are_a_400() {
    let mut c = Conn::new(Limits::default());
    c.feed(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let out = c.out();
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.ends_with("invalid chunk size"));
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let mut c = Conn::new(Limits::default());
    c.feed(b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.out(), "HTTP/1.1 100 Continue\r\n\r\n");
    c.feed(b"abc");
    assert_eq!(c.take_log(), [r#"request PUT /f "abc""#]);
    assert!(c.out().starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn expect_100_continue_over_the_limit_is_refused_before_the_body_is_sent() {
    let mut c = Conn::new(Limits {
        max_request_body: 10,
        ..Limits::default()
    });
    c.feed(b"PUT /f HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
    let out = c.out();
    assert!(
        out.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "no 100 first: {out}"
    );
    assert!(!out.contains("100 Continue"));
}

#[test]
fn an_upload_is_handed_out_in_pieces_as_it_arrives() {
    let mut c = Conn::new(Limits {
        max_request_body: 4,
        ..Limits::default()
    });
    c.feed(b"POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10\r\n\r\n0123");
    assert_eq!(c.take_log(), ["head POST /up", r#"piece "0123""#]);
    c.feed(b"456");
    c.feed(b"789GET /next HTTP/1.1\r\n\r\n");
    assert_eq!(
        c.take_log(),
        [r#"piece "456""#, r#"piece "789""#, "end", r#"request GET /next """#],
        "over max_request_body, within max_upload_body; the next request follows"
    );
    let out = c.out();
    assert!(
        out.starts_with("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{out}"
    );
}

#[test]
fn an_upload_past_its_limit_is_refused_with_413() {
    let mut c = Conn::new(Limits {
        max_upload_body: 100,
        ..Limits::default()
    });
    c.feed(b"POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 101\r\n\r\n");
    assert!(c.out().starts_with("HTTP/1.1 413 "));
    assert_eq!(
        c.take_log(),
        ["refused /up 413"],
        "refused before the body, never a route's"
    );
}

#[test]
fn a_late_answer_lets_the_pipelined_request_behind_it_through() {
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    c.feed(b"GET /slow HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_eq!(c.take_log(), [r#"request GET /slow """#], "the second waits");
    assert!(c.conn.owes_response());
    c.now += Duration::from_secs(60);
    assert_eq!(c.conn.poll_timeout(), None, "no request timer while the answer is owed");
    c.conn.respond(&HttpResponse::text("late"), c.now, &c.limits);
    assert!(c.conn.has_tail(), "the pipelined request was kept");
    c.feed(b"");
    assert_eq!(c.take_log(), [r#"request GET /fast """#]);
    c.conn.respond(&HttpResponse::text("fast"), c.now, &c.limits);
    assert_eq!(
        c.conn.poll_timeout(),
        Some(c.now + c.limits.request_timeout),
        "keep-alive: the next request's time starts with the answer"
    );
}

#[test]
fn a_stream_is_chunked_for_http_1_1() {
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    c.feed(b"GET /events HTTP/1.1\r\n\r\n");
    assert!(c.conn.start_stream(&HttpResponse::event_stream(), c.now, &c.limits));
    c.conn.write_body(b"data: 1\n\n", c.now, &c.limits);
    c.conn.write_body(b"", c.now, &c.limits);
    c.conn.write_body(b"data: 2\n\n", c.now, &c.limits);
    c.conn.finish_body(c.now, &c.limits);
    assert_eq!(
        c.out(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n\
         9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
    );
    assert!(c.conn.wants_input() && !c.conn.owes_response(), "kept alive");
}

#[test]
fn a_stream_to_http_1_0_ends_with_the_connection() {
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    c.feed(b"GET /log HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(c.conn.start_stream(&HttpResponse::new(200), c.now, &c.limits));
    c.conn.write_body(b"line\n", c.now, &c.limits);
    c.conn.finish_body(c.now, &c.limits);
    assert_eq!(c.out(), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nline\n");
    assert!(!c.conn.wants_input());
}

#[test]
fn a_stream_answering_head_is_only_a_head() {
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    c.feed(b"HEAD /events HTTP/1.1\r\n\r\n");
    assert!(!c.conn.start_stream(&HttpResponse::event_stream(), c.now, &c.limits));
    assert!(c.out().ends_with("Transfer-Encoding: chunked\r\n\r\n"));
    assert!(!c.conn.owes_response());
}

#[test]
fn a_stream_past_the_write_cap_is_closed_or_loses_pieces_by_policy() {
    for close in [true, false] {
        let mut c = Conn::new(Limits {
            max_write_buffer: 64,
            close_slow_consumers: close,
            ..Limits::default()
        });
        c.answer = false;
        c.feed(b"GET /events HTTP/1.1\r\n\r\n");
        c.conn.start_stream(&HttpResponse::new(200), c.now, &c.limits);
        let piece = [b'x'; 40];
        assert_eq!(c.conn.write_body(&piece, c.now, &c.limits), hvws::SendStatus::Queued);
        assert_eq!(c.conn.write_body(&piece, c.now, &c.limits), hvws::SendStatus::Dropped);
        assert_eq!(c.conn.owes_response(), !close, "close={close}");
    }
}

#[test]
fn a_body_with_a_length_is_written_in_pieces_and_never_past_it() {
    let dir = std::env::temp_dir().join(format!("hvws-bodies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.bin");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    c.feed(b"GET /f HTTP/1.1\r\n\r\n");
    let file = std::fs::File::open(&path).unwrap();
    c.conn.respond(&HttpResponse::file(file, 2, 5), c.now, &c.limits);
    assert_eq!(c.conn.body_wanted(), Some(5));
    c.conn.write_body(b"234", c.now, &c.limits);
    c.conn.write_body(b"56789", c.now, &c.limits);
    assert_eq!(c.conn.body_wanted(), Some(0));
    c.conn.finish_body(c.now, &c.limits);
    assert_eq!(c.out(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n23456");
    assert!(c.conn.wants_input());

    // Cut short: the client must not take it for the whole body.
    c.feed(b"GET /f HTTP/1.1\r\n\r\n");
    let file = std::fs::File::open(&path).unwrap();
    c.conn.respond(&HttpResponse::file(file, 0, 10), c.now, &c.limits);
    c.conn.write_body(b"0123", c.now, &c.limits);
    c.conn.finish_body(c.now, &c.limits);
    assert!(!c.conn.wants_input(), "closed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_body_statuses_carry_no_length() {
    let mut c = Conn::new(Limits::default());
    c.answer = false;
    for (status, line) in [(204, "204 No Content"), (304, "304 Not Modified")] {
        c.feed(b"GET /x HTTP/1.1\r\n\r\n");
        c.conn.respond(
            &HttpResponse::new(status).with_header("ETag", "\"v\""),
            c.now,
            &c.limits,
        );
        assert_eq!(c.out(), format!("HTTP/1.1 {line}\r\nETag: \"v\"\r\n\r\n"));
    }
}

#[test]
fn a_client_flooding_while_its_stream_runs_is_cut_off() {
    let mut c = Conn::new(Limits {
        max_request_head: 100,
        max_request_body: 100,
        ..Limits::default()
    });
    c.answer = false;
    c.feed(b"GET /events HTTP/1.1\r\n\r\n");
    c.conn.start_stream(&HttpResponse::event_stream(), c.now, &c.limits);
    c.feed(&[b'x'; 150]);
    assert!(c.conn.owes_response(), "a pipelined request's worth is kept");
    c.feed(&[b'x'; 60]);
    assert!(
        !c.conn.owes_response() && !c.conn.wants_input(),
        "past it, the connection goes"
    );
}

#[test]
fn an_upload_buys_time_with_bytes_not_with_a_trickle() {
    let mut c = Conn::new(Limits::default());
    let timeout = c.limits.request_timeout;
    c.feed(b"POST /up HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n");
    let start = c.now;
    // A byte now and then does not move the deadline.
    for _ in 0..5 {
        c.now += timeout / 10;
        c.feed(b"x");
        assert_eq!(c.conn.poll_timeout(), Some(start + timeout));
    }
    // 16 KiB does: a slow upload that keeps coming is not a stalled one.
    c.feed(&vec![b'y'; 16 << 10]);
    assert_eq!(c.conn.poll_timeout(), Some(c.now + timeout));
    c.now += timeout;
    assert!(c.conn.handle_timeout(c.now, &c.limits).is_none());
    assert!(String::from_utf8_lossy(&c.conn.transmit().to_vec()).starts_with("HTTP/1.1 408 "));
}
