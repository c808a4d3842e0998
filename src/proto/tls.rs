//! TLS between the wire and a connection's plaintext (feature `tls`), on
//! rustls, still sans-IO: ciphertext comes from any [`Read`] (a socket, or
//! a slice in tests) and goes to any [`Write`]; plaintext goes to and from
//! the caller's buffers, which feed a [`ServerConn`](super::ServerConn) or
//! [`ClientConn`](super::ClientConn) exactly as plain TCP would.
//!
//! The call order, per read and per flush:
//!
//! ```text
//! read:  loop { read_plain(buf) until 0; if peer_closed() { EOF }
//!               read_tls(socket)?  (0: TCP EOF; decrypts what came)
//!               if wants_write() { write_tls(socket) } }   // handshake
//!        (a server may leave what it says after its handshake, the
//!        session tickets, for the flush; see `is_server`)
//! flush: write_tls(socket) until !wants_write();
//!        write_plain(queued) (takes what the buffer limit allows);
//!        write_tls(socket) ... ; to end: close() then write_tls.
//! ```
//!
//! rustls's traps, and how this layer meets them: `read_tls` returns 0
//! after a `close_notify` as at TCP EOF, so [`TlsLayer::peer_closed`] tells
//! the two apart; the received-plaintext buffer must be drained before the
//! next `read_tls`, so `read_plain` is called until it returns 0; a TCP EOF
//! without `close_notify` is left for the caller to judge (hvws treats it
//! as the end of the connection: the WebSocket close frames, which TLS did
//! authenticate, already say whether the close was clean); and rustls's
//! outgoing buffer is capped (`buffer_limit`), so plaintext it does not take
//! stays in the connection's own queue, where the write cap and the
//! slow-consumer policy see it.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::info::TlsInfo;

/// One connection's TLS session, client or server.
pub struct TlsLayer {
    conn: rustls::Connection,
    peer_closed: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.conn.is_handshaking())
            .field("peer_closed", &self.peer_closed)
            .finish()
    }
}

impl TlsLayer {
    /// The server side of a new connection. `buffer_limit` caps the
    /// ciphertext (and, before the handshake ends, the plaintext) rustls
    /// holds for sending.
    pub fn server(config: Arc<rustls::ServerConfig>, buffer_limit: usize) -> Result<TlsLayer, rustls::Error> {
        let mut conn = rustls::ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(buffer_limit));
        Ok(TlsLayer {
            conn: conn.into(),
            peer_closed: false,
        })
    }

    /// The client side of a connection to `host` (a DNS name or an IP
    /// address; the certificate must be valid for it).
    pub fn client(
        config: Arc<rustls::ClientConfig>,
        host: &str,
        buffer_limit: usize,
    ) -> Result<TlsLayer, rustls::Error> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| rustls::Error::General(format!("{host:?} is not a valid DNS name or IP address")))?;
        let mut conn = rustls::ClientConnection::new(config, name)?;
        conn.set_buffer_limit(Some(buffer_limit));
        Ok(TlsLayer {
            conn: conn.into(),
            peer_closed: false,
        })
    }

    /// Reads ciphertext from `rd` and decrypts what it completes. `Ok(0)`:
    /// `rd` is at EOF (or the peer's `close_notify` came before). A TLS
    /// failure (bad certificate, garbage, plaintext HTTP on a TLS port) is
    /// an `InvalidData` error carrying the [`rustls::Error`]; an alert for
    /// the peer may then be waiting in [`TlsLayer::write_tls`].
    pub fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        let n = self.conn.read_tls(rd)?;
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.peer_closed |= state.peer_has_closed();
                Ok(n)
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Moves decrypted plaintext into `buf`; 0 when there is none.
    pub fn read_plain(&mut self, buf: &mut [u8]) -> usize {
        // rustls answers "none yet" with WouldBlock, "none after
        // close_notify" with Ok(0), and a TCP EOF without close_notify with
        // UnexpectedEof: all mean "nothing more now" here, and the caller
        // learns which from read_tls and peer_closed.
        self.conn.reader().read(buf).unwrap_or(0)
    }

    /// Whether the peer sent `close_notify`: its side is done, as at EOF.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Encrypts as much of `data` as the buffer limit allows (buffered
    /// until the handshake ends); returns how much it took.
    pub fn write_plain(&mut self, data: &[u8]) -> usize {
        // The writer only fails on a closed connection; taking nothing is
        // the caller's signal to stop.
        self.conn.writer().write(data).unwrap_or(0)
    }

    /// Whether ciphertext is waiting for [`TlsLayer::write_tls`].
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes waiting ciphertext to `wr`.
    pub fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(wr)
    }

    /// Queues `close_notify`: the end of our side, after what is queued.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// Whether this is the server side.
    pub fn is_server(&self) -> bool {
        matches!(self.conn, rustls::Connection::Server(_))
    }

    /// True until the handshake has finished.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// What the handshake agreed on; `None` until it has finished.
    pub fn info(&self) -> Option<TlsInfo> {
        if self.conn.is_handshaking() {
            return None;
        }
        let sni = match &self.conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        };
        Some(TlsInfo {
            sni,
            alpn: self
                .conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            version: self
                .conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .to_owned(),
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or("unknown")
                .to_owned(),
        })
    }
}

/// The [`rustls::Error`] inside an error from [`TlsLayer::read_tls`], if it
/// is a TLS failure rather than an I/O one.
pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// What kind of TLS failure a client met, for code that reacts to it (ask
/// the user to install a CA, say); the words are in the error's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain leads to no trusted root: a self-signed or
    /// private-CA certificate, or a server that sends its leaf without the
    /// intermediate.
    UntrustedCertificate,
    /// The certificate is valid, but not for the host connected to.
    WrongName,
    /// The certificate expired or is not yet valid (check the clocks).
    Expired,
    /// The certificate was refused for another reason (revoked, bad
    /// signature, wrong usage).
    CertificateRejected,
    /// The handshake failed otherwise: the server sent an alert (it wants a
    /// client certificate, say), or no protocol version or cipher suite in
    /// common, or the server is no TLS server.
    Handshake,
}

/// Says what went wrong, as a kind and in words for a log or an
/// `on_error`: "certificate not trusted for 127.0.0.1: UnknownIssuer"
/// rather than rustls's enum.
pub fn describe(e: &rustls::Error, host: &str) -> (TlsFailure, String) {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => (
            TlsFailure::UntrustedCertificate,
            format!("certificate not trusted for {host}: UnknownIssuer (add its CA to the client's trusted roots)"),
        ),
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => (
            TlsFailure::WrongName,
            format!("certificate not valid for {host}: NotValidForName"),
        ),
        Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => (
            TlsFailure::Expired,
            format!("certificate for {host} is expired or not yet valid: {e}"),
        ),
        Error::InvalidCertificate(other) => (
            TlsFailure::CertificateRejected,
            format!("certificate rejected for {host}: {other:?}"),
        ),
        other => (TlsFailure::Handshake, format!("TLS with {host} failed: {other}")),
    }
}
