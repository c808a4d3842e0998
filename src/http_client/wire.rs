//! An exchange on its connection: connecting (the next address, TLS),
//! reading with the callbacks for what arrived, writing, and ending it
//! (the connection back to the pool or closed, the request done, retried
//! or redirected).

use std::borrow::Cow;
use std::io;
use std::net::ToSocketAddrs;
use std::time::{Instant, SystemTime};

use super::handler::{BodyChunk, ClientResponse};
use super::request::Prepared;
use super::url::Origin;
use super::{redirect, Conn, ConnState, HttpClient, HvHttpClient, TunnelSetup};
use crate::driver::{ClientReady, FlushResult, ReadResult};
use crate::error::HttpClientError;
use crate::proto::http_client::{CookieJar, Exchange, ExchangeError, ExchangeEvent, ExchangeTimers, RequestHead};
use crate::proto::proxy::{Tunnel, TunnelState};

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
    /// Resolves the request's host (or its proxy's) and starts connecting
    /// to it.
    pub(super) fn open(&mut self, key: usize, origin: Origin, now: Instant) {
        let proxy = match self
            .config
            .proxy
            .as_ref()
            .map(|p| p.resolve(&origin.host, origin.secure))
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => return self.finish_err(key, crate::error::proxy_error(e)),
            None => None,
        };
        let (host, port) = match &proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (origin.host.as_str(), origin.port),
        };
        let dns = |source| HttpClientError::Dns {
            host: host.to_owned(),
            source,
        };
        let addrs: Vec<_> = match (host, port).to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(source) => return self.finish_err(key, dns(source)),
        };
        if addrs.is_empty() {
            let error = dns(io::Error::new(io::ErrorKind::NotFound, "no address"));
            return self.finish_err(key, error);
        }
        let ck = self.conns.vacant_key();
        let mut last = None;
        for (i, &addr) in addrs.iter().enumerate() {
            match self.io.connect(ck, addr) {
                Ok(()) => {
                    self.conns.insert(Conn {
                        origin,
                        state: ConnState::Connecting,
                        addrs,
                        addr: i,
                        req: None,
                        exchange: None,
                        reused: false,
                        read_owed: false,
                        proxy,
                        tunnel: None,
                    });
                    return self.start(ck, key, now);
                }
                Err(e) => last = Some(connect_error(addr, e)),
            }
        }
        self.finish_err(key, last.expect("at least one address"));
    }

    /// Puts request `key` on connection `ck` (new, or idle from the pool).
    pub(super) fn start(&mut self, ck: usize, key: usize, now: Instant) {
        let p = &mut self.reqs[key];
        let conn = &mut self.conns[ck];
        let connected = conn.state != ConnState::Connecting;
        let timers = ExchangeTimers {
            connect: (!connected).then(|| now + p.connect_timeout),
            total: p.deadline,
        };
        // Plain http through a proxy: the whole URL is the target.
        let absolute = match &conn.proxy {
            Some(_) if !conn.origin.secure => Some(p.prepared.url.to_string()),
            _ => None,
        };
        let proxy_auth = conn
            .proxy
            .as_ref()
            .and_then(|e| e.basic.as_deref())
            .filter(|_| absolute.is_some());
        let headers = hop_headers(&p.prepared, self.jar.as_ref(), proxy_auth);
        let head = RequestHead {
            method: p.prepared.method.as_str(),
            target: absolute.as_deref().unwrap_or(&p.prepared.url.target),
            host: &p.prepared.url.authority,
            headers: &headers,
            body: p.prepared.body.as_deref(),
        };
        match Exchange::new(&head, p.limits, timers, connected) {
            Ok(exchange) => {
                conn.reused = connected;
                conn.exchange = Some(exchange);
                conn.req = Some(key);
                if connected {
                    conn.state = ConnState::Busy;
                }
                p.conn = Some(ck);
            }
            Err(e) => {
                // `prepare` encoded it once already; kept for safety.
                if connected {
                    conn.state = ConnState::Idle { since: now };
                } else {
                    self.close_conn(ck);
                }
                self.finish_err(key, HttpClientError::InvalidRequest(e.to_string()));
            }
        }
    }

    pub(super) fn on_ready(&mut self, ck: usize, ready: ClientReady, now: Instant) {
        let Some(conn) = self.conns.get(ck) else { return };
        match conn.state {
            ConnState::Connecting if conn.tunnel.is_some() => self.pump_tunnel(ck),
            ConnState::Connecting if ready.readable || ready.writable => match self.io.check_connected(ck) {
                Ok(true) => self.connected(ck),
                Ok(false) => {}
                Err(e) => self.connect_failed(ck, e),
            },
            ConnState::Connecting => {}
            ConnState::Busy if ready.readable => self.read(ck, now),
            ConnState::Busy => {}
            ConnState::Idle { .. } if ready.readable => self.check_idle(ck),
            ConnState::Idle { .. } => {}
        }
    }

    /// TCP is up: a tunnel through the proxy for `https://`, or straight
    /// on to the transport.
    fn connected(&mut self, ck: usize) {
        let conn = &mut self.conns[ck];
        if let (true, Some(proxy)) = (conn.origin.secure, &conn.proxy) {
            conn.tunnel = Some(Box::new(TunnelSetup {
                tunnel: Tunnel::new(),
                request: Tunnel::request(&tunnel_authority(&conn.origin), proxy.basic.as_deref()),
            }));
            return self.pump_tunnel(ck);
        }
        self.transport_ready(ck);
    }

    /// Writes the rest of the `CONNECT` and reads the proxy's answer; once
    /// the tunnel is open the connection goes on as if TCP had just
    /// connected to the server.
    fn pump_tunnel(&mut self, ck: usize) {
        let HttpClient { conns, io, .. } = self;
        let Some(conn) = conns.get_mut(ck) else { return };
        let Some(setup) = conn.tunnel.as_mut() else { return };
        let proxy = conn.proxy.as_ref().map_or("?", |p| p.shown.as_str());
        let closed = || {
            HttpClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("proxy {proxy} closed the connection before answering CONNECT"),
            ))
        };
        let outcome = 'outcome: {
            if !setup.request.is_empty() {
                if let FlushResult::Failed(e) = io.write(ck, &mut setup.request) {
                    break 'outcome Err(HttpClientError::Io(e));
                }
            }
            loop {
                match io.read(ck) {
                    ReadResult::Data(n) => match setup.tunnel.handle_input(&io.buf[..n]) {
                        Ok(TunnelState::Waiting) => {}
                        Ok(TunnelState::Open) => break 'outcome Ok(true),
                        Err(source) => {
                            break 'outcome Err(HttpClientError::Proxy {
                                proxy: proxy.to_owned(),
                                source,
                            })
                        }
                    },
                    ReadResult::WouldBlock => break 'outcome Ok(false),
                    ReadResult::Eof => break 'outcome Err(closed()),
                    ReadResult::Failed(e) => break 'outcome Err(HttpClientError::Io(e)),
                }
            }
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                log::debug!("{proxy} opened a tunnel to {}", tunnel_authority(&conn.origin));
                conn.tunnel = None;
                self.transport_ready(ck);
            }
            Err(error) => self.fail_conn(ck, error, false),
        }
    }

    /// The byte pipe reaches the server: TLS for `https://`, then the
    /// request may go.
    fn transport_ready(&mut self, ck: usize) {
        #[cfg(feature = "tls")]
        if self.conns[ck].origin.secure {
            let host = self.conns[ck].origin.host.clone();
            match self.tls_layer(&host) {
                Ok(layer) => self.io.start_tls(ck, layer),
                Err(e) => return self.fail_conn(ck, e, false),
            }
        }
        let conn = &mut self.conns[ck];
        conn.state = ConnState::Busy;
        if let Some(ex) = conn.exchange.as_mut() {
            ex.handle_connected();
        }
    }

    #[cfg(feature = "tls")]
    fn tls_layer(&mut self, host: &str) -> Result<crate::proto::tls::TlsLayer, HttpClientError> {
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => self.tls.insert(self.config.tls.build()?).clone(),
        };
        crate::proto::tls::TlsLayer::client(config, host, 64 << 10).map_err(|e| {
            let (kind, reason) = crate::proto::tls::describe(&e, host);
            HttpClientError::Tls {
                host: host.to_owned(),
                kind,
                reason,
            }
        })
    }

    /// The connect failed: the host's next address, or the request fails.
    fn connect_failed(&mut self, ck: usize, e: io::Error) {
        let conn = &mut self.conns[ck];
        let mut error = connect_error(conn.addrs[conn.addr], e);
        while conn.addr + 1 < conn.addrs.len() {
            conn.addr += 1;
            let addr = conn.addrs[conn.addr];
            match self.io.connect(ck, addr) {
                Ok(()) => return,
                Err(e) => error = connect_error(addr, e),
            }
        }
        self.fail_conn(ck, error, false);
    }

    /// An idle connection became readable: the server closed it (or sent
    /// what nobody asked for). Either way it is done.
    fn check_idle(&mut self, ck: usize) {
        match self.io.read(ck) {
            ReadResult::WouldBlock => {}
            ReadResult::Data(_) | ReadResult::Eof | ReadResult::Failed(_) => self.close_conn(ck),
        }
    }

    /// Reads until the socket is drained or the budget is spent, running
    /// the callbacks for each read before the next.
    pub(super) fn read(&mut self, ck: usize, now: Instant) {
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
            if n < self.io.buf.len() && !self.io.at_end(ck) {
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

    fn make_idle(&mut self, ck: usize, now: Instant) {
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
    fn finish_conn(&mut self, ck: usize) {
        self.io.finish(ck);
        self.conns.try_remove(ck);
    }

    pub(super) fn close_conn(&mut self, ck: usize) {
        self.io.close(ck);
        self.conns.try_remove(ck);
    }

    fn finish_ok(&mut self, key: usize) {
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

/// `host:port` for `CONNECT`, an IPv6 address in brackets.
fn tunnel_authority(origin: &Origin) -> String {
    if origin.host.contains(':') {
        format!("[{}]:{}", origin.host, origin.port)
    } else {
        format!("{}:{}", origin.host, origin.port)
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
fn hop_headers<'a>(
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

fn connect_error(addr: std::net::SocketAddr, e: io::Error) -> HttpClientError {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        HttpClientError::Refused { addr }
    } else {
        HttpClientError::Connect { addr, source: e }
    }
}

/// A socket error as the application should see it: a TLS failure in
/// words, anything else as I/O.
fn io_error(e: io::Error, host: &str) -> HttpClientError {
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
