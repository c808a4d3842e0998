//! The HTTP client: requests queued by the caller, their I/O, timers and
//! callbacks done in [`HttpClient::process_event_que`] on the caller's
//! thread, exactly like [`WebSocketClient`](crate::WebSocketClient).
//!
//! - `proto::http_client::Exchange` is one request and its response
//!   (sans-IO); this module gives each a connection and feeds it;
//! - `driver::MultiIo` owns the sockets (one poller, a slot per
//!   connection);
//! - `wire.rs`: connecting, reading, writing, ending an exchange;
//! - `request.rs`: the builder; `redirect.rs`: following redirects;
//!   `handler.rs`: the callbacks and what they are given; `url.rs`.
//!
//! Connections are pooled per origin (scheme, host, port) and reused for
//! the next request to it; a request sent on a reused connection that the
//! server closed before answering is sent again once if it is idempotent.
//!
//! Host names are resolved when a request needs a new connection, inside
//! `process_event_que`, with the system's blocking resolver (as the
//! WebSocket client's `init`); IP addresses and reused connections need no
//! lookup.
//!
//! Through a proxy ([`HttpClientConfig::proxy`]) TCP goes to the proxy:
//! an `https://` connection first opens a `CONNECT` tunnel
//! (`proto::proxy::Tunnel`, while the connection still counts as
//! connecting), a plain `http://` one sends absolute-form requests to it.
//! Connections are still pooled by the server's origin. With the cookie
//! jar on, `Set-Cookie` is stored as each head arrives (before a redirect
//! is followed) and the `Cookie` header is made for each hop as it starts.

mod connect;
mod handler;
mod redirect;
mod request;
mod url;
mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use slab::Slab;

pub use handler::{BodyChunk, ClientResponse, HvHttpClient, RequestId};
pub use request::ClientRequest;

use crate::client::proxy::Endpoint;
use crate::config::HttpClientConfig;
use crate::driver::{ClientReady, MultiIo};
use crate::error::HttpClientError;
use crate::proto::http_client::{CookieJar, Exchange, ExchangeLimits, ResponseHead, StoredCookie};
use crate::proto::proxy::Tunnel;
use request::Prepared;
use url::Origin;

/// The total timeout of a blocking call whose request has none.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    Connecting,
    Busy,
    Idle { since: Instant },
}

/// One connection and the exchange it carries.
#[derive(Debug)]
struct Conn {
    origin: Origin,
    state: ConnState,
    /// Where the host resolved; `addr` is the one being tried.
    addrs: Vec<SocketAddr>,
    addr: usize,
    req: Option<usize>,
    exchange: Option<Exchange>,
    /// The exchange runs on a connection that carried an earlier one.
    reused: bool,
    /// The read budget ran out: read again next pump, edge or not.
    read_owed: bool,
    /// The proxy this connection goes through: TCP goes to it; `https://`
    /// then asks it for a tunnel, `http://` sends it absolute-form
    /// requests.
    proxy: Option<Endpoint>,
    /// The `CONNECT` under way, while the state is `Connecting`.
    tunnel: Option<Box<TunnelSetup>>,
}

/// A `CONNECT` to the proxy: what is left to write of it, and its answer.
#[derive(Debug)]
struct TunnelSetup {
    tunnel: Tunnel,
    request: Vec<u8>,
}

/// A request from `request()` until its response or error is handed out.
#[derive(Debug)]
struct Pending {
    id: RequestId,
    prepared: Prepared,
    connect_timeout: Duration,
    deadline: Option<Instant>,
    follow: bool,
    max_redirects: u32,
    limits: ExchangeLimits,
    keep_body: bool,
    /// `send_blocking` waits for it: no callbacks.
    blocking: bool,
    conn: Option<usize>,
    hops: u32,
    retried: bool,
    head: Option<ResponseHead>,
    body: Vec<u8>,
    received: u64,
    chunks: u32,
    /// The head was a redirect to follow once its body is read.
    redirect: Option<Prepared>,
}

/// An HTTP client driven by the caller's loop. Requests are queued with
/// [`HttpClient::request`]; each call of [`HttpClient::process_event_que`]
/// does the network work that is ready and runs the [`HvHttpClient`]
/// callbacks for what arrived. Nothing blocks but host-name lookups.
///
/// ```no_run
/// use hvws::{BodyChunk, ClientRequest, ClientResponse, HttpClient, HttpClientError, HvHttpClient, RequestId};
///
/// #[derive(Default)]
/// struct Lobby {
///     matches: Option<String>,
///     failed: Option<String>,
/// }
///
/// impl HvHttpClient for Lobby {
///     fn on_response(&mut self, _id: RequestId, response: ClientResponse) {
///         self.matches = Some(response.text().into_owned());
///     }
///     fn on_error(&mut self, _id: RequestId, error: HttpClientError) {
///         self.failed = Some(error.to_string());
///     }
/// }
///
/// let mut http = HttpClient::new(Lobby::default());
/// http.request(ClientRequest::get("http://127.0.0.1:8080/matches").set_param("region", "eu"))?;
/// loop {
///     // ... the game's frame: input, simulation, rendering ...
///     http.process_event_que();
///     if http.handler().matches.is_some() || http.handler().failed.is_some() {
///         break;
///     }
///     std::thread::sleep(std::time::Duration::from_millis(16));
/// }
/// # Ok::<(), hvws::HttpClientError>(())
/// ```
///
/// Callbacks rather than a polled queue of events: the client reads like
/// [`WebSocketClient`](crate::WebSocketClient) and its
/// [`HvWebSocketClient`](crate::HvWebSocketClient), and a body piece is
/// handed to [`HvHttpClient::on_chunk`] straight from the read buffer,
/// where a queue would copy every piece to outlive the read.
pub struct HttpClient<H: HvHttpClient = ()> {
    handler: H,
    config: HttpClientConfig,
    io: MultiIo,
    conns: Slab<Conn>,
    reqs: Slab<Pending>,
    generation: u32,
    /// Requests waiting for a connection, oldest first.
    queue: VecDeque<usize>,
    ready: Vec<(usize, ClientReady)>,
    /// What `send_blocking` waits for.
    blocking_result: Option<(RequestId, Result<ClientResponse, HttpClientError>)>,
    /// Cookies, when the jar is on.
    jar: Option<CookieJar>,
    /// Built on the first `https://` connection.
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl<H: HvHttpClient + fmt::Debug> fmt::Debug for HttpClient<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("handler", &self.handler)
            .field("pending", &self.reqs.len())
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Default for HttpClient<()> {
    fn default() -> Self {
        HttpClient::new(())
    }
}

impl<H: HvHttpClient> HttpClient<H> {
    /// A client for `handler` with the default [`HttpClientConfig`].
    pub fn new(handler: H) -> HttpClient<H> {
        HttpClient::with_config(handler, HttpClientConfig::default())
    }

    /// A client for `handler` with `config`.
    pub fn with_config(handler: H, config: HttpClientConfig) -> HttpClient<H> {
        HttpClient {
            handler,
            jar: config.cookie_jar.then(CookieJar::new),
            config,
            io: MultiIo::new(),
            conns: Slab::new(),
            reqs: Slab::new(),
            generation: 0,
            queue: VecDeque::new(),
            ready: Vec::new(),
            blocking_result: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Turns the cookie jar on (as [`HttpClientConfig::cookie_jar`] does):
    /// from now on `Set-Cookie` in responses is kept, and the cookies a
    /// request matches are sent with it, redirect hops included (a hop to
    /// another site gets that site's cookies only). Cookies already held
    /// stay.
    ///
    /// ```no_run
    /// use hvws::{ClientRequest, HttpClient};
    /// let mut http = HttpClient::default();
    /// http.enable_cookies();
    /// http.send_blocking(ClientRequest::post("http://127.0.0.1:8080/login").form(&[("user", "ada")]))?;
    /// for cookie in http.cookies() {
    ///     println!("{}={} for {}{}", cookie.name(), cookie.value(), cookie.domain(), cookie.path());
    /// }
    /// // Sent with the session cookie the login set.
    /// http.send_blocking(ClientRequest::get("http://127.0.0.1:8080/profile"))?;
    /// # Ok::<(), hvws::HttpClientError>(())
    /// ```
    pub fn enable_cookies(&mut self) {
        self.jar.get_or_insert_with(CookieJar::new);
    }

    /// The cookies held and not expired, in the order they were first set;
    /// none when the jar is off.
    pub fn cookies(&self) -> impl Iterator<Item = &StoredCookie> + '_ {
        let now = SystemTime::now();
        self.jar
            .iter()
            .flat_map(CookieJar::iter)
            .filter(move |c| !c.is_expired(now))
    }

    /// The jar itself, when it is on: to clear it, or to look up the
    /// header a URL would get.
    pub fn cookie_jar_mut(&mut self) -> Option<&mut CookieJar> {
        self.jar.as_mut()
    }

    /// Queues `req`; it is sent by the next
    /// [`process_event_que`](HttpClient::process_event_que), and what comes
    /// back goes to the callbacks with the returned id. Fails at once,
    /// sending nothing, for a bad URL, header or body
    /// ([`InvalidUrl`](HttpClientError::InvalidUrl),
    /// [`UnsupportedScheme`](HttpClientError::UnsupportedScheme),
    /// [`InvalidRequest`](HttpClientError::InvalidRequest)); every other
    /// failure arrives in `on_error`.
    pub fn request(&mut self, req: ClientRequest) -> Result<RequestId, HttpClientError> {
        self.enqueue(req, false)
    }

    fn enqueue(&mut self, req: ClientRequest, blocking: bool) -> Result<RequestId, HttpClientError> {
        let prepared = req.prepare()?;
        let now = Instant::now();
        let timeout = req.timeout.unwrap_or(self.config.timeout);
        let timeout = if blocking {
            Some(timeout.unwrap_or(BLOCKING_TIMEOUT))
        } else {
            timeout
        };
        self.generation = self.generation.wrapping_add(1);
        let entry = self.reqs.vacant_entry();
        let key = entry.key();
        let id = RequestId {
            key: u32::try_from(key).expect("fewer than 4 billion requests at once"),
            generation: self.generation,
        };
        entry.insert(Pending {
            id,
            prepared,
            connect_timeout: req.connect_timeout.unwrap_or(self.config.connect_timeout),
            deadline: timeout.map(|t| now + t),
            follow: req.follow_redirects,
            max_redirects: req.max_redirects.unwrap_or(self.config.max_redirects),
            limits: ExchangeLimits {
                max_head: self.config.max_response_head,
                max_body: req.max_response_size.unwrap_or(self.config.max_response_size),
            },
            keep_body: req.keep_body,
            blocking,
            conn: None,
            hops: 0,
            retried: false,
            head: None,
            body: Vec::new(),
            received: 0,
            chunks: 0,
            redirect: None,
        });
        self.queue.push_back(key);
        Ok(id)
    }

    /// Sends `req` and pumps until its response is complete or it fails,
    /// within its total timeout (30 s if it has none). Other requests of
    /// this client go on meanwhile, their callbacks included; this one's
    /// are not called.
    ///
    /// ```no_run
    /// use hvws::{ClientRequest, HttpClient};
    /// let mut http = HttpClient::default();
    /// let resp = http.send_blocking(ClientRequest::post("http://127.0.0.1:8080/echo").body_text("hi"))?;
    /// assert_eq!((resp.status(), resp.text().as_ref()), (200, "hi"));
    /// # Ok::<(), hvws::HttpClientError>(())
    /// ```
    pub fn send_blocking(&mut self, req: ClientRequest) -> Result<ClientResponse, HttpClientError> {
        let id = self.enqueue(req, true)?;
        loop {
            self.pump(Duration::from_millis(100));
            if let Some((done, result)) = self.blocking_result.take() {
                debug_assert_eq!(done, id);
                return result;
            }
        }
    }

    /// Drops the request `id`: no callback follows for it, and the
    /// connection it was using is closed. False if it was already done.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let key = id.key as usize;
        if !self.reqs.get(key).is_some_and(|p| p.id == id) {
            return false;
        }
        let p = self.reqs.remove(key);
        self.queue.retain(|&k| k != key);
        if let Some(ck) = p.conn {
            self.close_conn(ck);
        }
        true
    }

    /// Requests queued or in flight.
    pub fn pending(&self) -> usize {
        self.reqs.len()
    }

    /// Open connections, busy or idle in the pool.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Does the network work that is ready, without waiting, and runs the
    /// callbacks for what arrived; what is queued is written before it
    /// returns.
    pub fn process_event_que(&mut self) {
        self.pump(Duration::ZERO);
    }

    /// Like [`HttpClient::process_event_que`], but first waits up to
    /// `timeout` for something to happen (less if a deadline comes
    /// first): for a client on a thread of its own that should not spin.
    pub fn process_event_que_timeout(&mut self, timeout: Duration) {
        self.pump(timeout);
    }

    /// One pump: start what is queued, write, wait for readiness or the
    /// next deadline, connect/read (callbacks run as data is read),
    /// deadlines, then start what that freed and write once more.
    fn pump(&mut self, timeout: Duration) {
        let now = Instant::now();
        self.dispatch(now);
        self.flush_all();
        let mut wait = timeout;
        if self.conns.iter().any(|(_, c)| c.read_owed) {
            wait = Duration::ZERO;
        }
        if let Some(at) = self.next_deadline() {
            wait = wait.min(at.saturating_duration_since(now));
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        if let Err(e) = self.io.turn(wait, &mut ready) {
            log::warn!("http client poll failed: {e}");
        }
        let now = Instant::now();
        for &(key, r) in &ready {
            self.on_ready(key, r, now);
        }
        self.ready = ready;
        let owed: Vec<usize> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.read_owed)
            .map(|(k, c)| {
                c.read_owed = false;
                k
            })
            .collect();
        for key in owed {
            // No edge is coming for what the budget left: read on.
            self.read(key, now, true);
        }
        self.timeouts(now);
        self.dispatch(now);
        self.flush_all();
    }

    /// The earliest deadline of a request, queued or in flight.
    fn next_deadline(&self) -> Option<Instant> {
        let running = self
            .conns
            .iter()
            .filter_map(|(_, c)| c.exchange.as_ref().and_then(Exchange::poll_timeout));
        let queued = self.queue.iter().filter_map(|&k| self.reqs[k].deadline);
        running.chain(queued).min()
    }

    /// Fails what is past its deadline.
    fn timeouts(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.exchange
                    .as_ref()
                    .and_then(Exchange::poll_timeout)
                    .is_some_and(|at| at <= now)
            })
            .map(|(k, _)| k)
            .collect();
        for ck in due {
            let event = self.conns[ck].exchange.as_mut().and_then(|e| e.handle_timeout(now));
            if let Some(event) = event {
                self.end_static(ck, event, now);
            }
        }
        let mut i = 0;
        while i < self.queue.len() {
            let key = self.queue[i];
            if self.reqs[key].deadline.is_some_and(|at| at <= now) {
                self.queue.remove(i);
                self.finish_err(key, HttpClientError::Timeout);
            } else {
                i += 1;
            }
        }
    }

    /// Gives queued requests a connection: an idle one to their origin,
    /// else a new one while the origin has fewer than the maximum.
    fn dispatch(&mut self, now: Instant) {
        for _ in 0..self.queue.len() {
            let Some(key) = self.queue.pop_front() else { break };
            let origin = self.reqs[key].prepared.url.origin.clone();
            if let Some(ck) = self.take_idle(&origin, now) {
                self.start(ck, key, now);
                continue;
            }
            let open = self.conns.iter().filter(|(_, c)| c.origin == origin).count();
            if open < self.config.max_connections_per_origin {
                self.open(key, origin, now);
            } else {
                self.queue.push_back(key);
            }
        }
    }

    /// An idle connection to `origin` young enough to reuse; older ones
    /// are closed on the way.
    fn take_idle(&mut self, origin: &Origin, now: Instant) -> Option<usize> {
        let max_age = self.config.idle_timeout;
        let mut stale = Vec::new();
        let mut found = None;
        for (k, c) in self.conns.iter() {
            if let ConnState::Idle { since } = c.state {
                if now.saturating_duration_since(since) >= max_age {
                    stale.push(k);
                } else if &c.origin == origin && found.is_none() {
                    found = Some(k);
                }
            }
        }
        for k in stale {
            self.close_conn(k);
        }
        found
    }
}

/// GET `url` and wait for the whole response (30 s at most), on a client
/// made for the call: for scripts and tests. A game uses an
/// [`HttpClient`] it pumps.
///
/// ```no_run
/// let resp = hvws::http::get("http://127.0.0.1:8080/ping")?;
/// println!("{} {}", resp.status(), resp.text());
/// # Ok::<(), hvws::HttpClientError>(())
/// ```
pub fn get(url: &str) -> Result<ClientResponse, HttpClientError> {
    send(ClientRequest::get(url))
}

/// Sends `req` and waits for the whole response (its total timeout, 30 s
/// if it has none), on a client made for the call.
///
/// ```no_run
/// use hvws::ClientRequest;
/// let resp = hvws::http::send(ClientRequest::post("http://127.0.0.1:8080/echo").body_text("hi"))?;
/// assert_eq!(resp.text(), "hi");
/// # Ok::<(), hvws::HttpClientError>(())
/// ```
pub fn send(req: ClientRequest) -> Result<ClientResponse, HttpClientError> {
    HttpClient::new(()).send_blocking(req)
}
