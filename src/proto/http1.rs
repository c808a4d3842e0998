//! HTTP/1.x request heads in, response bytes out, with a named error for
//! every limit.

use std::net::SocketAddr;

use super::head::HeadBuilder;
use super::http::{reason_phrase, HttpRequest, HttpResponse, Method};

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// Why a request could not be accepted; each has the status to answer with
/// before closing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an HTTP/1.x request.
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    /// Request line and headers longer than the configured limit.
    #[error("request head over {0} bytes")]
    HeadTooLarge(usize),
    /// More than [`MAX_HEADERS`] headers.
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// A `Content-Length` over the configured limit.
    #[error("request body of {len} bytes over the limit of {max}")]
    BodyTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A `Content-Length` that is not a number, or two that differ.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// A `Transfer-Encoding` other than `chunked` (gzip and the like are
    /// not supported for request bodies).
    #[error("only the chunked Transfer-Encoding is supported")]
    TransferEncoding,
    /// Both `Transfer-Encoding` and `Content-Length`: a request a proxy
    /// and this server could split differently (request smuggling), so it
    /// is refused rather than guessed at (RFC 9112 §6.1 allows that).
    #[error("both Transfer-Encoding and Content-Length")]
    AmbiguousLength,
    /// An `Expect` other than `100-continue`.
    #[error("unsupported expectation")]
    Expectation,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::InvalidContentLength | HttpError::AmbiguousLength => 400,
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::TransferEncoding => 501,
            HttpError::Expectation => 417,
        }
    }
}

/// A parsed request head: the request (body still empty) and how much more
/// to read.
#[derive(Debug)]
pub struct Head {
    /// The request, without its body.
    pub request: HttpRequest,
    /// Bytes the head occupied.
    pub head_len: usize,
    /// The body length from `Content-Length` (0 for a chunked body).
    pub body_len: usize,
    /// The body comes in the chunked transfer coding.
    pub chunked: bool,
    /// The client sent `Expect: 100-continue` and waits for a `100
    /// Continue` before it sends the body.
    pub expect_continue: bool,
    /// A `multipart/form-data` body: read in pieces as it arrives (uploads
    /// may be far larger than a buffered body), and checked against the
    /// upload limit by the caller instead of `max_body`.
    pub streamed: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
}

/// Parses the request head at the start of `buf`; `Ok(None)` until it is
/// complete. A `Content-Length` over `max_body` is an error, except for a
/// streamed (`multipart/form-data`) body, whose limit is the caller's.
pub fn parse_head(buf: &[u8], peer: SocketAddr, max_head: usize, max_body: usize) -> Result<Option<Head>, HttpError> {
    let mut request = HttpRequest::empty(peer);
    let Some(info) = parse_head_into(buf, max_head, max_body, &mut request)? else {
        return Ok(None);
    };
    Ok(Some(Head {
        request,
        head_len: info.head_len,
        body_len: info.body_len,
        chunked: info.chunked,
        expect_continue: info.expect_continue,
        streamed: info.streamed,
        keep_alive: info.keep_alive,
    }))
}

/// What [`parse_head_into`] learned besides the request: [`Head`] without
/// its request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadInfo {
    pub head_len: usize,
    pub body_len: usize,
    pub chunked: bool,
    pub expect_continue: bool,
    pub streamed: bool,
    pub keep_alive: bool,
}

/// [`parse_head`] into `into`, an earlier request whose allocations (its
/// box, its head's buffer) are reused: the method, target, version and
/// headers are replaced and the body, parameters, form and TLS details
/// emptied; the peer and TLS details are the caller's to set. On
/// `Ok(None)` `into` is untouched; on an error its head may have been
/// emptied.
pub(crate) fn parse_head_into(
    buf: &[u8],
    max_head: usize,
    max_body: usize,
    into: &mut HttpRequest,
) -> Result<Option<HeadInfo>, HttpError> {
    // Uninitialized slots: zeroing 64 of them was a tenth of a small
    // request's instructions, and httparse writes the ones it fills.
    let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n > max_head => return Err(HttpError::HeadTooLarge(max_head)),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => return Err(HttpError::HeadTooLarge(max_head)),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let minor_version = req.version.unwrap_or(1);
    let target = req.path.unwrap_or("/");
    // One buffer for the target, the names and the values: the head's
    // length bounds what they take.
    let mut text = HeadBuilder::new(target, head_len, into.head.take_buffer());
    let mut body_len: Option<u64> = None;
    let (mut chunked, mut expect_continue, mut streamed) = (false, false, false);
    let (mut close, mut keep) = (false, false);
    for h in req.headers.iter() {
        text.push(h.name, h.value);
        // Only the values of the headers acted on here are checked now
        // (the whole head's text is checked once, in `finish`); lossy,
        // as `headers()` gives them, and without a copy when valid.
        let name = h.name;
        let value = || String::from_utf8_lossy(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            let value = value();
            // 1*DIGIT only (RFC 9110 §8.6): `+5` or `5 5` would let a
            // proxy and us disagree on where the request ends.
            let digits = value.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::InvalidContentLength);
            }
            let n: u64 = digits.parse().map_err(|_| HttpError::InvalidContentLength)?;
            if body_len.is_some_and(|prev| prev != n) {
                return Err(HttpError::InvalidContentLength);
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let value = value();
            // Only `chunked`, and only once: a list such as `gzip, chunked`
            // would need a decoder we do not have.
            if chunked || !value.trim().eq_ignore_ascii_case("chunked") {
                return Err(HttpError::TransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("expect") {
            let value = value();
            if !value.trim().eq_ignore_ascii_case("100-continue") {
                return Err(HttpError::Expectation);
            }
            expect_continue = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            let value = value();
            let media = value.split(';').next().unwrap_or("").trim();
            streamed = media.eq_ignore_ascii_case("multipart/form-data");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if chunked && body_len.is_some() {
        return Err(HttpError::AmbiguousLength);
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > max_body as u64 && !streamed {
        return Err(HttpError::BodyTooLarge {
            len: body_len,
            max: max_body,
        });
    }
    // A byte search: `find('?')`'s char searcher cost more than the
    // rest of a short target's handling.
    let path_len = target.bytes().position(|b| b == b'?').unwrap_or(target.len());
    // Field by field, in place: building a request and moving it into
    // its box cost more than filling it.
    into.method = Method::parse(req.method.unwrap_or("GET"));
    into.head = text.finish();
    into.path_len = path_len;
    into.minor_version = minor_version;
    into.body.clear();
    into.params.clear();
    into.form = Default::default();
    into.tls = None;
    // HTTP/1.0 closes unless asked to keep alive; 1.1 keeps alive unless
    // asked to close (RFC 9112 §9.3).
    let keep_alive = if minor_version == 0 { keep } else { !close };
    let has_body = chunked || body_len > 0;
    Ok(Some(HeadInfo {
        head_len,
        body_len: usize::try_from(body_len).unwrap_or(usize::MAX),
        chunked,
        // An HTTP/1.0 client cannot expect (RFC 9110 §10.1.1), and
        // without a body there is nothing to wait for.
        expect_continue: expect_continue && has_body && minor_version == 1,
        streamed: streamed && has_body,
        keep_alive,
    }))
}

/// Whether `header`'s comma-separated value list holds `token`
/// (case-insensitive), as `Connection: keep-alive, Upgrade` does.
pub fn has_token(req: &HttpRequest, header: &str, token: &str) -> bool {
    req.header_values(header).any(|v| list_has(v, token))
}

/// Whether the comma-separated list `value` holds `token` (any case).
fn list_has(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How a response's body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 streams).
    Chunked,
    /// Neither: the body ends when the connection closes (streams to
    /// HTTP/1.0 clients, which cannot read chunks).
    UntilClose,
    /// No body and no length: 1xx, 204 and 304 (RFC 9110 §8.6 forbids a
    /// `Content-Length` on 1xx and 204; on 304 it would describe the
    /// representation that was not sent, so hvws leaves it out).
    None,
}

impl Framing {
    /// The framing of a response with `status` and a body of `len` bytes.
    pub fn for_status(status: u16, len: u64) -> Framing {
        if status < 200 || status == 204 || status == 304 {
            Framing::None
        } else {
            Framing::Length(len)
        }
    }
}

/// Appends `resp`'s status line and headers to `out`, with the
/// `Connection` and length headers `framing` and `keep_alive` call for,
/// and `Date: date` unless `date` is empty or the response has one
/// (the application's own are ignored: the server owns them).
pub fn encode_head(resp: &HttpResponse, keep_alive: bool, framing: Framing, date: &str, out: &mut Vec<u8>) {
    // Written byte by byte rather than with `write!`: formatting was a
    // sixth of a pipelined request's instructions (benches/README.md).
    match status_line(resp.status) {
        Some(line) => out.extend_from_slice(line),
        None => {
            out.extend_from_slice(b"HTTP/1.1 ");
            push_decimal(u64::from(resp.status), out);
            out.push(b' ');
            out.extend_from_slice(reason_phrase(resp.status).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    // Only headers given as strings at run time can hold a line break;
    // the constants hvws sets are not scanned.
    let check = resp.headers.may_be_unsafe();
    let mut has_date = false;
    for (k, v) in resp.header_pairs() {
        if ["content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|owned| k.eq_ignore_ascii_case(owned))
        {
            continue;
        }
        // A CR or LF would end the header early and let the rest be read
        // as another header, or as the body (response splitting).
        if check && (!is_header_safe(k) || !is_header_safe(v)) {
            log::warn!("header {k:?} has a line break or NUL in its name or value; not sent");
            continue;
        }
        has_date |= k.eq_ignore_ascii_case("date");
        out.reserve(k.len() + v.len() + 4);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !date.is_empty() && !has_date {
        out.reserve(date.len() + 8);
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(n, out);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::UntilClose | Framing::None => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// The whole status line of the most common statuses, so they skip the
/// number's formatting.
fn status_line(status: u16) -> Option<&'static [u8]> {
    Some(match status {
        200 => b"HTTP/1.1 200 OK\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        _ => return None,
    })
}

/// Whether `s` can go into a header line as it is: no CR, LF or NUL.
pub(crate) fn is_header_safe(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Appends `n` in decimal.
fn push_decimal(mut n: u64, out: &mut Vec<u8>) {
    // Most lengths have few digits: pushed one by one, without a copy
    // call.
    if n < 10_000 {
        let first = n;
        for d in [1000, 100, 10, 1] {
            if d <= first || d == 1 {
                out.push(b'0' + (n / d) as u8);
                n %= d;
            }
        }
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `resp` (a body in memory) to `out`. `head_only` omits the body
/// (HEAD requests) but keeps its `Content-Length`.
///
/// Only a body in memory is written: a file body is the connection's to
/// stream (`ServerConn::respond`), so here it counts as empty.
pub fn encode_response(resp: &HttpResponse, keep_alive: bool, head_only: bool, date: &str, out: &mut Vec<u8>) {
    let framing = Framing::for_status(resp.status, resp.body().len() as u64);
    encode_head(resp, keep_alive, framing, date, out);
    if !head_only && framing != Framing::None {
        out.extend_from_slice(resp.body());
    }
}

/// Appends one chunk of a chunked body (nothing for an empty one: an
/// empty chunk would end the body).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    if !data.is_empty() {
        let _ = write!(out, "{:x}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

/// The last chunk of a chunked body, without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests;
