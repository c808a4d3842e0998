//! The server's reactor: the poller, the listeners (plain or TLS), the
//! waker, the shared read buffer, and every accepted socket, by connection
//! key.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::io::{FlushResult, ReadResult};
use super::readbuf::ReadBuf;
use super::stream::Stream;
#[cfg(feature = "tls")]
use crate::proto::info::TlsInfo;

const WAKER: Token = Token(usize::MAX);
/// Listener `i` is registered as `Token(FIRST_LISTENER - i)`; connection
/// keys stay far below.
const FIRST_LISTENER: usize = usize::MAX - 1;

/// Readiness events taken from the poller per `epoll_wait`. A tick that
/// gets this many polls again at once (without waiting) until the poller
/// has no more, or until it has had one event per registered socket: a
/// game frame's single `tick()` then sees every input that arrived, not
/// the first 1,024 connections' (at 5,000 clients, a frame running late
/// left 2,400 connections' inputs for later frames: 154 ms p99 latency,
/// benches/README.md "Game loop"). What bounds a tick's reading is the
/// read budget per connection and `ServerConfig::tick_budget`.
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
    /// A connection from this address could not be set up (registering it,
    /// or starting its TLS, failed); it was closed. Accept on.
    Dropped,
    /// Nothing waiting (or the listener is closed).
    None,
    /// Accepting failed; it is retried after a pause.
    Failed,
}

/// A listening socket, and the TLS settings its connections start with.
struct Listener {
    sock: TcpListener,
    addr: SocketAddr,
    /// Connections waiting to be accepted (its readiness came, and accept
    /// has not yet hit `WouldBlock`).
    pending: bool,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// A connection's socket. Its read tick lives in the stream
/// ([`Stream::read_tick`]), where it fills what would be padding: 16 bytes
/// per connection instead of 24.
type Sock = Stream;

/// The poller and every socket registered with it.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    listeners: Vec<Listener>,
    /// Registered with the poller (the server has started).
    listening: bool,
    waker: Arc<Waker>,
    /// The shared read buffer.
    pub scratch: ReadBuf,
    socks: Vec<Option<Sock>>,
    accept_retry_at: Option<Instant>,
    /// Connections owed a read next tick, in the order they get it: those
    /// the tick's budget did not reach, then those whose budget (their
    /// own or the tick's) ran out while they were read. No edge will come
    /// for what is left in them.
    owed: Vec<usize>,
    /// The keys in `owed`, so none is listed twice.
    owed_set: KeySet,
    tick: u32,
    /// Bind listeners with `SO_REUSEPORT`.
    reuse_port: bool,
    /// Bytes of ciphertext rustls may hold per connection for sending.
    #[cfg(feature = "tls")]
    tls_buffer_limit: usize,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("listeners", &self.listeners.iter().map(|l| l.addr).collect::<Vec<_>>())
            .field("listening", &self.listening)
            .finish()
    }
}

impl Reactor {
    /// A poller with no listener yet.
    pub fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_PER_TICK),
            listeners: Vec::new(),
            listening: false,
            waker,
            scratch: ReadBuf::new(),
            socks: Vec::new(),
            accept_retry_at: None,
            owed: Vec::new(),
            owed_set: KeySet::default(),
            tick: 0,
            reuse_port: false,
            #[cfg(feature = "tls")]
            tls_buffer_limit: 64 << 10,
        })
    }

    /// Binds a plain listener (registered by `listen`, or at once if the
    /// server is already listening).
    pub fn bind(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        self.add_listener(addr, |l| l)
    }

    /// Binds a listener whose connections start with TLS under `config`.
    #[cfg(feature = "tls")]
    pub fn bind_tls(&mut self, addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> io::Result<SocketAddr> {
        self.add_listener(addr, |mut l| {
            l.tls = Some(config);
            l
        })
    }

    /// Listeners bound from now on share their port with other sockets
    /// that set it too (`SO_REUSEPORT`).
    pub fn set_reuse_port(&mut self, on: bool) {
        self.reuse_port = on;
    }

    fn add_listener(&mut self, addr: SocketAddr, setup: impl FnOnce(Listener) -> Listener) -> io::Result<SocketAddr> {
        let sock = super::listen::bind_listener(addr, self.reuse_port)?;
        let addr = sock.local_addr()?;
        let mut listener = setup(Listener {
            sock,
            addr,
            pending: false,
            #[cfg(feature = "tls")]
            tls: None,
        });
        if self.listening {
            let token = Token(FIRST_LISTENER - self.listeners.len());
            self.poll
                .registry()
                .register(&mut listener.sock, token, Interest::READABLE)?;
        }
        self.listeners.push(listener);
        Ok(addr)
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listeners.first().map(|l| l.addr)
    }

    /// The first TLS listener's address.
    #[cfg(feature = "tls")]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.listeners.iter().find(|l| l.tls.is_some()).map(|l| l.addr)
    }

    /// New connections on every TLS listener start with `config` from now
    /// on (certificate rotation); open ones keep theirs.
    #[cfg(feature = "tls")]
    pub fn set_tls(&mut self, config: Arc<rustls::ServerConfig>) -> usize {
        let mut n = 0;
        for l in self.listeners.iter_mut().filter(|l| l.tls.is_some()) {
            l.tls = Some(config.clone());
            n += 1;
        }
        n
    }

    /// Caps the ciphertext rustls holds per connection for sending.
    #[cfg(feature = "tls")]
    pub fn set_tls_buffer_limit(&mut self, limit: usize) {
        self.tls_buffer_limit = limit;
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn listen(&mut self) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            self.poll
                .registry()
                .register(&mut l.sock, Token(FIRST_LISTENER - i), Interest::READABLE)?;
        }
        self.listening = true;
        Ok(())
    }

    /// Marks every listener ready, so the next accepts take what the
    /// kernel has queued without waiting for an edge (before closing).
    pub fn mark_accept_pending(&mut self) {
        for l in &mut self.listeners {
            l.pending = true;
        }
    }

    pub fn close_listener(&mut self) {
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l.sock);
        }
    }

    /// Whether the tick must not sleep: accepts or reads left over.
    pub fn has_pending_work(&self) -> bool {
        self.accept_pending() || !self.owed.is_empty()
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
        self.tick = self.tick.wrapping_add(1);
        // One event per socket (and listener, and the waker) at most: the
        // poller's edges for this tick, however many there are.
        let most = self.socks.len() + self.listeners.len() + 1;
        let (mut taken, mut wait) = (0, timeout);
        loop {
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let mut n = 0;
            for ev in self.events.iter() {
                n += 1;
                match ev.token() {
                    WAKER => {}
                    Token(t) if t > FIRST_LISTENER - self.listeners.len() => {
                        self.listeners[FIRST_LISTENER - t].pending = true;
                    }
                    Token(key) => ready.push(Ready {
                        key,
                        readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                        closed: ev.is_read_closed() || ev.is_error(),
                        writable: ev.is_writable(),
                    }),
                }
            }
            taken += n;
            // A full buffer: the poller may hold more, ready now.
            if n < EVENTS_PER_TICK || taken >= most {
                break;
            }
            wait = Duration::ZERO;
        }
        let owed = std::mem::take(&mut self.owed);
        for &key in &owed {
            self.owed_set.set(key, false);
        }
        Ok(owed)
    }

    /// Accepting failed a while ago: try again once its pause is over.
    pub fn retry_accepts(&mut self, now: Instant) {
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            for l in &mut self.listeners {
                l.pending = true;
            }
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
        self.listeners.iter().any(|l| l.pending)
    }

    /// Accepts one connection (from the first listener with some waiting)
    /// and registers it under `key`, with Nagle off.
    pub fn accept(&mut self, key: usize, now: Instant) -> Accepted {
        let Some(listener) = self.listeners.iter_mut().find(|l| l.pending) else {
            return Accepted::None;
        };
        let (mut stream, peer) = loop {
            match listener.sock.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    listener.pending = false;
                    // Another listener may have some waiting.
                    return self.accept(key, now);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog; retry a little later rather than spin now.
                    if self.accept_retry_at.is_none() {
                        log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                    }
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    for l in &mut self.listeners {
                        l.pending = false;
                    }
                    return Accepted::Failed;
                }
            }
        };
        // Small frames must leave at once: a game update waiting for
        // Nagle's ACK costs a frame of latency. (On Linux the listener's
        // setting is inherited: see `NODELAY_INHERITED`.)
        if !super::listen::NODELAY_INHERITED {
            let _ = stream.set_nodelay(true);
        }
        #[cfg(feature = "tls")]
        let tls = listener.tls.clone();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("cannot register {peer}: {e}");
            return Accepted::Dropped;
        }
        #[cfg(feature = "tls")]
        let stream = match tls {
            None => Stream::plain(stream),
            Some(config) => match crate::proto::tls::TlsLayer::server(config, self.tls_buffer_limit) {
                Ok(layer) => Stream::tls(stream, layer),
                Err(e) => {
                    log::warn!("cannot start TLS for {peer}: {e}");
                    return Accepted::Dropped;
                }
            },
        };
        #[cfg(not(feature = "tls"))]
        let stream = Stream::plain(stream);
        if self.socks.len() <= key {
            self.socks.resize_with(key + 1, || None);
        }
        self.socks[key] = Some(stream);
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

    /// Reads up to `len` bytes into the shared buffer's free area
    /// ([`ReadBuf::area`]; at most its room).
    pub fn read(&mut self, key: usize, len: usize) -> ReadResult {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) => s.read(self.scratch.area(len)),
            None => ReadResult::WouldBlock,
        }
    }

    /// Whether `key`'s end was seen behind the data just read (TLS): read
    /// again for it, since no edge will come.
    pub fn at_end(&self, key: usize) -> bool {
        // Only TLS streams answer true: a plain build skips the lookup on
        // this per-read, per-flush path.
        if !cfg!(feature = "tls") {
            return false;
        }
        self.socks.get(key).and_then(Option::as_ref).is_some_and(|s| s.at_end())
    }

    /// Whether `key` holds bytes below its connection's queue (TLS
    /// records): it needs a flush even with nothing queued.
    pub fn holds_output(&self, key: usize) -> bool {
        // Only TLS streams answer true: a plain build skips the lookup on
        // this per-read, per-flush path.
        if !cfg!(feature = "tls") {
            return false;
        }
        self.socks
            .get(key)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.holds_output())
    }

    /// Whether `key` is under TLS.
    pub fn is_tls(&self, key: usize) -> bool {
        // Only TLS streams answer true: a plain build skips the lookup on
        // this per-read, per-flush path.
        if !cfg!(feature = "tls") {
            return false;
        }
        self.socks.get(key).and_then(Option::as_ref).is_some_and(|s| s.is_tls())
    }

    /// What `key`'s TLS handshake agreed on, once, when it has finished.
    #[cfg(feature = "tls")]
    pub fn take_tls_info(&mut self, key: usize) -> Option<TlsInfo> {
        self.socks.get_mut(key).and_then(Option::as_mut)?.take_tls_info()
    }

    /// `key`'s budget ran out while it was read: read it again next tick,
    /// edge or not, after those already owed.
    pub fn owe(&mut self, key: usize) {
        if self.socks.get(key).is_some_and(Option::is_some) && !self.owed_set.get(key) {
            self.owed_set.set(key, true);
            self.owed.push(key);
        }
    }

    /// The tick's budget ran out before `keys` were read: read them first
    /// next tick, in this order, ahead of those owed for having used up a
    /// budget (round-robin: whoever was served waits behind whoever was
    /// not). Those read this tick already are skipped: they are owed, if
    /// anything is left in them.
    pub fn owe_first(&mut self, keys: impl Iterator<Item = usize>) {
        let tick = self.tick;
        let (socks, owed_set) = (&self.socks, &mut self.owed_set);
        let first: Vec<usize> = keys
            .filter(|&key| match socks.get(key).and_then(Option::as_ref) {
                Some(s) if s.read_tick != tick && !owed_set.get(key) => {
                    owed_set.set(key, true);
                    true
                }
                _ => false,
            })
            .collect();
        self.owed.splice(0..0, first);
    }

    /// Writes what the socket takes of a connection's queue.
    pub fn write(&mut self, key: usize, out: &mut crate::proto::Outbox) -> FlushResult {
        match self.socks.get_mut(key).and_then(Option::as_mut) {
            Some(s) => s.write_out(out),
            None => FlushResult::Failed(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Shuts down our side of `key`'s TCP.
    pub fn shutdown_write(&mut self, key: usize) {
        if let Some(s) = self.socks.get_mut(key).and_then(Option::as_mut) {
            s.shutdown_write();
        }
    }

    /// Closes `key`'s socket after a graceful end: under TLS, with
    /// `close_notify` first.
    pub fn finish(&mut self, key: usize) {
        if let Some(s) = self.socks.get_mut(key).and_then(Option::as_mut) {
            s.finish();
        }
        self.close(key);
    }

    /// Closes `key`'s socket (closing it also removes it from the poller).
    pub fn close(&mut self, key: usize) {
        if let Some(slot) = self.socks.get_mut(key) {
            *slot = None;
        }
        self.owed_set.set(key, false);
    }
}

/// Which connections are listed in `Reactor::owed`: one bit each, kept
/// out of the socket entry (16 bytes, none to spare).
#[derive(Debug, Default)]
struct KeySet(Vec<u64>);

impl KeySet {
    fn get(&self, key: usize) -> bool {
        self.0.get(key / 64).is_some_and(|w| w & (1 << (key % 64)) != 0)
    }

    fn set(&mut self, key: usize, on: bool) {
        let (word, bit) = (key / 64, 1u64 << (key % 64));
        if self.0.len() <= word {
            if !on {
                return;
            }
            self.0.resize(word + 1, 0);
        }
        if on {
            self.0[word] |= bit;
        } else {
            self.0[word] &= !bit;
        }
    }
}

#[cfg(test)]
mod sizes {
    /// The reactor's entry per connection: 16 bytes (the socket, the read
    /// tick, the TLS box pointer with `tls`); it was 24.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_socket_entry_is_16_bytes() {
        // mio adds a selector id to every socket in debug builds.
        let debug = if cfg!(debug_assertions) { 16 } else { 0 };
        let size = std::mem::size_of::<Option<super::Sock>>();
        assert!(size <= 16 + debug, "{size}");
    }
}
