//! An exchange on its connection: connecting (the next address, TLS),
//! reading with the callbacks for what arrived, writing, and ending it
//! (the connection back to the pool or closed, the request done, retried
//! or redirected).

use std::borrow::Cow;
use std::io;
use std::time::{Instant, SystemTime};

use super::handler::{BodyChunk, ClientResponse};
use super::request::Prepared;
use super::{redirect, ConnState, HttpClient, HvHttpClient};
use crate::driver::{FlushResult, ReadResult};
use crate::error::HttpClientError;
use crate::proto::http_client::{CookieJar, Exchange, ExchangeError, ExchangeEvent};

/// Bytes read from one connection per pump before the others get their
/// turn: a server that floods cannot keep the caller's frame from ending.
/// What is left is read by the next pump, without waiting for readiness.
const READ_BUDGET: usize = 1 << 20;

/// How an exchange ended.
enum End {
    Done,
    /// Failed; `retry` if the request may be sent again on a new
    /// connection (a reused one closed before a byte of the answer).
    Failed {
        error: HttpClientError,
        retry: bool,
    },
}

impl<H: HvHttpClient> HttpClient<H> {
    /// An idle connection became readable: the server closed it (or sent
    /// what nobody asked for). Either way it is done.
    pub(super) fn check_idle(&mut self, ck: usize) {
        match self.io.read(ck) {
            ReadResult::WouldBlock => {}
            ReadResult::Data(_) | ReadResult::Eof | ReadResult::Failed(_) => self.close_conn(ck),
        }
    }

    /// Reads until the socket is drained or the budget is spent, running
    /// the callbacks for each read before the next.
    pub(super) fn read(&mut self, ck: usize, now: Instant, drain: bool) {
        let mut total = 0;
        loop {
            if self.conns.get(ck).is_none_or(|c| c.exchange.is_none()) {
                return;
            }
            let n = match self.io.read(ck) {
                ReadResult::Data(n) => n,
                ReadResult::WouldBlock => return,
                ReadResult::Eof => {
                    let event = self.conns[ck].exchange.as_mut().and_then(Exchange::handle_eof);
                    if let Some(event) = event {
                        self.end_static(ck, event, now);
                    }
                    return;
                }
                ReadResult::Failed(e) => {
                    let conn = &self.conns[ck];
                    let retry = conn.reused && !conn.exchange.as_ref().is_some_and(Exchange::response_started);
                    let error = io_error(e, &conn.origin.host);
                    return self.fail_conn(ck, error, retry);
                }
            };
            if let Some(end) = self.deliver(ck, n) {
                return self.end(ck, end, now);
            }
            total += n;
            if total >= READ_BUDGET {
                self.conns[ck].read_owed = true;
                return;
            }
            // A short read drained the socket for now; the next data raises
            // a new edge. After the peer's FIN (`drain`) none will: read
            // on to the EOF, which may have come with the last data.
            if n < self.io.buf.len() && !self.io.at_end(ck) && !drain {
                return;
            }
        }
    }

    /// Feeds `n` bytes of the read buffer to `ck`'s exchange, with the
    /// callbacks for the head and each body piece.
    fn deliver(&mut self, ck: usize, n: usize) -> Option<End> {
        let HttpClient {
            handler,
            io,
            conns,
            reqs,
            jar,
            ..
        } = self;
        let conn = conns.get_mut(ck)?;
        let p = reqs.get_mut(conn.req?)?;
        let ex = conn.exchange.as_mut()?;
        let mut input = &io.buf[..n];
        while let Some(event) = ex.poll_input(&mut input) {
            match event {
                ExchangeEvent::Head(head) => {
                    if let Some(jar) = jar.as_mut() {
                        store_cookies(jar, &p.prepared, &head);
                    }
                    match redirect::next(&p.prepared, &head, p.follow, p.hops, p.max_redirects) {
                        Some(Ok(next)) => p.redirect = Some(next),
                        Some(Err(error)) => return Some(End::Failed { error, retry: false }),
                        None => {
                            if !p.blocking {
                                handler.on_head(p.id, &head);
                            }
                            p.head = Some(head);
                        }
                    }
                }
                ExchangeEvent::Data(data) => {
                    if p.redirect.is_some() {
                        continue;
                    }
                    p.chunks += 1;
                    if !p.blocking {
                        let chunk = BodyChunk {
                            data,
                            index: p.chunks,
                            offset: p.received,
                        };
                        handler.on_chunk(p.id, &chunk);
                    }
                    p.received += data.len() as u64;
                    if p.keep_body {
                        p.body.extend_from_slice(data);
                    }
                }
                ExchangeEvent::Done => {
                    // Bytes after the end make the connection unusable;
                    // the exchange notes them.
                    let _ = ex.poll_input(&mut input);
                    return Some(End::Done);
                }
                ExchangeEvent::Failed(e) => {
                    return Some(End::Failed {
                        error: e.into(),
                        retry: false,
                    })
                }
            }
        }
        None
    }

    /// An event from the EOF or a deadline.
    pub(super) fn end_static(&mut self, ck: usize, event: ExchangeEvent<'static>, now: Instant) {
        let end = match event {
            ExchangeEvent::Done => End::Done,
            ExchangeEvent::Failed(e) => End::Failed {
                retry: e == ExchangeError::ClosedBeforeResponse && self.conns[ck].reused,
                error: e.into(),
            },
            // Head and data only come from input.
            _ => return,
        };
        self.end(ck, end, now);
    }

    fn end(&mut self, ck: usize, end: End, now: Instant) {
        let (error, retry) = match end {
            End::Failed { error, retry } => (error, retry),
            End::Done => {
                let conn = &mut self.conns[ck];
                let key = conn.req.take();
                let reusable = conn.exchange.take().is_some_and(|e| e.is_reusable());
                if reusable {
                    self.make_idle(ck, now);
                } else {
                    self.finish_conn(ck);
                }
                let Some(key) = key else { return };
                let p = &mut self.reqs[key];
                p.conn = None;
                if let Some(next) = p.redirect.take() {
                    log::debug!("{}: redirected to {}", p.id, next.url);
                    p.prepared = next;
                    p.hops += 1;
                    p.retried = false;
                    self.queue.push_back(key);
                } else {
                    self.finish_ok(key);
                }
                return;
            }
        };
        self.fail_conn(ck, error, retry);
    }

    /// The connection is broken: close it; its request is sent again
    /// (once, if `retry` and it is idempotent) or fails with `error`.
    pub(super) fn fail_conn(&mut self, ck: usize, error: HttpClientError, retry: bool) {
        let key = self.conns.get_mut(ck).and_then(|c| c.req.take());
        self.close_conn(ck);
        let Some(key) = key else { return };
        let p = &mut self.reqs[key];
        p.conn = None;
        if retry && !p.retried && p.prepared.is_idempotent() {
            log::debug!("{}: the kept-alive connection was closed; sending again", p.id);
            p.retried = true;
            p.redirect = None;
            p.head = None;
            p.body.clear();
            p.received = 0;
            p.chunks = 0;
            self.queue.push_front(key);
        } else {
            self.finish_err(key, error);
        }
    }

    pub(super) fn make_idle(&mut self, ck: usize, now: Instant) {
        let origin = &self.conns[ck].origin;
        let idle = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, ConnState::Idle { .. }) && &c.origin == origin)
            .count();
        if idle >= self.config.max_idle_per_origin {
            return self.finish_conn(ck);
        }
        let conn = &mut self.conns[ck];
        conn.state = ConnState::Idle { since: now };
        conn.read_owed = false;
    }

    /// Closes `ck` after a graceful end (TLS: `close_notify`).
    pub(super) fn finish_conn(&mut self, ck: usize) {
        self.io.finish(ck);
        self.conns.try_remove(ck);
    }

    pub(super) fn close_conn(&mut self, ck: usize) {
        self.io.close(ck);
        self.conns.try_remove(ck);
    }

    pub(super) fn finish_ok(&mut self, key: usize) {
        let p = self.reqs.remove(key);
        let Some(head) = p.head else {
            return self.finish_err(
                key,
                HttpClientError::BadResponse("response complete without a head".into()),
            );
        };
        let response = ClientResponse {
            head,
            body: p.body,
            url: p.prepared.url.to_string(),
            redirects: p.hops,
            body_len: p.received,
        };
        if p.blocking {
            self.blocking_result = Some((p.id, Ok(response)));
        } else {
            self.handler.on_response(p.id, response);
        }
    }

    pub(super) fn finish_err(&mut self, key: usize, error: HttpClientError) {
        let Some(p) = self.reqs.try_remove(key) else { return };
        log::debug!("{}: {error}", p.id);
        if p.blocking {
            self.blocking_result = Some((p.id, Err(error)));
        } else {
            self.handler.on_error(p.id, error);
        }
    }

    /// Writes what each connected exchange has queued (and TLS records
    /// waiting below it).
    pub(super) fn flush_all(&mut self) {
        let mut failed = Vec::new();
        for (ck, conn) in self.conns.iter_mut() {
            let Some(ex) = conn.exchange.as_mut() else { continue };
            if ex.is_connecting() || !(ex.has_output() || self.io.holds_output(ck)) {
                continue;
            }
            if let FlushResult::Failed(e) = self.io.write(ck, ex.transmit()) {
                let retry = conn.reused && !ex.response_started();
                failed.push((ck, io_error(e, &conn.origin.host), retry));
            }
        }
        for (ck, error, retry) in failed {
            self.fail_conn(ck, error, retry);
        }
    }
}

/// The path of a request target, without its query: what cookies match.
fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or("/")
}

/// The headers of one hop: the request's own, the jar's cookies for this
/// URL (in the one `Cookie` header, after the caller's, which the redirect
/// code keeps on the origin it was given for), and the proxy's
/// credentials for an absolute-form request. Borrowed when nothing is
/// added.
pub(super) fn hop_headers<'a>(
    prepared: &'a Prepared,
    jar: Option<&CookieJar>,
    proxy_auth: Option<&str>,
) -> Cow<'a, [(String, String)]> {
    let url = &prepared.url;
    let cookies = jar.and_then(|j| {
        j.header(
            url.origin.secure,
            &url.origin.host,
            path_of(&url.target),
            SystemTime::now(),
        )
    });
    if cookies.is_none() && proxy_auth.is_none() {
        return Cow::Borrowed(&prepared.headers);
    }
    let mut headers = prepared.headers.clone();
    if let Some(cookies) = cookies {
        match headers.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case("cookie")) {
            Some((_, v)) => {
                v.push_str("; ");
                v.push_str(&cookies);
            }
            None => headers.push(("Cookie".into(), cookies)),
        }
    }
    if let Some(basic) = proxy_auth {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("proxy-authorization"));
        headers.push(("Proxy-Authorization".into(), format!("Basic {basic}")));
    }
    Cow::Owned(headers)
}

/// Keeps the cookies a response to `prepared` set.
fn store_cookies(jar: &mut CookieJar, prepared: &Prepared, head: &crate::proto::http_client::ResponseHead) {
    let url = &prepared.url;
    let now = SystemTime::now();
    for line in head.header_all("set-cookie") {
        if let Err(why) = jar.store(url.origin.secure, &url.origin.host, path_of(&url.target), line, now) {
            log::debug!("cookie from {url} not kept ({why}): {line}");
        }
    }
}

/// A socket error as the application should see it: a TLS failure in
/// words, anything else as I/O.
pub(super) fn io_error(e: io::Error, host: &str) -> HttpClientError {
    #[cfg(feature = "tls")]
    if let Some(tls) = crate::proto::tls::tls_error(&e) {
        let (kind, reason) = crate::proto::tls::describe(tls, host);
        return HttpClientError::Tls {
            host: host.to_owned(),
            kind,
            reason,
        };
    }
    let _ = host;
    HttpClientError::Io(e)
}
