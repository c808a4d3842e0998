//! Close frame payloads (RFC 6455 §5.5.1, §7.4).

use super::error::ConnError;
use super::ProtocolError;

/// Status code sent in no close frame: the peer's close carried no code (1005).
pub const NO_STATUS: u16 = 1005;
/// The connection dropped without a close frame (1006); never on the wire.
pub const ABNORMAL: u16 = 1006;

/// Whether a peer may put `code` in a close frame.
///
/// 1000-1003 and 1007-1014 are defined by the RFC and the IANA registry;
/// 3000-4999 belong to libraries and applications. 1004-1006 and 1015 are
/// reserved and must never appear on the wire.
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether a server application may close with `code`: any code a peer may
/// put on the wire, so 1008 (policy violation) and 1011 (internal error)
/// as well as the 3000-4999 application range.
pub fn is_valid_server_code(code: u16) -> bool {
    is_valid_wire_code(code)
}

/// Whether a client application may close with `code`: 1000, or 3000-4999
/// (the range the browser `WebSocket.close()` accepts, and Aussom's client).
pub fn is_valid_app_code(code: u16) -> bool {
    code == 1000 || (3000..=4999).contains(&code)
}

/// Longest close reason that fits a control frame with its 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// Splits a received close payload into code and reason.
///
/// An empty payload means "no status" (1005). One byte, a code nobody may
/// send, or a reason that is not UTF-8 are protocol errors.
pub fn parse_close_payload(payload: &[u8]) -> Result<(u16, &str), ProtocolError> {
    match payload {
        [] => Ok((NO_STATUS, "")),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_wire_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok((code, reason))
        }
    }
}

/// Builds a close payload; `code` 1005 (no status) gives an empty payload.
pub fn close_payload(code: u16, reason: &str, out: &mut [u8; 125]) -> usize {
    if code == NO_STATUS {
        return 0;
    }
    out[..2].copy_from_slice(&code.to_be_bytes());
    let mut n = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(n) {
        n -= 1;
    }
    out[2..2 + n].copy_from_slice(&reason.as_bytes()[..n]);
    2 + n
}

/// Who started a close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseInitiator {
    /// This side: a `close()` call, a protocol violation we detected, a
    /// timeout, or shutdown.
    Local,
    /// The peer: its close frame or its dropping the connection.
    Remote,
}

/// How a WebSocket connection ended, as given to close callbacks.
///
/// Both sides describe the same close the same way: the code and reason of
/// whichever side started it (`initiator`), and `was_clean` when both close
/// frames were exchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code. For a close this side started (the application's
    /// `close`, the idle timeout, a shutdown, a failure of the peer's), this
    /// side's own code, whether or not the peer answered; for one the peer
    /// started, the peer's (1005 if its close frame had none); 1006 when the
    /// connection dropped with no close frame from either side.
    pub code: u16,
    /// The reason that came with `code` (may be empty).
    pub reason: String,
    /// Whether both close frames were exchanged before the TCP close: true
    /// on both sides of the same completed closing handshake, false for a
    /// drop, a failure, or a close whose answer never came.
    pub was_clean: bool,
    /// Who started the close.
    pub initiator: CloseInitiator,
}

/// How a WebSocket ended, as a connection core reports it: the close, and
/// what failed when it was not a clean closing handshake. Boxed in the
/// events, so the events that carry messages stay small to move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// How it ended.
    pub close: CloseInfo,
    /// What failed, if anything did.
    pub error: Option<ConnError>,
}

impl Ended {
    /// An end as events carry it.
    pub fn boxed(close: CloseInfo, error: Option<ConnError>) -> Box<Ended> {
        Box::new(Ended { close, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_reasons() {
        assert_eq!(parse_close_payload(&[]), Ok((1005, "")));
        assert_eq!(parse_close_payload(&[0x03, 0xE8]), Ok((1000, "")));
        assert_eq!(parse_close_payload(b"\x0f\xa1bye"), Ok((4001, "bye")));
        assert_eq!(parse_close_payload(&[0x03]), Err(ProtocolError::InvalidClosePayload));
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let b = bad.to_be_bytes();
            assert_eq!(
                parse_close_payload(&b),
                Err(ProtocolError::InvalidCloseCode(bad)),
                "{bad}"
            );
        }
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn payload_truncates_on_a_char_boundary() {
        let mut buf = [0u8; 125];
        let reason = "é".repeat(62); // 124 bytes
        let n = close_payload(1000, &reason, &mut buf);
        assert_eq!(n, 2 + 122);
        assert!(std::str::from_utf8(&buf[2..n]).is_ok());
        assert_eq!(close_payload(NO_STATUS, "x", &mut buf), 0);
    }
}
