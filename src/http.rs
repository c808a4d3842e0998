//! HTTP on the WebSocket port: requests, responses and the route table that
//! [`HvWebServer::on_init`](crate::HvWebServer::on_init) fills.

use std::fmt;
use std::net::SocketAddr;

use crate::server::Context;

/// An HTTP request method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD; answered by the GET route when no HEAD route is registered.
    Head,
    /// OPTIONS
    Options,
    /// Any other method token, as sent.
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, as RFC 9110 says).
    pub fn parse(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed HTTP/1.x request: also what a WebSocket handshake looks like to
/// [`HvWebServer::on_ws_handshake`](crate::HvWebServer::on_ws_handshake).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) path_len: usize,
    pub(crate) minor_version: u8,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) peer: SocketAddr,
}

impl HttpRequest {
    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as sent: path and query (`/chat?room=1`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path, without the query string (`/chat`).
    pub fn path(&self) -> &str {
        &self.target[..self.path_len]
    }

    /// The raw query string without `?`, or `""`.
    pub fn query(&self) -> &str {
        self.target.get(self.path_len + 1..).unwrap_or("")
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query()).find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        query_pairs(self.query()).collect()
    }

    /// The value of header `name` (case-insensitive), the first if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as (lower-cased name, value), in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body (empty unless the request had a `Content-Length`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text, `None` if it is not.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }
}

/// Splits `a=1&b=x%20y` into decoded pairs; `+` is a space, as in forms.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = match b[i] {
            b'+' => Some((b' ', 1)),
            b'%' if i + 2 < b.len() => hex(b[i + 1]).zip(hex(b[i + 2])).map(|(h, l)| (h << 4 | l, 3)),
            _ => None,
        };
        let (byte, step) = decoded.unwrap_or((b[i], 1));
        out.push(byte);
        i += step;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP response built by a route handler.
///
/// ```
/// use hvws::HttpResponse;
/// let r = HttpResponse::text("pong").with_header("Cache-Control", "no-store");
/// assert_eq!(r.status(), 200);
/// assert_eq!(r.body(), b"pong");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> HttpResponse {
        HttpResponse::bytes("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// 200 with a JSON body given as an already-serialized string.
    pub fn json(body: impl Into<String>) -> HttpResponse {
        HttpResponse::bytes("application/json", body.into().into_bytes())
    }

    /// 200 with a `text/html; charset=utf-8` body.
    pub fn html(body: impl Into<String>) -> HttpResponse {
        HttpResponse::bytes("text/html; charset=utf-8", body.into().into_bytes())
    }

    /// 200 with an arbitrary body and content type.
    pub fn bytes(content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::new(200)
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    /// A plain-text response with `status` whose body is the reason phrase,
    /// for errors.
    pub fn error(status: u16) -> HttpResponse {
        HttpResponse::text(reason_phrase(status)).with_status(status)
    }

    /// Replaces the status code.
    pub fn with_status(mut self, status: u16) -> HttpResponse {
        self.status = status;
        self
    }

    /// Adds a header. `Content-Length` and `Connection` are set by the server
    /// and ignored here.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The standard reason phrase for `status`.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A route handler: reads and changes the server's state `H`, may send to
/// WebSocket channels through the [`Context`], and returns the response.
pub type RouteHandler<H> = Box<dyn FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send>;

struct Route<H> {
    method: Method,
    pattern: String,
    handler: RouteHandler<H>,
}

/// The route table: HTTP routes and the paths that accept WebSocket upgrades.
///
/// Patterns are exact paths (`/ping`) or a prefix ending in `*`
/// (`/static/*`). If no WebSocket path is registered with
/// [`Routes::websocket`], upgrades are accepted on every path.
pub struct Routes<H> {
    routes: Vec<Route<H>>,
    ws_paths: Vec<String>,
}

impl<H> fmt::Debug for Routes<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        f.debug_struct("Routes")
            .field("routes", &routes)
            .field("ws_paths", &self.ws_paths)
            .finish()
    }
}

impl<H> Default for Routes<H> {
    fn default() -> Self {
        Routes {
            routes: Vec::new(),
            ws_paths: Vec::new(),
        }
    }
}

/// What the route table says about a request.
pub(crate) enum RouteMatch<'r, H> {
    Found(&'r mut RouteHandler<H>),
    /// The path exists, with these methods only.
    MethodNotAllowed(String),
    /// The path takes WebSocket upgrades only.
    WebSocketOnly,
    NotFound,
}

fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

impl<H> Routes<H> {
    /// Registers `handler` for `method` on `pattern`. A later registration of
    /// the same method and pattern replaces the earlier one.
    pub fn route<F>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.routes.retain(|r| !(r.method == method && r.pattern == pattern));
        self.routes.push(Route {
            method,
            pattern: pattern.to_owned(),
            handler: Box::new(handler),
        });
        self
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

    /// Registers an OPTIONS route.
    pub fn options<F>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: FnMut(&mut H, &mut Context<'_>, &HttpRequest) -> HttpResponse + Send + 'static,
    {
        self.route(Method::Options, pattern, handler)
    }

    /// Declares `pattern` a WebSocket endpoint. Once any is declared, upgrades
    /// to other paths are refused with 404, and a plain GET to a WebSocket-only
    /// path gets 400.
    pub fn websocket(&mut self, pattern: &str) -> &mut Self {
        self.ws_paths.push(pattern.to_owned());
        self
    }

    /// Whether an upgrade to `path` is allowed.
    pub(crate) fn accepts_websocket(&self, path: &str) -> bool {
        self.ws_paths.is_empty() || self.ws_paths.iter().any(|p| matches(p, path))
    }

    pub(crate) fn find(&mut self, method: &Method, path: &str) -> RouteMatch<'_, H> {
        let pick = |want: &Method| {
            self.routes
                .iter()
                .position(|r| &r.method == want && matches(&r.pattern, path))
        };
        let idx = pick(method).or_else(|| (*method == Method::Head).then(|| pick(&Method::Get)).flatten());
        if let Some(i) = idx {
            return RouteMatch::Found(&mut self.routes[i].handler);
        }
        let mut allowed: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| matches(&r.pattern, path))
            .map(|r| r.method.as_str())
            .collect();
        if !allowed.is_empty() {
            if allowed.contains(&"GET") && !allowed.contains(&"HEAD") {
                allowed.push("HEAD");
            }
            return RouteMatch::MethodNotAllowed(allowed.join(", "));
        }
        if self.ws_paths.iter().any(|p| matches(p, path)) {
            return RouteMatch::WebSocketOnly;
        }
        RouteMatch::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            target: target.to_owned(),
            path_len: target.find('?').unwrap_or(target.len()),
            minor_version: 1,
            headers: vec![("x-api-key".into(), "s3cret".into())],
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn path_query_and_params() {
        let r = req("/chat?room=main%20hall&token=a+b&flag&room=2");
        assert_eq!(r.path(), "/chat");
        assert_eq!(r.query(), "room=main%20hall&token=a+b&flag&room=2");
        assert_eq!(r.query_param("room").as_deref(), Some("main hall"));
        assert_eq!(r.query_param("token").as_deref(), Some("a b"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("none"), None);
        assert_eq!(r.query_params().len(), 4);
        assert_eq!(r.header("X-API-Key"), Some("s3cret"));
        assert_eq!(req("/plain").query(), "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("é%C3%A9%é"), "éé%é");
    }

    #[test]
    fn route_lookup() {
        let mut routes: Routes<()> = Routes::default();
        routes
            .get("/ping", |_, _, _| HttpResponse::text("pong"))
            .post("/items", |_, _, _| HttpResponse::new(201))
            .get("/static/*", |_, _, _| HttpResponse::text("file"))
            .websocket("/chat");
        assert!(matches!(routes.find(&Method::Get, "/ping"), RouteMatch::Found(_)));
        assert!(matches!(routes.find(&Method::Head, "/ping"), RouteMatch::Found(_)));
        assert!(matches!(
            routes.find(&Method::Get, "/static/a/b.css"),
            RouteMatch::Found(_)
        ));
        match routes.find(&Method::Delete, "/ping") {
            RouteMatch::MethodNotAllowed(allow) => assert_eq!(allow, "GET, HEAD"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(routes.find(&Method::Get, "/chat"), RouteMatch::WebSocketOnly));
        assert!(matches!(routes.find(&Method::Get, "/nope"), RouteMatch::NotFound));
        assert!(routes.accepts_websocket("/chat"));
        assert!(!routes.accepts_websocket("/ping"));
        assert!(Routes::<()>::default().accepts_websocket("/anything"));
    }
}
