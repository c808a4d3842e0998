//! A client socket, plain TCP or TLS (rustls, driven by hand over the mio
//! socket, as hvws drives its server side). Every workload reads and writes
//! through this, so `--tls` changes nothing else in them.
//!
//! Under TLS, plaintext given to [`Sock::write_some`] is taken by rustls
//! (buffered until the handshake ends, then encrypted) and its ciphertext
//! written at once as far as the socket takes it; what the socket refuses
//! waits in rustls and goes out with the next write or [`Sock::flush`]
//! (call it on a writable event). [`Sock::read_chunks`] decrypts until the
//! socket would block and writes the handshake's answers as it goes.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

/// How a workload connects: plain TCP, or TLS with this configuration.
pub type Tls = Option<Arc<rustls::ClientConfig>>;

/// A connected (or connecting) client socket.
pub struct Sock {
    /// The TCP socket, for registering with the poller.
    pub tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Sock {
    /// Starts a non-blocking connect to `addr`; under TLS the server's
    /// certificate must be valid for `addr`'s IP address.
    pub fn connect(addr: SocketAddr, tls: &Tls) -> io::Result<Sock> {
        let tcp = TcpStream::connect(addr)?;
        let tls = match tls {
            None => None,
            Some(config) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                Some(Box::new(conn))
            }
        };
        Ok(Sock { tcp, tls })
    }

    /// Whether the non-blocking connect has finished (mio's recipe: the
    /// first writable event may be spurious; `peer_addr` tells).
    pub fn connected(&self) -> io::Result<bool> {
        if let Some(e) = self.tcp.take_error()? {
            return Err(e);
        }
        match self.tcp.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Turns Nagle off.
    pub fn set_nodelay(&self) {
        let _ = self.tcp.set_nodelay(true);
    }

    /// Writes as much of `data` as the socket (under TLS: rustls's buffer)
    /// takes; returns the bytes taken.
    pub fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return write_plain(&mut self.tcp, data);
        };
        flush_tls(tls, &mut self.tcp)?;
        let n = tls.writer().write(data)?;
        flush_tls(tls, &mut self.tcp)?;
        Ok(n)
    }

    /// Writes ciphertext waiting in rustls (nothing for plain TCP).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(tls) => flush_tls(tls, &mut self.tcp),
            None => Ok(()),
        }
    }

    /// Reads until `WouldBlock` (or, plain, a short read), handing each
    /// chunk of plaintext to `f`. Returns false when the peer closed.
    pub fn read_chunks(&mut self, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return read_plain(&mut self.tcp, buf, f);
        };
        loop {
            let n = match tls.read_tls(&mut self.tcp) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let state = tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // The received plaintext must be drained before the next read_tls.
            loop {
                match tls.reader().read(buf) {
                    Ok(0) => break,
                    Ok(k) => f(&buf[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // TCP EOF without close_notify: the n == 0 below says so.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            if n == 0 || state.peer_has_closed() {
                return Ok(false);
            }
        }
        // The handshake's answers, and plaintext it held back until now.
        flush_tls(tls, &mut self.tcp)?;
        Ok(true)
    }
}

fn flush_tls(tls: &mut ClientConnection, tcp: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(tcp) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_plain(sock: &mut TcpStream, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> io::Result<bool> {
    loop {
        match sock.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                f(&buf[..n]);
                if n < buf.len() {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn write_plain(sock: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match sock.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
