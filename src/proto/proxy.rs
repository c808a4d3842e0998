//! A tunnel through an HTTP proxy (`CONNECT host:port`, RFC 9110 9.3.6),
//! sans-IO: [`Tunnel::request`] is what to write to the proxy, and
//! [`Tunnel::handle_input`] reads its answer. Once it says
//! [`TunnelState::Open`] the socket is a plain byte pipe to the target,
//! and TLS (for `wss://`) and the WebSocket handshake go through it.

/// Largest proxy answer head accepted before giving up on it.
const MAX_HEAD: usize = 16 << 10;

/// Why the proxy did not open the tunnel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The proxy answered with a status other than 2xx: 407 means it wants
    /// (other) credentials, 403 that it does not allow the target.
    #[error("proxy refused CONNECT with {status} {reason}{hint}", hint = status_hint(*status))]
    Refused {
        /// The status code.
        status: u16,
        /// The reason phrase the proxy gave.
        reason: String,
    },
    /// The answer is not HTTP, or its head is over 16 KiB.
    #[error("proxy sent a malformed answer: {0}")]
    Malformed(String),
    /// The proxy sent bytes after its 200 before we spoke: a tunnel that
    /// is not a clean pipe.
    #[error("proxy sent {0} unexpected bytes after opening the tunnel")]
    TrailingBytes(usize),
}

fn status_hint(status: u16) -> &'static str {
    match status {
        407 => " (proxy authentication required: give credentials with the proxy URL)",
        403 => " (the proxy does not allow this target)",
        _ => "",
    }
}

/// Where the tunnel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelState {
    /// The proxy's answer is not complete yet.
    Waiting,
    /// 2xx: the socket now leads to the target.
    Open,
}

/// One CONNECT exchange.
#[derive(Debug, Default)]
pub struct Tunnel {
    head: Vec<u8>,
}

impl Tunnel {
    /// A tunnel waiting for the proxy's answer.
    pub fn new() -> Tunnel {
        Tunnel::default()
    }

    /// The request to write to the proxy for `authority` (`host:port`),
    /// with `Proxy-Authorization: Basic` when `basic` (the base64 of
    /// `user:password`) is given.
    pub fn request(authority: &str, basic: Option<&str>) -> Vec<u8> {
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(b) = basic {
            req.push_str(&format!("Proxy-Authorization: Basic {b}\r\n"));
        }
        req.push_str("\r\n");
        req.into_bytes()
    }

    /// Reads bytes of the proxy's answer.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<TunnelState, TunnelError> {
        self.head.extend_from_slice(data);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&self.head) {
            Ok(httparse::Status::Partial) if self.head.len() > MAX_HEAD => {
                Err(TunnelError::Malformed("answer head over 16 KiB".into()))
            }
            Ok(httparse::Status::Partial) => Ok(TunnelState::Waiting),
            Err(e) => Err(TunnelError::Malformed(e.to_string())),
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                if !(200..300).contains(&status) {
                    return Err(TunnelError::Refused {
                        status,
                        reason: resp.reason.unwrap_or("").to_owned(),
                    });
                }
                // The client speaks first through a fresh tunnel (TLS's
                // hello, or the upgrade request), so nothing may follow.
                match self.head.len() - len {
                    0 => Ok(TunnelState::Open),
                    n => Err(TunnelError::TrailingBytes(n)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_answers() {
        assert_eq!(
            Tunnel::request("example.com:443", Some("dTpw")),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        let mut t = Tunnel::new();
        assert_eq!(t.handle_input(b"HTTP/1.1 200 Connection est"), Ok(TunnelState::Waiting));
        assert_eq!(
            t.handle_input(b"ablished\r\nProxy-agent: x\r\n\r\n"),
            Ok(TunnelState::Open)
        );

        let mut t = Tunnel::new();
        let e = t
            .handle_input(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            e,
            TunnelError::Refused {
                status: 407,
                reason: "Proxy Authentication Required".into()
            }
        );
        assert!(e.to_string().contains("credentials"), "{e}");

        let mut t = Tunnel::new();
        assert_eq!(
            t.handle_input(b"HTTP/1.1 200 OK\r\n\r\nxyz"),
            Err(TunnelError::TrailingBytes(3))
        );
        let mut t = Tunnel::new();
        assert!(matches!(
            t.handle_input(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(TunnelError::Malformed(_))
        ));
        let mut t = Tunnel::new();
        assert!(matches!(
            t.handle_input(&vec![b'a'; MAX_HEAD + 1]),
            Err(TunnelError::Malformed(_))
        ));
    }
}
