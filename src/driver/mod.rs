//! The only code that touches sockets: the mio reactor, the connection slab
//! with its generations, buffers, timers, and the cross-thread queue.
//!
//! Readiness is a hint (mio's "spurious events"): every read and write
//! tolerates `WouldBlock`. Sockets are registered once for READABLE |
//! WRITABLE, edge-triggered, and never re-registered: a writable edge only
//! arrives after a write hit `WouldBlock`, so it costs nothing otherwise.

mod core;
mod timer;

pub(crate) use self::core::{out_buf, Conn, Core, Phase};
pub(crate) use timer::{Timer, TimerKind};

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::handle::Command;

pub(crate) const LISTENER: Token = Token(usize::MAX - 1);
pub(crate) const WAKER: Token = Token(usize::MAX);

/// Size of the shared receive buffer every connection reads into; only the
/// unconsumed tail of a read is copied into a connection's own buffer.
/// 256 KiB (one per server) lets one read hold several whole 64 KiB frames,
/// so fewer of them straddle reads and get copied: 0.67× the CPU per
/// message of a 64 KiB buffer when echoing 64 KiB messages (benches/README.md).
const SCRATCH_SIZE: usize = 256 << 10;

/// Events taken from the poller per tick; more wait for the next tick.
pub(crate) const EVENTS_PER_TICK: usize = 1024;

/// Connections accepted per tick before others get their turn.
pub(crate) const ACCEPTS_PER_TICK: usize = 256;

/// The poller and everything registered with it.
pub(crate) struct Reactor {
    pub poll: Poll,
    pub events: Events,
    pub listener: Option<TcpListener>,
    pub local_addr: SocketAddr,
    pub waker: Arc<Waker>,
    pub tx: Sender<Command>,
    pub rx: Receiver<Command>,
    pub scratch: Box<[u8]>,
    /// The accept loop stopped at its per-tick cap; go on next tick.
    pub accept_pending: bool,
    /// Accepting failed (out of file descriptors, say): try again then,
    /// rather than spin on the error.
    pub accept_retry_at: Option<std::time::Instant>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("local_addr", &self.local_addr)
            .field("listening", &self.listener.is_some())
            .finish()
    }
}

impl Reactor {
    /// Binds the listener (not yet registered: `start` does that).
    pub fn bind(addr: SocketAddr) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_TICK),
            listener: Some(listener),
            local_addr,
            waker,
            tx,
            rx,
            scratch: vec![0; SCRATCH_SIZE].into_boxed_slice(),
            accept_pending: false,
            accept_retry_at: None,
        })
    }

    pub fn listen(&mut self) -> io::Result<()> {
        if let Some(l) = self.listener.as_mut() {
            self.poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        Ok(())
    }

    pub fn close_listener(&mut self) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    /// Accepts one pending connection, with Nagle off.
    pub fn accept(&mut self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        let Some(listener) = self.listener.as_ref() else {
            return Ok(None);
        };
        loop {
            match listener.accept() {
                Ok((sock, peer)) => {
                    // Small frames must leave at once: a game update waiting
                    // for Nagle's ACK costs a frame of latency.
                    let _ = sock.set_nodelay(true);
                    return Ok(Some((sock, peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// What one read attempt produced.
pub(crate) enum ReadResult {
    Data(usize),
    Eof,
    WouldBlock,
    Failed(io::Error),
}

pub(crate) fn read_into(sock: &mut TcpStream, buf: &mut [u8]) -> ReadResult {
    loop {
        return match sock.read(buf) {
            Ok(0) => ReadResult::Eof,
            Ok(n) => ReadResult::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadResult::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => ReadResult::Failed(e),
        };
    }
}

/// What a flush attempt left.
pub(crate) enum FlushResult {
    /// Everything queued is written.
    Done,
    /// The socket is full; the rest waits for a writable edge.
    Blocked,
    Failed(io::Error),
}

/// Writes as much of `out` as the socket takes, in one `write` when it
/// takes all (the common case), and keeps the unwritten rest in `out`.
pub(crate) fn write_from(sock: &mut TcpStream, out: &mut Vec<u8>) -> FlushResult {
    let mut written = 0;
    let result = loop {
        if written == out.len() {
            break FlushResult::Done;
        }
        match sock.write(&out[written..]) {
            Ok(0) => break FlushResult::Failed(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break FlushResult::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break FlushResult::Failed(e),
        }
    };
    match result {
        FlushResult::Done => out.clear(),
        _ => {
            out.drain(..written);
        }
    }
    result
}
