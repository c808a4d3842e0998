//! A response head as the client reads it (status, reason, headers with
//! repeats kept), and what it says about the body that follows: its
//! framing (RFC 9112 §6.3) and whether the connection may carry another
//! request.

use super::ExchangeError;

/// Header slots offered to `httparse`; a head with more lines is refused
/// as malformed ([`ExchangeError::BadResponse`]).
pub const MAX_HEADERS: usize = 100;

/// The status line and headers of a response.
///
/// ```
/// use hvws::proto::http_client::ResponseHead;
/// let head = ResponseHead::parse(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n")
///     .unwrap()
///     .unwrap()
///     .0;
/// assert_eq!((head.status(), head.reason()), (200, "OK"));
/// assert_eq!(head.header_all("set-cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) minor_version: u8,
    /// In order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// Parses a complete head from the start of `buf`: `Ok(None)` if it is
    /// not complete yet, else the head and its length in bytes.
    pub fn parse(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ExchangeError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(len)) => len,
            Err(e) => return Err(ExchangeError::BadResponse(format!("malformed head: {e}"))),
        };
        let status = resp.code.unwrap_or(0);
        if status < 100 {
            // Three digits, but no status class (RFC 9110 §15).
            return Err(ExchangeError::BadResponse(format!(
                "status {status:03} is not a status"
            )));
        }
        let headers = resp
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        Ok(Some((
            ResponseHead {
                status,
                reason: resp.reason.unwrap_or("").to_owned(),
                minor_version: resp.version.unwrap_or(1),
                headers,
            },
            len,
        )))
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// Every value of header `name` (case-insensitive), in order: several
    /// `Set-Cookie`, say.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name)
    }

    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as (name as sent, value), in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Whether `Connection` lists `token` (case-insensitive).
    fn connection_has(&self, token: &str) -> bool {
        self.header_all("connection")
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the server lets the connection carry another request:
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `Connection: keep-alive`.
    pub fn keeps_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.connection_has("keep-alive")
        } else {
            !self.connection_has("close")
        }
    }
}

/// How the body after a head ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, 1xx, 204, 304.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked coding.
    Chunked,
    /// Everything until the server closes.
    UntilClose,
}

impl Framing {
    /// The framing of the body after `head`, answering a HEAD request or
    /// not; a malformed `Content-Length` is a bad response.
    pub fn of(head: &ResponseHead, head_request: bool) -> Result<Framing, ExchangeError> {
        if head_request || matches!(head.status, 100..=199 | 204 | 304) {
            return Ok(Framing::None);
        }
        if let Some(te) = head.header_all("transfer-encoding").last() {
            // Chunked only counts as the last coding; anything else is
            // read until close (RFC 9112 §6.3 item 4).
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return Ok(if last.eq_ignore_ascii_case("chunked") {
                Framing::Chunked
            } else {
                Framing::UntilClose
            });
        }
        let mut length = None;
        for value in head.header_all("content-length") {
            // `Content-Length: 5, 5` and repeated equal lines are one length.
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ExchangeError::BadResponse(format!("invalid Content-Length {value:?}")));
                }
                let n: u64 = part
                    .parse()
                    .map_err(|_| ExchangeError::BadResponse(format!("Content-Length {value:?} overflows")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ExchangeError::BadResponse("conflicting Content-Length values".into()));
                }
                length = Some(n);
            }
        }
        Ok(match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        })
    }
}
