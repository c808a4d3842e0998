//! HTTP responses: what a route handler returns (a body in memory, a file
//! streamed from disk, or a late answer), and the reason phrases.

use std::borrow::Cow;
use std::fs::File;
use std::sync::Arc;

use super::fields::Fields;

/// The `Content-Type` name, a constant so responses built here do not copy
/// it.
const CONTENT_TYPE: &str = "Content-Type";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const OCTET_STREAM: &str = "application/octet-stream";

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
    pub(crate) headers: Fields,
    pub(crate) body: Body,
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Fields::default(),
            body: Body::Bytes(Vec::new()),
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> HttpResponse {
        HttpResponse::typed(TEXT_PLAIN, body.into().into_bytes())
    }

    /// 200 with a body and a constant content type (no copy of either
    /// name or value).
    fn typed(content_type: &'static str, body: Vec<u8>) -> HttpResponse {
        // Built in place: chaining `with_*` moved the whole response once
        // per call.
        let mut headers = Fields::default();
        headers.push(Cow::Borrowed(CONTENT_TYPE), Cow::Borrowed(content_type));
        HttpResponse {
            status: 200,
            headers,
            body: Body::Bytes(body),
        }
    }

    /// Adds a header whose name and value are constants, without copying
    /// them.
    pub(crate) fn with_static_header(mut self, name: &'static str, value: &'static str) -> HttpResponse {
        self.headers.push(Cow::Borrowed(name), Cow::Borrowed(value));
        self
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
            Ok(body) => HttpResponse::typed(JSON, body),
            Err(e) => HttpResponse::text(format!("cannot serialize the response: {e}")).with_status(500),
        }
    }

    /// 200 with a JSON body given as an already-serialized string.
    pub fn json_text(body: impl Into<String>) -> HttpResponse {
        HttpResponse::typed(JSON, body.into().into_bytes())
    }

    /// 200 with a `text/html; charset=utf-8` body.
    pub fn html(body: impl Into<String>) -> HttpResponse {
        HttpResponse::typed(TEXT_HTML, body.into().into_bytes())
    }

    /// 200 with an arbitrary body and content type.
    pub fn bytes(content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::new(200)
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    /// 200 with `body` as `application/octet-stream`.
    pub fn binary(body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::typed(OCTET_STREAM, body.into())
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
            headers: Fields::default(),
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
            headers: Fields::default(),
            body: Body::Deferred,
        }
    }

    /// The head of a Server-Sent Events stream: 200,
    /// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, for
    /// [`Context::start_stream`](crate::Context::start_stream).
    pub fn event_stream() -> HttpResponse {
        HttpResponse::new(200)
            .with_static_header(CONTENT_TYPE, "text/event-stream")
            .with_static_header("Cache-Control", "no-cache")
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
        self.headers.push(name.to_owned().into(), value.to_owned().into());
        self
    }

    /// Sets header `name` to `value`, replacing any value it had.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.remove(name);
        self.headers.push(name.to_owned().into(), value.to_owned().into());
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
        self.headers.get(name)
    }

    /// Every header as (name, value), in order.
    ///
    /// A response keeps constant names and values (its `Content-Type`)
    /// without copying them; these owned pairs are made on the first call
    /// and kept.
    ///
    /// ```
    /// let r = hvws::HttpResponse::text("hi").with_header("X-N", "1");
    /// assert_eq!(r.headers()[1], ("X-N".to_owned(), "1".to_owned()));
    /// assert_eq!(r.headers()[0].1, "text/plain; charset=utf-8");
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        self.headers.owned()
    }

    /// Every header as (name, value), borrowed, in order.
    pub(crate) fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter()
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
