//! One HTTP/1.1 request and its response on one connection, the client
//! side, sans-IO: the request's bytes out, the response's bytes in, and a
//! clock the owner reads. Nothing here touches a socket or the clock; the
//! HTTP client's driver (`crate::HttpClient`) feeds it what it read and
//! writes what it produced, and tests feed it exact bytes.
//!
//! The call order, for one [`Exchange`]:
//!
//! ```text
//! new(request, limits, timers, connected)     // encodes the request
//! [handle_connected()]                        // once TCP (and a proxy) is up
//! transmit() -> bytes to write; write what the socket takes, leave the rest
//! per read:  let mut input = &buf[..n];
//!            while let Some(event) = poll_input(&mut input) { ... }
//!            Head(head), then Data(piece)* (borrowing `buf`), then Done,
//!            or Failed(error) at any point
//! at EOF:    handle_eof() -> Done (a body read until close) or Failed
//! time:      poll_timeout() says when handle_timeout(now) is due
//! after Done: is_reusable() says whether the connection may carry the
//!            next request
//! ```
//!
//! Interim responses (1xx) are skipped; HEAD requests and 204/304 answers
//! have no body; a body is framed by `Content-Length`, the chunked coding
//! (decoded in place by [`ChunkedDecoder`])
//! or the end of the connection. The head and the body each have a cap
//! ([`ExchangeLimits`]), with an error naming it past it.

pub mod cookies;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use cookies::{CookieJar, CookieRejected, StoredCookie};
pub use request::{encode, RequestError, RequestHead};
pub use response::{Framing, ResponseHead, MAX_HEADERS};

use super::chunked::{Chunk, ChunkedDecoder, ChunkedError};

/// Caps on what one response may make the client hold or read.
///
/// ```
/// use hvws::proto::http_client::ExchangeLimits;
/// let limits = ExchangeLimits { max_body: 1 << 20, ..ExchangeLimits::default() };
/// assert_eq!(limits.max_head, 64 << 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeLimits {
    /// Longest status line plus headers. Default 64 KiB: real servers send
    /// a few hundred bytes; a head that never ends stops here.
    pub max_head: usize,
    /// Most body bytes read (declared or received). Default 16 MiB.
    pub max_body: u64,
}

impl Default for ExchangeLimits {
    fn default() -> Self {
        ExchangeLimits {
            max_head: 64 << 10,
            max_body: 16 << 20,
        }
    }
}

/// The deadlines of one exchange, decided by its owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeTimers {
    /// TCP connect must be done by then ([`Exchange::handle_connected`]).
    pub connect: Option<Instant>,
    /// The whole response must have arrived by then.
    pub total: Option<Instant>,
}

/// Why an exchange failed. The connection it ran on must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The server's bytes are not an HTTP/1.x response; the text says what.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The response head is longer than [`ExchangeLimits::max_head`].
    #[error("response head over {limit} bytes")]
    HeadTooLarge {
        /// The cap.
        limit: usize,
    },
    /// The body is (or says it will be) longer than
    /// [`ExchangeLimits::max_body`].
    #[error("response body over the cap of {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: u64,
    },
    /// The chunked body is malformed (a size that overflows, say).
    #[error("bad response: malformed chunked body: {0}")]
    Chunked(#[from] ChunkedError),
    /// The connection closed before a byte of the response arrived. On a
    /// kept-alive connection this is the server's idle close racing our
    /// request: an idempotent request may be sent again.
    #[error("the server closed the connection before answering")]
    ClosedBeforeResponse,
    /// The connection closed in the middle of the response.
    #[error("the server closed the connection in the middle of the response")]
    Truncated,
    /// TCP did not connect by [`ExchangeTimers::connect`].
    #[error("connect timed out")]
    ConnectTimeout,
    /// The response was not complete by [`ExchangeTimers::total`].
    #[error("request timed out")]
    Timeout,
}

/// What [`Exchange::poll_input`] (and the EOF and timers) produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeEvent<'a> {
    /// The final response's head (interim 1xx heads are skipped).
    Head(ResponseHead),
    /// A piece of the body, decoded, borrowing the caller's read buffer.
    Data(&'a [u8]),
    /// The response is complete.
    Done,
    /// The exchange failed; nothing follows.
    Failed(ExchangeError),
}

#[derive(Debug)]
enum State {
    Connecting,
    Head,
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
    Failed,
}

/// One request and its response.
///
/// ```
/// use hvws::proto::http_client::{Exchange, ExchangeEvent, ExchangeLimits, ExchangeTimers, RequestHead};
/// let req = RequestHead { method: "GET", target: "/", host: "h", headers: &[], body: None };
/// let mut ex = Exchange::new(&req, ExchangeLimits::default(), ExchangeTimers::default(), true).unwrap();
/// assert_eq!(ex.transmit().as_slice(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
/// ex.transmit().clear(); // written
/// let mut input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
/// assert!(matches!(ex.poll_input(&mut input), Some(ExchangeEvent::Head(h)) if h.status() == 200));
/// assert_eq!(ex.poll_input(&mut input), Some(ExchangeEvent::Data(b"hi")));
/// assert_eq!(ex.poll_input(&mut input), Some(ExchangeEvent::Done));
/// assert!(ex.is_reusable());
/// ```
#[derive(Debug)]
pub struct Exchange {
    state: State,
    out: Vec<u8>,
    /// The head so far, when it came in more than one read.
    head: Vec<u8>,
    head_request: bool,
    limits: ExchangeLimits,
    timers: ExchangeTimers,
    /// Body bytes so far.
    received: u64,
    /// A byte of the response arrived.
    started: bool,
    /// The request or the response asked for the connection to end, or
    /// the framing leaves it unusable.
    close_after: bool,
    /// Bytes came after the response's end.
    leftover: bool,
}

impl Exchange {
    /// Encodes `req` for sending. `connected` is false while TCP is still
    /// connecting (the connect deadline then runs).
    pub fn new(
        req: &RequestHead<'_>,
        limits: ExchangeLimits,
        timers: ExchangeTimers,
        connected: bool,
    ) -> Result<Exchange, RequestError> {
        let out = encode(req)?;
        let close_after = req.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("connection") && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        });
        Ok(Exchange {
            state: if connected { State::Head } else { State::Connecting },
            out,
            head: Vec::new(),
            head_request: req.method == "HEAD",
            limits,
            timers,
            received: 0,
            started: false,
            close_after,
            leftover: false,
        })
    }

    /// TCP is connected: the connect deadline stops.
    pub fn handle_connected(&mut self) {
        if matches!(self.state, State::Connecting) {
            self.state = State::Head;
        }
    }

    /// Whether TCP is still connecting.
    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting)
    }

    /// The bytes to write; remove what was written (the driver's write
    /// drains it).
    pub fn transmit(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Whether request bytes wait to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether a byte of the response arrived: until then, a connection
    /// the server closed may be retried.
    pub fn response_started(&self) -> bool {
        self.started
    }

    /// Body bytes received so far.
    pub fn body_received(&self) -> u64 {
        self.received
    }

    /// Whether the response is complete or the exchange failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// After [`ExchangeEvent::Done`]: whether the connection may carry the
    /// next request (both sides keep it alive, the body was delimited,
    /// nothing came after it).
    pub fn is_reusable(&self) -> bool {
        matches!(self.state, State::Done) && !self.close_after && !self.leftover && self.out.is_empty()
    }

    /// When [`Exchange::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done | State::Failed => None,
            State::Connecting => match (self.timers.connect, self.timers.total) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            _ => self.timers.total,
        }
    }

    /// Fails the exchange if a deadline has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ExchangeEvent<'static>> {
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        match self.state {
            State::Done | State::Failed => None,
            State::Connecting if due(self.timers.connect) => Some(self.fail(ExchangeError::ConnectTimeout)),
            _ if due(self.timers.total) => Some(self.fail(ExchangeError::Timeout)),
            _ => None,
        }
    }

    /// The server closed the connection (or its write side).
    pub fn handle_eof(&mut self) -> Option<ExchangeEvent<'static>> {
        match self.state {
            State::Done | State::Failed => None,
            State::UntilClose => {
                self.state = State::Done;
                self.close_after = true;
                Some(ExchangeEvent::Done)
            }
            State::Connecting | State::Head if !self.started => Some(self.fail(ExchangeError::ClosedBeforeResponse)),
            _ => Some(self.fail(ExchangeError::Truncated)),
        }
    }

    /// Reads from `input`, advancing it past what was used, up to the next
    /// event; `None` once `input` is used up (or nothing more can come).
    /// Call until `None`: a [`ExchangeEvent::Done`] may follow the head
    /// without further input.
    pub fn poll_input<'a>(&mut self, input: &mut &'a [u8]) -> Option<ExchangeEvent<'a>> {
        loop {
            match &mut self.state {
                State::Connecting => {
                    if input.is_empty() {
                        return None;
                    }
                    // Bytes prove the connection is up.
                    self.state = State::Head;
                }
                State::Head => {
                    if input.is_empty() {
                        return None;
                    }
                    self.started = true;
                    return match self.read_head(input) {
                        Ok(Some(head)) => Some(ExchangeEvent::Head(head)),
                        Ok(None) => None,
                        Err(e) => Some(self.fail(e)),
                    };
                }
                State::Length { remaining: 0 } => {
                    self.state = State::Done;
                    return Some(ExchangeEvent::Done);
                }
                State::Length { remaining } => {
                    if input.is_empty() {
                        return None;
                    }
                    let n = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= n as u64;
                    return Some(self.data(input, 0, n));
                }
                State::Chunked(decoder) => {
                    if input.is_empty() {
                        return None;
                    }
                    match decoder.step(input) {
                        Ok(Chunk::Data { skip, len }) => return Some(self.data(input, skip, len)),
                        Ok(Chunk::More { consumed }) => {
                            *input = &input[consumed..];
                            return None;
                        }
                        Ok(Chunk::Done { consumed }) => {
                            *input = &input[consumed..];
                            self.state = State::Done;
                            return Some(ExchangeEvent::Done);
                        }
                        Err(e) => return Some(self.fail(e.into())),
                    }
                }
                State::UntilClose => {
                    if input.is_empty() {
                        return None;
                    }
                    let n = input.len();
                    return Some(self.data(input, 0, n));
                }
                State::Done | State::Failed => {
                    if !input.is_empty() && matches!(self.state, State::Done) {
                        self.leftover = true;
                    }
                    *input = &[];
                    return None;
                }
            }
        }
    }

    /// Hands out `input[skip..skip + len]` as body data, within the cap.
    fn data<'a>(&mut self, input: &mut &'a [u8], skip: usize, len: usize) -> ExchangeEvent<'a> {
        self.received += len as u64;
        if self.received > self.limits.max_body {
            return self.fail(ExchangeError::BodyTooLarge {
                limit: self.limits.max_body,
            });
        }
        let piece = &input[skip..skip + len];
        *input = &input[skip + len..];
        ExchangeEvent::Data(piece)
    }

    fn fail(&mut self, e: ExchangeError) -> ExchangeEvent<'static> {
        self.state = State::Failed;
        self.head = Vec::new();
        ExchangeEvent::Failed(e)
    }

    /// Reads head bytes: the final head once complete (1xx heads are
    /// skipped), advancing `input` to the body.
    ///
    /// Only the first `max_head` bytes of a head are ever looked at, however
    /// they arrive: a head not complete within them is
    /// [`ExchangeError::HeadTooLarge`] whatever follows, so one response
    /// gives the same error read whole or a byte at a time.
    fn read_head(&mut self, input: &mut &[u8]) -> Result<Option<ResponseHead>, ExchangeError> {
        let cap = self.limits.max_head;
        let too_large = ExchangeError::HeadTooLarge { limit: cap };
        loop {
            let held = self.head.len();
            let take = input.len().min(cap - held);
            let parsed = if held == 0 {
                ResponseHead::parse(&input[..take])?
            } else {
                self.head.extend_from_slice(&input[..take]);
                ResponseHead::parse(&self.head)?
            };
            let Some((head, len)) = parsed else {
                if held + take >= cap {
                    return Err(too_large);
                }
                if held == 0 {
                    self.head.extend_from_slice(input);
                }
                *input = &[];
                return Ok(None);
            };
            *input = &input[len - held..];
            self.head.clear();
            match head.status {
                101 => {
                    return Err(ExchangeError::BadResponse(
                        "101 Switching Protocols to a request that asked for no upgrade".into(),
                    ))
                }
                100..=199 => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    continue;
                }
                _ => {}
            }
            let framing = Framing::of(&head, self.head_request)?;
            if !head.keeps_alive()
                || (head.header("transfer-encoding").is_some() && head.header("content-length").is_some())
            {
                self.close_after = true;
            }
            self.state = match framing {
                Framing::None => State::Length { remaining: 0 },
                Framing::Length(n) if n > self.limits.max_body => {
                    return Err(ExchangeError::BodyTooLarge {
                        limit: self.limits.max_body,
                    })
                }
                Framing::Length(n) => State::Length { remaining: n },
                Framing::Chunked => State::Chunked(ChunkedDecoder::new()),
                Framing::UntilClose => {
                    self.close_after = true;
                    State::UntilClose
                }
            };
            return Ok(Some(head));
        }
    }
}
