//! What an HTTP client application implements ([`HvHttpClient`]) and what
//! its callbacks are given: a [`RequestId`], the response head, each
//! [`BodyChunk`] as it arrives, the complete [`ClientResponse`].

use std::borrow::Cow;
use std::fmt;

use crate::error::HttpClientError;
use crate::proto::http_client::ResponseHead;

/// Names a request given to [`HttpClient::request`](crate::HttpClient::request)
/// in the callbacks about it. Small and `Copy`; the generation keeps an
/// id from naming a later request that reuses its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub(crate) key: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request {}.{}", self.key, self.generation)
    }
}

/// A piece of a response body as it came off the wire (decoded from the
/// chunked coding), for dasHV HV-07's `request_cb`.
#[derive(Debug)]
pub struct BodyChunk<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) index: u32,
    pub(crate) offset: u64,
}

impl<'a> BodyChunk<'a> {
    /// The bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The bytes as text, invalid UTF-8 replaced by U+FFFD. A character
    /// may be cut between two pieces: for text that must be exact, collect
    /// the bytes (or keep the body) and decode once.
    pub fn text(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.data)
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it holds no bytes (never, for a chunk handed out).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// 1 for the first piece of this response's body, 2 for the next...
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Where in the body it starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct ClientResponse {
    pub(crate) head: ResponseHead,
    pub(crate) body: Vec<u8>,
    pub(crate) url: String,
    pub(crate) redirects: u32,
    pub(crate) body_len: u64,
}

impl ClientResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// The reason phrase as the server sent it.
    pub fn reason(&self) -> &str {
        self.head.reason()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// Every value of header `name`, in order (several `Set-Cookie`).
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.header_all(name)
    }

    /// Every header as (name as sent, value), in order.
    pub fn headers(&self) -> &[(String, String)] {
        self.head.headers()
    }

    /// The head: status line and headers.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The body (empty for a request sent with `keep_body(false)`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as text, invalid UTF-8 replaced by U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body as UTF-8 text, `None` if it is not.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// Body bytes received (also when they were not kept).
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The URL that answered, after redirects.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many redirects were followed to get here.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// The body parsed as JSON into `T`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Callbacks of an HTTP client application; all default to doing nothing.
/// They run inside [`HttpClient::process_event_que`](crate::HttpClient::process_event_que),
/// on the caller's thread. For each request: `on_head`, then `on_chunk`
/// for each piece of the body as it arrives, then `on_response` with the
/// whole of it; or `on_error` at any point, and nothing after it.
/// Redirects that are followed are not reported: the head is the final
/// response's.
pub trait HvHttpClient {
    /// The response's status line and headers arrived.
    fn on_head(&mut self, id: RequestId, head: &ResponseHead) {
        let _ = (id, head);
    }

    /// A piece of the body arrived (dasHV HV-07's `request_cb`): as bytes
    /// with [`BodyChunk::bytes`], as text with [`BodyChunk::text`].
    fn on_chunk(&mut self, id: RequestId, chunk: &BodyChunk<'_>) {
        let _ = (id, chunk);
    }

    /// The response is complete.
    fn on_response(&mut self, id: RequestId, response: ClientResponse) {
        let _ = (id, response);
    }

    /// The request got no (complete) response; the error says why.
    fn on_error(&mut self, id: RequestId, error: HttpClientError) {
        log::debug!("http client: {id}: {error}");
    }
}

/// No callbacks: for the blocking calls, and for code that only uses them.
impl HvHttpClient for () {}
