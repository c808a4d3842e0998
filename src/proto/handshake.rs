//! The RFC 6455 §4 opening handshake, both sides.

use std::io::Write;

use tungstenite::handshake::derive_accept_key;

use super::http::HttpRequest;
use super::http1::has_token;

/// Why an upgrade request is not a valid WebSocket handshake. All are
/// answered with 400; [`HandshakeError::wants_version_header`] says when the
/// answer must carry `Sec-WebSocket-Version: 13`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// An upgrade must be a GET.
    #[error("WebSocket upgrade with method {0}, not GET")]
    NotGet(String),
    /// An upgrade needs HTTP/1.1.
    #[error("WebSocket upgrade over HTTP/1.0")]
    NotHttp11,
    /// `Connection` lacks the `Upgrade` token.
    #[error("Connection header lacks the Upgrade token")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key`, or one that is not 16 base64-encoded bytes.
    #[error("missing or invalid Sec-WebSocket-Key")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13.
    #[error("unsupported Sec-WebSocket-Version {0:?}, only 13 is supported")]
    UnsupportedVersion(Option<String>),
}

impl HandshakeError {
    /// Whether the 400 must tell the client the version we speak (§4.4).
    pub fn wants_version_header(&self) -> bool {
        matches!(self, HandshakeError::UnsupportedVersion(_))
    }
}

/// Whether `req` asks for a WebSocket upgrade at all (`Upgrade: websocket`).
pub fn is_upgrade(req: &HttpRequest) -> bool {
    has_token(req, "upgrade", "websocket")
}

/// A 16-byte value in base64 is 24 characters ending in `==`.
fn is_valid_key(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Checks a client's upgrade request; returns its key.
pub fn validate_request(req: &HttpRequest) -> Result<&str, HandshakeError> {
    if req.method().as_str() != "GET" {
        return Err(HandshakeError::NotGet(req.method().to_string()));
    }
    if req.minor_version() < 1 {
        return Err(HandshakeError::NotHttp11);
    }
    if !has_token(req, "connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match req.header("sec-websocket-version") {
        Some(v) if v.trim() == "13" => {}
        other => return Err(HandshakeError::UnsupportedVersion(other.map(str::to_owned))),
    }
    match req.header("sec-websocket-key") {
        Some(k) if is_valid_key(k.trim()) => Ok(k.trim()),
        _ => Err(HandshakeError::InvalidKey),
    }
}

/// The subprotocols the client offered, in its order of preference.
pub fn offered_protocols(req: &HttpRequest) -> impl Iterator<Item = &str> {
    req.header_values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// Appends the `101 Switching Protocols` answer to `out`, with the chosen
/// subprotocol and the agreed extensions, if any.
pub fn encode_accept(key: &str, protocol: Option<&str>, extensions: Option<&str>, out: &mut Vec<u8>) {
    let _ = write!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = protocol {
        let _ = write!(out, "Sec-WebSocket-Protocol: {p}\r\n");
    }
    if let Some(e) = extensions {
        let _ = write!(out, "Sec-WebSocket-Extensions: {e}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Why a server's answer to our upgrade request is not an acceptance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// The server answered with another status than 101.
    #[error("server refused the upgrade with HTTP {0}")]
    Rejected(u16),
    /// The answer was not HTTP.
    #[error("malformed handshake response: {0}")]
    Malformed(String),
    /// `Upgrade`/`Connection` missing, or the accept key does not match.
    #[error("handshake response is not a valid WebSocket acceptance: {0}")]
    Invalid(&'static str),
    /// The server chose a subprotocol we did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnexpectedProtocol(String),
    /// The server answered with extensions we did not offer, or with
    /// permessage-deflate parameters that break the offer (RFC 7692 says
    /// to fail the connection then).
    #[error("server answered extensions we cannot accept: {0}")]
    BadExtensions(String),
}

/// Appends a client upgrade request to `out`.
pub fn encode_request(
    host: &str,
    target: &str,
    key: &str,
    protocols: &[String],
    extra_headers: &[(String, String)],
    out: &mut Vec<u8>,
) {
    let _ = write!(
        out,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        let _ = write!(out, "Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "));
    }
    for (k, v) in extra_headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A server's acceptance of our upgrade.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Bytes of the buffer the response head occupied.
    pub head_len: usize,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// The server's `Sec-WebSocket-Extensions` answer.
    pub extensions: Option<String>,
}

/// Parses the server's answer at the start of `buf`; `Ok(None)` until the
/// head is complete. `extensions_offered`: whether the request offered any
/// (an answer with extensions fails otherwise).
pub fn parse_response(
    buf: &[u8],
    key: &str,
    offered: &[String],
    extensions_offered: bool,
) -> Result<Option<Accepted>, ClientHandshakeError> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ClientHandshakeError::Malformed(e.to_string())),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(ClientHandshakeError::Rejected(code));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let has = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has("upgrade", "websocket") || !has("connection", "upgrade") {
        return Err(ClientHandshakeError::Invalid("missing Upgrade or Connection header"));
    }
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(ClientHandshakeError::Invalid(
            "Sec-WebSocket-Accept does not match the key",
        ));
    }
    let protocol = header("sec-websocket-protocol").map(str::to_owned);
    if let Some(p) = &protocol {
        if !offered.contains(p) {
            return Err(ClientHandshakeError::UnexpectedProtocol(p.clone()));
        }
    }
    // Several headers are one list (RFC 6455 §9.1): a second one must not
    // slip an extension past the check of what was offered.
    let mut extension_values = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| std::str::from_utf8(h.value).map(str::trim));
    let extensions = match extension_values.next() {
        None => None,
        Some(first) => {
            let mut all = first
                .map_err(|_| ClientHandshakeError::Malformed("Sec-WebSocket-Extensions is not UTF-8".into()))?
                .to_owned();
            for more in extension_values {
                let more =
                    more.map_err(|_| ClientHandshakeError::Malformed("Sec-WebSocket-Extensions is not UTF-8".into()))?;
                all.push_str(", ");
                all.push_str(more);
            }
            Some(all)
        }
    };
    if let Some(e) = &extensions {
        if !extensions_offered {
            return Err(ClientHandshakeError::BadExtensions(format!("{e:?}, none offered")));
        }
    }
    Ok(Some(Accepted {
        head_len,
        protocol,
        extensions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http1::parse_head;

    fn request(raw: &str) -> HttpRequest {
        parse_head(raw.as_bytes(), "127.0.0.1:1".parse().unwrap(), 8192, 0)
            .unwrap()
            .unwrap()
            .request
    }

    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_sample_handshake() {
        let req = request(RFC_REQUEST);
        assert!(is_upgrade(&req));
        let key = validate_request(&req).unwrap();
        assert_eq!(offered_protocols(&req).collect::<Vec<_>>(), ["chat", "superchat"]);
        let mut out = Vec::new();
        encode_accept(key, Some("chat"), None, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn invalid_requests() {
        let v = |s: &str| validate_request(&request(s)).map(str::to_owned);
        let bad_version = RFC_REQUEST.replace("Version: 13", "Version: 8");
        let e = v(&bad_version).unwrap_err();
        assert!(e.wants_version_header());
        assert_eq!(
            v(&RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")),
            Err(HandshakeError::InvalidKey)
        );
        assert_eq!(
            v(&RFC_REQUEST.replace("keep-alive, Upgrade", "keep-alive")),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
        assert_eq!(
            v(&RFC_REQUEST.replace("GET", "POST")),
            Err(HandshakeError::NotGet("POST".into()))
        );
    }

    #[test]
    fn client_side_roundtrip() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut req = Vec::new();
        encode_request(
            "h:1",
            "/c?x",
            key,
            &["chat".into()],
            &[("X-A".into(), "1".into())],
            &mut req,
        );
        let parsed = request(std::str::from_utf8(&req).unwrap());
        assert_eq!(validate_request(&parsed), Ok(key));
        assert_eq!(parsed.header("x-a"), Some("1"));
        let mut resp = Vec::new();
        encode_accept(key, Some("chat"), None, &mut resp);
        resp.extend_from_slice(b"\x81\x02hi");
        let acc = parse_response(&resp, key, &["chat".into()], false).unwrap().unwrap();
        assert_eq!(acc.protocol.as_deref(), Some("chat"));
        assert_eq!(&resp[acc.head_len..], b"\x81\x02hi");
        assert_eq!(parse_response(&resp[..20], key, &[], false), Ok(None));
        assert_eq!(
            parse_response(&resp, key, &[], false),
            Err(ClientHandshakeError::UnexpectedProtocol("chat".into()))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", key, &[], false),
            Err(ClientHandshakeError::Rejected(403))
        );
        // Extensions in the answer: only if some were offered.
        let mut resp = Vec::new();
        encode_accept(key, None, Some("permessage-deflate"), &mut resp);
        assert!(matches!(
            parse_response(&resp, key, &[], false),
            Err(ClientHandshakeError::BadExtensions(_))
        ));
        let acc = parse_response(&resp, key, &[], true).unwrap().unwrap();
        assert_eq!(acc.extensions.as_deref(), Some("permessage-deflate"));
    }
}
