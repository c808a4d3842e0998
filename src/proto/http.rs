//! HTTP requests and responses: the data a server connection reads and
//! writes. Routing them is the crate's business (`crate::Routes`).

use std::fmt;
use std::net::SocketAddr;

use super::head::HeadText;
pub(crate) use super::response::Body;
pub use super::response::{reason_phrase, HttpResponse};

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
    /// The target and the headers, in one string.
    pub(crate) head: HeadText,
    pub(crate) path_len: usize,
    pub(crate) minor_version: u8,
    pub(crate) body: Vec<u8>,
    /// Path parameters (`:id`, `*path`) the route matched, set by the
    /// router before the handler runs.
    pub(crate) params: Vec<(String, String)>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: Option<Box<super::info::TlsInfo>>,
    /// What the layer above attached before the handler runs (the form it
    /// parsed from a urlencoded or multipart body): opaque here, so the
    /// core names no type from above it.
    pub(crate) form: Attachment,
}

/// A value of any type carried with a request for the layers above the
/// core. Cloning a request shares it.
#[derive(Clone, Default)]
pub(crate) struct Attachment(Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>);

impl Attachment {
    /// Attaches `value`, replacing what was attached.
    pub(crate) fn set<T: std::any::Any + Send + Sync>(&mut self, value: T) {
        self.0 = Some(std::sync::Arc::new(value));
    }

    /// The attached value, if one of type `T` is.
    pub(crate) fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }

    /// Whether something is attached.
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Attachment(..)"
        } else {
            "Attachment(none)"
        })
    }
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
        self.head.target()
    }

    /// The path, without the query string (`/chat`).
    pub fn path(&self) -> &str {
        &self.target()[..self.path_len]
    }

    /// The raw query string without `?`, or `""`.
    pub fn query(&self) -> &str {
        self.target().get(self.path_len + 1..).unwrap_or("")
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
        self.head.get(name)
    }

    /// Every header as (lower-cased name, value), in order.
    ///
    /// The request keeps its headers in one string; these owned pairs are
    /// made on the first call and kept (a handler that only asks for
    /// [`HttpRequest::header`] never pays for them).
    ///
    /// ```
    /// let req = hvws::HttpRequest::builder(hvws::Method::Get, "/").header("Host", "a").header("X-N", "1").build();
    /// assert_eq!(req.headers(), [("host".to_owned(), "a".to_owned()), ("x-n".to_owned(), "1".to_owned())]);
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        self.head.owned()
    }

    /// Every header as (lower-cased name, value), borrowed, in order.
    pub(crate) fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.head.pairs()
    }

    /// Every value of header `name` (any case), in order.
    pub(crate) fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.values(name)
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
        self.head.push(name, value);
    }

    /// Removes every value of header `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.head.remove(name);
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

    /// A request with nothing in it yet, from `peer`, for the parser to
    /// fill.
    pub(crate) fn empty(peer: SocketAddr) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            head: HeadText::default(),
            path_len: 0,
            minor_version: 1,
            body: Vec::new(),
            params: Vec::new(),
            peer,
            tls: None,
            form: Attachment::default(),
        }
    }

    /// Lets go of what an answered request holds beyond its head buffer
    /// (which the next request read reuses): its body, parameters, form.
    /// A head buffer over 16 KiB (a raised `max_request_head`) goes too.
    pub(crate) fn clear_for_reuse(&mut self) {
        self.body = Vec::new();
        self.params = Vec::new();
        self.form = Attachment::default();
        self.tls = None;
        if self.head.capacity() > 16 << 10 {
            self.head = HeadText::default();
        }
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
                head: HeadText::new(target),
                path_len: target.find('?').unwrap_or(target.len()),
                minor_version: 1,
                body: Vec::new(),
                params: Vec::new(),
                peer: SocketAddr::from(([127, 0, 0, 1], 1)),
                tls: None,
                form: Attachment::default(),
            },
        }
    }
}

impl RequestBuilder {
    /// Adds a header (its name is lower-cased, as the server does).
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        self.req.head.push(name, value);
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
    String::from_utf8_lossy(&percent_decode_bytes(s.as_bytes(), true)).into_owned()
}

/// Percent-decodes `raw`: `%XX` is that byte, a `%` without two hex digits
/// stays as it is, and `+` is a space when `plus_is_space` (a query's or a
/// form's rule; in a path `+` is itself). The query, the router's
/// parameters and forms all decode with this.
///
/// ```
/// use hvws::proto::http::percent_decode_bytes;
/// assert_eq!(percent_decode_bytes(b"a+b%2Fc%zz", true), b"a b/c%zz");
/// assert_eq!(percent_decode_bytes(b"a+b", false), b"a+b");
/// ```
pub fn percent_decode_bytes(raw: &[u8], plus_is_space: bool) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let decoded = match raw[i] {
            b'+' if plus_is_space => Some((b' ', 1)),
            b'%' if i + 2 < raw.len() => hex(raw[i + 1]).zip(hex(raw[i + 2])).map(|(h, l)| (h << 4 | l, 3)),
            _ => None,
        };
        let (byte, step) = decoded.unwrap_or((raw[i], 1));
        out.push(byte);
        i += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            head: {
                let mut head = HeadText::new(target);
                head.push("x-api-key", "s3cret");
                head
            },
            path_len: target.find('?').unwrap_or(target.len()),
            minor_version: 1,
            body: Vec::new(),
            params: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
            tls: None,
            form: Attachment::default(),
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

#[cfg(test)]
mod sizes {
    use super::*;
    use std::mem::size_of;

    /// A request (248 bytes) and a response (120), measured on x86_64
    /// Linux: both are moved several times between the parser, the handler
    /// and the encoder, and a response under 128 bytes keeps
    /// `Result<_, HttpResponse>` small (clippy's `result_large_err`). A
    /// request's headers live in one string (`head.rs`), their offsets
    /// inline for up to 15 headers. Lower these when you cut.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn requests_and_responses_stay_this_small() {
        assert!(size_of::<HttpResponse>() <= 120, "{}", size_of::<HttpResponse>());
        assert!(size_of::<HttpRequest>() <= 248, "{}", size_of::<HttpRequest>());
    }

    #[test]
    fn headers_set_and_removed_after_headers_was_called() {
        let mut req = HttpRequest::builder(Method::Get, "/a?q=1")
            .header("X-A", "1")
            .header("x-b", "2")
            .header("X-A", "3")
            .build();
        assert_eq!(req.headers().len(), 3);
        assert_eq!(req.header_values("x-a").collect::<Vec<_>>(), ["1", "3"]);
        req.set_header("X-A", "4");
        assert_eq!(
            req.headers(),
            [("x-b".to_owned(), "2".to_owned()), ("x-a".to_owned(), "4".to_owned())]
        );
        req.remove_header("X-B");
        assert_eq!(req.headers(), [("x-a".to_owned(), "4".to_owned())]);
        assert_eq!((req.path(), req.query()), ("/a", "q=1"), "the target is untouched");
    }

    #[test]
    fn a_recycled_request_keeps_only_its_buffer() {
        let mut req = HttpRequest::builder(Method::Post, "/big")
            .header("Host", "x")
            .body(vec![7u8; 1 << 16])
            .param("id", "1")
            .build();
        req.clear_for_reuse();
        assert!(req.body().is_empty() && req.params().is_empty());
        assert!(req.head.capacity() > 0, "kept for the next head");
    }
}
