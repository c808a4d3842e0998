//! The server's reactor: the poller, the listener, the waker, the shared
//! read buffer, and every accepted socket, by connection key.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::io::{read_into, write_from, FlushResult, ReadResult};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// Size of the shared receive buffer every connection reads into; only the
/// unconsumed tail of a read is copied into a connection's own buffer.
/// 256 KiB (one per server) lets one read hold several whole 64 KiB frames,
/// so fewer of them straddle reads and get copied: 0.67× the CPU per
/// message of a 64 KiB buffer when echoing 64 KiB messages (benches/README.md).
const SCRATCH_SIZE: usize = 256 << 10;

/// Readiness events taken from the poller per tick; more wait for the next
/// tick. With the read budget per connection this bounds a tick's reading.
pub(crate) const EVENTS_PER_TICK: usize = 1024;

/// Connections accepted per tick before the others get their turn: a burst
/// of connects must not starve the connections already open.
pub(crate) const ACCEPTS_PER_TICK: usize = 256;

/// How long to wait before accepting again after accept failed (out of file
/// descriptors, say), rather than spin on the error.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// What the poller said about one connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    pub key: usize,
    pub readable: bool,
    /// The peer closed or the socket failed: read on to EOF or the error,
    /// since no further edge will come.
    pub closed: bool,
    pub writable: bool,
}

/// What one accept gave.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A connection, registered under the key given.
    Conn(SocketAddr),
    /// Nothing waiting (or the listener is closed).
    None,
    /// Accepting failed; it is retried after a pause.
    Failed,
}

struct Sock {
    stream: TcpStream,
    /// The tick in which it was last read: once per tick, so the read budget
    /// is per connection per tick. (Ticks wrap at 2^32; a connection not
    /// read for exactly that many ticks would skip one read, which its next
    /// edge makes up.)
    read_tick: u32,
}

/// The poller and every socket registered with it.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    /// The shared read buffer.
    pub scratch: Box<[u8]>,
    socks: Vec<Option<Sock>>,
    /// The accept loop stopped at its per-tick cap; go on next tick.
    accept_pending: bool,
    accept_retry_at: Option<Instant>,
    /// Connections whose read budget ran out this tick; read next tick.
    owed: Vec<usize>,
    tick: u32,
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
    /// Binds the listener (not yet registered: `listen` does that).
    pub fn bind(addr: SocketAddr) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_TICK),
            listener: Some(listener),
            local_addr,
            waker,
            scratch: vec![0; SCRATCH_SIZE].into_boxed_slice(),
            socks: Vec::new(),
            accept_pending: false,
            accept_retry_at: None,
            owed: Vec::new(),
            tick: 0,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
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
        self.accept_pending = false;
    }

    /// Whether the tick must not sleep: accepts or reads left over.
    pub fn has_pending_work(&self) -> bool {
        self.accept_pending || !self.owed.is_empty()
    }

    /// When accepting is retried after a failure.
    pub fn accept_retry_at(&self) -> Option<Instant> {
        self.accept_retry_at
    }

    /// Waits up to `timeout` for readiness and collects it into `ready`.
    /// Returns the connections owed a read from the last tick (taken: the
    /// caller reads them and hands the list back with `return_owed`).
    pub fn turn(&mut self, timeout: Duration, ready: &mut Vec<Ready>) -> io::Result<Vec<usize>> {
        ready.clear();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.tick = self.tick.wrapping_add(1);
        for ev in self.events.iter() {
            match ev.token() {
                LISTENER => self.accept_pending = true,
                WAKER => {}
                Token(key) => ready.push(Ready {
                    key,
                    readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    closed: ev.is_read_closed() || ev.is_error(),
                    writable: ev.is_writable(),
                }),
            }
        }
        Ok(std::mem::take(&mut self.owed))
    }

    /// Accepting failed a while ago: try again once its pause is over.
    pub fn retry_accepts(&mut self, now: Instant) {
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            self.accept_pending = true;
        }
    }

    /// Hands back the (emptied) list `turn` returned, for its allocation.
    pub fn return_owed(&mut self, mut list: Vec<usize>) {
        if self.owed.is_empty() {
            list.clear();
            self.owed = list;
        }
    }

    /// Whether accepting should go on this tick.
    pub fn accept_pending(&self) -> bool {
        self.accept_pending && self.listener.is_some()
    }

    /// Accepts one connection and registers it under `key`, with Nagle off.
    pub fn accept(&mut self, key: usize, now: Instant) -> Accepted {
        let Some(listener) = self.listener.as_ref() else {
            return Accepted::None;
        };
        let (mut stream, peer) = loop {
            match listener.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return Accepted::None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog; retry a little later rather than spin now.
                    if self.accept_retry_at.is_none() {
                        log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                    }
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    self.accept_pending = false;
                    return Accepted::Failed;
                }
            }
        };
        // Small frames must leave at once: a game update waiting for
        // Nagle's ACK costs a frame of latency.
        let _ = stream.set_nodelay(true);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("cannot register {peer}: {e}");
            return Accepted::None;
        }
        if self.socks.len() <= key {
            self.socks.resize_with(key + 1, || None);
        }
        self.socks[key] = Some(Sock { stream, read_tick: 0 });
        Accepted::Conn(peer)
    }

    /// Whether `key` may be read this tick (once per tick), and marks it.
    pub fn begin_read(&mut self, key: usize) -> bool {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) if s.read_tick != self.tick => {
                s.read_tick = self.tick;
                true
            }
            _ => false,
        }
    }

    /// Reads into the shared buffer.
    pub fn read(&mut self, key: usize) -> ReadResult {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) => read_into(&mut s.stream, &mut self.scratch),
            None => ReadResult::WouldBlock,
        }
    }

    /// `key`'s budget ran out: read it again next tick, edge or not.
    pub fn owe(&mut self, key: usize) {
        self.owed.push(key);
    }

    /// Writes what the socket takes of `out`.
    pub fn write(&mut self, key: usize, out: &mut Vec<u8>) -> FlushResult {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) => write_from(&mut s.stream, out),
            None => FlushResult::Failed(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Shuts down our side of `key`'s TCP.
    pub fn shutdown_write(&mut self, key: usize) {
        if let Some(s) = self.socks.get_mut(key).and_then(Option::as_mut) {
            let _ = s.stream.shutdown(Shutdown::Write);
        }
    }

    /// Closes `key`'s socket (closing it also removes it from the poller).
    pub fn close(&mut self, key: usize) {
        if let Some(slot) = self.socks.get_mut(key) {
            *slot = None;
        }
    }
}
