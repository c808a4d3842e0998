//! The HTTP phase of a server connection: reading requests (pipelined,
//! keep-alive, each with the request timeout), answering them, and the
//! upgrade to a WebSocket.

use std::time::Instant;

use super::body::BodyStart;
use super::{Http, ServerConn, ServerEvent, ServerWs, State};
use crate::proto::decoder::Role;
use crate::proto::error::SendStatus;
use crate::proto::handshake::{encode_accept, is_upgrade, validate_request};
use crate::proto::http::{Body, HttpRequest, HttpResponse, Method};
use crate::proto::http1::{encode_chunk, encode_head, encode_response, parse_head_into, Framing, LAST_CHUNK};
use crate::proto::info::ChannelInfo;
use crate::proto::input::Input;
use crate::proto::limits::Limits;
use crate::proto::timer::{Deadline, Timer};
use crate::proto::ws::WsConn;

impl ServerConn {
    pub(super) fn read_request<'i>(
        &mut self,
        input: &'i mut Input<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Option<ServerEvent<'i>> {
        // A request the owner lent to build this one in (its box and
        // head buffer), if it did.
        let mut req = input
            .take_request()
            .unwrap_or_else(|| Box::new(HttpRequest::empty(self.peer())));
        let Some(buf) = input.next(usize::MAX) else {
            input.lend_request(req);
            return None;
        };
        // The body's limit is checked once the head is a request (in
        // `begin_body`), so its 413 can go through the owner's response
        // chain with the request at hand.
        let head = match parse_head_into(buf, limits.max_request_head, usize::MAX, &mut req) {
            Ok(None) => {
                input.lend_request(req);
                return None;
            }
            Ok(Some(head)) => head,
            Err(e) => {
                log::debug!("{}: {e}", self.peer());
                input.discard();
                self.respond_and_close(&HttpResponse::error(e.status()), now, limits);
                return None;
            }
        };
        input.consume(head.head_len);
        req.peer = self.peer();
        req.tls = self.tls().cloned().map(Box::new);
        // The body (if any) has the request's time; the answer has none.
        self.set_deadline(Some(Deadline::new(Timer::Request, now + limits.request_timeout)));
        let has_body = head.chunked || head.body_len > 0;
        if !is_upgrade(&req) {
            if has_body {
                let start = BodyStart {
                    len: head.body_len,
                    chunked: head.chunked,
                    expect_continue: head.expect_continue,
                    streamed: head.streamed,
                    keep_alive: head.keep_alive,
                };
                return match self.begin_body(req, start, limits) {
                    Some(event @ ServerEvent::Refused { .. }) => {
                        // The body will not be read: none of what follows
                        // is a request.
                        input.discard();
                        Some(event)
                    }
                    Some(event) => Some(event),
                    None => self.read_body(input, now, limits),
                };
            }
            self.set_deadline(None);
            self.state = State::Http(Http::Answering {
                keep_alive: head.keep_alive,
                head_only: *req.method() == Method::Head,
                minor: req.minor_version(),
            });
            return Some(ServerEvent::Request(req));
        }
        let checked = if has_body {
            Err(HttpResponse::text("an upgrade request has no body").with_status(400))
        } else {
            validate_request(&req).map_err(|e| {
                let mut resp = HttpResponse::text(e.to_string()).with_status(400);
                if e.wants_version_header() {
                    resp = resp.with_header("Sec-WebSocket-Version", "13");
                }
                resp
            })
        };
        match checked {
            Ok(key) => {
                let key = key.into();
                #[cfg(feature = "deflate")]
                let deflate = limits.deflate.as_ref().and_then(|config| {
                    let offer = req.header_values("sec-websocket-extensions");
                    crate::proto::deflate::accept(offer, config).map(Box::new)
                });
                self.state = State::Http(Http::Upgrading {
                    key,
                    #[cfg(feature = "deflate")]
                    deflate,
                });
                Some(ServerEvent::Upgrade(req))
            }
            Err(resp) => {
                input.discard();
                self.respond_and_close(&resp, now, limits);
                None
            }
        }
    }

    /// Answers the request (or refuses the upgrade) handed out last. After
    /// `Connection: close`, a refused upgrade, or answers piling up past
    /// the write cap (a client pipelining without reading), the connection
    /// closes. Does nothing if no answer is awaited, or for
    /// [`HttpResponse::deferred`] (the answer comes later).
    ///
    /// A file body's head goes out now and its bytes through
    /// [`ServerConn::write_body`] as the socket drains
    /// ([`ServerConn::body_wanted`] says how much is owed).
    pub fn respond(&mut self, resp: &HttpResponse, now: Instant, limits: &Limits) {
        let (keep_alive, head_only, upgrading) = match &self.state {
            State::Http(Http::Answering {
                keep_alive, head_only, ..
            }) => (*keep_alive, *head_only, false),
            State::Http(Http::Upgrading { .. }) => (false, false, true),
            // An answer before the body was read (an upload refused
            // half-way): the rest of the body cannot be told from the next
            // request, so the connection closes after it.
            State::Http(Http::Body(_)) => return self.respond_and_close(resp, now, limits),
            _ => return,
        };
        match &resp.body {
            Body::Deferred if !upgrading => return,
            // A refused upgrade closes at once: it has no file to stream,
            // and no later answer.
            Body::Deferred | Body::File { .. } if upgrading => {
                log::error!(
                    "{}: an upgrade refusal must have its body in memory; answering 500",
                    self.peer()
                );
                encode_response(&HttpResponse::error(500), false, false, &limits.date, &mut self.out.buf);
            }
            Body::File { len, .. } => {
                let framing = Framing::for_status(resp.status, *len);
                encode_head(resp, keep_alive, framing, &limits.date, &mut self.out.buf);
                if !head_only && *len > 0 && framing != Framing::None {
                    self.state = State::Http(Http::Sending { keep_alive, framing });
                    return;
                }
            }
            _ => encode_response(resp, keep_alive, head_only, &limits.date, &mut self.out.buf),
        }
        self.answered(keep_alive, now, limits);
    }

    /// A response is complete: read the next request, or close.
    fn answered(&mut self, keep_alive: bool, now: Instant, limits: &Limits) {
        if !keep_alive {
            self.begin_closing(now, limits, false, false);
        } else if self.out.buf.len() >= limits.max_write_buffer {
            log::debug!("{}: pipelined answers past the write cap; closing", self.peer());
            self.begin_closing(now, limits, false, false);
        } else {
            self.state = State::Http(Http::Reading);
            // Keep-alive: the next request's time starts now.
            self.set_deadline(Some(Deadline::new(Timer::Request, now + limits.request_timeout)));
        }
    }

    /// Answers the awaited request with `head` and a body written later,
    /// piece by piece, with [`ServerConn::write_body`] and ended with
    /// [`ServerConn::finish_body`]: chunked for an HTTP/1.1 client, or
    /// delimited by the connection's close for HTTP/1.0. `head`'s body is
    /// not sent. Returns whether a body is now awaited (not for HEAD, or
    /// when no answer was awaited).
    pub fn start_stream(&mut self, head: &HttpResponse, now: Instant, limits: &Limits) -> bool {
        let State::Http(Http::Answering {
            keep_alive,
            head_only,
            minor,
        }) = self.state
        else {
            return false;
        };
        let (framing, keep_alive) = if minor >= 1 {
            (Framing::Chunked, keep_alive)
        } else {
            (Framing::UntilClose, false)
        };
        encode_head(head, keep_alive, framing, &limits.date, &mut self.out.buf);
        if head_only {
            self.answered(keep_alive, now, limits);
            return false;
        }
        self.state = State::Http(Http::Sending { keep_alive, framing });
        true
    }

    /// Whether a response's body is being written.
    pub fn is_sending(&self) -> bool {
        matches!(self.state, State::Http(Http::Sending { .. }))
    }

    /// Whether an answer (or the rest of one) is still owed for the request
    /// handed out last: it was deferred, or its body is being written.
    pub fn owes_response(&self) -> bool {
        matches!(self.state, State::Http(Http::Answering { .. } | Http::Sending { .. }))
    }

    /// Whether a request's body is being read.
    pub fn reads_body(&self) -> bool {
        matches!(self.state, State::Http(Http::Body(_)))
    }

    /// Bytes a file body still owes, if one is being written with a length.
    pub fn body_wanted(&self) -> Option<u64> {
        match self.state {
            State::Http(Http::Sending {
                framing: Framing::Length(n),
                ..
            }) => Some(n),
            _ => None,
        }
    }

    /// Queues the next piece of the body being written. A body with a
    /// length takes at most what it still owes. Past the write cap (a
    /// client not reading) the connection is closed, or with the
    /// drop-messages policy a chunk of a stream is dropped (a body with a
    /// length cannot lose bytes, so it is closed either way); a close
    /// reports [`SendStatus::Closed`] from then on.
    pub fn write_body(&mut self, data: &[u8], now: Instant, limits: &Limits) -> SendStatus {
        let State::Http(Http::Sending { framing, .. }) = &mut self.state else {
            return SendStatus::Closed;
        };
        if data.is_empty() {
            return SendStatus::Queued;
        }
        if self.out.buf.len() >= limits.max_write_buffer {
            if limits.close_slow_consumers || matches!(framing, Framing::Length(_)) {
                log::debug!("{}: response body past the write cap; closing", self.peer());
                self.begin_closing(now, limits, false, true);
            }
            return SendStatus::Dropped;
        }
        match framing {
            Framing::Length(left) => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                self.out.buf.extend_from_slice(&data[..n]);
            }
            Framing::Chunked => encode_chunk(data, &mut self.out.buf),
            Framing::UntilClose | Framing::None => self.out.buf.extend_from_slice(data),
        }
        SendStatus::Queued
    }

    /// Ends the body being written: the last chunk, or for a body whose
    /// length was promised and not all written, a close (the client must
    /// not take a short body for a whole one). Then the next request, or
    /// the close.
    pub fn finish_body(&mut self, now: Instant, limits: &Limits) {
        let State::Http(Http::Sending { keep_alive, framing }) = self.state else {
            return;
        };
        let keep_alive = match framing {
            Framing::Chunked => {
                self.out.buf.extend_from_slice(LAST_CHUNK);
                keep_alive
            }
            Framing::Length(0) => keep_alive,
            Framing::Length(left) => {
                log::warn!("{}: response body ended {left} bytes short; closing", self.peer());
                false
            }
            Framing::UntilClose | Framing::None => false,
        };
        self.answered(keep_alive, now, limits);
    }

    /// Answers `resp` with `Connection: close` whatever was asked, and
    /// closes: 503 past the connection limit, 408 on a timeout, 400 on
    /// garbage. Does nothing once the connection is a WebSocket, or once
    /// a response's head has gone out.
    pub fn respond_and_close(&mut self, resp: &HttpResponse, now: Instant, limits: &Limits) {
        match self.state {
            State::Http(Http::Sending { .. }) => self.begin_closing(now, limits, false, false),
            State::Http(_) => {
                encode_response(resp, false, false, &limits.date, &mut self.out.buf);
                self.begin_closing(now, limits, false, false);
            }
            _ => {}
        }
    }

    /// Accepts the upgrade handed out last: the 101 answer (with the
    /// subprotocol `info` records) is queued and the connection is a
    /// WebSocket from here on, bytes after the request included.
    ///
    /// permessage-deflate is agreed here when `limits.deflate` enables it
    /// and the request offers it; [`ChannelInfo::extensions`] then says
    /// what was agreed.
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    pub fn accept_upgrade(&mut self, mut info: ChannelInfo, now: Instant, limits: &Limits) -> bool {
        let State::Http(Http::Upgrading {
            key,
            #[cfg(feature = "deflate")]
            deflate,
        }) = &self.state
        else {
            return false;
        };
        #[cfg(feature = "deflate")]
        let deflate = match (deflate, &limits.deflate) {
            (Some(agreed), Some(config)) => {
                let (params, answer) = **agreed;
                info.set_extensions(answer);
                Some(crate::proto::deflate::Deflate::new(params, config))
            }
            _ => None,
        };
        encode_accept(key, info.protocol(), info.extensions(), &mut self.out.buf);
        #[allow(unused_mut)]
        let mut ws = WsConn::new(Role::Server, limits, now);
        #[cfg(feature = "deflate")]
        if let Some(codec) = deflate {
            ws.set_deflate(codec);
        }
        let next = ws.next_keepalive(now, limits);
        self.state = State::Ws(Box::new(ServerWs { ws, info }));
        // The channel's info has the peer and TLS details from here on.
        self.origin = None;
        self.set_deadline(next.map(|at| Deadline::new(Timer::Keepalive, at)));
        true
    }
}
