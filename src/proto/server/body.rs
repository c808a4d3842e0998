//! Request bodies as they arrive: a `Content-Length` or a chunked body,
//! either buffered into the request (the usual case, up to
//! `max_request_body`) or handed out piece by piece (uploads, up to
//! `max_upload_body`), with `Expect: 100-continue` answered and every
//! limit enforced while reading rather than after.

use std::time::Instant;

use super::{Http, ServerConn, ServerEvent, State};
use crate::proto::chunked::{Chunk, ChunkedDecoder};
use crate::proto::http::{HttpRequest, HttpResponse};
use crate::proto::input::Input;
use crate::proto::limits::Limits;
use crate::proto::timer::{Deadline, Timer};

/// Where the body's end is.
#[derive(Debug)]
pub(super) enum BodyLen {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// A request whose body is being read.
#[derive(Debug)]
pub(super) struct BodyIn {
    /// The request, for a buffered body; `None` once handed out (a
    /// streamed body's head goes out first).
    pub req: Option<Box<HttpRequest>>,
    pub len: BodyLen,
    /// Body bytes so far, against `limit`.
    pub received: u64,
    pub limit: u64,
    /// Bytes since the request timer last restarted (streamed bodies).
    pub progress: u64,
    pub keep_alive: bool,
    pub head_only: bool,
    /// The request's HTTP minor version (0: no chunked answers).
    pub minor: u8,
}

/// What the head said about the body to come.
#[derive(Clone, Copy, Debug)]
pub(super) struct BodyStart {
    pub len: usize,
    pub chunked: bool,
    pub expect_continue: bool,
    pub streamed: bool,
    pub keep_alive: bool,
}

/// Bytes of an upload that buy it another `request_timeout`: an upload
/// slower than this per `request_timeout` (1.6 KiB/s at the default 10 s)
/// times out with 408 like any stalled request.
pub const UPLOAD_PROGRESS: u64 = 16 << 10;

/// `100 Continue`: the client may send the body it announced.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl ServerConn {
    /// The head of a request with a body was read: reads the body next.
    /// Returns the event to hand out now (a streamed body's head).
    pub(super) fn begin_body(
        &mut self,
        mut req: Box<HttpRequest>,
        head: BodyStart,
        limits: &Limits,
    ) -> Option<ServerEvent<'static>> {
        let limit = if head.streamed {
            limits.max_upload_body
        } else {
            limits.max_request_body
        } as u64;
        if !head.chunked && head.len as u64 > limit {
            log::debug!("{}: body of {} bytes over {limit}", self.peer(), head.len);
            return Some(self.refuse(Some(req), HttpResponse::error(413)));
        }
        if head.expect_continue {
            self.out.buf.extend_from_slice(CONTINUE);
        }
        let body_len = head.len;
        let len = if head.chunked {
            BodyLen::Chunked(ChunkedDecoder::new())
        } else {
            BodyLen::Length(body_len as u64)
        };
        let streamed = head.streamed;
        if !streamed {
            // Content-Length is within the limit: reserve it once.
            req.body.reserve_exact(body_len);
        }
        let (keep_alive, head_only) = (head.keep_alive, *req.method() == crate::proto::http::Method::Head);
        let minor = req.minor_version();
        let (req, event) = if streamed {
            (None, Some(ServerEvent::RequestHead(req)))
        } else {
            (Some(req), None)
        };
        self.state = State::Http(Http::Body(Box::new(BodyIn {
            req,
            len,
            received: 0,
            limit,
            progress: 0,
            keep_alive,
            head_only,
            minor,
        })));
        event
    }

    /// Reads body bytes from `input`: a buffered body is copied into its
    /// request (handed out once complete); a streamed body is handed out
    /// in place, piece by piece, then its end.
    pub(super) fn read_body<'i>(
        &mut self,
        input: &'i mut Input<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Option<ServerEvent<'i>> {
        /// What one step over the input found.
        enum Step {
            /// Data at `skip..skip + len` of the last piece, consumed.
            Data {
                skip: usize,
                len: usize,
                done: bool,
            },
            Done,
            NeedMore,
            Failed(HttpResponse),
        }
        let step = loop {
            let State::Http(Http::Body(body)) = &mut self.state else {
                return None;
            };
            let Some(buf) = input.next(usize::MAX) else {
                break if body_done(&body.len) {
                    Step::Done
                } else {
                    Step::NeedMore
                };
            };
            let (skip, len, done) = match &mut body.len {
                BodyLen::Length(left) => {
                    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= n as u64;
                    (0, n, *left == 0)
                }
                BodyLen::Chunked(decoder) => match decoder.step(buf) {
                    Ok(Chunk::Data { skip, len }) => (skip, len, false),
                    Ok(Chunk::More { consumed }) => (consumed, 0, false),
                    Ok(Chunk::Done { consumed }) => (consumed, 0, true),
                    Err(e) => break Step::Failed(HttpResponse::text(e.to_string()).with_status(400)),
                },
            };
            body.received += len as u64;
            if body.received > body.limit {
                break Step::Failed(HttpResponse::error(413));
            }
            input.consume(skip + len);
            if len == 0 {
                if done {
                    break Step::Done;
                }
                continue;
            }
            match &mut body.req {
                Some(req) => req.body.extend_from_slice(&input.last()[skip..skip + len]),
                None => break Step::Data { skip, len, done },
            }
            if done {
                break Step::Done;
            }
        };
        match step {
            Step::NeedMore => None,
            Step::Failed(resp) => {
                log::debug!("{}: request body refused with {}", self.peer(), resp.status());
                input.discard();
                let req = match &mut self.state {
                    State::Http(Http::Body(body)) => body.req.take(),
                    _ => None,
                };
                Some(self.refuse(req, resp))
            }
            Step::Done => self.finish_request_body(),
            Step::Data { skip, len, done } => {
                if done {
                    // The end follows at the next poll; no more time needed.
                    self.set_deadline(None);
                } else if self.made_progress(len) {
                    // An upload that keeps arriving keeps its connection:
                    // the request timer restarts each time another
                    // `UPLOAD_PROGRESS` bytes are in (a slow upload is not
                    // a stalled one), but not for a trickle (a byte now and
                    // then would hold the connection for ever).
                    self.set_deadline(Some(Deadline::new(Timer::Request, now + limits.request_timeout)));
                }
                Some(ServerEvent::RequestBody(&input.last()[skip..skip + len]))
            }
        }
    }

    /// Stops reading a request's body: the answer is awaited (and closes
    /// the connection), and the event says so.
    fn refuse(&mut self, request: Option<Box<HttpRequest>>, response: HttpResponse) -> ServerEvent<'static> {
        let (head_only, minor) = match (&self.state, &request) {
            (State::Http(Http::Body(body)), _) => (body.head_only, body.minor),
            (_, Some(req)) => (*req.method() == crate::proto::http::Method::Head, req.minor_version()),
            _ => (false, 1),
        };
        self.set_deadline(None);
        self.state = State::Http(Http::Answering {
            keep_alive: false,
            head_only,
            minor,
        });
        ServerEvent::Refused {
            request,
            response: Box::new(response),
        }
    }

    /// Counts `len` more bytes of a streamed body; true when they complete
    /// another `UPLOAD_PROGRESS`.
    fn made_progress(&mut self, len: usize) -> bool {
        let State::Http(Http::Body(body)) = &mut self.state else {
            return false;
        };
        body.progress += len as u64;
        if body.progress < UPLOAD_PROGRESS {
            return false;
        }
        body.progress = 0;
        true
    }

    /// The whole body was read: the request waits for its answer.
    fn finish_request_body(&mut self) -> Option<ServerEvent<'static>> {
        let State::Http(Http::Body(body)) = std::mem::replace(&mut self.state, State::Http(Http::Reading)) else {
            return None;
        };
        let BodyIn {
            req,
            keep_alive,
            head_only,
            minor,
            ..
        } = *body;
        self.set_deadline(None);
        self.state = State::Http(Http::Answering {
            keep_alive,
            head_only,
            minor,
        });
        Some(match req {
            Some(req) => ServerEvent::Request(req),
            None => ServerEvent::RequestEnd,
        })
    }
}

fn body_done(len: &BodyLen) -> bool {
    match len {
        BodyLen::Length(left) => *left == 0,
        BodyLen::Chunked(d) => d.is_done(),
    }
}
