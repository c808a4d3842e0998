//! The HTTP client's I/O: one poller and any number of sockets, each under
//! a key the client chooses (its connection's slot), plain or under TLS.
//! Connects, reads, writes and closes; what the bytes mean is the client's
//! and `proto::http_client`'s business.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::client::{check_connected, ClientReady};
use super::io::{FlushResult, ReadResult};
use super::stream::Stream;

/// Size of the shared read buffer: one per client; every connection's
/// reads go through it and are handed out before the next read.
const READ_BUF: usize = 64 << 10;

pub(crate) struct MultiIo {
    poll: Option<Poll>,
    events: Events,
    socks: Vec<Option<Stream>>,
    pub buf: Box<[u8]>,
}

impl std::fmt::Debug for MultiIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiIo")
            .field("sockets", &self.socks.iter().flatten().count())
            .finish()
    }
}

impl MultiIo {
    pub fn new() -> MultiIo {
        MultiIo {
            poll: None,
            events: Events::with_capacity(64),
            socks: Vec::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
        }
    }

    fn sock(&mut self, key: usize) -> Option<&mut Stream> {
        self.socks.get_mut(key).and_then(Option::as_mut)
    }

    /// Starts a non-blocking connect to `addr` under `key` (dropping any
    /// socket held there).
    pub fn connect(&mut self, key: usize, addr: SocketAddr) -> io::Result<()> {
        self.close(key);
        if self.poll.is_none() {
            self.poll = Some(Poll::new()?);
        }
        let mut sock = TcpStream::connect(addr)?;
        let poll = self.poll.as_ref().expect("created above");
        poll.registry()
            .register(&mut sock, Token(key), Interest::READABLE | Interest::WRITABLE)?;
        if self.socks.len() <= key {
            self.socks.resize_with(key + 1, || None);
        }
        self.socks[key] = Some(Stream::plain(sock));
        Ok(())
    }

    /// Starts TLS on the connected socket under `key`.
    #[cfg(feature = "tls")]
    pub fn start_tls(&mut self, key: usize, layer: crate::proto::tls::TlsLayer) {
        if let Some(sock) = self.sock(key) {
            sock.start_tls(layer);
        }
    }

    /// Waits up to `timeout` for readiness; appends what is ready to
    /// `ready` (one entry per socket and event: readiness is a hint).
    pub fn turn(&mut self, timeout: Duration, ready: &mut Vec<(usize, ClientReady)>) -> io::Result<()> {
        let Some(poll) = self.poll.as_mut() else {
            if !timeout.is_zero() {
                // Nothing to wait on; still honour the caller's wait.
                std::thread::sleep(timeout);
            }
            return Ok(());
        };
        match poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            ready.push((
                ev.token().0,
                ClientReady {
                    readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    writable: ev.is_writable() || ev.is_error(),
                    closed: ev.is_read_closed() || ev.is_error(),
                },
            ));
        }
        Ok(())
    }

    /// Whether the connect under `key` finished: `Ok(true)` connected,
    /// `Ok(false)` not yet, `Err` it failed.
    pub fn check_connected(&mut self, key: usize) -> io::Result<bool> {
        match self.sock(key) {
            Some(s) => check_connected(&s.tcp),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads from the socket under `key` into `self.buf`.
    pub fn read(&mut self, key: usize) -> ReadResult {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) => s.read(&mut self.buf),
            None => ReadResult::Eof,
        }
    }

    /// Writes what the socket under `key` takes of `out`.
    pub fn write(&mut self, key: usize, out: &mut Vec<u8>) -> FlushResult {
        match self.sock(key) {
            Some(s) => s.write(out),
            None => FlushResult::Failed(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Whether the end was seen behind the data just read (TLS).
    pub fn at_end(&self, key: usize) -> bool {
        self.socks.get(key).and_then(Option::as_ref).is_some_and(Stream::at_end)
    }

    /// Whether bytes wait below the connection (TLS records).
    pub fn holds_output(&self, key: usize) -> bool {
        self.socks
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(Stream::holds_output)
    }

    /// Drops the socket under `key` after a graceful end (TLS:
    /// `close_notify` first, best effort).
    pub fn finish(&mut self, key: usize) {
        if let Some(sock) = self.sock(key) {
            sock.finish();
        }
        self.close(key);
    }

    /// Drops the socket under `key`.
    pub fn close(&mut self, key: usize) {
        if let Some(mut sock) = self.socks.get_mut(key).and_then(Option::take) {
            if let Some(poll) = self.poll.as_ref() {
                let _ = poll.registry().deregister(&mut sock.tcp);
            }
        }
    }
}
