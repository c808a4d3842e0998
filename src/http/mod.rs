//! HTTP: the server's route table that
//! [`HvWebServer::on_init`](crate::HvWebServer::on_init) fills (HTTP routes
//! with path parameters, the paths that accept WebSocket upgrades,
//! middleware, CORS and the access log; all of it also at the crate root),
//! and the client's one-call helpers, [`get`] and [`send`], which block
//! until the response is complete (a game pumps an
//! [`HttpClient`](crate::HttpClient) instead). The request and response
//! types live in `proto::http`.
//!
//! ```no_run
//! let resp = hvws::http::get("http://127.0.0.1:8080/ping")?;
//! println!("{} {}", resp.status(), resp.text());
//! # Ok::<(), hvws::HttpClientError>(())
//! ```

// - `router.rs`: patterns and the segment tree that matches them;
// - `middleware.rs`: the response chain every answer passes through;
// - `cors.rs`: the CORS policy;
// - here: `Routes`, registering and answering a request (`Routes::handle`).

mod cors;
#[doc(hidden)]
pub mod fuzzing;
mod middleware;
mod mounts;
mod router;
#[cfg(test)]
mod tests;

pub(crate) mod static_files;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

pub use crate::http_client::{get, send};
pub use cors::Cors;
pub(crate) use middleware::ResponseChain;
pub use router::RouteError;

mod cookies;
mod file_name;
mod form;
mod limits;
mod multipart;
mod upload;

pub use form::Form;
pub(crate) use form::FormKind;
pub use limits::{FormError, FormLimits};
pub use multipart::MultipartParser;
pub use upload::{FormFile, UploadError};

use crate::context::Context;
use crate::proto::http::{HttpRequest, HttpResponse, Method};
use middleware::Before;
use router::{decode_param, parse_pattern, PathTree};

/// A route handler: reads and changes the server's state `H`, may send to
/// WebSocket channels through the [`Context`], and returns the response.
/// The path parameters of its pattern are in
/// [`HttpRequest::param`](crate::HttpRequest::param).
pub type RouteHandler<H> = Box<dyn FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send>;

/// The handlers of one pattern.
struct Endpoint<H> {
    pattern: String,
    methods: Vec<(Method, RouteHandler<H>)>,
    any: Option<RouteHandler<H>>,
}

/// Which handler of an endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    Method(usize),
    Any,
}

impl<H> Endpoint<H> {
    /// The method's own handler, else GET's for HEAD, else the ANY one.
    fn pick(&self, method: &Method) -> Option<Pick> {
        let find = |m: &Method| self.methods.iter().position(|(k, _)| k == m);
        find(method)
            .or_else(|| (*method == Method::Head).then(|| find(&Method::Get)).flatten())
            .map(Pick::Method)
            .or(self.any.as_ref().map(|_| Pick::Any))
    }
}

/// What the table says about a request, before middleware runs.
enum Outcome {
    Route(usize, Pick),
    /// OPTIONS to a path without an OPTIONS route: these methods exist.
    Options(String),
    /// The path exists, with these methods only.
    MethodNotAllowed(String),
    WebSocketOnly,
    NotFound,
}

/// The route table: HTTP routes, the paths that accept WebSocket upgrades,
/// middleware, CORS and the access log.
///
/// **Patterns** are paths whose segments may be parameters: `/users/:id`
/// (one non-empty segment, in [`HttpRequest::param`]`("id")`), and, last, a
/// wildcard: `/files/*path` takes the rest of the path, `/`s included,
/// and may be empty (`/files/` gives `path` = `""`, while `/files` does
/// not match it). A bare `*` (`/static/*`) is the unnamed wildcard, whose
/// value is the parameter `*`. Parameter values are percent-decoded
/// (`%2F` turns into `/` inside the value; it never separates segments);
/// literal segments are compared as sent, and `/a` and `/a/` differ.
///
/// **Precedence**: at each segment a literal beats a parameter, which beats
/// a wildcard, and a branch that leads nowhere for this request's method is
/// left for the next one: with `GET /users/new` and `DELETE /users/:id`,
/// `DELETE /users/new` deletes user `new`. The lookup costs a walk down
/// the path, whatever the number of routes. On the chosen pattern the
/// request's own method wins, then (for HEAD) GET, then [`Routes::any`].
///
/// **Answers the table gives itself**: 405 with `Allow` when the path
/// matches but not the method; 204 with `Allow` to an `OPTIONS` for which
/// no route exists; 400 to a plain request to a WebSocket-only path; 404.
///
/// **Mistakes** in a pattern (a malformed one, or one that names a
/// parameter unlike an earlier pattern in the same place) are kept as a
/// [`RouteError`]: [`Server::init`](crate::Server::init) fails with it, and
/// [`Routes::check`] returns it. Registering a method and pattern again
/// replaces the handler.
///
/// ```
/// use hvws::{HttpResponse, HvWebServer, Routes};
///
/// #[derive(Default)]
/// struct Api {
///     names: Vec<String>,
/// }
///
/// impl HvWebServer for Api {
///     fn on_init(&mut self, routes: &mut Routes<Self>) {
///         routes
///             .get("/users/:id", |api: &mut Api, _, req| {
///                 let id: usize = req.param("id").and_then(|id| id.parse().ok()).unwrap_or(usize::MAX);
///                 match api.names.get(id) {
///                     Some(name) => HttpResponse::text(name.clone()),
///                     None => HttpResponse::error(404),
///                 }
///             })
///             .get("/files/*path", |_, _, req| HttpResponse::text(format!("file {:?}", req.param("path"))))
///             .any("/echo", |_, _, req| HttpResponse::text(req.method().to_string()))
///             .websocket("/chat");
///     }
/// }
///
/// let mut routes = Routes::default();
/// Api::default().on_init(&mut routes);
/// assert!(routes.check().is_ok());
/// ```
pub struct Routes<H> {
    tree: PathTree,
    endpoints: Vec<Endpoint<H>>,
    ws: PathTree,
    before: Vec<Before<H>>,
    chain: ResponseChain,
    error: Option<RouteError>,
}

impl<H> fmt::Debug for Routes<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .endpoints
            .iter()
            .flat_map(|e| {
                let methods = e.methods.iter().map(|(m, _)| m.as_str());
                let any = e.any.as_ref().map(|_| "ANY");
                methods.chain(any).map(move |m| format!("{m} {}", e.pattern))
            })
            .collect();
        f.debug_struct("Routes")
            .field("routes", &routes)
            .field("ws_paths", &self.ws.len())
            .field("before", &self.before.len())
            .field("chain", &self.chain)
            .field("error", &self.error)
            .finish()
    }
}

impl<H> Default for Routes<H> {
    fn default() -> Self {
        Routes {
            tree: PathTree::default(),
            endpoints: Vec::new(),
            ws: PathTree::default(),
            before: Vec::new(),
            chain: ResponseChain::default(),
            error: None,
        }
    }
}

impl<H> Routes<H> {
    /// Registers `handler` for `method` on `pattern` (see [`Routes`] for
    /// patterns). A later registration of the same method and pattern
    /// replaces the earlier one. `Method::Other("PURGE".into())` registers
    /// an extension method.
    pub fn route<F>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.add(Some(method), pattern, Box::new(handler))
    }

    /// Registers a GET route (also answers HEAD, without the body).
    pub fn get<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Get, pattern, handler)
    }

    /// Registers a POST route.
    pub fn post<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Post, pattern, handler)
    }

    /// Registers a PUT route.
    pub fn put<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Put, pattern, handler)
    }

    /// Registers a PATCH route.
    pub fn patch<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Patch, pattern, handler)
    }

    /// Registers a DELETE route.
    pub fn delete<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Delete, pattern, handler)
    }

    /// Registers a HEAD route (overrides the GET route's automatic HEAD).
    pub fn head<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Head, pattern, handler)
    }

    /// Registers an OPTIONS route (without one, OPTIONS gets 204 with
    /// `Allow`; a CORS preflight never reaches routes, see [`Cors`]).
    pub fn options<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Options, pattern, handler)
    }

    /// Registers a route for every method on `pattern`; a route for the
    /// request's own method on the same pattern wins over it.
    ///
    /// ```
    /// use hvws::{HttpResponse, Routes};
    /// let mut routes: Routes<()> = Routes::default();
    /// routes
    ///     .any("/proxy/*rest", |_, _, req| HttpResponse::text(format!("{} {}", req.method(), req.path())))
    ///     .get("/proxy/*rest", |_, _, _| HttpResponse::text("cached"));
    /// ```
    pub fn any<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.add(None, pattern, Box::new(handler))
    }

    fn add(&mut self, method: Option<Method>, pattern: &str, handler: RouteHandler<H>) -> &mut Self {
        let next = self.endpoints.len();
        let index = match parse_pattern(pattern).and_then(|segs| self.tree.insert(pattern, &segs, next)) {
            Ok(index) => index,
            Err(e) => return self.refuse(e),
        };
        if index == next {
            self.endpoints.push(Endpoint {
                pattern: pattern.to_owned(),
                methods: Vec::new(),
                any: None,
            });
        }
        let endpoint = &mut self.endpoints[index];
        match method {
            None => endpoint.any = Some(handler),
            Some(m) => match endpoint.methods.iter_mut().find(|(k, _)| *k == m) {
                Some(slot) => slot.1 = handler,
                None => endpoint.methods.push((m, handler)),
            },
        }
        self
    }

    /// Keeps the first mistake for `init` to report.
    fn refuse(&mut self, e: RouteError) -> &mut Self {
        log::error!("{e}");
        self.error.get_or_insert(e);
        self
    }

    /// Declares `pattern` a WebSocket endpoint (the same patterns as
    /// routes). Once any is declared, upgrades to other paths are refused
    /// with 404, and a plain request to a WebSocket-only path gets 400.
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.websocket("/chat").websocket("/rooms/:room");
    /// ```
    pub fn websocket(&mut self, pattern: &str) -> &mut Self {
        let next = self.ws.len();
        if let Err(e) = parse_pattern(pattern).and_then(|segs| self.ws.insert(pattern, &segs, next)) {
            self.refuse(e);
        }
        self
    }

    /// Adds a before-middleware: it runs for every request but CORS
    /// preflights, in registration order, after the route is chosen (so
    /// [`HttpRequest::param`] is set) and before its handler. Returning
    /// `Some` answers at once: later middleware and the handler do not run.
    /// For authentication, rate limits, request ids.
    ///
    /// ```
    /// use hvws::{HttpResponse, Routes};
    /// let mut routes: Routes<()> = Routes::default();
    /// routes
    ///     .before(|_, _, req| {
    ///         let authorized = !req.path().starts_with("/admin/") || req.header("authorization") == Some("Bearer s3cret");
    ///         (!authorized).then(|| HttpResponse::error(401))
    ///     })
    ///     .get("/admin/stats", |_, _, _| HttpResponse::text("42 players"));
    /// ```
    pub fn before<F>(&mut self, middleware: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &mut HttpRequest) -> Option<HttpResponse> + Send + 'static,
    {
        self.before.push(Box::new(middleware));
        self
    }

    /// Adds an after-middleware: it sees every response, in registration
    /// order, the ones routes give, before-middleware's early answers and
    /// the table's own 404, 405 and OPTIONS answers alike (CORS headers are
    /// on it already). It holds no application state because an answer may
    /// be finished on another thread; share what it needs through an `Arc`.
    ///
    /// ```
    /// use hvws::{HttpResponse, Routes};
    /// let mut routes: Routes<()> = Routes::default();
    /// routes.after(|_req, resp| resp.set_header("Cache-Control", "no-store"));
    /// ```
    pub fn after<F>(&mut self, middleware: F) -> &mut Self
    where
        F: Fn(&HttpRequest, &mut HttpResponse) + Send + Sync + 'static,
    {
        self.chain.after.push(Arc::new(middleware));
        self
    }

    /// Answers cross-origin requests by `cors` (see [`Cors`]); a later call
    /// replaces the policy.
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.cors(hvws::Cors::new().allow_any_origin());
    /// ```
    pub fn cors(&mut self, cors: Cors) -> &mut Self {
        self.chain.cors = Some(Arc::new(cors));
        self
    }

    /// Logs one line per response (off by default) through the `log`
    /// crate, at `info` with target `hvws::access`: the peer, the request
    /// line, the status, the body's length and the milliseconds since the
    /// tick that read the request began, e.g.
    /// `127.0.0.1:50312 "GET /users/7 HTTP/1.1" 200 12 0.084ms`.
    ///
    /// ```
    /// let mut routes: hvws::Routes<()> = hvws::Routes::default();
    /// routes.access_log(true);
    /// ```
    pub fn access_log(&mut self, on: bool) -> &mut Self {
        self.chain.access_log = on;
        self
    }

    /// The first mistake among the patterns registered so far, if any:
    /// what [`Server::init`](crate::Server::init) would fail with.
    ///
    /// ```
    /// use hvws::{HttpResponse, RouteError, Routes};
    /// let mut routes: Routes<()> = Routes::default();
    /// routes.get("/files/*path/raw", |_, _, _| HttpResponse::new(200));
    /// assert_eq!(
    ///     routes.check(),
    ///     Err(RouteError::MisplacedWildcard { pattern: "/files/*path/raw".into() })
    /// );
    /// ```
    pub fn check(&self) -> Result<(), RouteError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    /// Whether an upgrade to `path` is allowed.
    #[cfg(test)]
    pub(crate) fn accepts_websocket(&self, path: &str) -> bool {
        self.ws.len() == 0 || self.ws.lookup(path, &|_| true, &mut Vec::new()).is_some()
    }

    /// Whether an upgrade to `req`'s path is allowed; if so, the pattern's
    /// parameters (`/rooms/:room`) are set on `req`, for
    /// `on_ws_handshake` to read with [`HttpRequest::param`].
    pub(crate) fn match_websocket(&self, req: &mut HttpRequest) -> bool {
        if self.ws.len() == 0 {
            return true;
        }
        let mut captures = Vec::new();
        if self.ws.lookup(req.path(), &|_| true, &mut captures).is_none() {
            return false;
        }
        let params = captures
            .iter()
            .map(|(k, v)| ((*k).to_owned(), decode_param(v)))
            .collect();
        req.params = params;
        true
    }

    /// What finishes every response, for answers given after their tick.
    pub(crate) fn response_chain(&self) -> ResponseChain {
        self.chain.clone()
    }

    /// Answers a plain HTTP request: a CORS preflight at once; otherwise
    /// the route is chosen (setting `req`'s parameters), before-middleware
    /// runs, then the handler (or the table's own answer); the answer
    /// passes through the response chain unless it is deferred.
    ///
    /// Panics in middleware and handlers unwind out of here; the caller
    /// catches them and answers with [`Routes::internal_error`].
    pub(crate) fn handle(&mut self, state: &mut H, ctx: &mut Context<'_>, req: &mut HttpRequest) -> HttpResponse {
        let started = ctx.core.now;
        let mut resp = self.answer(state, ctx, req);
        self.chain.apply(req, &mut resp, || started.elapsed());
        resp
    }

    fn answer(&mut self, state: &mut H, ctx: &mut Context<'_>, req: &mut HttpRequest) -> HttpResponse {
        if let Some(preflight) = self.chain.cors.as_ref().and_then(|c| c.preflight(req)) {
            return preflight;
        }
        let outcome = self.resolve(req);
        for middleware in &mut self.before {
            if let Some(early) = middleware(state, ctx, req) {
                return early;
            }
        }
        match outcome {
            Outcome::Route(index, pick) => {
                let endpoint = &mut self.endpoints[index];
                let handler = match pick {
                    Pick::Method(i) => &mut endpoint.methods[i].1,
                    Pick::Any => endpoint.any.as_mut().expect("picked because it exists"),
                };
                handler(state, ctx, req)
            }
            Outcome::Options(allow) => HttpResponse::new(204).with_header("Allow", &allow),
            Outcome::MethodNotAllowed(allow) => HttpResponse::error(405).with_header("Allow", &allow),
            Outcome::WebSocketOnly => HttpResponse::text("this path accepts WebSocket upgrades only").with_status(400),
            Outcome::NotFound => HttpResponse::error(404),
        }
    }

    /// Chooses what answers `req` and sets its path parameters.
    fn resolve(&self, req: &mut HttpRequest) -> Outcome {
        let method = req.method();
        let endpoints = &self.endpoints;
        let mut captures = Vec::new();
        // The handler the lookup accepted, kept rather than picked again.
        let picked = std::cell::Cell::new(None);
        let accept = |i: usize| {
            let pick = endpoints[i].pick(method);
            picked.set(pick);
            pick.is_some()
        };
        let found = self.tree.lookup(req.path(), &accept, &mut captures);
        if let (Some(index), Some(pick)) = (found, picked.get()) {
            // (Collecting nothing into the empty list there was cost more
            // than the rest of a short path's routing.)
            if !captures.is_empty() || !req.params.is_empty() {
                req.params = captures
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), decode_param(v)))
                    .collect();
            }
            return Outcome::Route(index, pick);
        }
        let mut methods: Vec<&Method> = Vec::new();
        self.tree.matching(req.path(), &mut |i| {
            methods.extend(endpoints[i].methods.iter().map(|(m, _)| m));
        });
        if !methods.is_empty() {
            return match method {
                Method::Options => Outcome::Options(allow_list(methods, true)),
                _ => Outcome::MethodNotAllowed(allow_list(methods, false)),
            };
        }
        if self.ws.lookup(req.path(), &|_| true, &mut Vec::new()).is_some() {
            return Outcome::WebSocketOnly;
        }
        Outcome::NotFound
    }

    /// The 500 for a request whose middleware or handler panicked, through
    /// the response chain, unless an after-middleware is what panicked
    /// (then the bare 500).
    pub(crate) fn internal_error(&self, req: &HttpRequest, started: Instant) -> HttpResponse {
        let mut resp = HttpResponse::error(500);
        let finished = catch_unwind(AssertUnwindSafe(|| {
            self.chain.apply(req, &mut resp, || started.elapsed());
            resp
        }));
        finished.unwrap_or_else(|_| HttpResponse::error(500))
    }
}

/// The `Allow` header for `methods`: in a fixed order (the common methods,
/// then the others sorted), without repeats, HEAD wherever GET is, and
/// OPTIONS if `options` (the table answers it itself).
fn allow_list(methods: Vec<&Method>, options: bool) -> String {
    const ORDER: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];
    let has = |m: &Method| methods.contains(&m);
    let mut allow: Vec<&str> = ORDER
        .iter()
        .filter(|m| has(m) || (**m == Method::Head && has(&Method::Get)) || (**m == Method::Options && options))
        .map(Method::as_str)
        .collect();
    let mut others: Vec<&str> = methods
        .iter()
        .filter(|m| matches!(m, Method::Other(_)))
        .map(|m| m.as_str())
        .collect();
    others.sort_unstable();
    others.dedup();
    allow.extend(others);
    allow.join(", ")
}
