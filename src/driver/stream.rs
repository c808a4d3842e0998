//! One connected socket, plain or under TLS: the driver's reads and writes
//! go through here, so TLS is a layer between the socket and the connection
//! core that neither the core nor the tick loop has to know about.
//!
//! Under TLS a read takes ciphertext until the socket is drained (a short
//! read, as for plain TCP, or `WouldBlock`) or the caller's buffer is full
//! of plaintext (rustls's own 16 KiB plaintext buffer is drained each round,
//! as it must be), and writes the handshake's answers as it goes. What a
//! server's TLS says after its handshake (TLS 1.3 session tickets, a TLS 1.2
//! server's last flight) waits for the tick's flush instead, so it shares
//! a `write` with the first response. A write moves the connection's queued plaintext into
//! rustls as far as its buffer limit allows and writes the ciphertext; what
//! rustls does not take stays queued in the connection, where the write cap
//! sees it, exactly as bytes a full socket refused.

#[cfg(feature = "tls")]
use std::io::{self, Read};
use std::net::Shutdown;

use mio::net::TcpStream;

use super::io::{read_into, write_from, write_outbox, FlushResult, ReadResult};
#[cfg(feature = "tls")]
use crate::proto::info::TlsInfo;
#[cfg(feature = "tls")]
use crate::proto::tls::TlsLayer;
use crate::proto::Outbox;

pub(crate) struct Stream {
    pub tcp: TcpStream,
    /// The server's tick in which it was last read: once per tick, so the
    /// read budget is per connection per tick. (Ticks wrap at 2^32; a
    /// connection not read for exactly that many ticks would skip one
    /// read, which its next edge makes up.) Unused by clients.
    pub read_tick: u32,
    #[cfg(feature = "tls")]
    tls: Option<Box<Tls>>,
}

#[cfg(feature = "tls")]
struct Tls {
    layer: TlsLayer,
    /// Our side is closing: shut TCP down once the ciphertext (with the
    /// `close_notify`) is written.
    shutdown_pending: bool,
    /// The handshake's outcome was handed over (`take_tls_info`).
    info_taken: bool,
    /// TCP reached EOF (with or without `close_notify`).
    eof: bool,
}

impl Stream {
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream {
            tcp,
            read_tick: 0,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    #[cfg(feature = "tls")]
    pub fn tls(tcp: TcpStream, layer: TlsLayer) -> Stream {
        let mut stream = Stream::plain(tcp);
        stream.start_tls(layer);
        stream
    }

    /// Starts TLS on a connected plain stream (a client's, once its proxy
    /// tunnel is up).
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, layer: TlsLayer) {
        self.tls = Some(Box::new(Tls {
            layer,
            shutdown_pending: false,
            info_taken: false,
            eof: false,
        }));
    }

    /// Reads plaintext into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> ReadResult {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return tls.read(&mut self.tcp, buf);
        }
        read_into(&mut self.tcp, buf)
    }

    /// Whether the stream's end was seen although the last read returned
    /// data: read again (for the EOF) without waiting for an edge.
    pub fn at_end(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_ref() {
            return tls.eof || tls.layer.peer_closed();
        }
        false
    }

    /// Writes what the socket (and TLS) takes of `out`.
    pub fn write(&mut self, out: &mut Vec<u8>) -> FlushResult {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            return tls.write(&mut self.tcp, out);
        }
        write_from(&mut self.tcp, out)
    }

    /// Writes what the socket (and TLS) takes of a connection's queue,
    /// shared payloads included (by `writev` on plain TCP; under TLS each
    /// run is copied into rustls, which encrypts it anyway).
    pub fn write_out(&mut self, out: &mut Outbox) -> FlushResult {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            if out.has_shared() {
                return tls.write_out(&mut self.tcp, out);
            }
            return tls.write(&mut self.tcp, &mut out.buf);
        }
        write_outbox(&mut self.tcp, out)
    }

    /// Whether bytes are held below the connection (TLS records not yet
    /// written): the stream needs a flush even if the connection has
    /// nothing queued.
    pub fn holds_output(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_ref() {
            return tls.shutdown_pending || tls.layer.wants_write();
        }
        false
    }

    /// Ends our side: `close_notify` first under TLS, then TCP's FIN.
    pub fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.layer.close();
            tls.shutdown_pending = true;
            let _ = tls.write(&mut self.tcp, &mut Vec::new());
            return;
        }
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    /// Before the socket is dropped after a graceful end: under TLS, sends
    /// `close_notify` (if our side has not yet), so the peer knows the
    /// stream was not cut. Best effort: a full socket drops it.
    pub fn finish(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            // rustls sends it once, however often asked.
            tls.layer.close();
            let _ = tls.push(&mut self.tcp);
        }
    }

    /// What the TLS handshake agreed on, once, as soon as it has finished.
    #[cfg(feature = "tls")]
    pub fn take_tls_info(&mut self) -> Option<TlsInfo> {
        let tls = self.tls.as_mut()?;
        if tls.info_taken {
            return None;
        }
        let info = tls.layer.info()?;
        tls.info_taken = true;
        Some(info)
    }

    /// Whether this stream is under TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

#[cfg(feature = "tls")]
impl Tls {
    fn read(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> ReadResult {
        let mut filled = 0;
        let mut drained = false;
        loop {
            filled += self.layer.read_plain(&mut buf[filled..]);
            if filled == buf.len() {
                return ReadResult::Data(filled);
            }
            if self.eof || self.layer.peer_closed() {
                return if filled > 0 {
                    ReadResult::Data(filled)
                } else {
                    ReadResult::Eof
                };
            }
            if drained {
                // A short read emptied the socket: the next data raises a
                // new edge, so no `recv` is spent on learning `WouldBlock`.
                return if filled > 0 {
                    ReadResult::Data(filled)
                } else {
                    ReadResult::WouldBlock
                };
            }
            let mut rd = ShortRead { tcp, short: false };
            match self.layer.read_tls(&mut rd) {
                Ok(0) => self.eof = true,
                Ok(_) => {
                    drained = rd.short;
                    // The handshake's answers go now, not at the flush: the
                    // connection has queued nothing for them. A server's
                    // post-handshake records go with the flush (the caller
                    // marks the connection, `holds_output`).
                    if self.layer.wants_write() && (self.layer.is_handshaking() || !self.layer.is_server()) {
                        if let FlushResult::Failed(e) = self.push(tcp) {
                            return ReadResult::Failed(e);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if filled > 0 {
                        ReadResult::Data(filled)
                    } else {
                        ReadResult::WouldBlock
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // A TLS failure: send the alert rustls queued, if the
                    // socket takes it, so the peer learns why.
                    let _ = self.push(tcp);
                    return ReadResult::Failed(e);
                }
            }
        }
    }

    /// Writes queued ciphertext until none is left or the socket is full.
    fn push(&mut self, tcp: &mut TcpStream) -> FlushResult {
        while self.layer.wants_write() {
            match self.layer.write_tls(tcp) {
                Ok(0) => return FlushResult::Failed(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FlushResult::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return FlushResult::Failed(e),
            }
        }
        FlushResult::Done
    }

    fn write(&mut self, tcp: &mut TcpStream, out: &mut Vec<u8>) -> FlushResult {
        let mut taken = 0;
        let result = loop {
            // Encrypt first, then write: records already waiting (session
            // tickets) leave in the same `write` as the response.
            let n = if taken < out.len() {
                self.layer.write_plain(&out[taken..])
            } else {
                0
            };
            taken += n;
            // Ciphertext already waiting: writing it makes room, so a
            // refusal above was the buffer limit, not the handshake.
            let had_records = self.layer.wants_write();
            match self.push(tcp) {
                FlushResult::Done => {}
                other => break other,
            }
            if taken == out.len() {
                break FlushResult::Done;
            }
            if n == 0 && !had_records {
                // rustls holds what it may until the handshake ends; the
                // rest goes once it has (the read that ends it marks the
                // connection for a flush).
                break FlushResult::Blocked;
            }
        };
        if taken == out.len() {
            out.clear();
        } else {
            out.drain(..taken);
        }
        if matches!(result, FlushResult::Done) && self.shutdown_pending {
            self.shutdown_pending = false;
            let _ = tcp.shutdown(Shutdown::Write);
        }
        result
    }
}

#[cfg(feature = "tls")]
impl Tls {
    /// [`Tls::write`] for a queue with shared payloads: its runs go into
    /// rustls one at a time, each consumed as rustls takes it.
    fn write_out(&mut self, tcp: &mut TcpStream, out: &mut Outbox) -> FlushResult {
        let result = loop {
            let n = match out.front() {
                [] => 0,
                run => self.layer.write_plain(run),
            };
            out.consume(n);
            let had_records = self.layer.wants_write();
            match self.push(tcp) {
                FlushResult::Done => {}
                other => break other,
            }
            if out.is_empty() {
                break FlushResult::Done;
            }
            if n == 0 && !had_records {
                break FlushResult::Blocked;
            }
        };
        if matches!(result, FlushResult::Done) && self.shutdown_pending {
            self.shutdown_pending = false;
            let _ = tcp.shutdown(Shutdown::Write);
        }
        result
    }
}

/// The socket as rustls reads it, noting whether a read came back short
/// (fewer bytes than rustls had room for): the socket is then drained for
/// now, as after a short plain read.
#[cfg(feature = "tls")]
struct ShortRead<'a> {
    tcp: &'a mut TcpStream,
    short: bool,
}

#[cfg(feature = "tls")]
impl Read for ShortRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}
