//! HTTP requests and responses: the data a server connection reads and
//! writes. Routing them is the crate's business (`crate::Routes`).

use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;

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
    /// Path parameters (`:id`, `*path`) the route matched, set by the
    /// router before the handler runs.
    pub(crate) params: Vec<(String, String)>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: Option<Box<super::info::TlsInfo>>,
    /// The form the dispatcher parsed from a urlencoded or multipart body
    /// (`crate::http::form`), before the handler runs.
    pub(crate) form: Option<Box<crate::Form>>,
}

impl HttpRequest {
    /// What TLS agreed on, for a request that came over https; `None` for
    /// plain http.
    pub fn tls(&self) -> Option<&super::info::TlsInfo> {
        self.tls.as_deref()
    }

    /// `"https"` for a request that came over TLS, else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

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

    /// The path parameter `name` of the route that matched (`id` for
    /// `/users/:id`, `path` for `/files/*path`), percent-decoded.
    ///
    /// ```
    /// # let req = hvws::HttpRequest::builder(hvws::Method::Get, "/users/7").param("id", "7").build();
    /// assert_eq!(req.param("id"), Some("7"));
    /// assert_eq!(req.param("nope"), None);
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every path parameter as (name, value), in pattern order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
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

    /// Sets header `name` (stored lower-cased) to `value`, replacing every
    /// value it had: for a before-middleware that tags a request (a request
    /// id, the user an auth check found) for the route after it.
    ///
    /// ```
    /// let mut req = hvws::HttpRequest::builder(hvws::Method::Get, "/").header("X-User", "spoofed").build();
    /// req.set_header("X-User", "alice");
    /// assert_eq!(req.header("x-user"), Some("alice"));
    /// ```
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// Removes every value of header `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// The body, read whole (a `Content-Length` or a chunked one). Empty
    /// for a `multipart/form-data` upload, which is parsed into
    /// [`HttpRequest::form`] as it arrives instead of being held.
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

#[cfg(feature = "json")]
impl HttpRequest {
    /// The body parsed as JSON into `T`. A bad body is a
    /// [`JsonBodyError`], which turns into the 400 to answer with:
    ///
    /// ```
    /// use hvws::{HttpRequest, HttpResponse, Method};
    /// let req = HttpRequest::builder(Method::Post, "/api/echo").body("{oops").build();
    /// let resp = match req.json::<serde_json::Value>() {
    ///     Ok(v) => HttpResponse::json(&v),
    ///     Err(e) => e.into(),
    /// };
    /// assert_eq!(resp.status(), 400);
    /// assert!(resp.body().starts_with(b"parse error: "));
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, JsonBodyError> {
        serde_json::from_slice(&self.body).map_err(JsonBodyError)
    }
}

/// A request body that is not the JSON a handler asked for
/// ([`HttpRequest::json`]). Answer with it: `HttpResponse::from(e)` is a
/// 400 whose text body is `parse error: ` and serde_json's message.
#[cfg(feature = "json")]
#[derive(Debug, thiserror::Error)]
#[error("parse error: {0}")]
pub struct JsonBodyError(#[source] pub serde_json::Error);

#[cfg(feature = "json")]
impl From<JsonBodyError> for HttpResponse {
    fn from(e: JsonBodyError) -> HttpResponse {
        HttpResponse::text(e.to_string()).with_status(400)
    }
}

/// Builds an [`HttpRequest`] without a network: for testing route
/// handlers, middleware and helpers.
///
/// ```
/// use hvws::{HttpRequest, Method};
/// let req = HttpRequest::builder(Method::Get, "/search?q=a%20b")
///     .header("Cookie", "session=abc")
///     .build();
/// assert_eq!(req.query_param("q").as_deref(), Some("a b"));
/// assert_eq!(req.header("cookie"), Some("session=abc"));
/// ```
#[derive(Debug)]
pub struct RequestBuilder {
    pub(crate) req: HttpRequest,
}

impl HttpRequest {
    /// A builder for a request with `method` and `target` (path and query),
    /// HTTP/1.1, from `127.0.0.1:1`, without headers or body.
    pub fn builder(method: Method, target: &str) -> RequestBuilder {
        RequestBuilder {
            req: HttpRequest {
                method,
                target: target.to_owned(),
                path_len: target.find('?').unwrap_or(target.len()),
                minor_version: 1,
                headers: Vec::new(),
                body: Vec::new(),
                params: Vec::new(),
                peer: SocketAddr::from(([127, 0, 0, 1], 1)),
                tls: None,
                form: None,
            },
        }
    }
}

impl RequestBuilder {
    /// Adds a header (its name is lower-cased, as the server does).
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        self.req.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RequestBuilder {
        self.req.body = body.into();
        self
    }

    /// Adds a path parameter, as the router would.
    pub fn param(mut self, name: &str, value: &str) -> RequestBuilder {
        self.req.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the client's address.
    pub fn peer(mut self, peer: SocketAddr) -> RequestBuilder {
        self.req.peer = peer;
        self
    }

    /// `0` for an HTTP/1.0 request.
    pub fn minor_version(mut self, minor: u8) -> RequestBuilder {
        self.req.minor_version = minor;
        self
    }

    /// The request.
    pub fn build(self) -> HttpRequest {
        self.req
    }
}

/// Splits `a=1&b=x%20y` into decoded pairs; `+` is a space, as in forms.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
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

/// What follows a response's head.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`, read from disk in pieces as the
    /// socket drains (so a large file costs a bounded amount of memory).
    File { file: Arc<File>, offset: u64, len: u64 },
    /// The handler called [`Context::defer`](crate::Context::defer): the
    /// answer comes on a later tick.
    Deferred,
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Bytes(a), Body::Bytes(b)) => a == b,
            (
                Body::File { file, offset, len },
                Body::File {
                    file: f2,
                    offset: o2,
                    len: l2,
                },
            ) => Arc::ptr_eq(file, f2) && offset == o2 && len == l2,
            (Body::Deferred, Body::Deferred) => true,
            _ => false,
        }
    }
}

impl Eq for Body {}

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
    pub(crate) body: Body,
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> HttpResponse {
        HttpResponse::bytes("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// 200 with `value` serialized as the JSON body (`application/json`).
    ///
    /// ```
    /// let r = hvws::HttpResponse::json(&serde_json::json!({"status": "ok", "version": 3}));
    /// assert_eq!(r.body(), br#"{"status":"ok","version":3}"#);
    /// assert_eq!(r.header("content-type"), Some("application/json"));
    /// ```
    ///
    /// A value that cannot be serialized (a map with non-string keys) gives
    /// a 500 whose body says why, rather than a panic.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> HttpResponse {
        match serde_json::to_vec(value) {
            Ok(body) => HttpResponse::bytes("application/json", body),
            Err(e) => HttpResponse::text(format!("cannot serialize the response: {e}")).with_status(500),
        }
    }

    /// 200 with a JSON body given as an already-serialized string.
    pub fn json_text(body: impl Into<String>) -> HttpResponse {
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

    /// 200 with `body` as `application/octet-stream`.
    pub fn binary(body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::bytes("application/octet-stream", body)
    }

    /// A redirect: `status` (301, 302, 303, 307 or 308) with `Location`.
    ///
    /// ```
    /// let r = hvws::HttpResponse::redirect(301, "/new-path");
    /// assert_eq!((r.status(), r.header("location")), (301, Some("/new-path")));
    /// ```
    pub fn redirect(status: u16, location: &str) -> HttpResponse {
        HttpResponse::new(status).with_header("Location", location)
    }

    /// 200 with `len` bytes of `file` from `offset` as the body: the file
    /// is read in pieces as the socket drains, never whole into memory.
    /// [`serve_file`](crate::serve_file) builds one with the validators,
    /// ranges and content type filled in.
    pub fn file(file: File, offset: u64, len: u64) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: Body::File {
                file: Arc::new(file),
                offset,
                len,
            },
        }
    }

    /// What a route handler returns after [`Context::defer`](crate::Context::defer):
    /// the answer is given later with [`Context::respond`](crate::Context::respond)
    /// or the [`ServerHandle`](crate::ServerHandle). Returned without
    /// `defer`, it is a 500.
    pub fn deferred() -> HttpResponse {
        HttpResponse {
            status: 0,
            headers: Vec::new(),
            body: Body::Deferred,
        }
    }

    /// The head of a Server-Sent Events stream: 200,
    /// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, for
    /// [`Context::start_stream`](crate::Context::start_stream).
    pub fn event_stream() -> HttpResponse {
        HttpResponse::new(200)
            .with_header("Content-Type", "text/event-stream")
            .with_header("Cache-Control", "no-cache")
    }

    /// A whole event stream known now (dasHV's `SSE` route, which answers
    /// with its event list at once): [`HttpResponse::event_stream`]'s head
    /// with `events` encoded as the body, and a length, so the client
    /// sees the stream end after the last event.
    ///
    /// ```
    /// use hvws::{HttpResponse, SseEvent};
    /// let r = HttpResponse::events(&[SseEvent::new("hi").event("echo")]);
    /// assert_eq!(r.body(), b"event: echo\ndata: hi\n\n");
    /// assert_eq!(r.header("content-type"), Some("text/event-stream"));
    /// ```
    pub fn events(events: &[super::sse::SseEvent]) -> HttpResponse {
        let mut body = Vec::new();
        for e in events {
            e.encode(&mut body);
        }
        HttpResponse::event_stream().with_body(body)
    }

    /// 201 Created with `Location` naming the new resource.
    pub fn created(location: &str) -> HttpResponse {
        HttpResponse::new(201).with_header("Location", location)
    }

    /// Whether this is [`HttpResponse::deferred`].
    pub fn is_deferred(&self) -> bool {
        self.body == Body::Deferred
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

    /// Adds a header. `Content-Length`, `Transfer-Encoding` and
    /// `Connection` are set by the server and ignored here.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets header `name` to `value`, replacing any value it had.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = Body::Bytes(body.into());
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body in memory; empty for a file body (see
    /// [`HttpResponse::body_len`]).
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Body::Bytes(b) => b,
            _ => &[],
        }
    }

    /// The body's length, a file body's included.
    pub fn body_len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Deferred => 0,
        }
    }

    /// The value of header `name` (case-insensitive), the first if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as (name, value), in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A file body as (file, offset, len), for tests that check which
    /// bytes would be sent.
    #[cfg(test)]
    pub(crate) fn file_body(&self) -> Option<(&File, u64, u64)> {
        match &self.body {
            Body::File { file, offset, len } => Some((file.as_ref(), *offset, *len)),
            _ => None,
        }
    }
}

/// The standard reason phrase for `status`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        // RFC 9110 lets the phrase be anything; the class says enough.
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
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
            params: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
            tls: None,
            form: None,
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
}
