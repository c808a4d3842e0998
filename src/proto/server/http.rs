//! The HTTP phase of a server connection: reading requests (pipelined,
//! keep-alive, each with the request timeout), answering them, and the
//! upgrade to a WebSocket.

use std::time::Instant;

use super::{Http, ServerConn, ServerEvent, ServerWs, State};
use crate::proto::decoder::Role;
use crate::proto::handshake::{encode_accept, is_upgrade, validate_request};
use crate::proto::http::{HttpResponse, Method};
use crate::proto::http1::{encode_response, parse_head};
use crate::proto::info::ChannelInfo;
use crate::proto::input::Input;
use crate::proto::limits::Limits;
use crate::proto::timer::{Deadline, Timer};
use crate::proto::ws::WsConn;

impl ServerConn {
    pub(super) fn read_request(
        &mut self,
        input: &mut Input<'_>,
        now: Instant,
        limits: &Limits,
    ) -> Option<ServerEvent<'static>> {
        let buf = input.next(usize::MAX)?;
        let head = match parse_head(buf, self.peer, limits.max_request_head, limits.max_request_body) {
            Ok(None) => return None,
            Ok(Some(head)) => head,
            Err(e) => {
                log::debug!("{}: {e}", self.peer);
                input.discard();
                self.respond_and_close(&HttpResponse::error(e.status()), now, limits);
                return None;
            }
        };
        let end = head.head_len + head.body_len;
        if buf.len() < end {
            return None;
        }
        let mut req = head.request;
        req.tls = self.tls.clone();
        req.body = buf[head.head_len..end].to_vec();
        input.consume(end);
        // The next request's time starts now (keep-alive).
        self.set_deadline(Some(Deadline::new(Timer::Request, now + limits.request_timeout)));
        if !is_upgrade(&req) {
            let head_only = *req.method() == Method::Head;
            self.state = State::Http(Http::Answering {
                keep_alive: head.keep_alive,
                head_only,
            });
            return Some(ServerEvent::Request(Box::new(req)));
        }
        match validate_request(&req) {
            Ok(key) => {
                let key = key.into();
                self.state = State::Http(Http::Upgrading { key });
                Some(ServerEvent::Upgrade(Box::new(req)))
            }
            Err(e) => {
                input.discard();
                let mut resp = HttpResponse::text(e.to_string()).with_status(400);
                if e.wants_version_header() {
                    resp = resp.with_header("Sec-WebSocket-Version", "13");
                }
                self.respond_and_close(&resp, now, limits);
                None
            }
        }
    }

    /// Answers the request (or refuses the upgrade) handed out last. After
    /// `Connection: close`, a refused upgrade, or answers piling up past
    /// the write cap (a client pipelining without reading), the connection
    /// closes. Does nothing if no answer is awaited.
    pub fn respond(&mut self, resp: &HttpResponse, now: Instant, limits: &Limits) {
        let (keep_alive, head_only) = match &self.state {
            State::Http(Http::Answering { keep_alive, head_only }) => (*keep_alive, *head_only),
            State::Http(Http::Upgrading { .. }) => (false, false),
            _ => return,
        };
        encode_response(resp, keep_alive, head_only, &mut self.out.buf);
        if !keep_alive {
            self.begin_closing(now, limits, false, false);
        } else if self.out.buf.len() >= limits.max_write_buffer {
            log::debug!("{}: pipelined answers past the write cap; closing", self.peer);
            self.begin_closing(now, limits, false, false);
        } else {
            self.state = State::Http(Http::Reading);
        }
    }

    /// Answers `resp` with `Connection: close` whatever was asked, and
    /// closes: 503 past the connection limit, 408 on a timeout, 400 on
    /// garbage. Does nothing once the connection is a WebSocket.
    pub fn respond_and_close(&mut self, resp: &HttpResponse, now: Instant, limits: &Limits) {
        if let State::Http(_) = self.state {
            encode_response(resp, false, false, &mut self.out.buf);
            self.begin_closing(now, limits, false, false);
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
        let State::Http(Http::Upgrading { key }) = &self.state else {
            return false;
        };
        #[cfg(feature = "deflate")]
        let deflate = limits.deflate.as_ref().and_then(|config| {
            let (params, answer) =
                crate::proto::deflate::accept(info.header_values("sec-websocket-extensions"), config)?;
            info.set_extensions(answer);
            Some(crate::proto::deflate::Deflate::new(params, config))
        });
        encode_accept(key, info.protocol(), info.extensions(), &mut self.out.buf);
        #[allow(unused_mut)]
        let mut ws = WsConn::new(Role::Server, limits, now);
        #[cfg(feature = "deflate")]
        if let Some(codec) = deflate {
            ws.set_deflate(codec);
        }
        let next = ws.next_keepalive(now, limits);
        self.state = State::Ws(Box::new(ServerWs { ws, info }));
        self.set_deadline(next.map(|at| Deadline::new(Timer::Keepalive, at)));
        true
    }
}
