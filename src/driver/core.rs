//! Connection table and output queues: what callbacks touch through the
//! `Context`. Queuing never does I/O; the tick's flush does.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use slab::Slab;

use super::timer::{Timer, TimerKind, Timers};
use crate::channel::{Channel, ChannelInfo};
use crate::config::{ServerConfig, SlowConsumer};
use crate::error::SendError;
use crate::proto::close::{close_payload, is_valid_server_code, MAX_REASON_LEN};
use crate::proto::frame::{encode_frame, Opcode};
use crate::proto::outgoing::{Fragmenter, RawFrame};
use crate::proto::{Decoder, Role};

/// What a connection is doing.
pub(crate) enum Phase {
    /// Reading HTTP requests (keep-alive, pipelined).
    Http,
    /// An open WebSocket, or one whose close we sent.
    Ws(Box<WsState>),
    /// Finished: write what is queued, shut down writing, then read and
    /// discard until the peer closes (so our last bytes are not lost to a
    /// reset) or the linger deadline passes.
    Closing {
        /// Our side of TCP is shut down.
        shutdown_sent: bool,
        /// The peer's side is closed: remove once our output is written.
        peer_eof: bool,
    },
}

/// Per-WebSocket state. Boxed so an HTTP connection does not pay for it.
pub(crate) struct WsState {
    pub decoder: Decoder,
    pub info: ChannelInfo,
    /// Our close frame is queued: no more data may follow it.
    pub close_sent: bool,
    /// The fragmented message we are sending, if any.
    pub frag: Fragmenter,
    /// Whole frames queued while a fragmented send is open; they follow its
    /// final fragment so the two messages do not interleave.
    pub deferred: Vec<u8>,
}

pub(crate) struct Conn {
    pub sock: TcpStream,
    pub gen: u32,
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Received bytes not yet consumed (a partial head or frame).
    pub inbuf: Vec<u8>,
    /// Bytes queued for the socket.
    pub out: Vec<u8>,
    /// Listed in `Core::dirty`.
    pub dirty: bool,
    /// The tick in which this connection was last read.
    pub read_tick: u64,
    /// Bytes the last flush could not write: how far behind the peer is in
    /// reading. What the current tick queued does not count, so a burst of
    /// sends between two flushes never looks like a slow consumer.
    pub backlog: usize,
    /// When the peer last sent anything (idle timeout, pings).
    pub last_rx: Instant,
    /// When the HTTP request being read must be complete.
    pub request_deadline: Instant,
}

impl Conn {
    pub fn ws(&mut self) -> Option<&mut WsState> {
        match &mut self.phase {
            Phase::Ws(ws) => Some(ws),
            _ => None,
        }
    }
}

/// Buffers freed by flushed or drained connections, reused so a busy
/// server does not call the allocator per tick and an idle connection holds
/// no buffer at all.
///
/// Large buffers are kept too: a connection that is sent 64 KiB messages
/// needs a buffer of a few hundred KiB every tick, and a fresh one costs a
/// page fault per 4 KiB touched (measured: page faults and `brk` took over
/// half the server's CPU in that workload; benches/README.md). What the pool
/// holds is capped in bytes instead.
#[derive(Debug, Default)]
pub(crate) struct BufPool {
    free: Vec<Vec<u8>>,
    /// Capacity of the buffers in `free`.
    bytes: usize,
}

const POOL_MAX_BUFFERS: usize = 256;
/// Larger buffers (a rare huge message) go back to the allocator.
const POOL_MAX_CAPACITY: usize = 1 << 20;
/// The most the pool keeps: what 256 buffers of 64 KiB come to.
const POOL_MAX_BYTES: usize = 16 << 20;

impl BufPool {
    pub fn take(&mut self) -> Vec<u8> {
        let buf = self.free.pop().unwrap_or_default();
        self.bytes -= buf.capacity();
        buf
    }

    pub fn put(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap > 0
            && cap <= POOL_MAX_CAPACITY
            && self.free.len() < POOL_MAX_BUFFERS
            && self.bytes + cap <= POOL_MAX_BYTES
        {
            buf.clear();
            self.bytes += cap;
            self.free.push(buf);
        }
    }
}

/// The connection of an open channel: WebSocket, close not yet sent.
fn open_conn(conns: &mut Slab<Conn>, ch: Channel) -> Result<(usize, &mut Conn), SendError> {
    let key = ch.index as usize;
    match conns.get_mut(key) {
        Some(c) if c.gen == ch.gen && matches!(&c.phase, Phase::Ws(ws) if !ws.close_sent) => Ok((key, c)),
        _ => Err(SendError::ChannelClosed),
    }
}

/// A connection's output buffer, taken from the pool if it has none.
pub(crate) fn out_buf<'a>(out: &'a mut Vec<u8>, pool: &mut BufPool) -> &'a mut Vec<u8> {
    if out.capacity() == 0 {
        *out = pool.take();
    }
    out
}

/// The connection table and what goes with it.
pub(crate) struct Core {
    pub conns: Slab<Conn>,
    /// Generation per slab slot, bumped when a connection leaves it.
    pub gens: Vec<u32>,
    /// Connections with output to flush this tick.
    pub dirty: Vec<usize>,
    /// Connections whose read budget ran out; read again next tick.
    pub read_pending: Vec<usize>,
    /// The list being worked off this tick (kept for its allocation).
    pub read_owed: Vec<usize>,
    /// Ticks run so far; a connection is read at most once per tick.
    pub tick: u64,
    pub pool: BufPool,
    /// One encoded frame, shared by every receiver of a broadcast.
    pub frame: Vec<u8>,
    pub timers: Timers,
    pub config: ServerConfig,
    pub now: Instant,
    pub ws_open: usize,
    pub stop_requested: bool,
    pub handle: Option<crate::handle::ServerHandle>,
    /// The channel whose `on_ws_close` is running, with its state, so the
    /// callback can still read its handshake details.
    pub closing: Option<(Channel, Box<WsState>)>,
    /// Slow consumers closed by a send, to report to the application.
    pub slow: Vec<(usize, u32)>,
    /// Scratch list of broadcast targets, kept to reuse its allocation.
    targets: Vec<Channel>,
}

impl Core {
    pub fn new(config: ServerConfig) -> Core {
        Core {
            conns: Slab::new(),
            gens: Vec::new(),
            dirty: Vec::new(),
            read_pending: Vec::new(),
            read_owed: Vec::new(),
            tick: 0,
            pool: BufPool::default(),
            frame: Vec::new(),
            timers: Timers::default(),
            config,
            now: Instant::now(),
            ws_open: 0,
            stop_requested: false,
            handle: None,
            closing: None,
            slow: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Adds an accepted connection and arms its request timer.
    pub fn insert(&mut self, sock: TcpStream, peer: SocketAddr) -> usize {
        let key = self.conns.vacant_key();
        if self.gens.len() <= key {
            self.gens.resize(key + 1, 0);
        }
        let gen = self.gens[key];
        let request_deadline = self.now + self.config.request_timeout;
        self.timers.push(Timer {
            at: request_deadline,
            key,
            gen,
            kind: TimerKind::Request,
        });
        self.conns.insert(Conn {
            sock,
            gen,
            peer,
            phase: Phase::Http,
            inbuf: Vec::new(),
            out: Vec::new(),
            dirty: false,
            backlog: 0,
            read_tick: 0,
            last_rx: self.now,
            request_deadline,
        })
    }

    /// Arms a connection's keepalive check (pings, idle timeout) for when
    /// it is next due, if either is configured.
    pub fn arm_keepalive(&mut self, key: usize) {
        // A zero interval would re-arm at `now` and spin the timer loop.
        let at_least_1ms = |d: Duration| d.max(Duration::from_millis(1));
        let ping = self.config.ping_interval.map(at_least_1ms);
        let idle = self.config.idle_timeout.map(at_least_1ms);
        let Some(conn) = self.conns.get(key) else { return };
        // Ping once the peer has been silent for the interval, then every
        // interval, until it has been silent for the idle timeout.
        let silent = self.now.saturating_duration_since(conn.last_rx);
        let next_ping = ping.map(|p| if silent < p { conn.last_rx + p } else { self.now + p });
        let give_up = idle.map(|i| conn.last_rx + i);
        let Some(next) = next_ping.into_iter().chain(give_up).min() else {
            return;
        };
        self.timers.push(Timer {
            at: next.max(self.now),
            key,
            gen: conn.gen,
            kind: TimerKind::Keepalive,
        });
    }

    pub fn remove(&mut self, key: usize) -> Option<Conn> {
        let mut conn = self.conns.try_remove(key)?;
        self.gens[key] = self.gens[key].wrapping_add(1);
        if let Phase::Ws(_) = conn.phase {
            self.ws_open -= 1;
        }
        self.pool.put(std::mem::take(&mut conn.inbuf));
        self.pool.put(std::mem::take(&mut conn.out));
        Some(conn)
    }

    pub fn channel(&self, key: usize) -> Channel {
        Channel {
            index: key as u32,
            gen: self.conns[key].gen,
        }
    }

    pub fn is_open(&self, ch: Channel) -> bool {
        matches!(self.conns.get(ch.index as usize), Some(c) if c.gen == ch.gen && matches!(&c.phase, Phase::Ws(ws) if !ws.close_sent))
    }

    pub fn info(&self, ch: Channel) -> Option<&ChannelInfo> {
        if let Some((closing, ws)) = &self.closing {
            if *closing == ch {
                return Some(&ws.info);
            }
        }
        match self.conns.get(ch.index as usize) {
            Some(Conn {
                gen,
                phase: Phase::Ws(ws),
                ..
            }) if *gen == ch.gen => Some(&ws.info),
            _ => None,
        }
    }

    pub fn mark_dirty(dirty: &mut Vec<usize>, key: usize, conn: &mut Conn) {
        if !conn.dirty {
            conn.dirty = true;
            dirty.push(key);
        }
    }

    /// Records a slow consumer; with [`SlowConsumer::Close`] its close
    /// frame is queued at once and the tick reports it to the application.
    fn slow_consumer(&mut self, key: usize) -> SendError {
        if self.config.slow_consumer == SlowConsumer::Close {
            let gen = self.conns[key].gen;
            self.queue_close(key, 1008, "slow consumer");
            self.slow.push((key, gen));
        }
        SendError::Backpressure
    }

    /// Queues one frame on a channel; the raw form behind every send.
    pub fn send(&mut self, ch: Channel, opcode: Opcode, payload: &[u8], fin: bool) -> Result<(), SendError> {
        let cap = self.config.max_write_buffer;
        let (key, conn) = open_conn(&mut self.conns, ch)?;
        let Phase::Ws(ws) = &mut conn.phase else {
            unreachable!("open_conn checked")
        };
        let kind = ws.frag.check(opcode, payload.len(), fin)?;
        if conn.backlog >= cap {
            return Err(self.slow_consumer(key));
        }
        let out = out_buf(&mut conn.out, &mut self.pool);
        match kind {
            RawFrame::Control => encode_frame(out, true, opcode, payload, None),
            RawFrame::Data(wire) => {
                encode_frame(out, fin, wire, payload, None);
                if ws.frag.sent(wire, fin) && !ws.deferred.is_empty() {
                    out.extend_from_slice(&ws.deferred);
                    ws.deferred = Vec::new();
                }
            }
        }
        Self::mark_dirty(&mut self.dirty, key, conn);
        Ok(())
    }

    /// Appends one whole-message frame, written by `encode`, to a channel's
    /// output (or behind its unfinished fragmented send).
    fn push_message(&mut self, ch: Channel, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), SendError> {
        let cap = self.config.max_write_buffer;
        let (key, conn) = open_conn(&mut self.conns, ch)?;
        let Phase::Ws(ws) = &mut conn.phase else {
            unreachable!("open_conn checked")
        };
        if conn.backlog >= cap {
            return Err(self.slow_consumer(key));
        }
        if ws.frag.is_open() {
            encode(&mut ws.deferred);
            return Ok(());
        }
        encode(out_buf(&mut conn.out, &mut self.pool));
        Self::mark_dirty(&mut self.dirty, key, conn);
        Ok(())
    }

    /// Queues a whole message (one final frame) on a channel.
    pub fn send_message(&mut self, ch: Channel, opcode: Opcode, payload: &[u8]) -> Result<(), SendError> {
        self.push_message(ch, |out| encode_frame(out, true, opcode, payload, None))
    }

    /// Encodes one frame and appends its bytes to every open channel that
    /// `pick` selects. Returns how many received it.
    pub fn broadcast_where(&mut self, opcode: Opcode, payload: &[u8], mut pick: impl FnMut(Channel) -> bool) -> usize {
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        targets.extend(self.open_channels().filter(|&c| pick(c)));
        let n = self.broadcast_to(targets.iter().copied(), opcode, payload);
        self.targets = targets;
        n
    }

    /// Sends one encoded frame to the listed channels (skipping closed ones
    /// and slow consumers). Returns how many received it.
    pub fn broadcast_to(
        &mut self,
        channels: impl IntoIterator<Item = Channel>,
        opcode: Opcode,
        payload: &[u8],
    ) -> usize {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        encode_frame(&mut frame, true, opcode, payload, None);
        let n = channels
            .into_iter()
            .filter(|&ch| self.push_message(ch, |out| out.extend_from_slice(&frame)).is_ok())
            .count();
        self.frame = frame;
        n
    }

    /// Starts the closing handshake with an application code.
    pub fn close(&mut self, ch: Channel, code: u16, reason: &str) -> Result<(), SendError> {
        if !is_valid_server_code(code) {
            return Err(SendError::InvalidCloseCode(code));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ReasonTooLong(reason.len()));
        }
        let (key, _) = open_conn(&mut self.conns, ch)?;
        self.queue_close(key, code, reason);
        Ok(())
    }

    /// Queues our close frame (any code, already validated) and starts the
    /// wait for the peer's. Frames deferred behind an unfinished fragmented
    /// send are dropped: nothing may follow a close.
    pub fn queue_close(&mut self, key: usize, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let gen = conn.gen;
        let Phase::Ws(ws) = &mut conn.phase else { return };
        if ws.close_sent {
            return;
        }
        ws.close_sent = true;
        ws.deferred = Vec::new();
        let mut payload = [0u8; 125];
        let n = close_payload(code, reason, &mut payload);
        encode_frame(
            out_buf(&mut conn.out, &mut self.pool),
            true,
            Opcode::Close,
            &payload[..n],
            None,
        );
        Self::mark_dirty(&mut self.dirty, key, conn);
        self.timers.push(Timer {
            at: self.now + self.config.close_timeout,
            key,
            gen,
            kind: TimerKind::CloseHandshake,
        });
    }

    /// Queues a pong unless our close is already out. A peer that pings
    /// without reading the pongs is a slow consumer like any other.
    pub fn queue_pong(&mut self, key: usize, payload: &[u8]) {
        let cap = self.config.max_write_buffer;
        let Some(conn) = self.conns.get_mut(key) else { return };
        let Phase::Ws(ws) = &conn.phase else { return };
        if ws.close_sent {
            return;
        }
        if conn.backlog >= cap {
            self.slow_consumer(key);
            return;
        }
        encode_frame(
            out_buf(&mut conn.out, &mut self.pool),
            true,
            Opcode::Pong,
            payload,
            None,
        );
        Self::mark_dirty(&mut self.dirty, key, conn);
    }

    /// Moves a connection to `Closing`: flush, shut down, linger.
    /// Returns the WebSocket state the connection had, if any.
    pub fn begin_closing(&mut self, key: usize) -> Option<Box<WsState>> {
        let conn = self.conns.get_mut(key)?;
        let old = std::mem::replace(
            &mut conn.phase,
            Phase::Closing {
                shutdown_sent: false,
                peer_eof: false,
            },
        );
        self.pool.put(std::mem::take(&mut conn.inbuf));
        Self::mark_dirty(&mut self.dirty, key, conn);
        // However slowly the peer reads or closes, the connection goes by
        // this deadline.
        self.timers.push(Timer {
            at: self.now + self.config.close_timeout,
            key,
            gen: conn.gen,
            kind: TimerKind::Linger,
        });
        match old {
            Phase::Ws(ws) => {
                self.ws_open -= 1;
                Some(ws)
            }
            _ => None,
        }
    }

    pub fn new_ws(&self, info: ChannelInfo) -> Box<WsState> {
        Box::new(WsState {
            decoder: Decoder::new(Role::Server, self.config.max_frame_size, self.config.max_message_size),
            info,
            close_sent: false,
            frag: Fragmenter::default(),
            deferred: Vec::new(),
        })
    }

    pub fn open_channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.conns.iter().filter_map(|(key, c)| match &c.phase {
            Phase::Ws(ws) if !ws.close_sent => Some(Channel {
                index: key as u32,
                gen: c.gen,
            }),
            _ => None,
        })
    }

    pub fn buffered_amount(&self, ch: Channel) -> usize {
        match self.conns.get(ch.index as usize) {
            Some(c) if c.gen == ch.gen => c.out.len() + c.ws_ref().map_or(0, |ws| ws.deferred.len()),
            _ => 0,
        }
    }
}

impl Conn {
    fn ws_ref(&self) -> Option<&WsState> {
        match &self.phase {
            Phase::Ws(ws) => Some(ws),
            _ => None,
        }
    }
}
