//! Plain HTTP requests on their way from the connection to the route
//! table and back: a request answered at once, with a file, or later; an
//! upload read piece by piece; a body the core refused.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::Dispatch;
use crate::context::Context;
use crate::exchange::{Exchange, Kind, ResponseId};
use crate::handler::HvWebServer;
use crate::proto::http::{Body, HttpRequest, HttpResponse};
use crate::upload::Upload;

impl<H: HvWebServer> Dispatch<'_, H> {
    /// The sequence number of the request just read on `key`.
    pub(super) fn next_seq(&mut self, key: usize) -> u32 {
        self.core.stats.http_requests += 1;
        let slot = &mut self.core.conns[key];
        slot.requests = slot.requests.wrapping_add(1);
        slot.requests
    }

    /// Answers a plain HTTP request from the route table: at once, with a
    /// file body read as the socket drains, or later (the handler deferred).
    pub(super) fn request(&mut self, key: usize, mut req: Box<HttpRequest>, seq: u32) {
        crate::upload::attach_urlencoded(&mut req, &self.core.config.form_limits);
        let gen = self.core.conns[key].gen;
        self.core.current = Some(ResponseId {
            index: key as u32,
            gen,
            seq,
        });
        let resp = self.route(&mut req);
        self.core.current = None;
        let core = &mut *self.core;
        let (now, limits) = (core.now, &core.limits);
        let Some(slot) = core.conns.get_mut(key) else {
            return;
        };
        // Answers go into a buffer from the pool (one a flush gave back),
        // as sends to channels do: else every batch of pipelined answers
        // grows a new one from nothing, allocating again at each doubling.
        if slot.conn.needs_buffer() {
            if let Some(unused) = slot.conn.give_buffer(core.pool.take()) {
                core.pool.put(unused);
            }
        }
        // `Context::defer` left an exchange for this request.
        let deferred = slot
            .http
            .as_mut()
            .filter(|x| x.seq == seq && matches!(x.kind, Kind::Deferred | Kind::Stream));
        // Matched by reference: a response is moved only for a file body.
        match (&resp, deferred) {
            (Ok(resp), Some(_)) if resp.is_deferred() => return self.core.adopt(key, req),
            (Ok(resp), _) if resp.is_deferred() => {
                log::error!(
                    "route {} {} returned HttpResponse::deferred() without calling Context::defer; answering 500",
                    req.method(),
                    req.path()
                );
                slot.conn.respond(&HttpResponse::error(500), now, limits);
            }
            (Ok(resp), _) => {
                slot.conn.respond(resp, now, limits);
                slot.http = None;
                if let Body::File { file, offset, len } = &resp.body {
                    if slot.conn.is_sending() {
                        let (file, pos, left) = (file.clone(), *offset, *len);
                        slot.http = Some(Box::new(Exchange {
                            seq,
                            req: None,
                            started: now,
                            kind: Kind::File { file, pos, left },
                            early: None,
                        }));
                    }
                }
            }
            (Err(failed), _) => {
                slot.http = None;
                slot.conn.respond_and_close(failed, now, limits);
            }
        }
        // Answered: the next request read is built in its box.
        self.core.recycle(req);
    }

    /// The head of an upload: its body is read next, piece by piece.
    pub(super) fn upload_head(&mut self, key: usize, req: Box<HttpRequest>) {
        let seq = self.next_seq(key);
        let now = self.core.now;
        match Upload::new(req, &self.core.config.form_limits) {
            Ok(upload) => {
                self.core.conns[key].http = Some(Box::new(Exchange {
                    seq,
                    req: None,
                    started: now,
                    kind: Kind::Upload(Box::new(upload)),
                    early: None,
                }));
            }
            Err((req, resp)) => self.refuse_body(key, Some(&req), *resp),
        }
    }

    /// A piece of an upload's body.
    pub(super) fn upload_body(&mut self, key: usize, data: &[u8]) {
        let slot = &mut self.core.conns[key];
        let Some(Exchange {
            kind: Kind::Upload(upload),
            ..
        }) = slot.http.as_deref_mut()
        else {
            return;
        };
        if let Err(resp) = upload.feed(data) {
            let upload = self.take_upload(key);
            self.refuse_body(key, upload.as_ref().map(|u| u.request()), resp);
        }
    }

    /// An upload's body is complete: its route runs.
    pub(super) fn upload_end(&mut self, key: usize) {
        let seq = self.core.conns[key].http.as_ref().map_or(0, |x| x.seq);
        let Some(upload) = self.take_upload(key) else { return };
        match upload.finish() {
            Ok(req) => self.request(key, req, seq),
            Err((req, resp)) => self.refuse_body(key, Some(&req), *resp),
        }
    }

    /// The connection's upload, taken out of its slot.
    pub(super) fn take_upload(&mut self, key: usize) -> Option<Upload> {
        let slot = self.core.conns.get_mut(key)?;
        let x = slot.http.take_if(|x| matches!(x.kind, Kind::Upload(_)))?;
        match x.kind {
            Kind::Upload(upload) => Some(*upload),
            _ => None,
        }
    }

    /// The core will not read a request's body: its answer goes out
    /// through the response chain (a browser reads a 413 with CORS
    /// headers, not an opaque failure), and the connection closes.
    pub(super) fn refused(&mut self, key: usize, request: Option<Box<HttpRequest>>, resp: HttpResponse) {
        self.core.stats.http_requests += u64::from(request.is_some());
        let upload = if request.is_none() { self.take_upload(key) } else { None };
        let req = request.as_deref().or(upload.as_ref().map(|u| u.request()));
        self.refuse_body(key, req, resp);
    }

    /// Answers `req` (if known) with `resp` through the response chain,
    /// and closes.
    pub(super) fn refuse_body(&mut self, key: usize, req: Option<&HttpRequest>, mut resp: HttpResponse) {
        if let Some(req) = req {
            crate::exchange::finish(&self.core.chain, req, &mut resp, std::time::Duration::ZERO);
        }
        let (now, limits) = (self.core.now, &self.core.limits);
        if let Some(slot) = self.core.conns.get_mut(key) {
            slot.http = None;
            slot.conn.respond_and_close(&resp, now, limits);
        }
    }

    /// The response to a plain HTTP request; `Err` with the 500 to close
    /// with if its middleware or handler panicked.
    pub(super) fn route(&mut self, req: &mut HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let mut ctx = Context { core: self.core };
        let (routes, handler_state) = (&mut *self.routes, &mut *self.handler);
        match catch_unwind(AssertUnwindSafe(|| routes.handle(handler_state, &mut ctx, req))) {
            Ok(resp) => Ok(resp),
            Err(_) => {
                log::error!("route {} {} panicked; answering 500", req.method(), req.path());
                Err(self.routes.internal_error(req, self.core.now))
            }
        }
    }
}
