//! A request as it goes on the wire: request line, `Host`, the caller's
//! headers, `Content-Length` for a body.

/// What to send: everything [`encode`] needs, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The method token (`GET`).
    pub method: &'a str,
    /// Path and query (`/search?q=1`), or the absolute URL for a proxy.
    pub target: &'a str,
    /// The `Host` header's value (`example.com`, `127.0.0.1:8080`).
    pub host: &'a str,
    /// Further headers, in order; a `Host`, `Content-Length` or
    /// `Transfer-Encoding` among them is left out (this module writes the
    /// framing itself).
    pub headers: &'a [(String, String)],
    /// The body; `None` sends no `Content-Length` (unless the method
    /// expects a body: POST, PUT and PATCH get `Content-Length: 0`).
    pub body: Option<&'a [u8]>,
}

/// Why a request cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A header name that is not a token, or a name or value (or the
    /// target) with CR, LF or NUL: it would split the request. Fix the
    /// header; nothing was sent.
    #[error("invalid header or target {0:?}: names are tokens, and nothing may hold CR, LF or NUL")]
    InvalidHeader(String),
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_clean(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Writes `req` as HTTP/1.1 bytes.
///
/// ```
/// use hvws::proto::http_client::{encode, RequestHead};
/// let headers = [("Accept".to_owned(), "*/*".to_owned())];
/// let wire = encode(&RequestHead {
///     method: "POST",
///     target: "/echo",
///     host: "127.0.0.1:8080",
///     headers: &headers,
///     body: Some(b"hi"),
/// })
/// .unwrap();
/// assert_eq!(
///     wire,
///     b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nContent-Length: 2\r\n\r\nhi"
/// );
/// ```
pub fn encode(req: &RequestHead<'_>) -> Result<Vec<u8>, RequestError> {
    if !is_token(req.method) {
        return Err(RequestError::InvalidHeader(req.method.to_owned()));
    }
    if req.target.is_empty() || req.target.contains(' ') || !is_clean(req.target) {
        return Err(RequestError::InvalidHeader(req.target.to_owned()));
    }
    if !is_clean(req.host) {
        return Err(RequestError::InvalidHeader(req.host.to_owned()));
    }
    let body_len = req.body.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(64 + req.target.len() + body_len + req.headers.len() * 32);
    for part in [req.method, " ", req.target, " HTTP/1.1\r\nHost: ", req.host, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    for (name, value) in req.headers {
        if !is_token(name) || !is_clean(value) {
            return Err(RequestError::InvalidHeader(format!("{name}: {value}")));
        }
        if ["host", "content-length", "transfer-encoding"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        for part in [name.as_str(), ": ", value.as_str(), "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    if req.body.is_some() || matches!(req.method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = req.body {
        out.extend_from_slice(body);
    }
    Ok(out)
}
