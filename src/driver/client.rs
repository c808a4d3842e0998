//! The client's I/O: one poller, one socket at a time (plain, or TLS once
//! started), connect included.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::io::{FlushResult, ReadResult};
use super::stream::Stream;

const SOCKET: Token = Token(0);

/// Size of the client's read buffer. One per client, so a small one: a
/// client reads a server's frames for one connection.
const READ_BUF: usize = 64 << 10;

/// What the poller said this turn.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientReady {
    pub readable: bool,
    pub writable: bool,
    /// The peer closed (or the socket failed): no further edge will come,
    /// so a read goes on to EOF even after a short read.
    pub closed: bool,
}

pub(crate) struct ClientIo {
    poll: Option<Poll>,
    events: Events,
    sock: Option<Stream>,
    pub buf: Box<[u8]>,
}

impl std::fmt::Debug for ClientIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIo")
            .field("connected", &self.sock.is_some())
            .finish()
    }
}

impl ClientIo {
    pub fn new() -> ClientIo {
        ClientIo {
            poll: None,
            events: Events::with_capacity(8),
            sock: None,
            buf: vec![0; READ_BUF].into_boxed_slice(),
        }
    }

    /// Starts a non-blocking connect to `addr` (dropping any socket held).
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<()> {
        self.close();
        if self.poll.is_none() {
            self.poll = Some(Poll::new()?);
        }
        let mut sock = TcpStream::connect(addr)?;
        let poll = self.poll.as_ref().expect("created above");
        poll.registry()
            .register(&mut sock, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
        self.sock = Some(Stream::plain(sock));
        Ok(())
    }

    /// Starts TLS on the connected socket: from now on reads and writes
    /// are plaintext through it.
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, layer: crate::proto::tls::TlsLayer) {
        if let Some(sock) = self.sock.as_mut() {
            sock.start_tls(layer);
        }
    }

    /// Whether the end was seen behind the data just read (TLS).
    pub fn at_end(&self) -> bool {
        self.sock.as_ref().is_some_and(Stream::at_end)
    }

    /// Whether bytes wait below the connection (TLS records).
    pub fn holds_output(&self) -> bool {
        self.sock.as_ref().is_some_and(Stream::holds_output)
    }

    /// Waits up to `timeout` for readiness.
    pub fn turn(&mut self, timeout: Duration) -> io::Result<ClientReady> {
        let Some(poll) = self.poll.as_mut() else {
            return Ok(ClientReady::default());
        };
        match poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(ClientReady::default()),
            Err(e) => return Err(e),
        }
        let mut ready = ClientReady::default();
        for ev in self.events.iter() {
            ready.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
            ready.closed |= ev.is_read_closed() || ev.is_error();
            ready.writable |= ev.is_writable() || ev.is_error();
        }
        Ok(ready)
    }

    /// Whether the connect finished: `Ok(true)` connected, `Ok(false)` not
    /// yet, `Err` it failed.
    pub fn check_connected(&mut self) -> io::Result<bool> {
        match self.sock.as_ref() {
            Some(s) => check_connected(&s.tcp),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads into `self.buf`.
    pub fn read(&mut self) -> ReadResult {
        match self.sock.as_mut() {
            Some(s) => s.read(&mut self.buf),
            None => ReadResult::WouldBlock,
        }
    }

    pub fn write(&mut self, out: &mut Vec<u8>) -> FlushResult {
        match self.sock.as_mut() {
            Some(s) => s.write(out),
            None => FlushResult::Failed(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Drops the socket after a graceful end: under TLS, with
    /// `close_notify` first.
    pub fn finish(&mut self) {
        if let Some(sock) = self.sock.as_mut() {
            sock.finish();
        }
        self.close();
    }

    /// Drops the socket.
    pub fn close(&mut self) {
        if let (Some(mut sock), Some(poll)) = (self.sock.take(), self.poll.as_ref()) {
            let _ = poll.registry().deregister(&mut sock.tcp);
        }
    }
}

/// Whether a non-blocking connect of `sock` finished: `Ok(true)` connected
/// (Nagle is then turned off), `Ok(false)` not yet, `Err` it failed.
pub(crate) fn check_connected(sock: &TcpStream) -> io::Result<bool> {
    match sock.take_error() {
        Ok(Some(e)) | Err(e) => return Err(e),
        Ok(None) => {}
    }
    match sock.peer_addr() {
        Ok(_) => {
            let _ = sock.set_nodelay(true);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
